"""``benchmarks/peers.py`` on a tiny synthetic split: the peers' scores reach our evaluator
with the right ids, Recommenders' evaluator agrees with ours, the search and the cache
behave, and the summary's ratio and paired test are what they say.

Needs the peers extra (``pip install -e ".[peers]"``); skipped without cornac or implicit.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.stats
import torch

pytest.importorskip("cornac", reason="the peers extra is not installed (pip install -e '.[peers]')")
pytest.importorskip("implicit", reason="the peers extra is not installed")
pytest.importorskip("recommenders.evaluation.python_evaluation",
                    reason="recommenders is not installed (make env installs it)")

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import peer_spaces  # noqa: E402
import peers  # noqa: E402

from recsys_ref.protocol.evaluate import evaluate_ranking  # noqa: E402
from recsys_ref.protocol.split import Split  # noqa: E402

NUM_USERS, NUM_ITEMS = 40, 30


@pytest.fixture(scope="module")
def split() -> Split:
    """40 users x 30 items, 12 interactions per user drawn with item popularity ~ 1/rank,
    ratings 1-5 and timestamps; Recommenders' stratified split with a validation part."""
    rng = np.random.default_rng(7)
    p = 1.0 / np.arange(1, NUM_ITEMS + 1)
    rows = [(u, i) for u in range(NUM_USERS)
            for i in rng.choice(NUM_ITEMS, 12, replace=False, p=p / p.sum())]
    frame = pd.DataFrame(rows, columns=["user", "item"])
    frame["rating"] = rng.integers(1, 6, len(frame))
    frame["timestamp"] = 880_000_000 + rng.integers(0, 10_000_000, len(frame))
    return Split.recommenders(frame, seed=42, valid_ratio=0.2, num_users=NUM_USERS,
                              num_items=NUM_ITEMS)


def _specs(*keys):
    return [peer_spaces.SPECS[k] for k in keys]


@pytest.fixture(scope="module")
def result(split, tmp_path_factory):
    cache = peers.Cache(tmp_path_factory.mktemp("cache"))
    ctx = peers.Context(split, None, threads=1)
    rows = peers.run(_specs("cornac-ease", "implicit-als", "sar", "popularity", "ease"),
                     ctx, seeds=[0], budget=2, cache=cache, quick=True, progress=False,
                     log=lambda *_: None)
    return rows, cache, ctx


def test_cornac_ease_scores_reach_our_evaluator_with_the_right_ids(split, result):
    """cornac's EASE (ratings as values, lamb=500, B >= 0) against the closed form
    B = -P / diag(P), P = (X^T X + lamb I)^-1, computed here with numpy on the same
    items, ranked by our evaluator: the documented row's test metrics are equal."""
    rows, _, _ = result
    row = next(r for r in rows if r.spec.key == "cornac-ease" and r.setting == "documented")
    train = split.train
    X = np.zeros((NUM_USERS, NUM_ITEMS))
    X[train["user"], train["item"]] = train["rating"]
    known = np.unique(train["item"])
    Xk = X[:, known]
    P = np.linalg.inv(Xk.T @ Xk + 500.0 * np.eye(len(known)))
    B = P / -np.diag(P)
    np.fill_diagonal(B, 0.0)
    B[B < 0] = 0.0
    scores = np.full((NUM_USERS, NUM_ITEMS), -np.inf)
    scores[:, known] = Xk @ B
    expected = evaluate_ranking(torch.as_tensor(scores), split.test, NUM_USERS, NUM_ITEMS,
                                10, exclude=[train], metrics=peers.METRICS)
    for m in peers.METRICS:
        assert row.runs[0][m] == pytest.approx(expected[m], abs=1e-9), m


def test_recommenders_evaluator_agrees_and_own_lists_match(result):
    rows, _, _ = result
    for r in rows:
        if r.spec.is_peer:
            run = r.runs[0]
            assert run["recommenders_max_diff"] <= 1e-9
            # EASE (cornac), ALS (implicit) and SAR rank their own lists as we do
            assert run["own_topk_agreement"] >= 0.95, r.spec.key
        else:
            assert "recommenders_max_diff" not in r.runs[0]


