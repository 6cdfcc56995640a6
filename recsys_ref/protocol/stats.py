r"""Is a difference between two models real? Paired tests per user, and mean ± std over seeds.

Two models ranked for the same :math:`n` test users give per-user scores :math:`a_u` and
:math:`b_u` (nDCG@10 of user :math:`u`, say; ``evaluate(model, split, per_user=True)``
returns them). The users are the unit of sampling, and the two scores of one user are
correlated (an easy user is easy for both models), so the test works on the per-user
differences :math:`d_u = a_u - b_u`, with mean and standard deviation

.. math::

    \bar d = \frac{1}{n}\sum_u d_u, \qquad
    s_d = \sqrt{\tfrac{1}{n-1}\textstyle\sum_u (d_u - \bar d)^2}.

**Paired t-test** (Student 1908; ``scipy.stats.ttest_rel``). Under
:math:`H_0: \mathbb{E}[d] = 0` with roughly normal :math:`\bar d` (the central limit
theorem, with hundreds of users),

.. math::

    t = \frac{\bar d}{s_d / \sqrt{n}} \sim t_{n-1}, \qquad
    p = 2\,\bigl(1 - F_{t_{n-1}}(|t|)\bigr), \qquad
    \bar d \pm t_{n-1,\,(1+c)/2}\, \frac{s_d}{\sqrt n}

is the two-sided p-value and the confidence interval of level :math:`c` (0.95) of the mean
difference.

**Paired bootstrap** (Efron & Tibshirani 1993, ch. 13 and 16). Resample the :math:`n`
users with replacement :math:`B` times (``numpy.random.default_rng(seed)``) and take the
mean difference of each resample, :math:`\bar d^{*}_1, \dots, \bar d^{*}_B`. The interval
is the percentile interval: the :math:`(1-c)/2` and :math:`(1+c)/2` quantiles of the
:math:`\bar d^{*}_b`. The p-value shifts the bootstrap distribution to the null: the
centred means :math:`\bar d^{*}_b - \bar d` mimic how far :math:`\bar d` strays from a true
mean of 0, and

.. math::

    p = \frac{1 + \#\{b : |\bar d^{*}_b - \bar d| \ge |\bar d|\}}{B + 1}

(the ``+1`` counts the observed sample as one of the resamples, so :math:`p > 0`). It makes
no normality assumption; with many users it agrees with the t-test.

**Wilcoxon signed-rank test** (Wilcoxon 1945; ``scipy.stats.wilcoxon``, its defaults: zero
differences dropped). It tests whether the differences are symmetric around 0 from their
ranks, so a few users with large differences weigh less. Its interval is the t interval of
the mean difference above (the rank test has no interval of the mean).

Special cases, the same for every method: when every difference is 0 (identical inputs),
``mean_diff = 0``, the interval is ``[0, 0]`` and ``p = 1``; when every difference is the
same nonzero number, the interval is that number (the t statistic is infinite and p = 0,
as scipy says).

**Seeds.** A number from one training run is one draw: report the mean and the sample
standard deviation over :math:`S` seeds (or folds),
:math:`\bar x \pm s`, :math:`s = \sqrt{\frac{1}{S-1}\sum_j (x_j - \bar x)^2}`
(:func:`mean_std`, :func:`seed_summary`, :func:`format_mean_std`).

Used in: ``chapters/01_recsys_basics`` (the tests, on two baselines) and every comparison
table of chapters 2–9.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.stats

__all__ = ["PairedTest", "paired_test", "mean_std", "format_mean_std", "seed_summary"]

PAIRED_METHODS = ("t", "bootstrap", "wilcoxon")
_LABELS = {"t": "paired t", "bootstrap": "paired bootstrap", "wilcoxon": "Wilcoxon"}
_CHUNK = 1000  # bootstrap resamples drawn at once: memory O(_CHUNK * n)


@dataclass(frozen=True)
class PairedTest:
    r"""Result of :func:`paired_test` (differences are ``a - b``).

    Attributes:
        mean_diff: mean per-user difference :math:`\bar d`.
        ci_low, ci_high: confidence interval of the mean difference (level ``confidence``).
        p_value: two-sided p-value of "no difference".
        method: ``"t"``, ``"bootstrap"`` or ``"wilcoxon"``.
        n: number of paired users.
        statistic: t for ``"t"``, the signed-rank statistic for ``"wilcoxon"`` (scipy's),
            and for ``"bootstrap"`` the mean difference over its bootstrap standard error,
            :math:`\bar d / \mathrm{sd}(\bar d^{*})`.
        confidence: level of the interval.
        num_resamples: ``B`` for ``"bootstrap"`` (0 otherwise). No resample as extreme as
            the data gives the smallest p it can, ``1 / (B + 1)``; ``str()`` then prints
            ``p ≤ ...``.
    """

    mean_diff: float
    ci_low: float
    ci_high: float
    p_value: float
    method: str
    n: int
    statistic: float = 0.0
    confidence: float = 0.95
    num_resamples: int = 0

    def __str__(self) -> str:
        p = self.p_value
        at_floor = self.num_resamples > 0 and p <= 1 / (self.num_resamples + 1)
        p_txt = f"{p:.4f}" if p >= 1e-4 or p == 0 else f"{p:.1e}"
        p_txt = ("p ≤ " if at_floor else "p = ") + p_txt
        return (f"{self.mean_diff:+.4f} [{self.ci_low:+.4f}, {self.ci_high:+.4f}], {p_txt} "
                f"({_LABELS.get(self.method, self.method)}, n = {self.n})")


def _as_pair(a, b) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(a, pd.Series) and isinstance(b, pd.Series) and not a.index.equals(b.index):
        raise ValueError("a and b are Series with different indexes, so their rows may be "
                         "different users: align them first (b = b.reindex(a.index)) or pass "
                         "arrays in the same user order")
    x = np.asarray(a, dtype=np.float64)
    y = np.asarray(b, dtype=np.float64)
    if x.ndim != 1 or y.ndim != 1:
        raise ValueError(f"a and b must be 1-D per-user arrays, got shapes {x.shape} and "
                         f"{y.shape}")
    if len(x) != len(y):
        raise ValueError(f"a has {len(x)} users but b has {len(y)}: pass per-user scores of "
                         "the same users in the same order (evaluate(..., per_user=True))")
    if len(x) < 2:
        raise ValueError(f"a paired test needs at least 2 users, got {len(x)}")
    bad = ~(np.isfinite(x) & np.isfinite(y))
    if bad.any():
        raise ValueError(f"{int(bad.sum())} users have a NaN or infinite score (first at "
                         f"position {int(np.flatnonzero(bad)[0])}): fix or drop them in both")
    return x, y


def _t_interval(d: np.ndarray, confidence: float) -> tuple[float, float]:
    n = len(d)
    half = scipy.stats.t.ppf((1 + confidence) / 2, n - 1) * d.std(ddof=1) / math.sqrt(n)
    return float(d.mean() - half), float(d.mean() + half)


def paired_test(
    a: Sequence[float] | np.ndarray | pd.Series,
    b: Sequence[float] | np.ndarray | pd.Series,
    method: str = "t",
    num_resamples: int = 10_000,
    seed: int = 0,
    confidence: float = 0.95,
) -> PairedTest:
    """Paired test of ``a`` against ``b``, user by user (see the module docstring).

    Args:
        a, b: per-user scores of two models on the same users, in the same order (columns
            of the frames ``evaluate(..., per_user=True)`` returns). Two Series must have
            the same index.
        method: ``"t"`` (``scipy.stats.ttest_rel``), ``"bootstrap"`` (percentile interval,
            shifted-null p-value) or ``"wilcoxon"`` (``scipy.stats.wilcoxon``).
        num_resamples: bootstrap resamples ``B`` (``"bootstrap"`` only).
        seed: seed of the bootstrap's ``numpy.random.default_rng``.
        confidence: level of the interval, in (0, 1).

    Returns:
        A :class:`PairedTest`; ``str()`` of it reads
        ``+0.0123 [+0.0051, +0.0190], p = 0.0008 (paired t, n = 943)``.

    Example:
        >>> r = paired_test([1.0, 2.0, 3.0], [0.0, 0.0, 0.0])
        >>> round(r.statistic, 4), round(r.p_value, 4)   # t = 2 / (1 / sqrt 3)
        (3.4641, 0.0742)
    """
    if method not in PAIRED_METHODS:
        raise ValueError(f"method must be one of {PAIRED_METHODS}, got {method!r}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie in (0, 1), e.g. 0.95, got {confidence!r}")
    x, y = _as_pair(a, b)
    d = x - y
    n = len(d)
    mean = float(d.mean())
    if np.ptp(d) == 0:                               # constant differences: no spread
        if mean == 0:
            return PairedTest(0.0, 0.0, 0.0, 1.0, method, n, 0.0, confidence)
        if method == "t":
            return PairedTest(mean, mean, mean, 0.0, method, n, math.copysign(math.inf, mean),
                              confidence)
    if method == "t":
        res = scipy.stats.ttest_rel(x, y)
        lo, hi = _t_interval(d, confidence)
        return PairedTest(mean, lo, hi, float(res.pvalue), method, n, float(res.statistic),
                          confidence)
    if method == "wilcoxon":
        res = scipy.stats.wilcoxon(x, y)
        lo, hi = _t_interval(d, confidence) if np.ptp(d) > 0 else (mean, mean)
        return PairedTest(mean, lo, hi, float(res.pvalue), method, n, float(res.statistic),
                          confidence)
    if not isinstance(num_resamples, (int, np.integer)) or num_resamples < 1:
        raise ValueError(f"num_resamples must be a positive integer, got {num_resamples!r}")
    rng = np.random.default_rng(seed)
    means = np.empty(num_resamples)
    for start in range(0, num_resamples, _CHUNK):
        m = min(_CHUNK, num_resamples - start)
        means[start:start + m] = d[rng.integers(0, n, size=(m, n))].mean(1)
    lo, hi = np.quantile(means, [(1 - confidence) / 2, (1 + confidence) / 2])
    extreme = int((np.abs(means - mean) >= abs(mean)).sum())
    p = (1 + extreme) / (num_resamples + 1)
    se = float(means.std(ddof=1)) if num_resamples > 1 else 0.0
    z = mean / se if se > 0 else math.copysign(math.inf, mean)
    return PairedTest(mean, float(lo), float(hi), float(p), method, n, z, confidence,
                      int(num_resamples))


def mean_std(values: Iterable[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (``ddof=1``) of per-seed values; std 0 for one.

    Example:
        >>> [round(v, 4) for v in mean_std([0.46, 0.47, 0.48])]
        [0.47, 0.01]
    """
    x = np.asarray(list(values) if not isinstance(values, np.ndarray) else values,
                   dtype=np.float64).ravel()
    if x.size == 0:
        raise ValueError("mean_std needs at least one value")
    std = float(x.std(ddof=1)) if x.size > 1 else 0.0
    return float(x.mean()), std


def format_mean_std(mean: float, std: float, digits: int = 4) -> str:
    """``"0.4647 ± 0.0021"``: mean and std rounded to ``digits`` decimals."""
    if not isinstance(digits, (int, np.integer)) or digits < 0:
        raise ValueError(f"digits must be a non-negative integer, got {digits!r}")
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


_NOT_METRICS = ("seed", "fold")


def seed_summary(
    rows: Sequence[dict] | pd.DataFrame,
    by: str | Sequence[str] = "model",
    metrics: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Mean and std over seeds (or folds) of each metric, one row per ``by`` value.

    Args:
        rows: one dict (or frame row) per run, e.g.
            ``{"model": "bpr", "seed": 0, "ndcg": 0.46, "map": 0.15}``.
        by: the column(s) naming what was run; the result's index.
        metrics: columns to summarise; default every numeric column except ``by``,
            ``"seed"`` and ``"fold"``.

    Returns:
        A frame indexed by ``by`` in order of first appearance, with columns ``<metric>``
        (mean) and ``<metric>_std`` (sample std, ``ddof=1``; 0 for one run) for each metric,
        then ``n_seeds`` (runs in the group).
    """
    frame = rows.copy() if isinstance(rows, pd.DataFrame) else pd.DataFrame(list(rows))
    if frame.empty:
        raise ValueError("seed_summary needs at least one row")
    keys = [by] if isinstance(by, str) else list(by)
    missing = [c for c in keys if c not in frame.columns]
    if missing:
        raise ValueError(f"rows lack the column(s) {missing} given as `by`; they have "
                         f"{list(frame.columns)}")
    if metrics is None:
        metrics = [c for c in frame.columns if c not in keys and c not in _NOT_METRICS
                   and pd.api.types.is_numeric_dtype(frame[c])
                   and not pd.api.types.is_bool_dtype(frame[c])]
        if not metrics:
            raise ValueError("no numeric metric columns to summarise; pass metrics=[...]")
    metrics = list(metrics)
    absent = [m for m in metrics if m not in frame.columns]
    if absent:
        raise ValueError(f"metric(s) {absent} are in no row; rows have {list(frame.columns)}")
    holes = frame[metrics].isna()
    if holes.any().any():
        r, c = np.argwhere(holes.to_numpy())[0]
        raise ValueError(f"row {r} ({frame[keys].iloc[r].to_dict()}) has no value for "
                         f"{metrics[c]!r}: every run must report every metric")
    out = []
    for name, group in frame.groupby(keys, sort=False):
        rec: dict = {}
        for m in metrics:
            rec[m], rec[f"{m}_std"] = mean_std(group[m].to_numpy(dtype=np.float64))
        rec["n_seeds"] = len(group)
        out.append((name, rec))
    index = [name if len(keys) > 1 else name[0] for name, _ in out]
    result = pd.DataFrame([rec for _, rec in out])
    result.index = (pd.MultiIndex.from_tuples(index, names=keys) if len(keys) > 1
                    else pd.Index(index, name=keys[0]))
    return result
