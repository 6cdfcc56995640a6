r"""Benchmark command line: train a registered model under a named protocol, print a table,
and write everything needed to re-check the numbers independently.

.. code-block:: bash

    python -m recsys_ref.cli.bench --model popularity --dataset ml-100k \
        --protocol recommenders --k 10 --seed 42 --out results/pop

Protocols (named constructors of :class:`recsys_ref.protocol.split.Split`):

``recommenders``
    Microsoft Recommenders' stratified split (75/25 per item, seed 42 by default), so the
    table compares with their published ML-100K benchmark. When a model asks for
    validation, ``--valid-ratio`` of the training rows (per user, seeded) is carved out
    of train; the test split is touched once.
``per-user``
    per-user random train/valid/test with ``--ratios`` (default ``0.8,0.1,0.1``).
``leave-last-out``
    each user's latest interaction to test, the one before to validation.
``temporal``
    global time cut: the latest ``--test-ratio`` of interactions test.
``next-item`` / ``next-item-recbole``
    the sequential protocols of :mod:`recsys_ref.protocol.sequential` (MovieLens-1M:
    the SASRec reproductions' file with seen items masked / RecBole's with seen items
    ranked): leave-last-out by time, the data filtered and re-indexed as the protocol
    says. Sequential models (``sasrec``, ``gru4rec``, ``srgnn``, ``transitions``) read
    each user's history from the training part.

Output files in ``--out``: ``metrics.json`` (metrics, protocol, parameters, timings),
``train.csv`` (what the model was fitted on: train without the validation part),
``valid.csv`` (when there is one) and ``test.csv`` (``user_id,item_id`` in the dataset's
original ids) and
``topk.csv`` (``user_id,item_id,rank``, rank 1 = best) for every evaluated user. Files are
written to a temporary folder and moved into place at the end, so a failed run leaves no
half-written results.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from recsys_ref import __version__
from recsys_ref.data import atomic_dir, load_amazon, load_lastfm, load_movielens
from recsys_ref.protocol.evaluate import evaluate_ranking
from recsys_ref.models import MODELS, check_params, get_model
from recsys_ref.protocol.sequential import next_item_split
from recsys_ref.protocol.split import Split
from recsys_ref.train.runtime import get_device, set_seed

__all__ = ["PROTOCOLS", "make_split", "run_benchmark", "main"]

PROTOCOLS = ("recommenders", "per-user", "leave-last-out", "temporal", "next-item",
             "next-item-recbole")

# --dataset NAME -> loader(data_dir); each result has interactions, num_users, num_items and
# the original ids (user_ids, item_ids)
DATASETS = {
    "ml-100k": lambda d: load_movielens("ml-100k", data_dir=d),
    "ml-1m": lambda d: load_movielens("ml-1m", data_dir=d),
    "lastfm": lambda d: load_lastfm(data_dir=d),
    "amazon-gift-cards": lambda d: load_amazon("Gift_Cards", data_dir=d),
}


def _parse_value(text: str):
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    return text


def make_split(data, protocol: str, seed: int = 42, ratio: float = 0.75,
               ratios: tuple[float, float, float] = (0.8, 0.1, 0.1), valid_ratio: float = 0.1,
               test_ratio: float = 0.2) -> Split:
    """The :class:`~recsys_ref.protocol.split.Split` of ``data`` under a named protocol.

    ``valid`` is carved out of the training part (never out of test); there is none when
    ``valid_ratio == 0`` (per-user: when ``ratios`` has two entries).
    """
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; choose one of {PROTOCOLS}")
    if protocol == "per-user":
        return Split.per_user(data, ratios, seed=seed)
    if protocol == "recommenders":
        return Split.recommenders(data, ratio, seed=seed, valid_ratio=valid_ratio)
    if protocol == "leave-last-out":
        return Split.leave_last_out(data, valid=valid_ratio > 0)
    if protocol.startswith("next-item"):
        if not hasattr(data, "ratings"):
            raise ValueError(f"protocol {protocol!r} needs a MovieLens dataset (ratings "
                             "with user_id, item_id, rating, timestamp)")
        return next_item_split(data.ratings,
                               "recbole" if protocol.endswith("recbole") else "sasrec")
    return Split.temporal(data, test_ratio, valid_ratio=valid_ratio)


def run_benchmark(
    model: str,
    dataset: str = "ml-100k",
    protocol: str = "recommenders",
    k: int = 10,
    seed: int = 42,
    out: str | os.PathLike | None = None,
    params: dict | None = None,
    data_dir: str | None = None,
    **split_kw,
) -> dict:
    """Train ``model`` under ``protocol``, evaluate at ``k``; optionally write ``out``.

    Returns:
        the content of ``metrics.json`` as a dict.
    """
    cls = get_model(model)
    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; choose one of {sorted(DATASETS)}")
    ml = DATASETS[dataset](data_dir)
    set_seed(seed)
    split_kw.setdefault("valid_ratio", 0.1 if getattr(cls, "uses_validation", False) else 0.0)
    split = make_split(ml, protocol, seed=seed, **split_kw)
    # fit on train without valid (valid drives early stopping), test with all of train masked
    fit_split = split.tuning if split.valid is not None else split
    train, valid, test = fit_split.train, split.valid, split.test
    est = cls(**check_params(cls, params or {}), seed=seed)
    nu, ni = split.num_users, split.num_items      # a protocol may filter and re-index
    t0 = time.perf_counter()
    est.fit(train, nu, ni, valid=valid)
    fit_s = time.perf_counter() - t0
    pop = np.bincount(train["item"], minlength=ni) / nu
    score = est.score
    if getattr(est, "reads_history", False):       # sequential: history up to the test
        def score(users, est=est, history=split.train):
            return est.score(users, history=history)
    t0 = time.perf_counter()
    metrics, topk, users = evaluate_ranking(
        score, test, nu, ni, k, exclude=split.exclude(),
        item_popularity=pop, return_topk=True,
    )
    eval_s = time.perf_counter() - t0
    result = {
        "model": model,
        "repr": repr(est),
        "dataset": dataset,
        "protocol": protocol,
        "split_name": split.name,
        "split": {key: (list(v) if isinstance(v, tuple) else v) for key, v in split_kw.items()},
        "k": k,
        "seed": seed,
        "params": params or {},
        "metrics": metrics,
        "num_train": len(train),
        "num_valid": 0 if valid is None else len(valid),
        "num_test": len(test),
        "num_eval_users": int(len(users)),
        "fit_seconds": fit_s,
        "eval_seconds": eval_s,
        "epoch_seconds": getattr(est, "epoch_seconds", None),
        "device": str(get_device()),
        "recsys_ref_version": __version__,
    }
    if out is not None:
        ids = (split.user_ids if split.user_ids is not None else ml.user_ids,
               split.item_ids if split.item_ids is not None else ml.item_ids)
        _write(Path(out), result, ids, train, valid, test, topk, users)
    return result


def _write(out: Path, result, ids, train, valid, test, topk, users) -> None:
    user_ids, item_ids = ids
    with atomic_dir(out) as tmp:
        (tmp / "metrics.json").write_text(json.dumps(result, indent=2) + "\n")
        for name, part in (("train", train), ("valid", valid), ("test", test)):
            if part is not None:                      # in the dataset's original ids
                pd.DataFrame({"user_id": user_ids[part["user"].to_numpy()],
                              "item_id": item_ids[part["item"].to_numpy()]}
                             ).to_csv(tmp / f"{name}.csv", index=False)
        kk = topk.shape[1]
        pd.DataFrame({
            "user_id": np.repeat(user_ids[users], kk),
            "item_id": item_ids[topk.numpy().ravel()],
            "rank": np.tile(np.arange(1, kk + 1), len(users)),
        }).to_csv(tmp / "topk.csv", index=False)


def format_table(result: dict) -> str:
    """A plain-text table of one benchmark result."""
    m = result["metrics"]
    k = result["k"]
    rows = [("model", result["repr"]), ("dataset / protocol", f"{result['dataset']} / {result['protocol']}"),
            ("train / valid / test rows", f"{result['num_train']} / {result['num_valid']} / {result['num_test']}"),
            ("evaluated users", str(result["num_eval_users"]))]
    for name in ("precision", "recall", "ndcg", "map", "f1", "hit_rate", "mrr"):
        rows.append((f"{name}@{k}", f"{m[name]:.4f}"))
    rows += [("coverage", f"{m['coverage']:.4f}"), ("avg_popularity", f"{m['avg_popularity']:.4f}"),
             ("fit time (s)", f"{result['fit_seconds']:.2f}")]
    if result.get("epoch_seconds"):
        rows.append(("epoch time (s)", f"{result['epoch_seconds']:.3f}"))
    rows.append(("eval time (s)", f"{result['eval_seconds']:.2f}"))
    width = max(len(a) for a, _ in rows)
    line = "-" * (width + 3 + max(len(b) for _, b in rows))
    return "\n".join([line] + [f"{a:<{width}} | {b}" for a, b in rows] + [line])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m recsys_ref.cli.bench", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, choices=sorted(MODELS))
    ap.add_argument("--dataset", default="ml-100k", choices=sorted(DATASETS))
    ap.add_argument("--protocol", default="recommenders", choices=PROTOCOLS)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--out", default=None, help="folder for metrics.json, train/test/topk.csv")
    ap.add_argument("--data-dir", default=None, help="folder holding the dataset (default $RECSYS_REF_DATA)")
    ap.add_argument("--ratio", type=float, default=0.75, help="train fraction (recommenders protocol)")
    ap.add_argument("--ratios", default="0.8,0.1,0.1", help="train,valid,test (per-user protocol)")
    ap.add_argument("--valid-ratio", type=float, default=None,
                    help="share of train carved out for early stopping (default 0.1 for models that validate, else 0)")
    ap.add_argument("--test-ratio", type=float, default=0.2, help="temporal protocol")
    ap.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                    help="model hyper-parameter, repeatable (e.g. --param embed_dim=64)")
    args = ap.parse_args(argv)
    if args.k <= 0:
        ap.error(f"--k must be positive, got {args.k}")
    params = {}
    for item in args.param:
        if "=" not in item:
            ap.error(f"--param expects KEY=VALUE, got {item!r}")
        key, value = item.split("=", 1)
        params[key] = _parse_value(value)
    try:
        ratios = tuple(float(x) for x in args.ratios.split(","))
    except ValueError:
        ap.error(f"--ratios expects comma-separated numbers, got {args.ratios!r}")
    split_kw = {"ratio": args.ratio, "ratios": ratios, "test_ratio": args.test_ratio}
    if args.valid_ratio is not None:
        split_kw["valid_ratio"] = args.valid_ratio
    try:
        result = run_benchmark(args.model, args.dataset, args.protocol, args.k, args.seed,
                               args.out, params, args.data_dir, **split_kw)
    except (ValueError, TypeError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(format_table(result))
    if args.out:
        print(f"wrote {args.out}/: metrics.json, train.csv, test.csv, topk.csv")
    return 0


if __name__ == "__main__":
    sys.exit(main())
