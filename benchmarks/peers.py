"""The libraries people use, beside ours, in one run, on the real Recommenders ML-100K split.

    make peers                                   # everything (long: hours on 2 CPU cores)
    python benchmarks/peers.py --quick --models popularity,ease,cornac-ease,implicit-als,sar
    python benchmarks/peers.py --models lightgcn,cornac-bivae --seeds 0,1,2 --budget 8

Versions that ran (``pip install -e ".[peers]"``; ``make env`` installs recommenders with
``--no-deps``, since 1.2.1 pins ``cornac<3`` and ``pandas<3``): **cornac 3.0.1, implicit
0.7.3, recommenders 1.2.1** (pandas 3, numpy 2, torch 2.13 CPU). The script prints the
versions it finds (and writes them into ``peers.md``); a peer whose library is missing is
skipped with the reason printed.

**Protocol.** ML-100K, ``Split.recommenders(ml, seed=42, valid_ratio=0.1)``: Microsoft
Recommenders' stratified 75/25 split (the split of their benchmark notebook and of the
book), with a validation part carved per user out of train (``split.tuning``: train
without valid -> valid). Every model ranks the whole catalogue with its training items
masked; k = 10; MAP divides by the number of relevant items (Recommenders' ``map``).

1. *Selection, on validation only.* Each model's search runs ``--budget`` configurations
   (default 8) with the first seed: its documented / chapter configuration first, then
   random draws from its space (``benchmarks/peer_spaces.py``). A configuration is fitted
   on ``split.tuning.train`` and scored on ``split.valid``; models of ours that stop early
   use ``valid`` for that and keep the best epoch. The configuration with the best
   validation nDCG@10 is the "tuned" row; the first one is the "documented" (peers) or
   "default" (ours) row.
2. *Test, once per seed.* Each row's configuration is refitted on all of ``split.train``
   (early-stopped models for the number of epochs chosen in step 1) with each model seed
   (``--seeds``, default 0,1,2; one seed for deterministic models) and evaluated on
   ``split.test``. Nothing chosen here looks at test.
3. *Cross-check.* Each peer's top-10 lists are scored by our evaluator and by
   Recommenders' ``python_evaluation`` (``precision_at_k``, ``recall_at_k``,
   ``ndcg_at_k``, ``map``, ``relevancy_method="top_k"``) on a prediction frame built
   from the same lists; the script stops if they differ by more than 1e-9. The peer's own
   top-k path (SAR's ``recommend_k_items``, implicit's ``recommend``, cornac's
   ``recommend(..., remove_seen=True)``) is compared with the lists our evaluator ranks
   from the peer's scores (cornac's collected as Recommenders' ``predict_ranking`` does):
   the share of users with the same top-10 set is printed (ties and float32 scores can
   make it slightly below 1).

Two fixes to the peers, stated here because they change what runs: numpy 2
removed ``np.NaN``, which recommenders 1.2.1's SAR uses (aliased to ``np.nan``); cornac
3.0.1's RecVAE scores with its network in training mode (input dropout 0.5, a sampled
latent), so it is switched to eval mode after fitting, as the RecVAE authors score.

**Output.** ``benchmarks/peers.csv`` and ``benchmarks/peers.md`` (written atomically):
per model and setting, nDCG@10, P@10, R@10, MAP as mean ± std over seeds, the beyond-
accuracy measures (coverage, Gini, novelty, diversity), the median refit time, the
validation nDCG that chose the row, each of ours as a ratio to the best peer (the peer
row with the highest mean test nDCG), and a paired t-test per user on nDCG@10 (per-user
nDCG averaged over seeds) of the book's best model (the row of ours with the highest
validation nDCG) against that peer.

**Resumable.** Every fit's result is one JSON file under ``benchmarks/.peers_cache/``
(keyed by model, stage, configuration and seed; written atomically), so a killed run
resumes where it stopped; ``--fresh`` ignores the cache.

**Threads.** ``--threads`` (default 1: on a small shared CPU two PyTorch threads spin
against other processes, see ``benchmarks/README.md``; 2 on a quiet machine) pins torch
(``torch.set_num_threads`` and our models' ``num_threads``), the BLAS (threadpoolctl; 1
inside implicit's fits, as implicit asks), cornac's BPR (``num_threads``) and implicit
(``num_threads``). implicit's BPR with more than one thread updates factors without locks
(Hogwild), so its results vary run to run even at a fixed seed; ALS does not.

**Not run.** cornac's WMF needs TensorFlow and cornac's LightGCN and NGCF need DGL; without
them they are skipped with the reason printed (``--models`` lists everything).
"""
from __future__ import annotations

