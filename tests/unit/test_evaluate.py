"""Full-ranking evaluation: masking, tie-breaking, batching, agreement with a brute force."""
import numpy as np
import pandas as pd
import pytest
import torch

from recsys_ref.protocol import metrics as M
from recsys_ref.protocol.evaluate import evaluate_ranking, interaction_matrix, topk_items


def _frame(pairs):
    return pd.DataFrame(pairs, columns=["user", "item"])


def test_interaction_matrix_is_binary_and_validates_indices():
    m = interaction_matrix(_frame([(0, 1), (0, 1), (1, 2)]), 2, 3)
    assert m.toarray().tolist() == [[0, 1, 0], [0, 0, 1]]
    with pytest.raises(ValueError, match="user index outside"):
        interaction_matrix(_frame([(5, 0)]), 2, 3)
    with pytest.raises(ValueError, match="item index outside"):
        interaction_matrix(_frame([(0, 3)]), 2, 3)
    with pytest.raises(ValueError, match="lacks column"):
        interaction_matrix(pd.DataFrame({"u": [0]}), 2, 3)


def test_topk_masks_excluded_items_and_breaks_ties_by_index():
    scores = torch.tensor([[1.0, 1.0, 1.0, 0.0], [0.0, 2.0, 2.0, 2.0]])
    exclude = interaction_matrix(_frame([(0, 0)]), 2, 4)
    top = topk_items(scores, 2, [0, 1], 4, exclude)
    assert top.tolist() == [[1, 2], [1, 2]]


def test_topk_is_identical_across_batch_sizes():
    rng = np.random.default_rng(0)
    scores = torch.tensor(rng.integers(0, 3, size=(37, 20)), dtype=torch.float32)  # many ties
    a = topk_items(scores, 5, np.arange(37), 20, batch_size=4)
    b = topk_items(scores, 5, np.arange(37), 20, batch_size=1000)
    assert torch.equal(a, b)


def test_topk_rejects_bad_input():
    s = torch.zeros(2, 3)
    with pytest.raises(ValueError, match="k must be a positive"):
        topk_items(s, 0, [0], 3)
    with pytest.raises(ValueError, match="exceeds the catalogue"):
        topk_items(s, 4, [0], 3)
    with pytest.raises(ValueError, match="NaN"):
        topk_items(torch.full((2, 3), float("nan")), 1, [0], 3)
    with pytest.raises(ValueError, match="returned shape"):
        topk_items(lambda u: torch.zeros(len(u), 5), 1, [0], 3)


def test_evaluate_ranking_matches_brute_force_python():
    rng = np.random.default_rng(42)
    nu, ni, k = 25, 40, 5
    train = _frame([(u, i) for u in range(nu) for i in rng.choice(ni, 6, replace=False)])
    test_pairs = []
    for u in range(nu - 3):  # three users without test items are skipped
        seen = set(train[train.user == u].item)
        free = [i for i in range(ni) if i not in seen]
        test_pairs += [(u, i) for i in rng.choice(free, 4, replace=False)]
    test = _frame(test_pairs)
    scores = rng.random((nu, ni))
    res = evaluate_ranking(scores, test, nu, ni, k, exclude=[train])
    ranked, relevant = [], []
    for u in sorted(test.user.unique()):
        seen = set(train[train.user == u].item)
        order = [i for i in np.argsort(-scores[u], kind="stable") if i not in seen][:k]
        ranked.append(order)
        relevant.append(set(test[test.user == u].item))
    assert res["precision"] == pytest.approx(M.precision_at_k(ranked, relevant, k))
    assert res["recall"] == pytest.approx(M.recall_at_k(ranked, relevant, k))
    assert res["ndcg"] == pytest.approx(M.ndcg_at_k(ranked, relevant, k))
    assert res["map"] == pytest.approx(M.map_at_k(ranked, relevant, k))
    assert res["mrr"] == pytest.approx(M.mrr_at_k(ranked, relevant, k))


def test_oracle_scores_give_perfect_metrics():
    test = _frame([(0, 1), (1, 0), (1, 2)])
    oracle = interaction_matrix(test, 2, 4).toarray()
    res = evaluate_ranking(oracle, test, 2, 4, k=2)
    assert res["ndcg"] == pytest.approx(1.0) and res["recall"] == pytest.approx(1.0)


def test_score_function_and_matrix_agree():
    rng = np.random.default_rng(3)
    mat = torch.tensor(rng.random((10, 15)), dtype=torch.float32)
    test = _frame([(u, (3 * u) % 15) for u in range(10)])
    a = evaluate_ranking(mat, test, 10, 15, 3)
    b = evaluate_ranking(lambda users: mat[users], test, 10, 15, 3)
    assert a == b


def test_empty_test_frame_raises():
    with pytest.raises(ValueError, match="no interactions"):
        evaluate_ranking(torch.zeros(2, 3), _frame([]).astype(int), 2, 3, 1)


@pytest.mark.parametrize("levels", [None, 3, 50])
def test_fast_topk_equals_full_stable_sort(levels):
    from recsys_ref.protocol.evaluate import _stable_topk
    g = torch.Generator().manual_seed(0)
    scores = torch.rand(64, 300, generator=g)
    if levels is not None:  # heavy ties, inside and across the cut
        scores = torch.floor(scores * levels)
    scores[0, :] = 1.0                                  # a row that is all ties
    scores[1, 5:] = float("-inf")                       # fewer finite items than k
    for k in (1, 10, 40):
        full = torch.sort(scores, dim=1, descending=True, stable=True).indices[:, :k]
        assert torch.equal(_stable_topk(scores, k), full)


