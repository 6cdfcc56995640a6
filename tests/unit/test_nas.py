"""Search spaces, the architecture builder, the strategies and the resumable objective."""
from __future__ import annotations

import itertools
import json

import numpy as np
import pandas as pd
import pytest
import torch

from recsys_ref.graph.adjacency import normalized_adjacency
from recsys_ref.models import LightGCN
from recsys_ref.nas.builder import (ACTIVATIONS, COMBINES, LAYERS, LIGHTGCN_POINT,
                                    SearchedGNNModule, build_model, graph_space)
from recsys_ref.nas.search import (EvolutionarySearch, GridSearch, OptunaPruning,
                                   OptunaSearch, RandomSearch, ReinforceSearch, TrialStore,
                                   TrainingObjective, run_search)
from recsys_ref.nas.space import Param, SearchSpace


def _small_space() -> SearchSpace:
    return SearchSpace([
        Param("model", choices=("mf", "gnn")),
        Param("depth", low=1, high=3, integer=True, when={"model": ("gnn",)}),
        Param("act", choices=("id", "relu"), when={"model": ("gnn",), "depth": (2, 3)}),
        Param("dim", choices=(16, 32)),
    ])


@pytest.fixture
def random_frame() -> pd.DataFrame:
    """40 users x 30 items, 6 random items each (seeded), users in two taste groups."""
    rng = np.random.default_rng(0)
    rows = []
    for u in range(40):
        pool = np.arange(15) if u % 2 == 0 else np.arange(15, 30)
        rows += [(u, int(i)) for i in rng.choice(pool, 6, replace=False)]
    return pd.DataFrame(rows, columns=["user", "item"])


# -- the space -----------------------------------------------------------------------------
def test_grid_counts_conditional_points_by_hand():
    # mf: 2 dims; gnn depth 1: 2 dims; gnn depth 2, 3: 2 acts x 2 dims each
    assert _small_space().size() == 2 + 2 + 2 * 2 * 2


def test_canonical_drops_inactive_and_key_identifies_architectures():
    space = _small_space()
    a = {"model": "mf", "depth": 3, "act": "relu", "dim": 16}
    b = {"model": "mf", "dim": 16}
    assert space.canonical(a) == b
    assert space.key(a) == space.key(b)
    assert space.key({"model": "gnn", "depth": 1, "dim": 16}) != space.key(b)
    assert space.active({"model": "gnn", "depth": 1, "act": "id", "dim": 16}) == \
        ["model", "depth", "dim"]


@pytest.mark.parametrize("point, message", [
    ({"model": "mf"}, "missing"),
    ({"model": "cnn", "dim": 16}, "outside its domain"),
    ({"model": "gnn", "depth": 5, "dim": 16}, "outside its domain"),
    ({"model": "mf", "dim": 16, "width": 3}, "unknown parameter"),
])
def test_validate_says_what_is_wrong(point, message):
    with pytest.raises(ValueError, match=message):
        _small_space().validate(point)


def test_space_definition_errors():
    with pytest.raises(ValueError, match="not defined before"):
        SearchSpace([Param("a", choices=(1,), when={"b": (1,)}), Param("b", choices=(1,))])
    with pytest.raises(ValueError, match="low <= high"):
        Param("x", low=2, high=1)
    with pytest.raises(ValueError, match="twice"):
        SearchSpace([Param("a", choices=(1,)), Param("a", choices=(2,))])


def test_space_round_trips_through_json():
    space = graph_space()
    again = SearchSpace.from_dict(json.loads(json.dumps(space.to_dict())))
    assert again == space
    rng = np.random.default_rng(3)
    for _ in range(20):
        p = space.sample(rng)
        assert again.canonical(p) == space.canonical(p)


def test_samples_and_mutations_are_valid_and_mutation_moves_one_parameter():
    space = graph_space()
    rng = np.random.default_rng(0)
    for _ in range(200):
        p = space.canonical(space.sample(rng))
        child = space.mutate(p, rng)
        space.validate(child)
        shared = set(p) & set(child)
        changed = [k for k in shared if p[k] != child[k]]
        assert len(changed) == 1 or set(p) != set(child)   # one move, or the structure changed
        assert child != p


