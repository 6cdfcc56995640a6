"""record_results / read_results round trip through an executed-notebook JSON."""
import json

import pytest

from recsys_ref.book.notebook import RESULTS_MIME, _clean, read_results


def test_clean_rounds_and_rejects_nan():
    assert _clean({"a": 0.1234567891, "b": {"c": 2}}) == {"a": 0.123457, "b": {"c": 2}}
    with pytest.raises(ValueError, match="NaN"):
        _clean({"a": float("nan")})


def test_read_results_collects_from_outputs(tmp_path):
    nb = {"cells": [
        {"cell_type": "code", "outputs": [{"output_type": "display_data",
                                           "data": {RESULTS_MIME: {"ndcg": 0.5}, "text/plain": "x"}}]},
        {"cell_type": "markdown", "source": "hi"},
    ]}
    p = tmp_path / "nb.ipynb"
    p.write_text(json.dumps(nb))
    assert read_results(p) == {"ndcg": 0.5}


def test_record_results_displays_once_and_returns_none(monkeypatch):
    """The numbers reach the output once, as one display with both representations;
    returning them too would make Jupyter echo a second copy from a cell's last line."""
    import IPython.display

    from recsys_ref.book.notebook import record_results

    shown = []
    monkeypatch.setattr(IPython.display, "display",
                        lambda obj, raw=False: shown.append((obj, raw)))
    assert record_results({"ndcg": 0.123456789, "bpr": {"map": 0.5}}) is None
    assert len(shown) == 1
    obj, raw = shown[0]
    assert raw is True
    assert obj[RESULTS_MIME] == {"ndcg": 0.123457, "bpr": {"map": 0.5}}
    assert obj["text/plain"].splitlines() == ["ndcg: 0.1235", "bpr: map=0.5000"]


# --- seed_runs: the seeds table of a chapter, checked against the run in progress ---

def _chapter(tmp_path, source="SEED = 42\nSPLIT_SEED = 42\nEPOCHS = 100  # at most\n"
                              "GRID = [0.1, 0.3]\nNAME = f'{SEED}'\n"):
    nb = {"cells": [{"cell_type": "code", "metadata": {"tags": ["parameters"]},
                     "source": source, "outputs": []}]}
    p = tmp_path / "ch.ipynb"
    p.write_text(json.dumps(nb))
    return p


def _seeds_csv(tmp_path, rows):
    import pandas as pd
    p = tmp_path / "seeds.csv"
    pd.DataFrame(rows, columns=["seed", "name", "metric", "value"]).to_csv(p, index=False)
    return p


ROWS = [(42, "lgcn", "ndcg", 0.47), (42, "lgcn", "map", 0.14), (42, "epochs", "", 50),
        (43, "lgcn", "ndcg", 0.48), (43, "lgcn", "map", 0.15), (43, "epochs", "", 55),
        (44, "lgcn", "ndcg", 0.49), (44, "lgcn", "map", 0.13), (44, "epochs", "", 60)]
LIVE = {"lgcn": {"ndcg": 0.47, "map": 0.14}, "epochs": 50}


def test_notebook_parameters_reads_literal_assignments_only(tmp_path):
    from recsys_ref.book.notebook import notebook_parameters
    assert notebook_parameters(_chapter(tmp_path)) == {
        "SEED": 42, "SPLIT_SEED": 42, "EPOCHS": 100, "GRID": [0.1, 0.3]}
    empty = tmp_path / "none.ipynb"
    empty.write_text(json.dumps({"cells": []}))
    with pytest.raises(ValueError, match="parameters"):
        notebook_parameters(empty)


def test_flatten_results_nested_and_flat():
    from recsys_ref.book.notebook import flatten_results
    f = flatten_results({"a": {"ndcg": 0.1234567}, "n": 3, "label": "x", "ok": True})
    assert f.values.tolist() == [["a", "ndcg", 0.123457], ["n", "", 3.0]]


def test_seed_runs_returns_every_seed_and_summarises(tmp_path):
    from recsys_ref.book.notebook import seed_runs
    from recsys_ref.protocol.stats import seed_summary
    runs = seed_runs(_seeds_csv(tmp_path, ROWS), LIVE, 42, ["lgcn"], ["ndcg", "map"],
                     notebook=_chapter(tmp_path), namespace={"SEED": 42, "EPOCHS": 100})
    assert runs["seed"].tolist() == [42, 43, 44]
    assert runs["ndcg"].tolist() == [0.47, 0.48, 0.49]
    s = seed_summary(runs, by="name", metrics=["ndcg", "map"])
    # mean .48, sample std .01 (hand: deviations -.01, 0, .01; sum of squares 2e-4 / 2)
    assert s.loc["lgcn", "ndcg"] == pytest.approx(0.48)
    assert s.loc["lgcn", "ndcg_std"] == pytest.approx(0.01)
    assert s.loc["lgcn", "n_seeds"] == 3
    flat = seed_runs(_seeds_csv(tmp_path, ROWS), LIVE, 42, ["epochs"], [""])
    assert flat[""].tolist() == [50, 55, 60]


def test_seed_runs_refuses_a_stale_or_missing_table(tmp_path):
    from recsys_ref.book.notebook import seed_runs
    csv = _seeds_csv(tmp_path, ROWS)
    stale = {"lgcn": {"ndcg": 0.4701, "map": 0.14}}
    with pytest.raises(ValueError, match="stale.*ndcg 0.470000.*0.470100"):
        seed_runs(csv, stale, 42, ["lgcn"], ["ndcg"])
    with pytest.raises(ValueError, match="no run with seed 7"):
        seed_runs(csv, LIVE, 7, ["lgcn"], ["ndcg"])
    with pytest.raises(ValueError, match="no 'recall' of 'lgcn'"):
        seed_runs(csv, LIVE, 42, ["lgcn"], ["recall"])
    with pytest.raises(FileNotFoundError, match="chapter_seeds.py chapters/ch.ipynb"):
        seed_runs(tmp_path / "absent.csv", LIVE, 42, ["lgcn"], ["ndcg"],
                  notebook=_chapter(tmp_path), namespace={"EPOCHS": 100})


def test_seed_runs_is_silent_in_quick_runs_and_inside_the_seeds_script(tmp_path, monkeypatch):
    from recsys_ref.book.notebook import SEED_RUN_ENV, seed_runs
    csv = _seeds_csv(tmp_path, ROWS)
    stale = {"lgcn": {"ndcg": 0.1, "map": 0.1}}
    # a parameter other than its default: the table does not describe this run
    assert seed_runs(csv, stale, 42, ["lgcn"], ["ndcg"], notebook=_chapter(tmp_path),
                     namespace={"EPOCHS": 1}) is None
    # another SEED is not a quick run: the check still applies
    with pytest.raises(ValueError, match="stale"):
        seed_runs(csv, stale, 43, ["lgcn"], ["ndcg"], notebook=_chapter(tmp_path),
                  namespace={"SEED": 43, "EPOCHS": 100})
    monkeypatch.setenv(SEED_RUN_ENV, "1")
    assert seed_runs(csv, stale, 42, ["lgcn"], ["ndcg"]) is None