import argparse
import hashlib
import importlib
import importlib.metadata
import importlib.util
import inspect
import json
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))
from peer_spaces import SPECS, Spec, config_label, draw_configs  # noqa: E402

from recsys_ref.data.store import atomic_write  # noqa: E402
from recsys_ref.models import check_params, get_model  # noqa: E402
from recsys_ref.protocol.evaluate import interaction_matrix  # noqa: E402
from recsys_ref.protocol.split import Split, evaluate  # noqa: E402
from recsys_ref.protocol.stats import format_mean_std, paired_test, seed_summary  # noqa: E402

__all__ = ["run", "main", "recommenders_metrics", "CACHE_DIR"]

K = 10
METRICS = ["ndcg", "precision", "recall", "map"]
BEYOND = ["coverage", "gini", "novelty", "diversity"]
TOL = 1e-9
CACHE_DIR = HERE / ".peers_cache"
#: bump when a change makes cached results wrong
CACHE_VERSION = 1
PEER_PACKAGES = ("cornac", "implicit", "recommenders")


# ---------------------------------------------------------------------------- context
@dataclass
class Context:
    """What every fit needs: the split, the dataset (for side features) and threads."""

    split: Split
    ml: object = None
    threads: int = 1
    features: dict = field(default_factory=dict)

    @property
    def num_users(self) -> int:
        return self.split.num_users

    @property
    def num_items(self) -> int:
        return self.split.num_items


def _missing(spec: Spec) -> str | None:
    """Why ``spec`` cannot run here, or ``None``."""
    need = {"cornac": ("cornac",), "implicit": ("implicit",),
            "recommenders": ("recommenders",)}.get(spec.library, ())
    for mod in need + spec.needs:
        if importlib.util.find_spec(mod) is None:
            extra = ' (pip install -e ".[peers]")' if mod in PEER_PACKAGES else ""
            return f"needs {mod}, which is not installed{extra}"
        try:
            importlib.import_module(mod)
        except Exception as err:                   # installed but broken (e.g. DGL vs torch)
            return f"needs {mod}, which is installed but does not import: {err!r}"
    if not spec.is_peer:
        try:
            get_model(spec.model)
        except ValueError:
            return f"{spec.model!r} is not in recsys_ref.models.MODELS"
    return None


# ------------------------------------------------------------------------------ peers
def _values(train: pd.DataFrame, kind: str, num_users: int, num_items: int) -> np.ndarray:
    """The value each training row gets: ``ratings``, ``binary`` or ``bm25``."""
    if kind == "ratings":
        return train["rating"].to_numpy(np.float64)
    if kind == "binary":
        return np.ones(len(train))
    if kind == "bm25":                     # implicit's examples/movielens.py: bm25(B=.9) * 5
        from implicit.nearest_neighbours import bm25_weight
        m = interaction_matrix(train, num_users, num_items)
        w = (bm25_weight(m.T.tocsr(), B=0.9) * 5).T.tocsr()     # weights items x users
        return np.asarray(w[train["user"].to_numpy(), train["item"].to_numpy()]).ravel()
    raise ValueError(f"unknown input {kind!r}: choose ratings, binary or bm25")


def _kwargs(cls, params: dict, seed: int, threads: int, fixed: dict) -> dict:
    """``params`` + ``fixed`` + seed/threads where ``cls`` takes them."""
    sig = inspect.signature(cls.__init__).parameters
    kw = {**params, **fixed}
    for name, value in (("seed", seed), ("random_state", seed), ("num_threads", threads)):
        if name in sig:
            kw[name] = value
    return kw


