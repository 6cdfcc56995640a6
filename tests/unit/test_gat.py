"""The graph-attention recommender: uniform attention is LightGCN, attention weights are
distributions, explanations add up, it learns planted structure, bad input raises."""
import numpy as np
import pandas as pd
import pytest
import torch

from recsys_ref.protocol.evaluate import evaluate_ranking
from recsys_ref.graph import bipartite_edge_index, normalized_adjacency
from recsys_ref.models import MODELS, get_model
from recsys_ref.models.graph.gat import GATRecModule, GATRecommender
from recsys_ref.models.graph.lightgcn import LightGCNModule
from recsys_ref.models.classic.popularity import Popularity


def small_graph(num_users=7, num_items=9, num_pairs=30, seed=0):
    rng = np.random.default_rng(seed)
    pairs = np.unique(np.stack([rng.integers(0, num_users, num_pairs),
                                rng.integers(0, num_items, num_pairs)], 1), axis=0)
    return pairs, bipartite_edge_index(pairs, num_users, num_items)


def planted(seed=0):
    """Three communities of users and items of unequal size; each user rates 60% of her
    community's items (a third of them held out). Popularity recommends the largest
    community's films to everyone."""
    rng = np.random.default_rng(seed)
    sizes_u, sizes_i = [30, 20, 10], [20, 14, 8]
    rows, u0, i0 = [], 0, 0
    for su, si in zip(sizes_u, sizes_i):
        for u in range(u0, u0 + su):
            for i in rng.choice(np.arange(i0, i0 + si), int(0.6 * si), replace=False):
                rows.append((u, i))
        u0, i0 = u0 + su, i0 + si
    df = pd.DataFrame(rows, columns=["user", "item"])
    test_mask = rng.random(len(df)) < 1 / 3
    return df[~test_mask].reset_index(drop=True), df[test_mask].reset_index(drop=True), u0, i0


@pytest.mark.parametrize("attention", ["dot", "gat", "gatv2"])
@pytest.mark.parametrize("heads", [1, 2])
def test_untrained_attention_is_lightgcn(attention, heads):
    # the last factor of every score starts at zero: alpha_ij = 1/d_i, and with the
    # sqrt(d_i/d_j) factor each layer is LightGCN's D^-1/2 A D^-1/2
    pairs, ei = small_graph()
    torch.manual_seed(0)
    gat = GATRecModule(7, 9, 8, 2, ei, attention, heads=heads)
    lgcn = LightGCNModule(7, 9, 8, 2, normalized_adjacency(ei, 16))
    with torch.no_grad():
        lgcn.embedding.weight.copy_(gat.embedding.weight)
    for mine, ref in zip(gat(), lgcn()):
        torch.testing.assert_close(mine, ref, atol=1e-6, rtol=0)


def test_uniform_weights_are_one_over_degree():
    pairs, ei = small_graph()
    alpha = GATRecModule(7, 9, 8, 1, ei).attention_weights()[0][:, 0]
    deg = torch.bincount(ei[1], minlength=16).float()
    torch.testing.assert_close(alpha, 1 / deg[ei[1]])


@pytest.mark.parametrize("attention", ["dot", "gat", "gatv2"])
def test_trained_attention_sums_to_one_per_node(attention):
    pairs, ei = small_graph()
    torch.manual_seed(1)
    m = GATRecModule(7, 9, 8, 2, ei, attention, heads=2)
    for s in m.scorers:  # move away from uniform attention
        for p in s.parameters():
            torch.nn.init.normal_(p, std=1.0)
    for alpha in m.attention_weights():
        assert alpha.shape == (ei.size(1), 2)
        sums = torch.zeros(16, 2).index_add_(0, ei[1], alpha)
        has_in = torch.bincount(ei[1], minlength=16) > 0
        torch.testing.assert_close(sums[has_in], torch.ones(int(has_in.sum()), 2))
        assert alpha.std() > 0  # not uniform any more


def test_one_layer_matches_hand_computation():
    # user 0 rated items 0 and 1 (node ids 2 and 3) in a graph with one more user;
    # dot attention with W_q = W_k = I, d = 2, one head
    pairs = np.array([[0, 0], [0, 1], [1, 1]])
    ei = bipartite_edge_index(pairs, 2, 2)
    m = GATRecModule(2, 2, 2, 1, ei, "dot")
    e0 = torch.tensor([[1.0, 0.0], [0.0, 1.0], [2.0, 0.0], [0.0, 1.0]])
    with torch.no_grad():
        m.embedding.weight.copy_(e0)
        m.scorers[0].W_q.weight.copy_(torch.eye(2))
        m.scorers[0].W_k.weight.copy_(torch.eye(2))
    # user 0 (degree 2): scores q_0.k_item0 / sqrt(2) = 2/sqrt(2), q_0.k_item1 = 0
    s = np.array([2 / np.sqrt(2), 0.0])
    a = np.exp(s) / np.exp(s).sum()
    # degrees: user 0 -> 2, item 0 -> 1, item 1 -> 2
    w = a * np.sqrt(2 / np.array([1.0, 2.0]))
    e1_user0 = w[0] * np.array([2.0, 0.0]) + w[1] * np.array([0.0, 1.0])
    user_emb, _ = m()
    np.testing.assert_allclose(user_emb[0].detach().numpy(), (e0[0].numpy() + e1_user0) / 2, atol=1e-6)


