"""LightGCN: propagation against the closed form, the hand-written gradients against
autograd, and a small end-to-end run against popularity."""
import copy

import numpy as np
import pandas as pd
import pytest
import torch

from recsys_ref.protocol.evaluate import evaluate_ranking
from recsys_ref.graph import bipartite_edge_index, normalized_adjacency
from recsys_ref.nn.losses import bpr_loss
from recsys_ref.models.embedding import EmbeddingRecommender
from recsys_ref.graph.sparse import layer_mean
from recsys_ref.models.graph.lightgcn import LightGCN, LightGCNModule
from recsys_ref.nn.fused_losses import BPRFromTables
from recsys_ref.models.classic.popularity import Popularity

# 3 users, 4 items: u0-{i0,i1}, u1-{i1,i2}, u2-{i2,i3}
PAIRS = np.array([[0, 0], [0, 1], [1, 1], [1, 2], [2, 2], [2, 3]])


def _numpy_norm_adj(pairs, num_users, num_items):
    n = num_users + num_items
    a = np.zeros((n, n))
    for u, i in pairs:
        a[u, num_users + i] = a[num_users + i, u] = 1
    d = a.sum(1)
    inv = np.where(d > 0, 1 / np.sqrt(np.maximum(d, 1e-12)), 0)
    return inv[:, None] * a * inv[None, :]


@pytest.mark.parametrize("num_layers", [0, 1, 2, 3, 4])
def test_propagation_equals_closed_form(num_layers):
    a = _numpy_norm_adj(PAIRS, 3, 4)
    # the library's float32 matrix is the numpy one ...
    adj32 = normalized_adjacency(bipartite_edge_index(PAIRS, 3, 4), 7)
    np.testing.assert_allclose(adj32.to_dense().numpy(), a, atol=1e-7)
    # ... and propagation in float64 is the closed form to rounding error
    module = LightGCNModule(3, 4, 5, num_layers, torch.tensor(a).to_sparse()).double()
    e0 = module.embedding.weight.detach().numpy()
    expected = sum(np.linalg.matrix_power(a, l) @ e0 for l in range(num_layers + 1)) / (num_layers + 1)
    users, items = module()
    np.testing.assert_allclose(torch.cat([users, items]).detach().numpy(), expected, atol=1e-12)


def test_hand_worked_one_layer_entry():
    # user 0 (degree 2) after one layer: (e_u0 + (e_i0/sqrt(2*1) + e_i1/sqrt(2*2))) / 2
    adj = torch.tensor(_numpy_norm_adj(PAIRS, 3, 4)).to_sparse()
    module = LightGCNModule(3, 4, 2, 1, adj).double()
    e = module.embedding.weight.detach()
    expected = (e[0] + e[3] / np.sqrt(2) + e[4] / 2) / 2
    torch.testing.assert_close(module()[0][0].detach(), expected)


def test_propagation_gradient_is_transposed_propagation():
    adj = normalized_adjacency(bipartite_edge_index(PAIRS, 3, 4), 7).double()
    x = torch.randn(7, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: layer_mean(t, adj, 3), (x,))
    # non-symmetric matrix: backward must use A^T
    g = torch.Generator().manual_seed(0)
    a = (torch.rand(7, 7, generator=g, dtype=torch.float64) < 0.3).double() * torch.rand(7, 7, generator=g, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda t: layer_mean(t, a.to_sparse(), 2, a.T.to_sparse()), (x,))


@pytest.mark.parametrize("num_layers", [1, 2, 3, 4])
def test_layer_mean_scratch_path_equals_closed_form_in_float32(num_layers):
    # Horner's rule into reused scratch blocks (the CPU training path), in float32
    from recsys_ref.graph.sparse import mean_of_powers as _mean_of_powers, to_csr

    a = _numpy_norm_adj(PAIRS, 3, 4)
    adj = to_csr(torch.tensor(a, dtype=torch.float32).to_sparse())
    x = torch.randn(7, 5, generator=torch.Generator().manual_seed(num_layers))
    expected = sum(np.linalg.matrix_power(a, l) @ x.double().numpy()
                   for l in range(num_layers + 1)) / (num_layers + 1)
    work = (torch.full_like(x, float("nan")), torch.full_like(x, float("nan")))  # stale junk
    first = _mean_of_powers(adj, x, num_layers, work)
    second = _mean_of_powers(adj, x, num_layers, work)          # scratch reused
    np.testing.assert_allclose(first.numpy(), expected, atol=1e-6)
    torch.testing.assert_close(second, first)
    assert first.data_ptr() not in (work[0].data_ptr(), work[1].data_ptr())  # a fresh result
    torch.testing.assert_close(_mean_of_powers(adj, x, num_layers), first)    # no scratch


