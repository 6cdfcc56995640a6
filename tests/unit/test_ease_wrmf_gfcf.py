"""EASE, WRMF and GF-CF: each against a closed form or hand example computed here, against
the library people use where one exists (cornac's EASE, implicit's ALS), and through the
Recommender interface (save/load, masking, fold-in, registry)."""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import torch

from recsys_ref.models import MODELS, Recommender, get_model
from recsys_ref.models.base import FOLD_IN_MODELS
from recsys_ref.models.classic import ease as ease_module
from recsys_ref.models.classic.ease import EASE
from recsys_ref.models.classic.wrmf import (WRMF, _blocks, als_step, confidence_matrix,
                                            wrmf_loss)
from recsys_ref.models.graph.gfcf import GFCF


def random_frame(num_users=15, num_items=12, density=0.3, seed=0):
    """A random binary matrix in which every user and item has at least one pair."""
    rng = np.random.default_rng(seed)
    r = rng.random((num_users, num_items)) < density
    r[np.arange(num_users), np.arange(num_users) % num_items] = True
    r[np.arange(num_items) % num_users, np.arange(num_items)] = True
    u, i = np.nonzero(r)
    return r.astype(float), pd.DataFrame({"user": u, "item": i})


def dense_gradient_users(r, conf, x, y, l2):
    """d/dX of sum_ui c_ui (p_ui - x_u.y_i)^2 + l2 (|X|^2 + |Y|^2), all pairs dense."""
    c = np.ones_like(r)
    c[r > 0] = conf[r > 0]
    return -2 * (c * (r - x @ y.T)) @ y + 2 * l2 * x


# ------------------------------------------------------------------------------- EASE
def test_ease_equals_per_column_ridge_regression_with_zero_diagonal():
    # the constrained problem solved column by column: item j regressed on the others
    r, df = random_frame()
    l2 = 3.0
    model = EASE(l2=l2).fit(df, 15, 12)
    b = model.B.numpy()
    expected = np.zeros((12, 12))
    for j in range(12):
        rest = np.delete(np.arange(12), j)
        xr = r[:, rest]
        expected[rest, j] = np.linalg.solve(xr.T @ xr + l2 * np.eye(11), xr.T @ r[:, j])
    assert np.allclose(b, expected, atol=1e-10)
    assert np.all(np.diag(b) == 0.0)
    assert np.allclose(model.score(torch.arange(15)).numpy(), r @ expected, atol=1e-5)


@pytest.mark.parametrize("nonnegative", [False, True])
def test_ease_equals_cornac(nonnegative):
    cornac = pytest.importorskip("cornac")
    r, df = random_frame(seed=1)
    triples = [(str(u), str(i), 1.0) for u, i in zip(df["user"], df["item"])]
    data = cornac.data.Dataset.from_uir(triples, seed=0)
    theirs = cornac.models.EASE(lamb=7.0, posB=nonnegative, verbose=False).fit(data)
    ours = EASE(l2=7.0, nonnegative=nonnegative).fit(df, 15, 12)
    uidx = [data.uid_map[str(u)] for u in range(15)]
    iidx = [data.iid_map[str(i)] for i in range(12)]
    assert np.allclose(theirs.B[np.ix_(iidx, iidx)], ours.B.numpy(), atol=1e-12)
    their_scores = np.stack([np.asarray(theirs.score(u)).ravel()[iidx] for u in uidx])
    assert np.allclose(their_scores, ours.score(torch.arange(15)).numpy(), atol=1e-6)
    assert (ours.B.numpy() >= 0).all() == nonnegative


def test_ease_refuses_large_catalogues_and_bad_l2(monkeypatch):
    _, df = random_frame()
    monkeypatch.setattr(ease_module, "MAX_ITEMS", 10)
    with pytest.raises(ValueError, match="ItemKNN"):
        EASE().fit(df, 15, 12)
    with pytest.raises(ValueError, match="positive"):
        EASE(l2=0.0)


