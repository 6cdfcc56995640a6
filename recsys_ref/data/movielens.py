r"""Datasets: find, download, verify and load them as tidy pandas frames.

Every loader resolves where the raw files live in the same order:

1. the ``data_dir`` argument, if given (a folder that *holds* ``ml-100k/``, or
   ``ml-100k/`` itself);
2. the environment variable ``RECSYS_REF_DATA`` (same meaning);
3. the cache folder ``$RECSYS_REF_CACHE`` (default ``~/.cache/recsys_ref``), where a
   download lands.

When nothing is found and ``download=True`` the publisher's archive is downloaded,
its MD5 compared with the published checksum, and extracted *atomically*: the archive is
written to a temporary file, extracted into a temporary folder beside the target, validated,
then renamed into place, so an interrupted download never leaves a half-written dataset.

After reading, the content is validated (row counts, id ranges, rating scale). A missing,
truncated or corrupted file raises :class:`DataError`, whose message names the file, what
was wrong, the environment variable and the download URL.

Used in: every chapter (first in ``chapters/01_recsys_basics``).
"""
from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import urllib.request
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = [
    "DATA_ENV_VAR",
    "CACHE_ENV_VAR",
    "DataError",
    "DatasetSpec",
    "DATASETS",
    "MovieLens",
    "find_dataset",
    "download_dataset",
    "load_movielens",
    "load_movielens_100k",
    "load_movielens_1m",
]

DATA_ENV_VAR = "RECSYS_REF_DATA"
CACHE_ENV_VAR = "RECSYS_REF_CACHE"


class DataError(ValueError):
    """A dataset is missing, incomplete or not what it claims to be."""


@dataclass(frozen=True)
class DatasetSpec:
    """Where a dataset comes from and what a complete copy holds.

    Args:
        name: folder name of the extracted dataset (``ml-100k``).
        url: the publisher's archive.
        md5: the publisher's checksum of that archive.
        files: files that must exist in the folder.
        citation: how to cite it (printed in errors and docs).
    """

    name: str
    url: str
    md5: str
    files: tuple[str, ...]
    citation: str = ""


_ML_CITATION = (
    "F. Maxwell Harper and Joseph A. Konstan. The MovieLens Datasets: History and "
    "Context. ACM TiiS 5(4), 2015."
)

DATASETS: dict[str, DatasetSpec] = {
    "ml-100k": DatasetSpec(
        name="ml-100k",
        url="https://files.grouplens.org/datasets/movielens/ml-100k.zip",
        md5="0e33842e24a9c977be4e0107933c0723",
        files=("u.data", "u.item", "u.user", "u.genre"),
        citation=_ML_CITATION,
    ),
    "ml-1m": DatasetSpec(
        name="ml-1m",
        url="https://files.grouplens.org/datasets/movielens/ml-1m.zip",
        md5="c4d9eecfca2ab87c1945afe126590906",
        files=("ratings.dat", "movies.dat", "users.dat"),
        citation=_ML_CITATION,
    ),
}

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


def _cache_root() -> Path:
    return Path(os.environ.get(CACHE_ENV_VAR, Path.home() / ".cache" / "recsys_ref"))


def _how_to_fix(spec: DatasetSpec) -> str:
    return (
        f"Set the environment variable {DATA_ENV_VAR} to a folder that holds "
        f"'{spec.name}/' (for example the project's ../shared/data), pass data_dir=..., "
        f"or let the loader download it (download=True) from {spec.url}."
    )


def _candidates(spec: DatasetSpec, data_dir: str | os.PathLike | None) -> list[tuple[str, Path]]:
    out: list[tuple[str, Path]] = []
    if data_dir is not None:
        out.append(("data_dir argument", Path(data_dir)))
    elif os.environ.get(DATA_ENV_VAR):
        out.append((f"${DATA_ENV_VAR}", Path(os.environ[DATA_ENV_VAR])))
    out.append(("cache", _cache_root()))
    return out


def _resolve_folder(base: Path, spec: DatasetSpec) -> Path:
    """``base`` may be the dataset folder itself or a folder that holds it."""
    if base.name == spec.name and base.is_dir():
        return base
    return base / spec.name


