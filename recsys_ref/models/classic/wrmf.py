r"""Weighted regularised matrix factorisation for implicit feedback, fitted by alternating
least squares (WRMF or implicit ALS; Hu, Koren and Volinsky, ICDM 2008).

Every user–item pair is a training example. The *preference* :math:`p_{ui}` is 1 when
:math:`u` interacted with :math:`i` and 0 otherwise; the *confidence* in it grows with
the strength :math:`r_{ui}` of the interaction,

.. math::

    c_{ui} = 1 + \alpha\, r_{ui}, \qquad
    r_{ui} = \begin{cases} 1 \text{ (or the } \texttt{weight} \text{ column)}
                           & (u, i) \text{ observed} \\ 0 & \text{otherwise,}
             \end{cases}

so a missing pair counts as a weak 0 (:math:`c_{ui} = 1`) and an observed one as a
strong 1. With user factors :math:`X \in \mathbb R^{U \times d}` and item factors
:math:`Y \in \mathbb R^{I \times d}` the objective is

.. math::

    \mathcal L(X, Y) = \sum_{u, i} c_{ui} \big(p_{ui} - \mathbf x_u^\top \mathbf y_i\big)^2
        + \lambda \Big(\sum_u \lVert \mathbf x_u \rVert^2
                       + \sum_i \lVert \mathbf y_i \rVert^2\Big).

For fixed :math:`Y` it is a separate ridge regression per user, solved exactly by the
normal equations (:math:`C_u = \mathrm{diag}(c_{u\cdot})`)

.. math::

    \mathbf x_u = \big(Y^\top C_u Y + \lambda I\big)^{-1} Y^\top C_u \mathbf p_u,
    \qquad
    Y^\top C_u Y = \underbrace{Y^\top Y}_{\text{once for all users}}
        + \sum_{i \in I_u} (c_{ui} - 1)\, \mathbf y_i \mathbf y_i^\top ,

and :math:`Y^\top C_u \mathbf p_u = \sum_{i \in I_u} c_{ui} \mathbf y_i`: Hu et al.'s
trick makes a user step cost :math:`O(|I_u| d^2 + d^3)` although the sum runs over all
:math:`I` items. The item step is the same with the roles swapped. Each half-step is the
exact minimiser in its block, so :math:`\mathcal L` never increases (``loss_history``
records it after every half-step). The systems of a block of users are solved together
(one batched product and one batched Cholesky factorisation in PyTorch, users sorted by
degree so that padding is small). A fit is ``num_iters`` sweeps (users, then items,
as in the ``implicit`` library), plus a last user step, so that the stored user factors
are exactly what fold-in computes for the same items.

Shapes:
    - ``user_emb``: ``(U, d)``, ``item_emb``: ``(I, d)`` (float64)
    - ``score(users (N,))`` -> ``(N, I)``: :math:`X_{\text{users}} Y^\top`

**Fold-in** of a user unseen at fit time: one user step against the fitted :math:`Y`,
:math:`\mathbf x = (Y^\top C Y + \lambda I)^{-1} Y^\top C \mathbf p` with her items
(``ratings`` play the role of :math:`r_{ui}`, default 1); for a training user it gives
back her row of ``user_emb``.

Used in: ``chapters/04_matrix_factorisation`` (next to BPR-MF).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

from recsys_ref.models.base import Recommender, check_fit_frame

__all__ = ["WRMF", "als_step", "wrmf_loss", "confidence_matrix"]

#: entries of the largest padded tensor (rows x max degree x d) built in one block
_BLOCK_ENTRIES = 1 << 18

Block = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


def confidence_matrix(users: np.ndarray, items: np.ndarray, weights: np.ndarray | None,
                      num_users: int, num_items: int, alpha: float) -> sp.csr_matrix:
    r""":math:`c_{ui} = 1 + \alpha r_{ui}` on the observed pairs, ``(U, I)`` float64 CSR.

    :math:`r_{ui}` is 1 per pair (``weights=None``, a repeated pair counts once) or the
    sum of the weights of the pair's rows (play counts add up)."""
    if weights is None:
        r = sp.csr_matrix((np.ones(len(users)), (users, items)), shape=(num_users, num_items))
        r.data[:] = 1.0
    else:
        r = sp.csr_matrix((weights.astype(np.float64), (users, items)),
                          shape=(num_users, num_items))
    r.sum_duplicates()
    r.data = 1.0 + alpha * r.data
    return r


