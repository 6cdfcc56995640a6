"""Speed and memory of full-ranking evaluation (recsys_ref.protocol.evaluate.evaluate_ranking).

Scores every item for every test user, masks training items, takes the top k and computes
all ranking metrics, on random data of growing size and on ML-100K with the popularity
model. Prints a table: users x items, batch size, seconds (median of 3), peak extra RSS.

    python benchmarks/evaluation.py
"""
from __future__ import annotations

import resource
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from recsys_ref.protocol.evaluate import evaluate_ranking  # noqa: E402


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bench(num_users: int, num_items: int, per_user: int, batch_size: int, k: int = 10) -> dict:
    rng = np.random.default_rng(0)
    n = num_users * per_user
    train = pd.DataFrame({"user": rng.integers(0, num_users, n), "item": rng.integers(0, num_items, n)})
    test = pd.DataFrame({"user": rng.integers(0, num_users, n // 3), "item": rng.integers(0, num_items, n // 3)})
    user_emb = torch.randn(num_users, 64)
    item_emb = torch.randn(num_items, 64)

    def score(users):
        return user_emb[users] @ item_emb.T

    before = _rss_mb()
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        evaluate_ranking(score, test, num_users, num_items, k, exclude=[train], batch_size=batch_size)
        times.append(time.perf_counter() - t0)
    return {"users": num_users, "items": num_items, "train rows": n, "batch": batch_size,
            "seconds": round(statistics.median(times), 3),
            "peak RSS growth (MB)": round(max(0.0, _rss_mb() - before), 1)}


def main() -> None:
    rows = [bench(943, 1682, 80, 1024), bench(6040, 3706, 165, 1024),
            bench(20_000, 20_000, 50, 512), bench(20_000, 20_000, 50, 4096)]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(pd.DataFrame(rows).to_string(index=False))


if __name__ == "__main__":
    main()