def test_bpr_from_tables_one_negative_gradcheck():
    g = torch.Generator().manual_seed(5)
    ue = torch.randn(4, 3, dtype=torch.float64, generator=g, requires_grad=True)
    ie = torch.randn(5, 3, dtype=torch.float64, generator=g, requires_grad=True)
    users, pos, neg = torch.tensor([0, 3, 3, 1, 0]), torch.tensor([1, 1, 4, 0, 2]), torch.tensor([2, 0, 1, 4, 2])
    items = torch.cat([pos, neg])
    ref = bpr_loss((ue[users] * ie[pos]).sum(-1), (ue[users] * ie[neg]).sum(-1))
    torch.testing.assert_close(BPRFromTables.apply(ue, ie, users, items, 1), ref)
    assert torch.autograd.gradcheck(lambda a, b: BPRFromTables.apply(a, b, users, items, 1), (ue, ie))


def test_module_handles_non_symmetric_adjacency():
    g = torch.Generator().manual_seed(1)
    a = torch.rand(7, 7, generator=g, dtype=torch.float64) * (torch.rand(7, 7, generator=g) < 0.4)
    module = LightGCNModule(3, 4, 3, 2, a.to_sparse()).double()
    x = torch.randn(7, 3, dtype=torch.float64, requires_grad=True)
    assert not module.symmetric
    assert torch.autograd.gradcheck(module.propagate, (x,))
    torch.testing.assert_close(module.propagate(x), (x + a @ x + a @ a @ x) / 3)


def test_bpr_from_tables_matches_autograd():
    g = torch.Generator().manual_seed(2)
    ue = torch.randn(5, 4, dtype=torch.float64, generator=g, requires_grad=True)
    ie = torch.randn(6, 4, dtype=torch.float64, generator=g, requires_grad=True)
    users = torch.tensor([0, 1, 1, 4])
    pos = torch.tensor([0, 2, 2, 5])
    neg = torch.tensor([[1, 3], [0, 0], [4, 1], [2, 3]])
    items = torch.cat([pos, neg.reshape(-1)])
    loss = BPRFromTables.apply(ue, ie, users, items, 2)
    ref = bpr_loss((ue[users] * ie[pos]).sum(-1), torch.einsum("bd,bnd->bn", ue[users], ie[neg]))
    torch.testing.assert_close(loss, ref)
    assert torch.autograd.gradcheck(lambda a, b: BPRFromTables.apply(a, b, users, items, 2), (ue, ie))


def test_state_dict_and_deepcopy_work():
    adj = normalized_adjacency(bipartite_edge_index(PAIRS, 3, 4), 7)
    module = LightGCNModule(3, 4, 4, 2, adj)
    clone = copy.deepcopy(module)
    assert set(module.state_dict()) == {"embedding.weight"}
    torch.testing.assert_close(clone()[0], module()[0])
    assert module.norm_adj.layout == torch.sparse_csr


class _ReferenceLightGCN(LightGCN):
    """LightGCN with the parent's plain autograd loss."""

    def _batch_loss(self, *args):
        return EmbeddingRecommender._batch_loss(self, *args)


def _toy_frame(seed=0, num_users=40, num_items=30, per_user=6):
    rng = np.random.default_rng(seed)
    rows = [(u, i) for u in range(num_users)
            for i in rng.choice(num_items, per_user, replace=False, p=np.linspace(2, 1, num_items) / np.linspace(2, 1, num_items).sum())]
    return pd.DataFrame(rows, columns=["user", "item"]), num_users, num_items


@pytest.mark.parametrize("num_neg", [1, 3])
def test_fused_training_step_equals_plain_autograd(num_neg):
    df, nu, ni = _toy_frame()
    kw = dict(embed_dim=8, num_epochs=2, batch_size=128, num_neg=num_neg, lr=0.01, reg=1e-3, seed=3)
    fast = LightGCN(num_layers=2, **kw).fit(df, nu, ni)
    ref = _ReferenceLightGCN(num_layers=2, **kw).fit(df, nu, ni)
    np.testing.assert_allclose(fast.history.frame["loss"], ref.history.frame["loss"], rtol=1e-5)
    torch.testing.assert_close(fast.embeddings()[0], ref.embeddings()[0], atol=1e-5, rtol=1e-4)


def test_bad_arguments_raise():
    adj = normalized_adjacency(bipartite_edge_index(PAIRS, 3, 4), 7)
    with pytest.raises(ValueError, match="num_layers"):
        LightGCNModule(3, 4, 4, -1, adj)
    with pytest.raises(ValueError, match="shape"):
        LightGCNModule(3, 5, 4, 1, adj)
    with pytest.raises(ValueError, match="num_threads"):
        LightGCN(num_threads=0)


