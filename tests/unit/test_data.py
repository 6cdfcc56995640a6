"""MovieLens loading and the data store: content, index maps, validation errors,
checksums, atomic verified downloads, the cache root and atomic file writes."""
import gzip
import hashlib
import shutil
import zipfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from recsys_ref.data import movielens as D
from recsys_ref.data import store as S


def test_ml100k_content(ml100k):
    r = ml100k.ratings
    assert (ml100k.num_users, ml100k.num_items, len(r)) == (943, 1682, 100_000)
    assert list(r.columns) == ["user_id", "item_id", "user", "item", "rating", "timestamp"]
    assert r["rating"].between(1, 5).all()
    assert r["user"].min() == 0 and r["user"].max() == 942
    first = tuple(r.iloc[0][["user_id", "item_id", "rating", "timestamp"]])
    assert first == (196, 242, 3, 881250949)


def test_index_maps_round_trip(ml100k):
    r = ml100k.ratings
    assert np.array_equal(ml100k.user_ids[r["user"]], r["user_id"])
    assert np.array_equal(ml100k.item_ids[r["item"]], r["item_id"])
    assert ml100k.item_index[1] == 0 and ml100k.user_index[943] == 942


def test_interactions_view_matches_ratings(ml100k):
    inter = ml100k.interactions
    assert list(inter.frame.columns) == ["user", "item", "rating", "timestamp"]
    assert inter.frame.equals(ml100k.ratings[["user", "item", "rating", "timestamp"]])
    assert inter.to_user_index(196) == ml100k.user_index[196]
    assert inter.to_item_id(0) == 1


def test_items_and_users_frames(ml100k):
    toy = ml100k.items.loc[ml100k.item_index[1]]
    assert toy["title"] == "Toy Story (1995)" and toy["year"] == 1995
    assert toy["genres"] == ["Animation", "Children's", "Comedy"]
    u = ml100k.users.loc[0]
    assert (u["user_id"], u["age"], u["gender"], u["occupation"], u["zip"]) == \
        (1, 24, "M", "technician", "85711")


def test_ml1m_loads(data_dir):
    ml = D.load_movielens("ml-1m", data_dir=data_dir, download=False)
    assert (ml.num_users, ml.num_items, len(ml.ratings)) == (6040, 3706, 1_000_209)
    assert "Drama" in ml.genres


def test_env_var_is_used(monkeypatch, data_dir):
    monkeypatch.setenv(S.DATA_ENV_VAR, str(data_dir))
    assert S.find_dataset("ml-100k", download=False) == data_dir / "ml-100k"


def test_old_import_path_still_works():
    assert D.DataError is S.DataError and D.DATASETS is S.DATASETS
    assert D.find_dataset is S.find_dataset


def _copy(data_dir, tmp_path):
    dst = tmp_path / "ml-100k"
    shutil.copytree(data_dir / "ml-100k", dst)
    for p in dst.iterdir():
        p.chmod(0o644)  # the mirror is read-only
    return dst


def test_truncated_file_error_names_file_env_and_url(data_dir, tmp_path):
    dst = _copy(data_dir, tmp_path)
    lines = (dst / "u.data").read_text().splitlines()[:5000]
    (dst / "u.data").write_text("\n".join(lines) + "\n")
    with pytest.raises(S.DataError) as err:
        D.load_movielens("ml-100k", data_dir=tmp_path, download=False)
    msg = str(err.value)
    assert "u.data" in msg and "5,000 ratings, expected 100,000" in msg
    assert S.DATA_ENV_VAR in msg and S.DATASETS["ml-100k"].url in msg


def test_missing_and_corrupted_files(data_dir, tmp_path):
    dst = _copy(data_dir, tmp_path)
    (dst / "u.item").unlink()
    with pytest.raises(S.DataError, match=r"u\.item: file is missing"):
        D.load_movielens("ml-100k", data_dir=tmp_path, download=False)
    shutil.copy(data_dir / "ml-100k" / "u.item", dst / "u.item")
    text = (dst / "u.data").read_text().replace("\t3\t", "\t9\t", 10)
    (dst / "u.data").write_text(text)
    with pytest.raises(S.DataError, match="ratings outside 1..5"):
        D.load_movielens("ml-100k", data_dir=tmp_path, download=False)


def test_a_changed_rating_that_passes_every_count_fails_the_checksum(data_dir, tmp_path):
    dst = _copy(data_dir, tmp_path)
    text = (dst / "u.data").read_text()
    assert text.startswith("196\t242\t3\t")
    (dst / "u.data").write_text("196\t242\t4\t" + text[len("196\t242\t3\t"):])
    with pytest.raises(S.DataError) as err:
        D.load_movielens("ml-100k", data_dir=tmp_path, download=False)
    msg = str(err.value)
    assert "u.data: SHA-256 is" in msg and "06416e597f82" in msg
    assert S.DATA_ENV_VAR in msg and "files.grouplens.org" in msg


def test_named_folder_without_data_is_an_error_not_a_download(tmp_path):
    with pytest.raises(S.DataError, match="no 'ml-100k' folder"):
        S.find_dataset("ml-100k", data_dir=tmp_path, download=True)


def _zip_of(data_dir, tmp_path):
    archive = tmp_path / "ml-100k.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for f in (data_dir / "ml-100k").iterdir():
            zf.write(f, f"ml-100k/{f.name}")
    return archive


