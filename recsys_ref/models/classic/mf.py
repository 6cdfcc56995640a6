r"""Biased matrix factorisation for explicit ratings (Koren, Bell & Volinsky, 2009),
trained by alternating least squares with per-rating ("weighted-:math:`\lambda`")
regularisation (Zhou et al., 2008).

The prediction adds a global mean, a user bias, an item bias and a dot product:

.. math::

    \hat r_{ui} = \mu + b_u + b_i + \mathbf{p}_u^\top \mathbf{q}_i .

The objective is the regularised squared error summed over the observed ratings
:math:`\mathcal{D}`, the same per-rating objective that Funk-style SGD minimises:

.. math::

    \mathcal{L} = \sum_{(u,i) \in \mathcal{D}} \Big[ \tfrac12 e_{ui}^2
        + \tfrac{\lambda}{2} \big(\lVert \mathbf{p}_u \rVert^2 + \lVert \mathbf{q}_i \rVert^2\big)
        + \tfrac{\lambda_b}{2} \big(b_u^2 + b_i^2\big) \Big],
    \qquad e_{ui} = r_{ui} - \hat r_{ui},

so a user with :math:`n_u` ratings carries :math:`n_u` copies of her penalty. Its
gradients (:func:`mf_gradients`, checked against autograd in the tests) are

.. math::

    \frac{\partial \mathcal{L}}{\partial \mathbf{p}_u}
        = -\sum_{i \in \mathcal{I}_u} e_{ui} \mathbf{q}_i + \lambda n_u \mathbf{p}_u, \qquad
    \frac{\partial \mathcal{L}}{\partial b_u} = -\sum_{i \in \mathcal{I}_u} e_{ui}
        + \lambda_b n_u b_u ,

and symmetrically for items. With the items fixed, setting the user gradient to zero is a
ridge regression per user: with :math:`\mathbf{x}_i = (1, \mathbf{q}_i)`,
:math:`\boldsymbol\theta_u = (b_u, \mathbf{p}_u)`, :math:`y_{ui} = r_{ui} - \mu - b_i`
and :math:`\Lambda = \mathrm{diag}(\lambda_b, \lambda, \dots, \lambda)`,

.. math::

    \Big(\sum_{i \in \mathcal{I}_u} \mathbf{x}_i \mathbf{x}_i^\top + n_u \Lambda\Big)
    \boldsymbol\theta_u = \sum_{i \in \mathcal{I}_u} y_{ui}\, \mathbf{x}_i .

One ALS *epoch* solves this for every user, then the mirror system for every item. All
users are solved at once: the per-item outer products :math:`\mathbf{x}_i \mathbf{x}_i^\top`
are flattened into an ``(I, (d+1)^2)`` matrix, one sparse product with the rating
pattern gives every user's Gram matrix, and ``torch.linalg.solve`` solves the batch.
No Python loop runs over users or ratings.

Shapes:
    - ``user_factors``: ``(U, d)``, ``item_factors``: ``(I, d)``
    - ``user_bias``: ``(U,)``, ``item_bias``: ``(I,)``
    - ``predict(users (N,), items (N,))`` -> ``(N,)`` ratings
    - ``score(users (B,))`` -> ``(B, I)`` predicted ratings (for ranking)

Used in: ``chapters/04_matrix_factorisation``.
"""
from __future__ import annotations

import time

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

from recsys_ref.protocol.metrics import mae, rmse
from recsys_ref.models.base import Recommender, check_fit_frame

__all__ = ["BiasedMF", "mf_predict", "mf_loss", "mf_gradients"]


