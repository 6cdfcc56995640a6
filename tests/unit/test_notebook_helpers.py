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