# ---------------------------------------------------------------------------- per user, beyond
@pytest.fixture
def small_case():
    """25 users x 40 items, 6 training items each; users 22-24 have no test items."""
    rng = np.random.default_rng(7)
    nu, ni = 25, 40
    train = _frame([(u, int(i)) for u in range(nu) for i in rng.choice(ni, 6, replace=False)])
    test_pairs = []
    for u in range(nu - 3):
        seen = set(train[train.user == u].item)
        free = [i for i in range(ni) if i not in seen]
        test_pairs += [(u, int(i)) for i in rng.choice(free, 1 + u % 4, replace=False)]
    return train, _frame(test_pairs), rng.random((nu, ni)), nu, ni


def test_per_user_frame_rows_are_users_and_means_are_the_metrics(small_case):
    train, test, scores, nu, ni = small_case
    res, frame = evaluate_ranking(scores, test, nu, ni, 5, exclude=[train], per_user=True)
    assert frame.index.name == "user" and list(frame.index) == list(range(nu - 3))
    assert list(frame.columns) == list(M.RANKING_METRICS)
    assert all(frame.dtypes == np.float64)
    for name in M.RANKING_METRICS:
        assert frame[name].mean() == pytest.approx(res[name], rel=1e-12)
    assert res == evaluate_ranking(scores, test, nu, ni, 5, exclude=[train])
    # one row by hand: user 3's list, brute force
    seen = set(train[train.user == 3].item)
    ranked = [[i for i in np.argsort(-scores[3], kind="stable") if i not in seen][:5]]
    relevant = [set(test[test.user == 3].item)]
    assert frame.loc[3, "ndcg"] == pytest.approx(M.ndcg_at_k(ranked, relevant, 5))
    assert frame.loc[3, "recall"] == pytest.approx(M.recall_at_k(ranked, relevant, 5))


def test_per_user_and_return_topk_tuple_order(small_case):
    train, test, scores, nu, ni = small_case
    res, topk, users = evaluate_ranking(scores, test, nu, ni, 5, exclude=[train],
                                        metrics=["ndcg"], return_topk=True)
    res2, frame, topk2, users2 = evaluate_ranking(scores, test, nu, ni, 5, exclude=[train],
                                                  metrics=["ndcg"], return_topk=True,
                                                  per_user=True)
    assert res == res2 and torch.equal(topk, topk2) and np.array_equal(users, users2)
    assert np.array_equal(frame.index.to_numpy(), users) and list(frame.columns) == ["ndcg"]


def test_beyond_adds_the_four_measures_against_train(small_case):
    train, test, scores, nu, ni = small_case
    res, topk, _ = evaluate_ranking(scores, test, nu, ni, 5, exclude=[train], beyond=train,
                                    return_topk=True)
    expected = M.beyond_accuracy(topk, interaction_matrix(train, nu, ni))
    for key in ("coverage", "gini", "novelty", "diversity"):
        assert res[key] == expected[key]
    as_matrix = evaluate_ranking(scores, test, nu, ni, 5, exclude=[train],
                                 beyond=interaction_matrix(train, nu, ni))
    assert as_matrix == res
    with pytest.raises(ValueError, match="expected \\(num_users, num_items\\)"):
        evaluate_ranking(scores, test, nu, ni, 5, beyond=interaction_matrix(train, nu, ni).T)
    with pytest.raises(TypeError, match="training interactions"):
        evaluate_ranking(scores, test, nu, ni, 5, beyond=True)


def test_split_evaluate_passes_per_user_and_beyond_through(small_case):
    from recsys_ref.protocol.split import Split, evaluate
    train, test, scores, nu, ni = small_case
    split = Split.recommenders(pd.concat([train, test], ignore_index=True), seed=1,
                               num_users=nu, num_items=ni)
    res, frame = evaluate(scores, split, k=5, per_user=True, beyond=True)
    ref, ref_frame = evaluate_ranking(scores, split.test, nu, ni, 5, exclude=split.exclude(),
                                      per_user=True, beyond=split.train)
    assert res == ref and {"gini", "novelty", "diversity", "coverage"} <= set(res)
    pd.testing.assert_frame_equal(frame, ref_frame)
    assert "gini" not in evaluate(scores, split, k=5)


def test_split_evaluate_new_users_and_cold_items_options():
    from recsys_ref.protocol.split import Split, evaluate
    rng = np.random.default_rng(0)
    df = _frame([(u, int(i)) for u in range(20) for i in rng.choice(30, 10, replace=False)])
    scores = torch.tensor(rng.random((20, 30)))
    s = Split.new_users(df, user_frac=0.25, history_frac=0.5, seed=0, num_users=20,
                        num_items=30)
    res, frame = evaluate(scores, s, k=5, per_user=True, beyond=True)
    ref = evaluate_ranking(scores, s.test, 20, 30, 5, exclude=[s.history], beyond=s.train)
    assert res == ref and set(frame.index) == set(s.test.user)
    cold = Split.cold_items(df, cold_frac=0.2, seed=0, num_users=20, num_items=30)
    for option in ("per_user", "beyond"):
        with pytest.raises(TypeError, match=option):
            evaluate(scores, cold, k=5, **{option: True})
