r"""BPR-MF: matrix factorisation for implicit feedback trained with Bayesian Personalised
Ranking (Rendle et al., UAI 2009).

A user's score of an item is a dot product plus an item bias (the bias absorbs
popularity, as in Cornac's and LibRec's BPR):

.. math::

    \hat y_{ui} = \mathbf{p}_u^\top \mathbf{q}_i + b_i .

Each training triple pairs an observed item :math:`i` with an item :math:`j` drawn
uniformly among the items the user has **not** interacted with
(:class:`recsys_ref.nn.losses.NegativeSampler`), and BPR maximises the probability that the
observed item ranks higher:

.. math::

    \mathcal{L} = -\frac{1}{|B|} \sum_{(u,i,j) \in B} \log \sigma(\hat y_{ui} - \hat y_{uj})
        + \frac{\lambda}{2|B|} \sum_{(u,i,j) \in B} \big(\lVert \mathbf{p}_u \rVert^2
        + \lVert \mathbf{q}_i \rVert^2 + \lVert \mathbf{q}_j \rVert^2 + b_i^2 + b_j^2\big).

The training loop is written for speed: one epoch draws all its negatives in a single
vectorised call, then takes large mini-batches (``batch_size`` triples) with Adam. Each
step computes the loss above *and its gradient* by hand (:class:`BPRMFLoss`): with
:math:`x_{uij} = \hat y_{ui} - \hat y_{uj}`, :math:`c_{uij} = \partial\mathcal{L} /
\partial x_{uij} = -\sigma(-x_{uij}) / |B|` and :math:`r = \lambda / |B|`,

.. math::

    \frac{\partial \mathcal{L}}{\partial \mathbf{p}_u} = c\,(\mathbf{q}_i - \mathbf{q}_j)
        + r\,\mathbf{p}_u,\quad
    \frac{\partial \mathcal{L}}{\partial \mathbf{q}_i} = c\,\mathbf{p}_u + r\,\mathbf{q}_i,\quad
    \frac{\partial \mathcal{L}}{\partial \mathbf{q}_j} = -c\,\mathbf{p}_u + r\,\mathbf{q}_j,\quad
    \frac{\partial \mathcal{L}}{\partial b_i} = c + r\,b_i,\quad
    \frac{\partial \mathcal{L}}{\partial b_j} = -c + r\,b_j,

summed per table row with one ``index_add_`` (a row that occurs several times in the
batch collects every occurrence). That is the gradient autograd would compute (the tests
check it with ``torch.autograd.gradcheck``), in a handful of large kernels instead of
autograd's chain of gathers, powers and scatters. Validation (``valid`` given to
``fit``) measures ``valid_metric@valid_k`` every ``eval_every`` epochs, stops after
``patience`` evaluations without improvement and restores the best weights.

Shapes:
    - ``forward()`` -> ``user_emb (U, d+1)``, ``item_emb (I, d+1)`` (a column of ones on
      the user side and the bias on the item side, so scores stay a dot product)
    - ``score(users (B,))`` -> ``(B, I)``

Used in: ``chapters/04_matrix_factorisation``.
"""
from __future__ import annotations

import math
import time

import pandas as pd
import torch
from torch import nn

from recsys_ref.models.embedding import EmbeddingRecommender

__all__ = ["MFModule", "BPRMFLoss", "bpr_mf_loss", "BPRMF"]


