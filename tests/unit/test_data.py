"""Dataset loading: content, index maps, validation errors, atomic verified downloads."""
import hashlib
import shutil
import zipfile
from dataclasses import replace

import numpy as np
import pytest

from recsys_ref.data import movielens as D


def test_ml100k_content(ml100k):
    r = ml100k.ratings
    assert (ml100k.num_users, ml100k.num_items, len(r)) == (943, 1682, 100_000)
    assert list(r.columns) == ["user_id", "item_id", "user", "item", "rating", "timestamp"]
    assert r["rating"].between(1, 5).all()
    assert r["user"].min() == 0 and r["user"].max() == 942
    assert tuple(r.iloc[0][["user_id", "item_id", "rating", "timestamp"]]) == (196, 242, 3, 881250949)


def test_index_maps_round_trip(ml100k):
    r = ml100k.ratings
    assert np.array_equal(ml100k.user_ids[r["user"]], r["user_id"])
    assert np.array_equal(ml100k.item_ids[r["item"]], r["item_id"])
    assert ml100k.item_index[1] == 0 and ml100k.user_index[943] == 942


def test_items_and_users_frames(ml100k):
    toy = ml100k.items.loc[ml100k.item_index[1]]
    assert toy["title"] == "Toy Story (1995)" and toy["year"] == 1995
    assert toy["genres"] == ["Animation", "Children's", "Comedy"]
    u = ml100k.users.loc[0]
    assert (u["user_id"], u["age"], u["gender"], u["occupation"], u["zip"]) == (1, 24, "M", "technician", "85711")


def test_ml1m_loads(data_dir):
    ml = D.load_movielens("ml-1m", data_dir=data_dir, download=False)
    assert (ml.num_users, ml.num_items, len(ml.ratings)) == (6040, 3706, 1_000_209)
    assert "Drama" in ml.genres


def test_env_var_is_used(monkeypatch, data_dir):
    monkeypatch.setenv(D.DATA_ENV_VAR, str(data_dir))
    assert D.find_dataset("ml-100k", download=False) == data_dir / "ml-100k"


def _copy(data_dir, tmp_path):
    dst = tmp_path / "ml-100k"
    shutil.copytree(data_dir / "ml-100k", dst)
    return dst


def test_truncated_file_error_names_file_env_and_url(data_dir, tmp_path):
    dst = _copy(data_dir, tmp_path)
    lines = (dst / "u.data").read_text().splitlines()[:5000]
    (dst / "u.data").write_text("\n".join(lines) + "\n")
    with pytest.raises(D.DataError) as err:
        D.load_movielens("ml-100k", data_dir=tmp_path, download=False)
    msg = str(err.value)
    assert "u.data" in msg and "5,000 ratings, expected 100,000" in msg
    assert D.DATA_ENV_VAR in msg and D.DATASETS["ml-100k"].url in msg


def test_missing_and_corrupted_files(data_dir, tmp_path):
    dst = _copy(data_dir, tmp_path)
    (dst / "u.item").unlink()
    with pytest.raises(D.DataError, match=r"u\.item: file is missing"):
        D.load_movielens("ml-100k", data_dir=tmp_path, download=False)
    shutil.copy(data_dir / "ml-100k" / "u.item", dst / "u.item")
    text = (dst / "u.data").read_text().replace("\t3\t", "\t9\t", 10)
    (dst / "u.data").write_text(text)
    with pytest.raises(D.DataError, match="ratings outside 1..5"):
        D.load_movielens("ml-100k", data_dir=tmp_path, download=False)


def test_named_folder_without_data_is_an_error_not_a_download(tmp_path):
    with pytest.raises(D.DataError, match="no 'ml-100k' folder"):
        D.find_dataset("ml-100k", data_dir=tmp_path, download=True)


def _zip_of(data_dir, tmp_path):
    archive = tmp_path / "ml-100k.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for f in (data_dir / "ml-100k").iterdir():
            zf.write(f, f"ml-100k/{f.name}")
    return archive


def test_download_verifies_checksum_and_leaves_nothing_on_failure(data_dir, tmp_path):
    archive = _zip_of(data_dir, tmp_path)
    root = tmp_path / "cache"
    with pytest.raises(D.DataError, match="MD5"):
        D.download_dataset("ml-100k", root, url=archive.as_uri())
    assert list(root.iterdir()) == []  # no partial archive, no half-extracted folder


def test_download_extracts_atomically_when_checksum_matches(data_dir, tmp_path, monkeypatch):
    archive = _zip_of(data_dir, tmp_path)
    md5 = hashlib.md5(archive.read_bytes()).hexdigest()
    spec = replace(D.DATASETS["ml-100k"], url=archive.as_uri(), md5=md5)
    monkeypatch.setitem(D.DATASETS, "ml-100k", spec)
    monkeypatch.setenv(D.CACHE_ENV_VAR, str(tmp_path / "cache"))
    monkeypatch.delenv(D.DATA_ENV_VAR, raising=False)
    ml = D.load_movielens("ml-100k")  # not in the cache yet: downloads
    assert len(ml.ratings) == 100_000
    assert [p.name for p in (tmp_path / "cache").iterdir()] == ["ml-100k"]


def test_offline_download_error_is_clear(tmp_path):
    with pytest.raises(D.DataError, match="could not download"):
        D.download_dataset("ml-100k", tmp_path, url=(tmp_path / "nope.zip").as_uri())
    assert list(tmp_path.iterdir()) == []


def test_unknown_dataset_names():
    with pytest.raises(ValueError, match="unknown dataset"):
        D.find_dataset("netflix")
    with pytest.raises(ValueError, match="unknown MovieLens"):
        D.load_movielens("ml-10m")
