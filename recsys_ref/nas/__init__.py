"""Hyper-parameter tuning and graph neural architecture search: a search space as data
(:mod:`~recsys_ref.nas.space`), a model from any of its points
(:mod:`~recsys_ref.nas.builder`), and search strategies with a resumable trial store
(:mod:`~recsys_ref.nas.search`).

Used in: ``chapters/12_architecture_search``.
"""
from recsys_ref.nas.space import Param, SearchSpace

__all__ = ["Param", "SearchSpace"]
