"""Part I matrix factorisation benchmark (chapter 4).

Prints one table:

* biased MF (ALS) on GroupLens' u1..u5 folds of ML-100K: RMSE / MAE per fold and the
  5-fold mean, next to Surprise's published SVD / SVD++ numbers;
* BPR-MF and SVD ranking metrics at k=10 under Microsoft Recommenders' protocol
  (stratified 75/25 split per item, seed 42), next to their published BPR row, with fit
  time and epoch time.

Hyper-parameters are the ones chapter 4 selects on validation data (pass others on the
command line). BPR is trained on the whole training split for ``--bpr-epochs`` epochs.

A last table times a BPR-MF epoch in the configuration of the speed target (d=64, batch
8192, one negative, the 74,331 training pairs of the split above = 10 steps, ``--threads``
intra-op threads, default 1; target 0.1 s): the library's step (:class:`BPRMFLoss`, a
hand-written gradient into reused scratch blocks) next to the same loop with the plain
autograd step it replaced (scores through ``MFModule.forward()``, ``MFModule.reg_loss``).
Both rows draw the same triples; wall seconds are the model's ``epoch_seconds`` (median
over epochs), min and median over ``--speed-repeats`` fits; CPU seconds per epoch are
(CPU of an n-epoch fit - CPU of a 1-epoch fit) / (n - 1). On a shared machine report the
load average with them.

    RECSYS_REF_DATA=../shared/data python benchmarks/part1_mf.py
    python benchmarks/part1_mf.py --speed-only
"""
from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np
import torch

from recsys_ref.data import load_movielens
from recsys_ref.protocol.evaluate import evaluate_ranking
from recsys_ref.models.classic.bprmf import BPRMF
from recsys_ref.models.embedding import EmbeddingRecommender
from recsys_ref.models.classic.mf import BiasedMF
from recsys_ref.models.classic.popularity import Popularity
from recsys_ref.models.classic.svd import SVDEmbedding
from recsys_ref.protocol.split import Split
from recsys_ref.protocol.splits import grouplens_fold
from recsys_ref.train import set_seed

PUBLISHED_BPR = {"map": 0.132, "ndcg": 0.442, "precision": 0.388, "recall": 0.213}
METRICS = ["map", "ndcg", "precision", "recall"]


class AutogradBPRMF(BPRMF):
    """The reference: BPR-MF through the generic loop, i.e. the loss of
    ``EmbeddingRecommender._batch_loss`` on ``MFModule.forward()`` plus
    ``MFModule.reg_loss``, differentiated by autograd. Same triples, same Adam."""

    name = "bpr-autograd"
    calculate_loss = EmbeddingRecommender.calculate_loss


def bpr_epoch_speed(train, ml, repeats: int, epochs: int, seed: int) -> dict:
    """Wall (min, median over ``repeats`` fits of each fit's median epoch) and CPU seconds
    per epoch of both implementations, fits interleaved so both see the same load."""
    kw = dict(embed_dim=64, batch_size=8192, num_neg=1, patience=None, seed=seed)
    rows = {"BPR-MF (BPRMFLoss, scratch)": BPRMF, "reference (autograd step)": AutogradBPRMF}
    wall = {label: [] for label in rows}
    cpu = {label: [] for label in rows}
    for cls in rows.values():                                   # warm-up (lazy inits)
        cls(num_epochs=1, **kw).fit(train, ml.num_users, ml.num_items)
    for _ in range(repeats):
        for label, cls in rows.items():
            c0 = time.process_time()
            cls(num_epochs=1, **kw).fit(train, ml.num_users, ml.num_items)
            c1 = time.process_time()
            model = cls(num_epochs=epochs, **kw).fit(train, ml.num_users, ml.num_items)
            c2 = time.process_time()
            wall[label].append(model.epoch_seconds)
            cpu[label].append(((c2 - c1) - (c1 - c0)) / (epochs - 1))
    return {label: {"wall_min_s": min(wall[label]), "wall_median_s": float(np.median(wall[label])),
                    "cpu_per_epoch_s": float(np.median(cpu[label]))} for label in rows}


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
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    ap.add_argument("--speed-epochs", type=int, default=10)
    ap.add_argument("--speed-repeats", type=int, default=3)
    ap.add_argument("--speed-only", action="store_true", help="only the epoch-speed table")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    set_seed(args.seed)
    ml = load_movielens("ml-100k")
    print(f"device: cpu ({platform.processor() or platform.machine()}), torch threads "
          f"{torch.get_num_threads()}, torch {torch.__version__}")
    if args.speed_only:
        return speed_table(args, ml)

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
    print(f"  mean: RMSE {np.mean(rmses):.4f}  MAE {np.mean(maes):.4f}   (published: "
          "Surprise SVD 0.934, SVD++ 0.919)")
    print(f"  fit {np.mean(fits):.2f} s per fold, {np.median(sweeps):.3f} s per ALS sweep")

    split = Split.recommenders(ml, seed=args.seed, valid_ratio=0)
    train, test = split.train, split.test

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
    speed_table(args, ml)


def speed_table(args, ml) -> None:
    train = Split.recommenders(ml, seed=args.seed, valid_ratio=0).train
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"\nBPR-MF epoch speed: d=64, batch 8192, 1 negative, {len(train):,} pairs "
          f"({int(np.ceil(len(train) / 8192))} steps), {args.speed_repeats} x {args.speed_epochs}-epoch "
          f"fits, {torch.get_num_threads()} thread(s), load average {load:.2f} at start")
    speed = bpr_epoch_speed(train, ml, args.speed_repeats, args.speed_epochs, args.seed)
    print(f"  {'implementation':<34}{'wall min':>10}{'wall med':>10}{'CPU/epoch':>11}")
    for label, r in speed.items():
        print(f"  {label:<34}{r['wall_min_s']:>10.3f}{r['wall_median_s']:>10.3f}{r['cpu_per_epoch_s']:>11.3f}")
    print(f"  load average at end {os.getloadavg()[0]:.2f}; target: BPR epoch <= 0.1 s")


if __name__ == "__main__":
    main()
