"""The loaders beyond MovieLens (KB4Rec graph, Last.fm, ego-Facebook, Amazon 2018): the
published counts read from the offline mirror, alignment of their indices, clear errors on
truncated or altered copies, and downloads from local file:// URLs (no network here).
Each test is skipped when its dataset's folder is absent."""
import csv
import gzip
import shutil
import tarfile
import zipfile
from dataclasses import replace

import numpy as np
import pytest
import scipy.sparse as sp

from recsys_ref.data import DataError, amazon, download_dataset, store
from recsys_ref.data import load_amazon, load_facebook, load_lastfm, load_movielens_kg


def _need(data_dir, name):
    if not (data_dir / name).is_dir():
        pytest.skip(f"no {name}/ in {data_dir}")
    return data_dir / name


def _copy(data_dir, tmp_path, name):
    shutil.copytree(_need(data_dir, name), tmp_path / name)
    for p in (tmp_path / name).iterdir():
        p.chmod(0o644)  # the mirror is read-only
    return tmp_path / name


def _assert_helpful(msg, fname, url_part):
    assert fname in msg and store.DATA_ENV_VAR in msg and url_part in msg


# -- KB4Rec knowledge graph of ML-100K -------------------------------------------------

@pytest.fixture(scope="module")
def kg(data_dir, ml100k):
    _need(data_dir, "ml-100k-kg")
    return load_movielens_kg(data_dir, download=False, movielens=ml100k)


def test_kg_published_counts(kg):
    assert (len(kg.links), len(kg.triples)) == (1_598, 91_631)
    assert (kg.num_entities, kg.num_relations, kg.num_items) == (34_628, 24, 1_682)


def test_kg_links_align_with_movielens_items(kg, ml100k, data_dir):
    assert np.array_equal(ml100k.item_ids[kg.links["item"]], kg.links["item_id"])
    # the file's first row, 476 -> m.08gjyx
    row = kg.links[kg.links["item_id"] == 476].iloc[0]
    assert row["item"] == ml100k.item_index[476] and row["entity_id"] == "m.08gjyx"
    # linked items' entities come first, in item order
    assert kg.links["entity"].tolist() == list(range(1_598))
    assert kg.entity_ids[kg.links["entity"]].tolist() == kg.links["entity_id"].tolist()


def test_kg_triples_decode_to_the_file(kg, data_dir):
    with open(data_dir / "ml-100k-kg" / "ml-100k.kg") as fh:
        rows = list(csv.reader(fh, delimiter="\t"))[1:]
    t = kg.triples.iloc[[0, -1]]
    decoded = [[kg.entity_ids[h], kg.relation_names[r], kg.entity_ids[tl]]
               for h, r, tl in t.to_numpy()]
    assert decoded == [rows[0], rows[-1]]
    assert rows[0] == ["m.04ctbw8", "film.producer.film", "m.0bln8"]


def test_kg_truncated_file(data_dir, tmp_path, ml100k):
    dst = _copy(data_dir, tmp_path, "ml-100k-kg")
    lines = (dst / "ml-100k.kg").read_text().splitlines(keepends=True)
    (dst / "ml-100k.kg").write_text("".join(lines[:50_001]))
    with pytest.raises(DataError, match="50,000 triples, expected 91,631") as err:
        load_movielens_kg(tmp_path, download=False, movielens=ml100k)
    _assert_helpful(str(err.value), "ml-100k.kg", "raw.githubusercontent.com/RUCAIBox")


def test_kg_downloads_each_file_from_its_url(data_dir, tmp_path, ml100k):
    src = _need(data_dir, "ml-100k-kg")
    spec = store.DATASETS["ml-100k-kg"]
    local = replace(spec, sources=tuple(
        store.Source((src / s.filename).as_uri()) for s in spec.sources))
    folder = download_dataset(local, tmp_path / "cache")
    assert sorted(p.name for p in folder.iterdir()) == ["ml-100k.kg", "ml-100k.link"]
    assert len(load_movielens_kg(folder, download=False, movielens=ml100k).links) == 1_598


# -- HetRec 2011 Last.fm 2K ----------------------------------------------------------------

@pytest.fixture(scope="module")
def lastfm(data_dir):
    _need(data_dir, "hetrec2011-lastfm-2k")
    return load_lastfm(data_dir, download=False)


def test_lastfm_published_counts(lastfm):
    assert (lastfm.num_users, lastfm.num_items, len(lastfm.plays)) == (1_892, 17_632, 92_834)
    assert list(lastfm.plays.columns) == ["user", "item", "weight"]
    assert lastfm.plays["weight"].min() >= 1 and len(lastfm.artists) == 17_632
    assert len(lastfm.friends) == 25_434


def test_lastfm_first_row_and_artist_names(lastfm):
    first = lastfm.plays.iloc[0]
    assert lastfm.user_ids[first["user"]] == 2 and lastfm.item_ids[first["item"]] == 51
    assert first["weight"] == 13_883
    gaga = lastfm.interactions.to_item_index(89)
    assert lastfm.artists.loc[gaga, "name"] == "Lady Gaga"
    assert lastfm.artists.loc[gaga, "artist_id"] == 89


