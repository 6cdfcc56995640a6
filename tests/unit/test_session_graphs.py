"""SR-GNN: session graphs built by hand, the gated layer against the paper's matrix form
and PyG's GatedGraphConv, prefixes of the training sequences, and the model learning a
planted order."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from torch_geometric.data import Batch, Data
from torch_geometric.nn import GatedGraphConv

from recsys_ref.graph.session import session_graphs
from recsys_ref.models.classic.popularity import Popularity
from recsys_ref.models.sequential.base import Sequences
from recsys_ref.models.sequential.srgnn import SRGNN
from recsys_ref.nn.session import SessionGatedConv
from recsys_ref.protocol.split import Split, evaluate


def test_session_graph_by_hand_with_repeated_items():
    # row 0: items 2, 4, 2, 6 (item + 1 in x); row 1 empty; row 2: 1, 1, 1, 3, 8, 1
    x = torch.tensor([[0, 0, 3, 5, 3, 7], [0, 0, 0, 0, 0, 0], [2, 2, 2, 4, 9, 2]])
    g = session_graphs(x)
    assert g.item.tolist() == [2, 4, 6, 1, 3, 8]           # distinct items, sorted per row
    assert g.batch.tolist() == [0, 0, 0, 2, 2, 2] and g.ptr.tolist() == [0, 3, 3, 6]
    assert g.alias.tolist() == [[-1, -1, 0, 1, 0, 2], [-1] * 6, [3, 3, 3, 4, 5, 3]]
    assert g.last.tolist() == [2, -1, 3]
    edges = {(u, v): (a, b) for u, v, a, b in zip(*g.edge_index.tolist(),
                                                 g.weight_in.tolist(), g.weight_out.tolist())}
    # row 0: 2->4, 4->2, 2->6 (item 2 sends twice: out-weights 1/2)
    # row 2: 1->1 (a self-loop, repeated twice: one edge), 1->3, 3->8, 8->1
    # (item 1 receives from itself and from 8: in-weights 1/2)
    assert edges == {(0, 1): (1.0, 0.5), (1, 0): (1.0, 1.0), (0, 2): (1.0, 0.5),
                     (3, 3): (0.5, 0.5), (3, 4): (1.0, 0.5), (4, 5): (1.0, 1.0),
                     (5, 3): (0.5, 1.0)}


def test_session_graphs_equal_pyg_batch_of_single_graphs():
    rng = np.random.default_rng(0)
    x = torch.as_tensor(rng.integers(1, 6, (5, 7)))
    x[1, :4] = 0
    x[3, :6] = 0
    g = session_graphs(x)
    singles = []
    for row in x.tolist():
        seq = [i - 1 for i in row if i > 0]
        nodes = sorted(set(seq))
        pairs = sorted({(nodes.index(a), nodes.index(b)) for a, b in zip(seq, seq[1:])})
        singles.append(Data(item=torch.tensor(nodes), num_nodes=len(nodes),
                            edge_index=torch.tensor(pairs, dtype=torch.long).reshape(-1, 2).T))
    ref = Batch.from_data_list(singles)
    assert torch.equal(g.item, ref.item) and torch.equal(g.batch, ref.batch)
    assert torch.equal(g.ptr, ref.ptr)
    key = lambda e: sorted(map(tuple, e.T.tolist()))  # noqa: E731
    assert key(g.edge_index) == key(ref.edge_index)


def test_session_graphs_refuse_bad_input():
    with pytest.raises(ValueError, match="integer tensor"):
        session_graphs(torch.tensor([1.0, 2.0]))
    with pytest.raises(ValueError, match="integer tensor"):
        session_graphs(torch.tensor([[1, -1]]))


def test_gated_layer_equals_the_papers_matrix_form():
    torch.manual_seed(0)
    x = torch.tensor([[0, 3, 5, 3, 7, 5]])                    # items 2, 4, 2, 6, 4
    g = session_graphs(x)
    n, d = g.num_nodes, 4
    conv = SessionGatedConv(d)
    h = torch.randn(n, d)
    out = conv(h, g.edge_index, g.weight_in, g.weight_out)
    # the paper: A = [A_in, A_out], rows normalised by degree, a = A [H W_in; H W_out] + b
    adj = torch.zeros(n, n)
    adj[g.edge_index[0], g.edge_index[1]] = 1.0                # u -> v
    a_in = (adj / adj.sum(0).clamp(min=1)).T                  # row v: 1/indeg(v) per u
    a_out = adj / adj.sum(1, keepdim=True).clamp(min=1)       # row u: 1/outdeg(u) per v
    m_in = a_in @ conv.lin_in(h) + conv.bias_in
    m_out = a_out @ conv.lin_out(h) + conv.bias_out
    m = torch.cat([m_in, m_out], 1)
    w_ih, w_hh = conv.gru.weight_ih, conv.gru.weight_hh
    gi, gh = m @ w_ih.T + conv.gru.bias_ih, h @ w_hh.T + conv.gru.bias_hh
    r = torch.sigmoid(gi[:, :d] + gh[:, :d])
    z = torch.sigmoid(gi[:, d:2 * d] + gh[:, d:2 * d])
    cand = torch.tanh(gi[:, 2 * d:] + r * gh[:, 2 * d:])
    assert torch.allclose(out, (1 - z) * cand + z * h, atol=1e-6)


@pytest.mark.parametrize("steps", [1, 3])
def test_gated_layer_one_direction_equals_pyg_gated_graph_conv(steps):
    torch.manual_seed(1)
    d = 6
    g = session_graphs(torch.tensor([[1, 2, 3, 2, 4], [0, 5, 6, 5, 5]]))
    pyg = GatedGraphConv(d, num_layers=steps)
    with torch.no_grad():                            # GatedGraphConv shares no weights
        pyg.weight.copy_(pyg.weight[:1].expand_as(pyg.weight))   # across layers: tie them
    ours = SessionGatedConv(d, num_steps=steps)
    with torch.no_grad():
        ours.lin_in.weight.copy_(pyg.weight[0].T)
        for p in (ours.lin_in.bias, ours.bias_in, ours.bias_out, ours.lin_out.weight,
                  ours.lin_out.bias):
            p.zero_()
        ours.gru.weight_ih.copy_(torch.cat([pyg.rnn.weight_ih, torch.zeros(3 * d, d)], 1))
        ours.gru.weight_hh.copy_(pyg.rnn.weight_hh)
        ours.gru.bias_ih.copy_(pyg.rnn.bias_ih)
        ours.gru.bias_hh.copy_(pyg.rnn.bias_hh)
    h = torch.randn(g.num_nodes, d)
    expect = pyg(h, g.edge_index, g.weight_in)
    assert torch.allclose(ours(h, g.edge_index, g.weight_in, g.weight_out), expect, atol=1e-6)


def test_prefixes_by_hand():
    f = pd.DataFrame({"user": [0, 0, 0, 0, 1, 2, 2], "item": [5, 3, 4, 1, 2, 0, 6],
                      "timestamp": [4, 1, 2, 3, 9, 1, 1]})
    s = Sequences(f, 4)                 # user 0: 3 4 1 5; user 1: 2; user 2: 0 6
    t = s.targets()
    assert s.items[t].tolist() == [4, 1, 5, 6]          # every item but the first
    assert s.before(t, 2).tolist() == [[0, 4], [4, 5], [5, 2], [0, 1]]
    assert s.items[s.targets(1)].tolist() == [5, 6]     # each user's latest target
    latest = s.windows(2, latest_only=True)             # ... as windows(latest_only) has
    assert sorted(s.items[s.targets(2)] + 1) == sorted(latest[:, 1:][latest[:, :-1] > 0])
    assert s.before([s.ptr[1]], 3).tolist() == [[0, 0, 0]]   # a first item: nothing before
    with pytest.raises(ValueError, match="positions"):
        s.before([7], 2)
    # the prefix of a user's latest target is her history before it
    assert s.before([s.ptr[1] - 1], 3).tolist() == [[4, 5, 2]]


def test_srgnn_learns_a_planted_order_and_round_trips(tmp_path, cycle_frame):
    f = cycle_frame(noise=0.1)
    split = Split.leave_last_out(f, mask_seen=False, num_users=120, num_items=12)
    model = SRGNN(max_len=8, embed_dim=16, lr=1e-2, num_epochs=30, batch_size=64,
                  eval_every=5, patience=3, seed=0, mask_seen=split.mask_seen)
    model.fit(split.tuning.train, 120, 12, valid=split.valid)
    pop = Popularity().fit(split.train, 120, 12)
    ours, base = evaluate(model, split, k=1), evaluate(pop, split, k=1)
    assert ours["precision"] > 0.6 > base["precision"] + 0.3
    back = SRGNN.load(model.save(tmp_path / "srgnn.pt"))
    users = torch.arange(120)
    assert torch.allclose(model.score(users), back.score(users), atol=1e-6)
    # the readout weights live on the history's positions only
    alpha = model.module.attention(model.sequences.last([0, 1], 8))
    assert (alpha[model.sequences.last([0, 1], 8) == 0] == 0).all()


def test_srgnn_scores_an_empty_history(cycle_frame):
    f = cycle_frame(num_users=20, noise=0.1)
    model = SRGNN(max_len=4, embed_dim=8, num_epochs=1, seed=0).fit(f, 21, 12)
    scores = model.score(torch.tensor([20]))                # user 20 has no rows
    assert scores.shape == (1, 12) and torch.isfinite(scores).all()
