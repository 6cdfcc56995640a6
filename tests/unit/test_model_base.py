"""Tests of recsys_ref.models.base (input check, repr, save/load, original ids, fold-in)
and of the registry helper check_params, on the classic models."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch

from recsys_ref.models import check_params, get_model
from recsys_ref.models.base import Recommender, check_fit_frame
from recsys_ref.models.classic.content import ContentBased
from recsys_ref.models.classic.hybrid import SwitchingHybrid, WeightedHybrid
from recsys_ref.models.classic.knn import Baseline, ItemKNN, UserKNN
from recsys_ref.models.classic.mf import BiasedMF, mf_gradients
from recsys_ref.models.classic.popularity import Popularity
from recsys_ref.models.classic.svd import SVDEmbedding

ITEMS = pd.DataFrame({
    "title": ["Star Wars (1977)", "Star Trek (1994)", "Toy Story (1995)",
              "Toy Soldiers (1991)", "Wars of the Roses (1989)", "Heat (1995)"],
    "genres": [["Action", "Sci-Fi"], ["Action", "Sci-Fi"], ["Animation", "Comedy"],
               ["Action"], ["Comedy", "Drama"], ["Action", "Crime"]],
})


def ratings_frame(num_users=12, num_items=6, per_user=3, seed=0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = [(u, int(i), float(rng.integers(1, 6))) for u in range(num_users)
            for i in rng.choice(num_items, per_user, replace=False)]
    return pd.DataFrame(rows, columns=["user", "item", "rating"])


def fitted_models() -> list[Recommender]:
    df = ratings_frame()
    valid = ratings_frame(seed=9).merge(df[["user", "item"]], how="left", indicator=True)
    valid = valid[valid["_merge"] == "left_only"].drop(columns="_merge")
    return [
        Popularity().fit(df, 12, 6),
        Baseline().fit(df, 12, 6),
        ItemKNN(k=3).fit(df, 12, 6),
        UserKNN(k=3, shrinkage=1.0).fit(df, 12, 6),
        ItemKNN(k=3, similarity="pearson_baseline", implicit=False).fit(df, 12, 6),
        BiasedMF(embed_dim=2, num_epochs=2).fit(df, 12, 6, valid=df.iloc[:5]),
        SVDEmbedding(embed_dim=2, matrix="normalized").fit(df, 12, 6),
        ContentBased(items=ITEMS, use_titles=True).fit(df, 12, 6),
        WeightedHybrid(alpha=None, items=ITEMS, alphas=(0.0, 1.0), k_tune=2,
                       cf_params={"k": 3}).fit(df, 12, 6, valid=valid),
        SwitchingHybrid(min_user_history=2, items=ITEMS).fit(df, 12, 6),
    ]


# --------------------------------------------------------------------- input check
def test_nan_rating_is_refused_naming_the_row():
    df = ratings_frame()
    df.loc[4, "rating"] = np.nan
    for model in (Baseline(), ItemKNN(implicit=False), BiasedMF(), ItemKNN(), Popularity()):
        with pytest.raises(ValueError, match=r"'rating' is NaN at rows \[4\]"):
            model.fit(df, 12, 6)


def test_nan_id_is_refused_naming_the_row():
    df = ratings_frame().astype({"user": float})
    df.loc[7, "user"] = np.nan
    with pytest.raises(ValueError, match=r"'user' is NaN at rows \[7\]"):
        ItemKNN().fit(df, 12, 6)


def test_string_ids_point_to_from_frame():
    df = pd.DataFrame({"user": ["ann", "bob"], "item": [0, 1], "rating": [3.0, 4.0]})
    with pytest.raises(TypeError, match="from_frame"):
        Popularity().fit(df, 2, 2)


def test_index_outside_range_names_the_rows():
    df = ratings_frame()
    with pytest.raises(ValueError, match=r"item index outside 0\.\.4 at rows"):
        ItemKNN().fit(df, 12, 5)


def test_rating_models_refuse_repeated_pairs_implicit_ones_accept_them():
    df = pd.concat([ratings_frame(), ratings_frame().iloc[:1]], ignore_index=True)
    for model in (Baseline(), ItemKNN(implicit=False), BiasedMF()):
        with pytest.raises(ValueError, match="duplicate"):
            model.fit(df, 12, 6)
    ItemKNN(k=2).fit(df, 12, 6)          # binary: a repeated pair is one pair


def test_check_fit_frame_returns_arrays():
    users, items, r = check_fit_frame(ratings_frame(), 12, 6)
    assert users.dtype == np.int64 and items.dtype == np.int64 and r.dtype == np.float64
    assert check_fit_frame(ratings_frame().drop(columns="rating"), 12, 6)[2] is None


def test_play_counts_are_clipped_to_their_own_range_not_1_to_5():
    # two users x two items, counts 10..400; baseline with no regularisation fits exactly
    df = pd.DataFrame({"user": [0, 0, 1, 1], "item": [0, 1, 0, 1],
                       "rating": [10.0, 30.0, 200.0, 400.0]})
    model = Baseline(reg_user=0, reg_item=0, num_iters=200).fit(df, 2, 2)
    assert model.clip_range == (10.0, 400.0)
    pred = model.predict([1], [1])[0]
    assert 200 < pred <= 400             # the old (1, 5) clip returned 5
    fixed = Baseline(rating_range=(1, 5)).fit(df, 2, 2)
    assert fixed.predict([1], [1])[0] == 5.0


# ---------------------------------------------------------------------------- repr
def test_repr_shows_only_parameters_that_differ_and_fitted_sizes():
    assert repr(ItemKNN()) == "ItemKNN()"
    assert repr(ItemKNN(k=50, shrinkage=10.0)) == "ItemKNN(k=50)"
    assert repr(UserKNN(shrinkage=10.0)) == "UserKNN(shrinkage=10.0)"
    assert repr(ItemKNN(k=5).fit(ratings_frame(), 12, 6)) == "ItemKNN(12x6, k=5)"
    assert repr(BiasedMF(reg=0.5, seed=3)) == "BiasedMF(reg=0.5, seed=3)"
    assert repr(ContentBased(items=ITEMS, weighting="binary")) == "ContentBased(weighting='binary')"
    assert repr(WeightedHybrid(alpha=None, items=ITEMS)) == "WeightedHybrid(alpha=None)"


def test_get_params_reads_init_arguments():
    p = SVDEmbedding(embed_dim=4).get_params()
    assert p == {"embed_dim": 4, "matrix": "normalized", "seed": 0}


# --------------------------------------------------------------------- save / load
@pytest.mark.parametrize("index", range(10))
def test_fitted_model_round_trips_and_scores_identically(tmp_path, index):
    model = fitted_models()[index]
    path = model.save(tmp_path / "sub" / "model.pt")
    assert [p.name for p in path.parent.iterdir()] == ["model.pt"]   # no temp file left
    loaded = Recommender.load(path)
    assert type(loaded) is type(model) and repr(loaded) == repr(model)
    users = torch.arange(12)
    assert torch.equal(loaded.score(users), model.score(users))
    assert torch.equal(loaded.recommend(users, 2), model.recommend(users, 2))
    assert loaded.get_params().keys() == model.get_params().keys()


def test_load_checks_the_class_and_the_format(tmp_path):
    path = Popularity().fit(ratings_frame(), 12, 6).save(tmp_path / "pop.pt")
    with pytest.raises(TypeError, match="not a ItemKNN"):
        ItemKNN.load(path)
    torch.save({"weights": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a model saved"):
        Recommender.load(tmp_path / "other.pt")


def test_unsaveable_attribute_names_the_hooks(tmp_path):
    model = Popularity().fit(ratings_frame(), 12, 6)
    model.module = torch.nn.Linear(2, 2)
    with pytest.raises(TypeError, match="_get_state/_set_state"):
        model.save(tmp_path / "m.pt")
    assert not list(tmp_path.iterdir())


# ---------------------------------------------------------------------- original ids
def test_recommend_in_original_ids():
    df = ratings_frame()
    model = Popularity().fit(df, 12, 6)
    user_ids = np.array([f"u{u}" for u in range(12)])
    item_ids = np.array([100 + i for i in range(6)])
    top = model.recommend(torch.tensor([3, 0]), 2)
    got = model.recommend(["u3", "u0"], 2, id_map=(user_ids, item_ids))
    np.testing.assert_array_equal(got, item_ids[top.numpy()])

    class Data:                        # any object with user_ids / item_ids
        pass
    data = Data()
    data.user_ids, data.item_ids = user_ids, item_ids
    np.testing.assert_array_equal(model.set_id_map(data).recommend(["u3", "u0"], 2, id_map=True),
                                  got)
    with pytest.raises(ValueError, match="not in the map"):
        model.recommend(["nobody"], 2, id_map=True)


def test_exclude_accepts_a_frame_a_matrix_or_a_list():
    df = ratings_frame()
    model = Popularity().fit(df, 12, 6)
    extra = pd.DataFrame({"user": [0], "item": [int(model.recommend([0], 1)[0, 0])]})
    mat = sp.csr_matrix(([1.0], ([0], [extra["item"][0]])), shape=(12, 6))
    a = model.recommend([0], 2, exclude=extra)
    assert extra["item"][0] not in a.tolist()[0]
    assert torch.equal(a, model.recommend([0], 2, exclude=[extra]))
    assert torch.equal(a, model.recommend([0], 2, exclude=mat))
    with pytest.raises(TypeError, match="exclude"):
        model.recommend([0], 2, exclude=[[0, 1]])


def test_model_is_callable_as_its_score_function():
    model = Popularity().fit(ratings_frame(), 12, 6)
    assert torch.equal(model(torch.arange(3)), model.score(torch.arange(3)))


# --------------------------------------------------------------------------- fold-in
def test_popularity_fold_in_is_the_popularity_list():
    model = Popularity().fit(ratings_frame(), 12, 6)
    assert torch.equal(model.score_items([0, 2]), model.score(torch.tensor([0]))[0])
    top = model.recommend_for_items([0, 2], k=3)
    assert not {0, 2} & set(top.tolist())


def test_item_knn_fold_in_is_sum_of_similarities():
    df = ratings_frame()
    model = ItemKNN(k=3).fit(df, 12, 6)
    S = model.neighbours.toarray()
    np.testing.assert_allclose(model.score_items([1, 4]).numpy(), S[:, [1, 4]].sum(1),
                               atol=1e-6)
    # a training user's own items give back her score row
    items0 = df.loc[df.user == 0, "item"].to_numpy()
    assert torch.allclose(model.score_items(items0), model.score(torch.tensor([0]))[0])


def test_item_knn_explicit_fold_in_matches_hand_computation():
    df = ratings_frame()
    model = ItemKNN(k=2, similarity="cosine", shrinkage=0.0, implicit=False).fit(df, 12, 6)
    b = model.baseline
    items, r = np.array([0, 3]), np.array([5.0, 2.0])
    b_u = (r - b.mu - b.b_item[items]).sum() / (b.reg_user + 2)
    res = r - (b.mu + b_u + b.b_item[items])
    expect = []
    for i in range(6):
        w = np.maximum(model.sim[i, items], 0)           # k=2 >= 2 candidates: both
        adj = (w * res).sum() / w.sum() if w.sum() > 0 else 0.0
        expect.append(np.clip(b.mu + b_u + b.b_item[i] + adj, *b.clip_range))
    np.testing.assert_allclose(model.score_items(items, r).numpy(), expect, atol=1e-5)


def test_user_knn_fold_in_matches_brute_force_neighbours():
    df = ratings_frame()
    model = UserKNN(k=2, shrinkage=1.0).fit(df, 12, 6)
    X = model.train_matrix.toarray()
    x = np.zeros(6)
    x[[0, 2, 5]] = 1
    n = X @ x
    s = n / np.sqrt(X.sum(1) * 3) * n / (n + 1.0)
    nbrs = np.argsort(-s, kind="stable")[:2]
    expect = sum(s[v] * X[v] for v in nbrs if s[v] > 0)
    np.testing.assert_allclose(model.score_items([0, 2, 5]).numpy(), expect, atol=1e-6)
    with pytest.raises(NotImplementedError, match="implicit=True"):
        UserKNN(implicit=False).fit(df, 12, 6).score_items([0])


@pytest.mark.parametrize("matrix", ["binary", "normalized"])
def test_svd_fold_in_of_a_training_user_gives_her_scores(matrix):
    df = ratings_frame(num_users=20, num_items=10, per_user=4)
    model = SVDEmbedding(embed_dim=3, matrix=matrix).fit(df, 20, 10)
    for u in (0, 7):
        items = df.loc[df.user == u, "item"].to_numpy()
        assert torch.allclose(model.score_items(items), model.score(torch.tensor([u]))[0],
                              atol=1e-5)


def test_biased_mf_fold_in_zeroes_the_gradient_of_the_new_user():
    df = ratings_frame()
    model = BiasedMF(embed_dim=2, num_epochs=3, reg=0.1, bias_reg=0.05).fit(df, 12, 6)
    items, r = np.array([1, 2, 4]), np.array([4.0, 1.0, 5.0])
    s = model.score_items(items, r).double()
    # recover (b_u, p_u) by least squares from the scores, then check the optimality
    A = torch.cat([torch.ones(6, 1, dtype=torch.float64), model.item_factors], 1)
    theta = torch.linalg.lstsq(A, s - model.mu - model.item_bias).solution
    ub, uf = theta[:1].clone(), theta[1:][None, :].clone()
    g = mf_gradients(model.mu, ub, model.item_bias, uf, model.item_factors,
                     torch.zeros(3, dtype=torch.long), torch.as_tensor(items),
                     torch.as_tensor(r), model.reg, model.bias_reg)
    assert g["user_factors"].abs().max() < 1e-4 and g["user_bias"].abs().max() < 1e-4


def test_content_fold_in_equals_a_fitted_user_profile():
    df = ratings_frame()
    model = ContentBased(items=ITEMS, weighting="rating").fit(df, 12, 6)
    rows = df[df.user == 3]
    got = model.score_items(rows["item"].to_numpy(), rows["rating"].to_numpy())
    assert torch.allclose(got, model.score(torch.tensor([3]))[0], atol=1e-6)


def test_models_without_fold_in_say_which_models_have_it():
    class NoFoldIn(Recommender):
        pass
    model = NoFoldIn()
    model.train_matrix, model.num_users, model.num_items = sp.csr_matrix((1, 2)), 1, 2
    with pytest.raises(NotImplementedError, match="ItemKNN"):
        model.score_items([0])


def test_fold_in_rejects_bad_items():
    model = Popularity().fit(ratings_frame(), 12, 6)
    with pytest.raises(ValueError, match="outside"):
        model.score_items([6])
    with pytest.raises(ValueError, match="repeated"):
        model.score_items([1, 1])


# -------------------------------------------------------------------------- registry
def test_check_params_lists_valid_names_of_the_public_class():
    cls = get_model("userknn")
    assert check_params(cls, {"k": 5}) == {"k": 5}
    with pytest.raises(ValueError, match=r"UserKNN has no parameter 'kk'.*k=50.*shrinkage=0\.0"):
        check_params(cls, {"kk": 5})
    with pytest.raises(ValueError, match="--seed"):
        check_params(cls, {"seed": 1})


# ------------------------------------------------------------- own data, end to end
def test_own_frame_with_string_ids_and_play_counts_end_to_end(tmp_path):
    from recsys_ref.data import from_frame
    raw = pd.DataFrame({"listener": ["ann", "bob", "ann", "cy", "bob", "cy", "dan"],
                        "artist": ["X", "Y", "Y", "Z", "W", "W", "X"],
                        "plays": [3, 10, 1, 7, 2, 5, 4]})
    with pytest.raises(TypeError, match="from_frame"):
        ItemKNN().fit(raw.rename(columns={"listener": "user", "artist": "item"}), 4, 4)
    data = from_frame(raw, user="listener", item="artist", weight="plays")
    model = ItemKNN(k=2, shrinkage=0.0).fit(data.frame, data.num_users, data.num_items)
    got = model.recommend(["ann", "dan"], 1, id_map=data)
    # by hand: cos(W, Y) = 1/2 (bob), cos(W, Z) = 1/sqrt(2) (cy), cos(X, Y) = 1/2 (ann);
    # ann (X, Y): W scores 0 + 1/2, Z 0 -> W; dan (X): Y scores 1/2 -> Y
    np.testing.assert_array_equal(got, [["W"], ["Y"]])
    top = model.recommend(data.to_user_index(["ann", "dan"]), 1)
    np.testing.assert_array_equal(got, data.item_ids[top.numpy()])
    # play counts weigh content profiles with weighting="rating"; a weight column is
    # not a rating for a rating model, and the message says so
    with pytest.raises(ValueError, match="'weight' \\(implicit feedback\\)"):
        Baseline().fit(data.frame, data.num_users, data.num_items)
    # the id map travels with a saved model
    model.set_id_map(data).save(tmp_path / "knn.pt")
    again = ItemKNN.load(tmp_path / "knn.pt")
    np.testing.assert_array_equal(again.recommend(["ann", "dan"], 1, id_map=True), got)
    np.testing.assert_array_equal(again.recommend_for_items(["X"], 1, id_map=True),
                                  model.recommend_for_items(["X"], 1, id_map=data))


class TinyTorchModel(Recommender):
    """A model holding an nn.Module, saved through the documented hooks."""

    def __init__(self, embed_dim: int = 3, seed: int = 0):
        self.embed_dim, self.seed = embed_dim, seed
        self.module = None

    def build(self) -> torch.nn.Module:
        return torch.nn.Embedding(self.num_users + self.num_items, self.embed_dim)

    def fit(self, train, num_users, num_items, valid=None):
        self._store_train(train, num_users, num_items)
        torch.manual_seed(self.seed)
        self.module = self.build()
        return self

    def score(self, users):
        users = self._check_users(users)
        w = self.module.weight.detach()
        return w[users] @ w[self.num_users:].T

    def _get_state(self) -> dict:
        state = super()._get_state()
        state["module"] = self.module.state_dict()
        return state

    def _set_state(self, state: dict) -> None:
        weights = state.pop("module")
        super()._set_state(state)
        self.module = self.build()
        self.module.load_state_dict(weights)


def test_torch_model_round_trips_through_the_state_hooks(tmp_path):
    model = TinyTorchModel(embed_dim=4, seed=1).fit(ratings_frame(), 12, 6)
    loaded = Recommender.load(model.save(tmp_path / "tiny.pt"))
    assert repr(loaded) == "TinyTorchModel(12x6, embed_dim=4, seed=1)"
    assert torch.equal(loaded.score(torch.arange(12)), model.score(torch.arange(12)))


def test_a_trained_torch_model_saves_and_loads_with_identical_scores(tmp_path):
    from recsys_ref.models import LightGCN
    train = ratings_frame()
    model = LightGCN(num_epochs=2, embed_dim=4, lr=1e-2).fit(train, 12, 6)
    path = model.save(tmp_path / "lightgcn.pt")
    again = LightGCN.load(path)
    users = torch.arange(12)
    assert torch.equal(model.score(users), again.score(users))
    assert again.get_params() == model.get_params()          # lr, embed_dim via **kwargs
    assert again.get_params()["lr"] == 1e-2 and LightGCN().get_params()["lr"] == 5e-3


def test_a_model_fitted_with_callbacks_saves(tmp_path):
    from recsys_ref.models import LightGCN
    from recsys_ref.train import EMA
    model = LightGCN(num_epochs=2, embed_dim=4, callbacks=[EMA(0.5)]).fit(ratings_frame(), 12, 6)
    again = LightGCN.load(model.save(tmp_path / "m.pt"))
    assert torch.equal(model.score(torch.arange(12)), again.score(torch.arange(12)))
    assert again.callbacks == [] and "callbacks" not in again.get_params()
