"""Graphs built from interactions: bipartite edges, normalisation, sparse kernels, neighbour
sampling, random walks."""
from recsys_ref.graph.adjacency import (  # noqa: F401
    bipartite_edge_index,
    degree,
    normalized_adjacency,
    scipy_normalized_adjacency,
)
__all__ = [
    "bipartite_edge_index",
    "degree",
    "normalized_adjacency",
    "scipy_normalized_adjacency",
]
