r"""Off-policy evaluation: the value of a *target* policy :math:`\pi` estimated from a log
collected by another, the *logging* policy :math:`\mu`.

A log holds :math:`n` rounds :math:`(x_t, a_t, r_t, p_t)`: the context, the action the
logging policy took, the reward it observed and the probability :math:`p_t = \mu(a_t \mid
x_t)` with which it took it. The target policy gives, for every round, its probabilities
over the actions, :math:`\pi(\cdot \mid x_t)` (an ``(n, K)`` array), and a reward model
may give :math:`\hat q(x_t, a)` for every action (``(n, K)``). With the importance weight
:math:`w_t = \pi(a_t \mid x_t) / p_t`:

.. math::

    \hat V_{\text{DM}} = \frac1n \sum_t \sum_a \pi(a \mid x_t)\, \hat q(x_t, a), \qquad
    \hat V_{\text{IPS}} = \frac1n \sum_t w_t\, r_t, \qquad
    \hat V_{\text{SNIPS}} = \frac{\sum_t w_t\, r_t}{\sum_t w_t},

    \hat V_{\text{DR}} = \hat V_{\text{DM}} + \frac1n \sum_t w_t
        \big(r_t - \hat q(x_t, a_t)\big).

IPS is unbiased when :math:`\mu` gives every action :math:`\pi` may take a positive
probability, but its variance grows with the weights; SNIPS trades a small bias for much
less variance; the direct method (DM) has the bias of its reward model and little
variance; doubly robust (DR) is unbiased if either the propensities or the reward model
are right (Dudík, Langford & Li, ICML 2011).

Shapes: ``actions``, ``rewards``, ``propensities``: ``(n,)``; ``target``, ``q_hat``:
``(n, K)``.
"""
from __future__ import annotations

import numpy as np

__all__ = ["importance_weights", "direct_method", "ips", "snips", "doubly_robust"]


def _check(actions, rewards, propensities, target) -> tuple[np.ndarray, ...]:
    a = np.asarray(actions)
    r = np.asarray(rewards, dtype=np.float64)
    p = np.asarray(propensities, dtype=np.float64)
    pi = np.asarray(target, dtype=np.float64)
    n = len(a)
    if n == 0:
        raise ValueError("the log is empty: nothing to estimate from")
    if r.shape != (n,) or p.shape != (n,):
        raise ValueError(f"actions, rewards and propensities must have the same length; got "
                         f"{a.shape}, {r.shape}, {p.shape}")
    if pi.ndim != 2 or pi.shape[0] != n:
        raise ValueError(f"target must be (n, K) = ({n}, K) probabilities, got {pi.shape}")
    if not np.issubdtype(a.dtype, np.integer) or a.min() < 0 or a.max() >= pi.shape[1]:
        raise ValueError(f"actions must be integers in 0..{pi.shape[1] - 1}")
    if (p <= 0).any() or (p > 1).any():
        raise ValueError("propensities must lie in (0, 1]: a logged action with probability "
                         "0 cannot have been taken; check the logging policy's probabilities")
    if not np.allclose(pi.sum(1), 1.0, atol=1e-6) or (pi < 0).any():
        raise ValueError("each row of target must be a probability distribution over the "
                         "actions (non-negative, summing to 1)")
    return a.astype(np.int64), r, p, pi


def importance_weights(actions, propensities, target) -> np.ndarray:
    r""":math:`w_t = \pi(a_t \mid x_t) / \mu(a_t \mid x_t)`, ``(n,)``."""
    a, _, p, pi = _check(actions, np.zeros(len(actions)), propensities, target)
    return pi[np.arange(len(a)), a] / p


def direct_method(target, q_hat) -> float:
    r""":math:`\hat V_{\text{DM}}`: the reward model's value of the target policy."""
    pi = np.asarray(target, dtype=np.float64)
    q = np.asarray(q_hat, dtype=np.float64)
    if pi.shape != q.shape:
        raise ValueError(f"target and q_hat must both be (n, K); got {pi.shape}, {q.shape}")
    return float((pi * q).sum(1).mean())


def ips(actions, rewards, propensities, target) -> float:
    r""":math:`\hat V_{\text{IPS}}`, inverse propensity scoring (unbiased)."""
    a, r, p, pi = _check(actions, rewards, propensities, target)
    return float((pi[np.arange(len(a)), a] / p * r).mean())


def snips(actions, rewards, propensities, target) -> float:
    r""":math:`\hat V_{\text{SNIPS}}`, self-normalised IPS (0 when every weight is 0)."""
    a, r, p, pi = _check(actions, rewards, propensities, target)
    w = pi[np.arange(len(a)), a] / p
    return float((w * r).sum() / w.sum()) if w.sum() > 0 else 0.0


def doubly_robust(actions, rewards, propensities, target, q_hat) -> float:
    r""":math:`\hat V_{\text{DR}}`: the direct method corrected by the importance-weighted
    residuals of the logged actions."""
    a, r, p, pi = _check(actions, rewards, propensities, target)
    q = np.asarray(q_hat, dtype=np.float64)
    if q.shape != pi.shape:
        raise ValueError(f"q_hat must be (n, K) like target, got {q.shape}")
    rows = np.arange(len(a))
    w = pi[rows, a] / p
    return float(((pi * q).sum(1) + w * (r - q[rows, a])).mean())