def _check_files(folder: Path, spec: DatasetSpec) -> None:
    for fname in spec.files:
        path = folder / fname
        if not path.is_file():
            raise DataError(
                f"{path}: file is missing from the {spec.name} folder. {_how_to_fix(spec)}"
            )
        if path.stat().st_size == 0:
            raise DataError(f"{path}: file is empty (truncated copy?). {_how_to_fix(spec)}")


def find_dataset(
    name: str, data_dir: str | os.PathLike | None = None, download: bool = True
) -> Path:
    """Return the folder holding dataset ``name``, downloading it if needed.

    Args:
        name: a key of :data:`DATASETS` (``"ml-100k"``, ``"ml-1m"``).
        data_dir: a folder holding ``name/`` (or ``name/`` itself). Overrides
            ``$RECSYS_REF_DATA``. An explicit folder that lacks the data is an error:
            we never silently fall back to a download when the user named a place.
        download: download into the cache when no copy is found.

    Raises:
        DataError: when no complete copy is found and none can be downloaded.
    """
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose one of {sorted(DATASETS)}")
    spec = DATASETS[name]
    cands = _candidates(spec, data_dir)
    for label, base in cands:
        folder = _resolve_folder(base, spec)
        if folder.is_dir():
            _check_files(folder, spec)
            return folder
        if label != "cache":
            raise DataError(
                f"{folder}: no '{spec.name}' folder here (looked because of the {label}). "
                f"{_how_to_fix(spec)}"
            )
    if not download:
        raise DataError(f"dataset {spec.name} not found in {cands[-1][1]}. {_how_to_fix(spec)}")
    return download_dataset(name, _cache_root())


def _md5(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def download_dataset(name: str, root: str | os.PathLike, url: str | None = None) -> Path:
    """Download the publisher's archive of ``name`` into ``root`` atomically.

    The archive goes to a temporary file, its MD5 is checked against the published
    value, it is extracted to a temporary folder that is validated and then renamed to
    ``root/name``. On any failure the temporary files are removed and nothing is left
    half-written.

    Args:
        name: a key of :data:`DATASETS`.
        root: the folder that will hold ``name/``.
        url: override the download address (a mirror, or a ``file://`` URL in tests).
    """
    spec = DATASETS[name]
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    target = root / spec.name
    url = url or spec.url
    tmp_dir = Path(tempfile.mkdtemp(prefix=f".{spec.name}-", dir=root))
    try:
        archive = tmp_dir / "archive.zip"
        try:
            with urllib.request.urlopen(url, timeout=60) as resp, open(archive, "wb") as fh:
                shutil.copyfileobj(resp, fh)
        except OSError as err:
            raise DataError(
                f"could not download {url} ({err}). Offline? {_how_to_fix(spec)}"
            ) from err
        digest = _md5(archive)
        if digest != spec.md5:
            raise DataError(
                f"{url}: downloaded archive has MD5 {digest}, expected {spec.md5} "
                f"(corrupted or changed download). {_how_to_fix(spec)}"
            )
        extract = tmp_dir / "extract"
        with zipfile.ZipFile(archive) as zf:
            zf.extractall(extract)
        folder = extract / spec.name
        if not folder.is_dir():
            raise DataError(f"{url}: archive has no top-level '{spec.name}/' folder")
        _check_files(folder, spec)
        if target.exists():  # another process won the race; keep theirs
            return target
        os.replace(folder, target)
        return target
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)


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

    def __repr__(self) -> str:
        return (
            f"MovieLens({self.name!r}, users={self.num_users}, items={self.num_items}, "
            f"ratings={len(self.ratings)})"
        )


def _read(path: Path, spec: DatasetSpec, **kw) -> pd.DataFrame:
    try:
        return pd.read_csv(path, **kw)
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as err:
        raise DataError(f"{path}: cannot be parsed ({err}). {_how_to_fix(spec)}") from err


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
            f"(truncated or corrupted file?). {_how_to_fix(spec)}"
        )


