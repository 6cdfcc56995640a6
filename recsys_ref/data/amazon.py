r"""Amazon Review Data (2018): 5-core reviews and product metadata of any category.

Reviews of Amazon products (May 1996 - Oct 2018) with ratings (``overall``, 1-5 stars),
review text, helpful votes and product metadata (title, brand, categories, description,
price, also-bought/also-viewed lists), split into 29 categories :cite:`ni2019amazon`.
The *5-core* file of a category keeps users and items with at least five reviews.
**Gift Cards** (``Gift_Cards``): 2,972 reviews by 458 users of 148 items, 1,547
products in the metadata; available offline in the project's mirror.

Publisher: J. Ni, J. Li, J. McAuley, "Justifying Recommendations using
Distantly-Labeled Reviews and Fine-Grained Aspects", EMNLP 2019, nijianmo.github.io/amazon
(files ``{Category}_5.json.gz`` and ``meta_{Category}.json.gz``, one JSON object per line).
Cite when used; no redistribution licence. Gift Cards is checked against SHA-256 digests
(of the decompressed files) and the published counts; other categories, whose digests and
counts the package does not pin, are checked for the fields and values a loader needs.

The package's form:

- ``interactions``: ``user, item, rating, timestamp`` (unix seconds), one row per
  ``(user, item)`` pair: a pair reviewed more than once keeps its latest review (Gift
  Cards: 7 such pairs, so 2,965 interactions);
- ``reviews``: every published review, ``user, item, rating, timestamp, summary, text,
  vote, verified``;
- ``items``: indexed by ``item``: ``item_id`` (ASIN), ``title, brand, main_cat,
  categories, description, price, also_buy, also_view`` (missing metadata: NaN).

Used in: the Amazon case study (reviews as text, cold items).
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from recsys_ref.data.interactions import Interactions, InteractionsDataset, from_frame
from recsys_ref.data.store import (
    DataError,
    DatasetSpec,
    Source,
    check_counts,
    find_dataset,
    how_to_fix,
    register,
    verify_checksums,
)

__all__ = ["AMAZON_CATEGORIES", "AMAZON_BASE_URL", "Amazon", "amazon_spec", "load_amazon"]

AMAZON_CATEGORIES = (
    "AMAZON_FASHION", "All_Beauty", "Appliances", "Arts_Crafts_and_Sewing", "Automotive",
    "Books", "CDs_and_Vinyl", "Cell_Phones_and_Accessories", "Clothing_Shoes_and_Jewelry",
    "Digital_Music", "Electronics", "Gift_Cards", "Grocery_and_Gourmet_Food",
    "Home_and_Kitchen", "Industrial_and_Scientific", "Kindle_Store", "Luxury_Beauty",
    "Magazine_Subscriptions", "Movies_and_TV", "Musical_Instruments", "Office_Products",
    "Patio_Lawn_and_Garden", "Pet_Supplies", "Prime_Pantry", "Software",
    "Sports_and_Outdoors", "Tools_and_Home_Improvement", "Toys_and_Games", "Video_Games",
)
AMAZON_BASE_URL = "https://mcauleylab.ucsd.edu/public_datasets/data/amazon_v2"
_PAGE = "https://nijianmo.github.io/amazon/index.html"

# What the package pins: category -> (sha256 per file, expected counts).
_PINNED = {
    "Gift_Cards": (
        {"Gift_Cards_5.json.gz":
            "9a712964d5f4d6d6ce905efc63dd41fe1309dd02a6daa4e7e0570725a44261cf",
         "meta_Gift_Cards.json.gz":
            "538994d5d15bef85a2d5a81ce79becff140719cdc6394a46e4b934cf63e09acf"},
        {"reviews": 2_972, "users": 458, "items": 148, "products": 1_547}),
}
_REVIEW_FIELDS = {"reviewerID": "user_id", "asin": "item_id", "overall": "rating",
                  "unixReviewTime": "timestamp", "summary": "summary", "reviewText": "text",
                  "vote": "vote", "verified": "verified"}
_META_FIELDS = ("asin", "title", "brand", "main_cat", "category", "description", "price",
                "also_buy", "also_view")


def _key(name: str) -> str:
    return "".join(t for t in re.split(r"[^a-z0-9]+", name.lower()) if t and t != "and")


_BY_KEY = {_key(c): c for c in AMAZON_CATEGORIES} | {"fashion": "AMAZON_FASHION"}


def amazon_spec(category: str) -> DatasetSpec:
    """The :class:`DatasetSpec` of one category (``"Gift_Cards"``, ``"gift cards"``...).

    Raises:
        ValueError: for an unknown category (the message lists all 29).
    """
    name = _BY_KEY.get(_key(category))
    if name is None:
        raise ValueError(f"unknown Amazon 2018 category {category!r}; choose one of "
                         f"{', '.join(AMAZON_CATEGORIES)}")
    reviews, meta = f"{name}_5.json.gz", f"meta_{name}.json.gz"
    return DatasetSpec(
        name="amazon2018-" + name.lower().replace("_", "-"),
        url=_PAGE,
        files=(reviews, meta),
        sources=(Source(f"{AMAZON_BASE_URL}/categoryFilesSmall/{reviews}"),
                 Source(f"{AMAZON_BASE_URL}/metaFiles2/{meta}")),
        sha256=_PINNED.get(name, ({}, {}))[0],
        citation="J. Ni, J. Li, J. McAuley. Justifying Recommendations using "
                 "Distantly-Labeled Reviews and Fine-Grained Aspects. EMNLP 2019.",
    )


register(amazon_spec("Gift_Cards"))


@dataclass
class Amazon(InteractionsDataset):
    """One category of Amazon Review Data (2018) in the package's form.

    Attributes:
        category: the publisher's category name (``"Gift_Cards"``).
        interactions: ``user, item, rating, timestamp`` (latest review per pair).
        reviews: every published review (``user, item, rating, timestamp, summary,
            text, vote, verified``).
        items: indexed by ``item``: ``item_id`` (ASIN) and the metadata columns.
        path: the folder the files were read from.
    """

    category: str
    interactions: Interactions
    reviews: pd.DataFrame
    items: pd.DataFrame
    path: Path

    @property
    def ratings(self) -> pd.DataFrame:
        """The interaction frame: ``user, item, rating, timestamp``."""
        return self.interactions.frame

    def __repr__(self) -> str:
        return (f"Amazon({self.category!r}, users={self.num_users}, items={self.num_items}, "
                f"interactions={len(self.ratings)}, reviews={len(self.reviews)})")


def _read_json(path: Path, spec: DatasetSpec, fields, keep=None) -> tuple[pd.DataFrame, int]:
    """Selected ``fields`` of a gzipped JSON-lines file, read in chunks; rows whose
    ``asin`` is in ``keep`` only (when given). Returns the frame and the total row count."""
    parts, total = [], 0
    try:
        # dtype=False: no type guessing (ASINs of digits stay strings)
        with pd.read_json(path, lines=True, chunksize=100_000, dtype=False) as reader:
            for chunk in reader:
                total += len(chunk)
                chunk = chunk.reindex(columns=list(fields))
                if keep is not None:
                    chunk = chunk[chunk["asin"].isin(keep)]
                parts.append(chunk)
    except (ValueError, OSError, EOFError) as err:
        raise DataError(f"{path}: cannot be parsed as gzipped JSON lines ({err}; truncated "
                        f"or corrupted file?). {how_to_fix(spec, path.name)}") from err
    if not parts:
        raise DataError(f"{path}: holds no records. {how_to_fix(spec, path.name)}")
    return pd.concat(parts, ignore_index=True), total


def _votes(v: pd.Series) -> np.ndarray:
    """``"1,234"`` -> 1234; missing -> 0."""
    text = v.astype(object).where(v.notna(), "0").astype(str).str.replace(",", "")
    return pd.to_numeric(text, errors="coerce").fillna(0).astype(np.int64).to_numpy()


def _price(v: pd.Series) -> np.ndarray:
    """``"$25.00"`` -> 25.0; ranges, empty strings and junk -> NaN."""
    text = v.astype(object).where(v.notna(), "").astype(str).str.strip().str.lstrip("$")
    return pd.to_numeric(text.str.replace(",", ""), errors="coerce").to_numpy(float)


def load_amazon(
    category: str = "Gift_Cards", data_dir: str | os.PathLike | None = None,
    download: bool = True,
) -> Amazon:
    """Load one category of Amazon Review Data (2018): 5-core reviews and metadata.

    Args:
        category: the publisher's name (``"Gift_Cards"``, ``"Video_Games"``...), case,
            spaces and ``&``/``and`` ignored (``"gift cards"`` works). Default Gift Cards.
        data_dir: folder holding ``amazon2018-<category>/`` (``amazon2018-gift-cards``);
            default ``$RECSYS_REF_DATA``, then the cache.
        download: download the two files from the publisher when no copy is found.

    Raises:
        ValueError: an unknown category.
        DataError: a missing, truncated or corrupted file.

    Example:
        >>> az = load_amazon("Gift_Cards")  # doctest: +SKIP
        >>> az.num_users, az.num_items, len(az.reviews), len(az.ratings)  # doctest: +SKIP
        (458, 148, 2972, 2965)
    """
    spec = amazon_spec(category)
    name = spec.files[0][: -len("_5.json.gz")]
    expected = _PINNED.get(name, ({}, {}))[1]
    folder = find_dataset(spec, data_dir=data_dir, download=download)
    rpath, mpath = folder / spec.files[0], folder / spec.files[1]

    raw, _ = _read_json(rpath, spec, _REVIEW_FIELDS)
    raw = raw.rename(columns=_REVIEW_FIELDS)
    for col in ("user_id", "item_id", "rating", "timestamp"):
        if raw[col].isna().any():
            raise DataError(f"{rpath}: {int(raw[col].isna().sum())} review(s) lack "
                            f"'{col}' (corrupted file?). {how_to_fix(spec, rpath.name)}")
    rating = pd.to_numeric(raw["rating"], errors="coerce")
    if rating.isna().any() or not rating.between(1, 5).all():
        raise DataError(f"{rpath}: ratings ('overall') outside 1..5. "
                        f"{how_to_fix(spec, rpath.name)}")
    raw = raw.assign(rating=rating.astype(float),
                     timestamp=pd.to_numeric(raw["timestamp"]).astype(np.int64))
    inter = from_frame(raw, user="user_id", item="item_id", rating="rating",
                       timestamp="timestamp", duplicates="last")
    if expected:
        check_counts(rpath, spec, {"reviews": (len(raw), expected["reviews"]),
                                   "users": (inter.num_users, expected["users"]),
                                   "items": (inter.num_items, expected["items"])})
    reviews = pd.DataFrame({
        "user": inter.to_user_index(raw["user_id"].to_numpy(object)),
        "item": inter.to_item_index(raw["item_id"].to_numpy(object)),
        "rating": raw["rating"].to_numpy(),
        "timestamp": raw["timestamp"].to_numpy(),
        "summary": raw["summary"].to_numpy(object),
        "text": raw["text"].to_numpy(object),
        "vote": _votes(raw["vote"]),
        "verified": raw["verified"].astype("boolean").to_numpy(),
    })

    meta, total = _read_json(mpath, spec, _META_FIELDS, keep=set(inter.item_ids.tolist()))
    if expected:
        check_counts(mpath, spec, {"products": (total, expected["products"])})
    meta = meta.drop_duplicates("asin").set_index("asin").reindex(inter.item_ids)
    items = pd.DataFrame({
        "item_id": inter.item_ids,
        "title": meta["title"].to_numpy(object),
        "brand": meta["brand"].to_numpy(object),
        "main_cat": meta["main_cat"].to_numpy(object),
        "categories": meta["category"].to_numpy(object),
        "description": [" ".join(d) if isinstance(d, list) else d
                        for d in meta["description"].to_numpy(object)],
        "price": _price(meta["price"]),
        "also_buy": meta["also_buy"].to_numpy(object),
        "also_view": meta["also_view"].to_numpy(object),
    }, index=pd.RangeIndex(inter.num_items, name="item"))
    verify_checksums(folder, spec)
    return Amazon(name, inter, reviews, items, folder)
