"""From-scratch GCN layers (recsys_ref.nn.gcn) against a hand-worked example and PyG's GCNConv."""
import math

import pytest
import torch
from torch_geometric.nn import GCNConv
from torch_geometric.utils import to_undirected

from recsys_ref.nn.gcn import DenseGCNLayer, SparseGCNLayer, gcn_norm_dense, gcn_norm_sparse


def _random_graph(num_nodes: int, num_edges: int, seed: int, undirected: bool) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    ei = torch.randint(0, num_nodes, (2, num_edges), generator=g)
    ei = ei[:, ei[0] != ei[1]]
    return to_undirected(ei, num_nodes=num_nodes) if undirected else ei


def _dense_adj(edge_index: torch.Tensor, num_nodes: int) -> torch.Tensor:
    adj = torch.zeros(num_nodes, num_nodes, dtype=torch.float64)
    adj.index_put_((edge_index[1], edge_index[0]), torch.ones(edge_index.shape[1], dtype=torch.float64),
                   accumulate=True)
    return adj


def _copy_weights(layer, conv: GCNConv) -> None:
    with torch.no_grad():
        layer.weight.copy_(conv.lin.weight.T)
        layer.bias.copy_(conv.bias)


def test_gcn_norm_dense_path_graph_by_hand():
    # path 0-1-2: with self-loops the degrees are 2, 3, 2
    adj = torch.tensor([[0, 1, 0], [1, 0, 1], [0, 1, 0]], dtype=torch.float64)
    norm = gcn_norm_dense(adj)
    expected = torch.tensor([[1 / 2, 1 / math.sqrt(6), 0],
                             [1 / math.sqrt(6), 1 / 3, 1 / math.sqrt(6)],
                             [0, 1 / math.sqrt(6), 1 / 2]], dtype=torch.float64)
    torch.testing.assert_close(norm, expected)


def test_dense_layer_five_node_star_by_hand():
    # star: centre 0 joined to 1..4; F_in = F_out = 1, W = 1, b = 0 -> h' = Â h
    adj = torch.zeros(5, 5, dtype=torch.float64)
    adj[0, 1:] = adj[1:, 0] = 1
    layer = DenseGCNLayer(1, 1, bias=False).double()
    with torch.no_grad():
        layer.weight.fill_(1.0)
    x = torch.tensor([[1.0], [2.0], [3.0], [4.0], [5.0]], dtype=torch.float64)
    out = layer(x, adj)
    # centre: degree 5 -> 1/5 * 1 + sum_j x_j / sqrt(5 * 2) ; leaf j: x_0/sqrt(10) + x_j/2
    centre = 1 / 5 + (2 + 3 + 4 + 5) / math.sqrt(10)
    leaves = [1 / math.sqrt(10) + v / 2 for v in (2, 3, 4, 5)]
    torch.testing.assert_close(out.ravel(), torch.tensor([centre, *leaves], dtype=torch.float64))


@pytest.mark.parametrize("undirected", [True, False])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_layers_equal_pyg_gcnconv(undirected, seed):
    torch.manual_seed(seed)
    n = 40
    ei = _random_graph(n, 120, seed, undirected)
    x = torch.randn(n, 16)
    conv = GCNConv(16, 8, add_self_loops=True, normalize=True)
    torch.nn.init.normal_(conv.bias)
    dense, sparse = DenseGCNLayer(16, 8), SparseGCNLayer(16, 8)
    _copy_weights(dense, conv)
    _copy_weights(sparse, conv)
    ref = conv(x, ei)
    torch.testing.assert_close(sparse(x, ei), ref, atol=1e-6, rtol=0)
    torch.testing.assert_close(sparse(x, gcn_norm_sparse(ei, n)), ref, atol=1e-6, rtol=0)
    torch.testing.assert_close(dense(x, _dense_adj(ei, n).float()), ref, atol=1e-6, rtol=0)


def test_sparse_layer_keeps_existing_self_loops_like_pyg():
    torch.manual_seed(3)
    ei = torch.tensor([[0, 1, 1, 2, 2, 3], [1, 0, 2, 1, 2, 3]])   # nodes 2 and 3 have loops
    x = torch.randn(5, 4)
    conv = GCNConv(4, 3)
    layer = SparseGCNLayer(4, 3)
    _copy_weights(layer, conv)
    torch.testing.assert_close(layer(x, ei), conv(x, ei), atol=1e-6, rtol=0)


def test_gradients_match_pyg():
    torch.manual_seed(4)
    ei = _random_graph(25, 60, 4, True)
    x1 = torch.randn(25, 6, requires_grad=True)
    x2 = x1.detach().clone().requires_grad_(True)
    conv, layer = GCNConv(6, 5), SparseGCNLayer(6, 5)
    _copy_weights(layer, conv)
    conv(x1, ei).pow(2).sum().backward()
    layer(x2, ei).pow(2).sum().backward()
    torch.testing.assert_close(x2.grad, x1.grad, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(layer.weight.grad, conv.lin.weight.grad.T, atol=1e-4, rtol=1e-5)


def test_activation_is_applied():
    adj = torch.ones(3, 3)
    layer = DenseGCNLayer(2, 2, activation=torch.relu)
    assert (layer(torch.randn(3, 2), adj) >= 0).all()


def test_isolated_node_gets_only_its_self_loop():
    ei = torch.tensor([[0, 1], [1, 0]])           # node 2 isolated
    layer = SparseGCNLayer(2, 2, bias=False)
    x = torch.randn(3, 2)
    torch.testing.assert_close(layer(x, ei)[2], x[2] @ layer.weight)


def test_bad_inputs_raise():
    layer = SparseGCNLayer(4, 2)
    with pytest.raises(ValueError, match="shape"):
        layer(torch.randn(3, 5), torch.tensor([[0], [1]]))
    with pytest.raises(ValueError, match="outside"):
        gcn_norm_sparse(torch.tensor([[0], [7]]), 3)
    with pytest.raises(ValueError, match="square"):
        gcn_norm_dense(torch.ones(2, 3))
    with pytest.raises(ValueError, match="positive"):
        DenseGCNLayer(0, 2)
