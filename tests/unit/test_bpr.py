"""BPR-MF: the loss goes down, it beats popularity on planted communities, its scores are
dot products of its embeddings, and bad input is refused."""
import numpy as np
import pandas as pd
import pytest
import torch

from recsys_ref.protocol.evaluate import evaluate_ranking
from recsys_ref.nn.losses import bpr_loss
from recsys_ref.models.classic.bprmf import BPRMF, MFModule
from recsys_ref.models.classic.popularity import Popularity


def _communities(seed=0):
    """Two taste communities of 40 users over 2 x 30 items; community B is smaller in
    interactions, so popularity recommends community A's items to everyone."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(80):
        block = np.arange(30) if u < 50 else np.arange(30, 60)
        p = 0.5 if u < 50 else 0.35
        rows += [(u, i) for i in block if rng.random() < p]
    df = pd.DataFrame(rows, columns=["user", "item"])
    test_mask = rng.random(len(df)) < 0.25
    return df[~test_mask], df[test_mask]


def _fit(train, **kw):
    args = dict(embed_dim=8, lr=0.02, reg=1e-4, num_epochs=40, batch_size=256, seed=0)
    args.update(kw)
    return BPRMF(**args).fit(train, 80, 60)


def test_loss_decreases():
    train, _ = _communities()
    hist = _fit(train).history.frame
    assert hist["loss"].iloc[-1] < 0.5 * hist["loss"].iloc[0]
    assert hist["loss"].iloc[0] == pytest.approx(np.log(2), abs=0.05)  # random init: sigma(0)


def test_beats_popularity_on_planted_communities():
    train, test = _communities()
    bpr = evaluate_ranking(_fit(train).score, test, 80, 60, 5, exclude=[train], metrics=["ndcg"])
    pop = evaluate_ranking(Popularity().fit(train, 80, 60).score, test, 80, 60, 5,
                           exclude=[train], metrics=["ndcg"])
    # popularity serves community A's items to community B (zero hits for 30 of 80 users)
    assert bpr["ndcg"] > 1.5 * pop["ndcg"], (bpr, pop)


def test_scores_are_embedding_dot_products_with_bias():
    module = MFModule(4, 5, 3)
    with torch.no_grad():
        module.bias.copy_(torch.arange(5.0))
    u, q = module()
    users, items = torch.tensor([0, 3, 2]), torch.tensor([4, 1, 1])
    expected = (module.user.weight[users] * module.item.weight[items]).sum(-1) + module.bias[items]
    assert torch.allclose(module.pair_scores(users, items), expected)
    assert torch.allclose((u[users] * q[items]).sum(-1), expected)
    pair = module.pair_scores(users, torch.stack([items, items], 1))
    assert pair.shape == (3, 2) and torch.allclose(pair[:, 0], expected)


def test_early_stopping_restores_best_and_records_epoch_time():
    train, test = _communities()
    model = _fit(train, num_epochs=30, eval_every=5, patience=2)
    model_v = BPRMF(embed_dim=8, lr=0.02, num_epochs=30, batch_size=256, eval_every=5,
                    patience=2, seed=0).fit(train, 80, 60, valid=test)
    assert model.epoch_seconds is not None and model.epoch_seconds > 0
    assert model_v.history.best_score == max(model_v.history.frame["valid"].dropna())


def test_bpr_loss_of_equal_scores_is_log2():
    assert bpr_loss(torch.zeros(4), torch.zeros(4)).item() == pytest.approx(np.log(2))


def test_bad_input_raises():
    with pytest.raises(ValueError, match="num_neg"):
        BPRMF(num_neg=0)
    with pytest.raises(ValueError, match="lr"):
        BPRMF(lr=0)
    train, _ = _communities()
    with pytest.raises(ValueError, match="0-based"):
        BPRMF(num_epochs=1).fit(train, 10, 60)


# -- the hand-written loss and gradient (BPRMFLoss) against autograd ---------------------------

from recsys_ref.nn.fused_losses import BPRMFLoss, bpr_mf_loss  # noqa: E402
from recsys_ref.models.embedding import EmbeddingRecommender  # noqa: E402


def _tiny_module(seed=0):
    torch.manual_seed(seed)
    module = MFModule(5, 6, 3).double()
    with torch.no_grad():
        module.bias.normal_()                      # non-zero biases: their gradient is tested
    return module


@pytest.mark.parametrize("neg", [torch.tensor([1, 0, 4, 2]), torch.tensor([[1, 3], [0, 0], [4, 1], [2, 3]])])
def test_bpr_mf_loss_and_gradients_equal_autograd(neg):
    users, pos = torch.tensor([0, 1, 1, 4]), torch.tensor([0, 2, 2, 5])   # repeated rows on purpose
    fast, ref = _tiny_module(), _tiny_module()
    loss = bpr_mf_loss(fast, users, pos, neg, reg=0.3)
    # the definition written with autograd: BPR on pair scores + lambda * batch L2 term
    ref_loss = bpr_loss(ref.pair_scores(users, pos), ref.pair_scores(users, neg)) \
        + 0.3 * ref.reg_loss(users, pos, neg)
    torch.testing.assert_close(loss, ref_loss)
    loss.backward()
    ref_loss.backward()
    for (name, p), q in zip(fast.named_parameters(), ref.parameters()):
        torch.testing.assert_close(p.grad, q.grad, msg=name)


def test_bpr_mf_backward_passes_gradcheck():
    g = torch.Generator().manual_seed(1)
    user_w = torch.randn(5, 3, dtype=torch.float64, generator=g, requires_grad=True)
    item_w = torch.randn(6, 3, dtype=torch.float64, generator=g, requires_grad=True)
    bias = torch.randn(6, dtype=torch.float64, generator=g, requires_grad=True)
    users = torch.tensor([0, 1, 1, 4])
    items = torch.tensor([[0, 1, 3], [2, 0, 0], [2, 4, 1], [5, 2, 3]])    # positive, 2 negatives
    assert torch.autograd.gradcheck(
        lambda u, i, b: BPRMFLoss.apply(u, i, b, users, items, 0.3, None), (user_w, item_w, bias))
    assert torch.autograd.gradcheck(                                     # no bias, no L2
        lambda u, i: BPRMFLoss.apply(u, i, None, users, items, 0.0, None), (user_w, item_w))


def test_scratch_buffers_give_the_same_gradient_and_refuse_misuse():
    users, pos, neg = torch.tensor([0, 1, 2, 1]), torch.tensor([0, 1, 2, 3]), torch.tensor([3, 4, 5, 0])
    grads = []
    for work in (None, {}):
        module = _tiny_module()
        for _ in range(2):                         # the second step reuses the buffers
            module.zero_grad()
            bpr_mf_loss(module, users, pos, neg, 0.1, work).backward()
        grads.append([p.grad.clone() for p in module.parameters()])
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b)
    # two forward passes into the same buffers before a backward: autograd must refuse
    module, work = _tiny_module(), {}
    first = bpr_mf_loss(module, users, pos, neg, 0.1, work)
    bpr_mf_loss(module, users[:3], pos[:3], neg[:3], 0.1, work)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        first.backward()


class _AutogradBPRMF(BPRMF):
    """BPR-MF trained by the generic loop: autograd through ``forward()`` (a ones column
    on the user side, the bias on the item side) and ``MFModule.reg_loss``."""

    calculate_loss = EmbeddingRecommender.calculate_loss


def test_fast_training_equals_plain_autograd_training():
    train, _ = _communities()
    kw = dict(embed_dim=8, lr=0.02, reg=1e-2, num_epochs=3, batch_size=256, num_neg=2, seed=4)
    fast, ref = BPRMF(**kw).fit(train, 80, 60), _AutogradBPRMF(**kw).fit(train, 80, 60)
    np.testing.assert_allclose(fast.history.frame["loss"], ref.history.frame["loss"], rtol=1e-5)
    torch.testing.assert_close(fast.score(torch.arange(80)), ref.score(torch.arange(80)),
                               atol=1e-4, rtol=1e-4)