def test_lastfm_friends_are_symmetric_in_the_user_index(lastfm):
    pairs = set(map(tuple, lastfm.friends.to_numpy().tolist()))
    assert pairs == {(b, a) for a, b in pairs} and len(pairs) == 25_434
    assert lastfm.friends.to_numpy().max() < lastfm.num_users


def test_lastfm_tags_keep_played_artists_only(lastfm, data_dir):
    path = data_dir / "hetrec2011-lastfm-2k"
    with open(path / "user_artists.dat", newline="") as fh:
        played = {r["artistID"] for r in csv.DictReader(fh, delimiter="\t")}
    with open(path / "user_taggedartists.dat", newline="") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    assert len(rows) == 186_479
    assert len(lastfm.tags) == sum(r["artistID"] in played for r in rows)   # 184,941
    first = lastfm.tags.iloc[0]                                # 2  52  13  1  4  2009
    assert (lastfm.user_ids[first["user"]], lastfm.item_ids[first["item"]]) == (2, 52)
    assert first["tag"] == "chillout" and str(first["date"])[:10] == "2009-04-01"


def test_lastfm_truncated_and_altered_files(data_dir, tmp_path):
    dst = _copy(data_dir, tmp_path, "hetrec2011-lastfm-2k")
    original = (dst / "user_artists.dat").read_bytes()
    lines = original.splitlines(keepends=True)
    (dst / "user_artists.dat").write_bytes(b"".join(lines[:50_001]))
    with pytest.raises(DataError, match=r"50,000 rows, expected 92,834") as err:
        load_lastfm(tmp_path, download=False)
    _assert_helpful(str(err.value), "user_artists.dat", "hetrec2011-lastfm-2k.zip")
    (dst / "user_artists.dat").write_bytes(original.replace(b"2\t51\t13883", b"2\t51\t13884"))
    with pytest.raises(DataError, match=r"user_artists\.dat: SHA-256"):
        load_lastfm(tmp_path, download=False)


def test_lastfm_downloads_the_zip_atomically(data_dir, tmp_path):
    src = _need(data_dir, "hetrec2011-lastfm-2k")
    archive = tmp_path / "hetrec2011-lastfm-2k.zip"
    with zipfile.ZipFile(archive, "w") as zf:          # files at the top level, as published
        for f in src.iterdir():
            zf.write(f, f.name)
    spec = replace(store.DATASETS["hetrec2011-lastfm-2k"],
                   sources=(store.Source(archive.as_uri(), archive=True),))
    folder = download_dataset(spec, tmp_path / "cache")
    assert folder == tmp_path / "cache" / "hetrec2011-lastfm-2k"
    assert [p.name for p in folder.parent.iterdir()] == [folder.name]
    assert load_lastfm(folder, download=False).num_users == 1_892


# -- SNAP ego-Facebook -------------------------------------------------------------------

@pytest.fixture(scope="module")
def facebook(data_dir):
    _need(data_dir, "snap-ego-facebook")
    return load_facebook(data_dir, download=False)


def test_facebook_published_counts(facebook):
    assert (facebook.num_nodes, facebook.num_edges, len(facebook.egos)) == (4_039, 88_234, 10)
    assert facebook.circles.groupby(["ego", "circle"]).ngroups == 193
    assert facebook.edge_index().shape == (2, 2 * 88_234)
    assert (facebook.edges["source"] < facebook.edges["target"]).all()


def test_facebook_triangles_and_clustering_match_snap(facebook):
    n = facebook.num_nodes
    adj = sp.csr_matrix((np.ones(2 * facebook.num_edges), facebook.edge_index()), shape=(n, n))
    tri = np.asarray((adj @ adj).multiply(adj).sum(axis=1)).ravel() / 2   # per node
    assert tri.sum() / 3 == 1_612_010
    deg = np.asarray(adj.sum(axis=1)).ravel()
    local = np.divide(2 * tri, deg * (deg - 1), out=np.zeros(n), where=deg > 1)
    assert local.mean() == pytest.approx(0.6055, abs=5e-5)


def test_facebook_features_match_the_ego_file(facebook, data_dir):
    with tarfile.open(data_dir / "snap-ego-facebook" / "facebook.tar.gz") as tf:
        names = tf.extractfile("facebook/0.featnames").read().decode().splitlines()
        bits = tf.extractfile("facebook/0.egofeat").read().decode().split()
    expected = {names[j].split(" ", 1)[1] for j, b in enumerate(bits) if b == "1"}
    mine = facebook.features[facebook.features["node"] == 0]["feature"]
    assert {facebook.feature_names[f] for f in mine} >= expected
    x = facebook.feature_matrix()
    assert x.shape == (4_039, facebook.num_features) and x.sum() == len(facebook.features)