def _fit_cornac(spec: Spec, params: dict, train: pd.DataFrame, ctx: Context, seed: int):
    import cornac

    params = dict(params)
    vals = _values(train, params.pop("input", "ratings"), ctx.num_users, ctx.num_items)
    cls = getattr(cornac.models, spec.model)
    data = cornac.data.Dataset.from_uir(
        zip(train["user"].tolist(), train["item"].tolist(), vals.tolist()), seed=seed)
    model = cls(**_kwargs(cls, params, seed, ctx.threads, spec.fixed))
    t0 = time.perf_counter()
    model.fit(data)
    fit_s = time.perf_counter() - t0
    if hasattr(model, "recvae_model"):
        # cornac 3.0.1's RecVAE scores with its module left in training mode: dropout 0.5
        # on the input and a sampled z, so every call ranks differently (the own-top-k
        # check agreed on 0 % of users). The RecVAE authors' code scores in eval mode.
        model.recvae_model.eval()
    # every (training user, training item) score, as Recommenders' predict_ranking (their
    # benchmark's path) collects them; np.ravel because cornac's EASE returns a (1, n)
    # matrix, which predict_ranking cannot take
    items = np.asarray(list(data.iid_map.keys()), np.int64)     # raw ids, internal order
    scores = np.full((ctx.num_users, ctx.num_items), -np.inf)
    for raw, idx in data.uid_map.items():
        scores[raw, items] = np.ravel(np.asarray(model.score(idx), np.float64))

    def own_topk(users: np.ndarray, k: int) -> np.ndarray:
        return np.array([model.recommend(int(u), k=k, remove_seen=True, train_set=data)
                         for u in users])
    return scores, fit_s, own_topk


def _fit_implicit(spec: Spec, params: dict, train: pd.DataFrame, ctx: Context, seed: int):
    import implicit.als
    import implicit.bpr
    from threadpoolctl import threadpool_limits

    params = dict(params)
    vals = _values(train, params.pop("input", "binary"), ctx.num_users, ctx.num_items)
    import scipy.sparse as sp
    user_items = sp.csr_matrix((vals.astype(np.float32), (train["user"], train["item"])),
                               shape=(ctx.num_users, ctx.num_items))
    cls = {"AlternatingLeastSquares": implicit.als.AlternatingLeastSquares,
           "BayesianPersonalizedRanking": implicit.bpr.BayesianPersonalizedRanking}[spec.model]
    with threadpool_limits(1, "blas"):       # implicit's advice: its own threads, BLAS 1
        model = cls(**_kwargs(cls, params, seed, ctx.threads, {"use_gpu": False}))
        t0 = time.perf_counter()
        model.fit(user_items, show_progress=False)
        fit_s = time.perf_counter() - t0
    scores = np.asarray(model.user_factors, np.float64) @ np.asarray(
        model.item_factors, np.float64).T

    def own_topk(users: np.ndarray, k: int) -> np.ndarray:
        ids, _ = model.recommend(users, user_items[users], N=k,
                                 filter_already_liked_items=True)
        return np.asarray(ids)
    return scores, fit_s, own_topk


def _fit_sar(spec: Spec, params: dict, train: pd.DataFrame, ctx: Context, seed: int):
    if not hasattr(np, "NaN"):          # recommenders 1.2.1's SAR spells numpy's nan np.NaN,
        np.NaN = np.nan                 # which numpy 2 removed
    from recommenders.models.sar import SAR

    params = dict(params)
    frame = train[["user", "item", "timestamp"]].copy()
    frame["rating"] = _values(train, params.pop("input", "ratings"), ctx.num_users,
                              ctx.num_items)
    model = SAR(col_user="user", col_item="item", col_rating="rating",
                col_timestamp="timestamp", col_prediction="prediction", **params)
    t0 = time.perf_counter()
    model.fit(frame)
    fit_s = time.perf_counter() - t0
    users = np.array([model.index2user[j] for j in range(model.n_users)])
    items = np.array([model.index2item[j] for j in range(model.n_items)])
    scores = np.full((ctx.num_users, ctx.num_items), -np.inf)
    scores[np.ix_(users, items)] = np.asarray(
        model.score(pd.DataFrame({"user": users})), np.float64)

    def own_topk(wanted: np.ndarray, k: int) -> np.ndarray:
        rec = model.recommend_k_items(pd.DataFrame({"user": wanted}), top_k=k,
                                      remove_seen=True)
        lists = rec.groupby("user")["item"].agg(list)
        return np.array([lists[u][:k] for u in wanted])
    return scores, fit_s, own_topk


