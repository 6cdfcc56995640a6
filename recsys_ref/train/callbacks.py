r"""Callbacks of the :class:`~recsys_ref.train.trainer.Trainer`: what a training run does
besides the gradient steps.

A callback is any object with some of the methods ``on_fit_start``, ``on_epoch_start``,
``on_batch_end``, ``on_validation_start``, ``on_validation_end``, ``on_epoch_end`` and
``on_fit_end``, each taking the trainer (minGPT's ``trigger_callbacks``, one class per
concern). The trainer calls them in the order they were added.

* :class:`EarlyStopping` — keep the best validation score and weights, stop after
  ``patience`` evaluations without improvement, restore the best weights at the end.
* :class:`EMA` — an exponential moving average of the parameters,
  :math:`\bar\theta_t = \beta\,\bar\theta_{t-1} + (1-\beta)\,\theta_t` after every step,
  used for validation and, at the end, as the model's weights.
* :class:`LRSchedule` — a ``torch.optim.lr_scheduler`` stepped after every batch or epoch.
* :class:`Logger` — one line per epoch through a ``print``-like function.

Phases (a run in several stages with their own settings, e.g. GAT's uniform attention,
then attention) are :class:`~recsys_ref.train.trainer.Phase` lists given to
:meth:`~recsys_ref.train.trainer.Trainer.fit_phases`.

Used in: every chapter that trains a model (first in ``chapters/04_matrix_factorisation``).
"""
from __future__ import annotations

import copy
import math
from collections.abc import Callable

import torch

__all__ = ["Callback", "EarlyStopping", "EMA", "LRSchedule", "Logger"]


class Callback:
    """Base class: every hook does nothing. Override the ones you need."""

    def on_fit_start(self, trainer) -> None: ...
    def on_epoch_start(self, trainer) -> None: ...
    def on_batch_end(self, trainer) -> None: ...
    def on_validation_start(self, trainer) -> None: ...
    def on_validation_end(self, trainer) -> None: ...
    def on_epoch_end(self, trainer) -> None: ...
    def on_fit_end(self, trainer) -> None: ...

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class EarlyStopping(Callback):
    """Track the best validation score, keep a copy of the best weights.

    As a callback it reads ``trainer.valid_score`` after each validation, sets
    ``trainer.should_stop`` and restores the best ``state_dict`` into ``trainer.module`` at
    the end. :meth:`update` and :meth:`restore` also work on their own.

    Args:
        patience: evaluations without improvement before :attr:`should_stop` is true
            (``math.inf``: never stop, only keep the best weights).
        min_delta: improvement smaller than this does not count.
        mode: ``"max"`` (a metric like NDCG) or ``"min"`` (a loss).
    """

    def __init__(self, patience: float = 5, min_delta: float = 0.0, mode: str = "max"):
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
        if self.mode == "max":
            better = score > self.best + self.min_delta
        else:
            better = score < self.best - self.min_delta
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

    def on_validation_end(self, trainer) -> None:
        self.update(trainer.valid_score, trainer.epoch, trainer.module)
        trainer.should_stop = trainer.should_stop or self.should_stop

    def on_fit_end(self, trainer) -> None:
        trainer.history.best_epoch, trainer.history.best_score = self.best_epoch, self.best
        self.restore(trainer.module)

    def __repr__(self) -> str:
        return (f"EarlyStopping(best={self.best:.4f} at epoch {self.best_epoch}, "
                f"patience={self.patience})")


