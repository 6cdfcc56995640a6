r"""A seeded Bernoulli bandit and the loop that plays a policy against it.

Arm :math:`a` pays 1 with probability :math:`\mu_a` and 0 otherwise. The *regret* of a
round is :math:`\mu^\star - \mu_{a_t}` (the expected loss against always playing the best
arm, :math:`\mu^\star = \max_a \mu_a`), and the cumulative regret after :math:`T` rounds is
their sum: it grows linearly for a policy that never stops exploring at a fixed rate, and
logarithmically for UCB and Thompson sampling.
"""
from __future__ import annotations

import numpy as np

__all__ = ["BernoulliBandit", "simulate"]


class BernoulliBandit:
    """Arms with success probabilities ``means``; ``pull(arm)`` draws a reward from the
    bandit's own generator (seeded), so a run is reproducible."""

    def __init__(self, means, seed: int = 0):
        self.means = np.asarray(means, dtype=np.float64)
        if self.means.ndim != 1 or len(self.means) == 0:
            raise ValueError("means must be a non-empty 1-D array of probabilities")
        if (self.means < 0).any() or (self.means > 1).any():
            raise ValueError("means are success probabilities: they must lie in [0, 1]")
        self.rng = np.random.default_rng(seed)

    @property
    def num_arms(self) -> int:
        return len(self.means)

    def pull(self, arm: int) -> float:
        return float(self.rng.random() < self.means[arm])


def simulate(policy, bandit: BernoulliBandit, horizon: int,
             progress: bool = False) -> dict[str, np.ndarray]:
    """Play ``policy`` (``act()`` / ``update(arm, reward)``) for ``horizon`` rounds
    (``progress``: a tqdm bar).

    Returns ``arms``, ``rewards``, ``regret`` (per round, expected) and
    ``cumulative_regret``, each ``(horizon,)``."""
    if horizon < 1:
        raise ValueError(f"horizon must be >= 1, got {horizon}")
    arms = np.empty(horizon, dtype=np.int64)
    rewards = np.empty(horizon)
    rounds = range(horizon)
    if progress:
        from tqdm.auto import tqdm
        rounds = tqdm(rounds, desc=type(policy).__name__, leave=False)
    for t in rounds:
        arm = int(policy.act())
        reward = bandit.pull(arm)
        policy.update(arm, reward)
        arms[t], rewards[t] = arm, reward
    regret = bandit.means.max() - bandit.means[arms]
    return {"arms": arms, "rewards": rewards, "regret": regret,
            "cumulative_regret": np.cumsum(regret)}
