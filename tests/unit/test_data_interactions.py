"""from_frame and Interactions: the package's interaction form from any frame, the id maps
both ways, and a clear error for every malformed input. Fixtures are small enough to check
every number by hand."""
import numpy as np
import pandas as pd
import pytest

from recsys_ref.data import DataError, Interactions, UnknownIdError, from_frame


@pytest.fixture
def plays():
    """Three listeners, three songs; string user ids, 1-based song ids."""
    return pd.DataFrame({
        "who": ["carol", "ann", "bob", "ann"],
        "song": [3, 1, 1, 2],
        "plays": [5, 2, 7, 1],
        "when": [40, 10, 30, 20],
    })


def test_string_and_one_based_ids_map_to_sorted_zero_based_indices(plays):
    data = from_frame(plays, user="who", item="song", weight="plays", timestamp="when")
    assert data.user_ids.tolist() == ["ann", "bob", "carol"]      # sorted originals
    assert data.item_ids.tolist() == [1, 2, 3]                    # 1-based -> 0..2
    # rows keep the frame's order: carol->2, ann->0, bob->1, ann->0
    assert data.frame.to_numpy().tolist() == [[2, 2, 5, 40], [0, 0, 2, 10],
                                              [1, 0, 7, 30], [0, 1, 1, 20]]
    assert list(data.frame.columns) == ["user", "item", "weight", "timestamp"]
    assert data.frame["user"].dtype == np.int64 and data.frame["item"].dtype == np.int64
    assert (data.num_users, data.num_items, len(data), data.value) == (3, 3, 4, "weight")


def test_maps_both_ways(plays):
    data = from_frame(plays, user="who", item="song", weight="plays")
    assert data.to_user_index("carol") == 2 and data.to_item_index(1) == 0
    assert data.to_user_index(["bob", "ann"]).tolist() == [1, 0]
    assert data.to_user_id(2) == "carol" and data.to_item_id(0) == 1
    assert isinstance(data.to_item_id(0), int)
    assert data.to_item_id(np.array([2, 0])).tolist() == [3, 1]
    assert data.user_index == {"ann": 0, "bob": 1, "carol": 2}
    assert data.item_index == {1: 0, 2: 1, 3: 2}
    back = data.with_original_ids()
    assert back[["user_id", "item_id"]].to_numpy().tolist() == \
        plays[["who", "song"]].to_numpy().tolist()


def test_ids_not_in_the_map_are_clear_errors(plays):
    data = from_frame(plays, user="who", item="song")
    with pytest.raises(UnknownIdError, match=r"user id\(s\) not in the map: 'dave'") as err:
        data.to_user_index(["ann", "dave"])
    assert isinstance(err.value, KeyError) and "3 users" in str(err.value)
    with pytest.raises(UnknownIdError, match="item id"):
        data.to_item_index(4)
    with pytest.raises(UnknownIdError, match=r"outside 0\.\.2"):
        data.to_user_id(3)
    with pytest.raises(UnknownIdError, match="integers only"):
        data.to_item_id(1.5)


def test_explicit_ratings_keep_their_dtype_and_repr():
    df = pd.DataFrame({"u": [10, 20], "i": ["x", "y"], "stars": [4, 5]})
    data = from_frame(df, user="u", item="i", rating="stars")
    assert data.frame["rating"].tolist() == [4, 5] and data.frame["rating"].dtype == np.int64
    assert repr(data) == "Interactions(users=2, items=2, rows=2, rating)"


def test_datetimes_become_unix_seconds():
    t = pd.to_datetime(["2020-01-01 00:00:00", "2020-01-01 00:00:10"])
    df = pd.DataFrame({"user": [1, 2], "item": [1, 1], "t": t})
    assert from_frame(df, timestamp="t").frame["timestamp"].tolist() == [1577836800, 1577836810]
    df["t"] = t.tz_localize("Europe/Paris")                      # UTC+1 in January
    assert from_frame(df, timestamp="t").frame["timestamp"].tolist() == [1577833200, 1577833210]


def test_float_ids_from_a_csv_with_gaps_become_ints_and_nullable_ints_work():
    df = pd.DataFrame({"user": [1.0, 2.0], "item": pd.array([7, 8], dtype="Int64"),
                       "rating": pd.array([3, 4], dtype="Int64")})
    data = from_frame(df, rating="rating")
    assert data.user_ids.dtype == np.int64 and data.user_ids.tolist() == [1, 2]
    assert data.item_ids.tolist() == [7, 8] and data.frame["rating"].dtype == np.int64


# -- errors --------------------------------------------------------------------------------

def test_empty_frame():
    with pytest.raises(DataError, match="no rows"):
        from_frame(pd.DataFrame({"user": [], "item": []}))


def test_missing_columns_are_listed_with_the_available_ones(plays):
    with pytest.raises(DataError, match=r"user='user', rating='score'.*'who', 'song'"):
        from_frame(plays, item="song", rating="score")


