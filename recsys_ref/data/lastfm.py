r"""HetRec 2011 Last.fm 2K: listening counts, tags and friendships of 1,892 Last.fm users.

Implicit feedback: for each (user, artist) pair the number of times the user played the
artist (``weight``, 92,834 pairs, 17,632 artists), plus 186,479 tag assignments (user,
artist, tag, date; 11,946 tags) and 12,717 bidirectional friendships between the same
users. Tab-separated files with a header line, as published.

Publisher: GroupLens, grouplens.org/datasets/hetrec-2011/ (``hetrec2011-lastfm-2k.zip``).
Licence (``readme.txt``): non-commercial use; cite the 2nd Workshop on Information
Heterogeneity and Fusion in Recommender Systems (HetRec 2011), ACM RecSys 2011
(I. Cantador, P. Brusilovsky, T. Kuflik). The files are checked against SHA-256 digests
of the published files and the published counts.

The package's form:

- ``interactions``: ``user, item, weight`` (play count, int64 >= 1), ids mapped to
  ``0..1891`` and ``0..17631`` in sorted original-id order (:class:`Interactions`);
- ``friends``: ``user, friend`` in the same user index, both directions (25,434 rows);
- ``tags``: ``user, item, tag_id, tag, date`` for tagged artists that have plays
  (1,538 assignments of artists nobody played are left out; the file is verified whole).

Used in: the Last.fm case study (implicit feedback, social graph).
"""
from __future__ import annotations

import csv
import os
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
    read_table,
    register,
    verify_checksums,
)

__all__ = ["LastFM", "load_lastfm"]

LASTFM_SPEC = register(DatasetSpec(
    name="hetrec2011-lastfm-2k",
    url="https://files.grouplens.org/datasets/hetrec2011/hetrec2011-lastfm-2k.zip",
    files=("user_artists.dat", "artists.dat", "tags.dat", "user_taggedartists.dat",
           "user_friends.dat"),
    sources=(Source("https://files.grouplens.org/datasets/hetrec2011/"
                    "hetrec2011-lastfm-2k.zip", archive=True),),
    sha256={
        "user_artists.dat": "001400dc3c7d2667fca6e4ea6dc6acc31a9dd28ad5cd0f74cea988c019934d3b",
        "artists.dat": "c173881362c6b28551368fecb3c0be5a6a30a6cd859e1f5775413dfe46d48648",
        "tags.dat": "e95175f259be4c0c47644ae23d66131cd6d5767142a1405000e79f5584691d70",
        "user_taggedartists.dat":
            "d31fe938fcfeed6f0059f37a36b156f63674d073fc2553e5cc9dc1595e365bc7",
        "user_friends.dat": "9a3a8f7fa5f5ec832335e5b58ed69a4cf27c6f6f6afcde62134810eea46445a7",
    },
    citation="2nd Workshop on Information Heterogeneity and Fusion in Recommender Systems "
             "(HetRec 2011), ACM RecSys 2011; Last.fm, http://www.last.fm",
))

# file -> (header as published (text columns marked *), encoding, expected rows)
_FILES = {
    "user_artists.dat": (["userID", "artistID", "weight"], "utf-8", 92_834),
    "artists.dat": (["id", "*name", "*url", "*pictureURL"], "utf-8", 17_632),
    "tags.dat": (["tagID", "*tagValue"], "latin-1", 11_946),
    "user_taggedartists.dat": (["userID", "artistID", "tagID", "day", "month", "year"],
                               "utf-8", 186_479),
    "user_friends.dat": (["userID", "friendID"], "utf-8", 25_434),
}


@dataclass
class LastFM(InteractionsDataset):
    """HetRec 2011 Last.fm 2K in the package's form.

    Attributes:
        interactions: ``user, item, weight`` (play counts) with the id maps.
        artists: indexed by ``item``: ``artist_id, name, url, picture_url``.
        tags: ``user, item, tag_id, tag, date`` (tag assignments of played artists).
        friends: ``user, friend`` (both directions of each friendship).
        path: the folder the files were read from.
    """

    interactions: Interactions
    artists: pd.DataFrame
    tags: pd.DataFrame
    friends: pd.DataFrame
    path: Path
    name: str = "hetrec2011-lastfm-2k"

    @property
    def plays(self) -> pd.DataFrame:
        """The interaction frame: ``user, item, weight``."""
        return self.interactions.frame

    def __repr__(self) -> str:
        return (f"LastFM(users={self.num_users}, items={self.num_items}, "
                f"plays={len(self.plays)}, friends={len(self.friends) // 2}, "
                f"tags={len(self.tags)})")


