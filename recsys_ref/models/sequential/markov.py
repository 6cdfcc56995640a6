r"""The simplest sequential baseline: what usually follows the last item.

.. math::

    \hat y_{ui} = T_{s_n, i} + \epsilon\, \mathrm{pop}(i), \qquad
    T_{jk} = \#\{\text{times } k \text{ directly follows } j \text{ in a training sequence}\},

a first-order Markov chain read off the counts (:math:`s_n` is the user's latest item);
popularity, scaled below one count (:math:`\epsilon\,\mathrm{pop}(i) < 1`), only breaks
ties, and ranks alone for a user without history.

Used in: ``chapters/10_sequential``, ``chapters/11_session_graphs``.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

from recsys_ref.models.sequential.base import SequentialRecommender

__all__ = ["ItemTransitions"]


class ItemTransitions(SequentialRecommender):
    """Scores the items that followed the user's latest item in the training sequences."""

    name = "transitions"
    max_len = 1

    def __init__(self, seed: int = 0):
        self.seed = seed  # unused: the model is deterministic; kept for a uniform interface

    def fit(self, train: pd.DataFrame, num_users: int, num_items: int,
            valid: pd.DataFrame | None = None) -> "ItemTransitions":
        self._store_sequences(train, num_users, num_items)
        seq = self.sequences
        same_user = np.ones(len(seq.items), dtype=bool)
        same_user[seq.ptr[1:-1]] = False                # a new user starts: no transition
        src, dst = seq.items[:-1], seq.items[1:]
        keep = same_user[1:]
        self.transitions = sp.csr_matrix(
            (np.ones(int(keep.sum()), dtype=np.float32), (src[keep], dst[keep])),
            shape=(self.num_items, self.num_items))
        pop = np.bincount(seq.items, minlength=self.num_items).astype(np.float32)
        self.tie_break = torch.as_tensor(pop / (pop.max() + 1.0))
        return self

    def _score_last(self, x: torch.Tensor) -> torch.Tensor:
        last = x[:, -1].numpy()
        out = self.tie_break.repeat(len(last), 1)
        has = last > 0
        if has.any():
            rows = self.transitions[last[has] - 1].toarray()
            out[torch.as_tensor(has)] += torch.as_tensor(rows)
        return out
