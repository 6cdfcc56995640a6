r"""A graph recommender built from any point of a search space.

Every point of :func:`graph_space` describes one model of the family

.. math::

    \mathbf{H}^{(0)} = \mathbf{E}^{(0)}, \qquad
    \mathbf{H}^{(l+1)} = \sigma\big(\mathrm{conv}_l(\mathbf{H}^{(l)}, \mathcal G)\big),
    \quad l = 0..L-1,

    \mathbf{E} = \mathrm{combine}\big(\mathbf{H}^{(0)}, \dots, \mathbf{H}^{(L)}\big),
    \qquad \hat y_{ui} = s(\mathbf{e}_u, \mathbf{e}_i),

over the user–item graph :math:`\mathcal G` (:mod:`recsys_ref.graph.adjacency`), with

* ``layer`` — :math:`\mathrm{conv}`: ``"none"`` (no propagation: matrix factorisation),
  ``"lightgcn"`` (PyG ``LGConv``), ``"gcn"`` (``GCNConv``, self-loops), ``"sage"``
  (``SAGEConv``, mean), ``"gat"`` (``GATConv``, one head) or ``"gin"`` (``GINConv``, a
  two-layer MLP on the neighbour sum);
* ``depth`` :math:`L` (1–4), ``activation`` :math:`\sigma` (identity, ReLU, tanh,
  leaky ReLU);
* ``combine``: ``"last"`` (:math:`\mathbf{H}^{(L)}`), ``"mean"`` (LightGCN's layer
  mean), ``"weighted"`` (:math:`\sum_l \operatorname{softmax}(\mathbf{w})_l
  \mathbf{H}^{(l)}`, :math:`\mathbf{w}` learned, starting at the mean) or ``"concat"``
  (:math:`[\mathbf{H}^{(0)} \Vert \dots \Vert \mathbf{H}^{(L)}]`, width
  :math:`d(L+1)`);
* ``exponent`` :math:`r` of the normalised adjacency :math:`D^{-r} A D^{-(1-r)}` of
  ``lightgcn`` and ``gcn`` (:func:`~recsys_ref.graph.adjacency.normalized_adjacency`;
  0.5 is LightGCN's and GCN's symmetric one);
* ``embed_dim`` :math:`d`;
* ``loss``: ``"bpr"`` with one sampled negative on dot products (the sigmoid
  dot-product score), or ``"softmax"``: full-catalogue cross-entropy on cosines over a
  ``temperature`` :math:`\tau` (chapter 6's best LightGCN).

The recommender is :class:`~recsys_ref.models.graph.lightgcn.LightGCN` with another
propagation module: the same losses, scores, :class:`~recsys_ref.train.trainer.Trainer`
and early stopping. LightGCN itself is the point ``layer="lightgcn", combine="mean",
activation="identity", exponent=0.5`` (tested: the same scores after training).

PyG's layers run on a sparse CSR adjacency (its ``adj_t`` input, one sparse product per
layer) except GAT, which needs the edge list for its attention scores.

Used in: ``chapters/12_architecture_search``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch_geometric.nn import GATConv, GCNConv, GINConv, LGConv, SAGEConv

from recsys_ref.graph.adjacency import bipartite_edge_index, normalized_adjacency
from recsys_ref.graph.sparse import to_csr
from recsys_ref.models.graph.lightgcn import LightGCN
from recsys_ref.nas.space import Param, SearchSpace
from recsys_ref.nn.fused_losses import embedding_l2

__all__ = ["LAYERS", "COMBINES", "ACTIVATIONS", "graph_space", "SearchedGNNModule",
           "SearchedGNN", "build_model", "describe", "LIGHTGCN_POINT"]

LAYERS = ("none", "lightgcn", "gcn", "sage", "gat", "gin")
COMBINES = ("last", "mean", "weighted", "concat")
ACTIVATIONS = {"identity": None, "relu": F.relu, "tanh": torch.tanh,
               "leaky_relu": F.leaky_relu}

#: chapter 6's hand-designed LightGCN (section 6.6) as a point of :func:`graph_space`
LIGHTGCN_POINT = {"layer": "lightgcn", "depth": 3, "combine": "mean",
                  "activation": "identity", "exponent": 0.5, "embed_dim": 64,
                  "loss": "softmax", "temperature": 0.2}


def graph_space(depths: tuple[int, int] = (1, 4), layers: tuple[str, ...] = LAYERS,
                embed_dims: tuple[int, ...] = (32, 64, 128),
                exponents: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 1.0),
                temperature: tuple[float, float] = (0.05, 1.0)) -> SearchSpace:
    """The graph-recommender search space of the module docstring (arguments narrow it)."""
    bad = set(layers) - set(LAYERS)
    if bad:
        raise ValueError(f"unknown layer type(s) {sorted(bad)}; choose from {LAYERS}")
    prop = tuple(t for t in layers if t != "none")
    params = [Param("layer", choices=layers)]
    if prop:
        on = {"layer": prop}
        params += [Param("depth", low=depths[0], high=depths[1], integer=True, when=on),
                   Param("combine", choices=COMBINES, when=on),
                   Param("activation", choices=tuple(ACTIVATIONS), when=on)]
        normed = tuple(t for t in prop if t in ("lightgcn", "gcn"))
        if normed:
            params.append(Param("exponent", choices=exponents, when={"layer": normed}))
    params += [Param("embed_dim", choices=embed_dims),
               Param("loss", choices=("bpr", "softmax")),
               Param("temperature", low=temperature[0], high=temperature[1], log=True,
                     when={"loss": ("softmax",)})]
    return SearchSpace(params)


def _conv(layer: str, dim: int) -> nn.Module:
    if layer == "lightgcn":
        return LGConv(normalize=False)
    if layer == "gcn":
        return GCNConv(dim, dim, normalize=False)
    if layer == "sage":
        return SAGEConv(dim, dim, aggr="mean")
    if layer == "gat":
        return GATConv(dim, dim, heads=1, add_self_loops=True)
    if layer == "gin":
        return GINConv(nn.Sequential(nn.Linear(dim, dim), nn.ReLU(), nn.Linear(dim, dim)),
                       train_eps=True)
    raise ValueError(f"unknown layer {layer!r}; choose from {LAYERS}")


class SearchedGNNModule(nn.Module):
    """The propagation network of one point (module docstring).

    Args:
        num_users, num_items: node counts; users are nodes ``0..U-1``, items ``U..``.
        edge_index: ``(2, 2|E|)`` bipartite edges (both directions).
        embed_dim, layer, depth, combine, activation, exponent: the point's values.
        init_std: std of the normal initialisation of :math:`\\mathbf{E}^{(0)}`.

    ``forward()`` returns ``(user_emb (U, d'), item_emb (I, d'))`` with :math:`d' = d`, or
    :math:`d(L+1)` for ``concat``.
    """

    def __init__(self, num_users: int, num_items: int, edge_index: torch.Tensor,
                 embed_dim: int, layer: str = "lightgcn", depth: int = 3,
                 combine: str = "mean", activation: str = "identity", exponent: float = 0.5,
                 init_std: float = 0.1):
        super().__init__()
        if layer not in LAYERS:
            raise ValueError(f"unknown layer {layer!r}; choose from {LAYERS}")
        if combine not in COMBINES:
            raise ValueError(f"unknown combine {combine!r}; choose from {COMBINES}")
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; choose from "
                             f"{tuple(ACTIVATIONS)}")
        depth = 0 if layer == "none" else depth
        if layer != "none" and depth < 1:
            raise ValueError(f"depth must be >= 1 for a propagating layer, got {depth}")
        n = num_users + num_items
        self.num_users, self.num_items = num_users, num_items
        self.layer, self.depth, self.combine = layer, depth, combine
        self.act = ACTIVATIONS[activation]
        self.embedding = nn.Embedding(n, embed_dim)       # first, as LightGCNModule
        nn.init.normal_(self.embedding.weight, std=init_std)
        self.convs = nn.ModuleList(_conv(layer, embed_dim) for _ in range(depth))
        self.layer_logits = (nn.Parameter(torch.zeros(depth + 1))
                             if combine == "weighted" and depth else None)
        self._graph: dict[str, torch.Tensor] = {}
        if depth:
            if layer == "gat":
                self._graph["edge_index"] = edge_index
            else:
                loops = layer == "gcn"
                norm = normalized_adjacency(edge_index, n, add_self_loops=loops,
                                            exponent=exponent)
                if layer in ("sage", "gin"):      # sum or mean of the plain neighbours
                    norm = torch.sparse_coo_tensor(norm.indices(),
                                                   torch.ones_like(norm.values()),
                                                   norm.shape, is_coalesced=True,
                                                   check_invariants=False)
                self._graph["adj_t"] = to_csr(norm)

    def _apply(self, fn, recurse=True):
        """Move the graph with the module (it is data, not a buffer in the state dict)."""
        self._graph = {k: fn(v) for k, v in self._graph.items()}
        return super()._apply(fn, recurse)

    def forward(self) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.embedding.weight
        layers = [h]
        graph = self._graph.get("adj_t", self._graph.get("edge_index"))
        for conv in self.convs:
            h = conv(h, graph)
            if self.act is not None:
                h = self.act(h)
            layers.append(h)
        if self.depth == 0 or self.combine == "last":
            out = h
        elif self.combine == "mean":
            out = torch.stack(layers).mean(0)
        elif self.combine == "weighted":
            w = torch.softmax(self.layer_logits, 0)
            out = (w[:, None, None] * torch.stack(layers)).sum(0)
        else:                                               # concat
            out = torch.cat(layers, dim=1)
        return out[: self.num_users], out[self.num_users:]

    def reg_loss(self, users, pos, neg) -> torch.Tensor:
        """L2 of the batch's layer-0 rows (LightGCN's; the layers' weights are free)."""
        return embedding_l2(self.embedding.weight, users, pos, neg, self.num_users)

    def __repr__(self) -> str:
        return (f"SearchedGNNModule({self.layer}, depth={self.depth}, "
                f"combine={self.combine}, d={self.embedding.embedding_dim})")