def test_small_slice_beats_popularity():
    from recsys_ref.data import load_movielens
    from recsys_ref.protocol.splits import stratified_split

    try:
        ml = load_movielens("ml-100k", download=False)
    except Exception as err:  # pragma: no cover - data missing
        pytest.skip(f"ML-100K not available: {err}")
    ratings = ml.ratings[ml.ratings["user"] < 200]
    train, test = stratified_split(ratings, 0.75, seed=42)
    model = LightGCN(num_layers=2, embed_dim=32, lr=1e-2, num_epochs=10, reg=1e-4, seed=0,
                     num_threads=1).fit(train, ml.num_users, ml.num_items)
    pop = Popularity().fit(train, ml.num_users, ml.num_items)
    res = {name: evaluate_ranking(m.score, test, ml.num_users, ml.num_items, 10, exclude=[train])
           for name, m in [("lightgcn", model), ("pop", pop)]}
    assert res["lightgcn"]["ndcg"] > res["pop"]["ndcg"] + 0.01
    assert res["lightgcn"]["precision"] > res["pop"]["precision"]


@pytest.mark.parametrize("with_neg", [True, False])
def test_reg_loss_equals_gathered_squares_with_repeats(with_neg):
    """The batch L2 term by hand: (1/2B) * sum of the squared layer-0 rows of the batch's users,
    positives and negatives, a row drawn twice counted twice; its gradient row r is c_r e_r / B."""
    torch.manual_seed(0)
    adj = normalized_adjacency(bipartite_edge_index(PAIRS, 3, 4), 7)
    module = LightGCNModule(3, 4, 5, 2, adj).double()
    users, pos = torch.tensor([0, 0, 2]), torch.tensor([1, 1, 3])          # user 0 and item 1 twice
    neg = torch.tensor([[2, 0], [3, 3], [0, 1]]) if with_neg else None
    w = module.embedding.weight
    rows = [0, 0, 2, 3 + 1, 3 + 1, 3 + 3] + ([3 + 2, 3, 3 + 3, 3 + 3, 3, 3 + 1] if with_neg else [])
    counts = np.bincount(rows, minlength=7)
    expected = float((counts * (w.detach().numpy() ** 2).sum(1)).sum() / (2 * 3))
    loss = module.reg_loss(users, pos, neg)
    assert loss.item() == pytest.approx(expected, rel=1e-12)
    loss.backward()
    np.testing.assert_allclose(w.grad.numpy(), counts[:, None] * w.detach().numpy() / 3, rtol=1e-12)


def test_the_graph_is_a_forward_argument():
    """One module, two graphs: forward(adj) over another graph equals a module built on it
    with the same weights; no argument means the graph given at construction."""
    small = normalized_adjacency(bipartite_edge_index(PAIRS, 3, 4), 7)
    more = normalized_adjacency(bipartite_edge_index(np.vstack([PAIRS, [[0, 3], [2, 0]]]), 3, 4), 7)
    torch.manual_seed(0)
    module = LightGCNModule(3, 4, 4, 2, small)
    other = LightGCNModule(3, 4, 4, 2, more)
    other.embedding.weight.data.copy_(module.embedding.weight.data)
    with torch.no_grad():
        for got, want in zip(module(more), other()):
            torch.testing.assert_close(got, want)
        for got, want in zip(module(small), module()):
            torch.testing.assert_close(got, want)
        assert not torch.allclose(module(more)[0], module()[0])


def test_fold_in_equals_propagating_a_user_without_an_id_vector():
    """A training user whose layer-0 row is zeroed is, to the propagation, a new user with
    the same items: the fold-in of those items must give the same scores."""
    rng = np.random.default_rng(0)
    rows = {(u, int(i)) for u in range(30) for i in rng.choice(20, size=6, replace=False)}
    train = pd.DataFrame(sorted(rows), columns=["user", "item"])
    for normalize in (False, True):
        model = LightGCN(num_epochs=2, embed_dim=8, num_layers=3, lr=1e-2,
                         normalize=normalize, temperature=0.5).fit(train, 30, 20)
        with torch.no_grad():
            model.module.embedding.weight[4] = 0.0
        model._cache = None
        items = train.loc[train.user == 4, "item"].to_numpy()
        folded = model.score_items(items)
        assert torch.allclose(folded, model.score(torch.tensor([4]))[0], atol=1e-5)
        top = model.recommend_for_items(items, k=5)
        assert not set(top.tolist()) & set(items.tolist())