def _blocks(conf: sp.csr_matrix, embed_dim: int) -> list[Block]:
    """Rows of ``conf`` with at least one entry, in blocks of rows of similar degree:
    ``(rows (B,), cols (B, L) padded with 0, conf (B, L) padded with 0)``."""
    deg = np.diff(conf.indptr)
    order = np.argsort(deg, kind="stable")
    order = order[deg[order] > 0]                 # an empty row's solution is 0
    blocks, start = [], 0
    for end in range(1, len(order) + 1):
        last = end == len(order)
        if not last:                              # would row `end` overflow the block?
            width = deg[order[end]]               # degrees ascend: the block's largest
            rows = end + 1 - start
            if rows * width * embed_dim <= _BLOCK_ENTRIES and \
                    rows * embed_dim * embed_dim <= _BLOCK_ENTRIES:
                continue
        rows = order[start:end]
        sub = conf[rows]
        width = int(deg[rows].max())
        filled = np.arange(width)[None, :] < deg[rows][:, None]         # (B, L)
        cols = np.zeros(filled.shape, dtype=np.int64)
        vals = np.zeros(filled.shape)
        cols[filled], vals[filled] = sub.indices, sub.data              # row-major order
        blocks.append((torch.from_numpy(rows), torch.from_numpy(cols), torch.from_numpy(vals)))
        start = end
    return blocks


def als_step(blocks: list[Block], fixed: torch.Tensor, l2: float, num_rows: int) -> torch.Tensor:
    r"""One exact half-step: for every row :math:`u`,
    :math:`\mathbf x_u = (F^\top F + \sum_{i} (c_{ui}-1) \mathbf f_i \mathbf f_i^\top
    + \lambda I)^{-1} \sum_i c_{ui} \mathbf f_i` over the row's entries :math:`i`.

    Args:
        blocks: the rows' entries from :func:`_blocks` (of ``conf`` for a user step, of
            ``conf.T`` for an item step).
        fixed: ``(n, d)`` the factors held fixed (:math:`F`).
        l2: :math:`\lambda > 0`.
        num_rows: number of rows solved for (rows without entries get 0).

    Returns:
        ``(num_rows, d)`` factors, dtype of ``fixed``.
    """
    d = fixed.shape[1]
    gram = fixed.T @ fixed + l2 * torch.eye(d, dtype=fixed.dtype)        # (d, d)
    out = torch.zeros(num_rows, d, dtype=fixed.dtype)
    for rows, cols, conf in blocks:
        f = fixed[cols]                                                   # (B, L, d)
        extra = torch.where(conf > 0, conf - 1.0, 0.0).to(fixed.dtype)    # c - 1, pad 0
        a = gram + (f * extra[..., None]).transpose(1, 2) @ f             # (B, d, d)
        b = (f * conf[..., None].to(fixed.dtype)).sum(1, keepdim=True)    # (B, 1, d)
        chol = torch.linalg.cholesky(a)
        out[rows] = torch.cholesky_solve(b.transpose(1, 2), chol)[..., 0]
    return out


def wrmf_loss(conf: sp.csr_matrix, user_emb: torch.Tensor, item_emb: torch.Tensor,
              l2: float) -> float:
    r""":math:`\mathcal L(X, Y)` over all :math:`U \times I` pairs, without forming them:
    :math:`\sum_{u,i} \hat y_{ui}^2 = \langle X^\top X, Y^\top Y \rangle` plus, on the
    observed pairs, :math:`c_{ui}(1 - \hat y_{ui})^2 - \hat y_{ui}^2`, plus the penalty."""
    coo = conf.tocoo()
    u, i = torch.from_numpy(coo.row.astype(np.int64)), torch.from_numpy(coo.col.astype(np.int64))
    c = torch.from_numpy(coo.data).to(user_emb.dtype)
    y_hat = (user_emb[u] * item_emb[i]).sum(1)
    total = ((user_emb.T @ user_emb) * (item_emb.T @ item_emb)).sum()
    total = total + (c * (1.0 - y_hat) ** 2 - y_hat ** 2).sum()
    return float(total + l2 * (user_emb.pow(2).sum() + item_emb.pow(2).sum()))


