"""Popularity, the Recommender interface, and the shared embedding trainer."""
import numpy as np
import pandas as pd
import pytest
import torch

from recsys_ref.protocol.evaluate import evaluate_ranking
from recsys_ref.models import MODELS, Popularity, get_model
from recsys_ref.models.graph.lightgcn import LightGCN


def test_popularity_scores_are_training_shares(tiny_frame):
    m = Popularity().fit(tiny_frame, 3, 4)
    # item counts: 0 -> 2 users, 1 -> 2, 2 -> 2, 3 -> 1 ; divided by 3 users
    assert m.score(torch.tensor([0])).tolist()[0] == pytest.approx([2 / 3, 2 / 3, 2 / 3, 1 / 3])
    # user 1 has seen items 1, 2: best unseen are 0 (tie with nothing better), then 3
    assert m.recommend([1], k=2).tolist() == [[0, 3]]
    assert "Popularity(3x4)" == repr(m)


def test_recommender_interface_errors(tiny_frame):
    with pytest.raises(RuntimeError, match="not fitted"):
        Popularity().score(torch.tensor([0]))
    m = Popularity().fit(tiny_frame, 3, 4)
    with pytest.raises(ValueError, match="unknown user"):
        m.score(torch.tensor([3]))
    with pytest.raises(ValueError, match="empty"):
        Popularity().fit(tiny_frame.iloc[:0], 3, 4)


def test_every_registered_model_resolves():
    for name in MODELS:
        cls = get_model(name)
        assert cls.name == name or name in ("deepwalk",), name
    with pytest.raises(ValueError, match="unknown model"):
        get_model("nope")



def test_lightgcn_learns_planted_groups_better_than_popularity(planted):
    train, test = planted
    pop = Popularity().fit(train, 60, 40)
    lg = LightGCN(num_layers=2, embed_dim=16, lr=0.01, num_epochs=60, batch_size=128,
                  patience=None, seed=0).fit(train, 60, 40)
    r_pop = evaluate_ranking(pop.score, test, 60, 40, 5, exclude=[train])
    r_lg = evaluate_ranking(lg.score, test, 60, 40, 5, exclude=[train])
    assert r_lg["ndcg"] > r_pop["ndcg"] + 0.3
    assert lg.history.frame["loss"].iloc[-1] < lg.history.frame["loss"].iloc[0]


def test_embedding_trainer_is_deterministic_given_seed(planted):
    train, _ = planted
    a = LightGCN(embed_dim=8, num_epochs=3, batch_size=128, patience=None, seed=5).fit(train, 60, 40)
    b = LightGCN(embed_dim=8, num_epochs=3, batch_size=128, patience=None, seed=5).fit(train, 60, 40)
    assert torch.equal(a.score(torch.arange(60)), b.score(torch.arange(60)))


def test_softmax_loss_option_trains(planted):
    train, test = planted
    m = LightGCN(embed_dim=16, num_layers=1, loss="softmax", num_neg=None, lr=0.01,
                 num_epochs=30, batch_size=256, patience=None).fit(train, 60, 40)
    assert m.history.frame["loss"].iloc[-1] < m.history.frame["loss"].iloc[0]
    with pytest.raises(ValueError, match="BPR needs"):
        LightGCN(loss="bpr", num_neg=None)
