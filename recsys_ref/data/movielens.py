r"""MovieLens 100K and 1M: ratings, movies and users as tidy frames.

MovieLens :cite:`harper2015movielens` is GroupLens' set of movie ratings (1-5 stars) from
movielens.org. **ML-100K**: 100,000 ratings of 1,682 movies by 943 users (each rated at
least 20), with titles, release dates, 19 genre flags and user demographics. **ML-1M**:
1,000,209 ratings of 3,706 rated movies by 6,040 users.

Publisher: GroupLens Research, files.grouplens.org/datasets/movielens/ (``ml-100k.zip``,
``ml-1m.zip``, MD5 published). Licence: research use, no redistribution; cite F. Maxwell
Harper and Joseph A. Konstan, "The MovieLens Datasets: History and Context", ACM TiiS 5(4),
2015. Where the files are looked for, how they are downloaded and verified (archive MD5,
SHA-256 of ``u.data``/``u.item``/``u.user`` and of the three ML-1M files, row counts, id
and rating ranges): :mod:`recsys_ref.data.store`.

Used in: every chapter (first in ``chapters/01_recsys_basics``).
"""
from __future__ import annotations

import re
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from recsys_ref.data.interactions import Interactions, from_frame
from recsys_ref.data.store import (  # noqa: F401  (re-exported: the 0.1 import path)
    CACHE_ENV_VAR,
    DATA_ENV_VAR,
    DATASETS,
    DataError,
    DatasetSpec,
    Source,
    download_dataset,
    find_dataset,
    how_to_fix,
    read_table,
    register,
    verify_checksums,
)

__all__ = [
    "clean_title",
    "MovieLens",
    "ML100K_GENRES",
    "load_movielens",
    "load_movielens_100k",
    "load_movielens_1m",
]

_ML_CITATION = (
    "F. Maxwell Harper and Joseph A. Konstan. The MovieLens Datasets: History and "
    "Context. ACM TiiS 5(4), 2015."
)
_GROUPLENS = "https://files.grouplens.org/datasets/movielens"

register(DatasetSpec(
    name="ml-100k",
    url=f"{_GROUPLENS}/ml-100k.zip",
    files=("u.data", "u.item", "u.user", "u.genre"),
    sources=(Source(f"{_GROUPLENS}/ml-100k.zip", archive=True, member_dir="ml-100k",
                    md5="0e33842e24a9c977be4e0107933c0723"),),
    sha256={
        "u.data": "06416e597f82b7342361e41163890c81036900f418ad91315590814211dca490",
        "u.item": "553841ebc7de3a0fd0d6b62a204ea30c1e651aacfb2814c7a6584ac52f2c5701",
        "u.user": "f120e114da2e8cf314fd28f99417c94ae9ddf1cb6db8ce0e4b5995d40e90e62c",
    },
    citation=_ML_CITATION,
))
register(DatasetSpec(
    name="ml-1m",
    url=f"{_GROUPLENS}/ml-1m.zip",
    files=("ratings.dat", "movies.dat", "users.dat"),
    sources=(Source(f"{_GROUPLENS}/ml-1m.zip", archive=True, member_dir="ml-1m",
                    md5="c4d9eecfca2ab87c1945afe126590906"),),
    sha256={
        "ratings.dat": "506d64ca44484487c11dc2d9a28de5c54948213e6b96285e298afe28d6ea4e0f",
        "movies.dat": "0140fc2356357c1a851d0f52e893a1e4d3696df632c4141cea8d5bc3d621f0b9",
        "users.dat": "1dc3a95300cb19f7c10e027daf29b8cdf1d908dab65b5edfb45950aa389a10a3",
    },
    citation=_ML_CITATION,
))

# What a complete copy contains; checked after every load.
_EXPECTED = {
    "ml-100k": {"ratings": 100_000, "users": 943, "items": 1_682},
    "ml-1m": {"ratings": 1_000_209, "users": 6_040, "items": 3_706},
}

ML100K_GENRES = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
    "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery",
    "Romance", "Sci-Fi", "Thriller", "War", "Western",
)


_YEAR = re.compile(r"\s*\(\d{4}\)\s*$")


def clean_title(title: str) -> str:
    """A MovieLens title without its year:
    ``"Shawshank Redemption, The (1994)"`` -> ``"Shawshank Redemption, The"``."""
    return _YEAR.sub("", str(title))


