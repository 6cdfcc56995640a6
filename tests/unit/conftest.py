"""Unit-test fixtures shared by every module's tests."""
import numpy as np
import pandas as pd
import pytest
import torch


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """The tensors in unit tests are tiny: one intra-op thread is fastest, and on a shared
    machine it avoids OpenMP threads spinning against other processes (which made small
    sparse products 10-25x slower when measured). The previous setting is restored."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def planted_groups(num_users: int = 60, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Four taste groups: user u belongs to group u % 4 and interacts with each of its
    group's 10 items (40 items in all) with probability 0.6, a random quarter of the pairs
    held out as test. Every item is about equally popular, so popularity cannot tell
    groups apart while a collaborative model can. Returns ``(train, test)``."""
    rng = np.random.default_rng(seed)
    pairs = [(u, 10 * (u % 4) + j) for u in range(num_users) for j in range(10) if rng.random() < 0.6]
    df = pd.DataFrame(pairs, columns=["user", "item"])
    test_mask = rng.random(len(df)) < 0.25
    return df[~test_mask], df[test_mask]


@pytest.fixture
def planted():
    """:func:`planted_groups` with its defaults: 60 users, 40 items."""
    return planted_groups()
