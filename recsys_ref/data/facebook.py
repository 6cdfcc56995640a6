r"""SNAP ego-Facebook: a friendship graph of 4,039 Facebook users, with circles and features.

The union of ten *ego networks* (the friends of one user, the ego, and the friendships
among them), collected from survey participants :cite:`mcauley2012ego`: an undirected
graph of 4,039 nodes and 88,234 edges (1,612,010 triangles, average clustering 0.6055),
the 193 *circles* (friend lists) the egos drew, and anonymised binary profile features
(``education;school;id;anonymized feature 35``: the key, then an anonymised value).

Publisher: SNAP, snap.stanford.edu/data/ego-Facebook.html (``facebook_combined.txt.gz``,
``facebook.tar.gz``, ``readme-Ego.txt``). Cite J. McAuley and J. Leskovec, "Learning to
Discover Social Circles in Ego Networks", NIPS 2012. Files are checked against SHA-256
digests of their decompressed bytes and the published counts.

The package's form: node ids are SNAP's (already ``0..4038``, checked), so no map is
needed.

- ``edges``: ``source, target`` with ``source < target``, each friendship once;
- ``circles``: ``ego, circle, node`` (one row per member; ``circle`` is SNAP's name);
- ``features``: ``node, feature`` for every 1 in the profile vectors (``.feat`` and
  ``.egofeat`` files of all ten networks), ``feature`` indexing ``feature_names`` (the
  full ``key;...;anonymized feature k`` names, ordered by ``k`` then name).

The tar archive is read in memory with :mod:`tarfile`; nothing is extracted to disk.

Shapes:
    - ``edge_index(symmetric=True)``: ``(2, 2|E|)``; ``False``: ``(2, |E|)``
    - ``feature_matrix()``: ``(num_nodes, num_features)`` sparse 0/1

Used in: the social-graph case study (link prediction, friend recommendation).
"""
from __future__ import annotations

import io
import os
import re
import tarfile
from dataclasses import dataclass
from pathlib import Path, PurePath

import numpy as np
import pandas as pd
import scipy.sparse as sp

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

__all__ = ["Facebook", "load_facebook"]

_SNAP = "https://snap.stanford.edu/data"
FACEBOOK_SPEC = register(DatasetSpec(
    name="snap-ego-facebook",
    url=f"{_SNAP}/ego-Facebook.html",
    files=("facebook_combined.txt.gz", "facebook.tar.gz"),
    sources=(Source(f"{_SNAP}/facebook_combined.txt.gz"), Source(f"{_SNAP}/facebook.tar.gz"),
             Source(f"{_SNAP}/readme-Ego.txt")),
    sha256={  # of the decompressed bytes (the .gz wrapper may differ between copies)
        "facebook_combined.txt.gz":
            "f41c026ed8af3cc3359f1ca5573d0605fb09ae0eefa34544b820fd8c6e2ef296",
        "facebook.tar.gz": "0649d37cc3a23956cb9332ce2166ca0b6ec9e674bace680361ddb6252ecd1a09",
    },
    citation="J. McAuley and J. Leskovec. Learning to Discover Social Circles in Ego "
             "Networks. NIPS 2012.",
))

_EXPECTED = {"nodes": 4_039, "edges": 88_234, "egos": 10, "circles": 193}


@dataclass
class Facebook:
    """SNAP ego-Facebook in the package's form.

    Attributes:
        edges: ``source, target`` (int64, ``source < target``), one row per friendship.
        num_nodes: 4,039.
        egos: the ten ego node ids (sorted).
        circles: ``ego, circle, node`` (one row per circle member).
        features: ``node, feature`` for every profile feature equal to 1.
        feature_names: ``feature_names[f]`` is the name of feature ``f``.
        path: the folder the files were read from.
    """

    edges: pd.DataFrame
    num_nodes: int
    egos: np.ndarray
    circles: pd.DataFrame
    features: pd.DataFrame
    feature_names: np.ndarray
    path: Path
    name: str = "snap-ego-facebook"

    @property
    def num_edges(self) -> int:
        return len(self.edges)

    @property
    def num_features(self) -> int:
        return len(self.feature_names)

    def edge_index(self, symmetric: bool = True) -> np.ndarray:
        """Edges as a ``(2, E)`` int64 array, PyG style; both directions by default."""
        e = self.edges[["source", "target"]].to_numpy().T
        return np.concatenate([e, e[::-1]], axis=1) if symmetric else e.copy()

    def feature_matrix(self) -> sp.csr_matrix:
        """``(num_nodes, num_features)`` sparse matrix with a 1 per row of :attr:`features`."""
        f = self.features
        data = np.ones(len(f), dtype=np.float32)
        return sp.csr_matrix((data, (f["node"], f["feature"])),
                             shape=(self.num_nodes, self.num_features))

    def __repr__(self) -> str:
        n_circles = self.circles.groupby(["ego", "circle"]).ngroups
        return (f"Facebook(nodes={self.num_nodes}, edges={self.num_edges}, "
                f"egos={len(self.egos)}, circles={n_circles}, features={self.num_features})")