def test_download_verifies_md5_and_leaves_nothing_on_failure(data_dir, tmp_path):
    archive = _zip_of(data_dir, tmp_path)
    root = tmp_path / "cache"
    with pytest.raises(S.DataError, match="MD5"):
        S.download_dataset("ml-100k", root, url=archive.as_uri())
    assert list(root.iterdir()) == []  # no partial archive, no half-extracted folder


def test_download_extracts_atomically_when_checksum_matches(data_dir, tmp_path, monkeypatch):
    archive = _zip_of(data_dir, tmp_path)
    md5 = hashlib.md5(archive.read_bytes()).hexdigest()
    spec = S.DATASETS["ml-100k"]
    src = replace(spec.sources[0], url=archive.as_uri(), md5=md5)
    monkeypatch.setitem(S.DATASETS, "ml-100k", replace(spec, sources=(src,)))
    monkeypatch.setenv(S.CACHE_ENV_VAR, str(tmp_path / "cache"))
    monkeypatch.delenv(S.DATA_ENV_VAR, raising=False)
    ml = D.load_movielens("ml-100k")  # not in the cache yet: downloads
    assert len(ml.ratings) == 100_000
    assert [p.name for p in (tmp_path / "cache").iterdir()] == ["ml-100k"]


def test_download_with_a_wrong_file_inside_keeps_nothing(data_dir, tmp_path):
    archive = tmp_path / "ml-100k.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for f in (data_dir / "ml-100k").iterdir():
            data = f.read_bytes() if f.name != "u.user" else f.read_bytes()[:-10]
            zf.writestr(f"ml-100k/{f.name}", data)
    spec = replace(S.DATASETS["ml-100k"], sources=(S.Source(archive.as_uri(), True, "ml-100k"),))
    root = tmp_path / "cache"
    with pytest.raises(S.DataError, match=r"u\.user: SHA-256"):
        S.download_dataset(spec, root)
    assert list(root.iterdir()) == []


def test_archive_member_escaping_the_folder_is_refused(tmp_path):
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("../escape.txt", "x")
    spec = S.DatasetSpec("evil", archive.as_uri(), files=("escape.txt",),
                         sources=(S.Source(archive.as_uri(), archive=True),))
    with pytest.raises(S.DataError, match="unsafe member path"):
        S.download_dataset(spec, tmp_path / "cache")
    assert not (tmp_path / "escape.txt").exists()


def test_offline_download_error_is_clear(tmp_path):
    with pytest.raises(S.DataError, match="could not download"):
        S.download_dataset("ml-100k", tmp_path, url=(tmp_path / "nope.zip").as_uri())
    assert list(tmp_path.iterdir()) == []


def test_url_override_needs_a_single_source(tmp_path):
    with pytest.raises(ValueError, match="3 sources"):
        S.download_dataset("snap-ego-facebook", tmp_path, url="file:///x")


def test_unknown_dataset_names():
    with pytest.raises(ValueError, match="unknown dataset"):
        S.find_dataset("netflix")
    with pytest.raises(ValueError, match="unknown MovieLens"):
        D.load_movielens("ml-10m")


def test_gz_checksum_is_of_the_decompressed_bytes(tmp_path):
    raw = b"0 1\n0 2\n1 2\n" * 100
    a, b = tmp_path / "a.txt.gz", tmp_path / "b.txt.gz"
    a.write_bytes(gzip.compress(raw, compresslevel=9, mtime=0))
    b.write_bytes(gzip.compress(raw, compresslevel=1, mtime=12345))
    assert a.read_bytes() != b.read_bytes()
    assert S.file_sha256(a) == S.file_sha256(b) == hashlib.sha256(raw).hexdigest()
    plain = tmp_path / "c.txt"
    plain.write_bytes(raw)
    assert S.file_sha256(plain) == hashlib.sha256(raw).hexdigest()


def test_truncated_gz_is_a_data_error(tmp_path):
    path = tmp_path / "x.gz"
    path.write_bytes(gzip.compress(b"hello world" * 1000)[:40])
    with pytest.raises(S.DataError, match="truncated or corrupted"):
        S.file_sha256(path)


def test_cache_dir_follows_the_env_var_and_is_created(tmp_path, monkeypatch):
    monkeypatch.setenv(S.CACHE_ENV_VAR, str(tmp_path / "c"))
    assert S.cache_dir("text_emb") == tmp_path / "c" / "text_emb"
    assert (tmp_path / "c" / "text_emb").is_dir()
    monkeypatch.delenv(S.CACHE_ENV_VAR)
    assert S.cache_root() == Path.home() / ".cache" / "recsys_ref"


def test_lm_modules_use_the_one_cache_and_atomic_write():
    from recsys_ref.lm import generator, text
    assert text.cache_dir is S.cache_dir and generator.cache_dir is S.cache_dir
    assert text.atomic_write is S.atomic_write and generator.atomic_write is S.atomic_write


def test_atomic_write_replaces_the_file_whole(tmp_path):
    path = tmp_path / "out.bin"
    S.atomic_write(path, lambda fh: fh.write(b"first"))
    S.atomic_write(path, lambda fh: fh.write("sécond"), mode="w")
    assert path.read_text(encoding="utf-8") == "sécond"
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]


def test_atomic_write_failure_keeps_the_old_file_and_no_temp(tmp_path):
    path = tmp_path / "out.npy"
    arr = np.arange(3)
    S.atomic_write(path, lambda fh: np.save(fh, arr))

    def broken(fh):
        fh.write(b"partial")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        S.atomic_write(path, broken)
    assert np.array_equal(np.load(path), arr)
    assert [p.name for p in tmp_path.iterdir()] == ["out.npy"]
