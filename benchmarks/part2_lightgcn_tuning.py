"""Tuning LightGCN on MovieLens-100K, with the test split touched once.

    python benchmarks/part2_lightgcn_tuning.py [--quick] [--threads 1]

Protocol (the chapter's, ``chapters/06_graph_convolution``): Microsoft Recommenders'
split ``Split.recommenders(ml, seed=42, valid_ratio=0.1)``: ``train_full`` (``split.train``)
and ``test``; ``train`` (``split.tuning.train``) and ``valid`` (``split.valid``), carved per
user out of ``train_full``. Top-10 over the whole catalogue, a user's known items
excluded, MAP with the number of relevant items as denominator (Recommenders' table).

1. Every configuration of :data:`GRID` trains on ``train``; every ``EVAL_EVERY`` epochs
   it ranks ``valid`` (``train`` excluded), and training stops after ``PATIENCE``
   evaluations without a better NDCG@10. The number of epochs is the best evaluated one.
2. The configuration with the best validation NDCG@10 wins; it is refitted on all of
   ``train_full`` for its selected number of epochs (not scaled: an epoch over
   ``train_full`` is already 11 % more steps), seed unchanged, no validation.
3. That one model ranks ``test`` (``train_full`` excluded): the only test evaluation.

The grid is the neighbourhood of the best configurations of a coarser search on the same
validation split (BPR vs full-catalogue softmax, dot vs cosine scores, temperature 0.1-2,
reg 1e-4-3e-2, 2-5 layers, d = 32/64/128, learning rate, batch size); its last row is the
best dot-product softmax, for comparison. ``--quick`` runs only the first two rows (the
two best of the coarse search) before the refit. Deterministic: every fit is seeded and
runs on ``--threads`` CPU threads (default 1).

Reference bar of this study: nDCG@10 >= .48, P@10 >= .42,
R@10 >= .22, MAP >= .15.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from recsys_ref.data import load_movielens  # noqa: E402
from recsys_ref.protocol.evaluate import evaluate_ranking  # noqa: E402
from recsys_ref.models.graph.lightgcn import LightGCN  # noqa: E402
from recsys_ref.protocol.split import Split  # noqa: E402

SEED, TOP_K = 42, 10
METRICS = ["ndcg", "precision", "recall", "map"]
TARGET = {"ndcg": 0.48, "precision": 0.42, "recall": 0.22, "map": 0.15}
EVAL_EVERY, PATIENCE, MAX_EPOCHS = 5, 4, 80

#: shared by every row: LightGCN's propagation (d=64, 3 layers), full-catalogue softmax
#: on cosine scores (normalize=True: s_ui = cos(e_u, e_i) / temperature)
BASE = dict(embed_dim=64, num_layers=3, init_std=0.1, loss="softmax", num_neg=None,
            normalize=True, temperature=0.2, batch_size=2048, lr=1e-2, reg=1e-4)
#: the rows, as overrides of BASE (the first two: the coarse search's best)
GRID = [
    dict(),
    dict(batch_size=1024, lr=5e-3),
    dict(temperature=0.15),
    dict(temperature=0.25),
    dict(num_layers=2),
    dict(reg=1e-3),
    dict(batch_size=1024, lr=5e-3, num_layers=2),
    dict(batch_size=1024, lr=5e-3, embed_dim=128),
    dict(batch_size=4096, lr=2e-2),                              # fewer, larger steps
    dict(normalize=False, temperature=1.0, lr=5e-3, reg=1e-3),   # dot-product softmax
]


def _params(row: dict) -> dict:
    return {**BASE, **row}


def _label(row: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in row.items()) or "base"


def load_splits():
    """ML-100K and the protocol's splits: ``(ml, train_full, test, train, valid)``."""
    ml = load_movielens("ml-100k")
    split = Split.recommenders(ml, seed=SEED, valid_ratio=0.1)
    train_full, test = split.train, split.test
    train, valid = split.tuning.train, split.valid
    return ml, train_full, test, train, valid


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="only the first two grid rows")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)

    ml, train_full, test, train, valid = load_splits()
    print(f"train {len(train):,}  valid {len(valid):,}  test {len(test):,}  "
          f"(train_full {len(train_full):,}); threads={args.threads}", flush=True)

    rows = GRID[:2] if args.quick else GRID
    table, fitted = [], []
    for row in rows:
        params = _params(row)
        model = LightGCN(num_epochs=MAX_EPOCHS, eval_every=EVAL_EVERY, patience=PATIENCE,
                         seed=SEED, num_threads=args.threads, **params)
        t0 = time.perf_counter()
        model.fit(train, ml.num_users, ml.num_items, valid=valid)
        seconds = time.perf_counter() - t0
        res = evaluate_ranking(model.score, valid, ml.num_users, ml.num_items, TOP_K,
                               exclude=[train], metrics=METRICS)
        curve = model.history.frame.dropna(subset=["valid"])
        epochs = model.history.best_epoch + 1
        table.append({"config": _label(row), **res, "epochs": epochs,
                      "curve (epoch:nDCG)": " ".join(f"{int(e) + 1}:{v:.3f}" for e, v in
                                                      zip(curve["epoch"], curve["valid"])),
                      "fit_s": seconds})
        fitted.append((params, epochs))
        print(f"  {_label(row)}: valid nDCG {res['ndcg']:.4f} at {epochs} epochs, {seconds:.0f} s",
              flush=True)

    frame = pd.DataFrame(table)
    pd.set_option("display.width", 250)
    pd.set_option("display.max_colwidth", 120)
    print(f"\nValidation (train -> valid, k={TOP_K}); base: {BASE}")
    print(frame.drop(columns=["curve (epoch:nDCG)"]).to_string(
        index=False, float_format=lambda v: f"{v:.4f}"))
    print("\nvalidation curves:")
    for r in table:
        print(f"  {r['config']}: {r['curve (epoch:nDCG)']}")

    best = int(frame["ndcg"].idxmax())
    params, epochs = fitted[best]
    print(f"\nselected: {table[best]['config']} -> LightGCN({params}), {epochs} epochs")
    model = LightGCN(num_epochs=epochs, eval_every=EVAL_EVERY, patience=None, seed=SEED,
                     num_threads=args.threads, **params)
    t0 = time.perf_counter()
    model.fit(train_full, ml.num_users, ml.num_items)
    seconds = time.perf_counter() - t0
    res = evaluate_ranking(model.score, test, ml.num_users, ml.num_items, TOP_K,
                           exclude=[train_full], metrics=METRICS)
    out = pd.DataFrame({"LightGCN (selected, refit on train_full)": res, "reference bar": TARGET}).T
    print(f"\nTest (train_full -> test, k={TOP_K}), evaluated once; refit {seconds:.0f} s, "
          f"median epoch {model.epoch_seconds:.2f} s ({args.threads} thread(s))")
    print(out[METRICS].to_string(float_format=lambda v: f"{v:.4f}"))
    for m in METRICS:
        print(f"  {m:<9} {res[m]:.4f} >= {TARGET[m]:.2f}: {'yes' if res[m] >= TARGET[m] else 'NO'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
