"""Cold-item split and cold-only evaluation, checked by hand."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch

from recsys_ref.protocol.coldstart import cold_item_split, evaluate_cold, history_similarity, random_scores


def test_no_cold_item_appears_in_training():
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"user": rng.integers(0, 50, 2000), "item": rng.integers(0, 100, 2000)})
    warm, cold, items = cold_item_split(df, 0.2, seed=3, num_items=100)
    assert len(items) == 20 and np.all(np.diff(items) > 0)
    assert not warm["item"].isin(items).any()
    assert cold["item"].isin(items).all()
    assert len(warm) + len(cold) == len(df)
    again = cold_item_split(df, 0.2, seed=3, num_items=100)[2]
    assert np.array_equal(items, again)
    assert not np.array_equal(items, cold_item_split(df, 0.2, seed=4, num_items=100)[2])


def test_evaluate_cold_ranks_only_cold_items_by_hand():
    # 2 users, 5 items, cold items {1, 3, 4}; warm item 0 has the top score but is no candidate
    scores = torch.tensor([[9.0, 1.0, 0.0, 3.0, 2.0],
                           [9.0, 3.0, 0.0, 2.0, 1.0]])
    test = pd.DataFrame({"user": [0, 1], "item": [4, 4]})
    res = evaluate_cold(scores, test, [1, 3, 4], num_users=2, k=2, metrics=["recall", "ndcg"])
    # user 0 ranks 3, 4 -> hit at rank 2: recall 1, ndcg 1/log2(3); user 1 ranks 1, 3 -> miss
    assert res["recall"] == pytest.approx(0.5)
    assert res["ndcg"] == pytest.approx(0.5 / np.log2(3))


def test_evaluate_cold_rejects_warm_test_items():
    with pytest.raises(ValueError, match="not cold"):
        evaluate_cold(torch.zeros(2, 5), pd.DataFrame({"user": [0], "item": [2]}), [1, 3], 2)


def test_history_similarity_mean_and_max_by_hand():
    x = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [1.0, -1.0]])
    hist = sp.csr_matrix(np.array([[1, 1, 0, 0]]))
    mean = history_similarity(hist, x, 1, 4, "mean")(torch.tensor([0]))[0]
    mx = history_similarity(hist, x, 1, 4, "max")(torch.tensor([0]))[0]
    # centroid (1, 1)/sqrt2: cos to item 2 is 1, to item 3 is 0
    assert mean[2].item() == pytest.approx(1.0) and mean[3].item() == pytest.approx(0.0, abs=1e-6)
    # nearest history item of item 3 = item 0 with cos 1/sqrt2
    assert mx[3].item() == pytest.approx(1 / np.sqrt(2))
    assert mx[0].item() == pytest.approx(1.0)


def test_history_similarity_agrees_with_sklearn_cosine():
    from sklearn.metrics.pairwise import cosine_similarity
    rng = np.random.default_rng(1)
    x = rng.normal(size=(6, 3))
    hist = sp.csr_matrix((rng.random((2, 6)) < 0.5).astype(float))
    got = history_similarity(hist, x, 2, 6, "mean")(torch.tensor([0, 1])).numpy()
    prof = hist @ (x / np.linalg.norm(x, axis=1, keepdims=True))
    np.testing.assert_allclose(got, cosine_similarity(prof, x), atol=1e-5)


def test_random_scores_are_seeded():
    assert torch.equal(random_scores(3, 4, 1), random_scores(3, 4, 1))
    assert not torch.equal(random_scores(3, 4, 1), random_scores(3, 4, 2))


def test_validation_cold_set_is_drawn_among_candidates_only():
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"user": rng.integers(0, 50, 2000), "item": rng.integers(0, 100, 2000)})
    warm, _, cold_items = cold_item_split(df, 0.2, seed=3, num_items=100)
    warm_items = np.setdiff1d(np.arange(100), cold_items)               # 80 candidates
    v_warm, v_cold, v_items = cold_item_split(warm, 0.25, seed=7, num_items=100, candidates=warm_items)
    assert len(v_items) == 20                                           # round(0.25 * 80)
    assert not np.isin(v_items, cold_items).any()                       # never a test-cold item
    assert not v_warm["item"].isin(v_items).any() and v_cold["item"].isin(v_items).all()
    assert len(v_warm) + len(v_cold) == len(warm)
    # without candidates the draw is the one it always was (same cold sets as before)
    assert np.array_equal(cold_item_split(df, 0.2, seed=3, num_items=100)[2], cold_items)
    with pytest.raises(ValueError, match="candidates"):
        cold_item_split(warm, 0.25, num_items=100, candidates=[5, 100])
