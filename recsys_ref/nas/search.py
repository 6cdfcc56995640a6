r"""Search strategies over a :class:`~recsys_ref.nas.space.SearchSpace`, a training
objective whose every evaluation is stored on disk, and the loop that runs them.

Every strategy speaks *ask and tell*: ``ask()`` proposes a point, ``tell(point, value)``
reports its score (higher is better). :func:`run_search` asks ``budget`` times, and the
best-so-far curve is the record of a search:

* :class:`RandomSearch` — each point drawn independently (Bergstra & Bengio, 2012);
* :class:`GridSearch` — a fixed list of points, in order;
* :class:`EvolutionarySearch` — regularised evolution (Real et al., AAAI 2019): a
  population of ``population`` points, initially random; each step draws ``sample``
  members at random (a *tournament*), mutates the best of them
  (:meth:`~recsys_ref.nas.space.SearchSpace.mutate`) and replaces the *oldest* member
  with the child, so a point that scored well by luck ages out instead of ruling forever;
* :class:`OptunaSearch` — any Optuna sampler through ``study.ask``/``study.tell``: TPE
  (``TPESampler(multivariate=True, group=True)`` models the conditional space; without
  them each parameter is modelled on its own), the genetic ``NSGAIISampler``, random;
* :class:`ReinforceSearch` — a controller (Zoph & Le, ICLR 2017), here one softmax per
  categorical parameter, sampled in the space's order and trained with REINFORCE:
  :math:`\nabla J = (R - b)\,\nabla \log p(\text{point})` with a moving-average
  baseline :math:`b`.

:class:`TrainingObjective` trains the model of a point (:func:`~recsys_ref.nas.builder.build_model`
by default) and returns its validation score, averaged over ``seeds``. Each (point,
seed, fidelity) evaluation is appended to a :class:`TrialStore`, a JSON-lines file,
*after* it finished: a search that is killed and started again replays its decisions
(every strategy is seeded) and finds the finished evaluations in the store, so it loses
at most the evaluation in flight. Strategies share the store, so an architecture that two
searches both ask for is trained once; each search is still charged its recorded cost.

Used in: ``chapters/12_architecture_search``, ``benchmarks/nas.py``.
"""
from __future__ import annotations

import json
import math
import os
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from recsys_ref.nas.space import SearchSpace

__all__ = ["RandomSearch", "GridSearch", "EvolutionarySearch", "OptunaSearch",
           "ReinforceSearch", "TrialStore", "TrainingObjective", "SearchResult",
           "run_search", "compare", "standard_strategies", "refit_and_test",
           "OptunaPruning"]


# -- strategies -------------------------------------------------------------------------
class RandomSearch:
    """Independent uniform draws (:meth:`~recsys_ref.nas.space.SearchSpace.sample`)."""

    name = "random"

    def __init__(self, space: SearchSpace, seed: int = 0):
        self.space, self.rng = space, np.random.default_rng(seed)

    def ask(self) -> dict:
        return self.space.sample(self.rng)

    def tell(self, point: dict, value: float) -> None:
        pass


class GridSearch:
    """The points of ``points`` in order (default: the space's full grid), then again."""

    name = "grid"

    def __init__(self, space: SearchSpace, points: Sequence[dict] | None = None):
        self.space = space
        self.points = list(points) if points is not None else space.grid()
        if not self.points:
            raise ValueError("the grid is empty")
        self._i = 0

    def ask(self) -> dict:
        point = self.points[self._i % len(self.points)]
        self._i += 1
        return dict(point)

    def tell(self, point: dict, value: float) -> None:
        pass


class EvolutionarySearch:
    """Regularised evolution with tournament selection (module docstring).

    Args:
        space: the space.
        population: members kept alive (the first ``population`` asks are random).
        sample: tournament size (``<= population``).
        seed: seeds the draws.
    """

    name = "evolution"

    def __init__(self, space: SearchSpace, population: int = 8, sample: int = 3,
                 seed: int = 0):
        if population < 2 or not 1 <= sample <= population:
            raise ValueError(f"need population >= 2 and 1 <= sample <= population, got "
                             f"population={population}, sample={sample}")
        self.space, self.rng = space, np.random.default_rng(seed)
        self.population_size, self.sample_size = population, sample
        self.population: deque[tuple[dict, float]] = deque()

    def ask(self) -> dict:
        if len(self.population) < self.population_size:
            return self.space.sample(self.rng)
        idx = self.rng.choice(len(self.population), self.sample_size, replace=False)
        parent = max((self.population[i] for i in idx), key=lambda pv: pv[1])[0]
        return self.space.mutate(parent, self.rng)

    def tell(self, point: dict, value: float) -> None:
        self.population.append((point, value))
        if len(self.population) > self.population_size:
            self.population.popleft()                 # the oldest dies


