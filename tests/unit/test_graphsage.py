"""GraphSAGE: hand-built layer vs PyG SAGEConv, sampled vs full-graph equality, the
recommender on a planted-structure graph, inductive scoring, bad input."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
from torch_geometric.nn import SAGEConv

from recsys_ref.protocol.evaluate import evaluate_ranking
from recsys_ref.graph import bipartite_edge_index
from recsys_ref.models import get_model
from recsys_ref.models.graph.graphsage import GraphSAGE, GraphSAGEModule, SAGELayer, movielens_features
from recsys_ref.models.classic.popularity import Popularity
from recsys_ref.graph.neighbor_sampling import NeighborSampler


def random_edges(num_nodes=12, num_edges=40, seed=0):
    g = torch.Generator().manual_seed(seed)
    ei = torch.randint(0, num_nodes - 2, (2, num_edges), generator=g)   # last 2 nodes isolated
    return ei[:, ei[0] != ei[1]]


def test_mean_aggregator_by_hand():
    # star: 1 -> 0, 2 -> 0; node 0's neighbour mean is (x1 + x2) / 2
    x = torch.tensor([[1.0, 0.0], [2.0, 4.0], [0.0, 2.0]])
    ei = torch.tensor([[1, 2], [0, 0]])
    layer = SAGELayer(2, 2, aggr="mean")
    with torch.no_grad():
        layer.lin_neigh.weight.copy_(torch.eye(2))
        layer.lin_neigh.bias.zero_()
        layer.lin_root.weight.copy_(2 * torch.eye(2))
    out = layer(x, ei)
    # node 0: 2*[1,0] + [1,3]; nodes 1 and 2 have no in-neighbours: 2*x only
    assert torch.allclose(out, torch.tensor([[3.0, 3.0], [4.0, 8.0], [0.0, 4.0]]))


@pytest.mark.parametrize("aggr", ["mean", "pool"])
def test_sage_layer_equals_pyg_sageconv(aggr):
    torch.manual_seed(0)
    x = torch.randn(12, 5)
    ei = random_edges()
    conv = SAGEConv(5, 3, aggr="max", project=True) if aggr == "pool" else SAGEConv(5, 3)
    mine = SAGELayer(5, 3, aggr=aggr)
    with torch.no_grad():
        mine.lin_neigh.weight.copy_(conv.lin_l.weight)
        mine.lin_neigh.bias.copy_(conv.lin_l.bias)
        mine.lin_root.weight.copy_(conv.lin_r.weight)
        if aggr == "pool":
            mine.pool.weight.copy_(conv.lin.weight)
            mine.pool.bias.copy_(conv.lin.bias)
    assert torch.allclose(mine(x, ei), conv(x, ei), atol=1e-6)


def small_bipartite(num_users=7, num_items=9, seed=0):
    rng = np.random.default_rng(seed)
    pairs = {(u, i) for u in range(num_users) for i in range(num_items) if rng.random() < 0.4}
    pairs |= {(u, u % num_items) for u in range(num_users)}            # nobody isolated
    pairs |= {(i % num_users, i) for i in range(num_items)}
    df = pd.DataFrame(sorted(pairs), columns=["user", "item"])
    return df, num_users, num_items


@pytest.mark.parametrize("aggr", ["mean", "pool"])
@pytest.mark.parametrize("num_layers", [1, 2, 3])
def test_minibatch_equals_full_graph_when_fanout_covers_all(aggr, num_layers):
    df, U, I = small_bipartite()
    ei = bipartite_edge_index(df, U, I)
    torch.manual_seed(0)
    module = GraphSAGEModule(U, I, 8, num_layers, ei, aggr=aggr,
                             user_x=torch.randn(U, 3), item_x=torch.randn(I, 4))
    module.eval()
    sampler = NeighborSampler(ei, U + I, [100] * num_layers, seed=0)
    seeds = torch.tensor([0, 3, U + 1, U + 5])
    with torch.no_grad():
        sampled = module(sampler(seeds))                 # a sampled subgraph: its seeds
        full = module(ei)[seeds]                         # an edge_index: every node
    assert torch.allclose(sampled, full, atol=1e-6)
    with torch.no_grad():                                # no graph: the training graph
        users, items = module()
    assert torch.allclose(torch.cat([users, items]), module(ei), atol=1e-6)


def test_small_fanout_differs_from_full_graph():
    # the equality above is not vacuous: with fan-out 1 the outputs change
    df, U, I = small_bipartite()
    ei = bipartite_edge_index(df, U, I)
    torch.manual_seed(0)
    module = GraphSAGEModule(U, I, 8, 2, ei).eval()
    seeds = torch.arange(U)
    with torch.no_grad():
        sampled = module.forward_sampled(NeighborSampler(ei, U + I, [1, 1], seed=0)(seeds))
        full = module(ei)[seeds]
    assert not torch.allclose(sampled, full, atol=1e-4)


def planted(num_users=80, num_items=60, per_user=10, seed=0):
    """Two taste groups: users of group g interact only with items of group g; a few
    'popular' items of group 0 are liked by most of group 0, so popularity is mediocre
    for group 1. Features say the group (noisily)."""
    rng = np.random.default_rng(seed)
    user_group = np.arange(num_users) % 2
    item_group = np.arange(num_items) % 2
    rows = []
    for u in range(num_users):
        items = np.flatnonzero(item_group == user_group[u])
        for i in rng.choice(items, per_user, replace=False):
            rows.append((u, int(i)))
    df = pd.DataFrame(rows, columns=["user", "item"])
    test_mask = rng.random(len(df)) < 0.3
    ux = np.eye(2, dtype=np.float32)[user_group] + 0.1 * rng.standard_normal((num_users, 2)).astype(np.float32)
    ix = np.eye(2, dtype=np.float32)[item_group]
    return df[~test_mask], df[test_mask], num_users, num_items, ux, ix, user_group


def test_recommender_beats_popularity_on_planted_groups():
    train, test, U, I, ux, ix, _ = planted()
    model = GraphSAGE(embed_dim=16, fanouts=(5, 5), num_epochs=15, batch_size=128, lr=0.01,
                      patience=None, seed=0).fit(train, U, I)
    pop = Popularity().fit(train, U, I)
    got = evaluate_ranking(model.score, test, U, I, 5, exclude=[train])
    base = evaluate_ranking(pop.score, test, U, I, 5, exclude=[train])
    assert got["recall"] > base["recall"] + 0.1
    assert model.history.frame["loss"].iloc[-1] < model.history.frame["loss"].iloc[0]


def test_inductive_scores_rank_the_new_users_group_first():
    train, _, U, I, ux, ix, group = planted()
    model = GraphSAGE(embed_dim=16, fanouts=(5, 5), num_epochs=15, batch_size=128, lr=0.01,
                      user_features=ux, item_features=ix, use_user_id=False,
                      patience=None, seed=0).fit(train, U, I)
    # two new users, one per group, each with 2 revealed items of their group
    new_x = np.eye(2, dtype=np.float32)
    seen = pd.DataFrame({"user": [0, 0, 1, 1], "item": [0, 2, 1, 3]})
    scores = model.score_new_users(new_x, seen)
    assert scores.shape == (2, I)
    item_group = np.arange(I) % 2
    for g in (0, 1):
        top = torch.topk(scores[g], 10).indices.numpy()
        assert (item_group[top] == g).mean() >= 0.9
    # with no revealed edges (features only) it still returns finite scores
    assert torch.isfinite(model.score_new_users(new_x, seen.iloc[:0])).all()


def test_registered_in_models():
    assert get_model("graphsage") is GraphSAGE


def test_movielens_features_by_hand():
    ml = SimpleNamespace(
        users=pd.DataFrame({"age": [17, 30], "gender": ["M", "F"],
                            "occupation": ["writer", "other"]}),
        items=pd.DataFrame({"genres": [["Drama"], ["Comedy", "Drama"]],
                            "year": pd.array([1995, pd.NA], dtype="Int64")}),
        genres=("Comedy", "Drama"))
    ux, ix, un, iname = movielens_features(ml)
    assert ux.shape == (2, 7 + 2 + 2) and (ux.sum(1) == 3).all()
    assert ux[0, un.index("age 0-17")] == 1 and ux[1, un.index("age 25-34")] == 1
    assert ux[1, un.index("gender_F")] == 1 and ux[0, un.index("occ_writer")] == 1
    assert ix.shape == (2, 2 + 7 + 1)
    assert ix[0].tolist()[:2] == [0, 1] and ix[1].tolist()[:2] == [1, 1]
    assert ix[0, iname.index("year 1995-1996")] == 1 and ix[1, iname.index("year unknown")] == 1


def test_bad_input_raises():
    train, _, U, I, ux, ix, _ = planted()
    with pytest.raises(ValueError, match="one fan-out per layer"):
        GraphSAGE(num_layers=2, fanouts=(5,))
    with pytest.raises(ValueError, match="positive"):
        GraphSAGE(num_layers=2, fanouts=(5, 0))
    with pytest.raises(ValueError, match="aggr"):
        GraphSAGE(aggr="lstm")
    with pytest.raises(ValueError, match="users need an input"):
        GraphSAGE(use_user_id=False, num_epochs=1).fit(train, U, I)
    model = GraphSAGE(embed_dim=8, fanouts=(2, 2), num_epochs=1, batch_size=256,
                      user_features=ux, patience=None).fit(train, U, I)
    with pytest.raises(ValueError, match="unknown user"):
        model.score(torch.tensor([U]))
    with pytest.raises(ValueError, match="user_features must be"):
        model.score_new_users(np.zeros((1, 5)), pd.DataFrame({"user": [0], "item": [0]}))
    with pytest.raises(ValueError, match="item indices"):
        model.score_new_users(np.zeros((1, 2)), pd.DataFrame({"user": [0], "item": [I]}))
    no_features = GraphSAGE(embed_dim=8, fanouts=(2, 2), num_epochs=1, patience=None).fit(train, U, I)
    with pytest.raises(ValueError, match="without user features"):
        no_features.score_new_users(np.zeros((1, 2)), pd.DataFrame({"user": [0], "item": [0]}))
