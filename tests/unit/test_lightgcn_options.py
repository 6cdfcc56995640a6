"""LightGCN's ``normalize`` option: cosine scores over a temperature, in the loss and at
inference, checked against numbers worked out by hand on a 3-user, 4-item example."""
import math

import numpy as np
import pandas as pd
import pytest
import torch

from recsys_ref.models.graph.lightgcn import LightGCN

PAIRS = pd.DataFrame({"user": [0, 0, 1, 1, 2, 2], "item": [0, 1, 1, 2, 2, 3]})
# num_layers=0, so the final representations are the layer-0 rows set here.
# user 0 = (3, 4) (length 5); items (1, 0), (0, 2), (-1, -1), (4, -3):
# cos(u0, .) = 3/5, 8/10, -7/(5*sqrt 2), 0
USERS = [[3.0, 4.0], [1.0, 0.0], [0.0, -2.0]]
ITEMS = [[1.0, 0.0], [0.0, 2.0], [-1.0, -1.0], [4.0, -3.0]]
COS_U0 = [0.6, 0.8, -7 / (5 * math.sqrt(2)), 0.0]
TAU = 0.5


def _model(**kw) -> LightGCN:
    """A fitted LightGCN (L = 0, d = 2) whose layer-0 table is USERS + ITEMS."""
    args = dict(num_layers=0, embed_dim=2, num_epochs=1, batch_size=6, reg=0.0, seed=0,
                num_threads=1)
    args.update(kw)
    model = LightGCN(**args).fit(PAIRS, 3, 4)
    with torch.no_grad():
        model.module.embedding.weight.copy_(torch.tensor(USERS + ITEMS))
    model._cache = None
    return model


def test_scores_are_cosines_over_temperature():
    model = _model(loss="softmax", num_neg=None, normalize=True, temperature=TAU)
    scores = model.score(torch.tensor([0]))[0].numpy()
    np.testing.assert_allclose(scores, np.array(COS_U0) / TAU, rtol=1e-6, atol=1e-7)
    # unit-length embeddings at inference
    user_emb, item_emb = model.embeddings()
    np.testing.assert_allclose(user_emb.norm(dim=1).numpy(), 1.0, rtol=1e-6)
    np.testing.assert_allclose(item_emb.norm(dim=1).numpy(), 1.0, rtol=1e-6)
    # ranking: item 1 (cos .8), item 0 (.6), item 3 (0), item 2 (< 0)
    assert model.score(torch.tensor([0])).argsort(descending=True)[0].tolist() == [1, 0, 3, 2]


def test_scores_ignore_embedding_length():
    model = _model(normalize=True, temperature=TAU)
    before = model.score(torch.arange(3)).clone()
    with torch.no_grad():
        model.module.embedding.weight.mul_(torch.tensor([[7.0], [0.1], [3.0]] + [[0.5]] * 4))
    model._cache = None
    torch.testing.assert_close(model.score(torch.arange(3)), before)


def test_default_scores_stay_dot_products():
    model = _model()
    assert model.normalize is False
    np.testing.assert_allclose(model.score(torch.tensor([0]))[0].numpy(),
                               np.array(USERS[0]) @ np.array(ITEMS).T, rtol=1e-6)


def test_full_catalogue_softmax_loss_by_hand():
    model = _model(loss="softmax", num_neg=None, normalize=True, temperature=TAU)
    user_emb, item_emb = model.module()
    # user 0, positive item 1: -log( e^{.8/tau} / sum_j e^{cos_j/tau} )
    loss = model._batch_loss(user_emb, item_emb, torch.tensor([0]), torch.tensor([1]), None)
    expected = -COS_U0[1] / TAU + math.log(sum(math.exp(c / TAU) for c in COS_U0))
    assert loss.item() == pytest.approx(expected, rel=1e-6)


