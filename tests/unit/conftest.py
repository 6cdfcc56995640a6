"""Unit-test fixtures shared by every module's tests."""
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
