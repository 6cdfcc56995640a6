"""Neighbour sampler: fan-outs, real neighbours, layout, determinism, uniformity, errors."""
from __future__ import annotations

import itertools

import pytest
import torch

from recsys_ref.graph.neighbor_sampling import (NeighborSampler, PyGNeighborSampler, SampledSubgraph,
                                 make_neighbor_sampler, pyg_sampler_available)


def random_graph(num_nodes=60, num_edges=600, seed=0):
    """Undirected random graph (both directions stored), no duplicate edges."""
    g = torch.Generator().manual_seed(seed)
    src = torch.randint(0, num_nodes, (num_edges,), generator=g)
    dst = torch.randint(0, num_nodes, (num_edges,), generator=g)
    keep = src != dst
    ei = torch.stack([torch.cat([src[keep], dst[keep]]), torch.cat([dst[keep], src[keep]])])
    return torch.unique(ei, dim=1), num_nodes


def edge_set(edge_index):
    return set(map(tuple, edge_index.T.tolist()))


def hop_of(sub: SampledSubgraph) -> torch.Tensor:
    """Hop number of every local node."""
    return torch.repeat_interleave(torch.arange(len(sub.num_sampled_nodes)),
                                   torch.tensor(sub.num_sampled_nodes))


def test_path_graph_by_hand():
    # path 0 - 1 - 2 - 3; seed 0, two hops, fan-outs cover everything
    ei = torch.tensor([[0, 1, 1, 2, 2, 3], [1, 0, 2, 1, 3, 2]])
    sub = NeighborSampler(ei, 4, [5, 5])(torch.tensor([0]))
    assert sub.n_id.tolist() == [0, 1, 2]          # seed, hop 1, hop 2
    assert sub.num_sampled_nodes == [1, 1, 1]
    assert sub.num_sampled_edges == [1, 2]
    # hop 1: 1 -> 0; hop 2: the neighbours of node 1 (0 and 2) -> 1
    assert sub.edge_index[:, :1].tolist() == [[1], [0]]
    assert sorted(map(tuple, sub.edge_index[:, 1:].T.tolist())) == [(0, 1), (2, 1)]


@pytest.mark.parametrize("fanouts", [[3, 2], [1, 1, 1], [8]])
def test_fanout_is_min_of_fanout_and_degree(fanouts):
    ei, n = random_graph()
    sampler = NeighborSampler(ei, n, fanouts, seed=1)
    deg = sampler.degree
    sub = sampler(torch.tensor([0, 5, 9, 17]))
    hop = hop_of(sub)
    start = 0
    for h, (k, m) in enumerate(zip(fanouts, sub.num_sampled_edges)):
        dst = sub.edge_index[1, start:start + m]
        assert (hop[dst] == h).all()                 # hop-h edges point into hop-h nodes
        targets = torch.nonzero(hop == h).view(-1)
        counts = torch.bincount(dst, minlength=sub.num_nodes)[targets]
        expected = torch.clamp(deg[sub.n_id[targets]], max=k)
        assert torch.equal(counts, expected)
        start += m


def test_only_real_neighbours_and_no_duplicates():
    ei, n = random_graph()
    sub = NeighborSampler(ei, n, [4, 3], seed=2)(torch.tensor([1, 2, 3]))
    glob = torch.stack([sub.n_id[sub.edge_index[0]], sub.n_id[sub.edge_index[1]]])
    assert edge_set(glob) <= edge_set(ei)
    assert len(edge_set(glob)) == sub.num_edges   # without replacement: distinct edges
    assert torch.unique(sub.n_id).numel() == sub.num_nodes
    assert sub.n_id[:3].tolist() == [1, 2, 3] and sub.batch_size == 3
    assert sum(sub.num_sampled_nodes) == sub.num_nodes


def test_seeded_determinism():
    ei, n = random_graph(num_edges=1500)
    seeds = torch.tensor([0, 3, 4])
    a = NeighborSampler(ei, n, [3, 3], seed=7)(seeds)
    b = NeighborSampler(ei, n, [3, 3], seed=7)(seeds)
    c = NeighborSampler(ei, n, [3, 3], seed=8)(seeds)
    assert torch.equal(a.n_id, b.n_id) and torch.equal(a.edge_index, b.edge_index)
    assert not (a.n_id.shape == c.n_id.shape and torch.equal(a.n_id, c.n_id)
                and torch.equal(a.edge_index, c.edge_index))


def test_reset_replays_the_stream():
    ei, n = random_graph(num_edges=1500)
    sampler = NeighborSampler(ei, n, [3], seed=3)
    first = sampler(torch.tensor([0, 1])).edge_index
    sampler(torch.tensor([0, 1]))
    sampler.reset()
    assert torch.equal(sampler(torch.tensor([0, 1])).edge_index, first)


