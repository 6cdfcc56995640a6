"""Paired tests against scipy and closed forms; mean ± std over seeds."""
import math

import numpy as np
import pandas as pd
import pytest
import scipy.stats

from recsys_ref.protocol.stats import (
    PairedTest,
    format_mean_std,
    mean_std,
    paired_test,
    seed_summary,
)


@pytest.fixture(scope="module")
def correlated_pair():
    """943 'users': a shared per-user difficulty plus a small model effect."""
    rng = np.random.default_rng(0)
    base = rng.random(943)
    a = np.clip(base + rng.normal(0.02, 0.1, 943), 0, 1)
    b = np.clip(base + rng.normal(0.0, 0.1, 943), 0, 1)
    return a, b


# ---------------------------------------------------------------------------- t-test
def test_t_hand_example_closed_form():
    """d = (1, 2, 3): mean 2, s = 1, t = 2 / (1 / sqrt 3) = 2 sqrt 3 with 2 df.

    The t_2 distribution has F(t) = 1/2 + t / (2 sqrt(2 + t^2)), so p = 1 - t / sqrt(2 + t^2)
    = 1 - sqrt(12 / 14); its quantile is t_q = (2q - 1) / sqrt(2 q (1 - q)), 4.3027 at
    q = 0.975, so the interval is 2 -+ 4.3027 / sqrt 3.
    """
    r = paired_test([1.0, 2.0, 3.0], [0.0, 0.0, 0.0])
    t = 2 * math.sqrt(3)
    assert r.statistic == pytest.approx(t, rel=1e-12)
    assert r.p_value == pytest.approx(1 - math.sqrt(12 / 14), rel=1e-10)
    t_q = 0.95 / math.sqrt(2 * 0.975 * 0.025)
    assert (r.ci_low, r.ci_high) == pytest.approx((2 - t_q / math.sqrt(3),
                                                   2 + t_q / math.sqrt(3)), rel=1e-10)
    assert (r.mean_diff, r.n, r.method) == (2.0, 3, "t")


def test_t_equals_scipy_ttest_rel(correlated_pair):
    a, b = correlated_pair
    ours = paired_test(a, b, "t")
    ref = scipy.stats.ttest_rel(a, b)
    assert ours.statistic == pytest.approx(ref.statistic, rel=1e-12)
    assert ours.p_value == pytest.approx(ref.pvalue, rel=1e-9)
    ci = ref.confidence_interval(0.95)
    assert (ours.ci_low, ours.ci_high) == pytest.approx((ci.low, ci.high), rel=1e-10)
    assert ours.mean_diff == pytest.approx(np.mean(a - b))
    assert ours.ci_low < ours.mean_diff < ours.ci_high
    assert ours.p_value < 0.05                # the effect of 0.02 is found


def test_t_confidence_level_widens_interval(correlated_pair):
    a, b = correlated_pair
    r90, r99 = paired_test(a, b, confidence=0.90), paired_test(a, b, confidence=0.99)
    ci = scipy.stats.ttest_rel(a, b).confidence_interval(0.99)
    assert (r99.ci_low, r99.ci_high) == pytest.approx((ci.low, ci.high), rel=1e-10)
    assert r99.ci_low < r90.ci_low < r90.ci_high < r99.ci_high


def test_direction_is_a_minus_b(correlated_pair):
    a, b = correlated_pair
    ab, ba = paired_test(a, b), paired_test(b, a)
    assert ab.mean_diff == pytest.approx(-ba.mean_diff)
    assert ab.p_value == pytest.approx(ba.p_value)
    assert ab.ci_low == pytest.approx(-ba.ci_high)


# ---------------------------------------------------------------------------- bootstrap
def test_bootstrap_p_and_interval_close_to_t_on_large_normal_sample():
    """n = 2,000 normal differences, effect chosen so that p is near 0.03: the shifted
    bootstrap and the t-test agree to Monte-Carlo error (sd of p ~ 0.002 at B = 20,000)."""
    rng = np.random.default_rng(1)
    d = rng.normal(0.0, 1.0, 2000)
    d = d - d.mean() + 2.17 / math.sqrt(2000) * d.std(ddof=1)      # t = 2.17 exactly
    t = paired_test(d, np.zeros_like(d), "t")
    boot = paired_test(d, np.zeros_like(d), "bootstrap", num_resamples=20_000, seed=3)
    assert t.p_value == pytest.approx(0.030, abs=0.001)
    assert boot.p_value == pytest.approx(t.p_value, abs=0.01)
    assert boot.mean_diff == pytest.approx(t.mean_diff)
    assert boot.ci_low == pytest.approx(t.ci_low, abs=0.01)
    assert boot.ci_high == pytest.approx(t.ci_high, abs=0.01)
    assert boot.statistic == pytest.approx(2.17, abs=0.05)     # mean / bootstrap se


