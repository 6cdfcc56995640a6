"""Training: seeds, devices, threads, the training loop."""
from recsys_ref.train.loop import (  # noqa: F401
    set_seed,
    get_device,
    torch_threads,
    EarlyStopping,
    History,
    train_loop,
)
__all__ = [
    "set_seed",
    "get_device",
    "torch_threads",
    "EarlyStopping",
    "History",
    "train_loop",
]
