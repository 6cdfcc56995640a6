r"""Helpers for chapter notebooks: record headline results in a form tests can read back.

The last code cell of every chapter calls :func:`record_results`, which shows the numbers
as a table and stores them in the cell output under the MIME type
:data:`RESULTS_MIME`. :func:`read_results` reads them back from an executed notebook, so
tests and ``tools/run_chapters.py`` can check and collect them without scrapbook.

:func:`record_results` displays the numbers itself and returns ``None``: a function that
both displayed its table and returned the dict showed every headline twice when called as
the last line of a cell, once as its display and once as the cell's echoed return value.

Used in: every chapter's last cell.
"""
from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path

__all__ = ["RESULTS_MIME", "record_results", "read_results"]

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
