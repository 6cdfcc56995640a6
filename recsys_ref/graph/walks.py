r"""Random walks on a graph: DeepWalk's uniform walk and node2vec's biased second-order walk.

DeepWalk (Perozzi et al., KDD 2014) moves from the current node :math:`v` to a neighbour
chosen uniformly. node2vec (Grover & Leskovec, KDD 2016) remembers the previous node
:math:`t` and weighs each neighbour :math:`x` of :math:`v` by how far it is from :math:`t`:

.. math::

    \Pr(x \mid t, v) = \frac{\alpha_{pq}(t, x)}{\sum_{y \in N(v)} \alpha_{pq}(t, y)},
    \qquad
    \alpha_{pq}(t, x) = \begin{cases}
        1/p & d_{tx} = 0 \ (x = t, \text{ go back}) \\
        1   & d_{tx} = 1 \ (x \text{ also a neighbour of } t) \\
        1/q & d_{tx} = 2 \ (\text{move away from } t)
    \end{cases}

so a large return parameter :math:`p` discourages going back and a small in-out parameter
:math:`q` pushes the walk outwards (depth-first-like); :math:`p = q = 1` is DeepWalk. The
first step of a walk has no :math:`t` and is uniform.

Sampling is vectorised over all walkers, as in ``torch_cluster`` / ``pyg-lib``: the graph
is held in CSR form (``rowptr``, ``col``); a uniform step is one array lookup; a biased
step proposes a uniform neighbour and accepts it with probability
:math:`\alpha_{pq}(t, x) / \max(1/p, 1, 1/q)` (rejection sampling, which gives exactly the
distribution above); "is :math:`x` a neighbour of :math:`t`" is a binary search in the
sorted edge keys :math:`t \cdot N + x`. A walker on a node without out-edges stays there
(the ``torch_cluster`` convention). The graph should be undirected (both directions of
every edge present), which is how node2vec defines :math:`d_{tx}`.

Shapes:
    - ``edge_index``: ``(2, E)``
    - ``start``: ``(W,)`` start nodes
    - returned walks: ``(W, walk_length)``, column 0 = ``start``

Used in: ``chapters/05_graph_embedding``.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

__all__ = ["RandomWalker", "random_walks", "transition_probabilities", "context_windows"]


def _check_pq(p: float, q: float) -> None:
    for name, val in (("p", p), ("q", q)):
        if not np.isfinite(val) or val <= 0:
            raise ValueError(f"{name} must be a positive finite number (node2vec weight 1/{name}), "
                             f"got {val!r}; use p=q=1 for DeepWalk's uniform walk")


def _as_edge_index(edge_index) -> np.ndarray:
    ei = np.asarray(torch.as_tensor(edge_index).cpu(), dtype=np.int64)
    if ei.ndim != 2 or ei.shape[0] != 2:
        raise ValueError(f"edge_index must have shape (2, E), got {ei.shape}")
    if ei.size and ei.min() < 0:
        raise ValueError("edge_index holds negative node indices")
    return ei


class RandomWalker:
    """A graph in CSR form that samples DeepWalk / node2vec walks.

    Args:
        edge_index: ``(2, E)`` edges (row 0 source, row 1 target); duplicates are merged.
        num_nodes: number of nodes :math:`N` (default ``edge_index.max() + 1``).
        p: return parameter (weight :math:`1/p` of stepping back to the previous node).
        q: in-out parameter (weight :math:`1/q` of moving to a node 2 hops from the
            previous one).

    Example:
        >>> walker = RandomWalker(edge_index, num_nodes, p=1.0, q=0.5)
        >>> walks = walker.walk(torch.arange(num_nodes), walk_length=20, seed=0)  # (N, 20)
    """

    def __init__(self, edge_index: torch.Tensor | np.ndarray, num_nodes: int | None = None,
                 p: float = 1.0, q: float = 1.0):
        _check_pq(p, q)
        ei = _as_edge_index(edge_index)
        n = int(ei.max()) + 1 if ei.size else 0
        if num_nodes is None:
            num_nodes = n
        if num_nodes < n:
            raise ValueError(f"num_nodes={num_nodes} but edge_index refers to node {n - 1}")
        if num_nodes < 1:
            raise ValueError("the graph has no nodes")
        self.num_nodes, self.p, self.q = int(num_nodes), float(p), float(q)
        keys = np.unique(ei[0] * self.num_nodes + ei[1])   # sorted, duplicates merged
        self.keys = keys                                    # (E,) sorted edge keys t*N + x
        row, self.col = keys // self.num_nodes, keys % self.num_nodes
        self.deg = np.bincount(row, minlength=self.num_nodes)
        self.rowptr = np.concatenate([[0], np.cumsum(self.deg)])
        self._max_w = max(1.0 / self.p, 1.0, 1.0 / self.q)

    @property
    def num_edges(self) -> int:
        return len(self.col)

    @property
    def is_uniform(self) -> bool:
        """``True`` for DeepWalk (``p = q = 1``)."""
        return self.p == 1.0 and self.q == 1.0

    def has_edge(self, src: np.ndarray, dst: np.ndarray) -> np.ndarray:
        """Boolean array: is ``(src[k], dst[k])`` an edge?"""
        if self.num_edges == 0:
            return np.zeros(np.shape(src), dtype=bool)
        key = np.asarray(src, dtype=np.int64) * self.num_nodes + np.asarray(dst, dtype=np.int64)
        pos = np.minimum(np.searchsorted(self.keys, key), self.num_edges - 1)
        return self.keys[pos] == key

    def _uniform_step(self, cur: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        deg = self.deg[cur]
        off = np.floor(rng.random(len(cur)) * deg).astype(np.int64)   # uniform in 0..deg-1
        if self.num_edges == 0:
            return cur.copy()
        nxt = self.col[np.minimum(self.rowptr[cur] + off, self.num_edges - 1)]
        return np.where(deg > 0, nxt, cur)   # dead end: stay

    def _biased_step(self, prev: np.ndarray, cur: np.ndarray,
                     rng: np.random.Generator) -> np.ndarray:
        out = cur.copy()
        todo = np.flatnonzero(self.deg[cur] > 0)
        while len(todo):
            c, t = cur[todo], prev[todo]
            x = self._uniform_step(c, rng)                     # proposal, uniform in N(c)
            w = np.where(x == t, 1.0 / self.p,
                         np.where(self.has_edge(t, x), 1.0, 1.0 / self.q))
            ok = rng.random(len(todo)) * self._max_w < w       # accept w.p. w / max_w
            out[todo[ok]] = x[ok]
            todo = todo[~ok]
        return out

    def walk(self, start: Sequence[int] | np.ndarray | torch.Tensor, walk_length: int,
             seed: int | None = 0, rng: np.random.Generator | None = None) -> torch.Tensor:
        """One walk from every node in ``start``.

        Args:
            start: ``(W,)`` start nodes (repeat a node to get several walks from it).
            walk_length: nodes per walk, start included (``>= 1``).
            seed: seed of a fresh NumPy generator (ignored when ``rng`` is given).
            rng: a generator to draw from (keeps a stream going across calls).

        Returns:
            ``(W, walk_length)`` LongTensor; ``walks[:, 0] == start``.
        """
        if not isinstance(walk_length, (int, np.integer)) or walk_length < 1:
            raise ValueError(f"walk_length must be an integer >= 1 (nodes per walk, start "
                             f"included), got {walk_length!r}")
        start = np.asarray(torch.as_tensor(start).cpu(), dtype=np.int64).ravel()
        if start.size and (start.min() < 0 or start.max() >= self.num_nodes):
            raise ValueError(f"start nodes must lie in 0..{self.num_nodes - 1}")
        rng = rng if rng is not None else np.random.default_rng(seed)
        walks = np.empty((len(start), walk_length), dtype=np.int64)
        walks[:, 0] = start
        for s in range(1, walk_length):
            if s == 1 or self.is_uniform:
                walks[:, s] = self._uniform_step(walks[:, s - 1], rng)
            else:
                walks[:, s] = self._biased_step(walks[:, s - 2], walks[:, s - 1], rng)
        return torch.from_numpy(walks)

    def __repr__(self) -> str:
        return (f"RandomWalker(num_nodes={self.num_nodes}, num_edges={self.num_edges}, "
                f"p={self.p:g}, q={self.q:g})")


def random_walks(edge_index: torch.Tensor | np.ndarray, walk_length: int, walks_per_node: int = 1,
                 p: float = 1.0, q: float = 1.0, num_nodes: int | None = None,
                 start: Sequence[int] | np.ndarray | torch.Tensor | None = None,
                 seed: int = 0) -> torch.Tensor:
    """``walks_per_node`` walks from every node of ``start`` (default: every node).

    Returns:
        ``(walks_per_node * W, walk_length)`` LongTensor, rows ordered like
        ``start.repeat(walks_per_node)`` (the order PyG's ``Node2Vec`` uses).
    """
    if not isinstance(walks_per_node, (int, np.integer)) or walks_per_node < 1:
        raise ValueError(f"walks_per_node must be an integer >= 1, got {walks_per_node!r}")
    walker = RandomWalker(edge_index, num_nodes, p, q)
    if start is None:
        start = torch.arange(walker.num_nodes)
    start = torch.as_tensor(start, dtype=torch.long).repeat(walks_per_node)
    return walker.walk(start, walk_length, seed=seed)


def transition_probabilities(edge_index: torch.Tensor | np.ndarray, prev: int, cur: int,
                             p: float = 1.0, q: float = 1.0) -> dict[int, float]:
    r"""The exact node2vec distribution :math:`\Pr(x \mid t=\text{prev}, v=\text{cur})`.

    Written with a loop over the neighbours so it reads like the formula; it is the
    reference the vectorised sampler is tested against.

    Returns:
        ``{x: probability}`` over the neighbours ``x`` of ``cur``.
    """
    _check_pq(p, q)
    ei = _as_edge_index(edge_index)
    edges = set(zip(ei[0].tolist(), ei[1].tolist()))
    if (prev, cur) not in edges:
        raise ValueError(f"({prev}, {cur}) is not an edge: the walk cannot have come that way")
    weights = {}
    for x in sorted({b for a, b in edges if a == cur}):
        if x == prev:
            weights[x] = 1.0 / p            # d_tx = 0: go back
        elif (prev, x) in edges:
            weights[x] = 1.0                # d_tx = 1: stay close to t
        else:
            weights[x] = 1.0 / q            # d_tx = 2: move away
    total = sum(weights.values())
    return {x: w / total for x, w in weights.items()}


def context_windows(walks: torch.Tensor, context_size: int) -> torch.Tensor:
    """Every run of ``context_size`` consecutive nodes of every walk, PyG ``Node2Vec`` style.

    Row ``r`` of the result is ``(center, ctx_1, ..., ctx_{c-1})``: the skip-gram pairs are
    ``(row[0], row[j])``. From a ``(W, L)`` walk tensor this gives
    ``(W * (L - c + 1), c)`` rows, window by window.
    """
    if walks.dim() != 2:
        raise ValueError(f"walks must be 2-D (num_walks, walk_length), got {tuple(walks.shape)}")
    length = walks.size(1)
    if not 2 <= context_size <= length:
        raise ValueError(f"context_size must lie in 2..walk_length={length}, got {context_size}")
    return torch.cat([walks[:, j:j + context_size] for j in range(length - context_size + 1)])