# ------------------------------------------------------------------------------- WRMF
def test_als_step_solves_the_normal_equations():
    r, df = random_frame(seed=2)
    conf = confidence_matrix(df["user"].to_numpy(), df["item"].to_numpy(), None, 15, 12, 4.0)
    y = torch.randn(12, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    x = als_step(_blocks(conf, 3), y, 0.7, 15)
    grad = dense_gradient_users(r, conf.toarray(), x.numpy(), y.numpy(), 0.7)
    assert np.abs(grad).max() < 1e-10
    # the item step is the same with the roles swapped
    y2 = als_step(_blocks(conf.T.tocsr(), 3), x, 0.7, 12)
    grad_items = dense_gradient_users(r.T, conf.toarray().T, y2.numpy(), x.numpy(), 0.7)
    assert np.abs(grad_items).max() < 1e-10


def test_als_step_blocks_do_not_change_the_solution(monkeypatch):
    from recsys_ref.models.classic import wrmf
    _, df = random_frame(num_users=40, num_items=30, seed=3)
    conf = confidence_matrix(df["user"].to_numpy(), df["item"].to_numpy(), None, 40, 30, 2.0)
    y = torch.randn(30, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    one_block = als_step(_blocks(conf, 4), y, 0.5, 40)
    monkeypatch.setattr(wrmf, "_BLOCK_ENTRIES", 40)      # blocks of one to a few rows
    many = _blocks(conf, 4)
    assert len(many) > 5
    assert torch.allclose(als_step(many, y, 0.5, 40), one_block, atol=1e-12)


def test_wrmf_loss_matches_dense_objective_and_never_increases():
    r, df = random_frame(seed=4)
    model = WRMF(embed_dim=3, alpha=2.0, l2=0.3, num_iters=6, seed=0).fit(df, 15, 12)
    conf = confidence_matrix(df["user"].to_numpy(), df["item"].to_numpy(), None, 15, 12, 2.0)
    c = np.where(r > 0, conf.toarray(), 1.0)
    x, y = model.user_emb.numpy(), model.item_emb.numpy()
    dense = (c * (r - x @ y.T) ** 2).sum() + 0.3 * ((x ** 2).sum() + (y ** 2).sum())
    assert np.isclose(wrmf_loss(conf, model.user_emb, model.item_emb, 0.3), dense)
    assert np.isclose(model.loss_history[-1], dense)
    hist = np.array(model.loss_history)
    assert len(hist) == 2 * 6 + 1
    assert np.all(np.diff(hist) <= 1e-9 * hist[:-1])
    assert hist[-1] < 0.5 * hist[0]
    # the fit ends with a user step: the user gradient vanishes at the fitted factors
    assert np.abs(dense_gradient_users(r, conf.toarray(), x, y, 0.3)).max() < 1e-8


def test_wrmf_equals_implicit_als_started_from_the_same_factors():
    # implicit's ALS with the exact (Cholesky) solver, float64, alpha=1 on data 1 + a*r
    # (its confidence is alpha * data): the same sweeps (users, then items) from our
    # initial item factors give the same item factors; its recalculate_user gives our
    # final user step; its training loss is ours divided by sum(c) + U*I - nnz.
    pytest.importorskip("implicit")
    from implicit.cpu import _als
    from implicit.cpu.als import AlternatingLeastSquares
    _, df = random_frame(seed=5)
    model = WRMF(embed_dim=4, alpha=3.0, l2=0.5, num_iters=5, seed=1).fit(df, 15, 12)
    conf = confidence_matrix(df["user"].to_numpy(), df["item"].to_numpy(), None, 15, 12, 3.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)        # OpenBLAS thread advice
        als = AlternatingLeastSquares(factors=4, regularization=0.5, alpha=1.0,
                                      dtype=np.float64, use_cg=False, iterations=5,
                                      num_threads=1, random_state=0)
    als.item_factors = model.initial_item_factors(12).numpy().copy()
    als.user_factors = np.zeros((15, 4))
    als.fit(conf.astype(np.float32), show_progress=False)
    assert np.allclose(als.item_factors, model.item_emb.numpy(), atol=1e-10)
    users = als.recalculate_user(np.arange(15), conf)
    assert np.allclose(users, model.user_emb.numpy(), atol=1e-10)
    theirs = _als.calculate_loss(conf.astype(np.float32), model.user_emb.numpy(),
                                 model.item_emb.numpy(), 0.5, num_threads=1)
    norm = conf.data.sum() + 15 * 12 - conf.nnz
    assert np.isclose(model.loss_history[-1] / norm, theirs, rtol=1e-6)


def test_wrmf_weight_column_scales_the_confidence():
    # weight 2 everywhere with alpha a is binary data with alpha 2a
    _, df = random_frame(seed=6)
    weighted = WRMF(embed_dim=3, alpha=1.5, l2=0.4, num_iters=3).fit(
        df.assign(weight=2.0), 15, 12)
    binary = WRMF(embed_dim=3, alpha=3.0, l2=0.4, num_iters=3).fit(df, 15, 12)
    assert torch.allclose(weighted.user_emb, binary.user_emb, atol=1e-12)
    # a rating column is not a confidence: ignored
    rated = WRMF(embed_dim=3, alpha=3.0, l2=0.4, num_iters=3).fit(
        df.assign(rating=5.0), 15, 12)
    assert torch.equal(rated.user_emb, binary.user_emb)
    with pytest.raises(ValueError, match="> 0"):
        WRMF().fit(df.assign(weight=0.0), 15, 12)


def test_confidence_matrix_adds_repeated_weights_and_counts_binary_pairs_once():
    users, items = np.array([0, 0, 1]), np.array([2, 2, 0])
    conf = confidence_matrix(users, items, np.array([1.0, 3.0, 2.0]), 2, 3, 0.5).toarray()
    assert np.allclose(conf, [[0, 0, 1 + 0.5 * 4], [1 + 0.5 * 2, 0, 0]])
    binary = confidence_matrix(users, items, None, 2, 3, 0.5).toarray()
    assert np.allclose(binary, [[0, 0, 1.5], [1.5, 0, 0]])


def test_wrmf_is_deterministic_given_seed():
    _, df = random_frame(seed=7)
    a = WRMF(embed_dim=3, num_iters=2, seed=4).fit(df, 15, 12)
    b = WRMF(embed_dim=3, num_iters=2, seed=4).fit(df, 15, 12)
    c = WRMF(embed_dim=3, num_iters=2, seed=5).fit(df, 15, 12)
    assert torch.equal(a.score(torch.arange(15)), b.score(torch.arange(15)))
    assert not torch.equal(a.item_emb, c.item_emb)


# ------------------------------------------------------------------------------- GF-CF
def test_gfcf_linear_filter_on_a_hand_example():
    # R = [[1,1,0,0],[0,1,1,0],[1,0,1,1]]: user degrees 2,2,3, item degrees 2,2,2,1.
    # user 0: r R~^T = [1/2+1/2, 1/2, 1/sqrt6] = [1, 1/2, 1/sqrt6]; times R~:
    # item 0: 1/2 + 1/6, item 1: 1/2 + 1/4, item 2: 1/4 + 1/6, item 3: 1/sqrt(6*3)
    df = pd.DataFrame({"user": [0, 0, 1, 1, 2, 2, 2], "item": [0, 1, 1, 2, 0, 2, 3]})
    model = GFCF(alpha=0.0).fit(df, 3, 4)
    expected = [2 / 3, 3 / 4, 5 / 12, 1 / np.sqrt(18)]
    assert np.allclose(model.score([0])[0].numpy(), expected, atol=1e-6)
    assert model.components is None                    # alpha = 0: no SVD at all


@pytest.mark.parametrize("k", [3, 8])
def test_gfcf_ideal_filter_equals_dense_svd(k):
    r, df = random_frame(num_users=8, num_items=10, density=0.4, seed=8)
    model = GFCF(alpha=0.7, num_components=k).fit(df, 8, 10)
    du, di = r.sum(1), r.sum(0)
    r_norm = r / np.sqrt(du)[:, None] / np.sqrt(di)[None, :]
    _, s, vt = np.linalg.svd(r_norm)
    v = vt[:k].T
    assert np.allclose(model.singular_values, s[:k], atol=1e-10)
    ideal = (r / np.sqrt(di)[None, :]) @ v @ v.T * np.sqrt(di)[None, :]
    expected = r @ r_norm.T @ r_norm + 0.7 * ideal
    assert np.allclose(model.score(torch.arange(8)).numpy(), expected, atol=1e-5)
    with pytest.raises(ValueError, match="num_components"):
        GFCF(num_components=9).fit(df, 8, 10)


# ---------------------------------------------------------------------- the interface
def fitted():
    _, df = random_frame(seed=9)
    return df, [EASE(l2=2.0).fit(df, 15, 12),
                WRMF(embed_dim=3, alpha=2.0, l2=0.5, num_iters=3).fit(df, 15, 12),
                GFCF(alpha=0.5, num_components=4).fit(df, 15, 12)]


@pytest.mark.parametrize("index", range(3))
def test_save_load_round_trip(tmp_path, index):
    _, models = fitted()
    model = models[index]
    loaded = Recommender.load(model.save(tmp_path / "model.pt"))
    assert type(loaded) is type(model) and repr(loaded) == repr(model)
    users = torch.arange(15)
    assert torch.equal(loaded.score(users), model.score(users))
    assert torch.equal(loaded.recommend(users, 3), model.recommend(users, 3))


@pytest.mark.parametrize("index", range(3))
def test_recommend_masks_training_items(index):
    df, models = fitted()
    top = models[index].recommend(torch.arange(15), 4)
    seen = set(zip(df["user"], df["item"]))
    assert all((u, int(i)) not in seen for u in range(15) for i in top[u])


@pytest.mark.parametrize("index", range(3))
def test_fold_in_equals_the_score_of_a_training_user(index):
    df, models = fitted()
    model = models[index]
    assert type(model).__name__ in FOLD_IN_MODELS
    for user in (0, 7):
        items = df.loc[df["user"] == user, "item"].to_numpy()
        assert torch.allclose(model.score_items(items), model.score([user])[0], atol=1e-5)


def test_registry_names_and_defaults():
    for name, cls in (("ease", EASE), ("wrmf", WRMF), ("gfcf", GFCF)):
        assert MODELS[name].endswith(":" + cls.__name__) and get_model(name) is cls
        assert cls.name == name
        assert repr(cls()) == f"{cls.__name__}()"
    assert WRMF(l2=1.0).get_params()["l2"] == 1.0