class OptunaSearch:
    """An Optuna sampler as a strategy (``study.ask`` / ``study.tell``; in-memory study).

    Args:
        space: the space (suggested through :meth:`~recsys_ref.nas.space.SearchSpace.suggest`).
        sampler: an ``optuna.samplers`` instance, seeded by the caller.
        name: the label of the strategy in results.
    """

    def __init__(self, space: SearchSpace, sampler, name: str = "optuna"):
        import optuna
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.space, self.name = space, name
        self.study = optuna.create_study(direction="maximize", sampler=sampler)
        self._pending: list = []

    def ask(self) -> dict:
        trial = self.study.ask()
        point = self.space.suggest(trial)
        self._pending.append((trial, point))
        return point

    def tell(self, point: dict, value: float) -> None:
        for k, (trial, p) in enumerate(self._pending):
            if p is point or p == point:
                self.study.tell(trial, value)
                del self._pending[k]
                return
        raise ValueError("tell() of a point this search did not ask for")


class ReinforceSearch:
    """A REINFORCE-trained controller over the categorical parameters (module docstring);
    a numeric parameter is drawn uniformly (the controller does not model it).

    Args:
        space: the space.
        lr: step size of the logits.
        baseline_decay: :math:`b \\leftarrow \\beta b + (1-\\beta) R`.
        seed: seeds the draws.
    """

    name = "reinforce"

    def __init__(self, space: SearchSpace, lr: float = 0.5, baseline_decay: float = 0.8,
                 seed: int = 0):
        self.space, self.rng = space, np.random.default_rng(seed)
        self.lr, self.decay = lr, baseline_decay
        self.logits = {p.name: np.zeros(len(p.choices)) for p in space if p.categorical}
        self.baseline: float | None = None

    def _probs(self, name: str) -> np.ndarray:
        z = self.logits[name] - self.logits[name].max()
        return np.exp(z) / np.exp(z).sum()

    def ask(self) -> dict:
        point: dict = {}
        for p in self.space:
            if not self.space.is_active(p, point):
                continue
            if p.categorical:
                point[p.name] = p.choices[int(self.rng.choice(len(p.choices),
                                                              p=self._probs(p.name)))]
            else:
                point[p.name] = p.sample(self.rng)
        return point

    def tell(self, point: dict, value: float) -> None:
        if self.baseline is None:
            self.baseline = value
        advantage = value - self.baseline
        for name, v in point.items():
            if name in self.logits:
                p = self.space[name]
                grad = -self._probs(name)                 # d log p(v) / d logits
                grad[p.choices.index(v)] += 1.0
                self.logits[name] += self.lr * advantage * grad
        self.baseline = self.decay * self.baseline + (1 - self.decay) * value


# -- the store and the objective -----------------------------------------------------------
class TrialStore:
    """Finished evaluations, one JSON object per line of ``path`` (``None``: in memory).

    A line is written and flushed to disk (``fsync``) only after its evaluation finished;
    a torn last line (a kill during the write) is ignored when the file is read."""

    def __init__(self, path: str | Path | None = None):
        self.path = Path(path) if path is not None else None
        self.records: dict[str, dict] = {}
        if self.path is not None and self.path.exists():
            for line in self.path.read_text().splitlines():
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError:
                    continue                              # torn line of a killed write
                self.records[rec["key"]] = rec

    def get(self, key: str) -> dict | None:
        return self.records.get(key)

    def put(self, key: str, record: dict) -> dict:
        record = {"key": key, **record}
        self.records[key] = record
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a") as fh:
                fh.write(json.dumps(record) + "\n")
                fh.flush()
                os.fsync(fh.fileno())
        return record

    def __len__(self) -> int:
        return len(self.records)

    @property
    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(list(self.records.values()))


