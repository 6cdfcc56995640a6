"""BPR-MF: the loss goes down, it beats popularity on planted communities, its scores are
dot products of its embeddings, and bad input is refused."""
import numpy as np
import pandas as pd
import pytest
import torch

from recsys_ref.evaluate import evaluate_ranking
from recsys_ref.losses import bpr_loss
from recsys_ref.models.bpr import BPRMF, MFModule
from recsys_ref.models.popularity import Popularity


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
