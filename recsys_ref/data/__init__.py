"""Datasets: find, download, verify and load them as tidy frames."""
from recsys_ref.data.movielens import (  # noqa: F401
    DATA_ENV_VAR,
    CACHE_ENV_VAR,
    DataError,
    DatasetSpec,
    DATASETS,
    MovieLens,
    find_dataset,
    download_dataset,
    load_movielens,
    load_movielens_100k,
    load_movielens_1m,
)
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
