"""Former home of the seeds, devices and training loop; kept so that old imports work.

Use :mod:`recsys_ref.train.runtime` (``set_seed``, ``get_device``, ``torch_threads``) and
:class:`recsys_ref.train.trainer.Trainer` (the one training loop) instead.
"""
from recsys_ref.train.runtime import get_device, set_seed, torch_threads  # noqa: F401

__all__ = ["set_seed", "get_device", "torch_threads"]