class EMA(Callback):
    r"""Exponential moving average of the trainable parameters (Polyak averaging).

    After every optimiser step, :math:`\bar\theta \leftarrow \beta\bar\theta +
    (1-\beta)\theta` (:math:`\bar\theta_0 = \theta_0`, the weights at the start). The
    averages are buffers of the module (``ema__<name>``) while training, so
    :class:`EarlyStopping` saves and restores them with the weights. Validation scores the
    averaged weights; at the end they replace the trained ones (``apply=True``) and the
    buffers are removed. With validation, the best state that early stopping keeps is the
    averaged one (the one validation scored), whatever ``apply``.

    Args:
        decay: :math:`\beta \in [0, 1)`.
        apply: copy the averages into the parameters at the end of the run (default True).
        only: names of the parameters to average (default all trainable ones).
    """

    def __init__(self, decay: float, apply: bool = True, only: tuple[str, ...] | None = None):
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"decay must lie in [0, 1), got {decay}")
        self.decay, self.apply, self.only = decay, apply, only
        self._pairs: list[tuple[str, torch.nn.Parameter]] = []
        self._saved: list[torch.Tensor] = []

    @staticmethod
    def _buffer(name: str) -> str:
        return "ema__" + name.replace(".", "__")

    def on_fit_start(self, trainer) -> None:
        module = trainer.module
        params = [(n, p) for n, p in module.named_parameters() if p.requires_grad]
        if self.only is not None:
            missing = set(self.only) - {n for n, _ in params}
            if missing:
                raise ValueError(f"EMA(only=...) names unknown parameters {sorted(missing)}")
            params = [(n, p) for n, p in params if n in self.only]
        self._pairs = params
        for name, p in params:
            module.register_buffer(self._buffer(name), p.detach().clone())

    @torch.no_grad()
    def on_batch_end(self, trainer) -> None:
        for name, p in self._pairs:
            getattr(trainer.module, self._buffer(name)).mul_(self.decay).add_(
                p, alpha=1 - self.decay)

    @torch.no_grad()
    def on_validation_start(self, trainer) -> None:
        self._saved = [p.detach().clone() for _, p in self._pairs]
        for name, p in self._pairs:
            p.copy_(getattr(trainer.module, self._buffer(name)))

    @torch.no_grad()
    def on_validation_end(self, trainer) -> None:
        for (_, p), saved in zip(self._pairs, self._saved):
            p.copy_(saved)
        self._saved = []

    @torch.no_grad()
    def on_fit_end(self, trainer) -> None:
        for name, p in self._pairs:
            buf = self._buffer(name)
            if self.apply:
                p.copy_(getattr(trainer.module, buf))
            del trainer.module._buffers[buf]
        self._pairs = []

    def __repr__(self) -> str:
        return f"EMA(decay={self.decay}, apply={self.apply})"


class LRSchedule(Callback):
    """Step a learning-rate scheduler after every batch (``interval="batch"``) or epoch.

    Args:
        make: ``make(optimizer, trainer) -> scheduler``, called when the run starts, e.g.
            ``lambda opt, t: CosineAnnealingLR(opt, t.config.num_epochs * steps)``.
        interval: ``"batch"`` (default) or ``"epoch"``.
    """

    def __init__(self, make: Callable, interval: str = "batch"):
        if interval not in ("batch", "epoch"):
            raise ValueError(f"interval must be 'batch' or 'epoch', got {interval!r}")
        self.make, self.interval = make, interval
        self.scheduler = None

    def on_fit_start(self, trainer) -> None:
        self.scheduler = self.make(trainer.optimizer, trainer)

    def on_batch_end(self, trainer) -> None:
        if self.interval == "batch":
            self.scheduler.step()

    def on_epoch_end(self, trainer) -> None:
        if self.interval == "epoch":
            self.scheduler.step()

    def __repr__(self) -> str:
        return f"LRSchedule(interval={self.interval!r})"


class Logger(Callback):
    """Write ``epoch, loss[, valid]`` and the epoch's seconds after every epoch.

    Args:
        write: a ``print``-like function (default ``print``).
    """

    def __init__(self, write: Callable[[str], None] = print):
        self.write = write

    def on_epoch_end(self, trainer) -> None:
        row = trainer.history.rows[-1]
        valid = f" valid={row['valid']:.4f}" if "valid" in row else ""
        self.write(f"{trainer.config.desc} epoch {row['epoch']}: loss={row['loss']:.4f}{valid} "
                   f"({trainer.history.epoch_seconds[-1]:.2f} s)")

    def __repr__(self) -> str:
        return f"Logger({getattr(self.write, '__name__', self.write)!r})"
