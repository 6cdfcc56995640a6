"""The Split object, its constructors, input checks and evaluate()."""
import numpy as np
import pandas as pd
import pytest
import torch

from recsys_ref import evaluate_ranking
from recsys_ref.models import Popularity
from recsys_ref.protocol.split import Split, evaluate
from recsys_ref.protocol.splits import check_interactions, drop_unseen, k_core


@pytest.fixture
def frame():
    """20 users x 30 items, every user with 10 distinct items, timestamps increasing."""
    rng = np.random.default_rng(0)
    rows = []
    for u in range(20):
        for t, i in enumerate(rng.choice(30, size=10, replace=False)):
            rows.append((u, int(i), float(rng.integers(1, 6)), 1000 * u + t))
    return pd.DataFrame(rows, columns=["user", "item", "rating", "timestamp"])


def _pairs(df):
    return set(zip(df["user"], df["item"]))


def test_recommenders_split_parts_are_disjoint_and_cover_the_frame(frame):
    s = Split.recommenders(frame, seed=1, num_users=20, num_items=30)
    assert len(s.train) + len(s.test) == len(frame)
    assert not _pairs(s.train) & _pairs(s.test)
    assert _pairs(s.valid) <= _pairs(s.train)
    t = s.tuning
    assert _pairs(t.train) | _pairs(t.test) == _pairs(s.train)
    assert not _pairs(t.train) & _pairs(t.test)
    assert t.valid is None and t.num_items == 30


def test_recommenders_split_by_user_rounds_each_users_share(frame):
    # every user has 10 rows: round(0.75 * 10) = round(7.5) = 8 (half to even) to train
    s = Split.recommenders(frame, filter_by="user", seed=3, valid_ratio=0)
    assert (s.train.groupby("user").size() == 8).all()
    assert (s.test.groupby("user").size() == 2).all()
    assert s.valid is None
    with pytest.raises(ValueError, match="no validation part"):
        s.tuning


def test_evaluate_equals_evaluate_ranking_with_train_masked(frame):
    s = Split.recommenders(frame, seed=1, num_users=20, num_items=30)
    model = Popularity().fit(s.train, 20, 30)
    ours = evaluate(model, s, k=5)
    ref = evaluate_ranking(model.score, s.test, 20, 30, k=5, exclude=[s.train])
    assert ours == ref
    tuned = evaluate(model, s.tuning, k=5)
    ref_t = evaluate_ranking(model.score, s.valid, 20, 30, k=5, exclude=[s.train_without_valid])
    assert tuned == ref_t


def test_leave_last_out_holds_the_latest_rows(frame):
    s = Split.leave_last_out(frame)
    last = frame.sort_values("timestamp").groupby("user").tail(1)
    second = frame.drop(index=last.index).sort_values("timestamp").groupby("user").tail(1)
    assert _pairs(s.test) == _pairs(last)
    assert _pairs(s.valid) == _pairs(second)


def test_temporal_split_tests_only_the_future(frame):
    s = Split.temporal(frame, test_ratio=0.25, valid_ratio=0, drop_unseen=False)
    assert s.train["timestamp"].max() < s.test["timestamp"].min()
    assert len(s.test) == 50


def test_cold_items_never_train_and_tuning_ranks_validation_cold_items(frame):
    s = Split.cold_items(frame, cold_frac=0.2, seed=0, valid_frac=0.25)
    assert len(s.candidates) == 6                      # round(0.2 * 30)
    assert not set(s.train["item"]) & set(s.candidates)
    assert set(s.test["item"]) <= set(s.candidates)
    t = s.tuning
    assert set(t.candidates) == set(s.valid["item"])
    assert not set(t.train["item"]) & set(t.candidates)


def test_cold_item_evaluation_ranks_among_candidates_only(frame):
    s = Split.cold_items(frame, cold_frac=0.2, seed=0)
    # a score matrix that puts each user's test items first among the cold items
    scores = torch.zeros(20, 30)
    scores[np.array(s.test["user"]), np.array(s.test["item"])] = 1.0
    scores[:, 0] = 5.0 if 0 not in set(s.candidates) else 0.0   # a warm item: not a candidate
    res = evaluate(scores, s, k=6, metrics=("recall",))
    assert res["recall"] == pytest.approx(1.0)


def test_new_users_are_absent_from_train(frame):
    s = Split.new_users(frame, user_frac=0.25, history_frac=0.5, seed=0)
    new = set(s.test["user"])
    assert len(new) == 5 and not new & set(s.train["user"])
    assert _pairs(s.history) | _pairs(s.test) == _pairs(frame[frame["user"].isin(new)])


def test_link_prediction_negatives_are_non_edges():
    edges = pd.DataFrame({"user": [0, 0, 1, 2, 3, 4], "item": [1, 2, 2, 3, 4, 5]})
    s = Split.link_prediction(edges, num_nodes=6, test_ratio=0.5, seed=0)
    assert len(s.test) == 3 and len(s.train) == 3 and len(s.negatives) == 3
    known = {(min(a, b), max(a, b)) for a, b in zip(edges["user"], edges["item"])}
    assert not {tuple(p) for p in s.negatives.to_numpy()} & known
    with pytest.raises(ValueError, match="AUC"):
        evaluate(torch.zeros(6, 6), s)


