"""What else was tried to lift LightGCN on MovieLens-100K, and how much one
seed moves the result.

    python benchmarks/part2_lightgcn_variants.py [--part variants|seeds|all] [--threads 1]

Same protocol and splits as ``part2_lightgcn_tuning.py`` (Recommenders' stratified 75/25
split by item, seed 42; ``train``/``valid`` = 90/10 of each user's training rows; k = 10).
The base is that script's selected configuration: cosine-softmax LightGCN, d=64, 3 layers,
τ=0.2, batch 4096, lr 2e-2, reg 1e-4, full-catalogue softmax.

``--part variants`` (validation only; the test split is not read): each variant changes
one thing of the base and trains on ``train`` with the tuning script's early stopping
(valid nDCG@10 every 5 epochs, at most 80 epochs, patience 4), seed 42, so every row sees
the same batches and the differences are paired:

- **layer weights** :math:`\\mathbf{E} = \\sum_l \\alpha_l \\tilde A^l \\mathbf{E}^{(0)}`
  (LightGCN: :math:`\\alpha_l = 1/(L+1)`; here without the ego layer, rising, falling);
- **normalisation exponent** :math:`D^{-r} A D^{-(1-r)}` (LightGCN: :math:`r = 1/2`);
- **popularity**: a learned item bias :math:`s_{ui} = \\cos/\\tau + b_i`, and a prior
  :math:`+\\beta \\log(1 + n_i)` added to the base model's scores after training;
- **averaging**: an exponential moving average of the layer-0 embeddings (decay 0.95 per
  step), and the mean score of the base trained with seeds 42, 1, 2, 3;
- **SimGCL** (Yu et al., SIGIR 2022): an InfoNCE term between two noise-perturbed
  propagations (:math:`\\lambda` 0.1 and 0.02, :math:`\\epsilon` 0.1, temperature 0.2);
- **capacity and schedule**: d=128, 4 layers, a cosine learning-rate decay (lr 3e-2).

``--part seeds``: the base with seeds 42, 1, 2, 3, 4. For each, the validation score
(early stopped as above) and the refit on ``train_full`` for the tuning script's selected
65 epochs, scored on ``test``. Measured *after* the selection to show the spread of the
reported number; nothing here chooses anything.

Deterministic (seeded, ``--threads`` CPU threads, default 1). About 11 and 7 minutes on one
core of the development machine; run the two parts in two processes to halve it.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parent)]
from recsys_ref.protocol.evaluate import evaluate_ranking  # noqa: E402
from recsys_ref.graph import bipartite_edge_index, degree, normalized_adjacency  # noqa: E402
from recsys_ref.graph.sparse import spmm  # noqa: E402
from recsys_ref.models.graph.lightgcn import LightGCN, LightGCNModule  # noqa: E402
from recsys_ref.train.callbacks import EMA, LRSchedule  # noqa: E402
from part2_lightgcn_tuning import SEED, TOP_K, load_splits  # noqa: E402  (this folder)

REFIT_EPOCHS = 65       # part2_lightgcn_tuning.py's selection
METRICS = ["ndcg", "precision", "recall", "map"]
BASE = dict(embed_dim=64, num_layers=3, init_std=0.1, loss="softmax", num_neg=None,
            normalize=True, temperature=0.2, batch_size=4096, lr=2e-2, reg=1e-4)
STOPPING = dict(num_epochs=80, eval_every=5, patience=4)


class WeightedLayerModule(LightGCNModule):
    r"""``LightGCNModule`` whose propagation weighs layer :math:`l` by :math:`\alpha_l`."""

    def __init__(self, alpha: torch.Tensor, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.alpha = alpha

    def propagate(self, x: torch.Tensor, adj=None, adj_t=None) -> torch.Tensor:
        adj = self.norm_adj if adj is None else adj
        h, out = x, self.alpha[0] * x
        for a in self.alpha[1:]:
            h = spmm(adj, h)
            out = out + a * h
        return out


class WeightedLayers(LightGCN):
    r""":math:`\mathbf{E} = \sum_l \alpha_l \tilde A^l \mathbf{E}^{(0)}` with the given
    weights (normalised to sum 1; ``len(alpha) = L + 1``)."""

    def __init__(self, alpha, **kwargs):
        super().__init__(**{**kwargs, "num_layers": len(alpha) - 1})
        self.alpha = torch.tensor(alpha, dtype=torch.float32) / sum(alpha)

    def build(self) -> nn.Module:
        n = self.num_users + self.num_items
        adj = normalized_adjacency(bipartite_edge_index(self.train_df, self.num_users,
                                                        self.num_items), n)
        return WeightedLayerModule(self.alpha, self.num_users, self.num_items, self.embed_dim,
                                   self.num_layers, adj, init_std=self.init_std, symmetric=True)


class NormExponent(LightGCN):
    r"""Propagation with :math:`D^{-r} A D^{-(1-r)}` (``r=0.5`` is LightGCN's)."""

    def __init__(self, r: float, **kwargs):
        super().__init__(**kwargs)
        self.r = r

    def build(self) -> nn.Module:
        n = self.num_users + self.num_items
        ei = bipartite_edge_index(self.train_df, self.num_users, self.num_items)
        deg = degree(ei, n)
        values = deg[ei[0]].pow(-self.r) * deg[ei[1]].pow(self.r - 1)
        adj = torch.sparse_coo_tensor(ei, values, (n, n), check_invariants=True).coalesce()
        return LightGCNModule(self.num_users, self.num_items, self.embed_dim, self.num_layers,
                              adj, init_std=self.init_std, symmetric=None)


class ItemBias(LightGCN):
    r""":math:`s_{ui} = \cos(\mathbf{e}_u, \mathbf{e}_i)/\tau + b_i` with a learned
    :math:`b` (zero-initialised, not regularised)."""

    def build(self) -> nn.Module:
        module = super().build()
        module.item_bias = nn.Parameter(torch.zeros(self.num_items))
        return module

    def _cosine_batch_loss(self, user_emb, item_emb, users, pos, neg):
        uniq, inv = torch.unique(users, return_inverse=True)
        u = F.normalize(user_emb.index_select(0, uniq), dim=-1)
        logits = u @ F.normalize(item_emb, dim=-1).T / self.temperature + self.module.item_bias
        loss = (torch.logsumexp(logits, 1).index_select(0, inv) - logits[inv, pos]).mean()
        return self._add_reg(loss, users, pos, None)

    def score(self, users):
        return super().score(users) + self.module.item_bias.detach()


def cosine_lr(train: pd.DataFrame, batch_size: int, num_epochs: int) -> LRSchedule:
    """Learning rate decayed from ``lr`` to 0 over ``num_epochs`` (cosine, per step)."""
    steps = num_epochs * -(-len(train) // batch_size)
    return LRSchedule(lambda opt, trainer: torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps))


class SimGCL(LightGCN):
    r"""Cosine-softmax LightGCN plus SimGCL's contrastive term: two propagations with
    :math:`\mathbf{E}^{(l+1)} = \tilde A \mathbf{E}^{(l)} + \epsilon\,
    \mathrm{sign}(\cdot) \odot \hat\Delta` (:math:`\hat\Delta` uniform, unit rows),
    layers 1..L averaged, InfoNCE between the two views of the batch's users and of its
    positive items, weight :math:`\lambda`."""

    def __init__(self, lam: float, eps: float = 0.1, cl_temperature: float = 0.2, **kwargs):
        super().__init__(**kwargs)
        self.lam, self.eps, self.cl_temperature = lam, eps, cl_temperature

    def _noisy_view(self) -> torch.Tensor:
        adj, h = self.module.norm_adj, self.module.embedding.weight
        out = 0
        for _ in range(self.num_layers):
            h = spmm(adj, h)
            h = h + self.eps * torch.sign(h) * F.normalize(torch.rand_like(h), dim=-1)
            out = out + h
        return out / self.num_layers

    def _cosine_batch_loss(self, user_emb, item_emb, users, pos, neg):
        loss = super()._cosine_batch_loss(user_emb, item_emb, users, pos, neg)
        z1, z2 = self._noisy_view(), self._noisy_view()
        for rows in (torch.unique(users), torch.unique(pos) + self.num_users):
            a, b = F.normalize(z1[rows], dim=-1), F.normalize(z2[rows], dim=-1)
            logits = a @ b.T / self.cl_temperature
            loss = loss + self.lam * F.cross_entropy(logits, torch.arange(len(rows)))
        return loss


def _fit_valid(model, data):
    ml, train, valid = data["ml"], data["train"], data["valid"]
    t0 = time.perf_counter()
    model.fit(train, ml.num_users, ml.num_items, valid=valid)
    return model, time.perf_counter() - t0


def _valid_metrics(score, data) -> dict:
    ml = data["ml"]
    return evaluate_ranking(score, data["valid"], ml.num_users, ml.num_items, TOP_K,
                            exclude=[data["train"]], metrics=METRICS)


def part_variants(data, threads: int) -> pd.DataFrame:
    common = dict(seed=SEED, num_threads=threads, **STOPPING)
    rows = [
        ("base (LightGCN, α_l = 1/4, r = 1/2)", LightGCN, {}),
        ("layer weights 0, 1, 1, 1 (no ego layer)", WeightedLayers, dict(alpha=[0, 1, 1, 1])),
        ("layer weights 1, 2, 3, 4", WeightedLayers, dict(alpha=[1, 2, 3, 4])),
        ("layer weights 4, 3, 2, 1", WeightedLayers, dict(alpha=[4, 3, 2, 1])),
        ("normalisation r = 0.4", NormExponent, dict(r=0.4)),
        ("normalisation r = 0.6", NormExponent, dict(r=0.6)),
        ("learned item bias b_i", ItemBias, {}),
        ("EMA of the embeddings, decay 0.95", LightGCN,
         dict(callbacks=[EMA(0.95, only=("embedding.weight",))])),
        ("SimGCL, λ = 0.1", SimGCL, dict(lam=0.1)),
        ("SimGCL, λ = 0.02", SimGCL, dict(lam=0.02)),
        ("d = 128", LightGCN, dict(embed_dim=128)),
        ("4 layers", LightGCN, dict(num_layers=4)),
        ("cosine lr decay from 3e-2", LightGCN, dict(lr=3e-2, patience=None, callbacks=[
            cosine_lr(data["train"], BASE["batch_size"], STOPPING["num_epochs"])])),
    ]
    table, base_model = [], None
    for label, cls, change in rows:
        model, seconds = _fit_valid(cls(**{**BASE, **common, **change}), data)
        if base_model is None:
            base_model = model
        res = _valid_metrics(model.score, data)
        table.append({"variant": label, **res, "epochs": model.history.best_epoch + 1,
                      "fit_s": seconds})
        print(f"  {label}: valid nDCG {res['ndcg']:.4f}, {seconds:.0f} s", flush=True)

    counts = torch.as_tensor(np.bincount(data["train"]["item"].to_numpy(),
                                         minlength=data["ml"].num_items), dtype=torch.float32)
    for beta in (0.1, 0.2, 0.5):
        res = _valid_metrics(lambda u, b=beta: base_model.score(u) + b * torch.log1p(counts), data)
        table.append({"variant": f"base + {beta} log(1 + n_i) (after training)", **res,
                      "epochs": base_model.history.best_epoch + 1, "fit_s": 0.0})

    members, ml = [base_model], data["ml"]
    for seed in (1, 2, 3):        # the base's number of epochs, no validation
        model = LightGCN(**BASE, num_epochs=base_model.history.best_epoch + 1, patience=None,
                         seed=seed, num_threads=threads)
        members.append(model.fit(data["train"], ml.num_users, ml.num_items))
    res = _valid_metrics(lambda u: sum(m.score(u) for m in members) / len(members), data)
    table.append({"variant": "mean score of seeds 42, 1, 2, 3", **res,
                  "epochs": base_model.history.best_epoch + 1, "fit_s": float("nan")})
    return pd.DataFrame(table)


def part_seeds(data, threads: int) -> pd.DataFrame:
    ml, train_full, test = data["ml"], data["train_full"], data["test"]
    table = []
    for seed in (42, 1, 2, 3, 4):
        model, _ = _fit_valid(LightGCN(**BASE, **STOPPING, seed=seed, num_threads=threads), data)
        valid = _valid_metrics(model.score, data)["ndcg"]
        refit = LightGCN(**BASE, num_epochs=REFIT_EPOCHS, patience=None, seed=seed,
                         num_threads=threads)
        refit.fit(train_full, ml.num_users, ml.num_items)
        res = evaluate_ranking(refit.score, test, ml.num_users, ml.num_items, TOP_K,
                               exclude=[train_full], metrics=METRICS)
        table.append({"seed": seed, "valid ndcg": valid,
                      "valid epochs": str(model.history.best_epoch + 1), **res})
        print(f"  seed {seed}: valid nDCG {valid:.4f}; test {res}", flush=True)
    frame = pd.DataFrame(table)
    summary = frame[METRICS + ["valid ndcg"]].agg(["mean", "std"])
    return pd.concat([frame.set_index("seed"), summary]).fillna("")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--part", choices=["variants", "seeds", "all"], default="all")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    ml, train_full, test, train, valid = load_splits()
    data = dict(ml=ml, train_full=train_full, test=test, train=train, valid=valid)
    pd.set_option("display.width", 200)
    fmt = lambda v: f"{v:.4f}"  # noqa: E731
    if args.part in ("variants", "all"):
        frame = part_variants(data, args.threads)
        print(f"\nVariants of the selected LightGCN (train -> valid, k={TOP_K}, seed {SEED})")
        print(frame.to_string(index=False, float_format=fmt))
    if args.part in ("seeds", "all"):
        frame = part_seeds(data, args.threads)
        print(f"\nSeed spread of the selected LightGCN: valid (train -> valid, early stopped) "
              f"and test (refit on train_full, {REFIT_EPOCHS} epochs), k={TOP_K}")
        print(frame.to_string(float_format=fmt))
    return 0


if __name__ == "__main__":
    sys.exit(main())
