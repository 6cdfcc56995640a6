"""Training: the one :class:`Trainer`, its callbacks, and seeds/devices/threads."""
from recsys_ref.train.runtime import get_device, set_seed, torch_threads  # noqa: F401
from recsys_ref.train.callbacks import (  # noqa: F401
    EMA, Callback, EarlyStopping, Logger, LRSchedule)
from recsys_ref.train.trainer import History, Phase, Trainer, TrainerConfig  # noqa: F401

__all__ = [
    "set_seed", "get_device", "torch_threads",
    "Trainer", "TrainerConfig", "History", "Phase",
    "Callback", "EarlyStopping", "EMA", "LRSchedule", "Logger",
]
