"""Neighbourhood CF on MovieLens-100K: rating accuracy on GroupLens' u1..u5 folds and
top-10 ranking under the Microsoft Recommenders protocol, with fit times.

    python benchmarks/part1_neighbourhood.py [--folds 5] [--no-assert]

Prints two tables and checks the targets of chapter 02 (``chapters/02_neighbourhood_cf``):

* item-kNN with baseline (Pearson-baseline similarity, k=40, shrinkage 100): 5-fold mean
  RMSE <= 0.93;
* binary item-kNN (cosine, k=100, shrinkage 10, the values chosen on validation in the
  chapter): MAP, NDCG, precision and recall at 10 at or above SAR's published row of the
  Recommenders ML-100K benchmark (MAP .111, nDCG .382, P .331, R .176), MAP with the
  number of relevant items as denominator.

Fit times are wall-clock seconds on the machine that runs it (record it in
``benchmarks/README.md`` with the date).
"""
from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from recsys_ref import evaluate_ranking, load_movielens  # noqa: E402
from recsys_ref.protocol.metrics import mae, rmse  # noqa: E402
from recsys_ref.models import Popularity  # noqa: E402
from recsys_ref.models.classic.knn import Baseline, ItemKNN, UserKNN  # noqa: E402
from recsys_ref.protocol.split import Split  # noqa: E402
from recsys_ref.protocol.splits import grouplens_fold  # noqa: E402

SAR = {"map": 0.110591, "ndcg": 0.382461, "precision": 0.330753, "recall": 0.176385}
RMSE_TARGET = 0.93


def rating_table(ml, folds: int) -> pd.DataFrame:
    makers = {
        "baseline only": lambda: Baseline(),
        "user-kNN + baseline": lambda: UserKNN(k=40, similarity="pearson_baseline",
                                               shrinkage=100, implicit=False),
        "item-kNN + baseline": lambda: ItemKNN(k=40, similarity="pearson_baseline",
                                               shrinkage=100, implicit=False),
    }
    rows = []
    for name, make in makers.items():
        per_fold = []
        for f in range(1, folds + 1):
            train, test = grouplens_fold(ml.ratings, f)
            t0 = time.perf_counter()
            model = make().fit(train, ml.num_users, ml.num_items)
            fit_s = time.perf_counter() - t0
            pred = model.predict(test["user"].to_numpy(), test["item"].to_numpy())
            truth = test["rating"].to_numpy(float)
            per_fold.append((rmse(truth, pred), mae(truth, pred), fit_s))
        r, m, s = np.mean(per_fold, axis=0)
        rows.append({"model": name, "RMSE": r, "MAE": m, "fit s / fold": s})
    return pd.DataFrame(rows).set_index("model")


def ranking_table(ml, k: int = 10) -> pd.DataFrame:
    split = Split.recommenders(ml, seed=42, valid_ratio=0)
    train, test = split.train, split.test
    makers = {
        "popularity": lambda: Popularity(),
        "user-kNN (k=100, shrink 0)": lambda: UserKNN(k=100, shrinkage=0.0),
        "item-kNN (k=100, shrink 10)": lambda: ItemKNN(k=100, shrinkage=10.0),
    }
    rows = []
    for name, make in makers.items():
        t0 = time.perf_counter()
        model = make().fit(train, ml.num_users, ml.num_items)
        fit_s = time.perf_counter() - t0
        res = evaluate_ranking(model.score, test, ml.num_users, ml.num_items, k, exclude=[train])
        rows.append({"model": name, **{m: res[m] for m in SAR}, "fit s": fit_s})
    rows.append({"model": "SAR (published)", **SAR, "fit s": np.nan})
    return pd.DataFrame(rows).set_index("model")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--folds", type=int, default=5, help="GroupLens folds u1..uN (1-5)")
    ap.add_argument("--no-assert", action="store_true", help="print only, do not check targets")
    args = ap.parse_args(argv)
    if not 1 <= args.folds <= 5:
        ap.error(f"--folds must be in 1..5, got {args.folds}")
    ml = load_movielens("ml-100k")
    print(f"machine: {platform.node()} ({platform.processor() or platform.machine()}), "
          f"python {platform.python_version()}")
    rt = rating_table(ml, args.folds)
    print(f"\nRating prediction, ML-100K, mean over GroupLens folds u1..u{args.folds}")
    print(rt.to_string(float_format=lambda x: f"{x:.4f}"))
    kt = ranking_table(ml)
    print("\nTop-10 ranking, Recommenders protocol (stratified 75/25 per item, seed 42)")
    print(kt.to_string(float_format=lambda x: f"{x:.4f}", na_rep="-"))
    if args.no_assert:
        return 0
    ok = True
    if args.folds == 5 and not rt.loc["item-kNN + baseline", "RMSE"] <= RMSE_TARGET:
        print(f"FAIL: item-kNN + baseline RMSE {rt.loc['item-kNN + baseline', 'RMSE']:.4f} > {RMSE_TARGET}")
        ok = False
    row = kt.loc["item-kNN (k=100, shrink 10)"]
    for m, target in SAR.items():
        if not row[m] >= target:
            print(f"FAIL: item-kNN {m}@10 = {row[m]:.4f} < SAR {target:.4f}")
            ok = False
    print("\ntargets:", "met" if ok else "NOT met")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