def test_graph_space_knows_lightgcn_and_conditions():
    space = graph_space()
    assert space.canonical(LIGHTGCN_POINT) == LIGHTGCN_POINT
    mf = space.canonical({**LIGHTGCN_POINT, "layer": "none"})
    assert set(mf) == {"layer", "embed_dim", "loss", "temperature"}
    sage = space.canonical({**LIGHTGCN_POINT, "layer": "sage"})
    assert "exponent" not in sage and sage["depth"] == 3
    bpr = space.canonical({**LIGHTGCN_POINT, "loss": "bpr"})
    assert "temperature" not in bpr


# -- the normalisation exponent -----------------------------------------------------------
def test_normalisation_exponent_by_hand():
    # path 0 - 1 - 2: degrees 1, 2, 1; entry [i, j] = 1 / (d_i^r d_j^(1-r))
    ei = torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]])
    for r in (0.0, 0.25, 0.5, 1.0):
        dense = normalized_adjacency(ei, 3, exponent=r).to_dense()
        d = torch.tensor([1.0, 2.0, 1.0])
        expect = torch.zeros(3, 3)
        for j, i in ei.T.tolist():
            expect[i, j] = 1 / (d[i] ** r * d[j] ** (1 - r))
        torch.testing.assert_close(dense, expect)
    rows = normalized_adjacency(ei, 3, exponent=1.0).to_dense().sum(1)
    torch.testing.assert_close(rows, torch.ones(3))             # r = 1: a mean
    with pytest.raises(ValueError, match="exponent"):
        normalized_adjacency(ei, 3, exponent=1.5)


# -- the builder ------------------------------------------------------------------------------
@pytest.mark.parametrize("layer, combine", list(itertools.product(LAYERS, COMBINES)))
def test_every_point_builds_a_model_that_trains_one_step(random_frame, layer, combine):
    acts = list(ACTIVATIONS)
    k = LAYERS.index(layer) + COMBINES.index(combine)
    point = {"layer": layer, "depth": 1 + k % 4, "combine": combine,
             "activation": acts[k % 4], "exponent": (0.0, 0.5, 1.0)[k % 3],
             "embed_dim": 32, "loss": ("bpr", "softmax")[k % 2], "temperature": 0.2}
    model = build_model(point, num_epochs=1, batch_size=10_000, seed=0, lr=1e-2)
    model.fit(random_frame, 40, 30)
    trained = model.module.embedding.weight.detach()
    assert model.history.rows and np.isfinite(model.history.rows[0]["loss"])
    users, items = model.embeddings()
    width = 32 * (point["depth"] + 1) if combine == "concat" and layer != "none" else 32
    assert users.shape == (40, width) and items.shape == (30, width)
    assert torch.isfinite(model.score(torch.arange(40))).all()
    torch.manual_seed(0)                                # the trainer's seed, then build()
    init = model.build().embedding.weight.detach()
    assert (trained - init).abs().max() > 1e-4          # the step moved the embeddings


def test_lightgcn_point_is_lightgcn(random_frame):
    kw = dict(num_epochs=3, batch_size=64, lr=1e-2, seed=5, eval_every=1, patience=None)
    ours = build_model(LIGHTGCN_POINT, **kw).fit(random_frame, 40, 30)
    ref = LightGCN(num_layers=3, loss="softmax", num_neg=None, normalize=True,
                   temperature=0.2, **kw).fit(random_frame, 40, 30)
    users = torch.arange(40)
    torch.testing.assert_close(ours.score(users), ref.score(users), atol=1e-4, rtol=1e-4)


def test_module_rejects_bad_architectures():
    ei = torch.tensor([[0, 2], [2, 0]])
    with pytest.raises(ValueError, match="unknown layer"):
        SearchedGNNModule(2, 1, ei, 8, layer="cnn")
    with pytest.raises(ValueError, match="depth"):
        SearchedGNNModule(2, 1, ei, 8, layer="gcn", depth=0)