class WRMF(Recommender):
    r"""Implicit-feedback matrix factorisation by alternating least squares (Hu et al. 2008).

    Args:
        embed_dim: number of factors :math:`d` (default 64).
        alpha: confidence slope :math:`\alpha` in :math:`c = 1 + \alpha r` (default 20.0,
            chosen below).
        l2: :math:`\lambda`, the L2 penalty on both factor matrices (default 100.0, chosen
            below).
        num_iters: sweeps of (user step, item step) (default 10).
        seed: seeds the initial item factors, :math:`\mathcal N(0, 0.01^2)` (the fit is
            deterministic given the seed).

    Reads a ``weight`` column as :math:`r_{ui}` when the frame has one (positive values,
    e.g. play counts; repeated pairs add up); otherwise every observed pair has
    :math:`r_{ui} = 1`. A ``rating`` column is ignored (explicit stars are not
    confidences; pass ``weight=rating`` yourself to use them as such).

    Defaults chosen on the validation part of the Recommenders ML-100K split, seed 42
    (train without validation, ranked for the validation rows), nDCG@10, as chapter 4
    chooses them: ``alpha`` in {10, 20, 40} x ``l2`` in {50, 100, 200} at
    ``embed_dim=64`` and 10 sweeps gives ``alpha=20, l2=100``. A wider search first
    (``alpha`` in {1, 2, 5, 10, 20, 40} x ``l2`` in {1, 10, 50, 100}, 15 sweeps) found
    the good pairs on a ridge with ``l2 / alpha`` near 5 (``l2`` 1 or 10 overfit:
    .1300-.1637); along it the best pairs differ by less than .003 (15 / 75: .1873,
    20 / 100: .1849; ``embed_dim`` 128: .1864, 32: .1844). 30 sweeps instead of 15
    change nDCG@10 by .0004 (the loss has converged).
    """

    name = "wrmf"

    def __init__(self, embed_dim: int = 64, alpha: float = 20.0, l2: float = 100.0,
                 num_iters: int = 10, seed: int = 0):
        if not isinstance(embed_dim, (int, np.integer)) or embed_dim < 1:
            raise ValueError(f"embed_dim must be a positive integer, got {embed_dim!r}")
        if not np.isfinite(alpha) or alpha < 0:
            raise ValueError(f"alpha must be >= 0 (confidence 1 + alpha * r), got {alpha!r}")
        if not np.isfinite(l2) or l2 <= 0:
            raise ValueError(f"l2 must be positive (it keeps every least-squares system "
                             f"invertible), got {l2!r}")
        if not isinstance(num_iters, (int, np.integer)) or num_iters < 1:
            raise ValueError(f"num_iters must be a positive integer, got {num_iters!r}")
        self.embed_dim, self.alpha, self.l2 = int(embed_dim), float(alpha), float(l2)
        self.num_iters, self.seed = int(num_iters), seed
        self.user_emb: torch.Tensor | None = None
        self.item_emb: torch.Tensor | None = None
        self.loss_history: list[float] = []

    def initial_item_factors(self, num_items: int) -> torch.Tensor:
        """The starting :math:`Y`, ``(num_items, d)`` float64, drawn from ``seed``."""
        gen = torch.Generator().manual_seed(int(self.seed))
        return 0.01 * torch.randn(num_items, self.embed_dim, generator=gen,
                                  dtype=torch.float64)

    def fit(self, train: pd.DataFrame, num_users: int, num_items: int,
            valid: pd.DataFrame | None = None) -> "WRMF":
        self._store_train(train, num_users, num_items)
        users, items, weights = check_fit_frame(train, num_users, num_items, rating="weight")
        if weights is not None and (weights <= 0).any():
            raise ValueError("WRMF reads 'weight' as the strength of an observed interaction "
                             "(confidence 1 + alpha * weight): every value must be > 0; drop "
                             "the rows with weight <= 0 (absent pairs already mean 0)")
        conf = confidence_matrix(users, items, weights, num_users, num_items, self.alpha)
        by_user = _blocks(conf, self.embed_dim)
        by_item = _blocks(conf.T.tocsr(), self.embed_dim)
        item_emb = self.initial_item_factors(num_items)
        self.loss_history = []
        for _ in range(self.num_iters):
            user_emb = als_step(by_user, item_emb, self.l2, num_users)
            self.loss_history.append(wrmf_loss(conf, user_emb, item_emb, self.l2))
            item_emb = als_step(by_item, user_emb, self.l2, num_items)
            self.loss_history.append(wrmf_loss(conf, user_emb, item_emb, self.l2))
        user_emb = als_step(by_user, item_emb, self.l2, num_users)   # fold-in consistent
        self.loss_history.append(wrmf_loss(conf, user_emb, item_emb, self.l2))
        self.user_emb, self.item_emb = user_emb, item_emb
        return self

    def score(self, users) -> torch.Tensor:
        users = self._check_users(users)
        return (self.user_emb[users] @ self.item_emb.T).float()

    def _score_items(self, items: np.ndarray, ratings: np.ndarray) -> torch.Tensor:
        """One exact user step against the fitted item factors (``ratings`` = :math:`r`)."""
        if (ratings <= 0).any():
            raise ValueError("ratings are interaction strengths r (confidence 1 + alpha * r) "
                             "and must be > 0")
        row = sp.csr_matrix((1.0 + self.alpha * ratings, (np.zeros(len(items), np.int64),
                                                          items)), shape=(1, self.num_items))
        user = als_step(_blocks(row, self.embed_dim), self.item_emb, self.l2, 1)[0]
        return (self.item_emb @ user).float()
