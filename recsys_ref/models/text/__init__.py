"""Recommenders that use item and user text."""
