"""Part I matrix factorisation benchmark (chapter 4).

Prints one table:

* biased MF (ALS) on GroupLens' u1..u5 folds of ML-100K: RMSE / MAE per fold and the
  5-fold mean, next to Surprise's published SVD / SVD++ numbers;
* BPR-MF and SVD ranking metrics at k=10 under Microsoft Recommenders' protocol
  (stratified 75/25 split per item, seed 42), next to their published BPR row, with fit
  time and epoch time.

Hyper-parameters are the ones chapter 4 selects on validation data (pass others on the
command line). BPR is trained on the whole training split for ``--bpr-epochs`` epochs.

    RECSYS_REF_DATA=../shared/data python benchmarks/part1_mf.py
"""
from __future__ import annotations

import argparse
import platform
import time

import numpy as np
import torch

from recsys_ref.data import load_movielens
from recsys_ref.evaluate import evaluate_ranking
from recsys_ref.models.bpr import BPRMF
from recsys_ref.models.mf import BiasedMF
from recsys_ref.models.popularity import Popularity
from recsys_ref.models.svd import SVDEmbedding
from recsys_ref.splits import grouplens_fold, stratified_split
from recsys_ref.train import set_seed

PUBLISHED_BPR = {"map": 0.132, "ndcg": 0.442, "precision": 0.388, "recall": 0.213}
METRICS = ["map", "ndcg", "precision", "recall"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--mf-dim", type=int, default=80)
    ap.add_argument("--mf-reg", type=float, default=0.12)
    ap.add_argument("--mf-epochs", type=int, default=10)
    ap.add_argument("--bpr-dim", type=int, default=64)
    ap.add_argument("--bpr-lr", type=float, default=5e-3)
    ap.add_argument("--bpr-reg", type=float, default=1e-2)
    ap.add_argument("--bpr-epochs", type=int, default=120)
    ap.add_argument("--bpr-neg", type=int, default=4)
    ap.add_argument("--svd-dim", type=int, default=16)
    ap.add_argument("--svd-matrix", default="binary", choices=["binary", "normalized"])
    args = ap.parse_args()
    set_seed(args.seed)
    ml = load_movielens("ml-100k")
    print(f"device: cpu ({platform.processor() or platform.machine()}), torch threads "
          f"{torch.get_num_threads()}, torch {torch.__version__}")

    print(f"\nBiased MF (ALS, d={args.mf_dim}, lambda={args.mf_reg}, {args.mf_epochs} sweeps), "
          "GroupLens folds")
    rmses, maes, fits, sweeps = [], [], [], []
    for fold in range(1, args.folds + 1):
        base, test = grouplens_fold(ml.ratings, fold)
        t0 = time.perf_counter()
        mf = BiasedMF(args.mf_dim, args.mf_reg, 0.01, args.mf_epochs, seed=args.seed).fit(
            base, ml.num_users, ml.num_items)
        fits.append(time.perf_counter() - t0)
        sweeps.append(mf.epoch_seconds)
        res = mf.evaluate(test)
        rmses.append(res["rmse"])
        maes.append(res["mae"])
        print(f"  u{fold}: RMSE {res['rmse']:.4f}  MAE {res['mae']:.4f}  fit {fits[-1]:.1f} s")
    print(f"  mean: RMSE {np.mean(rmses):.4f}  MAE {np.mean(maes):.4f}   (target <= 0.915; "
          "Surprise SVD 0.934, SVD++ 0.919)")
    print(f"  fit {np.mean(fits):.2f} s per fold, {np.median(sweeps):.3f} s per ALS sweep")

    train, test = stratified_split(ml.ratings, 0.75, filter_by="item", seed=args.seed)

    def rank(model):
        return evaluate_ranking(model.score, test, ml.num_users, ml.num_items, 10,
                                exclude=[train], metrics=METRICS)

    rows = {}
    t0 = time.perf_counter()
    rows["popularity"] = (rank(Popularity().fit(train, ml.num_users, ml.num_items)), None, None)
    t0 = time.perf_counter()
    svd = SVDEmbedding(args.svd_dim, args.svd_matrix, seed=args.seed).fit(train, ml.num_users, ml.num_items)
    rows[f"SVD ({args.svd_matrix}, d={args.svd_dim})"] = (rank(svd), time.perf_counter() - t0, None)
    t0 = time.perf_counter()
    bpr = BPRMF(embed_dim=args.bpr_dim, lr=args.bpr_lr, reg=args.bpr_reg,
                num_epochs=args.bpr_epochs, num_neg=args.bpr_neg, seed=args.seed).fit(train, ml.num_users, ml.num_items)
    rows[f"BPR-MF (d={args.bpr_dim}, {args.bpr_epochs} ep)"] = (
        rank(bpr), time.perf_counter() - t0, bpr.epoch_seconds)
    rows["BPR, Recommenders published"] = (PUBLISHED_BPR, None, None)

    print("\nRanking, Recommenders protocol (stratified 75/25 by item, seed 42), k=10")
    head = f"  {'model':<34}" + "".join(f"{m + '@10':>13}" for m in METRICS) + f"{'fit s':>9}{'epoch s':>9}"
    print(head)
    for name, (res, fit_s, ep_s) in rows.items():
        line = f"  {name:<34}" + "".join(f"{res[m]:>13.4f}" for m in METRICS)
        line += f"{fit_s:>9.2f}" if fit_s is not None else f"{'':>9}"
        line += f"{ep_s:>9.3f}" if ep_s is not None else f"{'':>9}"
        print(line)
    print("  (BPR epoch target <= 0.1 s on this CPU)")


if __name__ == "__main__":
    main()