def test_sampled_bpr_and_softmax_losses_by_hand():
    users, pos, neg = torch.tensor([0, 0]), torch.tensor([1, 0]), torch.tensor([[2, 3], [3, 3]])
    bpr = _model(loss="bpr", num_neg=2, normalize=True, temperature=TAU)
    loss = bpr._batch_loss(*bpr.module(), users, pos, neg)

    def nls(x):                                   # -log sigma(x)
        return math.log1p(math.exp(-x))

    c = COS_U0
    expected = (nls((c[1] - c[2]) / TAU) + nls((c[1] - c[3]) / TAU)
                + 2 * nls((c[0] - c[3]) / TAU)) / 4
    assert loss.item() == pytest.approx(expected, rel=1e-6)

    sm = _model(loss="softmax", num_neg=2, normalize=True, temperature=TAU)
    loss = sm._batch_loss(*sm.module(), users, pos, neg)

    def ce(p, others):
        return -p / TAU + math.log(math.exp(p / TAU) + sum(math.exp(o / TAU) for o in others))

    expected = (ce(c[1], [c[2], c[3]]) + ce(c[0], [c[3], c[3]])) / 2
    assert loss.item() == pytest.approx(expected, rel=1e-6)


def test_reg_is_added_on_layer0_rows():
    model = _model(loss="softmax", num_neg=None, normalize=True, temperature=TAU, reg=0.1)
    loss = model._batch_loss(*model.module(), torch.tensor([0]), torch.tensor([1]), None)
    ce = -COS_U0[1] / TAU + math.log(sum(math.exp(c / TAU) for c in COS_U0))
    # reg * (|u0|^2 + |i1|^2) / (2 B) = 0.1 * (25 + 4) / 2
    assert loss.item() == pytest.approx(ce + 0.1 * 29 / 2, rel=1e-6)


def test_normalized_training_learns_the_pairs():
    # 2-D, one layer: after training, each user's two items outrank the other two
    model = LightGCN(num_layers=1, embed_dim=8, lr=0.05, num_epochs=60, batch_size=6, reg=0.0,
                     loss="softmax", num_neg=None, normalize=True, temperature=0.2, seed=0,
                     num_threads=1).fit(PAIRS, 3, 4)
    top2 = model.score(torch.arange(3)).topk(2).indices.sort(dim=1).values.tolist()
    assert top2 == [[0, 1], [1, 2], [2, 3]]
    assert model.score(torch.arange(3)).abs().max().item() <= 1 / 0.2 + 1e-5


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="normalize"):
        LightGCN(normalize="yes")
    with pytest.raises(ValueError, match="temperature"):
        LightGCN(normalize=True, temperature=0.0)


@pytest.mark.parametrize("unit", [False, True])
@pytest.mark.parametrize("temperature", [1.0, 0.3])
def test_full_softmax_equals_per_pair_log_softmax_and_gradient(temperature, unit):
    # the per-distinct-user computation equals the plain per-pair one: for each (u, i) of
    # the batch, log_softmax over [s_ui, all other items' scores] (on cosines: the same on
    # the row-normalised tables)
    model = LightGCN(num_layers=1, embed_dim=4, num_epochs=1, batch_size=6, reg=0.0,
                     loss="softmax", num_neg=None, temperature=temperature, seed=0,
                     num_threads=1).fit(PAIRS, 3, 4)
    users, pos = torch.tensor([2, 0, 0, 1, 2, 0]), torch.tensor([3, 1, 0, 2, 2, 1])

    def parent(user_emb, item_emb):
        if unit:
            user_emb = torch.nn.functional.normalize(user_emb, dim=-1)
            item_emb = torch.nn.functional.normalize(item_emb, dim=-1)
        u = user_emb[users]                                                    # (B, d)
        pos_scores = (u * item_emb[pos]).sum(-1)
        other = (u @ item_emb.T).scatter(1, pos.unsqueeze(1), float("-inf"))  # (B, I)
        logits = torch.cat([pos_scores.unsqueeze(1), other], 1) / temperature
        return -torch.log_softmax(logits, 1)[:, 0].mean()

    grads = []
    for loss_fn in (lambda u, i: model._full_softmax(u, i, users, pos, unit=unit), parent):
        model.module.zero_grad()
        loss = loss_fn(*model.module())
        loss.backward()
        grads.append((loss.item(), model.module.embedding.weight.grad.clone()))
    assert grads[0][0] == pytest.approx(grads[1][0], rel=1e-6)
    torch.testing.assert_close(grads[0][1], grads[1][1], rtol=1e-5, atol=1e-7)