def test_bootstrap_is_reproducible_and_seeded(correlated_pair):
    a, b = correlated_pair
    r1 = paired_test(a, b, "bootstrap", num_resamples=2000, seed=5)
    r2 = paired_test(a, b, "bootstrap", num_resamples=2000, seed=5)
    r3 = paired_test(a, b, "bootstrap", num_resamples=2000, seed=6)
    assert r1 == r2
    assert r1.ci_low != r3.ci_low
    assert r1.ci_low < r1.mean_diff < r1.ci_high


def test_bootstrap_p_value_counts_resamples_by_hand():
    """d = (0, 2), B resamples of 2 users: each resample mean is 0, 1 or 2 (prob 1/4,
    1/2, 1/4); centred at the observed mean 1, |.| >= 1 holds for 0 and 2: half of them.
    p = (1 + #extreme) / (B + 1) must therefore be close to 1/2."""
    r = paired_test([0.0, 2.0], [0.0, 0.0], "bootstrap", num_resamples=40_000, seed=0)
    assert r.p_value == pytest.approx(0.5, abs=0.01)
    assert (r.ci_low, r.ci_high) == (0.0, 2.0)


def test_bootstrap_p_is_never_zero():
    d = np.linspace(1.0, 2.0, 50)                  # all differences positive
    r = paired_test(d, np.zeros(50), "bootstrap", num_resamples=999)
    assert r.p_value == pytest.approx(1 / 1000) and r.num_resamples == 999
    assert str(r).endswith("p ≤ 0.0010 (paired bootstrap, n = 50)")


# ---------------------------------------------------------------------------- wilcoxon
def test_wilcoxon_hand_example_exact():
    """Five positive differences: W = 0 and the exact two-sided p = 2 / 2^5 = 0.0625."""
    r = paired_test([1.0, 2.0, 3.0, 4.0, 5.0], [0.0] * 5, "wilcoxon")
    assert r.statistic == 0.0
    assert r.p_value == pytest.approx(0.0625)


def test_wilcoxon_equals_scipy(correlated_pair):
    a, b = correlated_pair
    ref = scipy.stats.wilcoxon(a, b)
    r = paired_test(a, b, "wilcoxon")
    assert r.statistic == pytest.approx(ref.statistic)
    assert r.p_value == pytest.approx(ref.pvalue, rel=1e-12)
    t = paired_test(a, b, "t")                    # the interval is the t interval
    assert (r.ci_low, r.ci_high) == (t.ci_low, t.ci_high)


# ---------------------------------------------------------------------------- limits
@pytest.mark.parametrize("method", ["t", "bootstrap", "wilcoxon"])
def test_identical_inputs_give_zero_difference_and_p_one(method):
    x = np.array([0.1, 0.5, 0.0, 0.7])
    r = paired_test(x, x.copy(), method)
    assert (r.mean_diff, r.ci_low, r.ci_high, r.p_value) == (0.0, 0.0, 0.0, 1.0)


def test_constant_nonzero_difference_t_is_infinite():
    r = paired_test([1.0, 2.0, 3.0], [0.5, 1.5, 2.5], "t")
    assert r.statistic == math.inf and r.p_value == 0.0
    assert r.ci_low == r.ci_high == r.mean_diff == 0.5


@pytest.mark.parametrize("a, b, match", [
    ([1.0, 2.0], [1.0], "same order"),
    ([1.0], [2.0], "at least 2"),
    ([1.0, np.nan], [1.0, 2.0], "NaN or infinite"),
    ([[1.0, 2.0]], [[1.0, 2.0]], "1-D"),
])
def test_bad_inputs_raise_helpful_errors(a, b, match):
    with pytest.raises(ValueError, match=match):
        paired_test(a, b)


