r"""Training basics shared by every model: seeds, device choice, and one training loop
with a progress bar, early stopping on a validation metric and best-state restore.

The loop is deliberately thin: a model supplies ``step(epoch) -> float`` (one epoch of
training, returning the mean loss) and optionally ``evaluate() -> float`` (the validation
metric, higher is better). :func:`train_loop` runs them, records a history table, stops
after ``patience`` evaluations without improvement and loads the best ``state_dict`` back.

Used in: every chapter that trains a model (first in ``chapters/04_matrix_factorisation``).
"""
from __future__ import annotations

import copy
import math
import os
import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

__all__ = ["set_seed", "get_device", "torch_threads", "EarlyStopping", "History", "train_loop"]


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
    processes, which can make small sparse products an order of magnitude slower.
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


class EarlyStopping:
    """Track the best validation score, keep a copy of the best weights.

    Args:
        patience: evaluations without improvement before :attr:`should_stop` is true.
        min_delta: improvement smaller than this does not count.
        mode: ``"max"`` (a metric like NDCG) or ``"min"`` (a loss).
    """

    def __init__(self, patience: int = 5, min_delta: float = 0.0, mode: str = "max"):
        if patience < 1:
            raise ValueError(f"patience must be >= 1, got {patience}")
        if mode not in ("max", "min"):
            raise ValueError(f"mode must be 'max' or 'min', got {mode!r}")
        self.patience, self.min_delta, self.mode = patience, min_delta, mode
        self.best: float = -math.inf if mode == "max" else math.inf
        self.best_epoch: int = -1
        self.best_state: dict | None = None
        self.bad_rounds = 0

    def update(self, score: float, epoch: int, model: torch.nn.Module | None = None) -> bool:
        """Record ``score``; return True when it is the new best."""
        if score is None or math.isnan(score):
            raise ValueError(f"validation score at epoch {epoch} is NaN")
        better = (score > self.best + self.min_delta) if self.mode == "max" else (
            score < self.best - self.min_delta)
        if better:
            self.best, self.best_epoch, self.bad_rounds = score, epoch, 0
            if model is not None:
                self.best_state = copy.deepcopy(model.state_dict())
        else:
            self.bad_rounds += 1
        return better

    @property
    def should_stop(self) -> bool:
        return self.bad_rounds >= self.patience

    def restore(self, model: torch.nn.Module) -> None:
        """Load the best weights seen into ``model`` (no-op when none were kept)."""
        if self.best_state is not None:
            model.load_state_dict(self.best_state)

    def __repr__(self) -> str:
        return f"EarlyStopping(best={self.best:.4f} at epoch {self.best_epoch}, patience={self.patience})"


@dataclass
class History:
    """What :func:`train_loop` did: one row per epoch (``epoch, loss[, valid]``)."""

    rows: list[dict] = field(default_factory=list)
    best_epoch: int | None = None
    best_score: float | None = None
    stopped_early: bool = False

    @property
    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows)

    def __repr__(self) -> str:
        return (f"History(epochs={len(self.rows)}, best_epoch={self.best_epoch}, "
                f"best_score={self.best_score}, stopped_early={self.stopped_early})")


def train_loop(
    step: Callable[[int], float],
    num_epochs: int,
    evaluate: Callable[[], float] | None = None,
    eval_every: int = 1,
    patience: int | None = None,
    model: torch.nn.Module | None = None,
    progress: bool = True,
    desc: str = "train",
) -> History:
    """Run ``step`` for up to ``num_epochs`` epochs with optional early stopping.

    Args:
        step: ``step(epoch)`` trains one epoch and returns its mean loss.
        num_epochs: maximum number of epochs (>= 1).
        evaluate: returns the validation metric (higher is better); called every
            ``eval_every`` epochs and after the last one.
        patience: stop after this many evaluations without improvement (needs
            ``evaluate``); ``None`` trains all epochs.
        model: whose best ``state_dict`` is restored at the end (needs ``evaluate``).
        progress: show a tqdm bar (set False in tests).
        desc: the bar's label.
    """
    if num_epochs < 1:
        raise ValueError(f"num_epochs must be >= 1, got {num_epochs}")
    if eval_every < 1:
        raise ValueError(f"eval_every must be >= 1, got {eval_every}")
    if patience is not None and evaluate is None:
        raise ValueError("early stopping (patience) needs an evaluate() function")
    stopper = EarlyStopping(patience or 10**9) if evaluate is not None else None
    hist = History()
    bar = tqdm(range(num_epochs), desc=desc, disable=not progress, leave=False)
    for epoch in bar:
        loss = float(step(epoch))
        if math.isnan(loss):
            raise ValueError(f"training loss became NaN at epoch {epoch}; lower the learning rate")
        row = {"epoch": epoch, "loss": loss}
        if stopper is not None and ((epoch + 1) % eval_every == 0 or epoch == num_epochs - 1):
            score = float(evaluate())
            row["valid"] = score
            stopper.update(score, epoch, model)
            bar.set_postfix(loss=f"{loss:.4f}", valid=f"{score:.4f}")
        else:
            bar.set_postfix(loss=f"{loss:.4f}")
        hist.rows.append(row)
        if stopper is not None and stopper.should_stop:
            hist.stopped_early = True
            break
    bar.close()
    if stopper is not None:
        hist.best_epoch, hist.best_score = stopper.best_epoch, stopper.best
        if model is not None:
            stopper.restore(model)
    return hist
