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
