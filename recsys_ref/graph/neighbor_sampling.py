r"""Neighbour sampling for mini-batch GNN training (GraphSAGE, Hamilton et al., NeurIPS 2017).

An :math:`L`-layer GNN computes a node's output from its :math:`L`-hop neighbourhood,
which on a real graph quickly covers everything. GraphSAGE bounds the cost by keeping at
most :math:`k_h` neighbours per node at hop :math:`h` (the *fan-outs*
:math:`k_1, \dots, k_L`), drawn uniformly without replacement:

.. math::

    S_h(v) \subseteq \mathcal{N}(v), \qquad |S_h(v)| = \min(k_h, |\mathcal{N}(v)|),

so a batch of :math:`B` seed nodes touches at most :math:`B \prod_h k_h` edges at the
last hop, whatever the graph size. (With ``replace=True`` exactly :math:`k_h` neighbours
are drawn with replacement, as in the paper's Algorithm 2.)

:class:`NeighborSampler` stores the graph once in CSR form (for each node the *sources*
of its incoming edges, PyG's message-passing direction ``edge_index[0] -> edge_index[1]``)
and samples one hop for the whole frontier at once (:meth:`NeighborSampler.sample_hop`):
low-degree nodes keep all their edges, the others a uniformly random :math:`k`-subset, by
random keys or by drawing offsets and redrawing duplicates. No Python loop over nodes.

The output :class:`SampledSubgraph` follows PyG's ``NeighborLoader`` batch layout, so
PyG layers (``SAGEConv``) run on it directly and PyG's own sampler can replace ours:

* ``n_id``: global ids of the sampled nodes, **seeds first**, then the nodes first reached
  at hop 1, hop 2, …; ``num_sampled_nodes[h]`` counts those of hop ``h``;
* ``edge_index``: local ids (positions in ``n_id``), source -> target, grouped by hop:
  the first ``num_sampled_edges[0]`` edges point into the seeds, the next ones into the
  hop-1 nodes, and so on.

:func:`make_neighbor_sampler` returns PyG's sampler (``NeighborLoader``) when
``pyg-lib`` or ``torch-sparse`` is installed, else ours.

Shapes:
    - ``edge_index`` (input): ``(2, |E|)``
    - ``seeds``: ``(B,)`` unique node ids
    - output ``n_id``: ``(N_sub,)``; ``edge_index``: ``(2, E_sub)``

Used in: ``chapters/07_graphsage_sampling``.
"""
from __future__ import annotations

import numbers
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

__all__ = ["SampledSubgraph", "NeighborSampler", "PyGNeighborSampler", "pyg_sampler_available",
           "make_neighbor_sampler"]


@dataclass
class SampledSubgraph:
    """A sampled computation graph in PyG's ``NeighborLoader`` layout (see module docstring).

    Attributes:
        n_id: ``(N_sub,)`` global node ids, seeds first.
        edge_index: ``(2, E_sub)`` local ids, source -> target, grouped by hop.
        batch_size: number of seeds (the first ``batch_size`` entries of ``n_id``).
        num_sampled_nodes: nodes per hop, ``len == num_hops + 1``.
        num_sampled_edges: edges per hop, ``len == num_hops``.
    """

    n_id: torch.Tensor
    edge_index: torch.Tensor
    batch_size: int
    num_sampled_nodes: list[int] = field(default_factory=list)
    num_sampled_edges: list[int] = field(default_factory=list)

    @property
    def num_nodes(self) -> int:
        return int(self.n_id.numel())

    @property
    def num_edges(self) -> int:
        return int(self.edge_index.shape[1])

    def to(self, device: torch.device | str) -> "SampledSubgraph":
        """The same subgraph with ``n_id`` and ``edge_index`` on ``device``."""
        return SampledSubgraph(self.n_id.to(device), self.edge_index.to(device), self.batch_size,
                               list(self.num_sampled_nodes), list(self.num_sampled_edges))

    def __repr__(self) -> str:
        return (f"SampledSubgraph(batch_size={self.batch_size}, nodes={self.num_sampled_nodes}, "
                f"edges={self.num_sampled_edges})")


