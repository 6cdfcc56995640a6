"""Execute chapter notebooks in place with papermill (each with its default parameters),
on the best device available, and record device, wall time and headline results.

    python tools/run_chapters.py chapters/*.ipynb [-p KEY VALUE ...] [--log benchmarks/book_runs.csv]

Each notebook is executed into a temporary file and moved over the original only when it
succeeded, so a failed run never leaves a half-executed chapter behind.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import nbformat
import papermill as pm
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from recsys_ref.book.notebook import read_results  # noqa: E402
from recsys_ref.data import atomic_write  # noqa: E402
from recsys_ref.train import get_device  # noqa: E402


#: the kernel's matplotlib backend: the inline one, so that ``plt.show()`` writes the figure
#: into the notebook. A non-interactive backend inherited from the caller (``MPLBACKEND=Agg``,
#: as set for the tests) would leave every figure cell without output.
INLINE_BACKEND = "module://matplotlib_inline.backend_inline"


def cpu_name() -> str:
    """The CPU's model name and core count, e.g. ``AMD EPYC (2 cores)``."""
    model = platform.processor() or platform.machine() or "cpu"
    try:
        with open("/proc/cpuinfo") as fh:
            model = next(line.split(":", 1)[1].strip() for line in fh if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{model} ({os.cpu_count()} cores)"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("notebooks", nargs="+")
    ap.add_argument("-p", nargs=2, action="append", default=[], metavar=("KEY", "VALUE"),
                    help="parameter passed to every chapter (papermill -p)")
    ap.add_argument("--log", default="benchmarks/book_runs.csv",
                    help="append one row per chapter (device, seconds, results)")
    args = ap.parse_args()
    os.environ["MPLBACKEND"] = INLINE_BACKEND        # inherited by the kernels started below
    params = {k: json.loads(v) if v[:1] in "[{0123456789-tf" else v for k, v in args.p}
    device = get_device()
    name = torch.cuda.get_device_name(0) if device.type == "cuda" else cpu_name()
    rows = []
    failed = []
    for nb in args.notebooks:
        path = Path(nb)
        t0 = time.perf_counter()
        try:
            executed = pm.execute_notebook(str(path), None, parameters=params or None,
                                           cwd=str(path.parent), kernel_name="python3",
                                           progress_bar=False)
        except Exception as err:  # report every failing chapter, keep the original file
            failed.append(path.name)
            msg = str(err).splitlines()[0] if str(err) else ""
            print(f"FAILED {path.name}: {type(err).__name__}: {msg}")
            continue
        seconds = time.perf_counter() - t0
        # the executed notebook replaces the chapter in one step (never half-written)
        atomic_write(path, lambda fh: nbformat.write(executed, fh), mode="w")
        results = read_results(path)
        print(f"{path.name:<40} {seconds:7.1f} s  {device.type} {results}")
        rows.append({"date": datetime.now(timezone.utc).strftime("%Y-%m-%d"), "chapter": path.stem,
                     "device": f"{device.type}:{name}", "seconds": round(seconds, 1),
                     "parameters": json.dumps(params), "results": json.dumps(results)})
    if args.log and rows:
        log = Path(args.log)
        new = not log.exists()
        with open(log, "a", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=list(rows[0]))
            if new:
                w.writeheader()
            w.writerows(rows)
    if failed:
        print(f"{len(failed)} chapter(s) failed: {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
