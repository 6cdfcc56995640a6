r"""The interface every recommender in the book follows.

.. code-block:: python

    model = SomeModel(**hyper_parameters)
    model.fit(train, num_users, num_items, valid=valid)   # pandas frames, 0-based ids
    scores = model.score(users)       # (len(users), num_items) tensor, higher = better
    topk = model.recommend(users, k)  # (len(users), k) item indices, seen items excluded
    model.recommend(["alice"], k, id_map=data)    # original ids in, original ids out
    model.recommend_for_items([3, 17], k)         # a new user, from the items she chose
    model.save("model.pt"); SomeModel.load("model.pt")

``fit`` returns ``self``. ``score`` never masks anything; ``recommend`` masks the
training interactions it was fitted on (and anything in ``exclude``). A model is also
callable: ``model(users)`` is ``model.score(users)``.

**Inputs.** :func:`check_fit_frame` is the one check every ``fit`` runs (through
:meth:`Recommender._store_train`): ``user``/``item`` columns of 0-based integer indices
(string ids are mapped with ``recsys_ref.data.from_frame``), no NaN id, indices inside
``[0, num_users)`` / ``[0, num_items)``, finite ``rating`` (explicit feedback) or
``weight`` (implicit feedback: play counts, confidences) columns when present (each
model's docstring says which it reads and how), and one row per ``(user, item)`` pair
for models that need it.

**Hyper-parameters** are the arguments of ``__init__``, stored under the same attribute
names (scikit-learn's convention): :meth:`Recommender.get_params` reads them and
``repr`` shows those that differ from their defaults, e.g. ``ItemKNN(943x1682, k=50)``.

**Saving.** :meth:`Recommender.save` writes one file (``torch.save``, written to a
temporary file then moved into place with ``os.replace``) holding the class path, the
hyper-parameters and the fitted state; :meth:`Recommender.load` reads it back with
``torch.load(weights_only=True)`` (no code runs while reading) without calling
``__init__``. The fitted state is :meth:`Recommender._get_state`: by default every
instance attribute that is not a hyper-parameter. Numbers, strings, tuples, lists,
dicts, tensors, numpy arrays, scipy sparse matrices, pandas frames and nested
recommenders are stored as tensors and plain containers
(:mod:`recsys_ref.models.state`). A model holding anything else
(an ``nn.Module``, an optimiser) overrides the two hooks:

.. code-block:: python

    def _get_state(self) -> dict:
        state = super()._get_state()
        state["module"] = self.module.state_dict()    # tensors only
        return state

    def _set_state(self, state: dict) -> None:
        weights = state.pop("module")
        super()._set_state(state)                     # attributes back in place
        self.module = self.build()                    # same shapes as at fit time
        self.module.load_state_dict(weights)

Used in: ``chapters/01_recsys_basics`` and every chapter with a model.
"""
from __future__ import annotations

import importlib
import inspect
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

from recsys_ref.data.interactions import to_index
from recsys_ref.data.store import atomic_write
from recsys_ref.models.state import decode, encode
from recsys_ref.protocol.evaluate import interaction_matrix, topk_items
from recsys_ref.protocol.splits import check_interactions

__all__ = ["Recommender", "check_fit_frame", "FOLD_IN_MODELS", "FORMAT", "VALUE_COLUMNS"]

#: models whose :meth:`Recommender.score_items` can score a user unseen at fit time
FOLD_IN_MODELS = ("Popularity", "ItemKNN", "UserKNN (implicit)", "EASE", "SVDEmbedding",
                  "BiasedMF", "WRMF", "ContentBased", "WeightedHybrid", "SwitchingHybrid",
                  "LightGCN", "GFCF")
#: value columns of an interaction frame: explicit ratings or implicit weights
VALUE_COLUMNS = ("rating", "weight")
#: tag of the files written by :meth:`Recommender.save`
FORMAT = "recsys_ref.model/1"
_FROM_FRAME = ("map original ids to 0-based indices with recsys_ref.data.from_frame"
               "(frame, user=..., item=...), which returns the maps both ways")


def _rows(mask: np.ndarray, index: pd.Index) -> str:
    bad = index[np.flatnonzero(mask)]
    more = f" (and {len(bad) - 5} more)" if len(bad) > 5 else ""
    return f"{list(bad[:5])}{more}"


