r"""Bandit policies with one interface: ``act()`` returns the arm to play,
``update(arm, reward)`` learns from its reward, ``probabilities()`` gives the policy's
current distribution over the arms where it has one in closed form (needed to log
propensities for off-policy evaluation, :mod:`recsys_ref.bandits.ope`).

* :class:`EpsilonGreedy` — the arm with the best mean reward so far, a uniformly random
  arm with probability :math:`\varepsilon`: :math:`P(a) = \varepsilon/K +
  (1-\varepsilon)\,[a \in \arg\max]/|\arg\max|`.
* :class:`UCB1` (Auer, Cesa-Bianchi & Fischer, 2002) — every arm once, then
  :math:`\arg\max_a \bar r_a + c\sqrt{2 \ln t / n_a}`: optimism in the face of
  uncertainty.
* :class:`ThompsonSampling` — Beta–Bernoulli posterior sampling: draw
  :math:`\theta_a \sim \mathrm{Beta}(\alpha_a, \beta_a)`, play :math:`\arg\max_a
  \theta_a`, then :math:`\alpha_a \mathrel{+}= r`, :math:`\beta_a \mathrel{+}= 1 - r`
  (rewards in :math:`[0, 1]`).
* :class:`LinUCB` (Li, Chu, Langford & Schapire, WWW 2010) — rewards linear in arm
  features, :math:`\mathbb E[r \mid a] = \mathbf x_a^\top \boldsymbol\theta`: ridge
  estimate :math:`\hat{\boldsymbol\theta} = A^{-1}\mathbf b` with :math:`A = \lambda I +
  \sum \mathbf x \mathbf x^\top`, :math:`\mathbf b = \sum r\,\mathbf x`, and the arm
  :math:`\arg\max_a \mathbf x_a^\top\hat{\boldsymbol\theta} + \alpha\sqrt{\mathbf x_a^\top
  A^{-1}\mathbf x_a}`. The features may change every round (``act(features)``), e.g.
  item embeddings combined with the user's.

Every policy draws from its own seeded ``numpy.random.Generator``; ties are broken
uniformly at random.
"""
from __future__ import annotations

import numpy as np

__all__ = ["EpsilonGreedy", "UCB1", "ThompsonSampling", "LinUCB"]


def _argmax(values: np.ndarray, rng: np.random.Generator) -> int:
    best = np.flatnonzero(values == values.max())
    return int(best[0] if len(best) == 1 else rng.choice(best))


class _Counts:
    def __init__(self, num_arms: int, seed: int):
        if num_arms < 1:
            raise ValueError(f"num_arms must be >= 1, got {num_arms}")
        self.num_arms = num_arms
        self.rng = np.random.default_rng(seed)
        self.counts = np.zeros(num_arms, dtype=np.int64)
        self.values = np.zeros(num_arms)              # running mean reward per arm

    def _check_arm(self, arm: int) -> None:
        if not 0 <= arm < self.num_arms:
            raise ValueError(f"arm must lie in 0..{self.num_arms - 1}, got {arm}")

    def update(self, arm: int, reward: float) -> None:
        self._check_arm(arm)
        self.counts[arm] += 1
        self.values[arm] += (reward - self.values[arm]) / self.counts[arm]


class EpsilonGreedy(_Counts):
    """Explore uniformly with probability ``epsilon``, else exploit the best mean."""

    def __init__(self, num_arms: int, epsilon: float = 0.1, seed: int = 0):
        super().__init__(num_arms, seed)
        if not 0.0 <= epsilon <= 1.0:
            raise ValueError(f"epsilon must lie in [0, 1], got {epsilon}")
        self.epsilon = epsilon

    def probabilities(self) -> np.ndarray:
        best = self.values == self.values.max()
        return self.epsilon / self.num_arms + (1 - self.epsilon) * best / best.sum()

    def act(self) -> int:
        if self.rng.random() < self.epsilon:
            return int(self.rng.integers(self.num_arms))
        return _argmax(self.values, self.rng)