def test_misaligned_series_raise_and_aligned_series_work():
    a = pd.Series([0.1, 0.2, 0.4], index=[3, 5, 9])
    with pytest.raises(ValueError, match="different indexes"):
        paired_test(a, pd.Series([0.1, 0.2, 0.3], index=[3, 5, 8]))
    r = paired_test(a, pd.Series([0.0, 0.1, 0.2], index=[3, 5, 9]))
    assert r.mean_diff == pytest.approx(0.4 / 3)


def test_unknown_method_and_bad_options_raise():
    with pytest.raises(ValueError, match="method must be one of"):
        paired_test([1.0, 2.0], [0.0, 1.5], "z")
    with pytest.raises(ValueError, match="num_resamples"):
        paired_test([1.0, 2.0], [0.0, 1.5], "bootstrap", num_resamples=0)
    with pytest.raises(ValueError, match="confidence"):
        paired_test([1.0, 2.0], [0.0, 1.5], confidence=95)


def test_str_reads_like_a_table_cell():
    r = PairedTest(0.0123, 0.0051, 0.0190, 0.0008, "t", 943)
    assert str(r) == "+0.0123 [+0.0051, +0.0190], p = 0.0008 (paired t, n = 943)"
    small = PairedTest(-0.02, -0.03, -0.01, 3.2e-7, "bootstrap", 100)
    assert str(small) == "-0.0200 [-0.0300, -0.0100], p = 3.2e-07 (paired bootstrap, n = 100)"
    with pytest.raises(AttributeError):
        r.p_value = 0.5                            # frozen


# ---------------------------------------------------------------------------- seeds
def test_mean_std_uses_sample_std():
    m, s = mean_std([0.46, 0.47, 0.49])
    assert m == pytest.approx(1.42 / 3)
    # deviations -0.01333, -0.00333, +0.01667: squares sum 4.6667e-4, / 2, sqrt
    assert s == pytest.approx(math.sqrt(4.6666666666666666e-4 / 2))
    assert mean_std([0.5]) == (0.5, 0.0)
    with pytest.raises(ValueError, match="at least one"):
        mean_std([])


def test_format_mean_std():
    assert format_mean_std(0.46471, 0.00209) == "0.4647 ± 0.0021"
    assert format_mean_std(0.5, 0.0, digits=2) == "0.50 ± 0.00"


def test_seed_summary_groups_in_first_appearance_order():
    rows = [
        {"model": "svd", "seed": 0, "ndcg": 0.46, "map": 0.15},
        {"model": "bpr", "seed": 0, "ndcg": 0.40, "map": 0.12},
        {"model": "svd", "seed": 1, "ndcg": 0.48, "map": 0.17},
        {"model": "bpr", "seed": 1, "ndcg": 0.44, "map": 0.12},
        {"model": "svd", "seed": 2, "ndcg": 0.47, "map": 0.16},
    ]
    out = seed_summary(rows)
    assert list(out.index) == ["svd", "bpr"] and out.index.name == "model"
    assert list(out.columns) == ["ndcg", "ndcg_std", "map", "map_std", "n_seeds"]
    assert out.loc["svd", "ndcg"] == pytest.approx(0.47)
    assert out.loc["svd", "ndcg_std"] == pytest.approx(0.01)       # (-.01, .01, 0)
    assert out.loc["bpr", "ndcg_std"] == pytest.approx(math.sqrt(0.0008))
    assert out.loc["bpr", "map_std"] == pytest.approx(0.0)
    assert out["n_seeds"].tolist() == [3, 2]
    only = seed_summary(pd.DataFrame(rows), metrics=["map"])
    assert list(only.columns) == ["map", "map_std", "n_seeds"]


def test_seed_summary_by_several_columns_and_errors():
    rows = [{"model": "a", "k": 10, "seed": s, "ndcg": 0.1 * s} for s in range(3)]
    out = seed_summary(rows, by=["model", "k"])
    assert out.index.names == ["model", "k"] and out.loc[("a", 10), "ndcg"] == pytest.approx(0.1)
    with pytest.raises(ValueError, match="given as `by`"):
        seed_summary(rows, by="name")
    with pytest.raises(ValueError, match="no value for 'map'"):
        seed_summary(rows + [{"model": "b", "k": 10, "seed": 0, "ndcg": 0.2, "map": 0.1}])
    with pytest.raises(ValueError, match="in no row"):
        seed_summary(rows, metrics=["recall"])