def check_fit_frame(frame: pd.DataFrame, num_users: int, num_items: int,
                    rating: str = "rating", require_rating: bool = False,
                    unique: bool = False, what: str = "training",
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Validate the frame a model is fitted on; the one input check of every ``fit``.

    Names the rows with NaN ids or values, runs
    :func:`recsys_ref.protocol.splits.check_interactions` (a frame with ``user`` and
    ``item`` columns of 0-based integer indices, not empty, no repeated pair when
    ``unique``), then checks what a model needs beyond a split: indices below
    ``num_users`` / ``num_items`` and a finite numeric value column.

    Args:
        frame: one row per interaction.
        num_users, num_items: sizes of the index spaces (positive).
        rating: name of the value column the model reads (default ``"rating"``); every
            value column present (``rating``, ``weight``) must be numeric and finite.
        require_rating: raise if ``rating`` is absent (models that learn from it).
        unique: refuse repeated ``(user, item)`` pairs (models that read one value per
            pair). Models that only use which pairs occur accept them.
        what: what the frame is, for the messages (``"training"``, ``"validation"``).

    Returns:
        ``(users (n,) int64, items (n,) int64, ratings (n,) float64 or None)``.

    Raises:
        TypeError: not a frame, string/categorical/float ids (map them with
            ``recsys_ref.data.from_frame``), a non-numeric value column.
        ValueError: missing columns, empty frame, NaN ids or values (the rows are
            named), indices out of range, repeated pairs when ``unique``.
    """
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"{what} data must be a pandas DataFrame with 'user' and 'item' "
                        f"columns, got {type(frame).__name__}")
    for n, name in ((num_users, "num_users"), (num_items, "num_items")):
        if not isinstance(n, (int, np.integer)) or n <= 0:
            raise ValueError(f"{name} must be a positive integer, got {n!r}")
    values = [c for c in dict.fromkeys((rating, *VALUE_COLUMNS)) if c in frame.columns]
    for col in ("user", "item", *values):
        if col in frame.columns and frame[col].isna().any():
            raise ValueError(f"{what} frame: column {col!r} is NaN at rows "
                             f"{_rows(frame[col].isna().to_numpy(), frame.index)}; drop or "
                             f"fill those rows (frame.dropna(subset=[{col!r}]))")
    check_interactions(frame, allow_duplicates=not unique)
    ids = []
    for col, size in (("user", int(num_users)), ("item", int(num_items))):
        arr = frame[col].to_numpy(dtype=np.int64)
        out = arr >= size
        if out.any():
            raise ValueError(f"{what} frame: {col} index outside 0..{size - 1} at rows "
                             f"{_rows(out, frame.index)} (values {list(arr[out][:5])}): pass "
                             f"0-based indices below num_{col}s={size}; {_FROM_FRAME}")
        ids.append(arr)
    for col in values:
        if frame[col].dtype.kind not in "iufb":
            raise TypeError(f"{what} frame: column {col!r} must be numeric, "
                            f"got {frame[col].dtype}")
        bad = ~np.isfinite(frame[col].to_numpy(dtype=np.float64))
        if bad.any():
            raise ValueError(f"{what} frame: column {col!r} is infinite at rows "
                             f"{_rows(bad, frame.index)}; drop or fix those rows")
    ratings = frame[rating].to_numpy(dtype=np.float64) if rating in frame.columns else None
    if ratings is None and require_rating:
        hint = (" It has 'weight' (implicit feedback): this model regresses explicit "
                "ratings; rename the column to 'rating' to fit the weights as they are, or "
                "use a ranking model." if "weight" in frame.columns else "")
        raise ValueError(f"{what} frame lacks a {rating!r} column, which this model learns "
                         f"from; it has {list(frame.columns)}.{hint}")
    return ids[0], ids[1], ratings


def _short(value) -> str:
    if isinstance(value, (pd.DataFrame, np.ndarray, torch.Tensor)) or sp.issparse(value):
        return f"<{type(value).__name__} {'x'.join(map(str, value.shape))}>"
    return repr(value)


def _same(a, b) -> bool:
    """``a == b`` for repr: a value equal to its default is not shown."""
    if a is b:
        return True
    if type(a) is not type(b) and not (isinstance(a, (int, float)) and isinstance(b, (int, float))
                                       and not isinstance(a, bool) and not isinstance(b, bool)):
        return False
    try:
        equal = a == b
    except (TypeError, ValueError):
        return False
    return isinstance(equal, (bool, np.bool_)) and bool(equal)


class Recommender:
    """Base class: input checks, :meth:`recommend`, fold-in, ``repr``, save and load."""

    #: name used by ``python -m recsys_ref.cli.bench --model NAME``
    name: str = "base"
    #: ``__init__`` arguments that are data, not hyper-parameters (not in repr or params)
    _data_params: tuple[str, ...] = ()
    #: hyper-parameter -> attribute holding it, where the two names differ
    _param_attrs: dict[str, str] = {}
    train_matrix: sp.csr_matrix | None = None
    num_users: int = 0
    num_items: int = 0
    #: original ids (``user_ids[u]`` is the id of index ``u``), see :meth:`set_id_map`
    user_ids: np.ndarray | None = None
    item_ids: np.ndarray | None = None

    def fit(self, train: pd.DataFrame, num_users: int, num_items: int,
            valid: pd.DataFrame | None = None) -> "Recommender":  # pragma: no cover
        raise NotImplementedError

    def score(self, users: torch.Tensor) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

    def __call__(self, users: torch.Tensor) -> torch.Tensor:
        """``model(users)`` is ``model.score(users)`` (so a model is a ``score_fn``)."""
        return self.score(users)

    # ------------------------------------------------------------------ checks
    def _store_train(self, train: pd.DataFrame, num_users: int, num_items: int,
                     require_rating: bool = False, unique: bool = False) -> sp.csr_matrix:
        """Run :func:`check_fit_frame` and keep the binary ``(U, I)`` training matrix."""
        users, items, _ = check_fit_frame(train, num_users, num_items,
                                          require_rating=require_rating, unique=unique)
        self.num_users, self.num_items = int(num_users), int(num_items)
        mat = sp.csr_matrix((np.ones(len(users), dtype=np.float32), (users, items)),
                            shape=(self.num_users, self.num_items))
        mat.data[:] = 1.0  # repeated pairs were summed: keep it binary
        self.train_matrix = mat
        return mat

    def _check_fitted(self) -> None:
        if self.train_matrix is None:
            raise RuntimeError(f"{type(self).__name__} is not fitted; call fit(train, ...) first")

    def _check_users(self, users) -> torch.Tensor:
        self._check_fitted()
        users = torch.as_tensor(users, dtype=torch.long)
        if users.numel() and (users.min() < 0 or users.max() >= self.num_users):
            raise ValueError(
                f"user index outside 0..{self.num_users - 1}: unknown user(s); models score "
                "only users seen at fit time (pass 0-based indices, or score_items for a "
                "new user)")
        return users

    # ------------------------------------------------------------------ ids
    def set_id_map(self, id_map) -> "Recommender":
        """Keep the original ids: ``id_map`` has ``user_ids``/``item_ids`` arrays
        (``recsys_ref.data.from_frame``'s result, a ``MovieLens``) or is a pair
        ``(user_ids, item_ids)``. Saved with the model; used by ``id_map=True``."""
        self.user_ids, self.item_ids = self._id_arrays(id_map, stored=False)
        return self

    def _id_arrays(self, id_map, stored: bool = True) -> tuple[np.ndarray, np.ndarray]:
        if id_map is True and stored:
            if self.user_ids is None:
                raise ValueError("id_map=True needs a map stored with set_id_map(data) first")
            return self.user_ids, self.item_ids
        if isinstance(id_map, (tuple, list)) and len(id_map) == 2:
            user_ids, item_ids = id_map
        elif hasattr(id_map, "user_ids") and hasattr(id_map, "item_ids"):
            user_ids, item_ids = id_map.user_ids, id_map.item_ids
        else:
            raise TypeError("id_map must have user_ids and item_ids arrays (from_frame's "
                            f"result) or be a pair (user_ids, item_ids), got {type(id_map)}")
        user_ids, item_ids = np.asarray(user_ids), np.asarray(item_ids)
        if self.train_matrix is not None and (len(user_ids), len(item_ids)) != (
                self.num_users, self.num_items):
            raise ValueError(f"id map has {len(user_ids)} users and {len(item_ids)} items, the "
                             f"model {self.num_users} and {self.num_items}: not the same data")
        return user_ids, item_ids

    @staticmethod
    def _to_index(ids, known: np.ndarray, what: str) -> np.ndarray:
        if isinstance(ids, (torch.Tensor, np.ndarray)):
            ids = ids.tolist()
        return to_index([ids] if np.isscalar(ids) else list(ids), np.asarray(known), what)

    # ------------------------------------------------------------------ ranking
    def recommend(self, users: Sequence | np.ndarray | torch.Tensor, k: int = 10,
                  exclude=(), batch_size: int = 1024, id_map=None) -> torch.Tensor | np.ndarray:
        """Top-``k`` unseen items per user (best first, ties: lower index first).

        Args:
            users: 0-based user indices, or original ids when ``id_map`` is given.
            k: list length.
            exclude: interactions never recommended besides the training ones: a frame,
                a sparse ``(U, I)`` matrix, or a list of them.
            batch_size: users scored at once.
            id_map: ``None`` (indices in and out), an object with ``user_ids``/
                ``item_ids`` arrays or a pair of arrays, or ``True`` (the map stored by
                :meth:`set_id_map`): original ids in and out.

        Returns:
            ``(len(users), k)`` LongTensor of item indices, or with ``id_map`` a numpy
            array of original item ids.
        """
        ids = None if id_map is None else self._id_arrays(id_map)
        if ids is not None:
            self._check_fitted()
            users = self._to_index(users, ids[0], "user")
        users = self._check_users(users)
        mask = self.train_matrix
        if isinstance(exclude, pd.DataFrame) or sp.issparse(exclude):
            exclude = [exclude]
        for extra in exclude or ():
            if isinstance(extra, pd.DataFrame):
                extra = interaction_matrix(extra, self.num_users, self.num_items)
            elif not sp.issparse(extra) or extra.shape != mask.shape:
                raise TypeError(f"exclude holds {_short(extra)}; pass interaction frames or "
                                f"sparse {mask.shape} matrices (or a list of them)")
            mask = mask + extra
        top = topk_items(self.score, k, users, self.num_items, mask, batch_size)
        return top if ids is None else ids[1][top.numpy()]

    # ------------------------------------------------------------------ fold-in
    def score_items(self, items, ratings=None, id_map=None) -> torch.Tensor:
        """Scores ``(num_items,)`` for a user unseen at fit time who chose ``items``
        ("fold-in"), where the model allows it (:data:`FOLD_IN_MODELS`).

        Args:
            items: the user's items, 0-based indices (original ids with ``id_map``).
            ratings: one value per item for models that use values (default: all 1).
            id_map: as in :meth:`recommend`.
        """
        self._check_fitted()
        if id_map is not None:
            items = self._to_index(items, self._id_arrays(id_map)[1], "item")
        items = np.asarray(items).ravel()
        if items.dtype.kind not in "iu" and len(items):
            raise TypeError(f"items must be integer indices, got {items.dtype}; {_FROM_FRAME}")
        items = items.astype(np.int64)
        if len(items) and (items.min() < 0 or items.max() >= self.num_items):
            raise ValueError(f"item index outside 0..{self.num_items - 1}: pass 0-based indices")
        if len(np.unique(items)) != len(items):
            raise ValueError("items holds repeated items; list each item once")
        if ratings is None:
            ratings = np.ones(len(items))
        ratings = np.asarray(ratings, dtype=np.float64).ravel()
        if ratings.shape != items.shape or not np.isfinite(ratings).all():
            raise ValueError(f"ratings must be {len(items)} finite numbers, one per item")
        return self._score_items(items, ratings)

    def _score_items(self, items: np.ndarray, ratings: np.ndarray) -> torch.Tensor:
        raise NotImplementedError(
            f"{type(self).__name__} cannot score a user it was not fitted on (no fold-in); "
            f"models that can: {', '.join(FOLD_IN_MODELS)}")

    def recommend_for_items(self, items, k: int = 10, ratings=None,
                            id_map=None) -> torch.Tensor | np.ndarray:
        """Top-``k`` items ``(k,)`` for a new user who chose ``items`` (those excluded)."""
        item_ids = None if id_map is None else self._id_arrays(id_map)[1]
        given = items if id_map is None else self._to_index(items, item_ids, "item")
        scores = self.score_items(given, ratings)
        mask = sp.csr_matrix((np.ones(len(given)), (np.zeros(len(given), dtype=np.int64),
                                                    np.asarray(given, dtype=np.int64))),
                             shape=(1, self.num_items))
        top = topk_items(scores[None, :], k, [0], self.num_items, mask)[0]
        return top if item_ids is None else item_ids[top.numpy()]

    # ------------------------------------------------------------------ parameters, repr
    @classmethod
    def _init_params(cls) -> dict[str, inspect.Parameter]:
        """The hyper-parameters with their effective defaults: ``__init__``'s arguments,
        and where it passes ``**kwargs`` on, those of the parent's ``__init__`` (with the
        class's :attr:`defaults` overriding the parent's defaults)."""
        out: dict[str, inspect.Parameter] = {}
        overrides = getattr(cls, "defaults", {}) or {}
        for klass in cls.__mro__:
            init = klass.__dict__.get("__init__")
            if init is None:
                continue
            more = False
            for n, p in inspect.signature(init).parameters.items():
                if p.kind is p.VAR_KEYWORD:
                    more = True
                elif (n != "self" and n not in out and n not in cls._data_params
                      and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)):
                    out[n] = p.replace(default=overrides.get(n, p.default))
            if not more:
                break
        return out

    @classmethod
    def _param_names(cls) -> list[str]:
        return list(cls._init_params())

    def get_params(self) -> dict:
        """The hyper-parameters (``__init__`` arguments) and their current values."""
        sig = self._init_params()
        return {n: getattr(self, self._param_attrs.get(n, n), sig[n].default)
                for n in sig}

    def __repr__(self) -> str:
        sig = self._init_params()
        parts = [f"{self.num_users}x{self.num_items}"] if self.train_matrix is not None else []
        parts += [f"{n}={_short(v)}" for n, v in self.get_params().items()
                  if not _same(v, sig[n].default)]
        return f"{type(self).__name__}({', '.join(parts)})"

    # ------------------------------------------------------------------ save / load
    def _get_state(self) -> dict:
        """Fitted state to save: every attribute that is not a hyper-parameter."""
        params = {self._param_attrs.get(n, n) for n in self._param_names()}
        return {k: v for k, v in vars(self).items() if k not in params}

    def _set_state(self, state: dict) -> None:
        """Put a state from :meth:`_get_state` back (after the hyper-parameters)."""
        for key, value in state.items():
            setattr(self, key, value)

    def _payload(self) -> dict:
        cls = type(self)
        name = cls.__name__
        return {"class": f"{cls.__module__}:{cls.__qualname__}",
                "params": {k: encode(v, f"{name}.{k}") for k, v in self.get_params().items()},
                "state": {k: encode(v, f"{name}.{k}") for k, v in self._get_state().items()}}

    @staticmethod
    def _from_payload(payload: dict) -> "Recommender":
        module, qualname = payload["class"].split(":")
        if module not in sys.modules and not module.startswith("recsys_ref."):
            raise ValueError(f"the file holds a {payload['class']}; import {module} first "
                             "(load imports only recsys_ref modules by itself)")
        obj = importlib.import_module(module)
        for part in qualname.split("."):
            obj = getattr(obj, part)
        if not (isinstance(obj, type) and issubclass(obj, Recommender)):
            raise TypeError(f"{payload['class']} is not a Recommender")
        model = obj.__new__(obj)
        for k, v in payload["params"].items():
            setattr(model, obj._param_attrs.get(k, k), decode(v))
        model._set_state({k: decode(v) for k, v in payload["state"].items()})
        return model

    def save(self, path: str | os.PathLike) -> Path:
        """Write the model to one file (see the module docstring); returns its path."""
        path = Path(path)
        payload = {"format": FORMAT, **self._payload()}
        path.parent.mkdir(parents=True, exist_ok=True)
        return atomic_write(path, lambda fh: torch.save(payload, fh))

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Recommender":
        """Read a model written by :meth:`save` (``ItemKNN.load`` also checks the class)."""
        payload = torch.load(Path(path), map_location="cpu", weights_only=True)
        if not isinstance(payload, dict) or payload.get("format") != FORMAT:
            raise ValueError(f"{path} is not a model saved by Recommender.save ({FORMAT})")
        model = Recommender._from_payload(payload)
        if not isinstance(model, cls):
            raise TypeError(f"{path} holds a {type(model).__name__}, not a {cls.__name__}")
        return model