def test_full_fanout_returns_every_neighbour():
    ei, n = random_graph()
    sampler = NeighborSampler(ei, n, [10_000], seed=0)
    sub = sampler(torch.tensor([4]))
    got = sorted(sub.n_id[sub.edge_index[0]].tolist())
    assert got == sorted(ei[0, ei[1] == 4].tolist())


def test_with_replacement_draws_exactly_k():
    ei, n = random_graph()
    sampler = NeighborSampler(ei, n, [7], replace=True, seed=0)
    sub = sampler(torch.arange(10))
    counts = torch.bincount(sub.edge_index[1], minlength=sub.num_nodes)[:10]
    expected = torch.where(sampler.degree[:10] > 0, 7, 0)
    assert torch.equal(counts, expected)


@pytest.mark.parametrize("degree,k", [(3, 2), (6, 2)])  # random-key path and redraw path
def test_subsets_are_uniform(degree, k):
    # a star: centre 0 with `degree` leaves; sample the centre's hop many times at once
    leaves = torch.arange(1, degree + 1)
    ei = torch.stack([leaves, torch.zeros_like(leaves)])
    sampler = NeighborSampler(ei, degree + 1, [k], seed=0)
    reps = 6000
    src, dst = sampler.sample_hop(torch.zeros(reps, dtype=torch.long), k)
    assert (dst == 0).all() and len(src) == reps * k
    pairs = src.view(reps, k).sort(dim=1).values
    assert (pairs[:, 1:] != pairs[:, :-1]).all()     # k distinct neighbours every time
    subsets = list(itertools.combinations(range(1, degree + 1), k))
    freq = torch.tensor([((pairs == torch.tensor(s)).all(1)).float().mean().item() for s in subsets])
    expected = 1.0 / len(subsets)
    # binomial standard error sqrt(p(1-p)/reps) <= 0.0065; allow 5 of them
    assert torch.allclose(freq, torch.full_like(freq, expected), atol=0.033)


def test_isolated_seed_has_no_edges():
    ei = torch.tensor([[0, 1], [1, 0]])
    sub = NeighborSampler(ei, 3, [2, 2])(torch.tensor([2]))
    assert sub.num_edges == 0 and sub.n_id.tolist() == [2]
    assert sub.num_sampled_nodes == [1, 0, 0]


@pytest.mark.parametrize("fanouts", [[0], [5, -1], [], [2.5]])
def test_bad_fanouts_raise(fanouts):
    ei, n = random_graph()
    with pytest.raises(ValueError, match="fan-out|fanouts"):
        NeighborSampler(ei, n, fanouts)


def test_unknown_or_duplicate_seeds_raise():
    ei, n = random_graph()
    sampler = NeighborSampler(ei, n, [2])
    with pytest.raises(ValueError, match="unknown node"):
        sampler(torch.tensor([0, n]))
    with pytest.raises(ValueError, match="unknown node"):
        sampler(torch.tensor([-1]))
    with pytest.raises(ValueError, match="duplicates"):
        sampler(torch.tensor([1, 1]))
    with pytest.raises(ValueError, match="no seed"):
        sampler(torch.tensor([], dtype=torch.long))


def test_bad_edge_index_raises():
    with pytest.raises(ValueError, match=r"shape \(2, E\)"):
        NeighborSampler(torch.zeros(3, 4, dtype=torch.long), 5, [2])
    with pytest.raises(ValueError, match="outside"):
        NeighborSampler(torch.tensor([[0, 9], [9, 0]]), 5, [2])


def test_backend_choice():
    ei, n = random_graph()
    with pytest.raises(ValueError, match="backend"):
        make_neighbor_sampler(ei, n, [2], backend="dgl")
    ours = make_neighbor_sampler(ei, n, [2], backend="recsys_ref")
    assert isinstance(ours, NeighborSampler)
    auto = make_neighbor_sampler(ei, n, [2])
    assert isinstance(auto, PyGNeighborSampler if pyg_sampler_available() else NeighborSampler)
    if not pyg_sampler_available():
        with pytest.raises(ImportError, match="pyg-lib"):
            make_neighbor_sampler(ei, n, [2], backend="pyg")


@pytest.mark.skipif(not pyg_sampler_available(), reason="needs pyg-lib or torch-sparse")
def test_pyg_backend_same_layout_and_exact_with_full_fanout():
    ei, n = random_graph()
    seeds = torch.tensor([0, 5, 9])
    ours = NeighborSampler(ei, n, [100, 100])(seeds)
    theirs = PyGNeighborSampler(ei, n, [100, 100])(seeds)
    assert theirs.num_sampled_nodes == ours.num_sampled_nodes
    assert theirs.num_sampled_edges == ours.num_sampled_edges
    glob = lambda s: edge_set(torch.stack([s.n_id[s.edge_index[0]], s.n_id[s.edge_index[1]]]))
    assert glob(theirs) == glob(ours)
