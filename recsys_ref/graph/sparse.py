r"""Sparse kernels of the graph models: CSR storage and sparse–dense products with
hand-written backward passes.

* :func:`to_csr` — any sparse/dense matrix as ``torch.sparse_csr``.
* :class:`SpMM` / :func:`spmm` — :math:`x \mapsto A x` for a constant :math:`A`, backward
  :math:`A^\top g` by the same kernel (no autograd graph through the sparse tensor).
* :class:`LayerMean` / :func:`layer_mean` — LightGCN's propagation
  :math:`x \mapsto \frac{1}{L+1}\sum_{l=0}^{L} A^l x` in :math:`L` fused ``addmm`` steps
  (Horner's rule, :func:`mean_of_powers`), backward the same sum with :math:`A^\top`.
* :class:`CSRBuffers` — a constant CSR matrix kept as three non-persistent buffers of a
  module (they move with ``.to()``, stay out of the ``state_dict``).

Shapes: ``adj`` ``(N, N)`` sparse; ``x`` ``(N, d)`` dense.

Used in: ``chapters/06_graph_convolution`` (LightGCN, NGCF), ``08_graph_attention``,
``09_language_models``.
"""
from __future__ import annotations

import warnings

import torch
from torch import nn

__all__ = ["to_csr", "is_symmetric", "mean_of_powers", "LayerMean", "layer_mean", "SpMM", "spmm",
           "CSRBuffers"]


def to_csr(adj: torch.Tensor) -> torch.Tensor:
    """``adj`` (sparse COO, CSR or dense) as a sparse CSR tensor."""
    if adj.layout == torch.sparse_csr:
        return adj
    with warnings.catch_warnings():  # "sparse CSR support is in beta": we use mm only
        warnings.simplefilter("ignore", UserWarning)
        if adj.layout == torch.sparse_coo:
            return adj.coalesce().to_sparse_csr()
        if adj.layout == torch.strided:
            return adj.to_sparse_csr()
    raise ValueError(f"norm_adj must be a COO, CSR or dense tensor, got layout {adj.layout}")


def is_symmetric(adj: torch.Tensor) -> bool:
    """Whether the sparse matrix ``adj`` equals its transpose (indices and values)."""
    a = adj.to_sparse_coo().coalesce()
    t = a.t().coalesce()
    return bool(torch.equal(a.indices(), t.indices()) and torch.equal(a.values(), t.values()))


