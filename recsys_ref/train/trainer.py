r"""The one training loop of the package: a :class:`Trainer` that runs any model honouring a
small contract (RecBole's split of duties, minGPT's trainer and callbacks).

The model supplies what only it knows:

.. code-block:: python

    class Model:
        module: torch.nn.Module                     # the weights (saved, restored, moved)
        def setup(self, trainer) -> None: ...       # build self.module, samplers (seeded)
        def configure_optimizer(self, config) -> torch.optim.Optimizer: ...
        def epoch_data(self, epoch) -> tuple[torch.Tensor, ...]: ...   # same first dim E
        def calculate_loss(self, batch) -> torch.Tensor: ...           # batch: slices

and the trainer does the rest: seeding (:func:`~recsys_ref.train.runtime.set_seed`),
device and thread count, epochs, cutting each epoch's data into ``batch_size`` slices,
the optimiser steps, the epoch's mean loss :math:`\bar{\mathcal L} = \sum_b n_b
\mathcal L_b / \sum_b n_b` (``n_b`` the batch's rows, or the second value when
``calculate_loss`` returns ``(loss, n_b)``), timing, the tqdm bar, validation every
``eval_every`` epochs and after the last one, early stopping with best-state restore
(:class:`~recsys_ref.train.callbacks.EarlyStopping`) and the callbacks (EMA, schedules,
logging). A run in stages with their own settings is a list of :class:`Phase`.

Shapes: ``epoch_data`` returns tensors of length ``E`` (pairs, nodes...); a batch is the
same tuple sliced to ``[s, s + batch_size)``.

Used in: every chapter that trains a model (first in ``chapters/04_matrix_factorisation``).
"""
from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import pandas as pd
import torch

from recsys_ref.train.callbacks import EarlyStopping
from recsys_ref.train.runtime import get_device, set_seed, torch_threads

__all__ = ["TrainerConfig", "History", "Phase", "Trainer"]

EVENTS = ("on_fit_start", "on_epoch_start", "on_batch_end", "on_validation_start",
          "on_validation_end", "on_epoch_end", "on_fit_end")


@dataclass
class TrainerConfig:
    r"""Settings of a run (:meth:`Trainer.get_default_config` gives the defaults).

    Attributes:
        num_epochs: maximum epochs (default 100).
        batch_size: rows of the epoch's data per step; ``None``: the whole epoch in one step.
        steps_per_epoch: at most this many steps per epoch, on the first
            ``steps_per_epoch * batch_size`` rows of the epoch's (shuffled) data; ``None``
            (default): a full pass. A graph model whose step propagates the whole graph
            costs :math:`O(L\,|E|\,d)` per step, so a full pass with a fixed batch grows as
            :math:`|E|^2`; a fixed number of steps (or a batch that grows with :math:`|E|`)
            keeps an epoch linear in the data.
        lr: learning rate, read by the model's ``configure_optimizer`` (default 1e-3).
        eval_every: validate every this many epochs, and after the last (default 5).
        patience: stop after this many validations without improvement; ``None`` trains
            every epoch (the best weights are still restored).
        seed: seeds everything at the start of each run (``None``: leave the generators).
        device: ``None`` picks CUDA when available (:func:`~recsys_ref.train.runtime.get_device`).
        num_threads: CPU threads during the run (``None``: PyTorch's setting).
        progress: show a tqdm bar (default False).
        desc: the bar's label.
    """

    num_epochs: int = 100
    batch_size: int | None = 2048
    steps_per_epoch: int | None = None
    lr: float = 1e-3
    eval_every: int = 5
    patience: int | None = 5
    seed: int | None = 0
    device: str | torch.device | None = None
    num_threads: int | None = None
    progress: bool = False
    desc: str = "train"

    def replace(self, **changes) -> "TrainerConfig":
        """A copy with ``changes`` applied (unknown names raise a ``TypeError``)."""
        return dataclasses.replace(self, **changes)


@dataclass
class History:
    """What a run did: one row per epoch (``epoch, loss[, valid]``) and its seconds."""

    rows: list[dict] = field(default_factory=list)
    best_epoch: int | None = None
    best_score: float | None = None
    stopped_early: bool = False
    epoch_seconds: list[float] = field(default_factory=list)

    @property
    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows)

    def __repr__(self) -> str:
        return (f"History(epochs={len(self.rows)}, best_epoch={self.best_epoch}, "
                f"best_score={self.best_score}, stopped_early={self.stopped_early})")


