"""From-scratch graph attention layers: hand-computed example, agreement with PyG's
GATConv / GATv2Conv / TransformerConv, softmax normalisation, gradients, bad input."""
import math

import pytest
import torch
from torch_geometric.nn import GATConv, GATv2Conv, TransformerConv

from recsys_ref.nn.attention import (DotProductAttentionLayer, GATLayer, GATv2Layer, aggregate,
                                  edge_softmax)


PAIRS = {
    "gat": (GATLayer, GATConv),
    "gatv2": (GATv2Layer, GATv2Conv),
    "dot": (DotProductAttentionLayer, TransformerConv),
}


def random_graph(seed: int, num_nodes: int = 15, num_edges: int = 50, in_dim: int = 6):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(num_nodes, in_dim, generator=g)
    edge_index = torch.randint(0, num_nodes, (2, num_edges), generator=g)
    return x, edge_index


def pair(kind: str, in_dim: int, out_dim: int, heads: int, concat: bool, seed: int = 0):
    mine_cls, pyg_cls = PAIRS[kind]
    torch.manual_seed(seed)
    theirs = pyg_cls(in_dim, out_dim, heads=heads, concat=concat)
    mine = mine_cls(in_dim, out_dim, heads=heads, concat=concat).copy_from_pyg(theirs)
    return mine, theirs


# -- a tiny example worked out by hand ---------------------------------------------------
def test_gat_hand_computed_three_nodes():
    # 1-D features h = (1, 2, -3), W = 1, a_src = a_dst = 1, slope 0.2, edges 1->0, 2->0;
    # with the self-loop 0->0 node 0 scores its neighbours 0, 1, 2 with
    # LeakyReLU(1 + 1) = 2, LeakyReLU(1 + 2) = 3, LeakyReLU(1 - 3) = -0.4.
    layer = GATLayer(1, 1, bias=False)
    with torch.no_grad():
        layer.W.weight.fill_(1.0)
        layer.att_src.fill_(1.0)
        layer.att_dst.fill_(1.0)
    x = torch.tensor([[1.0], [2.0], [-3.0]])
    out, (ei, alpha) = layer(x, torch.tensor([[1, 2], [0, 0]]), return_attention_weights=True)
    z = math.exp(2) + math.exp(3) + math.exp(-0.4)
    expected = {0: math.exp(2) / z, 1: math.exp(3) / z, 2: math.exp(-0.4) / z}
    into0 = ei[1] == 0
    got = dict(zip(ei[0, into0].tolist(), alpha[into0, 0].tolist()))
    assert got == pytest.approx(expected, abs=1e-6)
    h0 = expected[0] * 1 + expected[1] * 2 + expected[2] * (-3)
    assert out[0, 0].item() == pytest.approx(h0, abs=1e-6)
    # nodes 1 and 2 only have their self-loop: weight 1, output = own feature
    assert out[1:, 0].tolist() == pytest.approx([2.0, -3.0], abs=1e-6)


def test_dot_product_hand_computed():
    # q = k = v = h (identity maps, no bias, no root), C = 2: node 0 attends to 1 and 2
    layer = DotProductAttentionLayer(2, 2, root_weight=False, bias=False)
    with torch.no_grad():
        for lin in (layer.W_q, layer.W_k, layer.W_v):
            lin.weight.copy_(torch.eye(2))
    x = torch.tensor([[1.0, 0.0], [2.0, 1.0], [0.0, 3.0]])
    out = layer(x, torch.tensor([[1, 2], [0, 0]]))
    s1, s2 = 2.0 / math.sqrt(2), 0.0 / math.sqrt(2)   # q_0.k_1 / sqrt(2), q_0.k_2 / sqrt(2)
    a1 = math.exp(s1) / (math.exp(s1) + math.exp(s2))
    assert out[0].tolist() == pytest.approx([a1 * 2.0, a1 * 1.0 + (1 - a1) * 3.0], abs=1e-6)
    assert out[1:].abs().max().item() == 0.0  # no incoming edges, no root term


# -- agreement with PyG --------------------------------------------------------------------
@pytest.mark.parametrize("kind", list(PAIRS))
@pytest.mark.parametrize("heads,concat", [(1, True), (4, True), (4, False)])
def test_matches_pyg(kind, heads, concat):
    x, edge_index = random_graph(seed=heads + 10 * concat)
    mine, theirs = pair(kind, x.size(1), 5, heads, concat)
    out, (ei, alpha) = mine(x, edge_index, return_attention_weights=True)
    ref, (ref_ei, ref_alpha) = theirs(x, edge_index, return_attention_weights=True)
    assert out.shape == (x.size(0), 5 * heads if concat else 5)
    torch.testing.assert_close(out, ref, atol=1e-6, rtol=0)
    assert torch.equal(ei, ref_ei)
    torch.testing.assert_close(alpha, ref_alpha, atol=1e-6, rtol=0)