def test_facebook_truncated_archive(data_dir, tmp_path):
    dst = _copy(data_dir, tmp_path, "snap-ego-facebook")
    data = (dst / "facebook.tar.gz").read_bytes()
    (dst / "facebook.tar.gz").write_bytes(data[: len(data) // 3])
    with pytest.raises(DataError, match="truncated or corrupted") as err:
        load_facebook(tmp_path, download=False)
    _assert_helpful(str(err.value), "facebook.tar.gz", "snap.stanford.edu/data/facebook.tar.gz")


def test_facebook_download_accepts_a_regzipped_copy(data_dir, tmp_path):
    src = _need(data_dir, "snap-ego-facebook")
    mirror = tmp_path / "mirror"
    shutil.copytree(src, mirror)
    edges = mirror / "facebook_combined.txt.gz"
    edges.chmod(0o644)
    edges.write_bytes(gzip.compress(gzip.decompress(edges.read_bytes()), 1, mtime=1))
    spec = store.DATASETS["snap-ego-facebook"]
    local = replace(spec, sources=tuple(
        store.Source((mirror / s.filename).as_uri()) for s in spec.sources))
    folder = download_dataset(local, tmp_path / "cache")
    assert load_facebook(folder, download=False).num_edges == 88_234


# -- Amazon Review Data 2018 -----------------------------------------------------------

@pytest.fixture(scope="module")
def gift_cards(data_dir):
    _need(data_dir, "amazon2018-gift-cards")
    return load_amazon("Gift_Cards", data_dir, download=False)


def test_amazon_published_counts(gift_cards):
    assert (gift_cards.num_users, gift_cards.num_items, len(gift_cards.reviews)) == \
        (458, 148, 2_972)
    assert list(gift_cards.ratings.columns) == ["user", "item", "rating", "timestamp"]
    assert gift_cards.items["title"].notna().all() and len(gift_cards.items) == 148


def test_amazon_repeated_reviews_keep_the_latest(gift_cards, data_dir):
    import pandas as pd
    raw = pd.read_json(data_dir / "amazon2018-gift-cards" / "Gift_Cards_5.json.gz",
                       lines=True, dtype={"asin": str, "reviewerID": str})
    assert raw.duplicated(["reviewerID", "asin"]).sum() == 7
    assert len(gift_cards.ratings) == 2_972 - 7
    latest = raw.sort_values("unixReviewTime", kind="stable").drop_duplicates(
        ["reviewerID", "asin"], keep="last")
    mine = gift_cards.interactions.with_original_ids()
    got = dict(zip(zip(mine["user_id"], mine["item_id"]), mine["rating"]))
    assert all(got[(r.reviewerID, r.asin)] == r.overall for r in latest.itertuples())


def test_amazon_category_names():
    assert amazon.amazon_spec("gift cards") == amazon.amazon_spec("Gift_Cards")
    spec = amazon.amazon_spec("Arts, Crafts & Sewing")
    assert spec.name == "amazon2018-arts-crafts-and-sewing"
    assert spec.files == ("Arts_Crafts_and_Sewing_5.json.gz",
                          "meta_Arts_Crafts_and_Sewing.json.gz")
    assert spec.sources[0].url.endswith("/categoryFilesSmall/Arts_Crafts_and_Sewing_5.json.gz")
    with pytest.raises(ValueError, match="unknown Amazon 2018 category 'Shoes'.*Gift_Cards"):
        amazon.amazon_spec("Shoes")


def test_amazon_truncated_file(data_dir, tmp_path):
    dst = _copy(data_dir, tmp_path, "amazon2018-gift-cards")
    data = (dst / "Gift_Cards_5.json.gz").read_bytes()
    (dst / "Gift_Cards_5.json.gz").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="cannot be parsed") as err:
        load_amazon("Gift_Cards", tmp_path, download=False)
    _assert_helpful(str(err.value), "Gift_Cards_5.json.gz", "categoryFilesSmall/Gift_Cards")


def test_amazon_downloads_from_the_publisher_layout(data_dir, tmp_path, monkeypatch):
    src = _need(data_dir, "amazon2018-gift-cards")
    site = tmp_path / "site"
    (site / "categoryFilesSmall").mkdir(parents=True)
    (site / "metaFiles2").mkdir()
    shutil.copy(src / "Gift_Cards_5.json.gz", site / "categoryFilesSmall")
    shutil.copy(src / "meta_Gift_Cards.json.gz", site / "metaFiles2")
    monkeypatch.setattr(amazon, "AMAZON_BASE_URL", site.as_uri())
    monkeypatch.setenv(store.CACHE_ENV_VAR, str(tmp_path / "cache"))
    monkeypatch.delenv(store.DATA_ENV_VAR, raising=False)
    az = load_amazon("Gift Cards")
    assert az.path == tmp_path / "cache" / "amazon2018-gift-cards"
    assert (az.num_users, az.num_items) == (458, 148)
