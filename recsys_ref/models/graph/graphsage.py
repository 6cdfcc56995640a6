r"""GraphSAGE (Hamilton, Ying & Leskovec, NeurIPS 2017) as a recommender: sample
neighbourhoods, aggregate, and score users and items by a dot product.

One GraphSAGE layer concatenates a node's own state with an aggregate of its (sampled)
neighbours' states and applies one linear map:

.. math::

    \mathbf{h}_v^{(l+1)} = \sigma\Big(\mathbf{W}^{(l)} \big[\mathbf{h}_v^{(l)} \,\Vert\,
        \mathrm{AGG}^{(l)}(\{\mathbf{h}_u^{(l)} : u \in S(v)\})\big]\Big)
    = \sigma\big(\mathbf{W}_1 \mathbf{h}_v^{(l)} + \mathbf{W}_2\,\mathrm{AGG}(\cdot)
        + \mathbf{b}\big),

with the *mean* aggregator :math:`\mathrm{AGG} = \frac{1}{|S(v)|}\sum_{u} \mathbf{h}_u`
or the *pool* aggregator :math:`\mathrm{AGG} = \max_u \mathrm{ReLU}(\mathbf{W}_p
\mathbf{h}_u + \mathbf{b}_p)` (element-wise max). PyG's ``SAGEConv(aggr="mean")`` and
``SAGEConv(aggr="max", project=True)`` are exactly these two (``lin_r`` is
:math:`\mathbf{W}_1`, ``lin_l`` is :math:`\mathbf{W}_2` with the bias);
:class:`~recsys_ref.nn.sage.SAGELayer` writes them out by hand and the tests check the two
agree.

The recommender runs an :math:`L`-layer GraphSAGE on the user–item graph
(:mod:`recsys_ref.graph.adjacency`: users ``0..U-1``, items ``U..U+I-1``). A node's input is the sum
of whichever of these it has:

* a learnable **ID embedding** (transductive: only nodes seen in training have one);
* a linear projection of its **side features** (user demographics, item genres and year:
  :func:`movielens_features`), which any node has, including users never seen in training.

Training samples mini-batches of ``(user, positive, negative)`` triples, samples the
:math:`L`-hop computation graph of the batch's nodes with fan-outs
:math:`(k_1,\dots,k_L)` (:mod:`recsys_ref.graph.neighbor_sampling`) and minimises BPR on
:math:`\hat y_{ui} = \mathbf{z}_u^\top \mathbf{z}_i`. Inference runs each layer once on the
full graph (exact, no sampling). Without user ID embeddings the model is **inductive**: a new
user is a new node with features and a few edges, embedded by the trained layers without
retraining (:meth:`GraphSAGE.score_new_users`).

Shapes:
    - user features ``(U, F_u)``, item features ``(I, F_i)``
    - ``forward()`` -> ``(U, d)``, ``(I, d)``; ``forward(edge_index)`` -> ``(N, d)``;
      ``forward(sub)`` = ``forward_sampled(sub)`` -> ``(B, d)``

Used in: ``chapters/07_graphsage_sampling``.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn
from torch_geometric.nn import SAGEConv

from recsys_ref.graph.adjacency import bipartite_edge_index
from recsys_ref.nn.losses import bpr_loss, l2_penalty
from recsys_ref.graph.neighbor_sampling import SampledSubgraph, make_neighbor_sampler
from recsys_ref.nn.sage import SAGELayer
from recsys_ref.models.embedding import EmbeddingRecommender

__all__ = ["SAGELayer", "GraphSAGEModule", "GraphSAGE", "movielens_features"]

AGE_BINS = (0, 18, 25, 35, 45, 50, 56, 200)                     # ML-1M's age groups
YEAR_BINS = (0, 1960, 1970, 1980, 1990, 1995, 1997, 3000)


def movielens_features(ml) -> tuple[np.ndarray, np.ndarray, list[str], list[str]]:
    """Side features of a :class:`recsys_ref.data.movielens.MovieLens` dataset.

    Users: one-hot age group (ML-1M's seven groups), gender and occupation. Items: genre
    multi-hot plus a one-hot release-year bucket (``<1960, 60s, 70s, 80s, 1990-94,
    1995-96, 1997+``, unknown).

    Returns:
        ``(user_x (U, F_u), item_x (I, F_i), user_feature_names, item_feature_names)``,
        float32 arrays in index order.
    """
    users, items = ml.users.sort_index(), ml.items.sort_index()
    age = pd.cut(users["age"].astype(int), AGE_BINS, right=False,
                 labels=[f"age {a}-{b - 1}" for a, b in zip(AGE_BINS[:-1], AGE_BINS[1:])])
    parts = [pd.get_dummies(age), pd.get_dummies(users["gender"].astype(str), prefix="gender"),
             pd.get_dummies(users["occupation"].astype(str), prefix="occ")]
    user_df = pd.concat(parts, axis=1).astype(np.float32)
    genres = pd.DataFrame(0.0, index=items.index, columns=[f"genre {g}" for g in ml.genres])
    for item, gs in items["genres"].items():
        for g in gs:
            genres.loc[item, f"genre {g}"] = 1.0
    year = items["year"].astype("float64")
    labels = [f"year {a}-{b - 1}" for a, b in zip(YEAR_BINS[:-1], YEAR_BINS[1:])]
    year_bucket = pd.cut(year, YEAR_BINS, right=False, labels=labels)
    year_df = pd.get_dummies(year_bucket).reindex(columns=labels, fill_value=0)
    year_df["year unknown"] = year.isna().astype(float)
    item_df = pd.concat([genres, year_df], axis=1).astype(np.float32)
    return (user_df.to_numpy(), item_df.to_numpy(), list(user_df.columns), list(item_df.columns))


class GraphSAGEModule(nn.Module):
    """The network: node inputs (ID embeddings and/or projected features) and
    ``num_layers`` PyG ``SAGEConv`` layers with ReLU between them.

    Args:
        num_users, num_items: node counts of the training graph.
        embed_dim: :math:`d` (every layer's width).
        num_layers: :math:`L`.
        edge_index: ``(2, 2|E|)`` training graph (a buffer: full-graph inference uses it).
        aggr: ``"mean"`` or ``"pool"``.
        user_x, item_x: side features or ``None``.
        use_user_id, use_item_id: learnable ID embeddings.
        dropout: dropout on hidden layers.
        init_std: std of the ID embeddings' normal initialisation.
    """

    def __init__(self, num_users: int, num_items: int, embed_dim: int, num_layers: int,
                 edge_index: torch.Tensor, aggr: str = "mean",
                 user_x: torch.Tensor | None = None, item_x: torch.Tensor | None = None,
                 use_user_id: bool = True, use_item_id: bool = True, dropout: float = 0.0,
                 init_std: float = 0.1):
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}")
        if aggr not in ("mean", "pool"):
            raise ValueError(f"aggr must be 'mean' or 'pool', got {aggr!r}")
        if not use_user_id and user_x is None:
            raise ValueError("users need an input: set use_user_id=True or give user features")
        if not use_item_id and item_x is None:
            raise ValueError("items need an input: set use_item_id=True or give item features")
        self.num_users, self.num_items, self.num_layers = num_users, num_items, num_layers
        self.embed_dim, self.aggr, self.dropout, self.init_std = embed_dim, aggr, dropout, init_std
        self.register_buffer("edge_index", edge_index)
        self.register_buffer("user_x", None if user_x is None else user_x.float())
        self.register_buffer("item_x", None if item_x is None else item_x.float())
        self.user_emb = nn.Embedding(num_users, embed_dim) if use_user_id else None
        self.item_emb = nn.Embedding(num_items, embed_dim) if use_item_id else None
        self.user_proj = nn.Linear(user_x.shape[1], embed_dim) if user_x is not None else None
        self.item_proj = nn.Linear(item_x.shape[1], embed_dim) if item_x is not None else None
        self.convs = nn.ModuleList([
            SAGEConv(embed_dim, embed_dim, aggr="max", project=True) if aggr == "pool"
            else SAGEConv(embed_dim, embed_dim, aggr="mean")
            for _ in range(num_layers)
        ])
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for emb in (self.user_emb, self.item_emb):
            if emb is not None:
                nn.init.normal_(emb.weight, std=self.init_std)
        for lin in (self.user_proj, self.item_proj):
            if lin is not None:
                lin.reset_parameters()
        for conv in self.convs:
            conv.reset_parameters()

    def encode(self, n_id: torch.Tensor, new_user_x: torch.Tensor | None = None) -> torch.Tensor:
        """Layer-0 input of global node ids ``n_id``: users ``< U``, items ``U..U+I-1``,
        new (unseen) users ``>= U+I`` (row ``n - U - I`` of ``new_user_x``, no ID)."""
        U, I = self.num_users, self.num_items
        x = torch.zeros(len(n_id), self.embed_dim, device=n_id.device)
        is_user, is_new = n_id < U, n_id >= U + I
        is_item = ~is_user & ~is_new
        if is_user.any():
            u = n_id[is_user]
            h = self.user_emb(u) if self.user_emb is not None else 0
            if self.user_proj is not None:
                h = h + self.user_proj(self.user_x[u])
            x[is_user] = h
        if is_item.any():
            i = n_id[is_item] - U
            h = self.item_emb(i) if self.item_emb is not None else 0
            if self.item_proj is not None:
                h = h + self.item_proj(self.item_x[i])
            x[is_item] = h
        if is_new.any():
            if new_user_x is None or self.user_proj is None:
                raise ValueError("new users need side features (new_user_x) and a model "
                                 "trained with user features")
            x[is_new] = self.user_proj(new_user_x[n_id[is_new] - U - I].float())
        return x

    def _act(self, h: torch.Tensor, last: bool) -> torch.Tensor:
        if last:
            return h
        return F.dropout(F.relu(h), self.dropout, self.training)

    def forward_sampled(self, sub: SampledSubgraph) -> torch.Tensor:
        """Embeddings ``(batch_size, d)`` of the seeds of a sampled subgraph.

        Layer ``l`` only updates the nodes still needed by the layers above it (PyG's
        ``trim_to_layer``): the nodes within ``L-l-1`` hops of the seeds, using the edges
        that point into them."""
        L = self.num_layers
        if len(sub.num_sampled_edges) != L:
            raise ValueError(f"the subgraph has {len(sub.num_sampled_edges)} hops but the model "
                             f"has {L} layers: give the sampler one fan-out per layer")
        cum_n = np.cumsum(sub.num_sampled_nodes).tolist()
        cum_e = np.cumsum(sub.num_sampled_edges).tolist()
        x = self.encode(sub.n_id)
        for layer, conv in enumerate(self.convs):
            n_src, n_dst, n_e = cum_n[L - layer], cum_n[L - layer - 1], cum_e[L - layer - 1]
            x = x[:n_src]
            x = conv((x, x[:n_dst]), sub.edge_index[:, :n_e], size=(n_src, n_dst))
            x = self._act(x, layer == L - 1)
        return x

    def forward(self, graph: torch.Tensor | SampledSubgraph | None = None,
                new_user_x: torch.Tensor | None = None):
        """The one entry point, whatever the graph (PyG's "the graph is an argument"):

        * ``None``: the training graph; returns ``(user_emb (U, d), item_emb (I, d))``;
        * an ``edge_index`` ``(2, E)`` over ``U + I + n_new`` nodes (new users
          ``U+I..``, embedded from the rows of ``new_user_x`` ``(n_new, F_u)``): exact
          full-graph propagation, every node's embedding ``(U + I + n_new, d)``;
        * a :class:`~recsys_ref.graph.neighbor_sampling.SampledSubgraph`: the embeddings
          of its seeds ``(batch_size, d)`` (:meth:`forward_sampled`).
        """
        if isinstance(graph, SampledSubgraph):
            return self.forward_sampled(graph)
        if graph is None:
            z = self.forward(self.edge_index)
            return z[: self.num_users], z[self.num_users:]
        num_nodes = self.num_users + self.num_items + (0 if new_user_x is None else len(new_user_x))
        x = self.encode(torch.arange(num_nodes, device=graph.device), new_user_x)
        for layer, conv in enumerate(self.convs):
            x = self._act(conv(x, graph), layer == self.num_layers - 1)
        return x

    def __repr__(self) -> str:
        parts = (("user_id", self.user_emb), ("item_id", self.item_emb),
                 ("user_x", self.user_proj), ("item_x", self.item_proj))
        inputs = [n for n, m in parts if m is not None]
        return (f"GraphSAGEModule({self.num_users}+{self.num_items}, {self.embed_dim}, "
                f"num_layers={self.num_layers}, aggr={self.aggr}, inputs={inputs})")


class GraphSAGE(EmbeddingRecommender):
    """GraphSAGE recommender trained with BPR on sampled subgraphs (module docstring).

    Args:
        num_layers: :math:`L` (default 2).
        fanouts: neighbours sampled per node at each hop, one per layer (default ``(10, 5)``).
        aggr: ``"mean"`` (default) or ``"pool"``.
        user_features, item_features: ``(U, F_u)`` / ``(I, F_i)`` arrays or ``None``
            (e.g. from :func:`movielens_features`).
        use_user_id, use_item_id: learnable ID embeddings (default both ``True``). Set
            ``use_user_id=False`` (with user features) for an inductive model.
        dropout: dropout between layers (default 0).
        sampler_backend: ``"auto"`` (PyG's sampler when importable), ``"pyg"`` or
            ``"recsys_ref"``.
        **kwargs: training options of :class:`~recsys_ref.models.embedding.EmbeddingRecommender`
            (``embed_dim=64, lr=1e-3, reg=1e-4, num_neg=1, patience=5, seed=0``..., and here
            ``batch_size=1024, num_epochs=150, eval_every=2``, chapter 7's run: at most
            150 epochs, stopped early on validation, where it stopped at 56). ``reg``
            weighs the L2 norm of the
            batch's output embeddings. Only ``loss="bpr"`` is supported.
    """

    name = "graphsage"
    #: chapter 7's run: batch 1024, at most 150 epochs (early stopping), validation every 2
    defaults = dict(batch_size=1024, num_epochs=150, eval_every=2)

    def __init__(self, num_layers: int = 2, fanouts=(10, 5), aggr: str = "mean",
                 user_features: np.ndarray | None = None, item_features: np.ndarray | None = None,
                 use_user_id: bool = True, use_item_id: bool = True, dropout: float = 0.0,
                 sampler_backend: str = "auto", **kwargs):
        super().__init__(**{**self.defaults, **kwargs})
        if self.loss != "bpr":
            raise ValueError("GraphSAGE here trains with BPR only (loss='bpr')")
        fanouts = [int(k) for k in (fanouts if not isinstance(fanouts, int) else [fanouts])]
        if len(fanouts) != num_layers:
            raise ValueError(f"give one fan-out per layer: num_layers={num_layers}, "
                             f"fanouts={fanouts}")
        if any(k <= 0 for k in fanouts):
            raise ValueError(f"fan-outs must be positive, got {fanouts}")
        if aggr not in ("mean", "pool"):
            raise ValueError(f"aggr must be 'mean' or 'pool', got {aggr!r}")
        self.num_layers, self.fanouts, self.aggr, self.dropout = num_layers, fanouts, aggr, dropout
        self.user_features, self.item_features = user_features, item_features
        self.use_user_id, self.use_item_id = use_user_id, use_item_id
        self.sampler_backend = sampler_backend
        self.sampler = None
        self.batch_stats: list[tuple[int, int]] = []

    def build(self) -> GraphSAGEModule:
        self.edge_index = bipartite_edge_index(self.train_df, self.num_users, self.num_items)
        ux = None if self.user_features is None else torch.as_tensor(np.asarray(self.user_features))
        ix = None if self.item_features is None else torch.as_tensor(np.asarray(self.item_features))
        if ux is not None and ux.shape[0] != self.num_users:
            raise ValueError(f"user_features has {ux.shape[0]} rows, expected "
                             f"num_users={self.num_users}")
        if ix is not None and ix.shape[0] != self.num_items:
            raise ValueError(f"item_features has {ix.shape[0]} rows, expected "
                             f"num_items={self.num_items}")
        return GraphSAGEModule(self.num_users, self.num_items, self.embed_dim, self.num_layers,
                               self.edge_index, self.aggr, ux, ix, self.use_user_id,
                               self.use_item_id, self.dropout)

    def setup(self, trainer) -> None:
        """The parent's setup (module, negative sampler, pairs, generator) plus the
        neighbour sampler."""
        super().setup(trainer)
        self.sampler = make_neighbor_sampler(self.edge_index, self.num_users + self.num_items,
                                             self.fanouts, seed=self.seed,
                                             backend=self.sampler_backend)
        self.batch_stats = []

    def configure_optimizer(self, config) -> torch.optim.Optimizer:
        """Adam (the unfused implementation) with ``lr = config.lr``."""
        return torch.optim.Adam(self.module.parameters(), lr=config.lr)

    def epoch_data(self, epoch: int) -> tuple[torch.Tensor]:
        """A random order of the training pairs, ``(E,)`` (negatives are drawn per batch)."""
        self._cache, self._epoch = None, epoch
        return (torch.randperm(len(self._pairs[0]), generator=self._gen),)

    def calculate_loss(self, batch: tuple[torch.Tensor]) -> torch.Tensor:
        """BPR (+ ``reg`` times the L2 of the batch's output embeddings) on the embeddings
        of the batch's users, positives and negatives computed on their sampled subgraph."""
        idx = batch[0]
        users, pos = self._pairs[0][idx], self._pairs[1][idx]
        neg = self._sampler(users.numpy(), self.num_neg)                  # (B, n)
        nodes = torch.cat([users, pos + self.num_users, neg.view(-1) + self.num_users])
        seeds, inv = torch.unique(nodes, return_inverse=True)
        sub = self.sampler(seeds)
        if self._epoch == 0:
            self.batch_stats.append((sub.num_nodes, sub.num_edges))
        sub = sub.to(self.device)
        z = self.module.forward_sampled(sub)[inv.to(self.device)]        # (B(2+n), d)
        B = len(idx)
        u, p, q = z[:B], z[B:2 * B], z[2 * B:].view(B, -1, z.shape[1])
        loss = bpr_loss((u * p).sum(-1), torch.einsum("bd,bnd->bn", u, q))
        if self.reg > 0:
            loss = loss + self.reg * l2_penalty(u, p, q.reshape(-1, z.shape[1]))
        return loss

    @torch.no_grad()
    def score_new_users(self, user_features: np.ndarray,
                        interactions: pd.DataFrame) -> torch.Tensor:
        """Scores ``(n_new, num_items)`` for users unseen in training, without retraining.

        Each new user becomes a node with its side features and an edge (both directions)
        to every item in ``interactions``; the trained layers embed it on the enlarged graph.

        Args:
            user_features: ``(n_new, F_u)``, same columns as the training features.
            interactions: frame with ``user`` (``0..n_new-1``, the row of
                ``user_features``) and ``item`` (0-based item index) columns; may be empty
                (features only).
        """
        self._check_fitted()
        if self.module.user_proj is None:
            raise ValueError("this model was trained without user features, so it cannot embed "
                             "new users: fit with user_features=...")
        x_new = torch.as_tensor(np.asarray(user_features), dtype=torch.float32)
        if x_new.dim() != 2 or x_new.shape[1] != self.module.user_x.shape[1]:
            raise ValueError(f"user_features must be (n_new, {self.module.user_x.shape[1]}), "
                             f"got {tuple(x_new.shape)}")
        n_new = x_new.shape[0]
        U, I = self.num_users, self.num_items
        u = torch.as_tensor(interactions["user"].to_numpy(copy=True), dtype=torch.long)
        i = torch.as_tensor(interactions["item"].to_numpy(copy=True), dtype=torch.long)
        if len(u) and (u.min() < 0 or u.max() >= n_new or i.min() < 0 or i.max() >= I):
            raise ValueError(f"interactions must use new-user rows 0..{n_new - 1} and item "
                             f"indices 0..{I - 1}")
        new_nodes, items = u + U + I, i + U
        edge_index = torch.cat([self.edge_index, torch.stack([new_nodes, items]),
                                torch.stack([items, new_nodes])], 1).to(self.device)
        self.module.eval()
        z = self.module(edge_index, x_new.to(self.device))
        return (z[U + I:] @ z[U:U + I].T).cpu()

    def __repr__(self) -> str:
        inputs = "+".join(n for n, on in (("user_id", self.use_user_id),
                                          ("item_id", self.use_item_id),
                                          ("user_x", self.user_features is not None),
                                          ("item_x", self.item_features is not None)) if on)
        return (f"GraphSAGE({self.num_users}+{self.num_items}, {self.embed_dim}, "
                f"num_layers={self.num_layers}, aggr={self.aggr}, fanouts={self.fanouts}, "
                f"inputs={inputs})")
