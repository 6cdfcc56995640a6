"""Evaluation protocols: splits, metrics, ranking evaluation, cold-start protocols."""