_PEER_FIT = {"cornac": _fit_cornac, "implicit": _fit_implicit, "recommenders": _fit_sar}


# ------------------------------------------------------------------------------- ours
def _features(ctx: Context, name: str):
    """Side features named in a configuration (``features="movielens"``)."""
    if name not in ctx.features:
        if name != "movielens" or ctx.ml is None:
            raise ValueError(f"unknown features {name!r}: only 'movielens' (MovieLens "
                             "user and item side features) is defined")
        from recsys_ref.models.graph.graphsage import movielens_features
        ux, ix = movielens_features(ctx.ml)[:2]
        ctx.features[name] = (ux, ix)
    return ctx.features[name]


def _build_ours(spec: Spec, params: dict, ctx: Context, seed: int):
    cls = get_model(spec.model)
    kw = dict(params)
    kw.pop("_use_phase", None)
    if "features" in kw:
        kw["user_features"], kw["item_features"] = _features(ctx, kw.pop("features"))
    if "fanouts" in kw:
        kw["fanouts"] = tuple(kw["fanouts"])
    names = cls._init_params()
    if "seed" in names:
        kw["seed"] = seed
    if "num_threads" in names:
        kw.setdefault("num_threads", ctx.threads)
    check_params(cls, {k: v for k, v in kw.items() if k != "seed"})
    return cls(**kw)


def _refit_params(model, params: dict) -> dict:
    """The configuration to refit on all of train: early-stopped models get the epochs
    validation chose and no patience; a GAT recommender keeps the phase validation kept."""
    out = dict(params)
    history = getattr(model, "history", None)
    best = getattr(history, "best_epoch", None)
    if best is not None and "num_epochs" in type(model)._init_params():
        out.update(num_epochs=int(best) + 1, patience=None)
    pre = getattr(model, "pretrain_history", None)
    if pre is not None and pre.best_epoch is not None:
        out["pretrain_epochs"] = int(pre.best_epoch) + 1
        if not getattr(model, "attention_kept", True):
            out.update(num_epochs=1, _use_phase="uniform")
    return out


# ------------------------------------------------------------------- evaluation pieces
def recommenders_metrics(topk: np.ndarray, users: np.ndarray, test: pd.DataFrame,
                         k: int = K) -> dict[str, float]:
    """Recommenders' ``python_evaluation`` on our top-k lists (rank r gets the strictly
    decreasing score k - r + 1, so no tie is left for them to break)."""
    from recommenders.evaluation import python_evaluation as rpe

    pred = pd.DataFrame({"user": np.repeat(users, topk.shape[1]), "item": topk.ravel(),
                         "prediction": np.tile(np.arange(topk.shape[1], 0, -1.0),
                                               len(users))})
    truth = test[["user", "item"]].assign(rating=1.0)
    kw = dict(col_user="user", col_item="item", col_rating="rating",
              col_prediction="prediction", relevancy_method="top_k", k=k)
    return {"ndcg": rpe.ndcg_at_k(truth, pred, **kw),
            "precision": rpe.precision_at_k(truth, pred, **kw),
            "recall": rpe.recall_at_k(truth, pred, **kw), "map": rpe.map(truth, pred, **kw)}


def _evaluate(model, split: Split, full: bool = False):
    """Our metrics on ``split.test``. With ``full``: ``(metrics + beyond-accuracy keys +
    per-user nDCG, topk, users)``."""
    if not full:
        return evaluate(model, split, K, metrics=METRICS)
    metrics, frame, topk, users = evaluate(model, split, K, metrics=METRICS, per_user=True,
                                           beyond=True, return_topk=True)
    out = {m: float(metrics[m]) for m in METRICS}
    out.update({b: float(metrics[b]) for b in BEYOND if b in metrics})
    out["per_user"] = {"user": [int(u) for u in frame.index],
                       "ndcg": [float(v) for v in frame["ndcg"]]}
    return out, np.asarray(topk), np.asarray(users)


