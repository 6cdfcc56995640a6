"""benchmarks/nas.py runs end to end (--quick) and resumes from its trial store."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _script():
    spec = importlib.util.spec_from_file_location("nas_bench", ROOT / "benchmarks" / "nas.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_quick_run_writes_tables_and_resumes(data_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("RECSYS_REF_DATA", str(data_dir))
    nas = _script()
    assert nas.main(["--quick", "--cache", str(tmp_path)]) == 0
    md = (tmp_path / "quick" / "nas.md").read_text()
    for text in ("| random |", "| evolution |", "LightGCN (chapter 6)", "EASE (lambda"):
        assert text in md
    store = tmp_path / "quick" / "ml-100k.jsonl"
    lines = store.read_text().splitlines()
    assert all(json.loads(line)["error"] is None for line in lines)
    capsys.readouterr()
    assert nas.main(["--quick", "--cache", str(tmp_path)]) == 0     # again: all cached
    out = capsys.readouterr().out
    assert f"{len(lines)} fits already there" in out
    assert "0 fits trained in this run" in out
    assert len(store.read_text().splitlines()) == len(lines)