@dataclass
class MovieLens:
    """A MovieLens dataset as tidy frames with contiguous 0-based indices.

    Attributes:
        name: ``"ml-100k"`` or ``"ml-1m"``.
        ratings: one row per rating, in the publisher's file order, columns
            ``user_id, item_id`` (original ids), ``user, item`` (0-based indices),
            ``rating`` (int 1..5), ``timestamp`` (unix seconds).
        items: indexed by ``item``: ``item_id, title, year, genres`` (list of str).
        users: indexed by ``user``: ``user_id, age, gender, occupation, zip``.
        user_ids: ``user_ids[u]`` is the original id of index ``u``.
        item_ids: ``item_ids[i]`` is the original id of index ``i``.
        path: the folder the files were read from.
    """

    name: str
    ratings: pd.DataFrame
    items: pd.DataFrame
    users: pd.DataFrame
    user_ids: np.ndarray
    item_ids: np.ndarray
    path: Path
    genres: tuple[str, ...] = field(default=ML100K_GENRES)

    @property
    def num_users(self) -> int:
        return len(self.user_ids)

    @property
    def num_items(self) -> int:
        return len(self.item_ids)

    @property
    def user_index(self) -> dict[int, int]:
        """Original user id -> 0-based index."""
        return {int(u): i for i, u in enumerate(self.user_ids)}

    @property
    def item_index(self) -> dict[int, int]:
        """Original item id -> 0-based index."""
        return {int(v): i for i, v in enumerate(self.item_ids)}

    @property
    def interactions(self) -> Interactions:
        """The ratings in the package's form (:class:`Interactions`: ``user, item, rating,
        timestamp`` and the id maps)."""
        cols = ["user", "item", "rating", "timestamp"]
        return Interactions(self.ratings[cols], self.user_ids, self.item_ids)

    def __repr__(self) -> str:
        return (
            f"MovieLens({self.name!r}, users={self.num_users}, items={self.num_items}, "
            f"ratings={len(self.ratings)})"
        )


def _validate_ratings(df: pd.DataFrame, path: Path, spec: DatasetSpec) -> None:
    exp = _EXPECTED[spec.name]
    problems = []
    if len(df) != exp["ratings"]:
        problems.append(f"{len(df):,} ratings, expected {exp['ratings']:,}")
    if df.isna().any().any():
        problems.append("missing values")
    else:
        if df["user_id"].nunique() != exp["users"]:
            problems.append(f"{df['user_id'].nunique()} users, expected {exp['users']}")
        if df["item_id"].nunique() != exp["items"]:
            problems.append(f"{df['item_id'].nunique()} items, expected {exp['items']}")
        if not df["rating"].between(1, 5).all():
            problems.append("ratings outside 1..5")
        if df.duplicated(["user_id", "item_id"]).any():
            problems.append("duplicate (user, item) pairs")
    if problems:
        raise DataError(
            f"{path}: content is not a complete {spec.name} copy: {'; '.join(problems)} "
            f"(truncated or corrupted file?). {how_to_fix(spec, path.name)}"
        )


