"""node2vec / DeepWalk (skip-gram with negative sampling) and the graph autoencoder."""
import math
import types

import numpy as np
import pandas as pd
import pytest
import torch
from torch_geometric.nn import Node2Vec as PyGNode2Vec

from recsys_ref.protocol.evaluate import evaluate_ranking
from recsys_ref.models import get_model
from recsys_ref.models.graph.gae import GCNEncoder, GraphAutoEncoder, sparse_adj_t
from recsys_ref.models.graph.node2vec import DeepWalk, Node2Vec, SkipGramModule, sgns_loss
from recsys_ref.models.classic.popularity import Popularity


def planted(seed=0):
    """Two taste groups: 24 users like items 0-19, 8 users like items 20-39. Popularity
    ranks group A's items first for everyone; a graph embedding should not."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(32):
        lo = 0 if u < 24 else 20
        for i in rng.choice(np.arange(lo, lo + 20), 12, replace=False):
            rows.append((u, int(i)))
    df = pd.DataFrame(rows, columns=["user", "item"])
    test = df.groupby("user").sample(3, random_state=seed)
    return df.drop(test.index), test, 32, 40


def minority_precision(model, train, test, k=5):
    """Precision@k on the 8 users of the small group, for whom popularity (driven by the
    24 users of the large group) recommends the wrong items; in-group random picks get
    3/11 = 0.27."""
    minority = test[test["user"] >= 24]
    return evaluate_ranking(model.score, minority, 32, 40, k, exclude=[train])["precision"]


# -- skip-gram loss ------------------------------------------------------------------------
def test_sgns_loss_hand_example():
    # z_0 = 1, z_1 = 2, z_2 = 0 (d = 1): positive pair (0, 1) scores 2, negative (0, 2) scores 0
    emb = torch.tensor([[1.0], [2.0], [0.0]])
    loss = sgns_loss(emb, torch.tensor([[0, 1]]), torch.tensor([[0, 2]]))
    expected = -math.log(1 / (1 + math.exp(-2))) - math.log(0.5)   # 0.126928 + 0.693147
    assert float(loss) == pytest.approx(expected, abs=1e-6)
    assert float(loss) == pytest.approx(0.820075, abs=1e-6)


def test_sgns_loss_equals_pyg_node2vec_loss():
    torch.manual_seed(0)
    emb = torch.nn.Embedding(10, 4)
    pos = torch.randint(0, 10, (7, 3))
    neg = torch.randint(0, 10, (14, 3))
    # PyG's Node2Vec.loss only reads these attributes (the class needs pyg-lib to build)
    fake = types.SimpleNamespace(embedding=emb, embedding_dim=4, EPS=1e-15)
    ref = PyGNode2Vec.loss(fake, pos, neg)
    assert torch.allclose(sgns_loss(emb, pos, neg), ref)


def test_skipgram_samples_have_pyg_shapes():
    ei = torch.tensor([[0, 1, 1, 2, 2, 3], [1, 0, 2, 1, 3, 2]])
    m = SkipGramModule(ei, 8, walk_length=6, context_size=3, walks_per_node=2,
                       num_negative_samples=3, num_nodes=4)
    batch = torch.tensor([0, 3])
    pos, neg = m.sample(batch)
    assert pos.shape == (2 * 2 * (6 - 3 + 1), 3)
    assert neg.shape == (2 * 2 * 3 * (6 - 3 + 1), 3)
    assert torch.equal(pos[:4, 0], batch.repeat(2))       # first windows start at the batch
    assert torch.equal(neg[:12, 0], batch.repeat(6))
    assert ((pos[:, 1:] - pos[:, :-1]).abs() == 1).all()  # path graph: steps of +-1


def test_node2vec_training_lowers_loss_and_scores_shape():
    train, _, nu, ni = planted()
    m = Node2Vec(embed_dim=16, walk_length=8, context_size=4, walks_per_node=4,
                 num_epochs=3, batch_size=32, seed=0).fit(train, nu, ni)
    losses = m.history.frame["loss"].to_numpy()
    assert losses[-1] < losses[0]
    assert m.score(torch.arange(5)).shape == (5, ni)
    assert m.recommend([0, 1], k=3).shape == (2, 3)


def test_node2vec_is_seeded():
    train, _, nu, ni = planted()
    kw = dict(embed_dim=8, walk_length=6, context_size=3, walks_per_node=2, num_epochs=1,
              p=0.5, q=2.0)
    a = Node2Vec(seed=3, **kw).fit(train, nu, ni).score(torch.arange(nu))
    b = Node2Vec(seed=3, **kw).fit(train, nu, ni).score(torch.arange(nu))
    assert torch.equal(a, b)


@pytest.mark.parametrize("cls,kw", [(Node2Vec, dict(p=0.5, q=2.0)), (DeepWalk, {})])
def test_graph_embedding_beats_popularity_on_planted_groups(cls, kw):
    train, test, nu, ni = planted()
    model = cls(embed_dim=16, walk_length=10, context_size=5, walks_per_node=5,
                num_epochs=5, batch_size=32, lr=0.05, seed=0, **kw).fit(train, nu, ni)
    ours, base = minority_precision(model, train, test), minority_precision(
        Popularity().fit(train, nu, ni), train, test)
    assert ours > base + 0.1, (ours, base)


def test_cosine_similarity_scores_lie_in_unit_interval():
    train, _, nu, ni = planted()
    m = Node2Vec(embed_dim=8, walk_length=6, context_size=3, walks_per_node=2, num_epochs=1,
                 similarity="cosine").fit(train, nu, ni)
    s = m.score(torch.arange(nu))
    assert s.abs().max() <= 1 + 1e-5


@pytest.mark.parametrize("kw,msg", [
    (dict(p=0.0), "p must be"), (dict(q=-1.0), "q must be"), (dict(walk_length=0), "walk_length"),
    (dict(walk_length=5, context_size=6), "context_size"), (dict(similarity="l2"), "similarity"),
    (dict(backend="gpu"), "backend"),
])
def test_node2vec_bad_inputs_raise(kw, msg):
    with pytest.raises(ValueError, match=msg):
        Node2Vec(**kw)


def test_deepwalk_is_node2vec_with_p_q_one():
    m = DeepWalk(embed_dim=8)
    assert (m.p, m.q, m.name) == (1.0, 1.0, "deepwalk")
    with pytest.raises(ValueError, match="uniformly"):
        DeepWalk(p=2.0)


def test_registry_names():
    assert get_model("node2vec") is Node2Vec
    assert get_model("deepwalk") is DeepWalk
    assert get_model("gae") is GraphAutoEncoder


# -- graph autoencoder -----------------------------------------------------------------------
def test_gcn_encoder_shapes_and_sparse_input_agree():
    ei = torch.tensor([[0, 1, 1, 2, 2, 3, 0, 4], [1, 0, 2, 1, 3, 2, 4, 0]])
    torch.manual_seed(0)
    a = GCNEncoder(5, 8, out_dim=3)
    torch.manual_seed(0)
    b = GCNEncoder(5, 8, out_dim=3)
    za, zb = a(ei), b(sparse_adj_t(ei, 5))
    assert za.shape == (5, 3)
    assert torch.allclose(za, zb, atol=1e-6)


def test_gae_decoder_is_sigmoid_of_inner_product_and_score_is_logit():
    train, test, nu, ni = planted()
    m = GraphAutoEncoder(embed_dim=16, out_dim=8, num_epochs=3, seed=0).fit(train, nu, ni)
    z = m.encode()
    assert z.shape == (nu + ni, 8)
    pairs = torch.tensor([[0, 5, 31], [nu + 0, nu + 22, nu + 39]])
    dec = m.gae.decode(z, pairs)
    assert torch.allclose(dec, torch.sigmoid((z[pairs[0]] * z[pairs[1]]).sum(1)))
    s = m.score(torch.tensor([0, 5, 31]))
    assert s.shape == (3, ni)
    assert torch.allclose(torch.sigmoid(s[[0, 1, 2], [0, 22, 39]]), dec, atol=1e-6)


def test_gae_learns_held_out_links_and_ranks_above_popularity():
    train, test, nu, ni = planted()
    m = GraphAutoEncoder(embed_dim=16, out_dim=16, num_epochs=40, seed=0).fit(train, nu, ni)
    lp = m.link_prediction(test)
    assert lp["auc"] > 0.8 and 0 <= lp["ap"] <= 1
    ours, base = minority_precision(m, train, test), minority_precision(
        Popularity().fit(train, nu, ni), train, test)
    assert ours > base + 0.1, (ours, base)


def test_gae_bad_inputs_raise():
    with pytest.raises(ValueError, match="dropout"):
        GraphAutoEncoder(dropout=1.0)
    with pytest.raises(ValueError, match="num_layers"):
        GCNEncoder(5, 4, num_layers=0)
    with pytest.raises(RuntimeError, match="not fitted"):
        GraphAutoEncoder().score(torch.tensor([0]))