def _check_peer(topk: np.ndarray, users: np.ndarray, own_topk, split: Split,
                ours: dict) -> dict:
    """Recommenders' metrics on our top-k lists against ``ours`` (raises beyond 1e-9);
    and the share of users whose top-k set equals the library's own top-k."""
    theirs = recommenders_metrics(topk, users, split.test)
    diff = max(abs(theirs[m] - ours[m]) for m in METRICS)
    if not diff <= TOL:
        raise AssertionError(
            f"our evaluator and Recommenders' python_evaluation disagree by {diff:.3e} "
            f"(> {TOL:g}): ours { {m: ours[m] for m in METRICS} }, theirs {theirs}")
    out = {"recommenders_max_diff": diff}
    if own_topk is not None:
        own = own_topk(users, K)
        same = [set(a) == set(b) for a, b in zip(topk.tolist(), own.tolist())]
        out["own_topk_agreement"] = float(np.mean(same))
    return out


# ------------------------------------------------------------------------------ cache
def _key(spec: Spec, stage: str, params: dict, seed: int) -> str:
    blob = json.dumps({"v": CACHE_VERSION, "model": spec.key, "stage": stage,
                       "params": params, "seed": seed, "k": K}, sort_keys=True, default=str)
    return hashlib.sha1(blob.encode()).hexdigest()[:16]


class Cache:
    """One JSON file per (model, stage, configuration, seed); ``fresh`` ignores reads."""

    def __init__(self, folder: Path, fresh: bool = False):
        self.folder, self.fresh = Path(folder), fresh

    def path(self, spec: Spec, stage: str, params: dict, seed: int) -> Path:
        return self.folder / spec.key / f"{stage}-{_key(spec, stage, params, seed)}-s{seed}.json"

    def get(self, spec, stage, params, seed) -> dict | None:
        p = self.path(spec, stage, params, seed)
        if self.fresh or not p.exists():
            return None
        return json.loads(p.read_text())

    def put(self, spec, stage, params, seed, result: dict) -> dict:
        p = self.path(spec, stage, params, seed)
        p.parent.mkdir(parents=True, exist_ok=True)
        record = {"model": spec.key, "stage": stage, "params": params, "seed": seed,
                  **result}
        atomic_write(p, lambda fh: json.dump(record, fh, indent=1, default=str), mode="w")
        return record


# ----------------------------------------------------------------------- the two stages
def _valid_stage(spec: Spec, params: dict, ctx: Context, seed: int) -> dict:
    """Fit on train without valid, score valid: ``{ndcg, ..., refit, fit_s}``."""
    tuning = ctx.split.tuning
    t0 = time.perf_counter()
    if spec.is_peer:
        scores, _, _ = _PEER_FIT[spec.library](spec, params, tuning.train, ctx, seed)
        res = _evaluate(torch.as_tensor(scores), tuning)
        refit = dict(params)
    else:
        model = _build_ours(spec, params, ctx, seed)
        valid = ctx.split.valid if getattr(model, "uses_validation", False) else None
        if valid is not None:
            model.fit(tuning.train, ctx.num_users, ctx.num_items, valid=valid)
        else:
            model.fit(tuning.train, ctx.num_users, ctx.num_items)
        res = _evaluate(model, tuning)
        refit = _refit_params(model, params)
    return {**{m: float(res[m]) for m in METRICS}, "refit": refit,
            "fit_s": time.perf_counter() - t0}


def _test_stage(spec: Spec, refit: dict, ctx: Context, seed: int) -> dict:
    """Refit on all of train with ``refit``, evaluate on test once."""
    split = ctx.split
    if spec.is_peer:
        scores, fit_s, own = _PEER_FIT[spec.library](spec, refit, split.train, ctx, seed)
        res, topk, users = _evaluate(torch.as_tensor(scores), split, full=True)
        res.update(_check_peer(topk, users, own, split, res))
    else:
        model = _build_ours(spec, refit, ctx, seed)
        t0 = time.perf_counter()
        model.fit(split.train, ctx.num_users, ctx.num_items)
        fit_s = time.perf_counter() - t0
        if refit.get("_use_phase"):
            model.use_phase(refit["_use_phase"])
        res = _evaluate(model, split, full=True)[0]
    res["fit_s"] = fit_s
    return res


