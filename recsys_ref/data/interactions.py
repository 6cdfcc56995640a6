r"""The package's interaction table, and how to bring your own data into it.

Every model, split and metric of the book reads interactions in one form: a frame with
columns ``user`` and ``item`` (0-based contiguous ``int64`` indices), then ``rating``
(explicit feedback) *or* ``weight`` (implicit feedback: play counts, clicks,
confidences), then ``timestamp`` when known; plus the two id maps

.. math::

    \text{user\_ids}[u] = \text{original id of user } u, \qquad
    \text{user\_index}[\text{original id}] = u \quad (u = 0, \dots, |U| - 1),

and the same for items. :func:`from_frame` builds it from any frame (any column names,
string or 1-based ids, ratings or weights, numbers or datetimes as times), with a clear
:class:`~recsys_ref.data.store.DataError` for an empty frame, a missing column, a NaN, a
non-numeric rating and duplicate ``(user, item)`` rows (an error unless you choose how to
merge them with ``duplicates=``). Original ids are indexed in sorted order, so 1-based
ids ``1..n`` become ``0..n-1``.

Shapes:
    - ``Interactions.frame``: ``(n, 2 + 1 + 1)`` at most (user, item, rating|weight,
      timestamp)
    - ``user_ids``: ``(num_users,)``, ``item_ids``: ``(num_items,)``

Used in: every dataset loader; bringing your own data (``README.md``).
"""
from __future__ import annotations

import numbers
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Literal

import numpy as np
import pandas as pd

from recsys_ref.data.store import DataError

__all__ = ["Interactions", "InteractionsDataset", "UnknownIdError", "from_frame", "to_index"]

Duplicates = Literal["error", "sum", "last", "first"]


class InteractionsDataset:
    """Mixin for a dataset holding an :class:`Interactions` table as ``self.interactions``:
    its sizes and id maps, read through."""

    interactions: "Interactions"

    @property
    def num_users(self) -> int:
        return self.interactions.num_users

    @property
    def num_items(self) -> int:
        return self.interactions.num_items

    @property
    def user_ids(self) -> np.ndarray:
        return self.interactions.user_ids

    @property
    def item_ids(self) -> np.ndarray:
        return self.interactions.item_ids


class UnknownIdError(KeyError, ValueError):
    """An original id (or index) that an id map does not contain (a ``KeyError`` and a
    ``ValueError``)."""

    def __str__(self) -> str:  # KeyError would show the message in quotes
        return str(self.args[0]) if self.args else ""