def _index(ratings: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    inter = from_frame(ratings, user="user_id", item="item_id", rating="rating",
                       timestamp="timestamp")
    cols = ["user_id", "item_id", "user", "item", "rating", "timestamp"]
    return inter.with_original_ids()[cols], inter.user_ids, inter.item_ids


def _load_100k(folder: Path, spec: DatasetSpec) -> MovieLens:
    rpath = folder / "u.data"
    ratings = read_table(
        rpath, spec, sep="\t", header=None,
        names=["user_id", "item_id", "rating", "timestamp"],
    )
    _validate_ratings(ratings, rpath, spec)
    ratings, user_ids, item_ids = _index(ratings.astype("int64"))

    ipath = folder / "u.item"
    items = read_table(
        ipath, spec, sep="|", header=None, encoding="latin-1",
        names=["item_id", "title", "release_date", "video_release", "imdb_url",
               *ML100K_GENRES],
    )
    if len(items) != len(item_ids) or not np.array_equal(np.sort(items["item_id"]), item_ids):
        raise DataError(f"{ipath}: expected {len(item_ids)} items matching u.data, "
                        f"found {len(items)}. {how_to_fix(spec, ipath.name)}")
    flags = items[list(ML100K_GENRES)].to_numpy().astype(bool)
    items = pd.DataFrame({
        "item_id": items["item_id"].to_numpy(),
        "title": items["title"].fillna("unknown").to_numpy(),
        "year": pd.to_datetime(items["release_date"], format="%d-%b-%Y",
                               errors="coerce").dt.year.astype("Int64").array,
        "genres": [[g for g, f in zip(ML100K_GENRES, row) if f] for row in flags],
    })
    items = items.set_index(np.searchsorted(item_ids, items["item_id"])).sort_index()
    items.index.name = "item"

    upath = folder / "u.user"
    users = read_table(upath, spec, sep="|", header=None,
                       names=["user_id", "age", "gender", "occupation", "zip"],
                       dtype={"zip": str})
    if len(users) != len(user_ids):
        raise DataError(f"{upath}: expected {len(user_ids)} users, found {len(users)}. "
                        f"{how_to_fix(spec, upath.name)}")
    users = users.set_index(np.searchsorted(user_ids, users["user_id"])).sort_index()
    users.index.name = "user"
    verify_checksums(folder, spec)
    return MovieLens(spec.name, ratings, items, users, user_ids, item_ids, folder)


_ML1M_AGES = {1: "Under 18", 18: "18-24", 25: "25-34", 35: "35-44", 45: "45-49",
              50: "50-55", 56: "56+"}


def _load_1m(folder: Path, spec: DatasetSpec) -> MovieLens:
    rpath = folder / "ratings.dat"
    # "a::b::c::d" split on ":" gives a,,b,,c,,d: the fast C parser, fields 0, 2, 4, 6
    ratings = read_table(rpath, spec, sep=":", header=None, usecols=[0, 2, 4, 6],
                         names=["user_id", "_1", "item_id", "_2", "rating", "_3", "timestamp"])
    _validate_ratings(ratings, rpath, spec)
    ratings, user_ids, item_ids = _index(ratings.astype("int64"))
    mpath = folder / "movies.dat"
    movies = read_table(mpath, spec, sep="::", engine="python", header=None,
                        names=["item_id", "title", "genres"], encoding="latin-1")
    movies = movies[movies["item_id"].isin(item_ids)]
    year = movies["title"].str.extract(r"\((\d{4})\)\s*$")[0].astype("Int64")
    items = pd.DataFrame({
        "item_id": movies["item_id"].to_numpy(),
        "title": movies["title"].to_numpy(),
        "year": year.array,
        "genres": movies["genres"].str.split("|").to_numpy(),
    })
    items = items.set_index(np.searchsorted(item_ids, items["item_id"])).sort_index()
    items.index.name = "item"
    upath = folder / "users.dat"
    users = read_table(upath, spec, sep="::", engine="python", header=None,
                       names=["user_id", "gender", "age", "occupation", "zip"],
                       dtype={"zip": str})
    users = users[["user_id", "age", "gender", "occupation", "zip"]]
    users = users.set_index(np.searchsorted(user_ids, users["user_id"])).sort_index()
    users.index.name = "user"
    genres = tuple(sorted({g for gs in items["genres"] for g in gs}))
    verify_checksums(folder, spec)
    return MovieLens(spec.name, ratings, items, users, user_ids, item_ids, folder, genres)


def load_movielens(
    name: str = "ml-100k", data_dir: str | os.PathLike | None = None, download: bool = True
) -> MovieLens:
    """Load MovieLens-100K or -1M as a :class:`MovieLens` of tidy frames.

    Args:
        name: ``"ml-100k"`` or ``"ml-1m"``.
        data_dir: folder holding ``name/``; default ``$RECSYS_REF_DATA``, then the cache.
        download: download from GroupLens when no copy is found.

    Example:
        >>> ml = load_movielens("ml-100k")  # doctest: +SKIP
        >>> ml.num_users, ml.num_items, len(ml.ratings)  # doctest: +SKIP
        (943, 1682, 100000)
    """
    if name not in ("ml-100k", "ml-1m"):
        raise ValueError(f"unknown MovieLens size {name!r}; use 'ml-100k' or 'ml-1m'")
    folder = find_dataset(name, data_dir=data_dir, download=download)
    spec = DATASETS[name]
    return _load_100k(folder, spec) if name == "ml-100k" else _load_1m(folder, spec)


def load_movielens_100k(
    data_dir: str | os.PathLike | None = None, download: bool = True
) -> MovieLens:
    """Shorthand for ``load_movielens("ml-100k", ...)``."""
    return load_movielens("ml-100k", data_dir, download)


def load_movielens_1m(
    data_dir: str | os.PathLike | None = None, download: bool = True
) -> MovieLens:
    """Shorthand for ``load_movielens("ml-1m", ...)``."""
    return load_movielens("ml-1m", data_dir, download)
