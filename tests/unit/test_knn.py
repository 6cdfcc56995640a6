"""Tests of recsys_ref.models.classic.knn: similarities, shrinkage, baseline, kNN prediction and
ranking, against numbers worked out by hand, scikit-learn and brute-force loops."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch
from sklearn.metrics.pairwise import cosine_similarity as sk_cosine

from recsys_ref.models import MODELS, get_model
from recsys_ref.models.classic.knn import (
    Baseline,
    ItemKNN,
    UserKNN,
    adjusted_cosine_similarity,
    co_counts,
    cosine_similarity,
    fit_baselines,
    keep_top_k,
    top_k_cosine,
    pearson_similarity,
    shrink,
)

# The chapter's 3-user example (0 = not rated). u1 has not rated i2.
#        i0 i1 i2
R3 = np.array([[4, 3, 4],
               [3, 4, 0],
               [0, 0, 3]], dtype=float)


def frame_of(R: np.ndarray) -> pd.DataFrame:
    u, i = np.nonzero(R)
    return pd.DataFrame({"user": u, "item": i, "rating": R[u, i]})


def random_ratings(num_users=9, num_items=7, density=0.6, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    R = rng.integers(1, 6, size=(num_users, num_items)).astype(float)
    R[rng.random(R.shape) > density] = 0.0
    R[np.arange(num_users), rng.integers(0, num_items, num_users)] = 3.0  # no empty user
    return R


# ------------------------------------------------------------------ hand-worked example
def test_item_cosine_of_three_user_example_matches_paper():
    # i0.i1 = 4*3 + 3*4 = 24, |i0| = |i1| = |i2| = 5  ->  24/25, 16/25, 12/25
    S = cosine_similarity(sp.csr_matrix(R3))
    assert S[0, 1] == pytest.approx(0.96)
    assert S[0, 2] == pytest.approx(0.64)
    assert S[1, 2] == pytest.approx(0.48)
    assert np.allclose(S, S.T)


def test_user_cosine_of_three_user_example_matches_paper():
    S = cosine_similarity(sp.csr_matrix(R3.T))
    assert S[0, 1] == pytest.approx(24 / (5 * math.sqrt(41)))  # 0.7497
    assert S[0, 2] == pytest.approx(4 / math.sqrt(41))         # 0.6247
    assert S[1, 2] == pytest.approx(0.0)


def test_pearson_of_three_user_example_matches_paper():
    # item means 3.5 each; i0, i1 co-rated by u0, u1: (0.5, -0.5) vs (-0.5, 0.5) -> -1;
    # i0, i2 co-rated by u0 only: +1 from a single user
    S = pearson_similarity(sp.csr_matrix(R3))
    assert S[0, 1] == pytest.approx(-1.0)
    assert S[0, 2] == pytest.approx(1.0)


def test_adjusted_cosine_of_three_user_example_matches_paper():
    # user means 11/3, 7/2, 3; i0,i1 over u0,u1: (-2/9 - 1/4) / sqrt(13/36 * 25/36)
    S = adjusted_cosine_similarity(sp.csr_matrix(R3))
    assert S[0, 1] == pytest.approx(-17 / (5 * math.sqrt(13)))  # -0.9430
    assert S[0, 2] == pytest.approx(1.0)
    assert S[1, 2] == pytest.approx(-1.0)


def test_shrinkage_halves_a_similarity_from_one_co_rater():
    S = pearson_similarity(sp.csr_matrix(R3))
    N = co_counts(sp.csr_matrix(R3))
    assert N[0, 2] == 1 and N[0, 1] == 2
    Ss = shrink(S, N, shrinkage=1.0)
    assert Ss[0, 2] == pytest.approx(0.5)        # 1 * 1/(1+1)
    assert Ss[0, 1] == pytest.approx(-2 / 3)     # -1 * 2/(2+1)


def test_item_knn_prediction_of_three_user_example_matches_paper():
    # with huge baseline regularisation b_ui = mu, and mu cancels:
    # r(u1, i2) = (0.64 * 3 + 0.48 * 4) / (0.64 + 0.48) = 24/7
    big = 1e12
    model = ItemKNN(k=2, similarity="cosine", shrinkage=0, implicit=False,
                    reg_user=big, reg_item=big).fit(frame_of(R3), 3, 3)
    assert model.predict([1], [2])[0] == pytest.approx(24 / 7)
    model1 = ItemKNN(k=1, similarity="cosine", shrinkage=0, implicit=False,
                     reg_user=big, reg_item=big).fit(frame_of(R3), 3, 3)
    assert model1.predict([1], [2])[0] == pytest.approx(3.0)  # only i0 (0.64 > 0.48)


def test_user_knn_prediction_of_three_user_example_matches_paper():
    # raters of i2: u0 (4, sim 0.7497) and u2 (3, sim 0 -> no weight): prediction 4
    big = 1e12
    model = UserKNN(k=2, similarity="cosine", shrinkage=0, implicit=False,
                    reg_user=big, reg_item=big).fit(frame_of(R3), 3, 3)
    assert model.predict([1], [2])[0] == pytest.approx(4.0)


# ----------------------------------------------------------------- library agreement
def test_cosine_matches_sklearn_on_random_sparse_matrix():
    R = random_ratings(30, 12, density=0.3, seed=1)
    R[:, 5] = 0.0  # an empty column: similarity 0 with everything
    ours = cosine_similarity(sp.csr_matrix(R))
    ref = sk_cosine(R.T)
    ref[5, :] = ref[:, 5] = 0.0
    np.testing.assert_allclose(ours, ref, atol=1e-12)


def test_similarity_functions_do_not_modify_their_input():
    X = sp.csr_matrix(R3)
    for fn in (cosine_similarity, co_counts, pearson_similarity, adjusted_cosine_similarity):
        fn(X)
        np.testing.assert_array_equal(X.toarray(), R3)


def test_dense_input_gives_same_similarity_as_sparse():
    R = random_ratings(seed=2)
    np.testing.assert_allclose(pearson_similarity(R), pearson_similarity(sp.csr_matrix(R)))


# --------------------------------------------------------------- brute-force references
def brute_corated(R: np.ndarray, centred: np.ndarray) -> np.ndarray:
    n = R.shape[1]
    S = np.zeros((n, n))
    for i in range(n):
        for j in range(n):
            both = (R[:, i] != 0) & (R[:, j] != 0)
            num = sum(centred[u, i] * centred[u, j] for u in np.flatnonzero(both))
            di = math.sqrt(sum(centred[u, i] ** 2 for u in np.flatnonzero(both)))
            dj = math.sqrt(sum(centred[u, j] ** 2 for u in np.flatnonzero(both)))
            S[i, j] = num / (di * dj) if di > 0 and dj > 0 else 0.0
    return S


def test_pearson_and_adjusted_cosine_match_brute_force_loops():
    R = random_ratings(seed=3)
    obs = R != 0
    col_mean = np.array([R[obs[:, j], j].mean() for j in range(R.shape[1])])
    row_mean = np.array([R[u, obs[u]].mean() for u in range(R.shape[0])])
    np.testing.assert_allclose(pearson_similarity(R), brute_corated(R, R - col_mean[None, :]), atol=1e-12)
    np.testing.assert_allclose(adjusted_cosine_similarity(R), brute_corated(R, R - row_mean[:, None]),
                               atol=1e-12)


@pytest.mark.parametrize("cls", [ItemKNN, UserKNN])
@pytest.mark.parametrize("similarity", ["cosine", "pearson", "adjusted_cosine", "pearson_baseline"])
def test_knn_with_baseline_matches_brute_force(cls, similarity):
    R = random_ratings(seed=4)
    k, lam = 3, 2.0
    model = cls(k=k, similarity=similarity, shrinkage=lam, implicit=False).fit(frame_of(R), *R.shape)
    b = model.baseline
    obs = R != 0
    bui = b.mu + b.b_user[:, None] + b.b_item[None, :]
    # brute-force similarity on the compared entities (columns of P)
    P, Bp, Bu = (R, obs, bui) if cls is ItemKNN else (R.T, obs.T, bui.T)
    if similarity == "cosine":
        S = sk_cosine(P.T)
    else:
        if similarity == "pearson":
            m = np.array([P[Bp[:, j], j].mean() for j in range(P.shape[1])])[None, :]
        elif similarity == "adjusted_cosine":
            m = np.array([P[r, Bp[r]].mean() for r in range(P.shape[0])])[:, None]
        else:
            m = Bu
        S = brute_corated(P, P - m)
    n = Bp.T.astype(float) @ Bp.astype(float)
    S = S * n / (n + lam)
    np.fill_diagonal(S, 0.0)
    np.testing.assert_allclose(model.sim, S, atol=1e-12)
    # brute-force prediction for every (user, item) pair
    U, I = R.shape
    for u in range(U):
        for i in range(I):
            if cls is ItemKNN:
                cands = [(S[i, j], R[u, j] - bui[u, j]) for j in range(I) if obs[u, j]]
            else:
                cands = [(S[u, v], R[v, i] - bui[v, i]) for v in range(U) if obs[v, i]]
            cands = sorted(cands, key=lambda t: -t[0])[:k]
            w = sum(max(s, 0) for s, _ in cands)
            adj = sum(max(s, 0) * r for s, r in cands) / w if w > 0 else 0.0
            expect = np.clip(bui[u, i] + adj, 1, 5)
            assert model.predict([u], [i])[0] == pytest.approx(expect, abs=1e-10), (u, i)


@pytest.mark.parametrize("cls", [ItemKNN, UserKNN])
def test_implicit_scores_match_brute_force_sum_over_top_k_neighbours(cls):
    R = random_ratings(12, 9, density=0.4, seed=5)
    X = (R != 0).astype(float)
    k = 3
    model = cls(k=k, shrinkage=1.0).fit(frame_of(R), *R.shape)
    P = X if cls is ItemKNN else X.T
    S = sk_cosine(P.T)
    n = P.T @ P
    S = S * n / (n + 1.0)
    np.fill_diagonal(S, 0.0)
    U, I = X.shape
    expect = np.zeros((U, I))
    for u in range(U):
        for i in range(I):
            if cls is ItemKNN:
                nbrs = np.argsort(-S[i], kind="stable")[:k]
                expect[u, i] = sum(S[i, j] for j in nbrs if X[u, j] and S[i, j] > 0)
            else:
                nbrs = np.argsort(-S[u], kind="stable")[:k]
                expect[u, i] = sum(S[u, v] for v in nbrs if X[v, i] and S[u, v] > 0)
    got = model.score(torch.arange(U)).numpy()
    np.testing.assert_allclose(got, expect, atol=1e-6)


def test_keep_top_k_keeps_k_largest_positive_per_row():
    S = np.array([[0.0, 0.9, 0.1, 0.5],
                  [0.9, 0.0, -0.2, 0.3],
                  [0.1, -0.2, 0.0, -0.4]])
    out = keep_top_k(S, 2).toarray()
    np.testing.assert_allclose(out, [[0, 0.9, 0, 0.5], [0.9, 0, 0, 0.3], [0.1, 0, 0, 0]])


def dense_top_k_reference(X: np.ndarray, k: int, lam: float) -> np.ndarray:
    """Shrunk cosine between columns with numpy, diagonal 0, then per row the k largest
    (ties: lower column, by a stable sort), non-positive dropped."""
    n = X.T @ X
    d = np.sqrt(np.diag(n))
    with np.errstate(invalid="ignore", divide="ignore"):
        S = np.where(np.outer(d, d) > 0, n / np.outer(d, d), 0.0)
    S = S * n / (n + lam) if lam > 0 else S
    np.fill_diagonal(S, 0.0)
    out = np.zeros_like(S)
    for i in range(S.shape[0]):
        top = np.argsort(-S[i], kind="stable")[:k]
        out[i, top] = np.where(S[i, top] > 0, S[i, top], 0.0)
    return out


@pytest.mark.parametrize("block_size", [1, 3, 7, None])
@pytest.mark.parametrize("k,lam", [(1, 0.0), (3, 0.0), (4, 2.0), (50, 1.0)])
def test_blocked_sparse_top_k_equals_dense_reference(block_size, k, lam):
    rng = np.random.default_rng(11)
    X = (rng.random((25, 17)) < 0.3).astype(float)
    X[:, 16] = X[:, 15]              # identical columns: exact ties everywhere
    X[:, 3] = 0.0                    # an empty column
    got = top_k_cosine(sp.csr_matrix(X), k, lam, block_size=block_size)
    assert isinstance(got, sp.csr_matrix) and (np.diff(got.indptr) <= k).all()
    np.testing.assert_array_equal(got.toarray(), dense_top_k_reference(X, k, lam))


def test_top_k_ties_keep_the_lower_columns():
    # column 0 co-occurs equally with columns 1, 2, 3 (same cosine): k=2 keeps 1 and 2
    X = np.array([[1, 1, 1, 1]], dtype=float)
    got = top_k_cosine(X, 2).toarray()
    np.testing.assert_array_equal(got[0], [0, 1, 1, 0])
    np.testing.assert_array_equal(got[3], [1, 1, 0, 0])


def test_item_knn_stores_sparse_top_k_and_no_dense_similarity():
    R = random_ratings(30, 20, density=0.3, seed=12)
    model = ItemKNN(k=4).fit(frame_of(R), *R.shape)
    assert model.sim is None and sp.issparse(model.neighbours)
    assert (np.diff(model.neighbours.indptr) <= 4).all()


# ----------------------------------------------------------------------------- baseline
def test_baselines_converge_to_least_squares_solution():
    rng = np.random.default_rng(6)
    U, I, n = 6, 5, 22
    pairs = rng.choice(U * I, size=n, replace=False)
    users, items = pairs // I, pairs % I
    r = rng.integers(1, 6, size=n).astype(float)
    lam_u, lam_i = 2.0, 3.0
    mu, bu, bi = fit_baselines(users, items, r, U, I, lam_u, lam_i, num_iters=500)
    # independent: ridge regression of r - mu on one-hot user and item indicators
    A = np.zeros((n, U + I))
    A[np.arange(n), users] = 1.0
    A[np.arange(n), U + items] = 1.0
    reg = np.diag([lam_u] * U + [lam_i] * I)
    theta = np.linalg.solve(A.T @ A + reg, A.T @ (r - r.mean()))
    assert mu == pytest.approx(r.mean())
    np.testing.assert_allclose(np.concatenate([bu, bi]), theta, atol=1e-8)


def test_baseline_one_sweep_matches_paper():
    # mu = 21/6 = 3.5; sweep 1 (b_i = 0): b_u = sum(r - mu) / (1 + n_u), then
    # b_i = sum(r - mu - b_u) / (1 + n_i)
    mu, bu, bi = fit_baselines(*np.nonzero(R3), R3[np.nonzero(R3)], 3, 3,
                               reg_user=1.0, reg_item=1.0, num_iters=1)
    assert mu == pytest.approx(3.5)
    assert bu[0] == pytest.approx(0.125)     # (11 - 10.5) / 4
    assert bu[1] == pytest.approx(0.0)       # (7 - 7) / 3
    assert bu[2] == pytest.approx(-0.25)     # (3 - 3.5) / 2
    assert bi[2] == pytest.approx(1 / 24)    # ((4 - 3.5 - 0.125) + (3 - 3.5 + 0.25)) / 3


def test_baseline_predictions_are_clipped_to_rating_range():
    # R3 holds ratings 3 and 4 only: by default predictions stay in [3, 4]
    model = Baseline(reg_user=0, reg_item=0, num_iters=20).fit(frame_of(R3), 3, 3)
    p = model.predict(np.repeat(np.arange(3), 3), np.tile(np.arange(3), 3))
    assert p.min() >= 3 and p.max() <= 4
    wide = Baseline(reg_user=0, reg_item=0, num_iters=20, rating_range=(1, 5))
    q = wide.fit(frame_of(R3), 3, 3).predict(np.repeat(np.arange(3), 3), np.tile(np.arange(3), 3))
    assert q.min() >= 1 and q.max() <= 5 and (q != p).any()


# ------------------------------------------------------------------------- interface
def test_registered_in_models():
    assert MODELS["itemknn"].endswith(":ItemKNN") and MODELS["userknn"].endswith(":UserKNN")
    assert get_model("itemknn") is ItemKNN and get_model("userknn") is UserKNN


def test_recommend_excludes_training_items():
    R = random_ratings(10, 8, density=0.3, seed=7)
    R[:, :2] = 0.0  # every user has at least 2 unseen items
    R[0, 0] = 5.0
    model = ItemKNN(k=3).fit(frame_of(R), *R.shape)
    top = model.recommend(torch.arange(10), k=2)
    for u in range(10):
        assert not set(top[u].tolist()) & set(np.flatnonzero(R[u]).tolist())


def test_bad_arguments_raise_clear_errors():
    with pytest.raises(ValueError, match="unknown similarity"):
        ItemKNN(similarity="jaccard")
    with pytest.raises(ValueError, match="positive integer"):
        ItemKNN(k=0)
    with pytest.raises(ValueError, match="needs ratings"):
        ItemKNN(similarity="pearson", implicit=True)
    with pytest.raises(ValueError, match="predicts no ratings"):
        ItemKNN().fit(frame_of(R3), 3, 3).predict([0], [0])
    with pytest.raises(ValueError, match="'rating' column"):
        ItemKNN(implicit=False).fit(frame_of(R3).drop(columns="rating"), 3, 3)
    with pytest.raises(ValueError, match="shrinkage"):
        shrink(np.eye(2), np.eye(2), -1.0)