def _index(ratings: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    user_ids = np.sort(ratings["user_id"].unique())
    item_ids = np.sort(ratings["item_id"].unique())
    ratings = ratings.assign(
        user=np.searchsorted(user_ids, ratings["user_id"].to_numpy()),
        item=np.searchsorted(item_ids, ratings["item_id"].to_numpy()),
    )
    cols = ["user_id", "item_id", "user", "item", "rating", "timestamp"]
    return ratings[cols].reset_index(drop=True), user_ids, item_ids


def _load_100k(folder: Path, spec: DatasetSpec) -> MovieLens:
    rpath = folder / "u.data"
    ratings = _read(
        rpath, spec, sep="\t", header=None,
        names=["user_id", "item_id", "rating", "timestamp"],
    )
    _validate_ratings(ratings, rpath, spec)
    ratings, user_ids, item_ids = _index(ratings.astype("int64"))

    ipath = folder / "u.item"
    items = _read(
        ipath, spec, sep="|", header=None, encoding="latin-1",
        names=["item_id", "title", "release_date", "video_release", "imdb_url",
               *ML100K_GENRES],
    )
    if len(items) != len(item_ids) or not np.array_equal(np.sort(items["item_id"]), item_ids):
        raise DataError(f"{ipath}: expected {len(item_ids)} items matching u.data, "
                        f"found {len(items)}. {_how_to_fix(spec)}")
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
    users = _read(upath, spec, sep="|", header=None,
                  names=["user_id", "age", "gender", "occupation", "zip"],
                  dtype={"zip": str})
    if len(users) != len(user_ids):
        raise DataError(f"{upath}: expected {len(user_ids)} users, found {len(users)}. "
                        f"{_how_to_fix(spec)}")
    users = users.set_index(np.searchsorted(user_ids, users["user_id"])).sort_index()
    users.index.name = "user"
    return MovieLens(spec.name, ratings, items, users, user_ids, item_ids, folder)


_ML1M_AGES = {1: "Under 18", 18: "18-24", 25: "25-34", 35: "35-44", 45: "45-49",
              50: "50-55", 56: "56+"}


def _load_1m(folder: Path, spec: DatasetSpec) -> MovieLens:
    rpath = folder / "ratings.dat"
    ratings = _read(rpath, spec, sep="::", engine="python", header=None,
                    names=["user_id", "item_id", "rating", "timestamp"])
    _validate_ratings(ratings, rpath, spec)
    ratings, user_ids, item_ids = _index(ratings.astype("int64"))
    mpath = folder / "movies.dat"
    movies = _read(mpath, spec, sep="::", engine="python", header=None,
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
    users = _read(upath, spec, sep="::", engine="python", header=None,
                  names=["user_id", "gender", "age", "occupation", "zip"], dtype={"zip": str})
    users = users[["user_id", "age", "gender", "occupation", "zip"]]
    users = users.set_index(np.searchsorted(user_ids, users["user_id"])).sort_index()
    users.index.name = "user"
    genres = tuple(sorted({g for gs in items["genres"] for g in gs}))
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
        >>> ml = load_movielens("ml-100k")          # doctest: +SKIP
        >>> ml.num_users, ml.num_items, len(ml.ratings)
        (943, 1682, 100000)
    """
    if name not in ("ml-100k", "ml-1m"):
        raise ValueError(f"unknown MovieLens size {name!r}; use 'ml-100k' or 'ml-1m'")
    folder = find_dataset(name, data_dir=data_dir, download=download)
    spec = DATASETS[name]
    return _load_100k(folder, spec) if name == "ml-100k" else _load_1m(folder, spec)


def load_movielens_100k(data_dir: str | os.PathLike | None = None, download: bool = True) -> MovieLens:
    """Shorthand for ``load_movielens("ml-100k", ...)``."""
    return load_movielens("ml-100k", data_dir, download)


def load_movielens_1m(data_dir: str | os.PathLike | None = None, download: bool = True) -> MovieLens:
    """Shorthand for ``load_movielens("ml-1m", ...)``."""
    return load_movielens("ml-1m", data_dir, download)