@dataclass
class Phase:
    """One stage of :meth:`Trainer.fit_phases`.

    Attributes:
        name: the key of its history.
        num_epochs: maximum epochs of the stage.
        start: ``start(model)`` called before the stage's ``setup`` (e.g. switch attention on).
        overrides: other :class:`TrainerConfig` fields for this stage (``lr``, ``batch_size``...).
    """

    name: str
    num_epochs: int
    start: Callable | None = None
    overrides: dict = field(default_factory=dict)


class _NoBar:
    """What the loop needs of a tqdm bar, doing nothing (``progress=False``)."""

    def __init__(self, n: int):
        self.n = n

    def __iter__(self):
        return iter(range(self.n))

    def set_postfix(self, **kw) -> None:
        pass

    def close(self) -> None:
        pass


def _progress(n: int, desc: str, show: bool):
    """A tqdm bar over ``range(n)`` when ``show``; imported only then (``tqdm.auto``
    warns at import in a notebook without ipywidgets)."""
    if not show:
        return _NoBar(n)
    from tqdm.auto import tqdm
    return tqdm(range(n), desc=desc, leave=False)


class Trainer:
    """Runs a model through epochs of mini-batch gradient steps (module docstring).

    Args:
        config: a :class:`TrainerConfig` (default :meth:`get_default_config`).
        callbacks: objects with ``on_*`` hooks (:mod:`recsys_ref.train.callbacks`).

    After :meth:`fit`: ``history``, ``module``, ``optimizer``; during it also ``epoch``,
    ``loss`` (the last batch's), ``valid_score``, ``phase`` and ``should_stop`` (a callback
    sets it to end the run after the current epoch).
    """

    def __init__(self, config: TrainerConfig | None = None, callbacks: Sequence = ()):
        self.config = config or self.get_default_config()
        self.callbacks: dict[str, list[Callable]] = {e: [] for e in EVENTS}
        for cb in callbacks:
            self.add_callback(cb)
        self.history: History | None = None
        self.module: torch.nn.Module | None = None
        self.optimizer: torch.optim.Optimizer | None = None
        self.device = get_device(None if self.config.device is None else str(self.config.device))
        self.epoch, self.loss, self.valid_score = -1, None, None
        self.phase: str | None = None
        self.should_stop = False

    @staticmethod
    def get_default_config() -> TrainerConfig:
        return TrainerConfig()

    def add_callback(self, callback, fn: Callable | None = None) -> None:
        """``add_callback(obj)`` registers every ``on_*`` method ``obj`` defines;
        ``add_callback("on_batch_end", fn)`` registers ``fn(trainer)`` for one event."""
        if isinstance(callback, str):
            if callback not in EVENTS:
                raise ValueError(f"unknown event {callback!r}; events are {EVENTS}")
            self.callbacks[callback].append(fn)
            return
        hooks = [e for e in EVENTS if callable(getattr(callback, e, None))]
        if not hooks:
            raise ValueError(f"{callback!r} has none of the hooks {EVENTS}")
        for event in hooks:
            self.callbacks[event].append(getattr(callback, event))

    def trigger_callbacks(self, event: str) -> None:
        for fn in self.callbacks[event]:
            fn(self)

    def _check(self, cfg: TrainerConfig) -> None:
        if cfg.num_epochs < 1:
            raise ValueError(f"num_epochs must be >= 1, got {cfg.num_epochs}")
        if cfg.eval_every < 1:
            raise ValueError(f"eval_every must be >= 1, got {cfg.eval_every}")
        if cfg.batch_size is not None and cfg.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1 or None, got {cfg.batch_size}")
        if cfg.steps_per_epoch is not None and cfg.steps_per_epoch < 1:
            raise ValueError(f"steps_per_epoch must be >= 1 or None, got {cfg.steps_per_epoch}")

    def fit(self, model, evaluate: Callable[[], float] | None = None) -> History:
        """Set the model up (after seeding) and train it; returns the :class:`History`.

        Args:
            model: follows the contract of the module docstring.
            evaluate: returns the validation score (higher is better); without it there
                is no early stopping and no restore.
        """
        self._check(self.config)
        if self.config.patience is not None and self.config.patience < 1:
            raise ValueError(f"patience must be >= 1 or None, got {self.config.patience}")
        with torch_threads(self.config.num_threads):
            if self.config.seed is not None:
                set_seed(self.config.seed)
            model.setup(self)
            self.module = model.module.to(self.device)
            self.optimizer = model.configure_optimizer(self.config)
            return self._run(model, evaluate)

    def fit_phases(self, model, phases: Sequence[Phase],
                   evaluate: Callable[[], float] | None = None) -> dict[str, History]:
        """Run :meth:`fit` once per :class:`Phase` (each re-seeded, with a fresh optimiser,
        its own early stopping and best-state restore), the next starting from the weights
        the previous one ended with. ``trainer.phase`` names the stage for ``setup``."""
        base, out = self.config, {}
        try:
            for phase in phases:
                self.config = base.replace(num_epochs=phase.num_epochs, **phase.overrides)
                self.phase = phase.name
                if phase.start is not None:
                    phase.start(model)
                out[phase.name] = self.fit(model, evaluate)
        finally:
            self.config, self.phase = base, None
        return out

    def _run(self, model, evaluate) -> History:
        cfg, module, opt = self.config, self.module, self.optimizer
        self.history, self.should_stop = History(), False
        stopper = None
        if evaluate is not None:
            stopper = EarlyStopping(cfg.patience if cfg.patience is not None else math.inf)
            self.callbacks["on_validation_end"].insert(0, stopper.on_validation_end)
            self.callbacks["on_fit_end"].insert(0, stopper.on_fit_end)
        try:
            self.trigger_callbacks("on_fit_start")
            bar = _progress(cfg.num_epochs, cfg.desc, cfg.progress)
            for epoch in bar:
                self.epoch = epoch
                row = {"epoch": epoch, "loss": self._epoch(model, module, opt, epoch)}
                last = epoch == cfg.num_epochs - 1
                if evaluate is not None and ((epoch + 1) % cfg.eval_every == 0 or last):
                    self.trigger_callbacks("on_validation_start")
                    self.valid_score = row["valid"] = float(evaluate())
                    self.trigger_callbacks("on_validation_end")
                    bar.set_postfix(loss=f"{row['loss']:.4f}", valid=f"{row['valid']:.4f}")
                else:
                    bar.set_postfix(loss=f"{row['loss']:.4f}")
                self.history.rows.append(row)
                self.trigger_callbacks("on_epoch_end")
                if self.should_stop:
                    self.history.stopped_early = True
                    break
            bar.close()
            self.trigger_callbacks("on_fit_end")
        finally:
            if stopper is not None:
                self.callbacks["on_validation_end"].remove(stopper.on_validation_end)
                self.callbacks["on_fit_end"].remove(stopper.on_fit_end)
        return self.history

    def _epoch(self, model, module, opt, epoch: int) -> float:
        """One pass over ``model.epoch_data(epoch)``; returns the mean loss."""
        t0 = time.perf_counter()
        module.train()
        self.trigger_callbacks("on_epoch_start")
        data = model.epoch_data(epoch)
        data = data if isinstance(data, tuple) else (data,)
        rows = len(data[0])
        size = self.config.batch_size or rows
        if self.config.steps_per_epoch is not None:
            rows = min(rows, self.config.steps_per_epoch * size)
        total = torch.zeros((), dtype=torch.float64, device=self.device)
        count = 0
        for start in range(0, rows, size):
            batch = tuple(t[start:start + size] for t in data)
            out = model.calculate_loss(batch)
            loss, n = out if isinstance(out, tuple) else (out, len(batch[0]))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            self.loss = loss
            self.trigger_callbacks("on_batch_end")
            total += loss.detach() * n                    # summed on the device:
            count += n
        mean = float(total) / count                       # one host sync per epoch
        if math.isnan(mean):
            raise ValueError(f"training loss became NaN at epoch {epoch}; lower the learning rate")
        self.history.epoch_seconds.append(time.perf_counter() - t0)
        return mean

    def __repr__(self) -> str:
        c = self.config
        return (f"Trainer(num_epochs={c.num_epochs}, batch_size={c.batch_size}, lr={c.lr}, "
                f"eval_every={c.eval_every}, patience={c.patience}, seed={c.seed})")
