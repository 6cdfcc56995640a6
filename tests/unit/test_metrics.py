"""Ranking and rating metrics against hand-computed values and scikit-learn."""
import math

import numpy as np
import pytest
import torch
from sklearn.metrics import mean_absolute_error, mean_squared_error, ndcg_score

from recsys_ref.protocol import metrics as M

RANKED = [["a", "b", "c", "d", "e"]]
RELEVANT = [{"a", "c", "f"}]


def test_worked_example_from_chapter_1():
    # hits at ranks 1 and 3 of 5; |R_u| = 3 (computed on paper in chapter 1)
    assert M.precision_at_k(RANKED, RELEVANT, 5) == pytest.approx(0.4)
    assert M.recall_at_k(RANKED, RELEVANT, 5) == pytest.approx(2 / 3)
    assert M.f1_at_k(RANKED, RELEVANT, 5) == pytest.approx(0.5)
    idcg = 1 + 1 / math.log2(3) + 1 / math.log2(4)
    assert M.ndcg_at_k(RANKED, RELEVANT, 5) == pytest.approx(1.5 / idcg)
    assert M.map_at_k(RANKED, RELEVANT, 5) == pytest.approx((1 + 2 / 3) / 3)
    assert M.hit_rate_at_k(RANKED, RELEVANT, 5) == 1.0
    assert M.mrr_at_k(RANKED, RELEVANT, 5) == 1.0


def test_map_denominators_differ_when_more_relevant_than_k():
    ranked, relevant = [[1, 2]], [{1, 2, 3, 4}]
    # |R_u| = 4: Recommenders' `map` (their benchmark table's MAP)
    assert M.map_at_k(ranked, relevant, 2) == pytest.approx(2 / 4)
    # min(k, |R_u|) = 2: Recommenders' `map_at_k` since 1.2.0 (Spark's MAP@k)
    assert M.map_at_k(ranked, relevant, 2, denominator="min") == pytest.approx(1.0)


def test_mrr_uses_first_hit_and_zero_without_hit():
    assert M.mrr_at_k([[9, 8, 1], [7, 6, 5]], [{1}, {1}], 3) == pytest.approx((1 / 3 + 0) / 2)


def test_perfect_ranking_scores_one():
    ranked, relevant = [[1, 2, 3], [4, 5, 6]], [{1, 2, 3}, {4, 5, 6}]
    for fn in (M.precision_at_k, M.recall_at_k, M.ndcg_at_k, M.map_at_k, M.hit_rate_at_k,
               M.mrr_at_k, M.f1_at_k):
        assert fn(ranked, relevant, 3) == pytest.approx(1.0)


def test_no_hit_scores_zero():
    for fn in (M.precision_at_k, M.recall_at_k, M.ndcg_at_k, M.map_at_k, M.hit_rate_at_k,
               M.mrr_at_k, M.f1_at_k):
        assert fn([[1, 2]], [{3}], 2) == 0.0


def test_ndcg_matches_sklearn_on_random_lists():
    rng = np.random.default_rng(0)
    n_items, k = 30, 10
    for _ in range(20):
        scores = rng.random(n_items)
        rel = rng.random(n_items) < 0.2
        if not rel.any():
            continue
        ranked = [list(np.argsort(-scores, kind="stable"))]
        ours = M.ndcg_at_k(ranked, [set(np.flatnonzero(rel))], k)
        assert ours == pytest.approx(ndcg_score(rel[None].astype(float), scores[None], k=k))


def test_metrics_are_invariant_to_user_order():
    hits = torch.tensor([[1, 0, 1], [0, 0, 1], [1, 1, 1]], dtype=torch.bool)
    n_rel = torch.tensor([2, 5, 3])
    perm = torch.tensor([2, 0, 1])
    assert M.ranking_metrics(hits, n_rel) == pytest.approx(M.ranking_metrics(hits[perm], n_rel[perm]))


def test_per_user_values_with_reduce_none():
    hits = torch.tensor([[1, 0], [0, 1]], dtype=torch.bool)
    out = M.ranking_metrics(hits, torch.tensor([1, 1]), ["mrr", "precision"], reduce="none")
    assert out["mrr"].tolist() == [1.0, 0.5]
    assert out["precision"].tolist() == [0.5, 0.5]


@pytest.mark.parametrize("k", [0, -1, 2.5, True])
def test_bad_k_raises(k):
    with pytest.raises(ValueError, match="k must be a positive integer"):
        M.precision_at_k(RANKED, RELEVANT, k)


def test_empty_relevant_raises_clear_error():
    with pytest.raises(ValueError, match="no relevant items"):
        M.recall_at_k([[1, 2]], [set()], 2)
    with pytest.raises(ValueError, match="no users"):
        M.ranking_metrics(torch.zeros(0, 3, dtype=torch.bool), torch.zeros(0))


def test_shape_mismatch_and_unknown_metric_raise():
    with pytest.raises(ValueError, match="num_relevant must have shape"):
        M.ranking_metrics(torch.ones(2, 3, dtype=torch.bool), torch.ones(3))
    with pytest.raises(ValueError, match="unknown metric"):
        M.ranking_metrics(torch.ones(1, 3, dtype=torch.bool), torch.ones(1), ["auc"])
    with pytest.raises(ValueError, match="repeats an item"):
        M.precision_at_k([[1, 1]], [{1}], 2)


def test_coverage_and_average_popularity_by_hand():
    topk = torch.tensor([[0, 1], [1, 2]])
    assert M.catalogue_coverage(topk, 10) == pytest.approx(0.3)
    pop = np.array([0.5, 0.25, 0.1, 0.0])
    assert M.average_popularity(topk, pop) == pytest.approx((0.5 + 0.25 + 0.25 + 0.1) / 4)
    with pytest.raises(ValueError, match="outside"):
        M.catalogue_coverage(topk, 2)


def test_rmse_mae_against_sklearn_and_limits():
    rng = np.random.default_rng(1)
    y, p = rng.integers(1, 6, 50), rng.random(50) * 5
    assert M.rmse(y, p) == pytest.approx(math.sqrt(mean_squared_error(y, p)))
    assert M.mae(y, p) == pytest.approx(mean_absolute_error(y, p))
    assert M.rmse(y, y) == 0 and M.mae(y, y) == 0
    assert M.rmse([1, 2], [2, 4]) == pytest.approx(math.sqrt(2.5))


def test_rating_metric_errors():
    with pytest.raises(ValueError, match="shape"):
        M.rmse([1, 2], [1])
    with pytest.raises(ValueError, match="NaN"):
        M.mae([1.0], [float("nan")])
    with pytest.raises(ValueError, match="no ratings"):
        M.rmse([], [])
