r"""How a fitted model's state becomes plain containers and tensors, and back.

:func:`encode` turns numbers, strings, tuples, lists, dicts, tensors, numpy arrays,
scipy sparse matrices, pandas frames and nested recommenders into values that
``torch.load(weights_only=True)`` reads without running code (tensors, plain containers,
tagged dicts ``{"__kind__": ...}``); :func:`decode` inverts it exactly (dtypes, sparse
formats and frame columns come back as they were). Anything else raises a ``TypeError``
that points at the ``_get_state`` / ``_set_state`` hooks of
:class:`~recsys_ref.models.base.Recommender`.

Used in: :meth:`recsys_ref.models.base.Recommender.save` and ``load``.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

__all__ = ["encode", "decode"]


def encode(value, where: str):
    """Plain containers and tensors only, so ``torch.load(weights_only=True)`` reads it."""
    if value is None or isinstance(value, (bool, int, float, str, complex)):
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    if isinstance(value, torch.device):
        return {"__kind__": "device", "type": str(value)}
    if isinstance(value, np.ndarray):
        if value.dtype.kind in "biufc":
            return {"__kind__": "ndarray", "data": torch.from_numpy(np.array(value))}
        return {"__kind__": "list_array", "dtype": value.dtype.str if value.dtype.kind in "US"
                else "object", "data": [encode(v, where) for v in value.tolist()]}
    if sp.issparse(value):
        csr = sp.csr_matrix(value)
        return {"__kind__": "sparse", "format": value.format, "shape": tuple(csr.shape),
                **{k: torch.from_numpy(np.array(getattr(csr, k)))
                   for k in ("data", "indices", "indptr")}}
    if isinstance(value, pd.DataFrame):
        return {"__kind__": "frame", "columns": [encode(c, where) for c in value.columns],
                "data": [encode(value[c].to_numpy(), f"{where}[{c!r}]") for c in value.columns],
                "index": encode(value.index.to_numpy(), where)}
    if hasattr(value, "_payload") and hasattr(value, "_set_state"):   # a Recommender
        return {"__kind__": "model", **value._payload()}
    if isinstance(value, (list, tuple)):
        items = [encode(v, where) for v in value]
        return items if isinstance(value, list) else tuple(items)
    if isinstance(value, dict):
        return {"__kind__": "dict",
                "items": [(encode(k, where), encode(v, f"{where}[{k!r}]"))
                          for k, v in value.items()]}
    raise TypeError(f"cannot save {where} of type {type(value).__name__}: override "
                    "_get_state/_set_state (see recsys_ref.models.base) to store it as tensors")


def decode(value):
    if isinstance(value, tuple):
        return tuple(decode(v) for v in value)
    if isinstance(value, list):
        return [decode(v) for v in value]
    if not isinstance(value, dict):
        return value
    kind = value["__kind__"]
    if kind == "device":                  # saved on a GPU machine, loaded anywhere
        from recsys_ref.train.runtime import get_device
        return get_device(value["type"]) if value["type"] == "cpu" else get_device()
    if kind == "ndarray":
        return value["data"].numpy()
    if kind == "list_array":
        return np.array([decode(v) for v in value["data"]], dtype=value["dtype"])
    if kind == "sparse":
        csr = sp.csr_matrix(tuple(value[k].numpy() for k in ("data", "indices", "indptr")),
                            shape=value["shape"])
        return csr.asformat(value["format"])
    if kind == "frame":
        cols = [decode(c) for c in value["columns"]]
        return pd.DataFrame({c: decode(d) for c, d in zip(cols, value["data"])},
                            index=decode(value["index"]), columns=cols)
    if kind == "model":
        from recsys_ref.models.base import Recommender  # base imports this module
        return Recommender._from_payload(value)
    return {decode(k): decode(v) for k, v in value["items"]}
