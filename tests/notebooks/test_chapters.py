"""Every chapter runs end to end with its tiny parameters (papermill), and is well formed.

The tiny parameters live in each notebook's metadata (``recsys_ref.tiny_parameters``), so a
chapter and its CI settings change together. nbval (committed outputs re-checked) runs on
the cheap chapters in CI (``ci_nbval: true``) and on every chapter in ``make test-full``.
"""
from __future__ import annotations

import json

import papermill as pm
import pytest

from recsys_ref.book.notebook import read_results

from .chapters import CHAPTERS, meta

IDS = [p.stem for p in CHAPTERS]


def test_there_are_chapters():
    assert len(CHAPTERS) >= 1


@pytest.mark.parametrize("path", CHAPTERS, ids=IDS)
def test_chapter_is_well_formed(path):
    nb = json.loads(path.read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code" and "".join(c["source"]).strip()]
    tags = [set(c.get("metadata", {}).get("tags", [])) for c in code]
    assert any("parameters" in t for t in tags), "no cell tagged 'parameters'"
    counts = [c.get("execution_count") for c in code]
    assert None not in counts, "cells never executed: run tools/run_chapters.py"
    assert counts == sorted(counts), "outputs were not produced top to bottom"
    assert not [o for c in code for o in c.get("outputs", []) if o["output_type"] == "error"]
    assert any("nbval-check-output" in t for t in tags), "no output checked by nbval"
    assert read_results(path), "the chapter records no results (record_results)"
    assert "tiny_parameters" in meta(path), "metadata lacks recsys_ref.tiny_parameters"
    first = "".join(nb["cells"][0]["source"])
    assert first.startswith("# "), "the first cell must be the chapter title"
    # every cell that shows a figure unconditionally has one in its committed output (a
    # chapter executed with a non-interactive matplotlib backend, e.g. MPLBACKEND=Agg, has
    # none); cells that start with an `if` may skip their figure
    blank = [i for i, c in enumerate(nb["cells"]) if c["cell_type"] == "code"
             and "plt.show()" in "".join(c["source"])
             and not "".join(c["source"]).lstrip().startswith("if ")
             and not any("image/png" in o.get("data", {}) for o in c.get("outputs", []))]
    assert not blank, f"cells {blank} call plt.show() but hold no image: re-run tools/run_chapters.py"


@pytest.mark.notebook
@pytest.mark.parametrize("path", CHAPTERS, ids=IDS)
def test_chapter_runs_with_tiny_parameters(path, tmp_path, data_dir):
    params = meta(path).get("tiny_parameters", {})
    out = tmp_path / path.name
    pm.execute_notebook(str(path), str(out), parameters=params, cwd=str(path.parent),
                        kernel_name="python3", progress_bar=False)
    results = read_results(out)
    assert results, "the chapter recorded no results"
    assert set(results) == set(read_results(path)), "recorded result names changed"