# ---------------------------------------------------------------------------- driver
@dataclass
class RowResult:
    spec: Spec
    setting: str
    config: dict
    valid_ndcg: float
    runs: list[dict]


def _versions() -> dict[str, str]:
    out = {}
    for pkg in PEER_PACKAGES + ("torch", "numpy", "pandas"):
        try:
            out[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def run(specs: list[Spec], ctx: Context, seeds: list[int], budget: int, cache: Cache,
        quick: bool = False, progress: bool = True, log=print) -> list[RowResult]:
    """Search, refit and test every spec; return its rows (see the module docstring)."""
    plans = []
    for spec in specs:
        configs = draw_configs(spec, budget, seed=0)
        if quick:
            configs = [{**c, **spec.quick} for c in configs]
        plans.append((spec, configs))
    total = sum(len(c) + 2 * len(seeds) for _, c in plans)
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=total, desc="fits", unit="fit", dynamic_ncols=True, file=sys.stderr)

    def step(desc: str) -> None:
        if bar is not None:
            bar.set_postfix_str(desc[:60])
            bar.update(1)

    rows: list[RowResult] = []
    failed: list[str] = []
    for spec, configs in plans:
        try:
            rows += _run_spec(spec, configs, ctx, seeds, cache, step, log)
        except AssertionError:                     # evaluators disagree: stop everything
            raise
        except Exception as err:                   # one model failing keeps the others
            failed.append(spec.key)
            log(f"  FAILED {spec.key}: {type(err).__name__}: {err}")
        if bar is not None:
            bar.n = sum(len(c) + 2 * len(seeds) for _, c in plans[:plans.index(
                (spec, configs)) + 1])
            bar.refresh()
    if bar is not None:
        bar.close()
    if failed:
        log(f"failed (re-run to retry; finished fits are cached): {', '.join(failed)}")
    return rows


def _run_spec(spec: Spec, configs: list[dict], ctx: Context, seeds: list[int], cache: Cache,
              step, log) -> list[RowResult]:
    """The validation search of one model, then its rows' refits and tests."""
    rows = []
    trials = []
    for i, params in enumerate(configs):
        res = cache.get(spec, "valid", params, seeds[0])
        if res is None:
            res = cache.put(spec, "valid", params, seeds[0],
                            _valid_stage(spec, params, ctx, seeds[0]))
        trials.append(res)
        step(f"{spec.key} valid {i + 1}/{len(configs)}")
    best = int(np.argmax([t["ndcg"] for t in trials]))
    settings = [("documented" if spec.is_peer else "default", 0)]
    if len(configs) > 1:
        settings.append(("tuned", best))
    run_seeds = seeds[:1] if spec.deterministic else seeds
    for setting, idx in settings:
        refit = trials[idx]["refit"]
        runs = []
        for s in run_seeds:
            res = cache.get(spec, "test", refit, s)
            if res is None:
                res = cache.put(spec, "test", refit, s, _test_stage(spec, refit, ctx, s))
            runs.append(res)
            step(f"{spec.key} {setting} seed {s}")
        rows.append(RowResult(spec, setting, configs[idx], trials[idx]["ndcg"], runs))
        log(f"  {spec.label:<28} {setting:<10} valid nDCG {trials[idx]['ndcg']:.4f}  "
            f"test nDCG {np.mean([r['ndcg'] for r in runs]):.4f} "
            f"({len(runs)} seed(s))")
    return rows