@pytest.mark.parametrize("kind", ["gat", "gatv2"])
def test_without_self_loops_matches_pyg(kind):
    x, edge_index = random_graph(seed=3)
    mine_cls, pyg_cls = PAIRS[kind]
    torch.manual_seed(1)
    theirs = pyg_cls(6, 3, heads=2, add_self_loops=False)
    mine = mine_cls(6, 3, heads=2, add_self_loops=False).copy_from_pyg(theirs)
    torch.testing.assert_close(mine(x, edge_index), theirs(x, edge_index), atol=1e-6, rtol=0)


@pytest.mark.parametrize("kind", list(PAIRS))
def test_attention_sums_to_one_over_incoming_edges(kind):
    x, edge_index = random_graph(seed=7)
    layer, _ = pair(kind, x.size(1), 4, 3, True)
    _, (ei, alpha) = layer(x, edge_index, return_attention_weights=True)
    sums = torch.zeros(x.size(0), 3).index_add_(0, ei[1], alpha)
    has_in = torch.bincount(ei[1], minlength=x.size(0)) > 0
    torch.testing.assert_close(sums[has_in], torch.ones(int(has_in.sum()), 3))
    assert (alpha > 0).all()


def test_gat_attention_is_static():
    # GAT ranks the neighbours of every node in the same order (Brody et al.): give nodes
    # 0 and 1 the same neighbours 2..7 and compare the orders.
    torch.manual_seed(0)
    x = torch.randn(8, 4)
    src = torch.arange(2, 8).repeat(2)
    dst = torch.cat([torch.zeros(6), torch.ones(6)]).long()
    layer = GATLayer(4, 8, heads=2, add_self_loops=False)
    _, (ei, alpha) = layer(x, torch.stack([src, dst]), return_attention_weights=True)
    for h in range(2):
        assert torch.equal(alpha[:6, h].argsort(), alpha[6:, h].argsort())


def test_edge_softmax_matches_dense_softmax():
    scores = torch.tensor([1.0, 2.0, 3.0, -1.0, 0.5])
    index = torch.tensor([0, 0, 0, 2, 2])
    alpha = edge_softmax(scores, index, 3)
    torch.testing.assert_close(alpha[:3], torch.softmax(scores[:3], 0))
    torch.testing.assert_close(alpha[3:], torch.softmax(scores[3:], 0))


def test_aggregate_is_weighted_sum():
    msgs = torch.arange(6.0).view(3, 1, 2)           # (E=3, H=1, C=2)
    alpha = torch.tensor([[0.25], [0.75], [1.0]])
    out = aggregate(msgs, alpha, torch.tensor([0, 0, 2]), 3)
    assert out[:, 0].tolist() == [[0.25 * 0 + 0.75 * 2, 0.25 * 1 + 0.75 * 3], [0.0, 0.0], [4.0, 5.0]]


# -- gradients -----------------------------------------------------------------------------
@pytest.mark.parametrize("kind", list(PAIRS))
def test_gradcheck_float64(kind):
    x, edge_index = random_graph(seed=5, num_nodes=5, num_edges=9, in_dim=3)
    layer, _ = pair(kind, 3, 2, 2, True)
    layer = layer.double()
    x = x.double().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda inp: layer(inp, edge_index), (x,))
    # and with respect to every parameter (through a scalar function of the output)
    params = [p for p in layer.parameters()]
    names = [n for n, _ in layer.named_parameters()]

    def f(*ps):
        state = dict(zip(names, ps))
        return torch.func.functional_call(layer, state, (x.detach(), edge_index))

    assert torch.autograd.gradcheck(f, tuple(p.detach().requires_grad_(True) for p in params))


# -- bad input -----------------------------------------------------------------------------
def test_bad_input_raises():
    layer = GATLayer(4, 2)
    x = torch.randn(5, 4)
    ok = torch.tensor([[0, 1], [1, 2]])
    with pytest.raises(ValueError, match="input features"):
        layer(torch.randn(5, 3), ok)
    with pytest.raises(ValueError, match=r"\(N, 4\)"):
        layer(torch.randn(5), ok)
    with pytest.raises(ValueError, match="outside"):
        layer(x, torch.tensor([[0, 9], [1, 2]]))
    with pytest.raises(ValueError, match=r"\(2, E\)"):
        layer(x, torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match="int64"):
        layer(x, ok.float())
    with pytest.raises(ValueError, match="positive"):
        GATv2Layer(4, 2, heads=0)
    with pytest.raises(ValueError, match="dropout"):
        DotProductAttentionLayer(4, 2, dropout=1.5)
    with pytest.raises(ValueError, match="scores"):
        edge_softmax(torch.randn(3), torch.tensor([0, 1]), 2)


def test_repr():
    assert repr(GATv2Layer(8, 4, heads=2, concat=False)) == "GATv2Layer(8, 4, heads=2, concat=False)"
