"""Graph neural architecture search (chapter 12), at the scale of a benchmark.

    python benchmarks/nas.py [--dataset ml-100k|ml-1m] [--budget 40]
        [--search-seeds 0 1 2] [--layers none lightgcn gcn sage gat gin]
        [--max-depth 4] [--dims 32 64 128] [--trial-epochs 12] [--quick]

Protocols. ``ml-100k``: chapter 6's (Microsoft Recommenders' stratified 75/25 split,
seed 42; 10 % of each user's training rows carved out for validation). ``ml-1m``:
RecBole-GNN's general protocol (ratings >= 3, a random 8:1:1 split per user, seed 42).
Both: top-10 over the whole catalogue, training items masked.

1. Every strategy of :func:`recsys_ref.nas.search.standard_strategies` (random,
   regularised evolution, NSGA-II, TPE with ``multivariate=True, group=True``,
   REINFORCE) searches the space of :func:`recsys_ref.nas.builder.graph_space` with the
   same ``--budget`` of trials, once per search seed. A trial trains ``--trial-epochs``
   epochs (batch ``--trial-batch``, lr ``--trial-lr``) on the training part and scores
   the validation NDCG@10. Every fit is appended to ``benchmarks/.nas_cache/<dataset>.jsonl``
   when it finishes: an interrupted run, started again, repeats no finished fit.
2. The ``--top`` best distinct architectures are trained again with ``--candidate-seeds``
   seeds at the trial fidelity; the best mean is selected.
3. The selected architecture and chapter 6's LightGCN (its softmax configuration, a point
   of the same space) are trained with chapter 6's recipe (lr 2e-2, batch 4096, early
   stopping on validation, refit on all of the training split for the selected epochs)
   with each ``--final-seeds``, and rank the test split once per seed; EASE (lambda chosen
   on validation) beside them.

Writes ``benchmarks/nas.md`` (``nas-ml-1m.md`` for ML-1M) and a CSV of the trials.
``--quick``: 2 strategies, 3 trials, 1 epoch, into the cache folder (checks the script).
"""
from __future__ import annotations

import argparse
import platform
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from recsys_ref.data import atomic_write, load_movielens  # noqa: E402
from recsys_ref.models import EASE  # noqa: E402
from recsys_ref.nas.builder import (LAYERS, LIGHTGCN_POINT, build_model,  # noqa: E402
                                    describe, graph_space)
from recsys_ref.nas.search import (TrainingObjective, TrialStore, compare,  # noqa: E402
                                   refit_and_test, standard_strategies)
from recsys_ref.protocol.split import Split, evaluate  # noqa: E402
from recsys_ref.protocol.stats import format_mean_std, paired_test  # noqa: E402

HERE = Path(__file__).resolve().parent
CACHE = HERE / ".nas_cache"
METRICS = ["ndcg", "precision", "recall", "map"]
EASE_GRID = [100.0, 250.0, 500.0, 1000.0, 2000.0, 4000.0]