def _lines(tf: tarfile.TarFile, member: tarfile.TarInfo) -> list[str]:
    fh = tf.extractfile(member)
    assert fh is not None  # members are regular files
    return [line for line in io.TextIOWrapper(fh, encoding="utf-8").read().splitlines()
            if line.strip()]


def _order_key(name: str) -> tuple[int, str]:
    m = re.search(r"anonymized feature (\d+)$", name)
    return (int(m.group(1)) if m else -1, name)


def _read_egos(path: Path, spec: DatasetSpec) -> tuple[list[int], list, list]:
    """Circles ``(ego, circle, node)`` and features ``(node, name)`` of every ego network."""
    circles: list[tuple[int, str, int]] = []
    features: list[tuple[int, str]] = []
    try:
        with tarfile.open(path) as tf:
            files = {PurePath(m.name).name: m for m in tf.getmembers() if m.isfile()}
            egos = sorted(int(n.split(".")[0]) for n in files if n.endswith(".featnames"))
            for ego in egos:
                names = [ln.split(" ", 1)[1] for ln in _lines(tf, files[f"{ego}.featnames"])]
                for ln in _lines(tf, files[f"{ego}.circles"]):
                    circle, *members = ln.split()
                    circles += [(ego, circle, int(v)) for v in members]
                rows = [ln.split() for ln in _lines(tf, files[f"{ego}.feat"])]
                rows.append([str(ego), *_lines(tf, files[f"{ego}.egofeat"])[0].split()])
                for row in rows:
                    if len(row) != len(names) + 1:
                        raise ValueError(f"{ego}.feat has {len(row) - 1} values, "
                                         f"{len(names)} names")
                    node = int(row[0])
                    features += [(node, names[j]) for j, v in enumerate(row[1:]) if v == "1"]
    except (tarfile.TarError, OSError, EOFError, KeyError, ValueError, IndexError) as err:
        raise DataError(f"{path}: cannot be read ({err}; truncated or corrupted archive?). "
                        f"{how_to_fix(spec, path.name)}") from err
    return egos, circles, features


def load_facebook(data_dir: str | os.PathLike | None = None, download: bool = True) -> Facebook:
    """Load SNAP ego-Facebook: edges, circles and profile features.

    Args:
        data_dir: folder holding ``snap-ego-facebook/``; default ``$RECSYS_REF_DATA``,
            then the cache.
        download: download from SNAP when no copy is found (default ``True``).

    Raises:
        DataError: a missing, truncated or corrupted file.

    Example:
        >>> fb = load_facebook()  # doctest: +SKIP
        >>> fb.num_nodes, fb.num_edges, fb.edge_index().shape  # doctest: +SKIP
        (4039, 88234, (2, 176468))
    """
    spec = FACEBOOK_SPEC
    folder = find_dataset(spec, data_dir=data_dir, download=download)
    path = folder / "facebook_combined.txt.gz"
    edges = read_table(path, spec, sep=" ", header=None, names=["source", "target"],
                       dtype=np.int64)
    e = np.sort(edges.to_numpy(), axis=1)
    nodes = np.unique(e)
    check_counts(path, spec, {"edges": (len(edges), _EXPECTED["edges"]),
                              "nodes": (len(nodes), _EXPECTED["nodes"])})
    if nodes[0] != 0 or nodes[-1] != len(nodes) - 1:
        raise DataError(f"{path}: node ids are not 0..{len(nodes) - 1}. "
                        f"{how_to_fix(spec, path.name)}")
    if (e[:, 0] == e[:, 1]).any() or len(np.unique(e, axis=0)) != len(e):
        raise DataError(f"{path}: self-loops or repeated edges (corrupted file?). "
                        f"{how_to_fix(spec, path.name)}")
    edges = pd.DataFrame(e, columns=["source", "target"])

    tpath = folder / "facebook.tar.gz"
    egos, circles, feats = _read_egos(tpath, spec)
    circles = pd.DataFrame(circles, columns=["ego", "circle", "node"])
    check_counts(tpath, spec, {
        "ego networks": (len(egos), _EXPECTED["egos"]),
        "circles": (circles.groupby(["ego", "circle"]).ngroups, _EXPECTED["circles"])})
    feats = pd.DataFrame(feats, columns=["node", "name"]).drop_duplicates()
    names = np.array(sorted(feats["name"].unique(), key=_order_key), dtype=object)
    features = pd.DataFrame({
        "node": feats["node"].to_numpy(np.int64),
        "feature": pd.Index(names).get_indexer(feats["name"]).astype(np.int64),
    }).sort_values(["node", "feature"], ignore_index=True)
    for what, ids in (("circle members", circles["node"]), ("feature rows", features["node"])):
        if len(ids) and (ids.min() < 0 or ids.max() >= len(nodes)):
            raise DataError(f"{tpath}: {what} name nodes outside 0..{len(nodes) - 1}. "
                            f"{how_to_fix(spec, tpath.name)}")
    verify_checksums(folder, spec)
    return Facebook(edges, len(nodes), np.array(egos, dtype=np.int64), circles, features,
                    names, folder)