def test_recommenders_metrics_on_a_hand_example():
    """One user, relevant {1, 2}, list [1, 5, 2]: P@3 = 2/3, R@3 = 1,
    nDCG@3 = (1 + 1/log2 4) / (1 + 1/log2 3), MAP = (1/1 + 2/3) / 2."""
    test = pd.DataFrame({"user": [0, 0], "item": [1, 2]})
    got = peers.recommenders_metrics(np.array([[1, 5, 2]]), np.array([0]), test, k=3)
    assert got["precision"] == pytest.approx(2 / 3)
    assert got["recall"] == pytest.approx(1.0)
    assert got["ndcg"] == pytest.approx((1 + 1 / np.log2(4)) / (1 + 1 / np.log2(3)))
    assert got["map"] == pytest.approx((1 + 2 / 3) / 2)


def test_rows_settings_and_deterministic_seeds(result):
    rows, _, _ = result
    by = {(r.spec.key, r.setting) for r in rows}
    assert ("cornac-ease", "documented") in by and ("cornac-ease", "tuned") in by
    assert ("popularity", "default") in by and ("popularity", "tuned") not in by
    for r in rows:
        if r.setting == "tuned":
            first = next(x for x in rows if x.spec.key == r.spec.key and x is not r)
            assert r.valid_ndcg >= first.valid_ndcg        # the default is a candidate


def test_the_cache_resumes_without_fitting(split, result, monkeypatch):
    rows, cache, ctx = result

    def boom(*args, **kwargs):
        raise AssertionError("a cached fit was run again")

    monkeypatch.setattr(peers, "_valid_stage", boom)
    monkeypatch.setattr(peers, "_test_stage", boom)
    again = peers.run(_specs("cornac-ease", "implicit-als", "sar", "popularity", "ease"),
                      ctx, seeds=[0], budget=2, cache=cache, quick=True, progress=False,
                      log=lambda *_: None)
    assert [(r.spec.key, r.setting, r.runs[0]["ndcg"]) for r in again] == \
        [(r.spec.key, r.setting, r.runs[0]["ndcg"]) for r in rows]
    fresh = peers.Cache(cache.folder, fresh=True)
    with pytest.raises(AssertionError, match="cached fit"):
        peers.run(_specs("popularity"), ctx, seeds=[0], budget=1, cache=fresh,
                  progress=False, log=lambda *_: None)


def test_summary_ratio_and_paired_test(result):
    rows, _, _ = result
    frame, head = peers.summarise(rows)
    peer_rows = frame[frame["library"] != "ours"]
    best = peer_rows["ndcg"].max()
    ours = frame[frame["library"] == "ours"]
    np.testing.assert_allclose(ours["ratio_to_best_peer"], ours["ndcg"] / best)
    bo = ours.loc[ours["valid_ndcg"].idxmax()]
    bp = peer_rows.loc[peer_rows["ndcg"].idxmax()]
    a = peers._per_user(rows, bo["key"], bo["setting"])
    b = peers._per_user(rows, bp["key"], bp["setting"])
    p = scipy.stats.ttest_rel(a, b).pvalue
    got = frame.loc[(frame["key"] == bo["key"]) & (frame["setting"] == bo["setting"]),
                    "p_vs_best_peer"].iloc[0]
    assert got == pytest.approx(p)
    md = peers.to_markdown(frame, head, {"cornac": "x"}, "python benchmarks/peers.py")
    assert md.count("\n| ") == len(frame) + 1 and "| ours | EASE | default |" in md


def test_draw_configs():
    spec = peer_spaces.SPECS["implicit-als"]
    configs = peer_spaces.draw_configs(spec, 6, seed=0)
    assert configs[0] == spec.default and len(configs) == 6
    assert configs == peer_spaces.draw_configs(spec, 6, seed=0)
    assert len({str(sorted(c.items())) for c in configs}) == 6
    for c in configs[1:]:
        for k, v in c.items():
            assert v in spec.space.get(k, [spec.default.get(k)])
    # a space smaller than the budget yields what it has
    assert len(peer_spaces.draw_configs(peer_spaces.SPECS["svd"], 100)) == 2 * 7
    with pytest.raises(ValueError, match="at least 1"):
        peer_spaces.draw_configs(spec, 0)