class UCB1(_Counts):
    """Upper confidence bounds (module docstring); ``c`` scales the bonus."""

    def __init__(self, num_arms: int, c: float = 1.0, seed: int = 0):
        super().__init__(num_arms, seed)
        self.c = c

    def index(self) -> np.ndarray:
        """:math:`\\bar r_a + c\\sqrt{2\\ln t / n_a}` (``inf`` for an arm never played)."""
        t = max(int(self.counts.sum()), 1)
        with np.errstate(divide="ignore"):
            bonus = self.c * np.sqrt(2 * np.log(t) / self.counts)
        return np.where(self.counts > 0, self.values + bonus, np.inf)

    def act(self) -> int:
        untried = np.flatnonzero(self.counts == 0)
        if len(untried):
            return int(untried[0])
        return _argmax(self.index(), self.rng)


class ThompsonSampling(_Counts):
    """Beta–Bernoulli Thompson sampling with a ``Beta(prior_a, prior_b)`` prior."""

    def __init__(self, num_arms: int, prior_a: float = 1.0, prior_b: float = 1.0,
                 seed: int = 0):
        super().__init__(num_arms, seed)
        self.alpha = np.full(num_arms, float(prior_a))
        self.beta = np.full(num_arms, float(prior_b))

    def act(self) -> int:
        return _argmax(self.rng.beta(self.alpha, self.beta), self.rng)

    def update(self, arm: int, reward: float) -> None:
        if not 0.0 <= reward <= 1.0:
            raise ValueError(f"Beta-Bernoulli Thompson sampling needs rewards in [0, 1], "
                             f"got {reward}")
        super().update(arm, reward)
        self.alpha[arm] += reward
        self.beta[arm] += 1.0 - reward


class LinUCB:
    """Linear UCB with one parameter vector shared by the arms (module docstring).

    Args:
        features: ``(K, d)`` arm features used when ``act`` gets none.
        alpha: width of the confidence bonus.
        ridge: :math:`\\lambda` of :math:`A = \\lambda I + \\dots`.
        seed: tie-breaking.
    """

    def __init__(self, features: np.ndarray, alpha: float = 1.0, ridge: float = 1.0,
                 seed: int = 0):
        x = np.asarray(features, dtype=np.float64)
        if x.ndim != 2:
            raise ValueError(f"features must be (K, d), got shape {x.shape}")
        if ridge <= 0:
            raise ValueError(f"ridge must be positive, got {ridge}")
        self.features, self.alpha = x, alpha
        self.num_arms, dim = x.shape
        self.A = ridge * np.eye(dim)
        self.b = np.zeros(dim)
        self.rng = np.random.default_rng(seed)
        self._last: np.ndarray | None = None

    @property
    def theta(self) -> np.ndarray:
        """The ridge estimate :math:`A^{-1}\\mathbf b`."""
        return np.linalg.solve(self.A, self.b)

    def index(self, features: np.ndarray | None = None) -> np.ndarray:
        x = self.features if features is None else np.asarray(features, dtype=np.float64)
        a_inv_x = np.linalg.solve(self.A, x.T)                       # (d, K)
        width = np.sqrt(np.einsum("kd,dk->k", x, a_inv_x))
        return x @ self.theta + self.alpha * width

    def act(self, features: np.ndarray | None = None) -> int:
        x = self.features if features is None else np.asarray(features, dtype=np.float64)
        if x.shape[1] != self.A.shape[0]:
            raise ValueError(f"features must have {self.A.shape[0]} columns, got {x.shape}")
        self._last = x
        return _argmax(self.index(x), self.rng)

    def update(self, arm: int, reward: float) -> None:
        x = (self._last if self._last is not None else self.features)[arm]
        self.A += np.outer(x, x)
        self.b += reward * x
