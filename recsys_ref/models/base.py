r"""The interface every recommender in the book follows.

.. code-block:: python

    model = SomeModel(**hyper_parameters)
    model.fit(train, num_users, num_items, valid=valid)   # pandas frames, 0-based ids
    scores = model.score(users)       # (len(users), num_items) tensor, higher = better
    topk = model.recommend(users, k)  # (len(users), k) item indices, seen items excluded

``fit`` returns ``self``. ``score`` never masks anything; ``recommend`` masks the
training interactions it was fitted on (and anything in ``exclude``).

Used in: ``chapters/01_recsys_basics`` and every chapter with a model.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

from recsys_ref.protocol.evaluate import interaction_matrix, topk_items

__all__ = ["Recommender"]


class Recommender:
    """Base class: stores the training matrix and implements :meth:`recommend`."""

    #: name used by ``python -m recsys_ref.cli.bench --model NAME``
    name: str = "base"
    train_matrix: sp.csr_matrix | None = None
    num_users: int = 0
    num_items: int = 0

    def fit(self, train: pd.DataFrame, num_users: int, num_items: int,
            valid: pd.DataFrame | None = None) -> "Recommender":  # pragma: no cover
        raise NotImplementedError

    def score(self, users: torch.Tensor) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

    def _store_train(self, train: pd.DataFrame, num_users: int, num_items: int) -> sp.csr_matrix:
        if num_users <= 0 or num_items <= 0:
            raise ValueError(f"num_users and num_items must be positive, got {num_users}, {num_items}")
        if len(train) == 0:
            raise ValueError("training frame is empty: nothing to fit")
        self.num_users, self.num_items = int(num_users), int(num_items)
        self.train_matrix = interaction_matrix(train, num_users, num_items)
        return self.train_matrix

    def _check_fitted(self) -> None:
        if self.train_matrix is None:
            raise RuntimeError(f"{type(self).__name__} is not fitted; call fit(train, ...) first")

    def _check_users(self, users) -> torch.Tensor:
        self._check_fitted()
        users = torch.as_tensor(users, dtype=torch.long)
        if users.numel() and (users.min() < 0 or users.max() >= self.num_users):
            raise ValueError(
                f"user index outside 0..{self.num_users - 1}: unknown user(s); models score "
                "only users seen at fit time (pass 0-based indices)"
            )
        return users

    def recommend(self, users: Sequence[int] | np.ndarray | torch.Tensor, k: int = 10,
                  exclude: Iterable[pd.DataFrame] = (), batch_size: int = 1024) -> torch.Tensor:
        """Top-``k`` unseen items per user (best first) as a ``(len(users), k)`` tensor."""
        users = self._check_users(users)
        mask = self.train_matrix
        for df in exclude:
            mask = mask + interaction_matrix(df, self.num_users, self.num_items)
        return topk_items(self.score, k, users, self.num_items, mask, batch_size)
