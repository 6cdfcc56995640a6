"""Execute a chapter again with other seeds and keep every run's recorded results.

    python benchmarks/chapter_seeds.py chapters/06_graph_convolution.ipynb [--seeds 43 44]

A chapter's CPU time budget allows one seed of its trained models; this script supplies
the others, so that the chapter can show mean ± std over seeds. The chapter's own seed
(its ``SEED`` default) is read from its committed outputs, every other seed is executed
with papermill into a temporary notebook (the chapter file is not touched) with only
``SEED`` changed. The chapter must keep its split when ``SEED`` changes — its own
``SPLIT_SEED`` (chapters 6 and 7) or a deterministic protocol (chapter 10) — so the runs
differ only in the models' initialisation and sampling.

The results go to ``benchmarks/seeds/<chapter>.csv``, one row per recorded number
(``seed, name, metric, value``), rewritten atomically after each seed; a seed already in
the file is not run again (an interrupted run loses at most the seed in flight), unless
``--force``. The chapter reads the file with :func:`recsys_ref.book.notebook.seed_runs`,
which refuses it when its row for the chapter's seed differs from what the chapter has just
computed: after a change of the chapter or the package, run this script again with
``--force``.

Not part of ``make bench``: each seed costs one execution of the chapter (about five
minutes on 2 CPU cores for chapters 6 and 7).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from recsys_ref.book.notebook import (SEED_RUN_ENV, flatten_results,  # noqa: E402
                                      notebook_parameters, read_results)
from recsys_ref.data import atomic_write  # noqa: E402

HERE = Path(__file__).resolve().parent
INLINE_BACKEND = "module://matplotlib_inline.backend_inline"


def run_seed(chapter: Path, seed: int) -> dict:
    """Execute ``chapter`` with ``SEED = seed`` into a temporary file; its recorded results."""
    import papermill as pm

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / chapter.name
        pm.execute_notebook(str(chapter), str(out), parameters={"SEED": seed},
                            cwd=str(chapter.parent), kernel_name="python3",
                            progress_bar=False)
        return read_results(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("chapter", type=Path)
    ap.add_argument("--seeds", type=int, nargs="+", default=None,
                    help="seeds besides the chapter's own (default: SEED+1 and SEED+2)")
    ap.add_argument("--out", type=Path, default=None,
                    help="CSV to write (default benchmarks/seeds/<chapter>.csv)")
    ap.add_argument("--force", action="store_true",
                    help="run every seed again, even those already in the file")
    args = ap.parse_args(argv)
    chapter = args.chapter.resolve()
    if not chapter.exists():
        ap.error(f"{chapter} does not exist")
    params = notebook_parameters(chapter)
    if "SEED" not in params:
        ap.error(f"{chapter.name} has no SEED parameter to change")
    own = int(params["SEED"])
    seeds = args.seeds if args.seeds is not None else [own + 1, own + 2]
    out = args.out or HERE / "seeds" / f"{chapter.stem}.csv"
    out.parent.mkdir(parents=True, exist_ok=True)

    recorded = read_results(chapter)
    if not recorded:
        ap.error(f"{chapter.name} has no recorded results: execute it first "
                 "(python tools/run_chapters.py)")
    frames = {own: flatten_results(recorded)}
    if out.exists() and not args.force:
        old = pd.read_csv(out, keep_default_na=False)
        for s, frame in old.groupby("seed"):
            if int(s) != own:
                frames[int(s)] = frame.drop(columns="seed")

    def save() -> None:
        table = pd.concat([f.assign(seed=s) for s, f in sorted(frames.items())])
        table = table[["seed", "name", "metric", "value"]]
        atomic_write(out, lambda fh: table.to_csv(fh, index=False), mode="w")

    save()
    # inherited by the kernels started below; restored on the way out
    kernel_env = {SEED_RUN_ENV: "1", "MPLBACKEND": INLINE_BACKEND}
    saved = {k: os.environ.get(k) for k in kernel_env}
    os.environ.update(kernel_env)
    try:
        for seed in seeds:
            if seed in frames and not args.force:
                print(f"seed {seed}: already in {out.name}")
                continue
            t0 = time.perf_counter()
            frames[seed] = flatten_results(run_seed(chapter, seed))
            save()
            print(f"seed {seed}: {time.perf_counter() - t0:.0f} s", flush=True)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    print(f"wrote {out} (seeds {sorted(frames)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
