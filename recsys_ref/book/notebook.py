r"""Helpers for chapter notebooks: record headline results in a form tests can read back.

The last code cell of every chapter calls :func:`record_results`, which shows the numbers
as a table and stores them in the cell output under the MIME type
:data:`RESULTS_MIME`. :func:`read_results` reads them back from an executed notebook, so
tests and ``tools/run_chapters.py`` can check and collect them without scrapbook.

:func:`record_results` displays the numbers itself and returns ``None``: a function that
both displayed its table and returned the dict showed every headline twice when called as
the last line of a cell, once as its display and once as the cell's echoed return value.

A chapter whose time budget allows one seed of its trained models shows the spread over
several with :func:`seed_runs`: ``benchmarks/chapter_seeds.py`` executes the chapter again
with other values of its ``SEED`` parameter and keeps each run's recorded results in a CSV;
:func:`seed_runs` reads that file back and refuses it (``ValueError``) when its row for the
chapter's own seed differs from the numbers the chapter has just computed, so a table left
behind by older code is never shown as the current one.

Used in: every chapter's last cell; :func:`seed_runs` in chapters 6 and 7.
"""
from __future__ import annotations

import ast
import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

__all__ = ["RESULTS_MIME", "SEED_RUN_ENV", "record_results", "read_results",
           "notebook_parameters", "flatten_results", "seed_runs"]

RESULTS_MIME = "application/vnd.recsys-ref.results+json"


def _clean(value):
    if isinstance(value, Mapping):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if hasattr(value, "item"):  # numpy / torch scalars
        value = value.item()
    if isinstance(value, float):
        if math.isnan(value):
            raise ValueError("a recorded result is NaN")
        return round(value, 6)
    return value


def record_results(results: Mapping[str, object], digits: int = 4) -> None:
    """Display ``results`` (flat ``{name: number}`` or nested one level) and store them.

    The output carries two representations: :data:`RESULTS_MIME` with the cleaned dict
    (floats rounded to 6 digits, read back by :func:`read_results`) and ``text/plain``,
    one line per name with ``digits`` decimals. Returns ``None``, so the last line of a
    cell shows the numbers once (a returned value would be echoed by Jupyter as a second
    copy).

    Raises:
        ValueError: a value is NaN.
    """
    data = _clean(results)
    lines = []
    for key, value in data.items():
        if isinstance(value, dict):
            inner = ", ".join(f"{k}={v:.{digits}f}" if isinstance(v, float) else f"{k}={v}"
                              for k, v in value.items())
            lines.append(f"{key}: {inner}")
        else:
            lines.append(f"{key}: {value:.{digits}f}" if isinstance(value, float)
                         else f"{key}: {value}")
    try:
        from IPython.display import display
    except ImportError:  # pragma: no cover - outside Jupyter
        print("\n".join(lines))
        return None
    display({RESULTS_MIME: data, "text/plain": "\n".join(lines)}, raw=True)
    return None


def read_results(notebook: str | Path) -> dict:
    """The dict stored by :func:`record_results` in an executed notebook (``{}`` if none)."""
    nb = json.loads(Path(notebook).read_text())
    found: dict = {}
    for cell in nb.get("cells", []):
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            if RESULTS_MIME in data:
                found.update(data[RESULTS_MIME])
    return found


#: set (to any value) by ``benchmarks/chapter_seeds.py`` in the kernels it starts: a chapter
#: executed to *produce* the seeds table does not read it back.
SEED_RUN_ENV = "RECSYS_REF_SEED_RUN"


def notebook_parameters(notebook: str | Path) -> dict:
    """The literal values assigned in a notebook's cell tagged ``parameters``.

    Only plain assignments of literals (``NUM_EPOCHS = 100``, ``GRID = [0.1, 0.3]``) are
    read; anything else in the cell is skipped. These are the chapter's defaults, the
    values papermill's ``-p`` overrides.
    """
    nb = json.loads(Path(notebook).read_text())
    for cell in nb.get("cells", []):
        if "parameters" in cell.get("metadata", {}).get("tags", []):
            source = cell["source"]
            tree = ast.parse("".join(source) if isinstance(source, list) else source)
            found = {}
            for node in tree.body:
                if isinstance(node, ast.Assign):
                    try:
                        value = ast.literal_eval(node.value)
                    except ValueError:
                        continue
                    for target in node.targets:
                        if isinstance(target, ast.Name):
                            found[target.id] = value
            return found
    raise ValueError(f"{notebook} has no cell tagged 'parameters'")