@dataclass
class Interactions:
    """Interactions in the package's form, with the id maps both ways.

    Attributes:
        frame: columns ``user, item`` (``int64`` in ``0..num_users-1``,
            ``0..num_items-1``), then ``rating`` or ``weight``, then ``timestamp`` when
            known; one row per interaction.
        user_ids: ``user_ids[u]`` is the original id of user index ``u`` (sorted).
        item_ids: ``item_ids[i]`` is the original id of item index ``i`` (sorted).
    """

    frame: pd.DataFrame
    user_ids: np.ndarray
    item_ids: np.ndarray

    def __post_init__(self) -> None:
        for col, n in (("user", len(self.user_ids)), ("item", len(self.item_ids))):
            if col not in self.frame.columns:
                raise DataError(f"Interactions.frame needs a {col!r} column; "
                                f"it has {list(self.frame.columns)}")
            values = self.frame[col].to_numpy()
            if not np.issubdtype(values.dtype, np.integer):
                raise DataError(f"Interactions.frame[{col!r}] must hold integer indices, "
                                f"not {values.dtype}; build the table with from_frame()")
            if len(values) and (values.min() < 0 or values.max() >= n):
                raise DataError(f"Interactions.frame[{col!r}] holds indices outside "
                                f"0..{n - 1}; build the table with from_frame()")

    @property
    def num_users(self) -> int:
        return len(self.user_ids)

    @property
    def num_items(self) -> int:
        return len(self.item_ids)

    @property
    def value(self) -> str | None:
        """``"rating"``, ``"weight"`` or ``None`` (interactions without a value)."""
        return next((c for c in ("rating", "weight") if c in self.frame.columns), None)

    def __len__(self) -> int:
        return len(self.frame)

    @cached_property
    def user_index(self) -> dict[Hashable, int]:
        """Original user id -> 0-based index."""
        return {u: i for i, u in enumerate(self.user_ids.tolist())}

    @cached_property
    def item_index(self) -> dict[Hashable, int]:
        """Original item id -> 0-based index."""
        return {v: i for i, v in enumerate(self.item_ids.tolist())}

    def to_user_index(self, ids: Any) -> Any:
        """Original user id(s) -> index (an ``int``, or an ``int64`` array for a list).

        Raises:
            UnknownIdError: listing ids that did not occur in the table.
        """
        return to_index(ids, self.user_ids, "user")

    def to_item_index(self, ids: Any) -> Any:
        """Original item id(s) -> index; see :meth:`to_user_index`."""
        return to_index(ids, self.item_ids, "item")

    def to_user_id(self, index: Any) -> Any:
        """User index (or indices) -> original id(s).

        Raises:
            UnknownIdError: for an index outside ``0..num_users-1``.
        """
        return _to_id(index, self.user_ids, "user")

    def to_item_id(self, index: Any) -> Any:
        """Item index (or indices) -> original id(s); see :meth:`to_user_id`."""
        return _to_id(index, self.item_ids, "item")

    def with_original_ids(self, frame: pd.DataFrame | None = None) -> pd.DataFrame:
        """A copy of ``frame`` (default :attr:`frame`) with ``user_id``/``item_id`` columns
        holding the original ids of its ``user``/``item`` indices (where present)."""
        out = (self.frame if frame is None else frame).copy()
        for col, ids in (("user", self.user_ids), ("item", self.item_ids)):
            if col in out.columns:
                out.insert(out.columns.get_loc(col), f"{col}_id", _to_id(out[col], ids, col))
        return out

    def __repr__(self) -> str:
        extra = [c for c in ("rating", "weight", "timestamp") if c in self.frame.columns]
        return (f"Interactions(users={self.num_users}, items={self.num_items}, "
                f"rows={len(self)}{''.join(', ' + c for c in extra)})")


def _py(v: Any) -> Any:
    """A NumPy scalar as the plain Python value (``np.int64(2)`` -> ``2``) for messages."""
    return v.item() if isinstance(v, np.generic) else v


def _show(values: Sequence[Any], k: int = 5) -> str:
    shown = ", ".join(repr(v) for v in list(values)[:k])
    return shown + (f" ... ({len(values)} in all)" if len(values) > k else "")


def to_index(ids: Any, known: np.ndarray, kind: str) -> Any:
    """Positions of original ``ids`` in ``known`` (``known[pos] == id``); a scalar for a
    scalar. Raises :class:`UnknownIdError` naming the ids that are not there."""
    scalar = np.ndim(ids) == 0
    values = np.asarray([ids] if scalar else ids, dtype=object if known.dtype == object
                        else None)
    pos = pd.Index(known).get_indexer(pd.Index(values)) if len(values) else np.zeros(0, int)
    if (pos < 0).any():
        missing = list(dict.fromkeys(values[pos < 0].tolist()))
        raise UnknownIdError(
            f"{kind} id(s) not in the map: {_show(missing)}; the map holds the "
            f"{len(known)} {kind}s of the table it was built from (e.g. {_show(known[:3].tolist())})")
    pos = pos.astype(np.int64)
    return int(pos[0]) if scalar else pos


def _to_id(index: Any, known: np.ndarray, kind: str) -> Any:
    scalar = np.ndim(index) == 0
    idx = np.asarray([index] if scalar else index)
    if idx.size and (not np.issubdtype(idx.dtype, np.integer)
                     or idx.min() < 0 or idx.max() >= len(known)):
        bad = idx if not np.issubdtype(idx.dtype, np.integer) else \
            idx[(idx < 0) | (idx >= len(known))]
        raise UnknownIdError(f"{kind} index(es) {_show(bad.tolist())} outside "
                             f"0..{len(known) - 1} (integers only)")
    out = known[idx.astype(np.int64)]
    if not scalar:
        return out
    return _py(out[0])  # a plain Python id


# -- from_frame ------------------------------------------------------------------------

def _require_no_nan(df: pd.DataFrame, col: str) -> None:
    na = df[col].isna().to_numpy()
    if na.any():
        first = df.index[na.argmax()]
        raise DataError(f"column {col!r} has {int(na.sum())} missing value(s) (NaN/None), "
                        f"first at row index {_py(first)!r}: drop those rows "
                        f"(df.dropna(subset=[{col!r}])) or fill them before from_frame()")