class MFModule(nn.Module):
    """User and item embedding tables plus an optional item bias.

    Args:
        num_users, num_items: table sizes.
        embed_dim: :math:`d`.
        item_bias: learn :math:`b_i` (default True).
        init_std: std of the normal initialisation of the embeddings (default 0.1).
    """

    def __init__(self, num_users: int, num_items: int, embed_dim: int, item_bias: bool = True,
                 init_std: float = 0.1):
        super().__init__()
        self.user = nn.Embedding(num_users, embed_dim)
        self.item = nn.Embedding(num_items, embed_dim)
        self.bias = nn.Parameter(torch.zeros(num_items)) if item_bias else None
        self.init_std = init_std
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.normal_(self.user.weight, std=self.init_std)
        nn.init.normal_(self.item.weight, std=self.init_std)
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def pair_scores(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Scores of ``items`` ``(B,)`` or ``(B, n)`` for ``users`` ``(B,)``."""
        u = self.user.weight[users]                          # (B, d)
        q = self.item.weight[items]                          # (B, d) or (B, n, d)
        s = (u.unsqueeze(-2) * q).sum(-1) if items.dim() == 2 else (u * q).sum(-1)
        return s + self.bias[items] if self.bias is not None else s

    def forward(self) -> tuple[torch.Tensor, torch.Tensor]:
        u, q = self.user.weight, self.item.weight
        if self.bias is None:
            return u, q
        return (torch.cat([u, torch.ones(len(u), 1, device=u.device)], 1),
                torch.cat([q, self.bias.unsqueeze(1)], 1))

    def reg_loss(self, users, pos, neg) -> torch.Tensor:
        terms = [self.user.weight[users].pow(2).sum(), self.item.weight[pos].pow(2).sum(),
                 self.item.weight[neg].pow(2).sum()]
        if self.bias is not None:
            terms += [self.bias[pos].pow(2).sum(), self.bias[neg].pow(2).sum()]
        return sum(terms) / (2 * len(users))

    def __repr__(self) -> str:
        return (f"MFModule({self.user.num_embeddings}+{self.item.num_embeddings}, "
                f"{self.user.embedding_dim}, item_bias={self.bias is not None})")


def _scratch(work: dict | None, name: str, shape: tuple[int, ...], like: torch.Tensor) -> torch.Tensor:
    """A ``shape``-d tensor to write into, carved from ``work[name]`` when that buffer is
    large enough and of ``like``'s dtype and device (so the short last batch of an epoch
    reuses the full batch's buffer), else from a new buffer that is kept in ``work``.
    ``work=None`` always gives a new tensor."""
    size = math.prod(shape)
    buf = work.get(name) if work is not None else None
    if buf is None or buf.numel() < size or buf.dtype != like.dtype or buf.device != like.device:
        buf = like.new_empty(size)
        if work is not None:
            work[name] = buf
    return buf[:size].view(shape)


class BPRMFLoss(torch.autograd.Function):
    r"""BPR loss plus the batch L2 term of the module docstring, straight from the
    tables, with the hand-written backward written there.

    Inputs: ``user_w (U, d)``, ``item_w (I, d)``, ``bias (I,)`` or ``None``,
    ``users (B,)``, ``items (B, 1+n)`` (column 0 the positive, then the ``n``
    negatives), ``reg`` :math:`\lambda`, and optionally ``work``, a dict in which the
    ``(B, d)``-sized intermediates are kept and overwritten by the next call. Reusing
    them is what makes a step fast on CPU: a fresh multi-megabyte block costs a page
    fault per 4 KiB the first time it is written, which here costs as much as the
    arithmetic. It is safe: the gathered rows are saved for ``backward`` through
    ``ctx.save_for_backward``, so if a second call overwrote them before the first
    backward, autograd would raise instead of returning a wrong gradient.

    Output: the scalar loss :math:`-\frac{1}{Bn}\sum_{b,k}\log\sigma(x_{bk}) +
    \frac{\lambda}{2B}\sum (\lVert\mathbf{p}\rVert^2 + \lVert\mathbf{q}\rVert^2 + b^2)`
    over the batch's rows (for ``n = 1`` exactly the module-docstring loss).
    """

    @staticmethod
    def forward(ctx, user_w, item_w, bias, users, items, reg: float, work: dict | None = None):
        batch, cols = items.shape                                           # cols = 1 + n
        dim, flat = user_w.shape[1], items.reshape(-1)
        u = torch.index_select(user_w, 0, users,                            # (B, d)    p_u
                               out=_scratch(work, "u", (batch, dim), user_w))
        q = torch.index_select(item_w, 0, flat,                             # (B, 1+n, d) q_k
                               out=_scratch(work, "q", (batch * cols, dim), item_w)).view(batch, cols, dim)
        scores = torch.bmm(q, u.unsqueeze(2)).squeeze(2)                    # (B, 1+n) p_u.q_k
        b = bias.index_select(0, flat).view(batch, cols) if bias is not None else None
        if b is not None:
            scores = scores + b
        x = scores[:, :1] - scores[:, 1:]                                   # (B, n) gaps
        loss = torch.nn.functional.softplus(-x).mean()                      # -log sigma(x)
        if reg > 0:                                                         # squared norms as
            sq = torch.dot(u.view(-1), u.view(-1)) + torch.dot(q.view(-1), q.view(-1))  # dots:
            if b is not None:                                               # no (B, d) temporary
                sq = sq + torch.dot(b.view(-1), b.view(-1))
            loss = loss + reg / (2 * batch) * sq
        ctx.save_for_backward(u, q, b, x, users, items)
        ctx.reg, ctx.work, ctx.has_bias = reg, work, bias is not None
        ctx.sizes = (user_w.shape[0], item_w.shape[0])
        return loss

    @staticmethod
    def backward(ctx, grad):
        u, q, b, x, users, items = ctx.saved_tensors
        (num_users, num_items), r = ctx.sizes, grad * (ctx.reg / len(users))  # r = lambda/B
        c = torch.sigmoid(-x).mul_(-grad / x.numel())                       # (B, n) dL/dx
        w = torch.cat([c.sum(1, keepdim=True), -c], 1)                      # (B, 1+n) dL/dscore
        # dL/dp_u = r p_u + sum_k w_k q_k ;  dL/dq_k = r q_k + w_k p_u   (fused multiply-adds;
        # cheaper here than batched matrix products of 1 x (1+n) blocks)
        du = torch.mul(u, r, out=_scratch(ctx.work, "du", u.shape, u))     # (B, d)
        for k in range(q.shape[1]):
            du.addcmul_(w[:, k:k + 1], q[:, k])
        dq = torch.mul(q, r, out=_scratch(ctx.work, "dq", q.shape, q))     # (B, 1+n, d)
        dq.addcmul_(w.unsqueeze(2), u.unsqueeze(1))
        flat, dim = items.reshape(-1), u.shape[1]
        g_user = u.new_zeros(num_users, dim).index_add_(0, users, du)
        g_item = u.new_zeros(num_items, dim).index_add_(0, flat, dq.view(-1, dim))
        g_bias = None
        if ctx.has_bias:                                                    # dL/db_k = w_k + r b_k
            g_bias = u.new_zeros(num_items).index_add_(0, flat, (w + r * b).view(-1))
        return g_user, g_item, g_bias, None, None, None, None


def bpr_mf_loss(module: MFModule, users: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor,
                reg: float, work: dict | None = None) -> torch.Tensor:
    """BPR-MF batch loss (module docstring) of ``module`` through :class:`BPRMFLoss`:
    ``users (B,)``, ``pos (B,)``, ``neg (B,)`` or ``(B, n)``; equal to
    ``bpr_loss(pair_scores(users, pos), pair_scores(users, neg)) + reg * reg_loss(...)``.
    ``work``: a dict of scratch tensors reused across calls (see :class:`BPRMFLoss`)."""
    neg = neg.unsqueeze(1) if neg.dim() == 1 else neg
    items = torch.cat([pos.unsqueeze(1), neg], 1)                           # (B, 1+n)
    return BPRMFLoss.apply(module.user.weight, module.item.weight, module.bias, users, items,
                           reg, work)


class BPRMF(EmbeddingRecommender):
    """BPR-MF recommender (see the module docstring).

    Args:
        embed_dim: :math:`d` (default 64).
        lr: Adam learning rate (default 5e-3).
        reg: :math:`\\lambda` (default 1e-2, the value chapter 4 selects on validation data).
        num_epochs: maximum epochs (default 200).
        batch_size: triples per step (default 8192).
        num_neg: negatives per positive (default 1).
        item_bias: learn an item bias (default True).
        eval_every, patience, valid_metric, valid_k: early stopping on ``valid``.
        seed: seeds initialisation, shuffling and sampling.
        progress: show a progress bar.
    """

    name = "bpr"

    def __init__(self, embed_dim: int = 64, lr: float = 5e-3, reg: float = 1e-2,
                 num_epochs: int = 200, batch_size: int = 8192, num_neg: int = 1,
                 item_bias: bool = True, eval_every: int = 10, patience: int | None = 3,
                 valid_metric: str = "ndcg", valid_k: int = 10, device: str | None = None,
                 seed: int = 0, progress: bool = False):
        if num_neg is None or num_neg < 1:
            raise ValueError(f"BPR needs sampled negatives: num_neg must be >= 1, got {num_neg}")
        if lr <= 0 or reg < 0:
            raise ValueError(f"lr must be > 0 and reg >= 0, got lr={lr}, reg={reg}")
        super().__init__(embed_dim=embed_dim, lr=lr, reg=reg, num_epochs=num_epochs,
                         batch_size=batch_size, num_neg=num_neg, loss="bpr",
                         eval_every=eval_every, patience=patience, valid_metric=valid_metric,
                         valid_k=valid_k, device=device, seed=seed, progress=progress)
        self.item_bias = item_bias

    def build(self) -> nn.Module:
        return MFModule(self.num_users, self.num_items, self.embed_dim, self.item_bias)

    def fit(self, train: pd.DataFrame, num_users: int, num_items: int,
            valid: pd.DataFrame | None = None) -> "BPRMF":
        opt, sampler, pairs_u, pairs_i, gen = self._fit_setup(train, num_users, num_items)
        times: list[float] = []
        module = self.module
        work: dict = {}                       # scratch tensors reused by every step

        def step(epoch: int) -> float:
            t0 = time.perf_counter()
            module.train()
            self._cache = None
            # the whole epoch's triples at once: shuffled pairs, one sampler call
            users_all, pos_all, neg_all = self._epoch_triples(pairs_u, pairs_i, sampler, gen)
            total = torch.zeros((), dtype=torch.float64, device=self.device)
            for start in range(0, len(users_all), self.batch_size):
                batch = slice(start, start + self.batch_size)
                users = users_all[batch]
                loss = bpr_mf_loss(module, users, pos_all[batch], neg_all[batch], self.reg, work)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                total += loss.detach() * len(users)       # no host sync per step
            mean_loss = float(total) / len(users_all)
            times.append(time.perf_counter() - t0)
            return mean_loss

        return self._run_epochs(step, times, train, valid)

    def __repr__(self) -> str:
        size = f"{self.num_users}+{self.num_items}, " if self.train_matrix is not None else ""
        return (f"BPRMF({size}{self.embed_dim}, lr={self.lr}, reg={self.reg}, "
                f"item_bias={self.item_bias})")
