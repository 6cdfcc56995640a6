"""Bandit policies, the simulator and the off-policy estimators, against hand-computed
values, closed forms and simulation."""
from __future__ import annotations

import numpy as np
import pytest

from recsys_ref.bandits import (BernoulliBandit, EpsilonGreedy, LinUCB, ThompsonSampling,
                                UCB1, direct_method, doubly_robust, ips, simulate, snips)
from recsys_ref.bandits.ope import importance_weights

# -- the estimators on a log small enough to do by hand ------------------------------------
# two actions, three rounds; target pi and reward model q_hat per round
ACTIONS = np.array([0, 1, 0])
REWARDS = np.array([1.0, 0.0, 1.0])
PROPS = np.array([0.5, 0.5, 0.8])
TARGET = np.array([[0.2, 0.8], [0.2, 0.8], [0.5, 0.5]])
Q_HAT = np.array([[0.6, 0.3], [0.6, 0.3], [0.6, 0.3]])


def test_estimators_on_a_hand_log():
    # w = (0.2/0.5, 0.8/0.5, 0.5/0.8) = (0.4, 1.6, 0.625)
    np.testing.assert_allclose(importance_weights(ACTIONS, PROPS, TARGET), [0.4, 1.6, 0.625])
    assert ips(ACTIONS, REWARDS, PROPS, TARGET) == pytest.approx(1.025 / 3)
    assert snips(ACTIONS, REWARDS, PROPS, TARGET) == pytest.approx(1.025 / 2.625)
    # DM: (0.36 + 0.36 + 0.45) / 3
    assert direct_method(TARGET, Q_HAT) == pytest.approx(0.39)
    # DR: DM + mean(0.4 * 0.4, 1.6 * -0.3, 0.625 * 0.4) = 0.39 - 0.07 / 3
    assert doubly_robust(ACTIONS, REWARDS, PROPS, TARGET, Q_HAT) == \
        pytest.approx(0.39 - 0.07 / 3)


@pytest.mark.parametrize("kwargs, message", [
    (dict(propensities=np.array([0.5, 0.0, 0.8])), "propensities"),
    (dict(target=np.array([[0.2, 0.7], [0.2, 0.8], [0.5, 0.5]])), "probability"),
    (dict(actions=np.array([0, 2, 0])), "actions"),
    (dict(rewards=np.array([1.0, 0.0])), "same length"),
])
def test_estimators_reject_bad_logs(kwargs, message):
    args = dict(actions=ACTIONS, rewards=REWARDS, propensities=PROPS, target=TARGET)
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        ips(**args)


def _synthetic_log(seed: int, n: int, num_actions: int = 5, dim: int = 3):
    """Contexts, a softmax logging policy mixed with uniform, a greedier target policy,
    Bernoulli rewards; returns the log and the true value given the contexts."""
    rng = np.random.default_rng(seed)
    theta = np.random.default_rng(1000).normal(size=(dim, num_actions))
    x = rng.normal(size=(n, dim))
    q = 1 / (1 + np.exp(-x @ theta))                                    # (n, K)
    logits = x @ np.random.default_rng(2000).normal(size=(dim, num_actions))
    mu = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    mu = 0.7 * mu + 0.3 / num_actions
    z = 2 * x @ theta
    pi = np.exp(z - z.max(1, keepdims=True))
    pi /= pi.sum(1, keepdims=True)
    actions = (mu.cumsum(1) > rng.random((n, 1))).argmax(1)
    rows = np.arange(n)
    rewards = (rng.random(n) < q[rows, actions]).astype(float)
    q_hat = np.clip(q + rng.normal(0, 0.1, size=q.shape), 0, 1)         # an imperfect model
    truth = float((pi * q).sum(1).mean())
    return actions, rewards, mu[rows, actions], pi, q_hat, truth


def test_dr_and_snips_are_within_five_percent_at_ten_thousand_rounds():
    errors = {"dr": [], "snips": []}
    for seed in range(20):
        a, r, p, pi, q_hat, truth = _synthetic_log(seed, 10_000)
        errors["dr"].append(abs(doubly_robust(a, r, p, pi, q_hat) - truth) / truth)
        errors["snips"].append(abs(snips(a, r, p, pi) - truth) / truth)
    assert np.mean(errors["dr"]) <= 0.05
    assert np.mean(errors["snips"]) <= 0.05


def test_ips_is_unbiased_by_simulation():
    errs = []
    for seed in range(400):
        a, r, p, pi, _, truth = _synthetic_log(seed, 500)
        errs.append(ips(a, r, p, pi) - truth)
    errs = np.array(errs)
    assert abs(errs.mean()) <= 3 * errs.std(ddof=1) / np.sqrt(len(errs))