def test_explain_contributions_add_up_to_layer_one_score():
    train, _, nu, ni = planted()
    model = GATRecommender(num_layers=2, embed_dim=8, heads=2, num_epochs=2, batch_size=256,
                           lr=0.05, progress=False, seed=0).fit(train, nu, ni)
    user, item = 3, 5
    table = model.explain(user, item)
    m = model.module.eval()
    with torch.no_grad():
        e1, _ = m.layer(m.embedding.weight, 0)
        _, item_emb = m()
    expected = float(e1[user] @ item_emb[item]) / 3
    assert table["contribution"].sum() == pytest.approx(expected, abs=1e-5)
    assert sorted(table["item"]) == sorted(train.loc[train.user == user, "item"])
    assert table["attention"].sum() == pytest.approx(1.0, abs=1e-6)
    assert table["attention"].is_monotonic_decreasing


def test_beats_popularity_on_planted_communities():
    train, test, nu, ni = planted()
    pop = evaluate_ranking(Popularity().fit(train, nu, ni).score, test, nu, ni, 5,
                           exclude=[train], metrics=["ndcg", "recall"])
    model = GATRecommender(num_layers=2, embed_dim=16, num_epochs=10, pretrain_epochs=20,
                           pretrain_lr=0.05, pretrain_batch_size=128, batch_size=512, lr=0.02,
                           reg=1e-4, seed=0, progress=False)
    model.fit(train, nu, ni)
    gat = evaluate_ranking(model.score, test, nu, ni, 5, exclude=[train], metrics=["ndcg", "recall"])
    assert len(model.pretrain_history.rows) == 20 and len(model.history.rows) == 10
    assert (model.lr, model.batch_size) == (0.02, 512)  # phase-2 settings restored
    assert model.pretrained_embedding.shape == (nu + ni, 16)
    before = model.score(torch.arange(3))
    model.use_phase("uniform")
    torch.testing.assert_close(model.module.embedding.weight.detach(), model.pretrained_embedding)
    model.use_phase("attention")
    torch.testing.assert_close(model.score(torch.arange(3)), before)
    assert gat["ndcg"] > pop["ndcg"] + 0.1, (gat, pop)
    assert gat["recall"] > pop["recall"] + 0.1, (gat, pop)


def test_recommend_excludes_training_items():
    train, _, nu, ni = planted()
    model = GATRecommender(embed_dim=8, num_epochs=1, batch_size=512, seed=0).fit(train, nu, ni)
    top = model.recommend(np.arange(nu), k=3)
    seen = set(zip(train.user, train.item))
    assert not any((u, int(i)) in seen for u in range(nu) for i in top[u])
    assert model.score(torch.arange(4)).shape == (4, ni)


def test_registered_and_repr():
    assert "gat" in MODELS and get_model("gat") is GATRecommender
    assert repr(GATRecommender(embed_dim=8, heads=2)).startswith("GATRecommender(")


def test_bad_input_raises():
    _, ei = small_graph()
    with pytest.raises(ValueError, match="attention must be"):
        GATRecommender(attention="additive")
    with pytest.raises(ValueError, match="multiple of heads"):
        GATRecommender(embed_dim=10, heads=4)
    with pytest.raises(ValueError, match="degree_norm"):
        GATRecModule(7, 9, 8, 1, ei, degree_norm="left")
    with pytest.raises(ValueError, match="outside"):
        GATRecModule(3, 3, 8, 1, ei)
    with pytest.raises(ValueError, match="pretrain_epochs"):
        GATRecommender(pretrain_epochs=-1)
    with pytest.raises(ValueError, match="pretrain_lr"):
        GATRecommender(pretrain_lr=0.0)
    with pytest.raises(RuntimeError, match="not fitted"):
        GATRecommender().explain(0, 0)
    train, _, nu, ni = planted()
    model = GATRecommender(embed_dim=8, num_epochs=1, batch_size=512).fit(train, nu, ni)
    with pytest.raises(ValueError, match="item index"):
        model.explain(0, ni)
    with pytest.raises(ValueError, match="user index"):
        model.explain(nu, 0)


@pytest.mark.parametrize("attend", [True, False])
def test_the_graph_is_a_forward_argument(attend):
    """forward(edge_index) over a graph with fewer edges equals a module built on it with
    the same weights (trained-like, non-zero queries), in both attention modes."""
    pairs, ei = small_graph()
    fewer = bipartite_edge_index(pairs[: len(pairs) // 2], 7, 9)
    torch.manual_seed(0)
    module = GATRecModule(7, 9, 8, 2, ei, "gat")
    with torch.no_grad():
        for s in module.scorers:
            s.att_src.normal_()
    other = GATRecModule(7, 9, 8, 2, fewer, "gat")
    other.load_state_dict({k: v for k, v in module.state_dict().items()
                           if k not in ("edge_index", "edge_scale", "norm_adj")}, strict=False)
    module.attend = other.attend = attend
    with torch.no_grad():
        for got, want in zip(module(fewer), other()):
            torch.testing.assert_close(got, want)
        assert not torch.allclose(module(fewer)[0], module()[0])
