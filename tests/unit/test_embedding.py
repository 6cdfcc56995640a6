"""The shared training loop of EmbeddingRecommender: one epoch's triples drawn at once, the
hand-written batch L2 term (RowsSquaredNorm) against autograd, and a small model trained
by the loop that must learn planted structure."""
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch
from torch import nn

from recsys_ref.protocol.evaluate import evaluate_ranking
from recsys_ref.nn.losses import NegativeSampler
from recsys_ref.models.embedding import EmbeddingRecommender
from recsys_ref.nn.fused_losses import RowsSquaredNorm, batch_rows, rows_l2
from recsys_ref.models.classic.popularity import Popularity


def test_rows_squared_norm_counts_repeats_and_passes_gradcheck():
    g = torch.Generator().manual_seed(0)
    table = torch.randn(7, 3, dtype=torch.float64, generator=g, requires_grad=True)
    index = torch.tensor([0, 3, 3, 6, 1, 3])                # row 3 three times, rows 2, 4, 5 never
    by_hand = sum(float(table[r].detach().pow(2).sum()) for r in index.tolist())
    assert float(RowsSquaredNorm.apply(table, index).detach()) == pytest.approx(by_hand)
    assert torch.autograd.gradcheck(lambda t: RowsSquaredNorm.apply(t, index), (table,))
    # rows_l2: the 1/(2B) batch term, B = length of the first index
    users, items = torch.tensor([0, 1]), torch.tensor([3, 3, 6])
    ref = table[torch.cat([users, items])].pow(2).sum() / (2 * 2)
    torch.testing.assert_close(rows_l2(table, users, items), ref)
    torch.testing.assert_close(rows_l2(table, users, items, batch=5), ref * 2 / 5)


def test_batch_rows_and_rows_l2_on_a_hand_worked_batch():
    # a stacked table of 2 users and 3 items; batch: users (0, 1), positives (0, 2),
    # negatives ((1,), (1,)) -> rows 0, 1, 2, 4, 3, 3
    table = torch.arange(10, dtype=torch.float64).reshape(5, 2).requires_grad_()
    users, pos, neg = torch.tensor([0, 1]), torch.tensor([0, 2]), torch.tensor([[1], [1]])
    assert torch.cat(batch_rows(users, pos, neg, 2)).tolist() == [0, 1, 2, 4, 3, 3]
    assert torch.cat(batch_rows(users, pos, None, 2)).tolist() == [0, 1, 2, 4]
    # squared row norms 1, 13, 41, 145, 85, 85 -> 370 / (2 B) with B = 2
    value = rows_l2(table, *batch_rows(users, pos, neg, 2), batch=2)
    assert value.item() == pytest.approx(370 / 4)
    (grad,) = torch.autograd.grad(value, table)
    # d/dW_r = c_r W_r / B (c_r: times row r is in the batch): row 3 twice
    counts = torch.tensor([1, 1, 1, 2, 1], dtype=torch.float64).unsqueeze(1)
    torch.testing.assert_close(grad, counts * table.detach() / 2)


class _DotModule(nn.Module):
    """Plain matrix factorisation through the generic interface."""

    def __init__(self, num_users, num_items, dim):
        super().__init__()
        self.user = nn.Embedding(num_users, dim)
        self.item = nn.Embedding(num_items, dim)
        nn.init.normal_(self.user.weight, std=0.1)
        nn.init.normal_(self.item.weight, std=0.1)

    def forward(self):
        return self.user.weight, self.item.weight

    def reg_loss(self, users, pos, neg):
        terms = [self.user.weight[users], self.item.weight[pos]]
        if neg is not None:
            terms.append(self.item.weight[neg.reshape(-1)])
        return sum(t.pow(2).sum() for t in terms) / (2 * len(users))


class _DotModel(EmbeddingRecommender):
    name = "dot"

    def build(self):
        return _DotModule(self.num_users, self.num_items, self.embed_dim)



def test_epoch_triples_shuffle_every_pair_and_sample_unobserved_negatives(planted):
    train, _ = planted
    model = _DotModel(num_neg=3, seed=0)
    mat = model._store_train(train, 60, 40)
    pairs_u, pairs_i = model._train_pairs(mat)
    gen = torch.Generator().manual_seed(0)
    users, pos, neg = model._epoch_triples(pairs_u, pairs_i, NegativeSampler(mat, seed=0), gen)
    # the same multiset of observed pairs, in a new order
    assert sorted(zip(users.tolist(), pos.tolist())) == sorted(zip(train.user, train.item))
    assert not torch.equal(users, pairs_u)
    assert neg.shape == (len(train), 3)
    dense = mat.toarray() > 0
    assert not dense[np.repeat(users.numpy(), 3), neg.reshape(-1).numpy()].any()
    # softmax over the catalogue samples nothing
    model.num_neg = None
    assert model._epoch_triples(pairs_u, pairs_i, None, gen)[2] is None


def test_one_call_per_epoch_is_uniform_over_unobserved_items():
    # user 0 has seen items 0..2 of 8: its negatives must be uniform over items 3..7
    mat = sp.csr_matrix((np.ones(3), ([0, 0, 0], [0, 1, 2])), shape=(2, 8))
    sampler = NegativeSampler(mat, seed=1)
    draws = sampler(np.zeros(20000, dtype=np.int64), 1).numpy().ravel()
    freq = np.bincount(draws, minlength=8) / len(draws)
    np.testing.assert_array_equal(freq[:3], 0)
    np.testing.assert_allclose(freq[3:], 0.2, atol=0.015)


def test_loop_trains_and_beats_popularity(planted):
    train, test = planted
    model = _DotModel(embed_dim=16, lr=0.02, reg=1e-4, num_epochs=40, batch_size=128,
                      patience=None, seed=0).fit(train, 60, 40)
    loss = model.history.frame["loss"]
    assert loss.iloc[0] == pytest.approx(np.log(2), abs=0.05)   # small init: sigma(0)
    assert loss.iloc[-1] < 0.5 * loss.iloc[0]
    assert model.epoch_seconds is not None and model.epoch_seconds > 0
    pop = Popularity().fit(train, 60, 40)
    r_model = evaluate_ranking(model.score, test, 60, 40, 5, exclude=[train], metrics=["ndcg"])
    r_pop = evaluate_ranking(pop.score, test, 60, 40, 5, exclude=[train], metrics=["ndcg"])
    assert r_model["ndcg"] > r_pop["ndcg"] + 0.3, (r_model, r_pop)


def test_loop_is_deterministic_and_softmax_over_catalogue_trains(planted):
    train, _ = planted
    kw = dict(embed_dim=8, lr=0.02, num_epochs=3, batch_size=128, patience=None, seed=3)
    a, b = _DotModel(**kw).fit(train, 60, 40), _DotModel(**kw).fit(train, 60, 40)
    assert torch.equal(a.score(torch.arange(60)), b.score(torch.arange(60)))
    soft = _DotModel(embed_dim=8, lr=0.02, num_epochs=15, batch_size=128, loss="softmax",
                     num_neg=None, patience=None, seed=0).fit(train, 60, 40)
    assert soft.history.frame["loss"].iloc[-1] < soft.history.frame["loss"].iloc[0]
