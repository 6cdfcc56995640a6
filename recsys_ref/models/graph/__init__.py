"""Graph recommenders: graph embeddings (node2vec, GAE) and GNNs (GCN, NGCF, LightGCN,
GraphSAGE, GAT)."""
