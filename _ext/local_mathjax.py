"""Serve MathJax 3 from the book itself, so equations render with no network.

MathJax's files come from the PyPI package ``django-static-mathjax`` (a plain copy of
MathJax 3.2.2; nothing of Django is imported). ``mathjax_path`` points at
``_static/mathjax/tex-chtml.js`` and, when the HTML build finishes, MathJax's ``es5``
bundle (scripts and fonts) is copied there.
"""
from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

from sphinx.application import Sphinx
from sphinx.errors import ExtensionError


def mathjax_es5() -> Path:
    """Folder of the installed MathJax 3 ``es5`` bundle."""
    spec = importlib.util.find_spec("mathjax")
    if spec is None or not spec.submodule_search_locations:
        raise ExtensionError(
            "MathJax files not found: install the book extras (pip install -e '.[book]'), "
            "which include django-static-mathjax"
        )
    es5 = Path(list(spec.submodule_search_locations)[0]) / "static" / "mathjax" / "es5"
    if not (es5 / "tex-chtml.js").is_file():
        raise ExtensionError(f"{es5}/tex-chtml.js missing: reinstall django-static-mathjax")
    return es5


def _on_config_inited(app: Sphinx, config) -> None:
    mathjax_es5()  # fail early, with the fix in the message
    config.mathjax_path = "mathjax/tex-chtml.js"


def _on_build_finished(app: Sphinx, exception) -> None:
    if exception is None and app.builder.format == "html":
        shutil.copytree(mathjax_es5(), Path(app.outdir) / "_static" / "mathjax", dirs_exist_ok=True)


def setup(app: Sphinx) -> dict:
    app.connect("config-inited", _on_config_inited, priority=900)
    app.connect("build-finished", _on_build_finished)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
