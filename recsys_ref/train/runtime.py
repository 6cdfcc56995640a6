r"""Where training runs: one seed for every generator, the device, the CPU thread count.

:func:`set_seed` seeds Python, NumPy and PyTorch; :func:`get_device` picks CUDA when present
(``RECSYS_REF_DEVICE`` overrides it); :func:`torch_threads` pins PyTorch's intra-op thread
count for a block and restores it. The :class:`~recsys_ref.train.trainer.Trainer` uses all
three; chapters call :func:`set_seed` and :func:`get_device` at the top.

Used in: every chapter that trains a model (first in ``chapters/04_matrix_factorisation``).
"""
from __future__ import annotations

import os
import random
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch

__all__ = ["set_seed", "get_device", "torch_threads"]


def set_seed(seed: int, deterministic: bool = False) -> None:
    """Seed Python, NumPy and PyTorch (CPU and every GPU).

    Args:
        seed: the seed.
        deterministic: also ask PyTorch for deterministic kernels (slower on GPU).
    """
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
    os.environ["PYTHONHASHSEED"] = str(seed)
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)


def get_device(prefer: str | None = None) -> torch.device:
    """The best available device: ``cuda`` when present, else ``cpu``.

    ``prefer`` (or the environment variable ``RECSYS_REF_DEVICE``) forces one, e.g.
    ``"cpu"`` to reproduce the book's CPU numbers on a GPU machine.
    """
    choice = prefer or os.environ.get("RECSYS_REF_DEVICE")
    if choice:
        dev = torch.device(choice)
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(
                f"device {choice!r} requested but CUDA is not available; use 'cpu' or "
                "install a CUDA build of PyTorch"
            )
        return dev
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


@contextmanager
def torch_threads(num_threads: int | None) -> Iterator[None]:
    """Run the block with ``torch.set_num_threads(num_threads)``, restoring the previous
    count afterwards (also on an exception); ``None`` leaves PyTorch's setting alone.

    On a small, *shared* CPU one thread avoids OpenMP threads spinning against other
    processes, which slows small sparse products down (``benchmarks/`` measures it).
    """
    if num_threads is None:
        yield
        return
    if num_threads < 1:
        raise ValueError(f"num_threads must be >= 1 or None, got {num_threads}")
    before = torch.get_num_threads()
    torch.set_num_threads(num_threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)