def summarise(rows: list[RowResult]) -> tuple[pd.DataFrame, dict]:
    """The table (one row per model and setting) and the headline comparisons."""
    records = []
    for r in rows:
        for run_ in r.runs:
            records.append({"key": r.spec.key, "setting": r.setting, "seed": run_["seed"],
                            **{m: run_[m] for m in METRICS + BEYOND if m in run_},
                            "fit_s": run_["fit_s"]})
    metrics = METRICS + [b for b in BEYOND if all(b in x for x in records)]
    summary = seed_summary(records, by=["key", "setting"], metrics=metrics)
    table = []
    for r in rows:
        s = summary.loc[[(r.spec.key, r.setting)]].iloc[0]
        rec = {"library": r.spec.library, "model": r.spec.label, "key": r.spec.key,
               "setting": r.setting, "valid_ndcg": r.valid_ndcg}
        for m in metrics:
            rec[m], rec[f"{m}_std"] = s[m], s[f"{m}_std"]
        rec["fit_s"] = float(np.median([x["fit_s"] for x in r.runs]))
        rec["n_seeds"] = len(r.runs)
        diffs = [x["recommenders_max_diff"] for x in r.runs if "recommenders_max_diff" in x]
        rec["recommenders_max_diff"] = max(diffs) if diffs else np.nan
        agree = [x["own_topk_agreement"] for x in r.runs if "own_topk_agreement" in x]
        rec["own_topk_agreement"] = float(np.mean(agree)) if agree else np.nan
        rec["config"] = config_label(r.config, r.spec.default)
        table.append(rec)
    frame = pd.DataFrame(table)
    head: dict = {}
    peers = frame[frame["library"] != "ours"]
    ours = frame[frame["library"] == "ours"]
    if len(peers):
        bp = peers.loc[peers["ndcg"].idxmax()]
        frame["ratio_to_best_peer"] = np.where(frame["library"] == "ours",
                                               frame["ndcg"] / bp["ndcg"], np.nan)
        head["best_peer"] = f"{bp['model']} ({bp['setting']})"
    if len(peers) and len(ours):
        bo = ours.loc[ours["valid_ndcg"].idxmax()]
        head["best_ours"] = f"{bo['model']} ({bo['setting']})"
        a = _per_user(rows, bo["key"], bo["setting"])
        b = _per_user(rows, bp["key"], bp["setting"])
        common = a.index.intersection(b.index)
        test = paired_test(a[common], b[common], method="t")
        frame["p_vs_best_peer"] = np.where(
            (frame["key"] == bo["key"]) & (frame["setting"] == bo["setting"]),
            test.p_value, np.nan)
        head["paired_t"] = str(test)
        head["ahead_on"] = {m: bool(bo[m] > peers[m].max()) for m in METRICS}
    return frame, head


def _per_user(rows: list[RowResult], key: str, setting: str) -> pd.Series:
    """Per-user nDCG@10 of one row, averaged over its seeds."""
    r = next(x for x in rows if x.spec.key == key and x.setting == setting)
    series = [pd.Series(x["per_user"]["ndcg"], index=x["per_user"]["user"]) for x in r.runs]
    return pd.concat(series, axis=1).mean(axis=1).sort_index()


