r"""Training objectives for implicit feedback, and the negative sampler they need.

BPR (Rendle et al., 2009) compares an observed item :math:`i` with a sampled unobserved
item :math:`j` for the same user:

.. math::

    \mathcal{L}_{\text{BPR}} = -\frac{1}{|B|} \sum_{(u,i,j) \in B}
        \log \sigma(\hat y_{ui} - \hat y_{uj}).

Sampled-softmax cross-entropy (the loss of the source material,
:math:`L = -\sum y_{ij} \log p(v_j \mid u_i)`) treats the catalogue as classes:

.. math::

    \mathcal{L}_{\text{CE}} = -\frac{1}{|B|} \sum_{(u,i) \in B}
        \log \frac{\exp(\hat y_{ui} / \tau)}{\sum_{j \in C_u} \exp(\hat y_{uj} / \tau)},

where :math:`C_u` is the full catalogue (``num_neg=None``) or the positive plus
``num_neg`` sampled negatives.

Used in: ``chapters/04_matrix_factorisation``, and through the BPR/softmax-trained models
``05_graph_embedding`` (GAE), ``06_graph_convolution``, ``07_graphsage_sampling``,
``08_graph_attention``, ``09_language_models``.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F

__all__ = ["NegativeSampler", "bpr_loss", "softmax_loss", "l2_penalty"]


class NegativeSampler:
    """Uniform items a user has **not** interacted with, by vectorised rejection.

    The observed pairs are stored once as sorted keys ``user * num_items + item``; a
    candidate is rejected when its key is found by binary search, and redrawn.

    Args:
        train: ``(num_users, num_items)`` sparse matrix of observed interactions.
        seed: seed of the NumPy generator (reproducible sampling).
    """

    #: use a dense membership table up to this many (user, item) cells (64 MB of bools)
    DENSE_LIMIT = 1 << 26

    def __init__(self, train: sp.spmatrix, seed: int = 0):
        coo = sp.coo_matrix(train)
        self.num_users, self.num_items = coo.shape
        self.keys = np.unique(coo.row.astype(np.int64) * self.num_items + coo.col)
        per_user = np.bincount(self.keys // self.num_items, minlength=self.num_users)
        self._full = per_user >= self.num_items
        # Small catalogues: a dense boolean table answers membership in O(1) (same answers
        # as the binary search, without it); large ones keep only the keys.
        self._dense = None
        if self.num_users * self.num_items <= self.DENSE_LIMIT:
            self._dense = np.zeros(self.num_users * self.num_items, dtype=bool)
            self._dense[self.keys] = True
        self.rng = np.random.default_rng(seed)

    def is_observed(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Boolean array: was ``(users[k], items[k])`` observed?"""
        q = np.asarray(users, dtype=np.int64) * self.num_items + np.asarray(items, dtype=np.int64)
        if self._dense is not None:
            return self._dense[q]
        pos = np.searchsorted(self.keys, q)
        pos = np.minimum(pos, len(self.keys) - 1)
        return self.keys[pos] == q

    def __call__(self, users: np.ndarray | torch.Tensor, num_neg: int = 1,
                 max_rounds: int = 100) -> torch.Tensor:
        """``(B, num_neg)`` LongTensor of negatives for ``users`` ``(B,)``."""
        if num_neg < 1:
            raise ValueError(f"num_neg must be >= 1, got {num_neg}")
        users = np.asarray(torch.as_tensor(users).cpu(), dtype=np.int64)
        if self._full[users].any():
            raise ValueError("a user has interacted with every item: no negative exists")
        rows = np.repeat(users, num_neg)
        neg = self.rng.integers(0, self.num_items, size=len(rows))
        for _ in range(max_rounds):
            seen = self.is_observed(rows, neg)
            if not seen.any():
                return torch.as_tensor(neg.reshape(len(users), num_neg))
            neg[seen] = self.rng.integers(0, self.num_items, size=int(seen.sum()))
        raise RuntimeError("negative sampling did not converge; the matrix is nearly full")

    def __repr__(self) -> str:
        return f"NegativeSampler({self.num_users}x{self.num_items}, observed={len(self.keys)})"


def bpr_loss(pos_scores: torch.Tensor, neg_scores: torch.Tensor) -> torch.Tensor:
    """Mean BPR loss; ``neg_scores`` may be ``(B,)`` or ``(B, n)`` (each pair counts)."""
    if neg_scores.dim() == pos_scores.dim() + 1:
        pos_scores = pos_scores.unsqueeze(-1)
    return -F.logsigmoid(pos_scores - neg_scores).mean()


def softmax_loss(pos_scores: torch.Tensor, other_scores: torch.Tensor,
                 temperature: float = 1.0) -> torch.Tensor:
    """Cross-entropy of the positive against ``other_scores``.

    Args:
        pos_scores: ``(B,)``.
        other_scores: ``(B, n)`` scores of sampled negatives, or of the whole catalogue
            with the positive's column set to ``-inf`` by the caller.
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    logits = torch.cat([pos_scores.unsqueeze(-1), other_scores], dim=-1) / temperature
    return -torch.log_softmax(logits, dim=-1)[:, 0].mean()


def l2_penalty(*tensors: torch.Tensor) -> torch.Tensor:
    r""":math:`\frac{1}{2B}\sum \lVert x \rVert^2` over the given batch tensors (``B`` =
    rows of the first), the per-batch regulariser of BPR-MF and LightGCN."""
    batch = tensors[0].shape[0]
    return sum(t.pow(2).sum() for t in tensors) / (2 * batch)
