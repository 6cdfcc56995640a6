"""The benchmark command: protocols, output files that re-check, clear errors."""
import json

import numpy as np
import pandas as pd
import pytest

from recsys_ref.cli import bench
from recsys_ref.protocol import metrics as M


def test_make_split_parts_are_disjoint(ml100k):
    for protocol in bench.PROTOCOLS:
        split = bench.make_split(ml100k, protocol, seed=1, valid_ratio=0.1)
        t = split.tuning
        keys = [set(zip(df.user, df.item)) for df in (t.train, t.test, split.test)]
        assert sum(map(len, keys)) == len(set().union(*keys))


def test_cli_writes_four_files_that_recheck_the_metrics(ml100k, tmp_path, capsys):
    out = tmp_path / "pop"
    code = bench.main(["--model", "popularity", "--dataset", "ml-100k", "--protocol",
                       "recommenders", "--out", str(out), "--data-dir", str(ml100k.path.parent)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "ndcg@10" in printed and "precision@10" in printed
    assert {p.name for p in out.iterdir()} == {"metrics.json", "train.csv", "test.csv", "topk.csv"}
    result = json.loads((out / "metrics.json").read_text())
    train, test, topk = (pd.read_csv(out / f) for f in ("train.csv", "test.csv", "topk.csv"))
    assert list(topk.columns) == ["user_id", "item_id", "rank"] and topk["rank"].max() == 10
    assert len(train) == 75_066 and len(test) == 24_934
    # independent re-check from the CSVs alone, with the list-based metric functions
    ranked, relevant = [], []
    for uid, grp in topk.sort_values(["user_id", "rank"]).groupby("user_id"):
        ranked.append(list(grp.item_id))
        relevant.append(set(test[test.user_id == uid].item_id))
    assert M.ndcg_at_k(ranked, relevant, 10) == pytest.approx(result["metrics"]["ndcg"])
    assert M.map_at_k(ranked, relevant, 10) == pytest.approx(result["metrics"]["map"])
    # and no recommended item was in the user's training data
    seen = set(zip(train.user_id, train.item_id))
    assert not any((u, i) in seen for u, i in zip(topk.user_id, topk.item_id))


def test_popularity_recommends_most_popular_unseen(ml100k):
    res = bench.run_benchmark("popularity", protocol="recommenders", data_dir=str(ml100k.path.parent))
    assert res["metrics"]["precision"] == pytest.approx(0.2287, abs=1e-4)
    assert res["num_eval_users"] == 943


def test_cli_errors(capsys):
    with pytest.raises(SystemExit):
        bench.main(["--model", "nope"])
    with pytest.raises(SystemExit):
        bench.main(["--model", "popularity", "--k", "0"])
    with pytest.raises(SystemExit):
        bench.main(["--model", "popularity", "--param", "novalue"])
    with pytest.raises(ValueError, match="unknown protocol"):
        bench.make_split(pd.DataFrame({"user": [0], "item": [0]}), "magic")


def test_cli_runs_lastfm_and_writes_original_artist_ids(tmp_path, data_dir):
    if not (data_dir / "hetrec2011-lastfm-2k").exists():
        pytest.skip("Last.fm 2K not in the data folder")
    out = tmp_path / "lfm"
    assert bench.main(["--model", "popularity", "--dataset", "lastfm", "--out", str(out)]) == 0
    topk = pd.read_csv(out / "topk.csv")
    train = pd.read_csv(out / "train.csv")
    artists = pd.read_csv(data_dir / "hetrec2011-lastfm-2k" / "artists.dat", sep="\t")
    # ids written are the publisher's artist ids; the first recommendation of every user
    # who has not listened to the most popular artist yet is that artist
    assert set(topk["item_id"]) <= set(artists["id"])
    most = train["item_id"].value_counts().idxmax()
    heard = set(train.loc[train["item_id"] == most, "user_id"])
    first = topk[(topk["rank"] == 1) & ~topk["user_id"].isin(heard)]
    assert len(first) > 0 and (first["item_id"] == most).all()


def test_cli_runs_a_sequential_model_under_the_next_item_protocol(ml100k, tmp_path):
    out = tmp_path / "seq"
    res = bench.run_benchmark("transitions", protocol="next-item", out=out,
                              data_dir=str(ml100k.path.parent))
    topk, test, train = (pd.read_csv(out / f) for f in ("topk.csv", "test.csv", "train.csv"))
    assert test.groupby("user_id").size().eq(1).all()           # one held-out item each
    # HR@10 (recall with one relevant item) re-checked from the files alone
    hits = topk.merge(test, on=["user_id", "item_id"])
    assert res["metrics"]["recall"] == pytest.approx(hits["user_id"].nunique()
                                                     / test["user_id"].nunique())
    assert res["metrics"]["recall"] > 0.02                      # above chance (10 / 1,349)
    # the history of the test prediction includes the validation item, which is masked
    assert not set(zip(topk.user_id, topk.item_id)) & set(zip(train.user_id, train.item_id))
