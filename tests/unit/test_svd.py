"""SVD embedding: exact reconstruction of a low-rank binary matrix, agreement of the
normalised singular values with the eigenvalues of the normalised adjacency, and input
validation."""
import numpy as np
import pandas as pd
import pytest
import torch

from recsys_ref.graph import scipy_normalized_adjacency
from recsys_ref.models.classic.svd import SVDEmbedding


def _blocks():
    # two communities: users 0-3 like items 0-4, users 4-6 like items 5-8 -> rank 2,
    # plus user 7 who likes everything in block one -> still rank 2
    r = np.zeros((8, 9))
    r[:4, :5] = 1
    r[4:7, 5:] = 1
    r[7, :5] = 1
    u, i = np.nonzero(r)
    return r, pd.DataFrame({"user": u, "item": i})


def test_binary_svd_reconstructs_low_rank_matrix_exactly():
    r, df = _blocks()
    model = SVDEmbedding(embed_dim=2, matrix="binary").fit(df, 8, 9)
    scores = model.score(torch.arange(8)).double().numpy()
    assert np.allclose(scores, r, atol=1e-5)
    # singular values of the blocks are sqrt(5*5) and sqrt(3*4) (all-ones blocks)
    assert np.allclose(model.singular_values.numpy(), [5.0, np.sqrt(12.0)])


def test_normalised_singular_values_are_adjacency_eigenvalues():
    rng = np.random.default_rng(0)
    r = (rng.random((12, 15)) < 0.35).astype(float)
    r[np.arange(12), np.arange(12)] = 1
    r[0, 12:] = 1
    u, i = np.nonzero(r)
    df = pd.DataFrame({"user": u, "item": i})
    model = SVDEmbedding(embed_dim=4, matrix="normalized").fit(df, 12, 15)
    eig = np.linalg.eigvalsh(scipy_normalized_adjacency(df, 12, 15).toarray())
    top = np.sort(eig)[::-1][:4]
    assert np.allclose(model.singular_values.numpy(), top, atol=1e-8)
    assert np.isclose(top[0], 1.0)  # the largest eigenvalue of a normalised adjacency


def test_normalised_ranking_equals_degree_rescaled_reconstruction():
    _, df = _blocks()
    model = SVDEmbedding(embed_dim=2, matrix="normalized").fit(df, 8, 9)
    r = np.zeros((8, 9))
    r[df.user, df.item] = 1
    du, di = r.sum(1), r.sum(0)
    # rank 2 is exact: scores = D_U^{-1/2} R
    assert np.allclose(model.score(torch.arange(8)).numpy(), r / np.sqrt(du)[:, None], atol=1e-5)


def test_bad_input_raises():
    _, df = _blocks()
    with pytest.raises(ValueError, match="embed_dim"):
        SVDEmbedding(embed_dim=8).fit(df, 8, 9)
    with pytest.raises(ValueError, match="matrix"):
        SVDEmbedding(matrix="laplacian")
    with pytest.raises(ValueError, match="embed_dim"):
        SVDEmbedding(embed_dim=0)
    with pytest.raises(ValueError, match="0-based"):
        SVDEmbedding(embed_dim=2).fit(df.assign(user=df.user + 5), 8, 9)
