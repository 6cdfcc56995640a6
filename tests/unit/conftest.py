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


def _cycle_frame(num_users: int = 120, num_items: int = 12, length: int = 9, seed: int = 0,
                 noise: float = 0.0) -> pd.DataFrame:
    """Each user walks the items in a cycle i -> i + 1 (mod I) from a random start, jumping
    to a random item with probability ``noise``; timestamps give the order, rows shuffled.
    The planted order a sequential model must learn (popularity cannot)."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(num_users):
        item = int(rng.integers(num_items))
        for t in range(length):
            rows.append((u, item, 1000 + t))
            jump = rng.random() < noise
            item = int(rng.integers(num_items)) if jump else (item + 1) % num_items
    frame = pd.DataFrame(rows, columns=["user", "item", "timestamp"])
    return frame.drop_duplicates(["user", "item"]).sample(frac=1.0, random_state=seed)


@pytest.fixture
def cycle_frame():
    """The factory :func:`_cycle_frame` (call it with the sizes a test needs)."""
    return _cycle_frame
