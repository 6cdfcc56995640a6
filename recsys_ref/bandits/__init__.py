"""Learning from feedback: bandit policies with an ``act``/``update`` interface
(:mod:`~recsys_ref.bandits.policies`), a seeded simulator
(:mod:`~recsys_ref.bandits.simulator`) and off-policy estimators
(:mod:`~recsys_ref.bandits.ope`)."""
from recsys_ref.bandits.ope import direct_method, doubly_robust, ips, snips
from recsys_ref.bandits.policies import EpsilonGreedy, LinUCB, ThompsonSampling, UCB1
from recsys_ref.bandits.simulator import BernoulliBandit, simulate

__all__ = ["EpsilonGreedy", "UCB1", "ThompsonSampling", "LinUCB", "BernoulliBandit",
           "simulate", "direct_method", "ips", "snips", "doubly_robust"]