class SearchedGNN(LightGCN):
    """The recommender of one point of :func:`graph_space` (module docstring): LightGCN's
    training and scoring with :class:`SearchedGNNModule` as its network.

    Args:
        layer, depth, combine, activation, exponent: the point's architecture.
        **kwargs: :class:`~recsys_ref.models.graph.lightgcn.LightGCN`'s options
            (``embed_dim``, ``loss``, ``temperature``, ``normalize``, ``lr``...).
    """

    name = "searched-gnn"

    def __init__(self, layer: str = "lightgcn", depth: int = 3, combine: str = "mean",
                 activation: str = "identity", exponent: float = 0.5, **kwargs):
        super().__init__(num_layers=depth, **kwargs)
        if layer not in LAYERS or combine not in COMBINES or activation not in ACTIVATIONS:
            raise ValueError(f"layer, combine, activation must come from {LAYERS}, "
                             f"{COMBINES}, {tuple(ACTIVATIONS)}; got {layer!r}, "
                             f"{combine!r}, {activation!r}")
        self.layer, self.depth, self.combine = layer, depth, combine
        self.activation, self.exponent = activation, exponent

    def build(self) -> nn.Module:
        ei = bipartite_edge_index(self.train_df, self.num_users, self.num_items)
        return SearchedGNNModule(self.num_users, self.num_items, ei, self.embed_dim,
                                 self.layer, self.depth, self.combine, self.activation,
                                 self.exponent, self.init_std)

    def _score_items(self, items, ratings):
        raise NotImplementedError("a searched architecture has no fold-in for new users; "
                                  "refit with the user's interactions")

    def __repr__(self) -> str:
        return (f"SearchedGNN({self.layer}, depth={self.depth}, combine={self.combine}, "
                f"activation={self.activation}, d={self.embed_dim}, loss={self.loss})")


