r"""A search space as data: named parameters, their domains and the conditions under which
they exist.

A *point* of the space is a plain ``dict`` ``{name: value}``. A parameter may be
*conditional*: ``Param("depth", ..., when={"layer": (...)})`` exists only where ``layer``
takes one of the listed values (a matrix-factorisation point has no depth). The
canonical form of a point keeps only its active parameters, so two points that differ in
an inactive value are the same architecture (:meth:`SearchSpace.key`).

Domains:

* ``choices``: a categorical parameter (any JSON values);
* ``low``/``high`` with ``integer=True``: integers :math:`low \le v \le high`;
* ``low``/``high`` otherwise: floats, uniform or (``log=True``) log-uniform.

The space serialises to JSON (:meth:`SearchSpace.to_dict` / :meth:`SearchSpace.from_dict`),
samples and mutates points with a NumPy generator (the random and evolutionary strategies
of :mod:`recsys_ref.nas.search`) and asks an Optuna trial for a point
(:meth:`SearchSpace.suggest`): only the active parameters are suggested, in the order of
the space, so the conditional structure is what Optuna sees (TPE models it with
``multivariate=True, group=True``).

Used in: ``chapters/12_architecture_search``.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from itertools import product
from typing import Any

import numpy as np

__all__ = ["Param", "SearchSpace"]


@dataclass(frozen=True)
class Param:
    """One parameter of a :class:`SearchSpace` (see the module docstring).

    Attributes:
        name: its key in a point.
        choices: the values of a categorical parameter (``None`` for a numeric one).
        low, high: bounds of a numeric parameter (both included).
        integer: integer values (``low``..``high``).
        log: sample a float log-uniformly (``low > 0``).
        when: ``{other_name: allowed_values}``: active only where every named parameter
            is active and takes one of its allowed values; names must come earlier.
    """

    name: str
    choices: tuple | None = None
    low: float | None = None
    high: float | None = None
    integer: bool = False
    log: bool = False
    when: dict[str, tuple] = field(default_factory=dict)

    def __post_init__(self):
        if self.choices is not None:
            object.__setattr__(self, "choices", tuple(self.choices))
            if not self.choices:
                raise ValueError(f"parameter {self.name!r}: choices is empty")
            if self.low is not None or self.high is not None:
                raise ValueError(f"parameter {self.name!r}: give choices or low/high, not both")
        else:
            if self.low is None or self.high is None or not self.low <= self.high:
                raise ValueError(f"parameter {self.name!r}: a numeric parameter needs "
                                 f"low <= high, got low={self.low}, high={self.high}")
            if self.log and self.low <= 0:
                raise ValueError(f"parameter {self.name!r}: log=True needs low > 0")
        object.__setattr__(self, "when", {k: tuple(v) for k, v in self.when.items()})

    @property
    def categorical(self) -> bool:
        return self.choices is not None

    def contains(self, value: Any) -> bool:
        """Whether ``value`` lies in the domain."""
        if self.categorical:
            return value in self.choices
        if isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
            return False
        if self.integer and float(value) != int(value):
            return False
        return self.low <= float(value) <= self.high

    def sample(self, rng: np.random.Generator) -> Any:
        if self.categorical:
            return self.choices[int(rng.integers(len(self.choices)))]
        if self.integer:
            return int(rng.integers(int(self.low), int(self.high) + 1))
        if self.log:
            v = math.exp(rng.uniform(math.log(self.low), math.log(self.high)))
        else:
            v = rng.uniform(self.low, self.high)
        return float(min(max(v, self.low), self.high))     # exp(log(x)) may round out

    def neighbour(self, value: Any, rng: np.random.Generator) -> Any:
        """A different value close to ``value``: another choice; an integer one step
        away; a float moved by a normal step of a quarter of the (log) range, clipped."""
        if self.categorical:
            if len(self.choices) == 1:
                return value
            others = [c for c in self.choices if c != value]
            return others[int(rng.integers(len(others)))]
        if self.integer:
            lo, hi = int(self.low), int(self.high)
            if lo == hi:
                return lo
            steps = [v for v in (int(value) - 1, int(value) + 1) if lo <= v <= hi]
            return steps[int(rng.integers(len(steps)))]
        if self.log:
            span = math.log(self.high) - math.log(self.low)
            v = math.exp(math.log(value) + rng.normal(0.0, span / 4))
        else:
            v = value + rng.normal(0.0, (self.high - self.low) / 4)
        return float(min(max(v, self.low), self.high))

    def suggest(self, trial) -> Any:
        """The value an Optuna ``trial`` suggests for this parameter."""
        if self.categorical:
            return trial.suggest_categorical(self.name, list(self.choices))
        if self.integer:
            return trial.suggest_int(self.name, int(self.low), int(self.high))
        return trial.suggest_float(self.name, self.low, self.high, log=self.log)


class SearchSpace:
    """An ordered list of :class:`Param` (module docstring).

    Args:
        params: the parameters; a condition may only name an earlier parameter.
    """

    def __init__(self, params: list[Param]):
        seen: dict[str, Param] = {}
        for p in params:
            if p.name in seen:
                raise ValueError(f"parameter {p.name!r} is defined twice")
            for other, allowed in p.when.items():
                if other not in seen:
                    raise ValueError(f"parameter {p.name!r} depends on {other!r}, which is "
                                     "not defined before it; order the parameters")
                bad = [v for v in allowed if not seen[other].contains(v)]
                if bad:
                    raise ValueError(f"parameter {p.name!r}: condition values {bad} are "
                                     f"outside the domain of {other!r}")
            seen[p.name] = p
        self.params = list(params)
        self._by_name = seen

    def __getitem__(self, name: str) -> Param:
        return self._by_name[name]

    def __iter__(self):
        return iter(self.params)

    def __len__(self) -> int:
        return len(self.params)

    # -- the conditional structure ----------------------------------------------------
    @staticmethod
    def is_active(p: Param, point: dict) -> bool:
        """Whether ``p`` exists given the values already in ``point`` (its conditions)."""
        return all(k in point and point[k] in allowed for k, allowed in p.when.items())

    def active(self, point: dict) -> list[str]:
        """Names of the parameters that exist at ``point`` (in the space's order)."""
        out: dict = {}
        for p in self.params:
            if self.is_active(p, out) and p.name in point:
                out[p.name] = point[p.name]
        return list(out)

    def canonical(self, point: dict) -> dict:
        """``point`` with its inactive parameters dropped, in the space's order; checks it
        (:meth:`validate`)."""
        self.validate(point)
        out: dict = {}
        for p in self.params:
            if self.is_active(p, out):
                v = point[p.name]
                out[p.name] = int(v) if p.integer else (float(v) if not p.categorical else v)
        return out

    def validate(self, point: dict) -> None:
        """Raise a ``ValueError`` naming what is wrong: an unknown name, a missing active
        parameter, a value outside its domain."""
        if not isinstance(point, dict):
            raise ValueError(f"a point is a dict of parameter values, got {type(point).__name__}")
        unknown = set(point) - set(self._by_name)
        if unknown:
            raise ValueError(f"unknown parameter(s) {sorted(unknown)}; the space has "
                             f"{[p.name for p in self.params]}")
        current: dict = {}
        for p in self.params:
            if not self.is_active(p, current):
                continue
            if p.name not in point:
                raise ValueError(f"parameter {p.name!r} is active at this point but missing")
            if not p.contains(point[p.name]):
                dom = p.choices if p.categorical else f"[{p.low}, {p.high}]"
                raise ValueError(f"{p.name}={point[p.name]!r} is outside its domain {dom}")
            current[p.name] = point[p.name]

    def key(self, point: dict) -> str:
        """A string that identifies the architecture (JSON of the canonical point): equal
        for points that differ only in inactive parameters."""
        return json.dumps(self.canonical(point), sort_keys=True)

    # -- sampling, mutation, Optuna ------------------------------------------------------
    def sample(self, rng: np.random.Generator) -> dict:
        """A point drawn uniformly parameter by parameter (active ones only)."""
        point: dict = {}
        for p in self.params:
            if self.is_active(p, point):
                point[p.name] = p.sample(rng)
        return point

    def mutate(self, point: dict, rng: np.random.Generator) -> dict:
        """A child of ``point``: one active parameter moved to a neighbouring value
        (:meth:`Param.neighbour`); parameters that become active are drawn afresh, those
        that become inactive are dropped."""
        point = self.canonical(point)
        names = [n for n in point if self._mutable(self._by_name[n])]
        if not names:
            return point
        name = names[int(rng.integers(len(names)))]
        child = dict(point)
        child[name] = self._by_name[name].neighbour(point[name], rng)
        out: dict = {}
        for p in self.params:
            if self.is_active(p, out):
                out[p.name] = child[p.name] if p.name in child else p.sample(rng)
        return out

    @staticmethod
    def _mutable(p: Param) -> bool:
        return (len(p.choices) > 1) if p.categorical else p.low < p.high

    def suggest(self, trial) -> dict:
        """Ask an Optuna ``trial`` for a point: the active parameters only, in order."""
        point: dict = {}
        for p in self.params:
            if self.is_active(p, point):
                point[p.name] = p.suggest(trial)
        return point

    def grid(self) -> list[dict]:
        """Every canonical point of a space whose parameters are all categorical or
        integer (a grid search, or an exhaustive table)."""
        points: list[dict] = [{}]
        for p in self.params:
            if not (p.categorical or p.integer):
                raise ValueError(f"parameter {p.name!r} is a float: a grid needs choices")
            values = p.choices if p.categorical else range(int(p.low), int(p.high) + 1)
            nxt = []
            for pt in points:
                if self.is_active(p, pt):
                    nxt.extend({**pt, p.name: v} for v in values)
                else:
                    nxt.append(pt)
            points = nxt
        return points

    def size(self) -> int:
        """Number of distinct canonical points (categorical and integer spaces)."""
        return len(self.grid())

    # -- serialisation -----------------------------------------------------------------
    def to_dict(self) -> dict:
        """JSON-ready description (``from_dict`` inverts it)."""
        out = []
        for p in self.params:
            d = {k: v for k, v in asdict(p).items() if v not in (None, False, {})}
            if "choices" in d:
                d["choices"] = list(d["choices"])
            if "when" in d:
                d["when"] = {k: list(v) for k, v in d["when"].items()}
            out.append(d)
        return {"params": out}

    @classmethod
    def from_dict(cls, data: dict) -> "SearchSpace":
        if not isinstance(data, dict) or "params" not in data:
            raise ValueError("a space description is {'params': [...]} (SearchSpace.to_dict)")
        return cls([Param(**p) for p in data["params"]])

    def __eq__(self, other) -> bool:
        return isinstance(other, SearchSpace) and self.params == other.params

    def __repr__(self) -> str:
        return f"SearchSpace({', '.join(p.name for p in self.params)})"
