"""Shared fixtures: where the real data lives, and small hand-made interaction frames."""
from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]


def _data_dir() -> Path | None:
    env = os.environ.get("RECSYS_REF_DATA")
    if env:
        return Path(env)
    shared = ROOT.parent / "shared" / "data"
    return shared if shared.is_dir() else None


@pytest.fixture(scope="session")
def data_dir() -> Path:
    d = _data_dir()
    if d is None or not (d / "ml-100k").is_dir():
        if os.environ.get("CI"):
            pytest.fail("CI needs the data: set RECSYS_REF_DATA or provide ../shared/data")
        pytest.skip("no local MovieLens copy (set RECSYS_REF_DATA)")
    return d


@pytest.fixture(scope="session")
def ml100k(data_dir):
    from recsys_ref.data import load_movielens
    return load_movielens("ml-100k", data_dir=data_dir, download=False)


@pytest.fixture
def tiny_frame() -> pd.DataFrame:
    """3 users, 4 items: u0 {0,1,2}, u1 {1,2}, u2 {0,3}."""
    pairs = [(0, 0), (0, 1), (0, 2), (1, 1), (1, 2), (2, 0), (2, 3)]
    df = pd.DataFrame(pairs, columns=["user", "item"])
    df["rating"] = [5, 4, 3, 5, 2, 1, 4]
    df["timestamp"] = [10, 20, 30, 15, 25, 5, 50]
    return df
