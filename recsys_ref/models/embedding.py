r"""Base class for recommenders that score by a dot product of learned representations
and train on mini-batches of observed ``(user, item)`` pairs with sampled negatives.

A subclass only says how representations are computed:

.. code-block:: python

    class MyModel(EmbeddingRecommender):
        name = "mymodel"
        def build(self) -> torch.nn.Module:      # called in fit(), after self.train_df is set
            return MyModule(self.num_users, self.num_items, self.embed_dim)

where the module's ``forward()`` returns ``(user_emb (U, d), item_emb (I, d))`` for the
whole graph (GNNs propagate here) and may define ``reg_loss(users, pos, neg)`` (an L2 term
on the batch's free parameters; :func:`rows_l2` computes one with a hand-written
gradient). Scores are :math:`\hat y_{ui} = \mathbf{e}_u^\top
\mathbf{e}_i`; the loss is BPR or sampled softmax (:mod:`recsys_ref.nn.losses`). Validation
(``valid`` frame given to ``fit``) measures ``valid_metric@valid_k`` every ``eval_every``
epochs, stops after ``patience`` evaluations without improvement and restores the best
weights.

Training loop (:meth:`EmbeddingRecommender.fit`): each epoch shuffles the observed pairs
and draws all their negatives in one vectorised call (:meth:`_epoch_triples`), then takes
``batch_size`` pairs per Adam step (the fused implementation on CPU and CUDA) and sums the
loss on the device, so nothing waits for the host inside an epoch.

Used in: ``chapters/04_matrix_factorisation`` (BPR-MF) and every GNN chapter.
"""
from __future__ import annotations

import time

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from recsys_ref.protocol.evaluate import evaluate_ranking
from recsys_ref.nn.losses import NegativeSampler, bpr_loss, softmax_loss
from recsys_ref.train.loop import History, get_device, train_loop
from recsys_ref.models.base import Recommender

__all__ = ["EmbeddingRecommender", "RowsSquaredNorm", "rows_l2", "batch_rows"]


