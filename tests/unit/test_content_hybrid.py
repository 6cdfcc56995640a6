"""Tests of recsys_ref.models.classic.content and recsys_ref.models.classic.hybrid: TF-IDF and genre
profiles against scikit-learn, user profiles against a hand-written mean, hybrid limits
and the cold-item split."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.metrics.pairwise import cosine_similarity as sk_cosine

from recsys_ref.models import MODELS, get_model
from recsys_ref.data import clean_title
from recsys_ref.models.classic.content import ContentBased, item_features
from recsys_ref.protocol.coldstart import cold_item_split
from recsys_ref.models.classic.hybrid import SwitchingHybrid, WeightedHybrid, zscore_rows
from recsys_ref.models.classic.knn import ItemKNN

ITEMS = pd.DataFrame({
    "title": ["Star Wars (1977)", "Star Trek: Generations (1994)", "Toy Story (1995)",
              "Toy Soldiers (1991)", "Wars of the Roses, The (1989)", "Heat (1995)"],
    "genres": [["Action", "Sci-Fi"], ["Action", "Sci-Fi"], ["Animation", "Comedy"],
               ["Action"], ["Comedy", "Drama"], ["Action", "Crime"]],
})


def random_frame(num_users=12, num_items=6, per_user=3, seed=0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = [(u, i, int(rng.integers(1, 6))) for u in range(num_users)
            for i in rng.choice(num_items, per_user, replace=False)]
    return pd.DataFrame(rows, columns=["user", "item", "rating"])


def test_clean_title_strips_the_year():
    assert clean_title("Shawshank Redemption, The (1994)") == "Shawshank Redemption, The"
    assert clean_title("Heat") == "Heat"


def test_title_features_equal_sklearn_tfidf():
    F, names = item_features(ITEMS, use_genres=False, min_df=2)
    ref = TfidfVectorizer(min_df=2, stop_words="english").fit(ITEMS["title"].map(clean_title))
    T = ref.transform(ITEMS["title"].map(clean_title)).toarray()
    np.testing.assert_allclose(F.toarray(), T, atol=1e-12)
    assert names == [f"title:{w}" for w in ref.get_feature_names_out()]  # star, toy, wars


def test_genre_features_of_one_item_match_paper():
    F, names = item_features(ITEMS, use_titles=False)
    row = dict(zip(names, F.toarray()[0]))
    # Star Wars: Action and Sci-Fi, one-hot then unit norm -> 1/sqrt(2) each
    assert row["genre:Action"] == pytest.approx(2 ** -0.5)
    assert row["genre:Sci-Fi"] == pytest.approx(2 ** -0.5)
    assert row["genre:Comedy"] == 0.0


def test_user_profile_is_rating_weighted_mean_and_scores_are_cosines():
    train = pd.DataFrame({"user": [0, 0, 1], "item": [0, 2, 5], "rating": [5.0, 1.0, 4.0]})
    model = ContentBased(items=ITEMS, genre_weight=1.0, title_weight=0.5, use_titles=True,
                         weighting="rating").fit(train, 2, 6)
    F = model.features.toarray()
    expect = (5 * F[0] + 1 * F[2]) / 6
    np.testing.assert_allclose(model.user_profiles[0], expect, atol=1e-12)
    scores = model.score(torch.tensor([0, 1])).numpy()
    np.testing.assert_allclose(scores, sk_cosine(model.user_profiles, F), atol=1e-6)


def test_centred_weighting_pushes_away_from_disliked_items():
    train = pd.DataFrame({"user": [0, 0], "item": [0, 2], "rating": [5.0, 1.0]})
    model = ContentBased(items=ITEMS, weighting="centred").fit(train, 1, 6)
    s = model.score(torch.tensor([0])).numpy()[0]
    assert s[1] > 0 > s[2]  # like Star Trek (same genres as Star Wars), not Toy Story


def test_content_needs_one_feature_row_per_item():
    with pytest.raises(ValueError, match="rows but num_items"):
        ContentBased(items=ITEMS).fit(random_frame(num_items=7), 12, 7)


def test_zscore_rows_has_zero_mean_unit_std_and_constant_rows_give_zero():
    z = zscore_rows(torch.tensor([[1.0, 2.0, 3.0], [4.0, 4.0, 4.0]]))
    np.testing.assert_allclose(z[0].numpy(), [-1.224745, 0.0, 1.224745], atol=1e-5)
    assert torch.equal(z[1], torch.zeros(3))


@pytest.mark.parametrize("alpha,reference", [(1.0, "cf"), (0.0, "content")])
def test_weighted_hybrid_limits_rank_like_their_component(alpha, reference):
    train = random_frame(seed=1)
    # titles on: genre-only profiles tie exactly (Star Wars, Star Trek) and z-scoring
    # may order exact ties differently
    cb = {"use_titles": True, "weighting": "rating"}
    hyb = WeightedHybrid(alpha=alpha, items=ITEMS, cf_params={"k": 3, "shrinkage": 0.0},
                         content_params=cb).fit(train, 12, 6)
    comp = (ItemKNN(k=3, shrinkage=0.0) if reference == "cf"
            else ContentBased(items=ITEMS, **cb)).fit(train, 12, 6)
    users = torch.arange(12)
    a, b = hyb.score(users), comp.score(users)
    # a positive affine map of each row: same order, so the same rankings
    assert torch.equal(torch.argsort(a, dim=1, stable=True, descending=True),
                       torch.argsort(zscore_rows(b), dim=1, stable=True, descending=True))
    assert torch.equal(hyb.recommend(users, 2), comp.recommend(users, 2))


def test_weighted_hybrid_tunes_alpha_on_validation():
    train, valid = random_frame(seed=2), random_frame(per_user=1, seed=3)
    valid = valid.merge(train, on=["user", "item"], how="left", indicator=True)
    valid = valid[valid["_merge"] == "left_only"][["user", "item"]]
    hyb = WeightedHybrid(alpha=None, items=ITEMS, alphas=(0.0, 0.5, 1.0), k_tune=2,
                         cf_params={"k": 3, "shrinkage": 0.0}).fit(train, 12, 6, valid=valid)
    assert set(hyb.tuning) == {0.0, 0.5, 1.0}
    assert hyb.tuning[hyb.alpha] == max(hyb.tuning.values())
    with pytest.raises(ValueError, match="validation"):
        WeightedHybrid(alpha=None, items=ITEMS).fit(train, 12, 6)


def test_switching_hybrid_uses_content_for_unseen_items_and_short_histories():
    train = random_frame(seed=4)
    train = train[train["item"] != 5]                      # item 5: nobody has seen it
    extra = pd.DataFrame({"user": [12], "item": [0], "rating": [5]})  # user 12: 1 rating
    train = pd.concat([train, extra], ignore_index=True)
    hyb = SwitchingHybrid(min_user_history=2, min_item_history=1, items=ITEMS,
                          cf_params={"k": 3, "shrinkage": 0.0}).fit(train, 13, 6)
    users = torch.arange(13)
    s = hyb.score(users)
    z_cf = zscore_rows(hyb.cf.score(users))
    z_cb = zscore_rows(hyb.content.score(users))
    assert torch.equal(s[:, 5], z_cb[:, 5])                # cold item
    assert torch.equal(s[12], z_cb[12])                    # cold user
    assert torch.equal(s[:12, :5], z_cf[:12, :5])          # everything else: CF


def test_cold_item_split_keeps_held_out_items_out_of_training():
    ratings = random_frame(num_users=40, num_items=30, per_user=8, seed=5)
    train, test, cold = cold_item_split(ratings, cold_frac=0.2, seed=0)
    assert len(cold) == round(0.2 * ratings["item"].nunique())
    assert not set(train["item"]) & set(cold)
    assert set(test["item"]) <= set(cold)
    assert len(train) + len(test) == len(ratings)          # every interaction of a cold item is in test
    _, _, again = cold_item_split(ratings, cold_frac=0.2, seed=0)
    assert np.array_equal(cold, again)


def test_cold_items_get_no_collaborative_signal():
    ratings = random_frame(num_users=20, num_items=6, per_user=3, seed=6)
    train, _, cold = cold_item_split(ratings, cold_frac=0.34, seed=1)
    cf = ItemKNN(k=3).fit(train, 20, 6)
    assert torch.all(cf.score(torch.arange(20))[:, torch.as_tensor(cold)] == 0)
    cb = ContentBased(items=ITEMS).fit(train, 20, 6)
    assert torch.any(cb.score(torch.arange(20))[:, torch.as_tensor(cold)] != 0)


def test_registered_in_models():
    assert get_model("content") is ContentBased and get_model("hybrid") is WeightedHybrid
    assert "content" in MODELS and "hybrid" in MODELS


def test_bad_arguments_raise_clear_errors():
    with pytest.raises(ValueError, match="weighting"):
        ContentBased(items=ITEMS, weighting="tfidf")
    with pytest.raises(ValueError, match="at least one block"):
        item_features(ITEMS, use_genres=False, use_titles=False)
    with pytest.raises(ValueError, match="alpha must lie"):
        WeightedHybrid(alpha=1.5, items=ITEMS)
    with pytest.raises(ValueError, match="frac"):
        cold_item_split(random_frame(), cold_frac=1.0)
