"""``benchmarks/chapter_seeds.py`` on a two-cell notebook: the chapter's own seed comes from
its committed outputs, the other seeds from executing it with only ``SEED`` changed, the
file is resumable, and :func:`seed_runs` reads back what the script wrote."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd
import pytest

pytest.importorskip("papermill")
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import chapter_seeds  # noqa: E402

from recsys_ref.book.notebook import RESULTS_MIME, seed_runs  # noqa: E402


def _notebook(path: Path) -> Path:
    cells = [
        {"cell_type": "code", "id": "params", "metadata": {"tags": ["parameters"]},
         "execution_count": 1,
         "source": "SPLIT_SEED = 42\nSEED = 42\n", "outputs": []},
        {"cell_type": "code", "id": "record", "metadata": {}, "execution_count": 2,
         "source": ("from recsys_ref.book.notebook import record_results\n"
                    "record_results({'m': {'ndcg': SEED / 100}, 'split': SPLIT_SEED})"),
         # the committed outputs of the seed-42 run
         "outputs": [{"output_type": "display_data", "metadata": {},
                      "data": {RESULTS_MIME: {"m": {"ndcg": 0.42}, "split": 42},
                               "text/plain": "m: ndcg=0.4200"}}]},
    ]
    nb = {"cells": cells, "nbformat": 4, "nbformat_minor": 5,
          "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3",
                                      "language": "python"},
                       "language_info": {"name": "python"}}}
    path.write_text(json.dumps(nb))
    return path


def test_chapter_seeds_runs_other_seeds_and_resumes(tmp_path, monkeypatch):
    chapter = _notebook(tmp_path / "ch.ipynb")
    out = tmp_path / "seeds.csv"
    assert chapter_seeds.main([str(chapter), "--seeds", "43", "--out", str(out)]) == 0
    table = pd.read_csv(out, keep_default_na=False)
    got = {(r.seed, r.name, r.metric): r.value for r in table.itertuples()}
    # seed 42 from the committed outputs, seed 43 executed: ndcg = SEED / 100, split fixed
    assert got == {(42, "m", "ndcg"): 0.42, (42, "split", ""): 42.0,
                   (43, "m", "ndcg"): 0.43, (43, "split", ""): 42.0}
    # the chapter itself was not modified
    assert json.loads(chapter.read_text())["cells"][1]["outputs"][0]["data"][RESULTS_MIME] \
        == {"m": {"ndcg": 0.42}, "split": 42}
    # resumable: a seed in the file is not executed again
    monkeypatch.setattr(chapter_seeds, "run_seed",
                        lambda *a: pytest.fail("seed 43 was executed again"))
    assert chapter_seeds.main([str(chapter), "--seeds", "43", "--out", str(out)]) == 0
    runs = seed_runs(out, {"m": {"ndcg": 0.42}}, 42, ["m"], ["ndcg"])
    assert runs["ndcg"].tolist() == [0.42, 0.43]


def test_chapter_seeds_needs_a_seed_parameter(tmp_path):
    chapter = _notebook(tmp_path / "ch.ipynb")
    nb = json.loads(chapter.read_text())
    nb["cells"][0]["source"] = "SPLIT_SEED = 42\n"
    chapter.write_text(json.dumps(nb))
    with pytest.raises(SystemExit):
        chapter_seeds.main([str(chapter), "--out", str(tmp_path / "x.csv")])