class TrainingObjective:
    """Validation score of a point's model, trained ``fidelity`` on ``train``.

    Args:
        space: the space of the points.
        train, valid: interaction frames (``user``, ``item``); ``valid`` ranks against the
            whole catalogue with ``train`` masked.
        num_users, num_items: index sizes.
        fidelity: training options of every fit (``num_epochs``, ``batch_size``, ``lr``,
            ``eval_every``, ``patience``...); part of the store key, so runs at other
            budgets do not mix.
        seeds: the score is the mean over these training seeds.
        store: a :class:`TrialStore` (default: in memory).
        build: ``build(point, **kwargs) -> model`` (default
            :func:`~recsys_ref.nas.builder.build_model`).
        metric, k: the validation measure (default NDCG@10).

    A fit that fails (a NaN loss, a point the builder rejects) scores 0 and is stored
    with its error message.
    """

    def __init__(self, space: SearchSpace, train: pd.DataFrame, valid: pd.DataFrame,
                 num_users: int, num_items: int, fidelity: dict | None = None,
                 seeds: Sequence[int] = (0,), store: TrialStore | None = None,
                 build: Callable | None = None, metric: str = "ndcg", k: int = 10,
                 name: str = "objective"):
        if not seeds:
            raise ValueError("seeds is empty: give at least one training seed")
        self.space, self.train, self.valid = space, train, valid
        self.num_users, self.num_items = num_users, num_items
        self.fidelity = dict(fidelity or {})
        self.seeds = list(seeds)
        self.store = store if store is not None else TrialStore()
        if build is None:
            from recsys_ref.nas.builder import build_model

            def build(point, **kw):
                return build_model(point, space, **kw)
        self.build, self.metric, self.k, self.name = build, metric, k, name
        self.calls = 0                                   # fits actually run (not cached)

    def _key(self, point: dict, seed: int) -> str:
        fid = json.dumps(self.fidelity, sort_keys=True)
        return f"{self.name}|{fid}|{self.space.key(point)}|seed={seed}"

    def evaluate(self, point: dict, seed: int) -> dict:
        """The stored record of ``point`` trained with ``seed`` (fitted if missing):
        ``value``, ``seconds``, ``epochs``, ``error``."""
        key = self._key(point, seed)
        rec = self.store.get(key)
        if rec is not None:
            return rec
        from recsys_ref.models.embedding import ranking_validator
        t0 = time.perf_counter()
        error, epochs = None, 0
        try:
            model = self.build(point, seed=seed, **self.fidelity)
            model.fit(self.train, self.num_users, self.num_items, valid=self.valid)
            epochs = len(model.history.rows)
            value = float(ranking_validator(model, self.train, self.valid, self.metric,
                                            self.k, before=getattr(model, "_drop_cache",
                                                                   None))())
            if not math.isfinite(value):
                raise ValueError("the validation score is not finite")
        except (ValueError, RuntimeError) as exc:        # NaN loss, a diverged model
            value, error = 0.0, f"{type(exc).__name__}: {exc}"
        self.calls += 1
        return self.store.put(key, {"point": self.space.canonical(point), "seed": seed,
                                    "value": value, "seconds": time.perf_counter() - t0,
                                    "epochs": epochs, "error": error})

    def __call__(self, point: dict) -> tuple[float, float]:
        """``(mean value over seeds, total recorded seconds)``."""
        recs = [self.evaluate(point, s) for s in self.seeds]
        return (float(np.mean([r["value"] for r in recs])),
                float(sum(r["seconds"] for r in recs)))


# -- the loop -------------------------------------------------------------------------------
@dataclass
class SearchResult:
    """What a search did: one row per trial (``trial, value, seconds, best, cum_seconds``
    and the point)."""

    strategy: str
    seed: int
    trials: list[dict] = field(default_factory=list)

    @property
    def frame(self) -> pd.DataFrame:
        f = pd.DataFrame(self.trials)
        if len(f):
            f["best"] = f["value"].cummax()
            f["cum_seconds"] = f["seconds"].cumsum()
        return f

    @property
    def best(self) -> dict:
        """The trial with the highest value (the first one on ties)."""
        return max(self.trials, key=lambda t: t["value"])


def run_search(strategy, objective: Callable[[dict], tuple[float, float]], budget: int,
               seed: int = 0, progress: bool = False) -> SearchResult:
    """Ask ``strategy`` ``budget`` times, score every point with ``objective`` (``point ->
    (value, seconds)``) and tell the strategy; returns the :class:`SearchResult`."""
    if budget < 1:
        raise ValueError(f"budget must be >= 1, got {budget}")
    result = SearchResult(getattr(strategy, "name", type(strategy).__name__), seed)
    steps = range(budget)
    if progress:
        from tqdm.auto import tqdm
        steps = tqdm(steps, desc=result.strategy, leave=False)
    for t in steps:
        point = strategy.ask()
        value, seconds = objective(point)
        strategy.tell(point, value)
        result.trials.append({"trial": t + 1, "value": value, "seconds": seconds,
                              "point": dict(point)})
    return result


