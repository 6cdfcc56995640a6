"""Neural-network building blocks: GCN and attention layers, losses, negative sampling."""