def _kind(v: Any) -> str:
    if isinstance(v, str):
        return "str"
    if isinstance(v, numbers.Integral) and not isinstance(v, bool):
        return "int"
    return type(v).__name__


def _ids(s: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """``codes`` (int64) and sorted unique ids of an id column."""
    if pd.api.types.is_integer_dtype(s.dtype):
        values = s.to_numpy(dtype=np.int64)
    elif pd.api.types.is_float_dtype(s.dtype):
        values = s.to_numpy(dtype=float)
        if not np.all(values == np.round(values)):
            raise DataError(f"column {s.name!r} holds non-integer numbers "
                            f"(e.g. {_py(values[values != np.round(values)][0])!r}); ids must be "
                            "integers or strings")
        values = values.astype(np.int64)  # 1.0, 2.0 ... as read from a CSV with gaps
    else:
        values = s.to_numpy(dtype=object)
        kinds = {_kind(v) for v in values}
        if len(kinds) > 1:
            raise DataError(f"column {s.name!r} mixes id types ({', '.join(sorted(kinds))}): "
                            f"convert it first, e.g. df[{s.name!r}].astype(str)")
    uniques, codes = np.unique(values, return_inverse=True)
    return codes.astype(np.int64).reshape(-1), uniques


def _numbers(df: pd.DataFrame, col: str, what: str) -> pd.Series:
    s = df[col]
    if pd.api.types.is_bool_dtype(s) or not pd.api.types.is_numeric_dtype(s):
        bad = s[pd.to_numeric(s, errors="coerce").isna()]
        example = (f" (e.g. {_py(bad.iloc[0])!r} at row index {_py(bad.index[0])!r})"
                   if len(bad) else "")
        raise DataError(f"column {col!r} ({what}) is not numeric{example}: convert it, e.g. "
                        f"pd.to_numeric(df[{col!r}]), or map labels to numbers first")
    values = s.to_numpy(dtype=getattr(s.dtype, "numpy_dtype", s.dtype))  # Int64 -> int64
    if not np.isfinite(values.astype(float)).all():
        raise DataError(f"column {col!r} ({what}) holds infinite values")
    return pd.Series(values, index=s.index, name=col)


def _timestamps(df: pd.DataFrame, col: str) -> pd.Series:
    s = df[col]
    if isinstance(s.dtype, pd.DatetimeTZDtype):
        s = s.dt.tz_convert("UTC").dt.tz_localize(None)
    if pd.api.types.is_datetime64_any_dtype(s):  # -> unix seconds
        return pd.Series((s - pd.Timestamp(0)) // pd.Timedelta(seconds=1), index=s.index,
                         dtype=np.int64)
    if pd.api.types.is_bool_dtype(s) or not pd.api.types.is_numeric_dtype(s):
        raise DataError(f"column {col!r} (timestamp) must be numbers (e.g. unix seconds) or "
                        f"datetime64; convert strings with pd.to_datetime(df[{col!r}])")
    return s


def from_frame(
    df: pd.DataFrame,
    user: str = "user",
    item: str = "item",
    rating: str | None = None,
    weight: str | None = None,
    timestamp: str | None = None,
    duplicates: Duplicates = "error",
) -> Interactions:
    """Bring your own interaction table into the package's form.

    Args:
        df: one row per interaction, any column names, any other columns (ignored).
        user: column of user ids (ints, strings, 1-based... anything hashable). Default
            ``"user"``.
        item: column of item ids. Default ``"item"``.
        rating: column of explicit ratings (numbers), or ``None``.
        weight: column of implicit weights (counts, confidences; numbers >= 0), or
            ``None``. At most one of ``rating`` and ``weight``.
        timestamp: column of times (numbers, or datetimes: stored as unix seconds), or
            ``None``.
        duplicates: what to do with several rows for one ``(user, item)`` pair:
            ``"error"`` (default) raises, listing an example; ``"first"``/``"last"`` keep
            the earliest/latest row (by ``timestamp`` when given, ties and no timestamp:
            frame order); ``"sum"`` adds the weights (without a value column: counts the
            rows into a new ``weight`` column) and keeps the latest timestamp, and refuses
            ratings (adding ratings has no meaning).

    Returns:
        :class:`Interactions`, rows in the frame's order, index ``0..n-1``.

    Raises:
        DataError: empty frame, missing column, NaN in a used column, non-numeric rating
            or weight, negative weight, duplicates (with ``duplicates="error"``).

    Example:
        >>> df = pd.DataFrame({"who": ["ann", "bob", "ann"], "song": [10, 10, 30],
        ...                    "plays": [3, 1, 7]})
        >>> data = from_frame(df, user="who", item="song", weight="plays")
        >>> data.frame.to_numpy().tolist(), data.user_ids.tolist(), data.to_item_index(30)
        ([[0, 0, 3], [1, 0, 1], [0, 1, 7]], ['ann', 'bob'], 1)
    """
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"from_frame expects a pandas DataFrame, got {type(df).__name__}")
    if duplicates not in ("error", "sum", "last", "first"):
        raise ValueError(f"duplicates must be 'error', 'sum', 'last' or 'first', "
                         f"got {duplicates!r}")
    if rating is not None and weight is not None:
        raise ValueError("pass rating= (explicit feedback) or weight= (implicit), not both")
    if len(df) == 0:
        raise DataError("the frame has no rows: there are no interactions to index")
    value = rating if rating is not None else weight
    used = {"user": user, "item": item, "rating": rating, "weight": weight,
            "timestamp": timestamp}
    used = {k: c for k, c in used.items() if c is not None}
    missing = [f"{k}={c!r}" for k, c in used.items() if c not in df.columns]
    if missing:
        raise DataError(f"column(s) not in the frame: {', '.join(missing)}; "
                        f"the frame has {list(df.columns)}")
    for col in used.values():
        _require_no_nan(df, col)

    users, user_ids = _ids(df[user])
    items, item_ids = _ids(df[item])
    out = pd.DataFrame({"user": users, "item": items})
    if rating is not None:
        out["rating"] = _numbers(df, rating, "rating").to_numpy()
    if weight is not None:
        w = _numbers(df, weight, "weight")
        if (w < 0).any():
            raise DataError(f"column {weight!r} (weight) has negative values (e.g. "
                            f"{_py(w[w < 0].iloc[0])!r}); implicit weights are counts or "
                            "confidences >= 0")
        out["weight"] = w.to_numpy()
    if timestamp is not None:
        out["timestamp"] = _timestamps(df, timestamp).to_numpy()

    out = _merge_duplicates(out, df, user, item, duplicates, value)
    return Interactions(out.reset_index(drop=True), user_ids, item_ids)


