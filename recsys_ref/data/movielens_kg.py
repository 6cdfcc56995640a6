r"""A knowledge graph for MovieLens 100K: KB4Rec's Freebase links and triples.

KB4Rec (Zhao et al., 2019) links the items of recommendation datasets to Freebase
entities; RecBole (Zhao et al., 2021) ships the ML-100K part as two atomic files:
``ml-100k.link`` (item id -> Freebase entity, 1,598 of the 1,682 movies linked) and
``ml-100k.kg`` (91,631 ``(head, relation, tail)`` triples such as ``film.film.actor``,
``film.producer.film``; 34,628 entities, 24 relations). Each file has a one-line header
of ``name:type`` columns.

Publisher: RecBole's dataset examples, github.com/RUCAIBox/RecBole
(``recbole/dataset_example/ml-100k/``; downloads are pinned to a commit whose files equal
the mirror's). Cite W. X. Zhao et al., "KB4Rec: A Data Set for Linking Knowledge Bases
with Recommender Systems", Data Intelligence 1(2), 2019; the ratings are MovieLens'
(GroupLens terms). Both files are checked against SHA-256 digests and the counts above.

The package's form:

- ``links``: ``item, item_id, entity, entity_id``, sorted by ``item``, where ``item`` is
  the index of :func:`~recsys_ref.data.movielens.load_movielens` ``("ml-100k")``;
- ``triples``: ``head, relation, tail`` as int64 indices;
- ``entity_ids[e]`` (Freebase mid) and ``relation_names[r]``. The linked items'
  entities come first, in item order (entity ``e < len(links)`` is the entity of item
  ``links.item[e]``), then every other entity sorted by id; relations are sorted by name.

Used in: the knowledge-graph chapter (KG-aware recommenders).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from recsys_ref.data.movielens import MovieLens, load_movielens
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

__all__ = ["MovieLensKG", "load_movielens_kg"]

_RECBOLE = ("https://raw.githubusercontent.com/RUCAIBox/RecBole/"
            "7b02be5ec80a88310f2d04a27a82adfcbb5dc211/recbole/dataset_example/ml-100k")
KG_SPEC = register(DatasetSpec(
    name="ml-100k-kg",
    url=f"{_RECBOLE}/ml-100k.kg",
    files=("ml-100k.link", "ml-100k.kg"),
    sources=(Source(f"{_RECBOLE}/ml-100k.link"), Source(f"{_RECBOLE}/ml-100k.kg")),
    sha256={
        "ml-100k.link": "524dca2c3d62619688ab99b3ec53ea2acb9b64d38eafec3e02bdd0dc6bb7d948",
        "ml-100k.kg": "200a0636fa07c218119a42e5bac7aa3e26e3665a6f919c1b22909bd412b14779",
    },
    citation="W. X. Zhao, G. He, K. Yang, H. Dou, J. Huang, S. Ouyang, J.-R. Wen. KB4Rec: "
             "A Data Set for Linking Knowledge Bases with Recommender Systems. Data "
             "Intelligence 1(2), 2019.",
))

_HEADERS = {"ml-100k.link": ["item_id:token", "entity_id:token"],
            "ml-100k.kg": ["head_id:token", "relation_id:token", "tail_id:token"]}
_EXPECTED = {"links": 1_598, "triples": 91_631, "entities": 34_628, "relations": 24}


@dataclass
class MovieLensKG:
    """The KB4Rec knowledge graph of MovieLens 100K in the package's form.

    Attributes:
        links: ``item, item_id, entity, entity_id`` (one row per linked movie).
        triples: ``head, relation, tail`` (int64 entity and relation indices).
        entity_ids: ``entity_ids[e]`` is the Freebase id of entity ``e``.
        relation_names: ``relation_names[r]`` is the name of relation ``r``.
        num_items: the number of MovieLens items (1,682; linked or not).
        path: the folder the files were read from.
    """

    links: pd.DataFrame
    triples: pd.DataFrame
    entity_ids: np.ndarray
    relation_names: np.ndarray
    num_items: int
    path: Path
    name: str = "ml-100k-kg"

    @property
    def num_entities(self) -> int:
        return len(self.entity_ids)

    @property
    def num_relations(self) -> int:
        return len(self.relation_names)

    @property
    def entity_index(self) -> dict[str, int]:
        """Freebase id -> entity index."""
        return {e: i for i, e in enumerate(self.entity_ids.tolist())}

    @property
    def relation_index(self) -> dict[str, int]:
        """Relation name -> relation index."""
        return {r: i for i, r in enumerate(self.relation_names.tolist())}

    def __repr__(self) -> str:
        return (f"MovieLensKG(items={self.num_items}, linked={len(self.links)}, "
                f"entities={self.num_entities}, relations={self.num_relations}, "
                f"triples={len(self.triples)})")


def _read(folder: Path, spec: DatasetSpec, fname: str) -> pd.DataFrame:
    path = folder / fname
    df = read_table(path, spec, sep="\t", dtype=str, keep_default_na=False)
    if list(df.columns) != _HEADERS[fname]:
        raise DataError(f"{path}: header is {list(df.columns)}, expected "
                        f"{_HEADERS[fname]} (RecBole's atomic-file header). "
                        f"{how_to_fix(spec, fname)}")
    if (df == "").any().any():
        raise DataError(f"{path}: empty fields (truncated or corrupted file?). "
                        f"{how_to_fix(spec, fname)}")
    df.columns = [c.split(":")[0] for c in df.columns]
    return df


def load_movielens_kg(
    data_dir: str | os.PathLike | None = None, download: bool = True,
    movielens: MovieLens | None = None,
) -> MovieLensKG:
    """Load the KB4Rec knowledge graph of ML-100K, aligned to the MovieLens item index.

    Args:
        data_dir: folder holding ``ml-100k-kg/`` (and ``ml-100k/`` when ``movielens`` is
            not given); default ``$RECSYS_REF_DATA``, then the cache.
        download: download from the publisher when no copy is found (default ``True``).
        movielens: the loaded ML-100K whose item index the links use; default
            ``load_movielens("ml-100k", data_dir, download)``.

    Raises:
        DataError: a missing, truncated or corrupted file, or a link to an item that is
            not in ML-100K.

    Example:
        >>> kg = load_movielens_kg()  # doctest: +SKIP
        >>> len(kg.links), kg.num_entities, kg.num_relations, len(kg.triples)  # doctest: +SKIP
        (1598, 34628, 24, 91631)
    """
    spec = KG_SPEC
    if movielens is None:
        movielens = load_movielens("ml-100k", data_dir=data_dir, download=download)
    if movielens.name != "ml-100k":
        raise ValueError(f"the KB4Rec graph links ML-100K items, got {movielens.name!r}")
    folder = find_dataset(spec, data_dir=data_dir, download=download)

    lpath = folder / "ml-100k.link"
    link = _read(folder, spec, "ml-100k.link")
    item_id = pd.to_numeric(link["item_id"], errors="coerce")
    item = pd.Index(movielens.item_ids).get_indexer(item_id.fillna(-1).astype(np.int64))
    if (item < 0).any():
        bad = link["item_id"][item < 0].iloc[0]
        raise DataError(f"{lpath}: item id {bad!r} is not an ML-100K item. "
                        f"{how_to_fix(spec, lpath.name)}")
    order = np.argsort(item, kind="stable")
    item, linked = item[order], link["entity_id"].to_numpy(object)[order]
    if len(np.unique(item)) != len(item) or len(set(linked)) != len(linked):
        raise DataError(f"{lpath}: an item or an entity is linked twice. "
                        f"{how_to_fix(spec, lpath.name)}")

    kpath = folder / "ml-100k.kg"
    kg = _read(folder, spec, "ml-100k.kg")
    heads, tails = kg["head_id"].to_numpy(object), kg["tail_id"].to_numpy(object)
    others = np.setdiff1d(np.union1d(heads, tails).astype(str), linked.astype(str))
    entity_ids = np.concatenate([linked.astype(str), others]).astype(object)
    relation_names = np.unique(kg["relation_id"].to_numpy(str)).astype(object)
    check_counts(kpath, spec, {
        "links": (len(link), _EXPECTED["links"]), "triples": (len(kg), _EXPECTED["triples"]),
        "entities": (len(entity_ids), _EXPECTED["entities"]),
        "relations": (len(relation_names), _EXPECTED["relations"])})

    ents, rels = pd.Index(entity_ids), pd.Index(relation_names)
    triples = pd.DataFrame({
        "head": ents.get_indexer(heads).astype(np.int64),
        "relation": rels.get_indexer(kg["relation_id"].to_numpy(object)).astype(np.int64),
        "tail": ents.get_indexer(tails).astype(np.int64),
    })
    links = pd.DataFrame({
        "item": item.astype(np.int64),
        "item_id": movielens.item_ids[item],
        "entity": np.arange(len(item), dtype=np.int64),
        "entity_id": linked,
    })
    verify_checksums(folder, spec)
    return MovieLensKG(links, triples, entity_ids, relation_names, movielens.num_items,
                       folder)
