"""NGCF: layer against its dense formula, shapes, float64 gradient check, training sanity."""
import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from recsys_ref.graph import bipartite_edge_index, normalized_adjacency
from recsys_ref.nn.gcn import gcn_norm_sparse
from recsys_ref.models import get_model
from recsys_ref.models.graph.gcn import GCN, GCNModule
from recsys_ref.graph.sparse import to_csr
from recsys_ref.models.graph.ngcf import NGCF, NGCFLayer, NGCFModule

PAIRS = np.array([[0, 0], [0, 1], [1, 1], [1, 2], [2, 2], [2, 3]])   # 3 users, 4 items


def _adj64():
    return normalized_adjacency(bipartite_edge_index(PAIRS, 3, 4), 7).double()


def test_layer_equals_dense_formula():
    torch.manual_seed(0)
    adj = _adj64()
    layer = NGCFLayer(5, 3).double()
    torch.nn.init.normal_(layer.w1.bias)
    torch.nn.init.normal_(layer.w2.bias)
    x = torch.randn(7, 5, dtype=torch.float64)
    a = adj.to_dense()
    side = a @ x
    expected = F.leaky_relu((side + x) @ layer.w1.weight.T + layer.w1.bias
                            + (side * x) @ layer.w2.weight.T + layer.w2.bias, 0.2)
    torch.testing.assert_close(layer(x, to_csr(adj)), expected)
    torch.testing.assert_close(layer(x, adj), expected)          # COO input works too


def test_layer_gradcheck_float64():
    torch.manual_seed(1)
    adj = to_csr(_adj64())
    layer = NGCFLayer(4, 3).double()
    x = torch.randn(7, 4, dtype=torch.float64, requires_grad=True)
    w1, w2 = layer.w1.weight, layer.w2.weight

    def f(x, w1, w2):
        return torch.func.functional_call(layer, {"w1.weight": w1, "w2.weight": w2,
                                                  "w1.bias": layer.w1.bias, "w2.bias": layer.w2.bias},
                                          (x, adj))

    assert torch.autograd.gradcheck(f, (x, w1.detach().clone().requires_grad_(),
                                        w2.detach().clone().requires_grad_()))


def test_module_shapes_and_normalised_layers():
    adj = normalized_adjacency(bipartite_edge_index(PAIRS, 3, 4), 7)
    module = NGCFModule(3, 4, 8, (8, 6), adj, dropout=0.0)
    users, items = module()
    assert users.shape == (3, 8 + 8 + 6) and items.shape == (4, 22)
    assert module.out_dim == 22
    # every propagated block is unit-norm row-wise
    torch.testing.assert_close(users[:, 8:16].norm(dim=1), torch.ones(3))
    torch.testing.assert_close(items[:, 16:].norm(dim=1), torch.ones(4))


def test_dropout_only_in_training():
    adj = normalized_adjacency(bipartite_edge_index(PAIRS, 3, 4), 7)
    module = NGCFModule(3, 4, 8, (8,), adj, dropout=0.5)
    module.eval()
    torch.testing.assert_close(module()[0], module()[0])
    module.train()
    torch.manual_seed(0)
    a = module()[0]
    torch.manual_seed(1)
    assert not torch.allclose(a, module()[0])


def _toy():
    rng = np.random.default_rng(0)
    rows = [(u, i) for u in range(30) for i in rng.choice(20, 5, replace=False)]
    return pd.DataFrame(rows, columns=["user", "item"])


@pytest.mark.parametrize("cls", [NGCF, GCN])
def test_training_lowers_the_loss(cls):
    model = cls(embed_dim=8, num_layers=2, num_epochs=8, batch_size=32, lr=0.01, seed=0).fit(_toy(), 30, 20)
    loss = model.history.frame["loss"].to_numpy()
    assert loss[-1] < loss[0]
    assert model.score(torch.arange(30)).shape == (30, 20)


def test_registered():
    assert get_model("ngcf") is NGCF
    assert get_model("gcn") is GCN


def test_gcn_module_shapes():
    ei = bipartite_edge_index(PAIRS, 3, 4)
    module = GCNModule(3, 4, 6, 2, ei, dropout=0.0)
    users, items = module()
    assert users.shape == (3, 18) and items.shape == (4, 18)


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="dropout"):
        NGCFLayer(4, 4, dropout=1.0)
    with pytest.raises(ValueError, match="shape"):
        NGCFLayer(4, 4)(torch.randn(7, 3), to_csr(_adj64()))
    with pytest.raises(ValueError, match="layer_dims"):
        NGCF(layer_dims=(8, 0))


def test_gcn_and_ngcf_take_the_graph_as_a_forward_argument():
    """forward(norm_adj) over another graph equals a module built on that graph (same
    weights); without an argument the module uses its construction graph."""
    more_pairs = np.vstack([PAIRS, [[0, 3], [2, 0]]])
    ei, ei_more = bipartite_edge_index(PAIRS, 3, 4), bipartite_edge_index(more_pairs, 3, 4)
    builders = [
        (lambda e: GCNModule(3, 4, 4, 2, e, dropout=0.0),
         lambda e: gcn_norm_sparse(e, 7)),
        (lambda e: NGCFModule(3, 4, 4, (4, 4), normalized_adjacency(e, 7), dropout=0.0),
         lambda e: normalized_adjacency(e, 7)),
    ]
    for build, norm in builders:
        torch.manual_seed(0)
        module, other = build(ei).eval(), build(ei_more).eval()
        other.load_state_dict(module.state_dict())
        with torch.no_grad():
            for got, want in zip(module(norm(ei_more)), other()):
                torch.testing.assert_close(got, want)
            for got, want in zip(module(norm(ei)), module()):
                torch.testing.assert_close(got, want)
