"""Which chapters exist and how the test tiers treat them (read from notebook metadata)."""
from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CHAPTERS = sorted((ROOT / "chapters").glob("[0-9][0-9]_*.ipynb"))


def meta(path: Path) -> dict:
    return json.loads(path.read_text()).get("metadata", {}).get("recsys_ref", {})


def ci_nbval_chapters() -> list[Path]:
    """Chapters cheap enough for nbval with their default parameters in CI."""
    return [p for p in CHAPTERS if meta(p).get("ci_nbval")]


if __name__ == "__main__":  # used by the Makefile: print the CI nbval tier
    print(" ".join(str(p.relative_to(ROOT)) for p in ci_nbval_chapters()))
