r"""Popularity: recommend what most users interacted with.

.. math::

    s(u, i) = \mathrm{pop}(i) = \frac{|\{v : (v, i) \in \mathcal{D}_{\text{train}}\}|}{|U|}

The same list for everyone (minus what each user has seen). It is the floor every
personalised model must clear, and a strong one on MovieLens, where taste is concentrated
on a few hundred films.

Used in: ``chapters/01_recsys_basics``, and as the floor of every later chapter's table.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from recsys_ref.models.base import Recommender

__all__ = ["Popularity"]


class Popularity(Recommender):
    """Most-popular baseline.

    Counts users, not weights: a ``rating``/``weight`` column is ignored (each
    ``(user, item)`` pair counts once). A new user (:meth:`score_items`) gets the same
    list as everyone.

    Args:
        seed: unused (deterministic), kept for the common interface.

    Shapes:
        - score: users ``(B,)`` -> scores ``(B, num_items)``
    """

    name = "popularity"

    def __init__(self, seed: int = 0):
        self.seed = seed  # unused: the model is deterministic; kept for a uniform interface
        self.item_popularity: np.ndarray | None = None

    def fit(self, train: pd.DataFrame, num_users: int, num_items: int,
            valid: pd.DataFrame | None = None) -> "Popularity":
        mat = self._store_train(train, num_users, num_items)
        self.item_popularity = np.asarray(mat.sum(0)).ravel() / num_users
        return self

    def score(self, users: torch.Tensor) -> torch.Tensor:
        users = self._check_users(users)
        pop = torch.as_tensor(self.item_popularity, dtype=torch.float32)
        return pop.expand(len(users), -1).clone()

    def _score_items(self, items: np.ndarray, ratings: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(self.item_popularity, dtype=torch.float32)