@pytest.mark.parametrize("col", ["who", "song", "plays", "when"])
def test_nan_in_any_used_column(plays, col):
    plays = plays.astype({col: object})
    plays.loc[2, col] = None
    with pytest.raises(DataError, match=rf"column '{col}' has 1 missing .*row index 2"):
        from_frame(plays, user="who", item="song", weight="plays", timestamp="when")


def test_nan_rating(plays):
    plays["stars"] = [1.0, np.nan, 3.0, 4.0]
    with pytest.raises(DataError, match="'stars' has 1 missing"):
        from_frame(plays, user="who", item="song", rating="stars")


def test_non_numeric_ratings_name_a_bad_value(plays):
    plays["stars"] = ["5", "five", "3", "4"]
    with pytest.raises(DataError, match=r"'stars' \(rating\) is not numeric \(e\.g\. 'five'"):
        from_frame(plays, user="who", item="song", rating="stars")
    plays["stars"] = [True, False, True, True]
    with pytest.raises(DataError, match="not numeric"):
        from_frame(plays, user="who", item="song", rating="stars")


def test_infinite_rating_and_negative_weight(plays):
    plays["stars"] = [1.0, np.inf, 3.0, 4.0]
    with pytest.raises(DataError, match="infinite"):
        from_frame(plays, user="who", item="song", rating="stars")
    plays["plays"] = [1, -2, 3, 4]
    with pytest.raises(DataError, match=r"negative values \(e\.g\. -2\)"):
        from_frame(plays, user="who", item="song", weight="plays")


def test_string_timestamps_ask_for_to_datetime(plays):
    plays["when"] = ["2020-01-01"] * 4
    with pytest.raises(DataError, match="pd.to_datetime"):
        from_frame(plays, user="who", item="song", timestamp="when")


def test_bad_arguments(plays):
    with pytest.raises(ValueError, match="not both"):
        from_frame(plays, user="who", item="song", rating="plays", weight="plays")
    with pytest.raises(ValueError, match="duplicates must be"):
        from_frame(plays, user="who", item="song", duplicates="mean")
    with pytest.raises(TypeError, match="DataFrame"):
        from_frame(plays.to_numpy())


def test_mixed_and_fractional_ids():
    with pytest.raises(DataError, match=r"mixes id types \(int, str\)"):
        from_frame(pd.DataFrame({"user": [1, "1"], "item": [1, 2]}))
    with pytest.raises(DataError, match="non-integer numbers"):
        from_frame(pd.DataFrame({"user": [1.5, 2.0], "item": [1, 2]}))


# -- duplicates ----------------------------------------------------------------------------

@pytest.fixture
def repeated():
    """ann rated song 1 twice: 2 at t=30 (first row), 5 at t=10; bob once."""
    return pd.DataFrame({"user": ["ann", "bob", "ann"], "item": [1, 1, 1],
                         "r": [2, 4, 5], "t": [30, 20, 10]})


def test_duplicates_are_an_error_by_default_with_an_example(repeated):
    with pytest.raises(DataError, match=r"1 \(user, item\) pair.*user='ann', item=1 at row "
                                        r"indices \[0, 2\].*duplicates='last'"):
        from_frame(repeated, rating="r", timestamp="t")


def test_last_and_first_follow_the_timestamp(repeated):
    last = from_frame(repeated, rating="r", timestamp="t", duplicates="last").frame
    assert last.to_numpy().tolist() == [[0, 0, 2, 30], [1, 0, 4, 20]]   # t=30 is latest
    first = from_frame(repeated, rating="r", timestamp="t", duplicates="first").frame
    assert first.to_numpy().tolist() == [[1, 0, 4, 20], [0, 0, 5, 10]]  # t=10 is earliest


def test_last_and_first_follow_frame_order_without_timestamp(repeated):
    last = from_frame(repeated, rating="r", duplicates="last").frame
    assert last.to_numpy().tolist() == [[1, 0, 4], [0, 0, 5]]


def test_sum_adds_weights_keeps_latest_time_and_counts_bare_rows(repeated):
    summed = from_frame(repeated, weight="r", timestamp="t", duplicates="sum").frame
    assert summed.to_numpy().tolist() == [[0, 0, 7, 30], [1, 0, 4, 20]]
    counted = from_frame(repeated, duplicates="sum").frame
    assert counted.to_numpy().tolist() == [[0, 0, 2], [1, 0, 1]]
    with pytest.raises(DataError, match="adds weights"):
        from_frame(repeated, rating="r", duplicates="sum")


def test_interactions_refuse_indices_outside_their_maps():
    frame = pd.DataFrame({"user": [0, 3], "item": [0, 0]})
    with pytest.raises(DataError, match=r"outside 0\.\.1"):
        Interactions(frame, np.array([1, 2]), np.array([9]))