def compare(strategies: dict[str, Callable[[int], object]], objective, budget: int,
            seeds: Sequence[int] = (0, 1, 2), progress: bool = False) -> pd.DataFrame:
    """Run every strategy with every search seed, the same ``budget`` each.

    Args:
        strategies: ``{name: factory}``, ``factory(seed)`` a fresh strategy.
        objective: ``point -> (value, seconds)`` (a :class:`TrainingObjective`).
        budget: trials per search.
        seeds: search seeds (the strategies' draws; the training seeds are the
            objective's).

    Returns:
        one row per trial: ``strategy, seed, trial, value, best`` (best so far),
        ``seconds``, ``cum_seconds`` (recorded cost, cached evaluations included) and
        ``point``.
    """
    frames = []
    for name, factory in strategies.items():
        for seed in seeds:
            f = run_search(factory(seed), objective, budget, seed, progress).frame
            f.insert(0, "seed", seed)
            f.insert(0, "strategy", name)
            frames.append(f)
    return pd.concat(frames, ignore_index=True)


def standard_strategies(space: SearchSpace, population: int = 4, sample: int = 2,
                        startup: int = 4, reinforce_lr: float = 20.0) -> dict:
    """The five strategies of chapter 12 as ``{name: factory(seed)}`` for :func:`compare`:
    random; regularised evolution (``population``, tournament of ``sample``); Optuna's
    NSGA-II (population ``population``); Optuna's TPE with ``multivariate=True,
    group=True`` (the conditional space modelled jointly) after ``startup`` random
    trials; the REINFORCE controller (step ``reinforce_lr``: validation NDCG
    differences are hundredths, and the advantage scales the step)."""
    import optuna

    def nsga(seed):
        return OptunaSearch(space, optuna.samplers.NSGAIISampler(
            population_size=population, seed=seed), "NSGA-II")

    def tpe(seed):
        return OptunaSearch(space, optuna.samplers.TPESampler(
            multivariate=True, group=True, seed=seed, n_startup_trials=startup), "TPE")

    return {"random": lambda seed: RandomSearch(space, seed=seed),
            "evolution": lambda seed: EvolutionarySearch(space, population, sample, seed),
            "NSGA-II": nsga, "TPE": tpe,
            "REINFORCE": lambda seed: ReinforceSearch(space, lr=reinforce_lr, seed=seed)}


def refit_and_test(build: Callable, split, seeds: Sequence[int], k: int = 10,
                   metrics: Sequence[str] = ("ndcg", "precision", "recall", "map")
                   ) -> pd.DataFrame:
    """Chapter 6's protocol for a final model, once per seed: fit on
    ``split.tuning.train`` with early stopping on ``split.valid``, refit on all of
    ``split.train`` for the selected number of epochs (no validation), rank
    ``split.test`` once.

    Args:
        build: ``build(seed=..., **overrides) -> model``; the refit passes
            ``num_epochs`` and ``patience=None``.
        split: a :class:`~recsys_ref.protocol.split.Split` with a validation part.
        seeds: training seeds.

    Returns:
        one row per seed (index ``seed``): ``epochs`` (selected), ``at_cap`` (the
        selection run ended at its epoch cap, still improving) and the test metrics.
    """
    from recsys_ref.protocol.split import evaluate
    if split.valid is None:
        raise ValueError("the split has no validation part to select the epochs on")
    rows = []
    for seed in seeds:
        model = build(seed=seed)
        model.fit(split.tuning.train, split.num_users, split.num_items, valid=split.valid)
        epochs = model.history.best_epoch + 1
        refit = build(seed=seed, num_epochs=epochs, patience=None)
        refit.fit(split.train, split.num_users, split.num_items)
        res = evaluate(refit, split, k=k, metrics=list(metrics))
        rows.append({"seed": seed, "epochs": epochs,
                     "at_cap": not model.history.stopped_early, **res})
    return pd.DataFrame(rows).set_index("seed")


class OptunaPruning:
    """A :class:`~recsys_ref.train.trainer.Trainer` callback that reports each validation
    score to an Optuna ``trial`` and stops the fit when the trial's pruner says so
    (successive halving, median rule...): ``trial.report(score, epoch)``, then
    ``raise optuna.TrialPruned`` if ``trial.should_prune()``."""

    def __init__(self, trial):
        self.trial = trial

    def on_validation_end(self, trainer) -> None:
        import optuna
        self.trial.report(float(trainer.valid_score), trainer.epoch + 1)
        if self.trial.should_prune():
            raise optuna.TrialPruned(f"pruned at epoch {trainer.epoch + 1}")
