"""Random walks: DeepWalk's uniform and node2vec's biased walks (recsys_ref.graph.walks)."""
import numpy as np
import pytest
import torch

from recsys_ref.graph.walks import RandomWalker, context_windows, random_walks, transition_probabilities


def undirected(pairs):
    e = torch.tensor(pairs, dtype=torch.long).T
    return torch.cat([e, e.flip(0)], 1)


# t=0 -> v=1; neighbours of 1: 0 (back, d=0), 2 (also adjacent to 0, d=1), 3 and 4 (d=2)
KITE = undirected([(0, 1), (0, 2), (1, 2), (1, 3), (1, 4), (3, 4)])


def random_graph(n=30, m=80, seed=0):
    rng = np.random.default_rng(seed)
    pairs = set()
    while len(pairs) < m:
        a, b = rng.integers(0, n, 2)
        if a != b:
            pairs.add((min(a, b), max(a, b)))
    return undirected(sorted(pairs)), n


def test_transition_probabilities_hand_values():
    # weights 1/p = 0.5 (back to 0), 1 (node 2), 1/q = 2 (nodes 3, 4): total 5.5
    probs = transition_probabilities(KITE, prev=0, cur=1, p=2.0, q=0.5)
    assert probs == pytest.approx({0: 0.5 / 5.5, 2: 1 / 5.5, 3: 2 / 5.5, 4: 2 / 5.5})


def test_transition_probabilities_uniform_when_p_q_one():
    probs = transition_probabilities(KITE, prev=0, cur=1)
    assert probs == pytest.approx({0: 0.25, 2: 0.25, 3: 0.25, 4: 0.25})


def test_transition_probabilities_rejects_non_edge():
    with pytest.raises(ValueError, match="not an edge"):
        transition_probabilities(KITE, prev=0, cur=3)


@pytest.mark.parametrize("p,q", [(1.0, 1.0), (0.5, 2.0), (4.0, 0.25)])
def test_walks_follow_edges_and_have_requested_length(p, q):
    ei, n = random_graph()
    walks = random_walks(ei, walk_length=12, walks_per_node=3, p=p, q=q, num_nodes=n, seed=1)
    assert walks.shape == (3 * n, 12)
    assert torch.equal(walks[:, 0], torch.arange(n).repeat(3))
    edges = set(zip(ei[0].tolist(), ei[1].tolist()))
    steps = torch.stack([walks[:, :-1].reshape(-1), walks[:, 1:].reshape(-1)], 1).tolist()
    assert all(tuple(s) in edges for s in steps)


def test_walks_are_deterministic_given_seed():
    ei, n = random_graph()
    a = random_walks(ei, 10, 2, p=0.5, q=2.0, num_nodes=n, seed=7)
    b = random_walks(ei, 10, 2, p=0.5, q=2.0, num_nodes=n, seed=7)
    c = random_walks(ei, 10, 2, p=0.5, q=2.0, num_nodes=n, seed=8)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_walk_length_one_is_just_the_start():
    walks = random_walks(KITE, walk_length=1, num_nodes=5)
    assert torch.equal(walks, torch.arange(5).view(-1, 1))


def test_walker_stays_on_a_dead_end():
    ei = torch.tensor([[0, 1], [1, 0]])            # node 2 isolated
    walks = RandomWalker(ei, num_nodes=3).walk([2, 2], walk_length=4)
    assert torch.equal(walks, torch.full((2, 4), 2))


@pytest.mark.parametrize("p,q", [(2.0, 0.5), (0.25, 1.0), (1.0, 1.0)])
def test_empirical_transitions_match_node2vec_formula(p, q):
    """Among 3-node walks 0 -> 1 -> x, the share of each x matches Pr(x | t=0, v=1)."""
    walker = RandomWalker(KITE, 5, p=p, q=q)
    n_walks = 200_000
    walks = walker.walk(torch.zeros(n_walks, dtype=torch.long), 3, seed=0)
    second = walks[walks[:, 1] == 1, 2].numpy()
    expected = transition_probabilities(KITE, 0, 1, p, q)
    for x, prob in expected.items():
        freq = np.mean(second == x)
        se = np.sqrt(prob * (1 - prob) / len(second))
        assert abs(freq - prob) < 5 * se, (x, freq, prob)
    assert set(np.unique(second)) == set(expected)


def test_first_step_is_uniform():
    walker = RandomWalker(KITE, 5, p=0.1, q=10.0)     # bias must not affect step 1
    first = walker.walk(torch.ones(60_000, dtype=torch.long), 2, seed=3)[:, 1].numpy()
    freq = np.bincount(first, minlength=5)[[0, 2, 3, 4]] / len(first)
    assert freq == pytest.approx([0.25] * 4, abs=0.01)


def test_bipartite_graph_depends_only_on_p_over_q():
    # in a bipartite graph no neighbour of v is adjacent to t: only 1/p and 1/q occur
    ei = undirected([(0, 3), (0, 4), (1, 3), (1, 4), (2, 4)])   # users 0-2, items 3-4
    a = transition_probabilities(ei, prev=0, cur=4, p=2.0, q=4.0)
    b = transition_probabilities(ei, prev=0, cur=4, p=1.0, q=2.0)
    assert a == pytest.approx(b)
    assert a == pytest.approx({0: 0.5 / 1.0, 1: 0.25 / 1.0, 2: 0.25 / 1.0})


def test_has_edge():
    walker = RandomWalker(KITE, 5)
    got = walker.has_edge(np.array([0, 0, 3, 2]), np.array([1, 3, 4, 4]))
    assert got.tolist() == [True, False, True, False]


def test_context_windows_slide_along_each_walk():
    walks = torch.tensor([[0, 1, 2, 3], [5, 6, 7, 8]])
    win = context_windows(walks, 3)
    assert win.tolist() == [[0, 1, 2], [5, 6, 7], [1, 2, 3], [6, 7, 8]]


@pytest.mark.parametrize("kw,msg", [
    (dict(p=0.0), "p must be"), (dict(p=-1.0), "p must be"), (dict(q=0.0), "q must be"),
    (dict(walk_length=0), "walk_length"), (dict(walks_per_node=0), "walks_per_node"),
])
def test_bad_inputs_raise(kw, msg):
    args = dict(walk_length=5, walks_per_node=1, p=1.0, q=1.0)
    args.update(kw)
    with pytest.raises(ValueError, match=msg):
        random_walks(KITE, **args)


def test_bad_graph_and_start_raise():
    with pytest.raises(ValueError, match="shape"):
        RandomWalker(torch.zeros(3, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="start nodes"):
        RandomWalker(KITE, 5).walk([7], 3)
    with pytest.raises(ValueError, match="context_size"):
        context_windows(torch.zeros(2, 4, dtype=torch.long), 5)
