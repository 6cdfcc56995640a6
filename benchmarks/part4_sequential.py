"""Next-item recommendation on MovieLens-1M (chapters 10 and 11): the book's sequential
models (GRU4Rec, SASRec, SR-GNN), its best non-sequential ones and cornac's SASRec and
GRU4Rec, in one run, one evaluator.

    python benchmarks/part4_sequential.py [--protocol sasrec|recbole] [--models ...]
        [--seeds 42 43 44] [--max-len 200] [--windows all|latest] [--max-epochs 200]
        [--quick]

Protocols (:mod:`recsys_ref.protocol.sequential`): ``sasrec`` — the ML-1M file of the
full-ranking SASRec reproductions (items rated at least 5 times; 6,040 users, 3,416
items), seen items masked; ``recbole`` — RecBole's (ratings >= 3, 10-core), seen items
ranked. Both: each user's latest interaction to test, the one before to validation, full
ranking, HR@10 (= recall@10 with one held-out item) and NDCG@10.

Every trained model is fitted on the training part without the validation items, stops
early on validation NDCG@10 (``patience`` evaluations without a gain; a run that reaches
``--max-epochs`` while improving is flagged in the table) and is tested once, reading each
user's history up to and including her validation item. Seeds: mean ± std over
``--seeds``. Peers (cornac, when installed): SASRec and GRU4Rec trained on the same
training sequences (one cornac session per user), scored by our evaluator with the
protocol's masking; cornac has no early stopping, so ``--peer-epochs`` is its budget.

Resumable: each (model, seed) result is a JSON file in ``benchmarks/.seq_cache/``; an
interrupted run loses at most the fit in flight. Writes ``part4_sequential.{md,csv}``
(``--quick``: a tiny run into the cache folder, for checking the script).
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from recsys_ref.data import atomic_write, load_movielens  # noqa: E402
from recsys_ref.models import (EASE, GRU4Rec, ItemTransitions, Popularity,  # noqa: E402
                               SASRec, SRGNN)
from recsys_ref.protocol.sequential import next_item_split  # noqa: E402
from recsys_ref.protocol.split import evaluate  # noqa: E402
from recsys_ref.protocol.stats import format_mean_std, seed_summary  # noqa: E402

HERE = Path(__file__).resolve().parent
CACHE = HERE / ".seq_cache"
CACHE_VERSION = 1
METRICS = ["recall", "ndcg"]          # recall@10 is HR@10 here (one held-out item)

#: the configurations compared; ``max_len`` and ``num_epochs`` come from the command line
OURS = {
    "popularity": (Popularity, {}),
    "transitions": (ItemTransitions, {}),
    "ease": (EASE, {"l2": 400.0}),
    # chapter 10's settings (its parameters cell)
    "gru4rec": (GRU4Rec, dict(embed_dim=64, loss="ce", lr=1e-2, batch_size=128,
                              dropout=0.2, eval_every=2, patience=3)),
    "sasrec-bce": (SASRec, dict(embed_dim=64, loss="bce", lr=1e-2, batch_size=128,
                                dropout=0.2, num_blocks=2, num_heads=1, eval_every=2,
                                patience=3)),
    "sasrec": (SASRec, dict(embed_dim=64, loss="ce", lr=1e-2, batch_size=128,
                            dropout=0.2, num_blocks=2, num_heads=1, eval_every=2,
                            patience=3)),
    # chapter 11's: one target per step sample, 256 of them per step
    "srgnn": (SRGNN, dict(embed_dim=64, loss="ce", lr=1e-2, batch_size=256,
                          num_steps=1, eval_every=2, patience=3)),
}
PEERS = ("cornac-sasrec", "cornac-gru4rec")


def _fit_ours(name: str, split, seed: int, args) -> tuple[object, dict]:
    cls, kw = OURS[name]
    info: dict = {}
    if cls in (SASRec, GRU4Rec, SRGNN):
        kw = dict(kw, max_len=args.max_len, windows=args.windows,
                  num_epochs=args.max_epochs, seed=seed, mask_seen=split.mask_seen,
                  num_threads=args.threads, progress=args.progress)
        model = cls(**kw).fit(split.tuning.train, split.num_users, split.num_items,
                              valid=split.valid)
        h = model.history
        info = {"epochs": len(h.rows), "best_epoch": h.best_epoch + 1,
                "at_cap": not h.stopped_early, "epoch_s": model.epoch_seconds}
    elif cls is ItemTransitions:
        model = cls().fit(split.tuning.train, split.num_users, split.num_items)
    else:   # non-sequential: the whole training part, validation items included
        model = cls(**kw).fit(split.train, split.num_users, split.num_items)
    return model, info


def _fit_peer(name: str, split, seed: int, args):
    """A cornac model trained on the training sequences; returns a score function."""
    from cornac.data import SequentialDataset
    from cornac.models import GRU4Rec as CornacGRU4Rec
    from cornac.models import SASRec as CornacSASRec

    train = split.tuning.train.sort_values(["user", "timestamp"], kind="mergesort")
    rows = list(zip(train["user"].tolist(), train["user"].tolist(), train["item"].tolist(),
                    train["timestamp"].astype("int64").tolist()))
    data = SequentialDataset.build(rows, fmt="USIT")
    if name == "cornac-sasrec":
        model = CornacSASRec(embedding_dim=64, loss="ce", max_len=args.max_len,
                             num_blocks=2, num_heads=1, dropout=0.2,
                             n_epochs=args.peer_epochs, batch_size=128, seed=seed)
    else:
        model = CornacGRU4Rec(layers=[64], loss="cross-entropy", n_epochs=args.peer_epochs,
                              batch_size=min(512, data.num_sessions), seed=seed)
    model.fit(data)
    ours_to_cornac = np.full(split.num_items, -1, dtype=np.int64)
    for raw, idx in data.iid_map.items():
        ours_to_cornac[int(raw)] = idx
    seqs = split.train.sort_values(["user", "timestamp"], kind="mergesort")
    history = seqs.groupby("user")["item"].agg(list)

    def score(users: torch.Tensor) -> torch.Tensor:
        out = torch.full((len(users), split.num_items), -1e9)
        known = ours_to_cornac >= 0
        for row, u in enumerate(users.tolist()):
            items = [int(ours_to_cornac[i]) for i in history.get(u, [])
                     if ours_to_cornac[i] >= 0]
            s = np.asarray(model.score(0, history_items=items), dtype=np.float32)
            out[row, known] = torch.as_tensor(s[ours_to_cornac[known]])
        return out
    return score


def run_one(name: str, split, seed: int, args) -> dict:
    path = args.cache / (f"{args.protocol}-{name}-L{args.max_len}-{args.windows}"
                         f"-e{args.max_epochs}-s{seed}.json")
    if path.exists() and not args.fresh:
        res = json.loads(path.read_text())
        if res.get("version") == CACHE_VERSION:
            return res
    t0 = time.perf_counter()
    if name in PEERS:
        model, info = _fit_peer(name, split, seed, args), {}
    else:
        model, info = _fit_ours(name, split, seed, args)
    fit_s = time.perf_counter() - t0
    res = {m: float(v) for m, v in evaluate(model, split, k=10, metrics=METRICS).items()}
    res.update(info, model=name, seed=seed, fit_s=round(fit_s, 1), version=CACHE_VERSION)
    atomic_write(path, lambda fh: json.dump(res, fh), mode="w")
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--protocol", default="sasrec", choices=["sasrec", "recbole"])
    ap.add_argument("--models", nargs="+", default=[*OURS, *PEERS])
    ap.add_argument("--seeds", type=int, nargs="+", default=[42, 43, 44])
    ap.add_argument("--max-len", type=int, default=200)
    ap.add_argument("--max-epochs", type=int, default=200)
    ap.add_argument("--windows", default="all", choices=["all", "latest"],
                    help="training windows: every target (default) or the latest L + 1")
    ap.add_argument("--peer-epochs", type=int, default=20)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--progress", action="store_true",
                    help="a progress bar per fit (epochs, validation score)")
    ap.add_argument("--quick", action="store_true", help="300 users, 2 epochs: checks the script")
    ap.add_argument("--fresh", action="store_true", help="ignore cached results")
    ap.add_argument("--out", type=Path, default=HERE / "part4_sequential")
    args = ap.parse_args(argv)
    unknown = set(args.models) - set(OURS) - set(PEERS)
    if unknown:
        ap.error(f"unknown model(s) {sorted(unknown)}; choose from {[*OURS, *PEERS]}")
    args.cache = CACHE / ("quick" if args.quick else "")
    args.cache.mkdir(parents=True, exist_ok=True)
    ratings = load_movielens("ml-1m").ratings
    if args.quick:
        ratings = ratings[ratings["user"] < 300]
        args.max_epochs = args.peer_epochs = 2
        args.max_len = min(args.max_len, 20)
        args.seeds = args.seeds[:1]
        args.out = args.cache / "part4_sequential"
    split = next_item_split(ratings, args.protocol)
    print(split, flush=True)
    rows = []
    for name in args.models:
        if name in PEERS:
            try:
                import cornac  # noqa: F401
            except ImportError:
                print(f"{name}: cornac is not installed (pip install -e '.[peers]'); skipped")
                continue
        for seed in args.seeds:
            res = run_one(name, split, seed, args)
            print(f"{name:<15} seed {seed}: HR@10 {res['recall']:.4f}  "
                  f"NDCG@10 {res['ndcg']:.4f}  fit {res['fit_s']:.0f} s"
                  + (f"  epochs {res['epochs']} (best {res['best_epoch']})"
                     + (" AT CAP" if res["at_cap"] else "") if "epochs" in res else ""),
                  flush=True)
            rows.append(res)
            if name in ("popularity", "ease", "transitions"):
                break                                     # deterministic
    frame = pd.DataFrame(rows)
    summary = seed_summary(frame, by="model", metrics=METRICS + ["fit_s"])
    table = pd.DataFrame({
        "HR@10": [format_mean_std(r["recall"], r["recall_std"]) for _, r in summary.iterrows()],
        "NDCG@10": [format_mean_std(r["ndcg"], r["ndcg_std"]) for _, r in summary.iterrows()],
        "fit s": summary["fit_s"].round(0).astype(int),
        "seeds": summary["n_seeds"]}, index=summary.index)
    head = (f"`python benchmarks/part4_sequential.py --protocol {args.protocol} --max-len "
            f"{args.max_len} --windows {args.windows} --max-epochs {args.max_epochs}`; "
            f"{split!r}; torch "
            f"{torch.__version__}, {platform.processor() or platform.machine()}")
    md = f"# Next-item recommendation, ML-1M ({args.protocol} protocol)\n\n{head}\n\n"
    md += table.to_markdown() + "\n"
    atomic_write(args.out.with_suffix(".md"), lambda fh: fh.write(md), mode="w")
    atomic_write(args.out.with_suffix(".csv"), lambda fh: frame.to_csv(fh, index=False),
                 mode="w")
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
