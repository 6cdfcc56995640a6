"""Datasets and interaction tables: find, download, verify and load them as tidy frames.

- :mod:`~recsys_ref.data.store`: where data lives (``data_dir`` -> ``$RECSYS_REF_DATA`` ->
  cache), checksums, atomic downloads, the cache root and atomic file writes;
- :mod:`~recsys_ref.data.interactions`: the package's interaction form and
  :func:`from_frame` to bring your own data;
- one module per dataset: :mod:`~recsys_ref.data.movielens` (ML-100K, ML-1M),
  :mod:`~recsys_ref.data.movielens_kg` (KB4Rec graph of ML-100K),
  :mod:`~recsys_ref.data.lastfm` (HetRec 2011 Last.fm 2K),
  :mod:`~recsys_ref.data.facebook` (SNAP ego-Facebook),
  :mod:`~recsys_ref.data.amazon` (Amazon Review Data 2018, any category).
"""
from recsys_ref.data.store import (  # noqa: F401
    CACHE_ENV_VAR,
    DATA_ENV_VAR,
    DATASETS,
    DataError,
    DatasetSpec,
    Source,
    atomic_dir,
    atomic_write,
    cache_dir,
    cache_root,
    download_dataset,
    find_dataset,
    verify_checksums,
)
from recsys_ref.data.interactions import Interactions, UnknownIdError, from_frame  # noqa: F401
from recsys_ref.data.movielens import (  # noqa: F401
    MovieLens,
    clean_title,
    load_movielens,
    load_movielens_100k,
    load_movielens_1m,
)
from recsys_ref.data.movielens_kg import MovieLensKG, load_movielens_kg  # noqa: F401
from recsys_ref.data.lastfm import LastFM, load_lastfm  # noqa: F401
from recsys_ref.data.facebook import Facebook, load_facebook  # noqa: F401
from recsys_ref.data.amazon import AMAZON_CATEGORIES, Amazon, load_amazon  # noqa: F401

__all__ = [
    "DATA_ENV_VAR", "CACHE_ENV_VAR", "DataError", "DatasetSpec", "Source", "DATASETS",
    "find_dataset", "download_dataset", "verify_checksums", "cache_root", "cache_dir",
    "atomic_dir",
    "atomic_write",
    "Interactions", "UnknownIdError", "from_frame",
    "MovieLens", "clean_title", "load_movielens", "load_movielens_100k", "load_movielens_1m",
    "MovieLensKG", "load_movielens_kg",
    "LastFM", "load_lastfm",
    "Facebook", "load_facebook",
    "AMAZON_CATEGORIES", "Amazon", "load_amazon",
]
