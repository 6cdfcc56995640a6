"""What ``benchmarks/peers.py`` runs: every model's documented (or chapter) parameters, its
random-search space, and the few settings that are fixed.

One :class:`Spec` per model. ``default`` is the "documented" row of a peer (its library's
benchmark notebook, example or class defaults; ``source`` says which, at the repository
commit read) and the "default" row of ours (the configuration its chapter selected on
validation). ``space`` maps a parameter to the values a random-search draw picks from, each
value equally likely; a value that is a ``dict`` sets several parameters at once (a loss and
the options that belong to it). The first configuration of every search is ``default``
itself, the other ``budget - 1`` are drawn with :func:`draw_configs`, so a tuned row can
only be at least as good as the default on validation. ``quick`` overrides a few parameters
(epochs, iterations) for ``--quick`` smoke runs; ``fixed`` is applied to every run and is
not tuned (CPU, silence).

Sources, read at these commits:

* Microsoft Recommenders, ``examples/06_benchmarks/movielens.ipynb`` (cell "params"),
  recommenders-team/recommenders@b02c95e2b98b961f9943ce561bbb03f8dff2f41f (2025-09-29):
  ``bivae_params``, ``bpr_params`` (their cornac BPR), ``sar_params``. Their
  ``prepare_training_cornac`` feeds cornac the (user, item, rating) triples, ratings as
  values; we do the same for the documented rows.
* cornac, ``examples/ease_movielens.py``, ``examples/recvae_example.py``,
  ``examples/wmf_example.py``, ``examples/lightgcn_example.py``,
  ``examples/ngcf_example.py``, PreferredAI/cornac@4db147def0c79c6b2ba5210457808d6041f0d0b3.
* implicit 0.7.3: the class defaults of ``AlternatingLeastSquares`` and
  ``BayesianPersonalizedRanking`` (benfred/implicit@8a95dbe's ``examples/movielens.py``
  also uses the defaults, with BM25-weighted input for ALS: ``"input": "bm25"`` is in the
  ALS search space).
* Ours: the chapters' parameter cells and ``benchmarks/part2_lightgcn_tuning.py``.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np

__all__ = ["Spec", "PEERS", "OURS", "SPECS", "LIGHTGCN_SELECTED", "draw_configs",
           "config_label"]


@dataclass(frozen=True)
class Spec:
    """One model of the comparison.

    Attributes:
        key: the name given to ``--models`` (``cornac-bivae``, ``lightgcn``).
        label: the table's name for it.
        library: ``"cornac"``, ``"implicit"``, ``"recommenders"`` or ``"ours"``.
        model: the class (cornac/implicit/recommenders) or the registry name of ours.
        default: the documented / chapter parameters.
        source: where ``default`` comes from.
        space: random-search space, ``{parameter: [values]}``.
        quick: overrides for ``--quick``.
        fixed: applied to every run, never tuned.
        deterministic: the fit does not depend on the seed; one seed is run.
        needs: an importable module the model needs (``dgl``, ``tensorflow``); the model
            is skipped, with the reason printed, when it is missing.
    """

    key: str
    label: str
    library: str
    model: str
    default: dict
    source: str
    space: dict = field(default_factory=dict)
    quick: dict = field(default_factory=dict)
    fixed: dict = field(default_factory=dict)
    deterministic: bool = False
    needs: tuple[str, ...] = ()

    @property
    def is_peer(self) -> bool:
        return self.library != "ours"


_NB = ("Recommenders examples/06_benchmarks/movielens.ipynb @b02c95e")
_CORNAC_EX = "cornac examples/{} @4db147d"

# input of the peers: "ratings" (the 1-5 stars as values, Recommenders' benchmark),
# "binary" (every interaction 1, what our models see) or "bm25" (implicit's example)
_INPUT = ["ratings", "binary"]

PEERS: list[Spec] = [
    Spec("cornac-bivae", "BiVAE (cornac)", "cornac", "BiVAECF",
         dict(k=100, encoder_structure=[200], act_fn="tanh", likelihood="pois",
              n_epochs=500, batch_size=1024, learning_rate=0.001, input="ratings"),
         _NB + ": bivae_params (use_gpu=True there; CPU here)",
         space=dict(k=[20, 50, 100, 200], encoder_structure=[[100], [200], [400]],
                    act_fn=["tanh", "relu"], likelihood=["pois", "bern", "gaus"],
                    n_epochs=[100, 200, 500], batch_size=[128, 512, 1024],
                    learning_rate=[5e-4, 1e-3, 3e-3], input=_INPUT),
         quick=dict(n_epochs=3), fixed=dict(use_gpu=False, verbose=False)),
    Spec("cornac-bpr", "BPR (cornac)", "cornac", "BPR",
         dict(k=200, max_iter=200, learning_rate=0.01, lambda_reg=1e-3, input="ratings"),
         _NB + ": bpr_params",
         space=dict(k=[32, 64, 128, 200], max_iter=[100, 200, 400],
                    learning_rate=[5e-3, 1e-2, 5e-2], lambda_reg=[1e-4, 1e-3, 1e-2],
                    use_bias=[True, False], input=_INPUT),
         quick=dict(max_iter=3), fixed=dict(verbose=False)),
    Spec("cornac-ease", "EASE (cornac)", "cornac", "EASE",
         dict(lamb=500, posB=True, input="ratings"),
         _CORNAC_EX.format("ease_movielens.py") + " (lamb=500, posB=True; the defaults)",
         space=dict(lamb=[50, 100, 200, 300, 500, 1000, 2000, 5000], posB=[True, False],
                    input=_INPUT),
         fixed=dict(verbose=False), deterministic=True),
    Spec("cornac-recvae", "RecVAE (cornac)", "cornac", "RecVAE",
         dict(hidden_dim=600, latent_dim=200, batch_size=500, beta=None, gamma=0.005,
              lr=5e-4, n_epochs=50, n_enc_epochs=3, n_dec_epochs=1, input="ratings"),
         _CORNAC_EX.format("recvae_example.py") + " (RecVAE() with its defaults)",
         space=dict(hidden_dim=[300, 600], latent_dim=[100, 200], batch_size=[250, 500],
                    gamma=[1e-3, 5e-3, 1e-2], lr=[5e-4, 1e-3], n_epochs=[25, 50, 100],
                    input=_INPUT),
         quick=dict(n_epochs=1), fixed=dict(use_gpu=False, verbose=False)),
    Spec("cornac-wmf", "WMF (cornac)", "cornac", "WMF",
         dict(k=50, max_iter=50, learning_rate=0.001, lambda_u=0.01, lambda_v=0.01,
              input="ratings"),
         _CORNAC_EX.format("wmf_example.py"),
         space=dict(k=[50, 100, 200], max_iter=[50, 100, 200], a=[1.0, 5.0],
                    b=[0.01, 0.1], learning_rate=[1e-3, 3e-3], input=_INPUT),
         quick=dict(max_iter=2), fixed=dict(verbose=False), needs=("tensorflow",)),
    Spec("cornac-lightgcn", "LightGCN (cornac)", "cornac", "LightGCN",
         dict(num_epochs=1000, num_layers=3, batch_size=1024, learning_rate=0.001,
              lambda_reg=1e-4, early_stopping={"min_delta": 1e-4, "patience": 50},
              input="ratings"),
         _CORNAC_EX.format("lightgcn_example.py"),
         space=dict(num_layers=[1, 2, 3], learning_rate=[1e-3, 5e-3],
                    lambda_reg=[1e-5, 1e-4, 1e-3]),
         quick=dict(num_epochs=2), fixed=dict(verbose=False), needs=("dgl",)),
    Spec("cornac-ngcf", "NGCF (cornac)", "cornac", "NGCF",
         dict(num_epochs=1000, emb_size=64, layer_sizes=[64, 64, 64],
              dropout_rates=[0.1, 0.1, 0.1], batch_size=1024, learning_rate=0.001,
              lambda_reg=1e-5, early_stopping={"min_delta": 1e-4, "patience": 50},
              input="ratings"),
         _CORNAC_EX.format("ngcf_example.py"),
         space=dict(learning_rate=[1e-3, 5e-3], lambda_reg=[1e-5, 1e-4, 1e-3]),
         quick=dict(num_epochs=2), fixed=dict(verbose=False), needs=("dgl",)),
    Spec("implicit-als", "ALS (implicit)", "implicit", "AlternatingLeastSquares",
         dict(factors=100, regularization=0.01, alpha=1.0, iterations=15, input="binary"),
         "implicit 0.7.3 AlternatingLeastSquares() defaults",
         space=dict(factors=[32, 64, 128, 200], regularization=[0.01, 0.1, 1.0, 10.0],
                    alpha=[1.0, 5.0, 10.0, 20.0, 40.0], iterations=[15, 30, 50],
                    input=["binary", "ratings", "bm25"]),
         quick=dict(iterations=2)),
    Spec("implicit-bpr", "BPR (implicit)", "implicit", "BayesianPersonalizedRanking",
         dict(factors=100, learning_rate=0.01, regularization=0.01, iterations=100,
              input="binary"),
         "implicit 0.7.3 BayesianPersonalizedRanking() defaults",
         space=dict(factors=[32, 64, 128, 200], learning_rate=[5e-3, 1e-2, 5e-2, 0.1],
                    regularization=[1e-4, 1e-3, 1e-2], iterations=[100, 200, 400]),
         quick=dict(iterations=3)),
    Spec("sar", "SAR (Recommenders)", "recommenders", "SAR",
         dict(similarity_type="jaccard", time_decay_coefficient=30, time_now=None,
              timedecay_formula=True, input="ratings"),
         _NB + ": sar_params",
         space=dict(similarity_type=["jaccard", "cosine", "lift", "inclusion index",
                                     "mutual information", "lexicographers mutual "
                                     "information", "cooccurrence"],
                    time_decay_coefficient=[7, 30, 90, 365, 3650],
                    timedecay_formula=[True, False], input=_INPUT),
         deterministic=True),
]

#: chapter 6's cosine-softmax LightGCN as selected on validation by
#: ``benchmarks/part2_lightgcn_tuning.py`` (its BASE with the winning row
#: ``batch_size=1024, lr=5e-3, embed_dim=128``; refit for the selected epochs; test
#: nDCG@10 .4841 in benchmarks/README.md)
LIGHTGCN_SELECTED = dict(embed_dim=128, num_layers=3, init_std=0.1, loss="softmax",
                         num_neg=None, normalize=True, temperature=0.2, batch_size=1024,
                         lr=5e-3, reg=1e-4, num_epochs=80, eval_every=5, patience=4)

_SOFTMAX = {"loss": "softmax", "num_neg": None}
_QUICK_NN = dict(num_epochs=2, eval_every=1, patience=1)

OURS: list[Spec] = [
    Spec("popularity", "Popularity", "ours", "popularity", {}, "chapter 1",
         deterministic=True),
    Spec("itemknn", "item-kNN", "ours", "itemknn", dict(k=100, shrinkage=10.0),
         "chapter 2 (validation-selected k and shrinkage)",
         space=dict(k=[25, 50, 100, 200, 400], shrinkage=[0.0, 10.0, 50.0, 100.0]),
         deterministic=True),
    Spec("userknn", "user-kNN", "ours", "userknn", dict(k=50, shrinkage=0.0),
         "chapter 2 (validation-selected k and shrinkage)",
         space=dict(k=[25, 50, 100, 200, 400], shrinkage=[0.0, 10.0, 50.0, 100.0]),
         deterministic=True),
    Spec("svd", "SVD of R~", "ours", "svd", dict(embed_dim=48, matrix="normalized"),
         "chapter 4 (validation-selected rank and matrix)",
         space=dict(embed_dim=[8, 16, 24, 32, 48, 64, 128], matrix=["binary", "normalized"])),
    Spec("bpr", "BPR-MF", "ours", "bpr",
         dict(embed_dim=64, lr=5e-3, reg=1e-2, num_epochs=200, batch_size=8192, num_neg=4,
              eval_every=10, patience=3),
         "chapter 4 (lambda selected on validation; early stopping, then refit)",
         space=dict(embed_dim=[32, 64, 128, 256], lr=[2e-3, 5e-3, 1e-2],
                    reg=[1e-3, 3e-3, 1e-2, 3e-2], num_neg=[1, 4, 8],
                    batch_size=[2048, 8192]),
         quick=_QUICK_NN),
    Spec("ease", "EASE", "ours", "ease", {},
         "EASE() defaults (l2=400, chosen on validation; Steck 2019's model)",
         space=dict(l2=[50.0, 100.0, 200.0, 300.0, 500.0, 1000.0, 2000.0, 5000.0],
                    nonnegative=[False, True]),
         deterministic=True),
    Spec("wrmf", "WRMF (implicit ALS)", "ours", "wrmf", {}, "WRMF() defaults",
         space=dict(embed_dim=[32, 64, 128, 256], alpha=[1.0, 5.0, 10.0, 15.0, 20.0, 40.0],
                    l2=[1.0, 10.0, 25.0, 50.0, 75.0, 100.0, 200.0],
                    num_iters=[10, 15, 30]),
         quick=dict(num_iters=2)),
    Spec("gfcf", "GF-CF", "ours", "gfcf", {}, "GFCF() defaults (alpha=0.3, k=64, chosen on validation)",
         space=dict(alpha=[0.0, 0.1, 0.2, 0.3, 0.5, 1.0],
                    num_components=[32, 48, 64, 96, 128, 256, 512])),
    Spec("lightgcn", "LightGCN (cosine softmax)", "ours", "lightgcn", LIGHTGCN_SELECTED,
         "chapter 6 / part2_lightgcn_tuning.py validation selection (d=128, batch 1024, "
         "lr 5e-3, tau 0.2), early stopping then refit",
         space=dict(embed_dim=[64, 128, 256], num_layers=[1, 2, 3, 4],
                    temperature=[0.1, 0.15, 0.2, 0.25, 0.3], lr=[2e-3, 5e-3, 1e-2, 2e-2],
                    batch_size=[1024, 2048, 4096], reg=[1e-5, 1e-4, 1e-3],
                    normalize=[True, False]),
         quick=_QUICK_NN),
    Spec("ngcf", "NGCF (softmax)", "ours", "ngcf",
         dict(num_layers=3, embed_dim=64, lr=5e-3, reg=1e-4, dropout=0.1, batch_size=2048,
              num_epochs=100, eval_every=5, patience=4, temperature=1.0, **_SOFTMAX),
         "chapter 6's softmax NGCF (its epoch cap 40 raised to 100; early stopping)",
         space=dict(num_layers=[1, 2, 3], temperature=[0.2, 0.5, 1.0],
                    lr=[1e-3, 5e-3, 1e-2], dropout=[0.0, 0.1, 0.3], reg=[1e-5, 1e-4, 1e-3],
                    batch_size=[1024, 2048, 4096]),
         quick=_QUICK_NN),
    Spec("gat", "GAT recommender (softmax)", "ours", "gat",
         dict(num_layers=2, attention="dot", heads=1, embed_dim=64, reg=1e-4,
              temperature=1.0, pretrain_epochs=100, pretrain_lr=5e-3,
              pretrain_batch_size=2048, num_epochs=60, lr=5e-4, batch_size=16384,
              att_init_std=1.0, eval_every=2, patience=3, **_SOFTMAX),
         "chapter 8 (phase-1 epoch cap 60 raised to 100; early stopping per phase)",
         space=dict(num_layers=[1, 2, 3], temperature=[0.2, 0.5, 1.0],
                    pretrain_lr=[2e-3, 5e-3, 1e-2], lr=[2e-4, 5e-4, 1e-3]),
         quick=dict(pretrain_epochs=2, num_epochs=1, eval_every=1, patience=1)),
    Spec("graphsage", "GraphSAGE", "ours", "graphsage",
         dict(embed_dim=64, num_layers=2, fanouts=[10, 5], features="movielens", lr=1e-3,
              num_epochs=150, batch_size=1024, eval_every=2, patience=5),
         "chapter 7 (epoch cap 150, early stopping on validation)",
         space=dict(lr=[1e-3, 3e-3, 1e-2], embed_dim=[64, 128],
                    fanouts=[[10, 5], [20, 10], [25, 10]], dropout=[0.0, 0.1],
                    aggr=["mean", "pool"], num_neg=[1, 4]),
         quick=_QUICK_NN),
    Spec("lightgcn-text", "LightGCN + text (sum)", "ours", "lightgcn-text",
         dict(LIGHTGCN_SELECTED, fusion="sum", text_weight=1.0),
         "chapter 9's sum fusion on the selected cosine-softmax LightGCN",
         space=dict(fusion=["sum", "concat", "gate", "feature"],
                    text_weight=[0.5, 1.0, 2.0], temperature=[0.15, 0.2, 0.25],
                    embed_dim=[64, 128]),
         quick=_QUICK_NN, needs=("transformers",)),
]

SPECS: dict[str, Spec] = {s.key: s for s in PEERS + OURS}


def config_label(config: dict, default: dict) -> str:
    """The parameters of ``config`` that differ from ``default``, as ``k=v, ...``."""
    diff = {k: v for k, v in config.items() if default.get(k, object()) != v}
    return ", ".join(f"{k}={v}" for k, v in diff.items()) or "(the default)"


def _flatten(params: dict) -> dict:
    """Merge dict-valued draws (several parameters chosen together) into the config."""
    out: dict = {}
    for key, value in params.items():
        if isinstance(value, dict):
            out.update(value)
        else:
            out[key] = value
    return out


def draw_configs(spec: Spec, budget: int, seed: int = 0) -> list[dict]:
    """``budget`` configurations: ``spec.default`` first, then random draws.

    Each draw picks every parameter of ``spec.space`` uniformly among its values
    (``numpy.random.default_rng`` seeded with ``seed`` and the model's key, so a model's
    search does not change when another model is added) and overrides ``spec.default``
    with them. Duplicates are redrawn; a space with fewer distinct configurations than
    ``budget`` yields all it has.
    """
    if budget < 1:
        raise ValueError(f"the budget must be at least 1 configuration, got {budget}")
    configs = [dict(spec.default)]
    if not spec.space:
        return configs
    salt = int.from_bytes(spec.key.encode()[:8].ljust(8, b"\0"), "little")
    rng = np.random.default_rng([seed, salt])
    seen = {json.dumps(configs[0], sort_keys=True, default=str)}
    tries = 0
    while len(configs) < budget and tries < 100 * budget:
        tries += 1
        drawn = {k: values[int(rng.integers(len(values)))]
                 for k, values in spec.space.items()}
        config = {**spec.default, **_flatten(drawn)}
        key = json.dumps(config, sort_keys=True, default=str)
        if key not in seen:
            seen.add(key)
            configs.append(config)
    return configs