def load_split(dataset: str) -> Split:
    if dataset == "ml-100k":
        return Split.recommenders(load_movielens("ml-100k"), seed=42, valid_ratio=0.1)
    ml = load_movielens("ml-1m")
    ratings = ml.ratings[ml.ratings["rating"] >= 3]
    return Split.per_user(ratings, (0.8, 0.1, 0.1), seed=42, num_users=ml.num_users,
                          num_items=ml.num_items)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dataset", default="ml-100k", choices=["ml-100k", "ml-1m"])
    ap.add_argument("--budget", type=int, default=40)
    ap.add_argument("--search-seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--layers", nargs="+", default=list(LAYERS))
    ap.add_argument("--max-depth", type=int, default=4)
    ap.add_argument("--dims", type=int, nargs="+", default=[32, 64, 128])
    ap.add_argument("--trial-epochs", type=int, default=12)
    ap.add_argument("--trial-batch", type=int, default=8192)
    ap.add_argument("--trial-lr", type=float, default=3e-2)
    ap.add_argument("--population", type=int, default=8)
    ap.add_argument("--top", type=int, default=3)
    ap.add_argument("--candidate-seeds", type=int, default=3)
    ap.add_argument("--final-seeds", type=int, nargs="+", default=[42, 43, 44])
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--cache", type=Path, default=None,
                    help=f"folder of the trial store (default {CACHE})")
    ap.add_argument("--quick", action="store_true", help="a tiny run that checks the script")
    args = ap.parse_args(argv)
    warnings.filterwarnings("ignore", message=".*ExperimentalWarning.*")
    if args.threads:
        torch.set_num_threads(args.threads)
    name = args.dataset
    out = HERE / ("nas" if name == "ml-100k" else f"nas-{name}")
    cache = args.cache if args.cache is not None else CACHE
    if args.quick:
        args.budget, args.search_seeds, args.trial_epochs = 3, [0], 1
        args.top, args.candidate_seeds, args.final_seeds = 1, 2, [42]
        args.layers = ["none", "lightgcn"]
        cache.joinpath("quick").mkdir(parents=True, exist_ok=True)
        store_path = cache / "quick" / f"{name}.jsonl"
        out = cache / "quick" / "nas"
    else:
        store_path = cache / f"{name}.jsonl"
    split = load_split(name)
    print(split, flush=True)
    space = graph_space(layers=tuple(args.layers), depths=(1, args.max_depth),
                        embed_dims=tuple(args.dims))
    fidelity = dict(num_epochs=args.trial_epochs, batch_size=args.trial_batch,
                    lr=args.trial_lr, eval_every=args.trial_epochs, patience=None)
    store = TrialStore(store_path)
    print(f"trial store {store_path}: {len(store)} fits already there", flush=True)
    objective = TrainingObjective(space, split.tuning.train, split.valid, split.num_users,
                                  split.num_items, fidelity, seeds=(0,), store=store,
                                  name=f"{name}-trial")
    strategies = standard_strategies(space, population=args.population,
                                     sample=max(2, args.population // 3))
    if args.quick:
        strategies = {k: strategies[k] for k in ("random", "evolution")}
    t0 = time.perf_counter()
    runs = compare(strategies, objective, args.budget, args.search_seeds, progress=True)
    wall = time.perf_counter() - t0

    # 1. the strategies
    last = runs[runs["trial"] == args.budget].set_index(["strategy", "seed"])["best"]
    lines = [f"# Graph architecture search, {name}\n",
             f"`python benchmarks/nas.py --dataset {name} --budget {args.budget} "
             f"--search-seeds {' '.join(map(str, args.search_seeds))} --layers "
             f"{' '.join(args.layers)} --max-depth {args.max_depth} --dims "
             f"{' '.join(map(str, args.dims))} --trial-epochs {args.trial_epochs}`; "
             f"{split!r}; torch {torch.__version__}, "
             f"{platform.processor() or platform.machine()}, "
             f"{torch.get_num_threads()} threads.\n",
             f"## Best validation NDCG@10 after {args.budget} trials "
             f"(mean ± std over search seeds {args.search_seeds})\n",
             "| strategy | best valid NDCG@10 | − random, per seed | paired t vs random | "
             "CPU-h charged |", "|---|---|---|---|---|"]
    base = last.loc["random"].sort_index()
    for strat in strategies:
        v = last.loc[strat].sort_index()
        diff = "  ".join(f"{d:+.4f}" for d in v - base) if strat != "random" else "—"
        test = (str(paired_test(v.to_numpy(), base.to_numpy()))
                if strat != "random" and len(v) > 1 else "—")
        hours = runs.loc[runs["strategy"] == strat, "seconds"].sum() / 3600
        lines.append(f"| {strat} | {format_mean_std(v.mean(), v.std(ddof=1) if len(v) > 1 else 0)}"
                     f" | {diff} | {test} | {hours:.2f} |")
    fits = store.frame
    fits = fits[fits["key"].str.startswith(f"{name}-trial|")]
    lines.append(f"\n{len(runs)} trials asked, {objective.calls} fits trained in this run, "
                 f"{len(store)} in the store; wall time of the searches {wall / 3600:.2f} h.\n")

    # 2. rescoring the best architectures with several seeds
    found = fits[fits["seed"] == 0].copy()
    found["architecture"] = found["point"].map(space.key)
    ranked = found.sort_values("value", ascending=False).drop_duplicates("architecture")
    candidates = list(ranked["point"].head(args.top))
    lines += [f"## The {args.top} best architectures, {args.candidate_seeds} training seeds "
              "at the trial fidelity\n", "| architecture | search score | mean ± std |",
              "|---|---|---|"]
    means = []
    for point in candidates:
        vals = [objective.evaluate(point, s)["value"] for s in range(args.candidate_seeds)]
        means.append(np.mean(vals))
        lines.append(f"| {describe(point)} | {vals[0]:.4f} | "
                     f"{format_mean_std(np.mean(vals), np.std(vals, ddof=1))} |")
    chosen = candidates[int(np.argmax(means))]
    print("selected:", describe(chosen), flush=True)

    # 3. the test, once per seed
    recipe = dict(lr=2e-2, batch_size=4096, num_epochs=80, eval_every=5, patience=4)
    if args.quick:
        recipe.update(num_epochs=2, eval_every=1)

    def builder(point):
        def build(seed, **over):
            return build_model(point, space, **{**recipe, "seed": seed, **over})
        return build

    results = {"searched: " + describe(chosen): refit_and_test(builder(chosen), split,
                                                               args.final_seeds),
               "LightGCN (chapter 6)": refit_and_test(builder(LIGHTGCN_POINT), split,
                                                      args.final_seeds)}
    best_l2, best_v = None, -1.0
    for l2 in EASE_GRID:
        m = EASE(l2=l2).fit(split.tuning.train, split.num_users, split.num_items)
        v = evaluate(m, split.tuning, k=10, metrics=["ndcg"])["ndcg"]
        if v > best_v:
            best_l2, best_v = l2, v
    ease = EASE(l2=best_l2).fit(split.train, split.num_users, split.num_items)
    results[f"EASE (lambda {best_l2:g})"] = pd.DataFrame(
        [evaluate(ease, split, k=10, metrics=METRICS)], index=pd.Index([0], name="seed"))
    lines += [f"\n## Test (once per seed; seeds {args.final_seeds}), k = 10\n",
              "| model | " + " | ".join(f"{m}@10" for m in METRICS) + " | epochs |",
              "|---|" + "---|" * (len(METRICS) + 1)]
    for label, f in results.items():
        cells = [format_mean_std(f[m].mean(), f[m].std(ddof=1) if len(f) > 1 else 0.0)
                 for m in METRICS]
        ep = (" ".join(str(int(e)) + ("*" if c else "") for e, c in
                       zip(f["epochs"], f["at_cap"])) if "epochs" in f else "—")
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {ep} |")
    a, b = results[next(iter(results))], results["LightGCN (chapter 6)"]
    if len(a) > 1:
        lines.append(f"\nNDCG@10, searched − LightGCN, paired t over seeds: "
                     f"{paired_test(a['ndcg'].to_numpy(), b['ndcg'].to_numpy())}; "
                     "`*`: the selection run ended at its epoch cap.")
    md = "\n".join(lines) + "\n"
    atomic_write(out.with_suffix(".md"), lambda fh: fh.write(md), mode="w")
    atomic_write(out.with_suffix(".csv"), lambda fh: runs.to_csv(fh, index=False), mode="w")
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
