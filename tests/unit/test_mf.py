"""Biased MF: hand gradients against autograd, the vectorised ALS step against a per-row
solve, recovery of a planted low-rank rating matrix, and input validation."""
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch

from recsys_ref.models.classic.mf import BiasedMF, _als_half_step, mf_gradients, mf_loss


def _tiny():
    g = torch.Generator().manual_seed(0)
    users = torch.tensor([0, 0, 1, 2, 2, 2])
    items = torch.tensor([0, 3, 1, 0, 2, 3])
    ratings = torch.tensor([5.0, 3.0, 4.0, 1.0, 2.0, 5.0], dtype=torch.float64)
    params = {
        "user_bias": torch.randn(3, generator=g, dtype=torch.float64),
        "item_bias": torch.randn(4, generator=g, dtype=torch.float64),
        "user_factors": torch.randn(3, 2, generator=g, dtype=torch.float64),
        "item_factors": torch.randn(4, 2, generator=g, dtype=torch.float64),
    }
    return users, items, ratings, params


def test_hand_gradients_match_autograd():
    users, items, ratings, params = _tiny()
    leaves = {k: v.clone().requires_grad_(True) for k, v in params.items()}
    args = (3.2, leaves["user_bias"], leaves["item_bias"], leaves["user_factors"], leaves["item_factors"])
    mf_loss(*args, users, items, ratings, reg=0.3, bias_reg=0.05).backward()
    hand = mf_gradients(3.2, *params.values(), users, items, ratings, reg=0.3, bias_reg=0.05)
    for name, leaf in leaves.items():
        assert torch.allclose(hand[name], leaf.grad, atol=1e-12), name


def test_gradient_of_a_single_rating_by_hand():
    # one rating r=4, mu=3, b_u=b_i=0, p=(1,0), q=(2,1): r_hat=5, e=-1
    zero = torch.zeros(1, dtype=torch.float64)
    p = torch.tensor([[1.0, 0.0]], dtype=torch.float64)
    q = torch.tensor([[2.0, 1.0]], dtype=torch.float64)
    idx = torch.tensor([0])
    g = mf_gradients(3.0, zero, zero, p, q, idx, idx, torch.tensor([4.0], dtype=torch.float64),
                     reg=0.5, bias_reg=0.0)
    # dL/dp = -e q + reg p = (2, 1) + (0.5, 0); dL/db_u = -e = 1
    assert torch.allclose(g["user_factors"], torch.tensor([[2.5, 1.0]], dtype=torch.float64))
    assert torch.allclose(g["user_bias"], torch.tensor([1.0], dtype=torch.float64))


def test_als_step_matches_per_row_ridge_solve():
    rng = np.random.default_rng(1)
    dense = (rng.random((5, 7)) < 0.5).astype(np.float64)
    dense[0, 0] = 1.0
    pattern = sp.csr_matrix(dense)
    resid = pattern.multiply(rng.normal(size=(5, 7))).tocsr()
    other = torch.as_tensor(rng.normal(size=(7, 3)))
    bias, factors = _als_half_step(pattern, resid, other, reg=0.2, bias_reg=0.05)
    x = np.hstack([np.ones((7, 1)), other.numpy()])
    for r in range(5):
        cols = pattern[r].indices
        n = max(len(cols), 1)
        a = x[cols].T @ x[cols] + n * np.diag([0.05, 0.2, 0.2, 0.2])
        theta = np.linalg.solve(a, x[cols].T @ resid[r, cols].toarray().ravel())
        assert np.allclose(theta[0], bias[r].item(), atol=1e-5)
        assert np.allclose(theta[1:], factors[r].numpy(), atol=1e-5)


def test_recovers_planted_low_rank_ratings():
    rng = np.random.default_rng(0)
    num_users, num_items, rank = 60, 80, 2
    truth = (3.0 + rng.normal(0, 0.3, (num_users, 1)) + rng.normal(0, 0.3, (1, num_items))
             + rng.normal(size=(num_users, rank)) @ rng.normal(size=(rank, num_items)) * 0.6)
    observed = rng.random(truth.shape) < 0.5
    u, i = np.nonzero(np.ones_like(truth))
    df = pd.DataFrame({"user": u, "item": i, "rating": truth[u, i]})
    train, test = df[observed[u, i]], df[~observed[u, i]]
    model = BiasedMF(embed_dim=rank, reg=1e-3, bias_reg=1e-3, num_epochs=40, clip=False, seed=0)
    model.fit(train, num_users, num_items)
    err = model.evaluate(test)["rmse"]
    # bound: 5 % of the error of the best constant predictor (the test std)
    bound = 0.05 * test["rating"].std(ddof=0)
    assert err < bound, (err, bound)
    assert model.history["train_rmse"].iloc[-1] < model.history["train_rmse"].iloc[0]


def test_predictions_are_clipped_to_training_range():
    df = pd.DataFrame({"user": [0, 0, 1, 1], "item": [0, 1, 0, 2], "rating": [1, 5, 5, 3]})
    model = BiasedMF(embed_dim=2, num_epochs=3).fit(df, 2, 3)
    pred = model.predict(np.array([0, 1, 1]), np.array([2, 1, 2]))
    assert pred.min() >= 1 and pred.max() <= 5
    assert model.score(torch.tensor([0, 1])).shape == (2, 3)


def test_bad_input_raises():
    df = pd.DataFrame({"user": [0, 1], "item": [0, 1]})
    with pytest.raises(ValueError, match="rating"):
        BiasedMF().fit(df, 2, 2)
    dup = pd.DataFrame({"user": [0, 0], "item": [1, 1], "rating": [3, 4]})
    with pytest.raises(ValueError, match="duplicate"):
        BiasedMF().fit(dup, 2, 2)
    with pytest.raises(ValueError, match="reg"):
        BiasedMF(reg=0.0)
    with pytest.raises(ValueError, match="embed_dim"):
        BiasedMF(embed_dim=0)
    with pytest.raises(RuntimeError, match="not fitted"):
        BiasedMF().predict([0], [0])