def to_markdown(frame: pd.DataFrame, head: dict, versions: dict, args_line: str) -> str:
    """The table as Markdown, metrics as ``mean ± std``."""
    cols = ["library", "model", "setting", "valid nDCG", "nDCG@10", "P@10", "R@10", "MAP"]
    extra = [b for b in BEYOND if b in frame.columns]
    lines = [f"# Peers on ML-100K (Recommenders' split, k={K})", "",
             f"`{args_line}`; " + ", ".join(f"{k} {v}" for k, v in versions.items()), "",
             "| " + " | ".join(cols + extra + ["fit s", "seeds", "vs best peer", "config"])
             + " |", "|" + "---|" * (len(cols) + len(extra) + 4)]
    names = {"ndcg": "nDCG@10", "precision": "P@10", "recall": "R@10", "map": "MAP"}
    for _, r in frame.iterrows():
        cells = [r["library"], r["model"], r["setting"], f"{r['valid_ndcg']:.4f}"]
        cells += [format_mean_std(r[m], r[f"{m}_std"]) if r["n_seeds"] > 1
                  else f"{r[m]:.4f}" for m in names]            # one seed: no spread
        cells += [f"{r[b]:.4f}" for b in extra]
        ratio = r.get("ratio_to_best_peer", np.nan)
        cells += [f"{r['fit_s']:.1f}", str(r["n_seeds"]),
                  "" if pd.isna(ratio) else f"{ratio:.3f}", r["config"].replace("|", "/")]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    for k, v in head.items():
        lines.append(f"- {k}: {v}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default=None,
                    help=f"comma-separated keys (default: all): {', '.join(SPECS)}")
    ap.add_argument("--seeds", default="0,1,2", help="model seeds (default 0,1,2)")
    ap.add_argument("--budget", type=int, default=8,
                    help="validation configurations per model, the default first (8)")
    ap.add_argument("--quick", action="store_true",
                    help="smoke test: one seed, budget 2, few epochs (results not comparable)")
    ap.add_argument("--fresh", action="store_true", help="ignore the cache (still writes it)")
    ap.add_argument("--threads", type=int, default=1,
                    help="CPU threads of torch, BLAS, cornac and implicit (default 1)")
    ap.add_argument("--cache", default=str(CACHE_DIR))
    ap.add_argument("--out", default=None,
                    help="output prefix: writes PREFIX.csv and PREFIX.md (default "
                    "benchmarks/peers; with --quick, a file in the cache folder)")
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)

    keys = list(SPECS) if args.models is None else [m.strip() for m in args.models.split(",")]
    unknown = [k for k in keys if k not in SPECS]
    if unknown:
        ap.error(f"unknown model(s) {unknown}; choose from {', '.join(SPECS)}")
    try:
        seeds = [int(s) for s in args.seeds.split(",")]
    except ValueError:
        ap.error(f"--seeds expects comma-separated integers, got {args.seeds!r}")
    budget = args.budget
    if args.quick:
        seeds, budget = seeds[:1], min(budget, 2)
    if budget < 1 or args.threads < 1:
        ap.error("--budget and --threads must be at least 1")

    torch.set_num_threads(args.threads)
    from threadpoolctl import threadpool_limits
    threadpool_limits(args.threads)
    warnings.filterwarnings("ignore", module="cornac")
    versions = _versions()
    print("versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()))

    specs = []
    for key in keys:
        why = _missing(SPECS[key])
        if why:
            print(f"skipped {key}: {why}")
        else:
            specs.append(SPECS[key])
    if not specs:
        print("nothing to run")
        return 1

    from recsys_ref.data import load_movielens
    ml = load_movielens("ml-100k")
    split = Split.recommenders(ml, seed=42, valid_ratio=0.1)
    print(f"{split}; k={K}; seeds {seeds}; budget {budget}; threads {args.threads}"
          + ("; QUICK (not comparable)" if args.quick else ""))
    ctx = Context(split, ml, args.threads)
    rows = run(specs, ctx, seeds, budget, Cache(Path(args.cache), args.fresh),
               quick=args.quick, progress=not args.no_progress)
    frame, head = summarise(rows)

    pd.set_option("display.width", 250)
    pd.set_option("display.max_colwidth", 60)
    show = frame[["model", "setting", "valid_ndcg"] + METRICS + ["fit_s", "n_seeds"]
                 + [c for c in ("ratio_to_best_peer", "recommenders_max_diff",
                                "own_topk_agreement") if c in frame.columns]]
    print()
    print(show.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    diffs = frame["recommenders_max_diff"].dropna()
    if len(diffs):
        print(f"\nours vs Recommenders' python_evaluation on the peers' lists: max |diff| "
              f"{diffs.max():.2e} (<= {TOL:g})")
    for k, v in head.items():
        print(f"{k}: {v}")

    args_line = "python benchmarks/peers.py " + " ".join(sys.argv[1:] if argv is None
                                                         else argv)
    out = Path(args.out) if args.out else (
        Path(args.cache) / "quick" if args.quick else HERE / "peers")
    out.parent.mkdir(parents=True, exist_ok=True)
    csv = out.with_suffix(".csv")
    md = out.with_suffix(".md")
    atomic_write(csv, lambda fh: frame.to_csv(fh, index=False, float_format="%.6g"), mode="w")
    atomic_write(md, lambda fh: fh.write(to_markdown(frame, head, versions, args_line)),
                 mode="w")
    print(f"wrote {csv} and {md}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