# -- the strategies ---------------------------------------------------------------------------
def _needle_space() -> SearchSpace:
    return SearchSpace([Param(f"x{k}", choices=tuple(range(5))) for k in range(6)])


def _needle(point: dict) -> tuple[float, float]:
    """6 parameters of 5 values: the score counts those equal to 3 (optimum 6 of 15,625)."""
    return float(sum(v == 3 for v in point.values())), 1.0


def _evaluations_to_optimum(strategy, budget=2000) -> int:
    res = run_search(strategy, _needle, budget)
    hits = [t["trial"] for t in res.trials if t["value"] == 6]
    return hits[0] if hits else budget + 1


def test_evolution_finds_the_optimum_sooner_than_random_search():
    space = _needle_space()
    evo = [_evaluations_to_optimum(EvolutionarySearch(space, 20, 5, seed=s)) for s in range(5)]
    rnd = [_evaluations_to_optimum(RandomSearch(space, seed=s)) for s in range(5)]
    # random search needs 15,625 draws on average; evolution climbs one value at a time
    assert max(evo) <= 500
    assert np.mean(evo) < 0.2 * np.mean(rnd)


def test_reinforce_learns_the_better_choice():
    space = _needle_space()
    ctrl = ReinforceSearch(space, lr=0.5, seed=0)
    run_search(ctrl, _needle, 300)
    for k in range(6):
        assert ctrl._probs(f"x{k}").argmax() == 3


def test_grid_search_walks_the_grid_in_order():
    space = _small_space()
    res = run_search(GridSearch(space), lambda p: (1.0, 0.0), space.size())
    keys = [space.key(t["point"]) for t in res.trials]
    assert len(set(keys)) == space.size()


def test_tpe_with_group_samples_only_active_parameters():
    import optuna
    space = graph_space()
    tpe = OptunaSearch(space, optuna.samplers.TPESampler(multivariate=True, group=True,
                                                         seed=0, n_startup_trials=5))

    def score(point):
        return (1.0 if point["layer"] == "lightgcn" else 0.0) + 0.1 * len(point), 0.0

    run_search(tpe, score, 25)
    for trial in tpe.study.trials:
        space.validate(trial.params)
        assert list(trial.params) == list(space.canonical(trial.params))
    assert len(tpe.study.trials) == 25


def test_optuna_pruning_callback_stops_a_bad_fit(random_frame):
    import optuna
    study = optuna.create_study(direction="maximize",
                                pruner=optuna.pruners.ThresholdPruner(lower=0.99))
    trial = study.ask()
    model = build_model({**LIGHTGCN_POINT, "embed_dim": 32}, num_epochs=10, eval_every=1,
                        batch_size=64, callbacks=[OptunaPruning(trial)])
    valid = random_frame.groupby("user").tail(1)
    with pytest.raises(optuna.TrialPruned, match="epoch 1"):
        model.fit(random_frame.drop(valid.index), 40, 30, valid=valid)


# -- the resumable objective -----------------------------------------------------------------
class _Killed(Exception):
    pass