def _merge_duplicates(out: pd.DataFrame, df: pd.DataFrame, user: str, item: str,
                      duplicates: str, value: str | None) -> pd.DataFrame:
    dup = out.duplicated(["user", "item"], keep=False).to_numpy()
    if not dup.any():
        return out
    if duplicates == "error":
        first = out[dup].iloc[0]
        pos = np.flatnonzero((out["user"] == first["user"]).to_numpy()
                             & (out["item"] == first["item"]).to_numpy())
        n_pairs = out[dup].drop_duplicates(["user", "item"]).shape[0]
        raise DataError(
            f"{n_pairs} (user, item) pair(s) occur in more than one row, e.g. "
            f"{user}={_py(df[user].iloc[pos[0]])!r}, {item}={_py(df[item].iloc[pos[0]])!r} at row "
            f"indices {df.index[pos[:5]].tolist()}. Choose how to merge them: "
            "duplicates='last' or 'first' (keep one row, by timestamp when given), "
            "or 'sum' (add weights / count rows)")
    if duplicates == "sum":
        if "rating" in out.columns:
            raise DataError(f"duplicates='sum' adds weights, but {value!r} holds ratings: "
                            "use duplicates='last' or 'first' for ratings")
        if "weight" not in out.columns:
            out = out.assign(weight=np.ones(len(out), dtype=np.int64))
        agg = {"weight": "sum", **({"timestamp": "max"} if "timestamp" in out else {})}
        out = out.assign(_row=np.arange(len(out)))
        merged = out.groupby(["user", "item"], sort=False).agg({**agg, "_row": "min"})
        return merged.reset_index().sort_values("_row").drop(columns="_row")
    order = (np.argsort(out["timestamp"].to_numpy(), kind="stable")
             if "timestamp" in out.columns else np.arange(len(out)))
    kept = out.iloc[order].drop_duplicates(["user", "item"], keep=duplicates)
    return kept.sort_index()