# -- the policies on hand examples --------------------------------------------------------------
def test_epsilon_greedy_running_means_and_probabilities():
    pol = EpsilonGreedy(3, epsilon=0.3, seed=0)
    for arm, r in [(1, 1.0), (1, 0.0), (2, 1.0), (1, 1.0)]:
        pol.update(arm, r)
    np.testing.assert_allclose(pol.values, [0.0, 2 / 3, 1.0])
    np.testing.assert_allclose(pol.probabilities(), [0.1, 0.1, 0.8])
    pol.values[:] = [0.5, 0.5, 0.0]                          # a tie splits the greedy mass
    np.testing.assert_allclose(pol.probabilities(), [0.45, 0.45, 0.1])
    picks = np.bincount([EpsilonGreedy(3, 0.3, seed=s).act() for s in range(3000)],
                        minlength=3) / 3000                  # fresh policies: all tied
    np.testing.assert_allclose(picks, [1 / 3] * 3, atol=0.03)


def test_ucb1_tries_every_arm_then_follows_its_index():
    pol = UCB1(3, c=1.0)
    arms = []
    for r in (0.0, 1.0, 0.5):
        arms.append(pol.act())
        pol.update(arms[-1], r)
    assert arms == [0, 1, 2]
    # t = 3, each arm once: index = mean + sqrt(2 ln 3)
    np.testing.assert_allclose(pol.index(), np.array([0.0, 1.0, 0.5]) + np.sqrt(2 * np.log(3)))
    assert pol.act() == 1


def test_thompson_sampling_posterior_update():
    pol = ThompsonSampling(2, seed=0)
    pol.update(0, 1.0)
    pol.update(0, 0.0)
    pol.update(1, 1.0)
    np.testing.assert_allclose(pol.alpha, [2.0, 2.0])
    np.testing.assert_allclose(pol.beta, [2.0, 1.0])
    with pytest.raises(ValueError, match="rewards in"):
        pol.update(0, 2.0)


def test_linucb_ridge_estimate_and_index_by_hand():
    pol = LinUCB(np.eye(2), alpha=0.5, ridge=1.0)
    pol.act()
    pol.update(0, 1.0)                    # A = diag(2, 1), b = (1, 0)
    np.testing.assert_allclose(pol.theta, [0.5, 0.0])
    np.testing.assert_allclose(pol.index(), [0.5 + 0.5 * np.sqrt(0.5), 0.5])
    # features of the round passed to act() are the ones update() learns from
    x = np.array([[1.0, 1.0], [0.0, 2.0]])
    arm = pol.act(x)
    pol.update(arm, 0.0)
    np.testing.assert_allclose(pol.A, np.diag([2.0, 1.0]) + np.outer(x[arm], x[arm]))


# -- the simulator --------------------------------------------------------------------------------
def test_simulation_is_deterministic_given_the_seeds():
    runs = [simulate(ThompsonSampling(5, seed=3), BernoulliBandit([.1, .2, .3, .4, .5], 7), 300)
            for _ in range(2)]
    for key in runs[0]:
        np.testing.assert_array_equal(runs[0][key], runs[1][key])
    np.testing.assert_allclose(runs[0]["regret"], 0.5 - np.array([.1, .2, .3, .4, .5])[
        runs[0]["arms"]])


def _mean_curve(make_policy, means, horizon=2000, seeds=10):
    return np.mean([simulate(make_policy(s), BernoulliBandit(means, seed=100 + s),
                             horizon)["cumulative_regret"] for s in range(seeds)], axis=0)


def test_thompson_regret_below_epsilon_greedy_from_1000_rounds_on():
    means = np.random.default_rng(0).uniform(0.1, 0.9, size=10)
    eps = _mean_curve(lambda s: EpsilonGreedy(10, 0.1, s), means)
    ts = _mean_curve(lambda s: ThompsonSampling(10, seed=s), means)
    assert (ts[999:] < eps[999:]).all()


def test_linucb_regret_below_epsilon_greedy_when_rewards_are_linear_in_features():
    # 50 arms whose success probability is linear in 5 features: LinUCB learns 6
    # numbers, epsilon-greedy 50 separate means
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 5))
    score = x @ rng.normal(size=5)
    means = 0.5 + 0.4 * score / np.abs(score).max()
    features = np.c_[np.ones(50), x]
    eps = _mean_curve(lambda s: EpsilonGreedy(50, 0.1, s), means)
    lin = _mean_curve(lambda s: LinUCB(features, alpha=1.0, seed=s), means)
    assert (lin[999:] < eps[999:]).all()
    assert lin[-1] < 0.5 * eps[-1]