class RowsSquaredNorm(torch.autograd.Function):
    r""":math:`\sum_k \lVert W_{r_k} \rVert^2` over the rows ``index`` ``(K,)`` of a table
    ``W (N, d)`` (a row listed twice counts twice), without gathering the rows.

    With :math:`c_r` the number of times row :math:`r` occurs in ``index``,
    :math:`\sum_k \lVert W_{r_k}\rVert^2 = \sum_r c_r \lVert W_r\rVert^2`, whose gradient
    is :math:`2 c_r W_r`: one pass over the table forward and one backward, instead of
    autograd's gather, square, sum and scatter of a ``(K, d)`` block (``K`` can be several
    times ``N`` for the batch L2 term of BPR).
    """

    @staticmethod
    def forward(ctx, table: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        counts = torch.bincount(index, minlength=table.shape[0]).to(table.dtype)   # c_r, (N,)
        ctx.save_for_backward(table, counts)
        return torch.dot(counts, torch.linalg.vector_norm(table, dim=1).square())

    @staticmethod
    def backward(ctx, grad):
        table, counts = ctx.saved_tensors
        return table * (2 * grad * counts).unsqueeze(1), None                      # 2 c_r W_r


def rows_l2(table: torch.Tensor, *indices: torch.Tensor, batch: int | None = None) -> torch.Tensor:
    r"""The batch L2 term :math:`\frac{1}{2B}\sum \lVert W_r \rVert^2` over the rows of
    ``table`` listed in ``indices`` (flattened and concatenated; repeats count), with
    :math:`B` = ``batch`` (default: the length of the first index). Same value as
    ``table[torch.cat(indices)].pow(2).sum() / (2 * B)`` through :class:`RowsSquaredNorm`."""
    flat = torch.cat([i.reshape(-1) for i in indices])
    batch = indices[0].numel() if batch is None else batch
    return RowsSquaredNorm.apply(table, flat) / (2 * batch)


def batch_rows(users: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor | None,
               num_users: int) -> list[torch.Tensor]:
    """Rows of a stacked ``(U+I, d)`` user-then-item table that a batch touches: its users
    ``(B,)``, positives ``(B,)`` and negatives ``(B, n)`` (flattened), items offset by
    ``num_users``."""
    parts = [users, pos + num_users]
    if neg is not None:
        parts.append(neg.reshape(-1) + num_users)
    return parts


class EmbeddingRecommender(Recommender):
    """Mini-batch pairwise/softmax training of a representation model.

    Args:
        embed_dim: representation size :math:`d`.
        lr: Adam learning rate.
        reg: weight of the module's ``reg_loss`` (L2 on the batch's embeddings).
        num_epochs: maximum epochs.
        batch_size: positive pairs per step.
        num_neg: sampled negatives per positive.
        loss: ``"bpr"`` or ``"softmax"`` (``num_neg=None`` means the full catalogue).
        temperature: softmax temperature.
        eval_every, patience, valid_metric, valid_k: early stopping on ``valid``.
        device: ``None`` picks CUDA when available.
        seed: seeds initialisation, shuffling and negative sampling.
        progress: show a progress bar.
    """

    name = "embedding"
    uses_validation = True

    def __init__(self, embed_dim: int = 64, lr: float = 1e-3, reg: float = 1e-4,
                 num_epochs: int = 100, batch_size: int = 2048, num_neg: int | None = 1,
                 loss: str = "bpr", temperature: float = 1.0, eval_every: int = 5,
                 patience: int | None = 5, valid_metric: str = "ndcg", valid_k: int = 10,
                 device: str | None = None, seed: int = 0, progress: bool = False):
        if embed_dim < 1 or batch_size < 1 or num_epochs < 1:
            raise ValueError("embed_dim, batch_size and num_epochs must be positive")
        if loss not in ("bpr", "softmax"):
            raise ValueError(f"loss must be 'bpr' or 'softmax', got {loss!r}")
        if loss == "bpr" and num_neg is None:
            raise ValueError("BPR needs sampled negatives: set num_neg >= 1")
        self.embed_dim, self.lr, self.reg = embed_dim, lr, reg
        self.num_epochs, self.batch_size, self.num_neg = num_epochs, batch_size, num_neg
        self.loss, self.temperature = loss, temperature
        self.eval_every, self.patience = eval_every, patience
        self.valid_metric, self.valid_k = valid_metric, valid_k
        self.device = get_device(device)
        self.seed, self.progress = seed, progress
        self.module: torch.nn.Module | None = None
        self.history: History | None = None
        self.epoch_seconds: float | None = None
        self._cache: tuple[torch.Tensor, torch.Tensor] | None = None

    # -- to override -----------------------------------------------------------------
    def build(self) -> torch.nn.Module:  # pragma: no cover - abstract
        raise NotImplementedError

    # -- training --------------------------------------------------------------------
    def _batch_loss(self, user_emb, item_emb, users, pos, neg) -> torch.Tensor:
        """BPR or softmax over ``num_neg`` sampled negatives, or (``num_neg=None``, softmax
        only) over the whole catalogue (:meth:`_full_softmax`); plus ``reg`` times the
        module's ``reg_loss`` when it has one."""
        if self.loss == "softmax" and self.num_neg is None:
            loss = self._full_softmax(user_emb, item_emb, users, pos)
        else:
            u = user_emb[users]                                   # (B, d)
            pos_scores = (u * item_emb[pos]).sum(-1)              # (B,)
            other = torch.einsum("bd,bnd->bn", u, item_emb[neg])  # (B, n)
            if self.loss == "bpr":
                loss = bpr_loss(pos_scores, other)
            else:
                loss = softmax_loss(pos_scores, other, self.temperature)
        if self.reg > 0 and hasattr(self.module, "reg_loss"):
            loss = loss + self.reg * self.module.reg_loss(users, pos, neg)
        return loss

    def _full_softmax(self, user_emb, item_emb, users, pos, unit: bool = False) -> torch.Tensor:
        r"""Full-catalogue softmax cross-entropy, the batch mean of
        :math:`-s_{ui}/\tau + \log \sum_{j=1}^{I} \exp(s_{uj}/\tau)` (the positive against
        every item), with the logits computed once per *distinct* user of the batch:
        ``(U_B, I)`` instead of ``(B, I)``, the same value (a user with several positives in
        the batch shares one row of logits). ``unit`` scales the rows to unit length first
        (cosine scores, :class:`~recsys_ref.models.graph.lightgcn.LightGCN`'s ``normalize``)."""
        uniq, inv = torch.unique(users, return_inverse=True)                  # (U_B,), (B,)
        u, items = user_emb.index_select(0, uniq), item_emb                   # (U_B, d), (I, d)
        if unit:
            u, items = F.normalize(u, dim=-1), F.normalize(items, dim=-1)
        logits = u @ items.T / self.temperature                               # (U_B, I)
        return (torch.logsumexp(logits, 1).index_select(0, inv) - logits[inv, pos]).mean()

    def _make_optimizer(self) -> torch.optim.Optimizer:
        """Adam over all parameters. On CPU and CUDA the *fused* implementation is used:
        the same update rule (Kingma & Ba) in one kernel per step instead of a dozen
        element-wise passes with temporaries, which matters when a step is only a few
        milliseconds."""
        fused = self.device.type in ("cpu", "cuda")
        return torch.optim.Adam(self.module.parameters(), lr=self.lr, fused=fused)

    def _train_pairs(self, mat) -> tuple[torch.Tensor, torch.Tensor]:
        """The observed ``(user, item)`` pairs of the training matrix as two ``(E,)``
        LongTensors on the CPU (:meth:`_epoch_triples` moves each epoch's shuffled copy to
        the device)."""
        coo = mat.tocoo()
        return (torch.as_tensor(coo.row, dtype=torch.long),
                torch.as_tensor(coo.col, dtype=torch.long))

    def _epoch_triples(self, pairs_u: torch.Tensor, pairs_i: torch.Tensor,
                       sampler: NegativeSampler | None, gen: torch.Generator):
        """One epoch of training data, drawn in one go: the pairs in a random order
        (``torch.randperm`` with ``gen``) and, when ``num_neg`` is set, ``num_neg``
        negatives per pair drawn by **one** vectorised call of ``sampler`` (uniform over
        the user's non-interacted items, as in a per-batch call, but without ~40 small
        NumPy round trips per epoch). Returns ``users (E,)``, ``pos (E,)`` and ``neg
        (E, n)`` or ``None``, on ``self.device`` (one copy per epoch, none on CPU)."""
        perm = torch.randperm(len(pairs_u), generator=gen)
        users, pos = pairs_u[perm], pairs_i[perm]
        neg = sampler(users.numpy(), self.num_neg) if self.num_neg else None
        if self.device.type != "cpu":
            users, pos = users.to(self.device), pos.to(self.device)
            neg = neg.to(self.device) if neg is not None else None
        return users, pos, neg

    def _fit_setup(self, train: pd.DataFrame, num_users: int, num_items: int):
        """What every ``fit`` does before its first epoch, in this order (it fixes the
        random streams): store the training matrix, seed torch, build the module on the
        device, then the optimiser, the negative sampler, the training pairs and the
        shuffling generator. Returns ``(opt, sampler, pairs_u, pairs_i, gen)``."""
        mat = self._store_train(train, num_users, num_items)
        self.train_df = train
        torch.manual_seed(self.seed)
        self.module = self.build().to(self.device)
        opt = self._make_optimizer()
        sampler = NegativeSampler(mat, seed=self.seed)
        pairs_u, pairs_i = self._train_pairs(mat)
        gen = torch.Generator().manual_seed(self.seed)
        return opt, sampler, pairs_u, pairs_i, gen

    def fit(self, train: pd.DataFrame, num_users: int, num_items: int,
            valid: pd.DataFrame | None = None) -> "EmbeddingRecommender":
        opt, sampler, pairs_u, pairs_i, gen = self._fit_setup(train, num_users, num_items)
        times: list[float] = []

        def step(epoch: int) -> float:
            t0 = time.perf_counter()
            self.module.train()
            self._cache = None
            users_all, pos_all, neg_all = self._epoch_triples(pairs_u, pairs_i, sampler, gen)
            total = torch.zeros((), dtype=torch.float64, device=self.device)
            for start in range(0, len(users_all), self.batch_size):
                batch = slice(start, start + self.batch_size)
                users, pos = users_all[batch], pos_all[batch]
                neg = neg_all[batch] if neg_all is not None else None
                user_emb, item_emb = self.module()
                loss = self._batch_loss(user_emb, item_emb, users, pos, neg)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                total += loss.detach() * len(users)       # summed on the device:
            mean_loss = float(total) / len(users_all)  # one host sync per epoch
            times.append(time.perf_counter() - t0)
            return mean_loss

        return self._run_epochs(step, times, train, valid)

    def _run_epochs(self, step, times: list[float], train: pd.DataFrame,
                    valid: pd.DataFrame | None) -> "EmbeddingRecommender":
        """Run ``step`` under :func:`~recsys_ref.train.loop.train_loop`, early-stopping on
        ``valid_metric@valid_k`` of ``valid`` (training items masked) when ``valid`` is
        given; record the history and the median epoch time. Shared by every subclass
        that writes its own ``step``."""
        evaluate = None
        if valid is not None and len(valid) > 0:
            def evaluate() -> float:
                self._cache = None
                res = evaluate_ranking(self.score, valid, self.num_users, self.num_items,
                                       self.valid_k, exclude=[train], metrics=[self.valid_metric])
                return res[self.valid_metric]

        self.history = train_loop(step, self.num_epochs, evaluate, self.eval_every,
                                  self.patience if evaluate else None, self.module,
                                  self.progress, desc=self.name)
        self.epoch_seconds = float(np.median(times)) if times else None
        self._cache = None
        return self

    # -- inference -------------------------------------------------------------------
    @torch.no_grad()
    def embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Final ``(user_emb (U, d), item_emb (I, d))`` in eval mode (cached)."""
        self._check_fitted()
        if self._cache is None:
            self.module.eval()
            self._cache = tuple(t.detach() for t in self.module())
        return self._cache

    def score(self, users: torch.Tensor) -> torch.Tensor:
        users = self._check_users(users)
        user_emb, item_emb = self.embeddings()
        return user_emb[users.to(user_emb.device)] @ item_emb.T

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.num_users}+{self.num_items}, {self.embed_dim}, "
                f"loss={self.loss})")