def flatten_results(results: Mapping[str, object]) -> pd.DataFrame:
    """Recorded results as rows ``name, metric, value``: ``{"bpr": {"ndcg": .46}}`` gives
    ``("bpr", "ndcg", .46)``, a flat number ``{"epochs": 50}`` gives ``("epochs", "", 50)``.
    Non-numeric values are left out."""
    rows = []
    for name, value in _clean(results).items():
        inner = value if isinstance(value, dict) else {"": value}
        for metric, v in inner.items():
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                rows.append({"name": name, "metric": metric, "value": float(v)})
    return pd.DataFrame(rows, columns=["name", "metric", "value"])


def seed_runs(
    path: str | Path,
    live: Mapping[str, object],
    seed: int,
    names: Sequence[str],
    metrics: Sequence[str],
    notebook: str | Path | None = None,
    namespace: Mapping[str, object] | None = None,
    atol: float = 2e-6,
) -> pd.DataFrame | None:
    """The runs of a chapter with several seeds, checked against the run in progress.

    Args:
        path: the CSV written by ``benchmarks/chapter_seeds.py`` (columns ``seed, name,
            metric, value``).
        live: the results this execution will record, as passed to
            :func:`record_results` (``{name: {metric: value}}``).
        seed: this execution's seed (the chapter's ``SEED``).
        names, metrics: what to return, e.g. ``["lightgcn"]`` and ``["ndcg", "map"]``.
        notebook, namespace: the chapter's file and ``globals()``; when both are given and a
            parameter differs from the notebook's default (a quick test run), the table,
            computed with the defaults, does not describe this run and ``None`` is returned.
        atol: largest difference allowed between the file's row for ``seed`` and ``live``
            (both are rounded to 6 decimals when recorded).

    Returns:
        One row per (``name``, ``seed``) with a column per metric, sorted by name and seed,
        ready for :func:`recsys_ref.protocol.stats.seed_summary` (``by="name"``); ``None``
        in a quick test run or inside ``chapter_seeds.py`` itself.

    Raises:
        FileNotFoundError: no such file (the message says which command writes it).
        ValueError: the file lacks ``seed``, a name or a metric, or its row for ``seed``
            differs from ``live``: the table is older than the code that just ran.
    """
    if os.environ.get(SEED_RUN_ENV):
        return None
    if notebook is not None and namespace is not None:
        defaults = notebook_parameters(notebook)
        if any(k in namespace and namespace[k] != v for k, v in defaults.items()
               if k != "SEED"):
            return None
    path = Path(path)
    fix = (f"run `python benchmarks/chapter_seeds.py chapters/{Path(notebook).name}`"
           if notebook is not None else "run benchmarks/chapter_seeds.py on the chapter")
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist: {fix} to write it")
    table = pd.read_csv(path, keep_default_na=False)
    missing = {"seed", "name", "metric", "value"} - set(table.columns)
    if missing:
        raise ValueError(f"{path} lacks the column(s) {sorted(missing)}: {fix} to rewrite it")
    wide = table.pivot_table(index=["name", "seed"], columns="metric", values="value",
                             aggfunc="first")
    if seed not in set(table["seed"]):
        raise ValueError(f"{path} has no run with seed {seed} (it has "
                         f"{sorted(set(table['seed']))}): {fix} to add it")
    flat = flatten_results(live)
    for name in names:
        for metric in metrics:
            if (name, seed) not in wide.index or metric not in wide.columns:
                raise ValueError(f"{path} has no {metric!r} of {name!r} for seed {seed}: "
                                 f"{fix} to rewrite it")
            mine = flat[(flat["name"] == name) & (flat["metric"] == metric)]["value"]
            if mine.empty:
                raise ValueError(f"this run recorded no {metric!r} of {name!r}")
            theirs = float(wide.loc[(name, seed), metric])
            if abs(float(mine.iloc[0]) - theirs) > atol:
                raise ValueError(
                    f"{path} is stale: its seed-{seed} run gives {metric} {theirs:.6f} for "
                    f"{name!r}, this run {float(mine.iloc[0]):.6f}; {fix} again")
    out = wide.loc[list(names), list(metrics)].reset_index()
    out["seed"] = out["seed"].astype(int)
    out.columns.name = None
    return out.sort_values(["name", "seed"], kind="mergesort").reset_index(drop=True)