def test_a_killed_search_resumes_without_refitting_finished_trials(random_frame, tmp_path):
    space = graph_space(layers=("none", "lightgcn"), depths=(1, 2), embed_dims=(16,))
    valid = random_frame.groupby("user").tail(1)
    train = random_frame.drop(valid.index)
    fid = dict(num_epochs=1, batch_size=10_000, lr=1e-2)
    fits = []

    def build(point, kill_after=None, **kw):
        if kill_after is not None and len(fits) >= kill_after:
            raise _Killed
        fits.append(space.key(point))
        return build_model(point, space, **kw)

    def objective(path, kill_after=None):
        return TrainingObjective(space, train, valid, 40, 30, fid, seeds=(0,),
                                 store=TrialStore(path),
                                 build=lambda p, **kw: build(p, kill_after, **kw))

    full = run_search(EvolutionarySearch(space, 4, 2, seed=1),
                      objective(tmp_path / "full.jsonl"), 10)
    n_full = len(fits)
    fits.clear()
    with pytest.raises(_Killed):
        run_search(EvolutionarySearch(space, 4, 2, seed=1),
                   objective(tmp_path / "run.jsonl", kill_after=3), 10)
    with open(tmp_path / "run.jsonl", "a") as fh:
        fh.write('{"key": "torn')                           # a write cut by the kill
    done = list(fits)
    fits.clear()
    again = run_search(EvolutionarySearch(space, 4, 2, seed=1),
                       objective(tmp_path / "run.jsonl"), 10)
    assert not set(fits) & set(done)                    # no finished fit is repeated
    assert len(done) + len(fits) == n_full
    assert [t["value"] for t in again.trials] == [t["value"] for t in full.trials]


def test_objective_averages_seeds_and_records_failures(random_frame):
    space = graph_space(layers=("lightgcn",), depths=(1, 1), embed_dims=(16,))
    point = {"layer": "lightgcn", "depth": 1, "combine": "mean", "activation": "identity",
             "exponent": 0.5, "embed_dim": 16, "loss": "bpr"}
    valid = random_frame.groupby("user").tail(1)
    train = random_frame.drop(valid.index)
    obj = TrainingObjective(space, train, valid, 40, 30, dict(num_epochs=2), seeds=(0, 1))
    value, _ = obj(point)
    single = [obj.evaluate(point, s)["value"] for s in (0, 1)]
    assert value == pytest.approx(np.mean(single)) and obj.calls == 2

    def diverges(point, **kw):
        raise ValueError("training loss became NaN at epoch 0")

    bad = TrainingObjective(space, train, valid, 40, 30, dict(num_epochs=1), seeds=(0,),
                            build=diverges)
    rec = bad.evaluate(point, 0)
    assert rec["value"] == 0.0 and "NaN" in rec["error"]


def test_describe_reads_a_point():
    from recsys_ref.nas.builder import describe
    assert describe(LIGHTGCN_POINT) == \
        "lightgcn x3, mean, identity, r=0.5, d=64, softmax tau=0.2"
    assert describe({"layer": "none", "embed_dim": 32, "loss": "bpr"}) == \
        "MF (no propagation), d=32, BPR"


def test_refit_and_test_selects_epochs_on_validation_then_refits(random_frame):
    from recsys_ref.nas.search import refit_and_test
    from recsys_ref.protocol.split import Split
    split = Split.per_user(random_frame, (0.6, 0.2, 0.2), seed=0, num_users=40,
                           num_items=30)
    built = []

    def build(seed, **over):
        kw = dict(num_epochs=6, eval_every=1, patience=2, batch_size=64, lr=1e-2)
        model = build_model({**LIGHTGCN_POINT, "embed_dim": 32}, seed=seed,
                            **{**kw, **over})
        built.append(over)
        return model

    out = refit_and_test(build, split, [3, 4], metrics=["ndcg"])
    assert list(out.index) == [3, 4]
    assert built[0] == {} and built[1] == {"num_epochs": int(out.loc[3, "epochs"]),
                                           "patience": None}
    assert 1 <= out["epochs"].min() and out["epochs"].max() <= 6
    assert ((0 <= out["ndcg"]) & (out["ndcg"] <= 1)).all()


def test_standard_strategies_share_the_ask_tell_interface():
    from recsys_ref.nas.search import standard_strategies
    space = graph_space()
    strategies = standard_strategies(space)
    assert list(strategies) == ["random", "evolution", "NSGA-II", "TPE", "REINFORCE"]
    for name, factory in strategies.items():
        a = run_search(factory(3), lambda p: (float(p["embed_dim"]), 0.0), 6)
        b = run_search(factory(3), lambda p: (float(p["embed_dim"]), 0.0), 6)
        assert [t["point"] for t in a.trials] == [t["point"] for t in b.trials], name
        for t in a.trials:
            space.validate(t["point"])