def mf_predict(mu: float, user_bias: torch.Tensor, item_bias: torch.Tensor,
               user_factors: torch.Tensor, item_factors: torch.Tensor,
               users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
    r""":math:`\mu + b_u + b_i + \mathbf{p}_u^\top \mathbf{q}_i` for each
    ``(users[n], items[n])``."""
    dot = (user_factors[users] * item_factors[items]).sum(-1)
    return mu + user_bias[users] + item_bias[items] + dot


def mf_loss(mu: float, user_bias: torch.Tensor, item_bias: torch.Tensor,
            user_factors: torch.Tensor, item_factors: torch.Tensor,
            users: torch.Tensor, items: torch.Tensor, ratings: torch.Tensor,
            reg: float, bias_reg: float) -> torch.Tensor:
    r"""The objective :math:`\mathcal{L}` of the module docstring (a sum, not a mean)."""
    err = ratings - mf_predict(mu, user_bias, item_bias, user_factors, item_factors, users, items)
    return (0.5 * err.pow(2).sum()
            + 0.5 * reg * (user_factors[users].pow(2).sum() + item_factors[items].pow(2).sum())
            + 0.5 * bias_reg * (user_bias[users].pow(2).sum() + item_bias[items].pow(2).sum()))


def mf_gradients(mu: float, user_bias: torch.Tensor, item_bias: torch.Tensor,
                 user_factors: torch.Tensor, item_factors: torch.Tensor,
                 users: torch.Tensor, items: torch.Tensor, ratings: torch.Tensor,
                 reg: float, bias_reg: float) -> dict[str, torch.Tensor]:
    r"""Hand-derived gradients of :func:`mf_loss` (see the module docstring).

    Each rating contributes :math:`-e_{ui}\mathbf{q}_i + \lambda \mathbf{p}_u` to
    :math:`\mathbf{p}_u`'s gradient; ``index_add_`` sums the contributions per row.

    Returns:
        ``{"user_bias": (U,), "item_bias": (I,), "user_factors": (U, d),
        "item_factors": (I, d)}``.
    """
    err = ratings - mf_predict(mu, user_bias, item_bias, user_factors, item_factors, users, items)
    p, q = user_factors[users], item_factors[items]                    # (N, d)
    g_p = torch.zeros_like(user_factors).index_add_(0, users, -err[:, None] * q + reg * p)
    g_q = torch.zeros_like(item_factors).index_add_(0, items, -err[:, None] * p + reg * q)
    g_bu = torch.zeros_like(user_bias).index_add_(0, users, -err + bias_reg * user_bias[users])
    g_bi = torch.zeros_like(item_bias).index_add_(0, items, -err + bias_reg * item_bias[items])
    return {"user_bias": g_bu, "item_bias": g_bi, "user_factors": g_p, "item_factors": g_q}


def _als_half_step(pattern: sp.csr_matrix, residual: sp.csr_matrix, other: torch.Tensor,
                   reg: float, bias_reg: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Solve every row's ridge regression at once (see the module docstring).

    Args:
        pattern: ``(R, C)`` binary rating pattern (CSR, float64).
        residual: ``(R, C)`` targets :math:`y` on the same pattern.
        other: ``(C, d)`` fixed factors of the other side.

    Returns:
        ``(bias (R,), factors (R, d))``.
    """
    d = other.shape[1]
    x = torch.cat([torch.ones(len(other), 1, dtype=other.dtype), other], 1)     # (C, d+1)
    # float32 for the big product; the solve runs in float64
    x32 = x.float()
    outer = (x32[:, :, None] * x32[:, None, :]).reshape(len(other), -1).numpy()  # (C, (d+1)^2)
    gram = torch.as_tensor(pattern.astype(np.float32) @ outer).double().reshape(-1, d + 1, d + 1)
    rhs = torch.as_tensor(residual @ x.numpy())                                 # (R, d+1)
    n = torch.as_tensor(np.asarray(pattern.sum(1)).ravel()).clamp(min=1.0)      # (R,)
    lam = torch.full((d + 1,), float(reg), dtype=other.dtype)
    lam[0] = bias_reg
    gram.diagonal(dim1=1, dim2=2).add_(n[:, None] * lam)                        # + n_u diag(lam)
    theta = torch.linalg.solve(gram, rhs.unsqueeze(-1)).squeeze(-1)            # (R, d+1)
    return theta[:, 0].contiguous(), theta[:, 1:].contiguous()


class BiasedMF(Recommender):
    """Biased MF for explicit ratings, trained by vectorised ALS.

    Args:
        embed_dim: factor size :math:`d` (default 80).
        reg: :math:`\\lambda`, per-rating L2 weight of the factors (default 0.12).
        bias_reg: :math:`\\lambda_b`, per-rating L2 weight of the biases (default 0.01).
        num_epochs: ALS sweeps (users then items; default 10).
        init_std: std of the normal initialisation of the factors (default 0.1).
        clip: clip predictions to the rating range seen in training (default True).
        seed: seeds the initialisation.

    ``fit`` needs a ``rating`` column with one row per ``(user, item)`` pair; its values
    are regressed as they are. Implicit weights (play counts, clicks) are allowed but
    this squared-error model fits their scale, so transform skewed counts first
    (``np.log1p``) or use :class:`~recsys_ref.models.classic.bprmf.BPRMF`, which ranks.
    ``history`` holds the training RMSE and, when ``valid`` is given, the validation RMSE
    after every epoch.

    A new user is folded in (:meth:`score_items` with ``ratings``) by the same ridge
    regression as one ALS user step, with the items fixed.
    """

    name = "biasedmf"

    def __init__(self, embed_dim: int = 80, reg: float = 0.12, bias_reg: float = 0.01,
                 num_epochs: int = 10, init_std: float = 0.1, clip: bool = True, seed: int = 0):
        if embed_dim < 1 or num_epochs < 1:
            raise ValueError(f"embed_dim and num_epochs must be >= 1, got {embed_dim}, "
                             f"{num_epochs}")
        if reg < 0 or bias_reg < 0:
            raise ValueError(f"reg and bias_reg must be >= 0, got {reg}, {bias_reg}")
        if reg == 0:
            raise ValueError("reg=0 makes the ALS systems singular for rarely rated items; "
                             "use reg > 0")
        self.embed_dim, self.reg, self.bias_reg = embed_dim, reg, bias_reg
        self.num_epochs, self.init_std, self.clip, self.seed = num_epochs, init_std, clip, seed
        self.mu = 0.0
        self.user_bias = self.item_bias = self.user_factors = self.item_factors = None
        self.history: pd.DataFrame | None = None
        self.epoch_seconds: float | None = None

    def _check_ratings(self, df: pd.DataFrame, what: str, num_users: int, num_items: int,
                       unique: bool = False) -> None:
        if "rating" not in df.columns:
            raise ValueError(f"{what} frame lacks a 'rating' column: BiasedMF learns explicit "
                             "ratings (use BPRMF for implicit feedback)")
        check_fit_frame(df, num_users, num_items, require_rating=True, unique=unique, what=what)

    def fit(self, train: pd.DataFrame, num_users: int, num_items: int,
            valid: pd.DataFrame | None = None) -> "BiasedMF":
        self._check_ratings(train, "training", num_users, num_items, unique=True)
        if valid is not None:
            self._check_ratings(valid, "validation", num_users, num_items)
        self._store_train(train, num_users, num_items, require_rating=True, unique=True)
        u, i, r = check_fit_frame(train, num_users, num_items, require_rating=True)
        self.mu = float(r.mean())
        self.r_min, self.r_max = float(r.min()), float(r.max())
        pattern = sp.csr_matrix((np.ones_like(r), (u, i)), shape=(num_users, num_items))
        pattern_t = pattern.T.tocsr()
        gen = torch.Generator().manual_seed(self.seed)
        d = self.embed_dim
        f64 = torch.float64
        self.user_factors = torch.randn(num_users, d, generator=gen, dtype=f64) * self.init_std
        self.item_factors = torch.randn(num_items, d, generator=gen, dtype=f64) * self.init_std
        self.user_bias = torch.zeros(num_users, dtype=torch.float64)
        self.item_bias = torch.zeros(num_items, dtype=torch.float64)
        rows, times = [], []
        for epoch in range(self.num_epochs):
            t0 = time.perf_counter()
            y = r - self.mu - self.item_bias.numpy()[i]
            self.user_bias, self.user_factors = _als_half_step(
                pattern, sp.csr_matrix((y, (u, i)), shape=pattern.shape),
                self.item_factors, self.reg, self.bias_reg)
            y = r - self.mu - self.user_bias.numpy()[u]
            self.item_bias, self.item_factors = _als_half_step(
                pattern_t, sp.csr_matrix((y, (i, u)), shape=pattern_t.shape),
                self.user_factors, self.reg, self.bias_reg)
            times.append(time.perf_counter() - t0)
            row = {"epoch": epoch, "train_rmse": self.evaluate(train)["rmse"]}
            if valid is not None and len(valid):
                row["valid_rmse"] = self.evaluate(valid)["rmse"]
            rows.append(row)
        self.history = pd.DataFrame(rows)
        self.epoch_seconds = float(np.median(times))
        return self

    def predict(self, users, items) -> torch.Tensor:
        """Predicted ratings for the pairs ``(users[n], items[n])``, ``(N,)`` float64."""
        users = self._check_users(users)
        items = torch.as_tensor(items, dtype=torch.long)
        if items.shape != users.shape:
            raise ValueError(f"users and items must have the same shape, got {tuple(users.shape)} "
                             f"and {tuple(items.shape)}")
        if items.numel() and (items.min() < 0 or items.max() >= self.num_items):
            raise ValueError(f"item index outside 0..{self.num_items - 1}: pass 0-based indices")
        pred = mf_predict(self.mu, self.user_bias, self.item_bias, self.user_factors,
                          self.item_factors, users, items)
        return pred.clamp(self.r_min, self.r_max) if self.clip else pred

    def evaluate(self, df: pd.DataFrame) -> dict[str, float]:
        """``{"rmse": ..., "mae": ...}`` of the predictions on a rating frame."""
        self._check_fitted()
        self._check_ratings(df, "evaluation", self.num_users, self.num_items)
        pred = self.predict(df["user"].to_numpy(copy=True), df["item"].to_numpy(copy=True)).numpy()
        truth = df["rating"].to_numpy(dtype=np.float64)
        return {"rmse": rmse(truth, pred), "mae": mae(truth, pred)}

    def score(self, users) -> torch.Tensor:
        """Unclipped predicted ratings of every item, ``(len(users), I)`` float32."""
        users = self._check_users(users)
        s = (self.mu + self.user_bias[users, None] + self.item_bias[None, :]
             + self.user_factors[users] @ self.item_factors.T)
        return s.float()

    def _score_items(self, items: np.ndarray, ratings: np.ndarray) -> torch.Tensor:
        r"""Fold-in: :math:`(b_u, \mathbf p_u)` from the user step of the module docstring
        (items fixed, the same :math:`\lambda, \lambda_b`), then
        :math:`\mu + b_u + b_i + \mathbf p_u^\top \mathbf q_i` for every item (unclipped,
        like :meth:`score`)."""
        if len(items) == 0:
            raise ValueError("BiasedMF folds in a user from at least one rated item")
        idx = torch.as_tensor(items)
        x = torch.cat([torch.ones(len(items), 1, dtype=torch.float64),
                       self.item_factors[idx]], 1)                          # (n, d+1)
        y = torch.as_tensor(ratings) - self.mu - self.item_bias[idx]         # (n,)
        lam = torch.full((x.shape[1],), float(self.reg), dtype=torch.float64)
        lam[0] = self.bias_reg
        theta = torch.linalg.solve(x.T @ x + len(items) * torch.diag(lam), x.T @ y)
        s = self.mu + theta[0] + self.item_bias + self.item_factors @ theta[1:]
        return s.float()
