"""Command-line tools (``python -m recsys_ref.cli.bench``)."""
