r"""Loss kernels with hand-written backward passes, and the one batch L2 term.

* :class:`RowsSquaredNorm` / :func:`rows_l2` — the batch L2 term
  :math:`\frac{1}{2B}\sum_k \lVert W_{r_k}\rVert^2` of BPR over the rows a batch touches
  (repeats count), in one pass over the table (:func:`batch_rows` lists the rows of a
  stacked user-then-item table).
* :class:`BPRFromTables` — mean BPR loss straight from user and item tables (LightGCN).
* :class:`BPRMFLoss` / :func:`bpr_mf_loss` — BPR plus the L2 term for BPR-MF's tables with
  an item bias, with reusable scratch blocks.

Each equals the autograd version of the same formula (the tests check values and
gradients, ``torch.autograd.gradcheck``); they exist because one scatter per table is
cheaper than autograd's chain of gathers, powers and scatters.

Used in: ``chapters/04_matrix_factorisation`` (BPR-MF), ``06_graph_convolution`` (LightGCN,
GCN, NGCF), ``08_graph_attention``, ``09_language_models``.
"""
from __future__ import annotations

import math

import torch

__all__ = ["RowsSquaredNorm", "rows_l2", "batch_rows", "embedding_l2", "BPRFromTables",
           "BPRMFLoss", "bpr_mf_loss"]


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


def embedding_l2(table: torch.Tensor, users: torch.Tensor, pos: torch.Tensor,
                 neg: torch.Tensor | None, num_users: int) -> torch.Tensor:
    r"""The batch L2 term of the graph models, :math:`\frac{1}{2B}\sum \lVert
    \mathbf{e}^{(0)}_r \rVert^2` over the rows of a stacked user-then-item ``table``
    ``(U+I, d)`` that the batch's users ``(B,)``, positives ``(B,)`` and negatives
    ``(B, n)`` touch (a row drawn twice counts twice): :func:`rows_l2` over
    :func:`batch_rows`, :math:`B` the number of users."""
    return rows_l2(table, *batch_rows(users, pos, neg, num_users), batch=len(users))


class BPRFromTables(torch.autograd.Function):
    r"""Mean BPR loss :math:`-\frac{1}{Bn}\sum_{b,k} \log\sigma(\mathbf{e}_{u_b}^\top
    \mathbf{e}_{i_b} - \mathbf{e}_{u_b}^\top \mathbf{e}_{j_{bk}})` straight from the user
    and item tables, with a hand-written backward: the gradient rows are scattered back
    with one ``index_add_`` per table instead of autograd's chain of gathers.

    Inputs: ``user_emb (U, d)``, ``item_emb (I, d)``, ``users (B,)``, ``items (B(1+n),)``
    (the ``B`` positives, then the ``B*n`` negatives row by row), ``num_neg`` :math:`n`.
    """

    @staticmethod
    def forward(ctx, user_emb, item_emb, users, items, num_neg: int):
        batch = users.numel()
        u = user_emb.index_select(0, users)                                 # (B, d)
        rows = item_emb.index_select(0, items)                              # (B(1+n), d)
        p, n = rows[:batch], rows[batch:].view(batch, num_neg, -1)         # (B, d), (B, n, d)
        u_col = u.unsqueeze(2)                                              # (B, d, 1)
        x = (torch.bmm(p.unsqueeze(1), u_col).squeeze(2)                    # (B, n) score gaps
             - torch.bmm(n, u_col).squeeze(2))                              # e_u.e_i - e_u.e_j
        ctx.save_for_backward(u, rows, x, users, items)
        ctx.sizes = (user_emb.shape[0], item_emb.shape[0])
        return torch.nn.functional.softplus(-x).mean()                      # = -log sigma(x)

    @staticmethod
    def backward(ctx, grad):
        r"""With :math:`c_{bk} = \partial\mathcal{L}/\partial x_{bk} = -\sigma(-x_{bk})/(Bn)`:
        :math:`\partial/\partial\mathbf{e}_u = \sum_k c_k(\mathbf{e}_i - \mathbf{e}_{j_k})`,
        :math:`\partial/\partial\mathbf{e}_i = (\sum_k c_k)\,\mathbf{e}_u`,
        :math:`\partial/\partial\mathbf{e}_{j_k} = -c_k\,\mathbf{e}_u`, each summed into
        its table row (``index_add_``)."""
        u, rows, x, users, items = ctx.saved_tensors
        num_users, num_items = ctx.sizes
        batch, num_neg = x.shape
        p, n = rows[:batch], rows[batch:].view(batch, num_neg, -1)
        c = torch.sigmoid(-x).mul_(-grad / x.numel())                       # (B, n) dL/dx
        c_sum = c.sum(1, keepdim=True)                                      # (B, 1)
        du = p * c_sum                                                      # (B, d) fused
        for k in range(num_neg):                                            # multiply-adds,
            du.addcmul_(c[:, k:k + 1], n[:, k], value=-1)                   # no (B, n, d) temps
        g_rows = torch.empty_like(rows)                                     # (B(1+n), d)
        torch.mul(u, c_sum, out=g_rows[:batch])                             # dL/de_i
        torch.mul(u.unsqueeze(1), c.neg().unsqueeze(2),                     # dL/de_j
                  out=g_rows[batch:].view(batch, num_neg, -1))
        g_user = u.new_zeros(num_users, u.shape[1]).index_add_(0, users, du)
        g_item = u.new_zeros(num_items, u.shape[1]).index_add_(0, items, g_rows)
        return g_user, g_item, None, None, None


def _scratch(work: dict | None, name: str, shape: tuple[int, ...],
             like: torch.Tensor) -> torch.Tensor:
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
                               out=_scratch(work, "q", (batch * cols, dim), item_w)
                               ).view(batch, cols, dim)
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


def bpr_mf_loss(module, users: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor,
                reg: float, work: dict | None = None) -> torch.Tensor:
    """BPR-MF batch loss (module docstring) of ``module`` through :class:`BPRMFLoss`:
    ``users (B,)``, ``pos (B,)``, ``neg (B,)`` or ``(B, n)``; equal to
    ``bpr_loss(pair_scores(users, pos), pair_scores(users, neg)) + reg * reg_loss(...)``.
    ``work``: a dict of scratch tensors reused across calls (see :class:`BPRMFLoss`)."""
    neg = neg.unsqueeze(1) if neg.dim() == 1 else neg
    items = torch.cat([pos.unsqueeze(1), neg], 1)                           # (B, 1+n)
    return BPRMFLoss.apply(module.user.weight, module.item.weight, module.bias, users, items,
                           reg, work)
