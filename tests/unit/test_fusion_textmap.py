"""Cold items through a learned text -> embedding map (ridge), checked by hand; DropoutNet's
ID dropout zeroes the ID view."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch
from sklearn.linear_model import Ridge

from recsys_ref.graph import bipartite_edge_index, normalized_adjacency
from recsys_ref.models.text.fusion import LightGCNTextMap, TextFusionModule, TextToEmbedding
from recsys_ref.models.graph.lightgcn import LightGCN

U, I = 3, 5
PAIRS = pd.DataFrame({"user": [0, 0, 1, 1, 2, 2], "item": [0, 1, 1, 2, 0, 3]})   # item 4 is cold


def test_ridge_map_by_hand():
    # y = 2x + 1 on x = 0, 1, 2; alpha = 1. Centred x = (-1, 0, 1), sum x^2 = 2, sum x y = 4:
    # slope = 4 / (2 + 1) = 4/3, intercept = mean y - slope mean x = 3 - 4/3 = 5/3.
    x, y = np.array([[0.0], [1.0], [2.0]]), np.array([[1.0], [3.0], [5.0]])
    m = TextToEmbedding(alpha=1.0).fit(x, y)
    np.testing.assert_allclose(m.coef_, [[4 / 3]], rtol=1e-6)
    np.testing.assert_allclose(m.intercept_, [5 / 3], rtol=1e-6)
    np.testing.assert_allclose(m.predict(np.array([[3.0]])), [[17 / 3]], rtol=1e-6)
    # weights (1, 1, 2): weighted means x 1.25, y 3.5; sum w x y = 5.5, sum w x^2 = 2.75
    # -> slope 5.5 / 3.75 = 22/15, intercept 3.5 - 22/15 * 1.25 = 5/3
    w = TextToEmbedding(alpha=1.0).fit(x, y, weights=np.array([1.0, 1.0, 2.0]))
    np.testing.assert_allclose(w.coef_, [[22 / 15]], rtol=1e-6)
    np.testing.assert_allclose(w.intercept_, [5 / 3], rtol=1e-6)


def test_ridge_map_sparse_equals_dense_and_sklearn():
    rng = np.random.default_rng(0)
    f = rng.normal(size=(30, 8)) * (rng.random((30, 8)) < 0.4)
    t = rng.normal(size=(30, 3))
    dense = TextToEmbedding(3.0).fit(f, t).predict(f)
    sparse = TextToEmbedding(3.0).fit(sp.csr_matrix(f), t).predict(sp.csr_matrix(f))
    ref = Ridge(alpha=3.0).fit(f, t).predict(f)
    np.testing.assert_allclose(dense, ref, atol=1e-5)
    np.testing.assert_allclose(sparse, ref, atol=1e-4)      # iterative (CG) solver on sparse input


def test_ridge_map_bad_input():
    with pytest.raises(ValueError, match="alpha"):
        TextToEmbedding(0.0)
    with pytest.raises(ValueError, match="one row per item"):
        TextToEmbedding().fit(np.zeros((3, 2)), np.zeros((4, 2)))
    with pytest.raises(ValueError, match="non-negative"):
        TextToEmbedding().fit(np.zeros((3, 2)), np.zeros((3, 2)), weights=np.array([1.0, -1.0, 1.0]))
    with pytest.raises(ValueError, match="not fitted"):
        TextToEmbedding().predict(np.zeros((1, 2)))


def test_textmap_keeps_lightgcn_for_warm_items_and_maps_the_cold_one():
    feats = np.random.default_rng(1).normal(size=(I, 4)).astype(np.float32)
    kw = dict(embed_dim=4, num_layers=2, num_epochs=2, lr=0.05, seed=0, eval_every=5, patience=None)
    est = LightGCNTextMap(item_features=feats, alpha=2.0, degree_weight=True, **kw).fit(PAIRS, U, I)
    ref = LightGCN(**kw).fit(PAIRS, U, I)
    u_ref, i_ref = ref.embeddings()
    users, items = est.embeddings()
    torch.testing.assert_close(users, u_ref)
    torch.testing.assert_close(items[:4], i_ref[:4])                    # warm: LightGCN exactly
    deg = np.array([2, 2, 1, 1])
    expect = Ridge(alpha=2.0).fit(feats[:4], i_ref[:4].numpy(), sample_weight=np.log1p(deg)).predict(feats[4:])
    np.testing.assert_allclose(items[4:].numpy(), expect, atol=1e-5)     # cold: the map
    assert est.cold_mask.tolist() == [False, False, False, False, True]
    torch.testing.assert_close(est.score(torch.tensor([0, 2])), users[[0, 2]] @ items.T)
    # refitting the map with another alpha changes only the cold row
    before = items.clone()
    est.fit_map(100.0)
    after = est.embeddings()[1]
    torch.testing.assert_close(after[:4], before[:4])
    assert not torch.allclose(after[4], before[4])


def test_textmap_rejects_features_of_another_catalogue():
    est = LightGCNTextMap(item_features=np.zeros((I + 1, 3)), num_epochs=1)
    with pytest.raises(ValueError, match="item_features has"):
        est.fit(PAIRS, U, I)
    with pytest.raises(ValueError, match="alpha"):
        LightGCNTextMap(item_features=np.zeros((I, 3)), alpha=-1.0)


def test_id_dropout_zeroes_the_id_view_of_dropped_items_only():
    adj = normalized_adjacency(bipartite_edge_index(PAIRS, U, I), U + I)
    torch.manual_seed(0)
    m = TextFusionModule(U, I, 4, 2, adj, torch.randn(I, 6), None, fusion="sum", id_dropout=0.5)
    m._dropped = torch.tensor([True, False, True, False, False])
    e = m.id_view()
    assert torch.all(e[U + 0] == 0) and torch.all(e[U + 2] == 0)        # dropped items: zero
    torch.testing.assert_close(e[U + 1], m.embedding.weight[U + 1])      # kept items untouched
    torch.testing.assert_close(e[:U], m.embedding.weight[:U])            # users never dropped
    m._dropped = None