def _read(folder: Path, spec: DatasetSpec, fname: str) -> pd.DataFrame:
    """Read one tab-separated file, check its header and its published row count."""
    columns, encoding, rows = _FILES[fname]
    header = [c.lstrip("*") for c in columns]
    path = folder / fname
    with open(path, encoding=encoding, newline="") as fh:
        found = fh.readline().rstrip("\r\n").split("\t")
    if found != header:
        raise DataError(f"{path}: header is {found}, expected {header} (not the published "
                        f"file?). {how_to_fix(spec, fname)}")
    dtype = {c.lstrip("*"): str if c.startswith("*") else np.int64 for c in columns}
    df = read_table(path, spec, sep="\t", encoding=encoding, quoting=csv.QUOTE_NONE,
                    dtype=dtype, keep_default_na=False)
    check_counts(path, spec, {"rows": (len(df), rows)})
    return df


def load_lastfm(data_dir: str | os.PathLike | None = None, download: bool = True) -> LastFM:
    """Load HetRec 2011 Last.fm 2K.

    Args:
        data_dir: folder holding ``hetrec2011-lastfm-2k/``; default ``$RECSYS_REF_DATA``,
            then the cache.
        download: download from GroupLens when no copy is found (default ``True``).

    Raises:
        DataError: a missing, truncated or corrupted file (names the file, the
            environment variable and the URL).

    Example:
        >>> fm = load_lastfm()  # doctest: +SKIP
        >>> fm.num_users, fm.num_items, len(fm.plays), len(fm.friends)  # doctest: +SKIP
        (1892, 17632, 92834, 25434)
    """
    spec = LASTFM_SPEC
    folder = find_dataset(spec, data_dir=data_dir, download=download)
    raw = {f: _read(folder, spec, f) for f in _FILES}
    inter = from_frame(raw["user_artists.dat"], user="userID", item="artistID", weight="weight")
    check_counts(folder / "user_artists.dat", spec,
                 {"users": (inter.num_users, 1_892), "artists": (inter.num_items, 17_632)})

    artists = raw["artists.dat"]
    missing = ~np.isin(inter.item_ids, artists["id"].to_numpy())
    if missing.any():
        raise DataError(f"{folder / 'artists.dat'}: {int(missing.sum())} played artists "
                        f"have no row (e.g. id {inter.item_ids[missing][0]}). "
                        f"{how_to_fix(spec, 'artists.dat')}")
    artists = artists[artists["id"].isin(inter.item_ids)]
    artists = pd.DataFrame({
        "artist_id": artists["id"].to_numpy(),
        "name": artists["name"].to_numpy(),
        "url": artists["url"].to_numpy(),
        "picture_url": artists["pictureURL"].mask(artists["pictureURL"] == "").to_numpy(),
    }, index=pd.Index(inter.to_item_index(artists["id"].to_numpy()), name="item"))
    artists = artists.sort_index()

    path = folder / "user_friends.dat"
    friends = raw["user_friends.dat"]
    try:
        friends = pd.DataFrame({"user": inter.to_user_index(friends["userID"].to_numpy()),
                                "friend": inter.to_user_index(friends["friendID"].to_numpy())})
    except KeyError as err:
        raise DataError(f"{path}: a friendship names a user without plays ({err}). "
                        f"{how_to_fix(spec, path.name)}") from err
    f = friends.to_numpy()
    pairs = np.unique(np.sort(f, axis=1), axis=0)
    check_counts(path, spec, {"friendships": (len(pairs), 12_717)})

    tags = _tags(raw, folder, spec, inter)
    verify_checksums(folder, spec)
    return LastFM(inter, artists, tags, friends, folder)


def _tags(raw: dict[str, pd.DataFrame], folder: Path, spec: DatasetSpec,
          inter: Interactions) -> pd.DataFrame:
    names = raw["tags.dat"].set_index("tagID")["tagValue"]
    path = folder / "user_taggedartists.dat"
    ta = raw["user_taggedartists.dat"]
    ta = ta[np.isin(ta["artistID"].to_numpy(), inter.item_ids)]
    unknown = ~ta["tagID"].isin(names.index)
    if unknown.any():
        raise DataError(f"{path}: tag id {ta['tagID'][unknown].iloc[0]} is not in tags.dat. "
                        f"{how_to_fix(spec, path.name)}")
    try:
        date = pd.to_datetime(ta[["year", "month", "day"]])
    except (ValueError, OverflowError) as err:
        raise DataError(f"{path}: invalid day/month/year ({err}). "
                        f"{how_to_fix(spec, path.name)}") from err
    return pd.DataFrame({
        "user": inter.to_user_index(ta["userID"].to_numpy()),
        "item": inter.to_item_index(ta["artistID"].to_numpy()),
        "tag_id": ta["tagID"].to_numpy(),
        "tag": names.loc[ta["tagID"]].to_numpy(),
        "date": date.to_numpy(),
    })