def test_split_warns_when_test_items_are_unseen():
    train = pd.DataFrame({"user": [0, 1], "item": [0, 1]})
    test = pd.DataFrame({"user": [0, 1], "item": [2, 1]})
    with pytest.warns(UserWarning, match="never seen in train"):
        Split(train, test, 2, 3)
    assert len(drop_unseen(test, train)) == 1


@pytest.mark.parametrize("bad, error, message", [
    (pd.DataFrame({"user": ["a", "b"], "item": [0, 1]}), TypeError, "from_frame"),
    (pd.DataFrame({"user": [0.0, np.nan], "item": [0, 1]}), ValueError, "NaN"),
    (pd.DataFrame({"user": [0, 0], "item": [1, 1]}), ValueError, "duplicate"),
    (pd.DataFrame({"user": [0, 1], "item": [0, 1], "rating": [1.0, np.nan]}), ValueError,
     "NaN"),
    (pd.DataFrame({"user": [], "item": []}), ValueError, "empty"),
    (pd.DataFrame({"u": [0], "i": [0]}), ValueError, "lacks column"),
])
def test_bad_interaction_frames_get_clear_errors(bad, error, message):
    with pytest.raises(error, match=message):
        check_interactions(bad)
    with pytest.raises(error, match=message):
        Split.recommenders(bad)


def test_k_core_by_hand():
    # user 2 has one row; once it goes, item 2 has one row and goes too
    df = pd.DataFrame({"user": [0, 0, 1, 1, 2, 0, 1], "item": [0, 1, 0, 1, 2, 3, 3]})
    df.loc[len(df)] = [2, 3]
    core = k_core(df, 2)
    assert _pairs(core) == {(0, 0), (0, 1), (1, 0), (1, 1), (0, 3), (1, 3)}


def test_evaluate_ranking_accepts_a_frame_and_a_model_and_rejects_full_overlap(frame):
    s = Split.recommenders(frame, seed=1, num_users=20, num_items=30)
    model = Popularity().fit(s.train, 20, 30)
    a = evaluate_ranking(model, s.test, 20, 30, k=5, exclude=s.train)
    b = evaluate_ranking(model.score, s.test, 20, 30, k=5, exclude=[s.train])
    assert a == b
    with pytest.raises(ValueError, match="every held-out"):
        evaluate_ranking(model, s.test, 20, 30, k=5, exclude=s.test)
    leak = pd.concat([s.train, s.test.iloc[:3]])
    with pytest.warns(UserWarning, match="3 of"):
        evaluate_ranking(model, s.test, 20, 30, k=5, exclude=leak)
    with pytest.raises(TypeError, match="DataFrame where a model"):
        evaluate_ranking(s.train, s.test, 20, 30, k=5)


def test_new_user_evaluation_folds_the_history_in(frame):
    from recsys_ref.models import ItemKNN
    s = Split.new_users(frame, user_frac=0.25, history_frac=0.5, seed=0)
    model = ItemKNN(k=10).fit(s.train, 20, 30)
    hist = s.history.groupby("user")["item"].agg(lambda x: x.to_numpy())

    def by_hand(users):
        return torch.stack([model.score_items(hist[int(u)]) for u in users.tolist()])
    ref = evaluate_ranking(by_hand, s.test, 20, 30, k=5, exclude=[s.history])
    assert evaluate(model, s, k=5) == ref


def test_repeated_index_labels_do_not_lose_training_rows(frame):
    shuffled = frame.set_axis(np.arange(len(frame)) % 50)          # labels repeat
    s = Split.per_user(shuffled, (0.8, 0.1, 0.1), seed=0)
    assert len(s.train_without_valid) + len(s.valid) == len(s.train)


def test_temporal_tuning_trains_only_on_the_past(frame):
    s = Split.temporal(frame, test_ratio=0.2, valid_ratio=0.25, drop_unseen=False)
    t = s.tuning
    assert t.train["timestamp"].max() < s.valid["timestamp"].min()
    assert set(t.test.index) <= set(s.valid.index)


def test_link_prediction_rejects_bad_graphs():
    both = pd.DataFrame({"user": [0, 1], "item": [1, 0]})
    with pytest.raises(ValueError, match="twice"):
        Split.link_prediction(both, 3)
    dense = pd.DataFrame({"user": [0, 0, 0, 1, 1, 2], "item": [1, 2, 3, 2, 3, 3]})
    with pytest.raises(ValueError, match="fewer non-edges"):
        Split.link_prediction(dense, 4, test_ratio=0.5)
    with pytest.raises(ValueError, match="below num_nodes"):
        Split.link_prediction(pd.DataFrame({"user": [0], "item": [5]}), 3)


def test_cold_item_evaluation_refuses_options_it_cannot_honour(frame):
    s = Split.cold_items(frame, cold_frac=0.2, seed=0)
    with pytest.raises(TypeError, match="return_topk"):
        evaluate(torch.zeros(20, 30), s, k=5, return_topk=True)


def test_temporal_split_that_drops_every_test_row_says_so(frame):
    # timestamps grow with the user id: the future belongs to users never seen before
    with pytest.warns(UserWarning, match="test rows dropped"), \
            pytest.raises(ValueError, match="empty test part"):
        Split.temporal(frame, test_ratio=0.2)
