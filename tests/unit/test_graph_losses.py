"""Bipartite graph construction, normalisation, negative sampling and losses."""
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch_geometric.utils import to_dense_adj

from recsys_ref.graph import bipartite_edge_index, normalized_adjacency, scipy_normalized_adjacency
from recsys_ref.nn.losses import NegativeSampler, bpr_loss, l2_penalty, softmax_loss


def test_bipartite_edges_both_directions(tiny_frame):
    ei = bipartite_edge_index(tiny_frame, 3, 4)
    assert ei.shape == (2, 14)
    edges = set(map(tuple, ei.T.tolist()))
    assert (0, 3) in edges and (3, 0) in edges      # user 0 - item 0 (node 3)
    assert (2, 6) in edges and (6, 2) in edges      # user 2 - item 3 (node 6)


def test_normalized_adjacency_by_hand():
    # path user0 - item0 - user1: degrees 1, 2, 1 ; entries 1/sqrt(2)
    df = pd.DataFrame({"user": [0, 1], "item": [0, 0]})
    ei = bipartite_edge_index(df, 2, 1)
    a = normalized_adjacency(ei, 3).to_dense()
    s = 1 / np.sqrt(2)
    expected = torch.tensor([[0, 0, s], [0, 0, s], [s, s, 0]], dtype=torch.float32)
    assert torch.allclose(a, expected)
    assert np.allclose(scipy_normalized_adjacency(df, 2, 1).toarray(), expected.numpy())


def test_normalized_adjacency_with_self_loops_matches_dense_formula(tiny_frame):
    ei = bipartite_edge_index(tiny_frame, 3, 4)
    a = to_dense_adj(ei, max_num_nodes=7)[0] + torch.eye(7)
    d = a.sum(1).pow(-0.5)
    assert torch.allclose(normalized_adjacency(ei, 7, add_self_loops=True).to_dense(),
                          d[:, None] * a * d[None, :], atol=1e-6)


def test_bipartite_errors():
    with pytest.raises(ValueError, match="user index"):
        bipartite_edge_index(pd.DataFrame({"user": [3], "item": [0]}), 3, 4)
    with pytest.raises(ValueError, match="no interactions"):
        bipartite_edge_index(pd.DataFrame({"user": [], "item": []}), 3, 4)


def test_negative_sampler_never_returns_observed_and_is_seeded():
    m = sp.random(40, 25, density=0.6, format="csr", random_state=1)
    a = NegativeSampler(m, seed=3)(np.arange(40), 7)
    b = NegativeSampler(m, seed=3)(np.arange(40), 7)
    assert torch.equal(a, b)
    dense = m.toarray() != 0
    assert not dense[np.repeat(np.arange(40), 7), a.numpy().ravel()].any()
    full = sp.csr_matrix(np.ones((2, 3)))
    with pytest.raises(ValueError, match="every item"):
        NegativeSampler(full)(np.array([0]))


def test_negative_sampler_is_uniform_over_unobserved():
    m = sp.csr_matrix(np.array([[1, 0, 0, 0, 1]]))
    neg = NegativeSampler(m, seed=0)(np.zeros(30000, dtype=int), 1).numpy().ravel()
    freq = np.bincount(neg, minlength=5) / len(neg)
    assert freq[0] == freq[4] == 0
    assert np.allclose(freq[1:4], 1 / 3, atol=0.02)


def test_losses_closed_forms():
    pos, neg = torch.tensor([2.0, 0.0]), torch.tensor([1.0, 0.0])
    # -mean(log sigmoid([1, 0])) computed by hand
    expected = -(np.log(1 / (1 + np.exp(-1))) + np.log(0.5)) / 2
    assert bpr_loss(pos, neg).item() == pytest.approx(expected)
    other = torch.tensor([[1.0, 0.5], [0.0, 3.0]])
    ce = F.cross_entropy(torch.cat([pos[:, None], other], 1), torch.zeros(2, dtype=torch.long))
    assert softmax_loss(pos, other).item() == pytest.approx(ce.item())
    x = torch.ones(4, 3)
    assert l2_penalty(x, x).item() == pytest.approx(24 / 8)
    with pytest.raises(ValueError):
        softmax_loss(pos, other, temperature=0)


def test_negative_sampler_dense_and_sparse_paths_agree(monkeypatch):
    m = sp.random(60, 45, density=0.4, format="csr", random_state=4)
    users = np.repeat(np.arange(60), 3)
    dense = NegativeSampler(m, seed=9)
    assert dense._dense is not None
    monkeypatch.setattr(NegativeSampler, "DENSE_LIMIT", 0)
    sparse = NegativeSampler(m, seed=9)
    assert sparse._dense is None
    items = np.random.default_rng(0).integers(0, 45, len(users))
    assert np.array_equal(dense.is_observed(users, items), sparse.is_observed(users, items))
    assert torch.equal(dense(users, 5), sparse(users, 5))
