"""The fast encoding path: length-sorted batches give the one-text-at-a-time embeddings in
input order; truncation is counted; threads are restored; bf16 is an explicit, close option.
Also the numeric item metadata features, by hand."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from recsys_ref.lm.text import TextEncoder, item_metadata_features

TEXTS = ["Heat (1995). Genres: Action, Crime, Thriller. Directed by Michael Mann. Starring Al Pacino.",
         "a", "Fargo (1996)", "b c d e", "Toy Story (1995). Genres: Animation, Children's, Comedy.",
         "Casablanca", "Star Wars (1977). Genres: Action, Adventure, Romance, Sci-Fi, War."]


@pytest.fixture(scope="module")
def one_by_one():
    try:
        enc = TextEncoder(device="cpu", batch_size=1, cache=False)
    except ValueError as err:  # the model package is not installed
        pytest.skip(str(err))
    return enc.encode(TEXTS)


def test_sorted_batches_equal_unsorted_one_by_one_in_input_order(one_by_one):
    enc = TextEncoder(device="cpu", batch_size=3, cache=False)
    lengths = enc.token_lengths(TEXTS)
    assert not np.all(np.diff(lengths) >= 0)                     # the input is not sorted
    np.testing.assert_allclose(enc.encode(TEXTS), one_by_one, atol=1e-5)
    rev = enc.encode(TEXTS[::-1])                                # order follows the input
    np.testing.assert_allclose(rev, one_by_one[::-1], atol=1e-5)
    assert enc.num_truncated == 0


def test_truncation_is_counted_and_applied(one_by_one):
    enc = TextEncoder(device="cpu", batch_size=4, cache=False, max_length=8)
    lengths = enc.token_lengths(TEXTS)
    emb = enc.encode(TEXTS)
    assert enc.num_truncated == int((lengths > 8).sum()) > 0
    short = lengths <= 8
    np.testing.assert_allclose(emb[short], one_by_one[short], atol=1e-5)   # untouched texts
    assert not np.allclose(emb[~short], one_by_one[~short], atol=1e-3)      # cut texts differ


def test_num_threads_is_applied_then_restored(one_by_one, monkeypatch):
    seen = []
    real = torch.set_num_threads
    monkeypatch.setattr(torch, "set_num_threads", lambda n: (seen.append(n), real(n)))
    before = torch.get_num_threads()
    TextEncoder(device="cpu", cache=False, num_threads=2).encode(TEXTS[:2])
    assert seen == [2, before] and torch.get_num_threads() == before


def test_bf16_is_close_to_fp32_and_cached_apart(one_by_one, tmp_path, monkeypatch):
    monkeypatch.setenv("RECSYS_REF_CACHE", str(tmp_path))
    bf = TextEncoder(device="cpu", precision="bf16")
    emb = bf.encode(TEXTS)
    cos = (emb * one_by_one).sum(1)
    assert cos.min() > 0.999 and not np.array_equal(emb, one_by_one)
    assert bf.model_key != TextEncoder(device="cpu").model_key
    with pytest.raises(ValueError, match="precision"):
        TextEncoder(device="cpu", precision="int4")
    with pytest.raises(ValueError, match="num_threads"):
        TextEncoder(device="cpu", num_threads=0)


def test_item_metadata_features_by_hand():
    items = pd.DataFrame({"year": [1995.0, 1997.0, np.nan, 1975.0],
                          "genres": [["Comedy"], ["Drama", "Comedy"], [], ["Drama"]]})
    meta = pd.DataFrame({"awards": ["Won 2 Oscars. Nominated for 3 Oscars.", np.nan, "Nominated for 1 Oscar.", ""],
                         "matched": [True, False, True, True]})
    f = item_metadata_features(items, meta, recent_years=2)
    # missing year -> median 1995; years (1995, 1997, 1995, 1975): mean 1990.5, std (ddof 0)
    year = np.array([1995, 1997, 1995, 1975.0])
    np.testing.assert_allclose(f["year_z"], (year - 1990.5) / year.std())
    assert f["decade_1970"].tolist() == [0, 0, 0, 1] and f["decade_1990"].tolist() == [1, 1, 1, 0]
    assert f["year_1996"].tolist() == [0, 0, 0, 0] and f["year_1997"].tolist() == [0, 1, 0, 0]
    np.testing.assert_allclose(f["log_oscars_won"], np.log1p([2, 0, 0, 0]))
    np.testing.assert_allclose(f["log_oscars_nominated"], np.log1p([3, 0, 1, 0]))
    assert f["omdb_matched"].tolist() == [1, 0, 1, 1]
    assert f["genre_Comedy"].tolist() == [1, 1, 0, 0] and f["genre_Drama"].tolist() == [0, 1, 0, 1]
    with pytest.raises(ValueError, match="genres"):
        item_metadata_features(items[["year"]])


def test_auto_precision_follows_the_device(one_by_one, monkeypatch):
    import recsys_ref.lm.text as text

    monkeypatch.setattr(text, "native_bf16", lambda device: True)
    assert TextEncoder(device="cpu", precision="auto").precision == "bf16"
    monkeypatch.setattr(text, "native_bf16", lambda device: False)
    auto = TextEncoder(device="cpu", precision="auto")
    assert auto.precision == "fp32" and auto.model_key == TextEncoder(device="cpu").model_key


def test_native_bf16_reads_the_cpu_capability(monkeypatch):
    from recsys_ref.lm.text import native_bf16

    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False, raising=False)
    assert native_bf16("cpu") is False
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: True, raising=False)
    assert native_bf16("cpu") is True
    assert native_bf16("meta") is False