def build_model(point: dict, space: SearchSpace | None = None, **train_kwargs) -> SearchedGNN:
    """The :class:`SearchedGNN` of ``point`` (checked against ``space``, default
    :func:`graph_space`). BPR trains on dot products with one negative; the softmax on
    cosines over ``temperature`` with the whole catalogue as negatives. ``train_kwargs``
    (``lr``, ``batch_size``, ``num_epochs``, ``seed``...) go to the recommender."""
    point = (space or graph_space()).canonical(point)
    arch = {k: point[k] for k in ("depth", "combine", "activation", "exponent") if k in point}
    if point["layer"] == "none":
        arch["depth"] = 0
    if point["loss"] == "softmax":
        loss = dict(loss="softmax", num_neg=None, normalize=True,
                    temperature=point["temperature"])
    else:
        loss = dict(loss="bpr", num_neg=1, normalize=False)
    return SearchedGNN(layer=point["layer"], embed_dim=int(point["embed_dim"]),
                       **arch, **loss, **train_kwargs)


def describe(point: dict) -> str:
    """A point of :func:`graph_space` in one short line, e.g.
    ``"lightgcn x3, mean, identity, r=0.5, d=64, softmax tau=0.2"``."""
    if point["layer"] == "none":
        head = "MF (no propagation)"
    else:
        head = (f"{point['layer']} x{point['depth']}, {point['combine']}, "
                f"{point['activation']}")
        if "exponent" in point:
            head += f", r={point['exponent']:g}"
    loss = (f"softmax tau={point['temperature']:.2g}" if point["loss"] == "softmax"
            else "BPR")
    return f"{head}, d={point['embed_dim']}, {loss}"