def mean_of_powers(adj: torch.Tensor, x: torch.Tensor, num_layers: int,
                    work: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
    r""":math:`\frac{1}{L+1}\sum_{l=0}^{L} A^l x` with ``L`` sparse products, no autograd.

    Horner's rule: with :math:`s = x / (L+1)`, :math:`h_0 = s` and :math:`h_{k+1} = s + A
    h_k`, the last :math:`h_L = s + A s + \dots + A^L s` is the layer mean. Each step is
    one ``torch.addmm(s, A, h)``, the sparse product and the addition in one kernel, so
    there is no running sum to update and no final division.

    ``work`` are two ``x``-shaped scratch tensors that the intermediate :math:`h_k` are
    written into (``addmm(..., out=)``); reusing them across calls avoids allocating (and,
    on a virtual machine, page-faulting) fresh ``(N, d)`` blocks every layer. The result is
    always a fresh tensor (it is :math:`s`, overwritten in place by the last step).
    """
    out = x / (num_layers + 1)                                   # s, (N, d)
    if num_layers == 0:
        return out
    if num_layers == 1:
        return torch.addmm(out, adj, out)                        # s + A s
    if x.device.type != "cpu":            # the caching GPU allocator makes scratch moot
        h = out
        for _ in range(num_layers):
            h = torch.addmm(out, adj, h)                         # h <- s + A h
        return h
    if work is None or work[0].shape != x.shape or work[0].dtype != x.dtype \
            or work[0].device != x.device:
        work = (torch.empty_like(x), torch.empty_like(x))
    h = out
    for layer in range(num_layers - 1):
        dst = work[layer % 2]
        torch.addmm(out, adj, h, out=dst)                        # dst = s + A h
        h = dst
    return torch.addmm(out, adj, h, out=out)                     # s + A h_{L-1}, into s


class LayerMean(torch.autograd.Function):
    r"""Autograd function :math:`x \mapsto \frac{1}{L+1}\sum_{l=0}^{L} A^l x` whose
    backward is the same sum with :math:`A^\top` (``adj_t``; pass ``adj`` itself when
    :math:`A` is symmetric). ``adj`` gets no gradient; ``work`` (optional) is a pair of
    scratch tensors shaped like ``x``."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, adj: torch.Tensor, adj_t: torch.Tensor,
                num_layers: int, work=None) -> torch.Tensor:
        ctx.adj_t, ctx.num_layers, ctx.work = adj_t, num_layers, work
        return mean_of_powers(adj, x.detach(), num_layers, work)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        grad_x = mean_of_powers(ctx.adj_t, grad.contiguous(), ctx.num_layers, ctx.work)
        return grad_x, None, None, None, None


class SpMM(torch.autograd.Function):
    r"""Differentiable sparse–dense product :math:`x \mapsto A x` for a constant CSR
    :math:`A`, with the backward :math:`A^\top g` (``adj_t``, default ``adj`` for a
    symmetric :math:`A`) done by the same kernel."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, adj: torch.Tensor, adj_t: torch.Tensor) -> torch.Tensor:
        ctx.adj_t = adj_t
        return torch.sparse.mm(adj, x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return torch.sparse.mm(ctx.adj_t, grad.contiguous()), None, None


def spmm(adj: torch.Tensor, x: torch.Tensor, adj_t: torch.Tensor | None = None) -> torch.Tensor:
    """:math:`A x` through :class:`SpMM` (``adj`` CSR; ``adj_t`` its transpose, default
    ``adj``: pass it when :math:`A` is not symmetric)."""
    return SpMM.apply(x, adj, adj if adj_t is None else adj_t)


def layer_mean(x: torch.Tensor, adj: torch.Tensor, num_layers: int,
               adj_t: torch.Tensor | None = None) -> torch.Tensor:
    r"""Differentiable :math:`\frac{1}{L+1}\sum_{l=0}^{L} A^l x` (see :class:`LayerMean`).

    Args:
        x: ``(N, d)`` dense features.
        adj: sparse ``(N, N)`` CSR matrix (COO is converted).
        num_layers: :math:`L \ge 0`.
        adj_t: :math:`A^\top` as CSR; default ``adj`` (a symmetric :math:`A`).
    """
    if num_layers < 0:
        raise ValueError(f"num_layers must be >= 0, got {num_layers}")
    adj = to_csr(adj)
    adj_t = adj if adj_t is None else to_csr(adj_t)
    return LayerMean.apply(x, adj, adj_t, num_layers)


class CSRBuffers(nn.Module):
    """A constant sparse ``(N, N)`` matrix stored as CSR buffers (crow, col, values), with
    its transpose when it is not symmetric (for backward passes).

    Indices are int32 when they fit: the CPU (MKL) kernel wants them and would otherwise
    convert int64 ones on every product. The buffers are non-persistent: the graph is
    data, not weights.

    Args:
        adj: sparse ``(N, N)`` (COO, CSR or dense).
        symmetric: whether ``adj`` is symmetric; ``None`` checks it (a sort of the edges).
    """

    def __init__(self, adj: torch.Tensor, symmetric: bool | None = None):
        super().__init__()
        adj = to_csr(adj.detach())
        self.size = tuple(adj.shape)
        self.symmetric = is_symmetric(adj) if symmetric is None else bool(symmetric)
        self._register("adj", adj)
        if not self.symmetric:
            self._register("adj_t", to_csr(adj.to_sparse_coo().t().coalesce()))

    def _register(self, name: str, adj: torch.Tensor) -> None:
        itype = torch.int32 if adj.values().numel() < 2**31 - 1 else torch.int64
        self.register_buffer(f"{name}_crow", adj.crow_indices().to(itype), persistent=False)
        self.register_buffer(f"{name}_col", adj.col_indices().to(itype), persistent=False)
        self.register_buffer(f"{name}_val", adj.values(), persistent=False)

    def _csr(self, name: str) -> torch.Tensor:
        return torch.sparse_csr_tensor(getattr(self, f"{name}_crow"), getattr(self, f"{name}_col"),
                                       getattr(self, f"{name}_val"), self.size,
                                       check_invariants=False)

    def forward(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(A, A^T)`` as CSR tensors on the buffers' device (``A^T`` is ``A`` when
        symmetric)."""
        adj = self._csr("adj")
        return adj, (adj if self.symmetric else self._csr("adj_t"))

    def __repr__(self) -> str:
        return f"CSRBuffers({self.size[0]}x{self.size[1]}, nnz={self.adj_val.numel()})"