def _check_fanouts(fanouts: Sequence[int]) -> list[int]:
    if isinstance(fanouts, numbers.Integral):
        fanouts = [fanouts]
    fanouts = list(fanouts)
    if len(fanouts) == 0:
        raise ValueError("fanouts is empty: give one fan-out per GNN layer, e.g. [10, 5]")
    for k in fanouts:
        if not isinstance(k, numbers.Integral) or isinstance(k, bool) or k <= 0:
            raise ValueError(
                f"every fan-out must be a positive integer, got {fanouts}; to keep all "
                "neighbours use a fan-out >= the maximum degree (sampler.max_degree)"
            )
    return [int(k) for k in fanouts]


def _check_edge_index(edge_index: torch.Tensor, num_nodes: int) -> torch.Tensor:
    edge_index = torch.as_tensor(edge_index)
    if edge_index.dim() != 2 or edge_index.shape[0] != 2:
        raise ValueError(f"edge_index must have shape (2, E), got {tuple(edge_index.shape)}")
    if edge_index.dtype not in (torch.int32, torch.int64):
        raise ValueError(f"edge_index must hold integer node ids, got {edge_index.dtype}")
    if num_nodes <= 0:
        raise ValueError(f"num_nodes must be positive, got {num_nodes}")
    edge_index = edge_index.long()
    if edge_index.numel() and (edge_index.min() < 0 or edge_index.max() >= num_nodes):
        raise ValueError(f"edge_index holds node ids outside 0..{num_nodes - 1}")
    return edge_index


def _check_seeds(seeds, num_nodes: int) -> torch.Tensor:
    seeds = torch.as_tensor(seeds).long().view(-1)
    if seeds.numel() == 0:
        raise ValueError("no seed nodes given")
    if seeds.min() < 0 or seeds.max() >= num_nodes:
        raise ValueError(
            f"unknown node id(s): seeds must lie in 0..{num_nodes - 1}, got range "
            f"{int(seeds.min())}..{int(seeds.max())}"
        )
    if torch.unique(seeds).numel() != seeds.numel():
        raise ValueError("seeds contain duplicates; pass torch.unique(seeds) and map back "
                         "with its inverse index")
    return seeds


class NeighborSampler:
    """Uniform multi-hop neighbour sampler on a CSR graph (vectorised, seeded).

    Args:
        edge_index: ``(2, |E|)`` edges ``source -> target``; a node's neighbours are the
            sources of the edges pointing into it (for an undirected graph store both
            directions, as :func:`recsys_ref.graph.adjacency.bipartite_edge_index` does).
        num_nodes: number of nodes :math:`N`.
        fanouts: neighbours kept per node at hop 1, 2, … (one per GNN layer, each >= 1).
        replace: sample with replacement (exactly ``k`` draws per node with a neighbour;
            duplicates possible). Default ``False``: ``min(k, degree)`` distinct neighbours.
        seed: seed of the sampler's own ``torch.Generator``.

    Example:
        >>> sampler = NeighborSampler(edge_index, num_nodes, fanouts=[10, 5], seed=0)
        >>> sub = sampler(torch.tensor([0, 7]))    # SampledSubgraph, seeds 0 and 7 first
    """

    def __init__(self, edge_index: torch.Tensor, num_nodes: int, fanouts: Sequence[int],
                 replace: bool = False, seed: int = 0):
        edge_index = _check_edge_index(edge_index, num_nodes)
        self.fanouts = _check_fanouts(fanouts)
        self.num_nodes, self.replace, self.seed = int(num_nodes), bool(replace), seed
        src, dst = edge_index
        order = torch.argsort(dst, stable=True)
        self.row = src[order].contiguous()               # (E,) sources grouped by target
        counts = torch.bincount(dst, minlength=num_nodes)
        self.colptr = torch.zeros(num_nodes + 1, dtype=torch.long)
        self.colptr[1:] = torch.cumsum(counts, 0)        # (N+1,)
        self.generator = torch.Generator().manual_seed(seed)

    @property
    def degree(self) -> torch.Tensor:
        """In-degree of every node, ``(N,)``."""
        return self.colptr[1:] - self.colptr[:-1]

    @property
    def max_degree(self) -> int:
        return int(self.degree.max()) if self.num_nodes else 0

    def reset(self, seed: int | None = None) -> None:
        """Restart the random stream (at ``seed``, default the constructor's)."""
        self.generator.manual_seed(self.seed if seed is None else seed)

    def neighbors(self, node: int) -> torch.Tensor:
        """All neighbours (sources of incoming edges) of one node."""
        return self.row[self.colptr[node]:self.colptr[node + 1]]

    def sample_hop(self, frontier: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """One hop for a whole frontier: ``(src, dst)`` global ids of the kept edges.

        Without replacement, a node of degree ``d`` keeps all its edges when ``d <= k``;
        when ``k < d <= 2k`` its edges get random keys and the ``k`` smallest are kept;
        when ``d > 2k`` ``k`` offsets are drawn and duplicates redrawn until distinct
        (a collision has probability < 1/2, so a few rounds suffice). Each gives a
        uniformly random ``k``-subset, and the work is ``O(sum(min(d, 2k)))``, not
        ``O(sum(d))``."""
        start = self.colptr[frontier]                     # (F,)
        deg = self.colptr[frontier + 1] - start           # (F,)
        idx = torch.arange(len(frontier))
        gen = self.generator
        if self.replace:
            cnt = torch.where(deg > 0, torch.full_like(deg, k), torch.zeros_like(deg))
            owner = torch.repeat_interleave(idx, cnt)     # (F*k,) frontier position
            offset = (torch.rand(len(owner), generator=gen, dtype=torch.float64)
                      * deg[owner]).long()
        else:
            owners, offsets = [], []
            # (a) d <= k: every edge;  (b) k < d <= 2k: k smallest random keys
            for sel in (deg <= k, (deg > k) & (deg <= 2 * k)):
                own = idx[sel]
                d = deg[own]
                owner = torch.repeat_interleave(own, d)
                run = torch.repeat_interleave(torch.cumsum(d, 0) - d, d)
                offset = torch.arange(len(owner)) - run
                if len(own) and int(d.max()) > k:
                    local = torch.repeat_interleave(torch.arange(len(own)), d)
                    key = local.to(torch.float64) + torch.rand(len(local), generator=gen,
                                                               dtype=torch.float64)
                    order = torch.argsort(key)            # by owner, random inside a run
                    keep = (torch.arange(len(order)) - run[order]) < k
                    owner, offset = owner[order][keep], offset[order][keep]
                owners.append(owner)
                offsets.append(offset)
            # (c) d > 2k: draw k offsets, redraw duplicates
            own = idx[deg > 2 * k]
            if len(own):
                d = deg[own].unsqueeze(1).expand(-1, k)   # (F_c, k)
                off = (torch.rand(d.shape, generator=gen, dtype=torch.float64) * d).long()
                while True:
                    off = off.sort(dim=1).values
                    dup = torch.zeros_like(off, dtype=torch.bool)
                    dup[:, 1:] = off[:, 1:] == off[:, :-1]
                    n_dup = int(dup.sum())
                    if n_dup == 0:
                        break
                    off[dup] = (torch.rand(n_dup, generator=gen, dtype=torch.float64)
                                * d[dup]).long()
                owners.append(own.repeat_interleave(k))
                offsets.append(off.reshape(-1))
            owner, offset = torch.cat(owners), torch.cat(offsets)
        src = self.row[start[owner] + offset]
        return src, frontier[owner]

    def __call__(self, seeds: torch.Tensor) -> SampledSubgraph:
        """Sample the ``len(fanouts)``-hop computation graph of ``seeds`` (unique ids)."""
        seeds = _check_seeds(seeds, self.num_nodes)
        local = torch.full((self.num_nodes,), -1, dtype=torch.long)  # global -> local id
        local[seeds] = torch.arange(len(seeds))
        n_id, srcs, dsts = [seeds], [], []
        num_nodes, num_edges = [len(seeds)], []
        frontier, count = seeds, len(seeds)
        for k in self.fanouts:
            src, dst = self.sample_hop(frontier, k)
            srcs.append(src)
            dsts.append(dst)
            num_edges.append(len(src))
            new = src[local[src] < 0]
            if len(new):
                uniq, inv = torch.unique(new, return_inverse=True)
                first = torch.full((len(uniq),), len(new), dtype=torch.long)
                first = first.scatter_reduce(0, inv, torch.arange(len(new)), reduce="amin")
                new = uniq[torch.argsort(first)]          # order of first appearance
                local[new] = torch.arange(count, count + len(new))
                count += len(new)
            n_id.append(new)
            num_nodes.append(len(new))
            frontier = new
        src, dst = torch.cat(srcs), torch.cat(dsts)
        edge_index = torch.stack([local[src], local[dst]])
        return SampledSubgraph(torch.cat(n_id), edge_index, len(seeds), num_nodes, num_edges)

    def __repr__(self) -> str:
        return (f"NeighborSampler(num_nodes={self.num_nodes}, edges={len(self.row)}, "
                f"fanouts={self.fanouts}, replace={self.replace})")


def pyg_sampler_available() -> bool:
    """True when PyG's compiled neighbour sampling (``pyg-lib`` or ``torch-sparse``) is
    importable, i.e. when ``NeighborLoader`` / ``LinkNeighborLoader`` can run."""
    import torch_geometric.typing as pyg_typing
    return bool(pyg_typing.WITH_PYG_LIB or pyg_typing.WITH_TORCH_SPARSE)


class PyGNeighborSampler:
    """The same interface backed by PyG's ``NeighborLoader`` (needs ``pyg-lib`` or
    ``torch-sparse``). Randomness comes from PyTorch's global generator (seed it with
    :func:`recsys_ref.train.runtime.set_seed`); ``seed`` is accepted for a uniform interface."""

    def __init__(self, edge_index: torch.Tensor, num_nodes: int, fanouts: Sequence[int],
                 replace: bool = False, seed: int = 0):
        if not pyg_sampler_available():
            raise ImportError("PyGNeighborSampler needs pyg-lib or torch-sparse; use "
                              "NeighborSampler (pure PyTorch) instead")
        from torch_geometric.data import Data
        from torch_geometric.loader import NeighborLoader
        edge_index = _check_edge_index(edge_index, num_nodes)
        self.fanouts = _check_fanouts(fanouts)
        self.num_nodes, self.replace, self.seed = int(num_nodes), bool(replace), seed
        self.loader = NeighborLoader(Data(edge_index=edge_index, num_nodes=num_nodes),
                                     num_neighbors=self.fanouts, replace=replace, batch_size=1,
                                     subgraph_type="directional")

    def __call__(self, seeds: torch.Tensor) -> SampledSubgraph:
        seeds = _check_seeds(seeds, self.num_nodes)
        out = self.loader.collate_fn(seeds)           # input nodes are 0..N-1: index = id
        if not self.loader.filter_per_worker:
            out = self.loader.filter_fn(out)
        return SampledSubgraph(out.n_id, out.edge_index, int(out.batch_size),
                               [int(n) for n in out.num_sampled_nodes],
                               [int(e) for e in out.num_sampled_edges])

    def __repr__(self) -> str:
        return f"PyGNeighborSampler(num_nodes={self.num_nodes}, fanouts={self.fanouts})"


def make_neighbor_sampler(edge_index: torch.Tensor, num_nodes: int, fanouts: Sequence[int],
                          replace: bool = False, seed: int = 0, backend: str = "auto"):
    """PyG's sampler when available (``backend="auto"`` or ``"pyg"``), else ours
    (``"auto"`` or ``"recsys_ref"``)."""
    if backend not in ("auto", "pyg", "recsys_ref"):
        raise ValueError(f"backend must be 'auto', 'pyg' or 'recsys_ref', got {backend!r}")
    if backend == "pyg" or (backend == "auto" and pyg_sampler_available()):
        return PyGNeighborSampler(edge_index, num_nodes, fanouts, replace, seed)
    return NeighborSampler(edge_index, num_nodes, fanouts, replace, seed)
