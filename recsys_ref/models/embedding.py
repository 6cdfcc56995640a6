r"""Base class for recommenders that score by a dot product of learned representations
and train on mini-batches of observed ``(user, item)`` pairs with sampled negatives.

A subclass only says how representations are computed:

.. code-block:: python

    class MyModel(EmbeddingRecommender):
        name = "mymodel"
        def build(self) -> torch.nn.Module:      # called in fit(), after self.train_df is set
            return MyModule(self.num_users, self.num_items, self.embed_dim)

where the module's ``forward()`` returns ``(user_emb (U, d), item_emb (I, d))`` for the
whole graph (GNNs propagate here) and ``reg_loss(users, pos, neg)`` (an L2 term on the
batch's free parameters, e.g. :func:`recsys_ref.nn.fused_losses.rows_l2`). Scores are
:math:`\hat y_{ui} = \mathbf{e}_u^\top \mathbf{e}_i`; the loss is BPR or sampled softmax
(:mod:`recsys_ref.nn.losses`) plus ``reg`` times ``reg_loss``.

Training is the :class:`~recsys_ref.train.trainer.Trainer`'s; this class supplies the
model contract: :meth:`~EmbeddingRecommender.setup` (build the module, the negative
sampler and the shuffling generator), :meth:`~EmbeddingRecommender.configure_optimizer`
(Adam, fused on CPU and CUDA), :meth:`~EmbeddingRecommender.epoch_data` (the epoch's
shuffled pairs and all their negatives, drawn in one vectorised call) and
:meth:`~EmbeddingRecommender.calculate_loss`. Validation (``valid`` given to ``fit``)
measures ``valid_metric@valid_k`` every ``eval_every`` epochs, stops after ``patience``
evaluations without improvement and restores the best weights.

Used in: ``chapters/04_matrix_factorisation`` (BPR-MF), ``06_graph_convolution``,
``07_graphsage_sampling``, ``08_graph_attention``, ``09_language_models``.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from recsys_ref.protocol.evaluate import evaluate_ranking
from recsys_ref.nn.losses import NegativeSampler, bpr_loss, softmax_loss
from recsys_ref.train.runtime import get_device
from recsys_ref.train.trainer import History, Trainer, TrainerConfig
from recsys_ref.models.base import Recommender

__all__ = ["EmbeddingRecommender", "DotProductScores", "ranking_validator"]


def ranking_validator(model, train: pd.DataFrame, valid: pd.DataFrame | None,
                      metric: str = "ndcg", k: int = 10,
                      before: Callable[[], None] | None = None,
                      mask_seen: bool = True) -> Callable[[], float] | None:
    """``evaluate()`` for the :class:`~recsys_ref.train.trainer.Trainer`: ``metric@k`` of
    ``model.score`` on ``valid`` with the training pairs masked (not with
    ``mask_seen=False``; ``None`` when ``valid`` is missing or empty). ``before()`` runs
    first (e.g. to drop cached embeddings)."""
    if valid is None or len(valid) == 0:
        return None

    def evaluate() -> float:
        if before is not None:
            before()
        res = evaluate_ranking(model.score, valid, model.num_users, model.num_items, k,
                               exclude=[train] if mask_seen else [], metrics=[metric])
        return res[metric]

    return evaluate


class DotProductScores:
    """``score(users)`` as :math:`\\mathbf{e}_u^\\top \\mathbf{e}_i` from the model's
    ``embeddings() -> (user_emb (U, d), item_emb (I, d))``: ``(len(users), I)``."""

    def score(self, users: torch.Tensor) -> torch.Tensor:
        users = self._check_users(users)
        user_emb, item_emb = self.embeddings()
        return user_emb[users.to(user_emb.device)] @ item_emb.T


class EmbeddingRecommender(DotProductScores, Recommender):
    """Mini-batch pairwise/softmax training of a representation model.

    Args:
        embed_dim: representation size :math:`d`.
        lr: Adam learning rate.
        reg: weight of the module's ``reg_loss`` (L2 on the batch's embeddings).
        num_epochs: maximum epochs.
        batch_size: positive pairs per step.
        steps_per_epoch: at most this many steps per epoch (default ``None``: every pair
            once); see :class:`~recsys_ref.train.trainer.TrainerConfig` for why a large
            graph wants it.
        num_neg: sampled negatives per positive.
        loss: ``"bpr"`` or ``"softmax"`` (``num_neg=None`` means the full catalogue).
        temperature: softmax temperature.
        eval_every, patience, valid_metric, valid_k: early stopping on ``valid``.
        device: ``None`` picks CUDA when available.
        seed: seeds initialisation, shuffling and negative sampling.
        progress: show a progress bar.
        num_threads: CPU threads while fitting (default ``None``: PyTorch's setting).
        callbacks: extra :mod:`recsys_ref.train.callbacks` for the trainer (EMA, schedules).
    """

    name = "embedding"
    uses_validation = True
    #: training options that differ from the base's for this model: the configuration its
    #: chapter selected (RecBole keeps these in one YAML file per model)
    defaults: dict = {}

    def __init__(self, embed_dim: int = 64, lr: float = 1e-3, reg: float = 1e-4,
                 num_epochs: int = 100, batch_size: int = 2048, num_neg: int | None = 1,
                 loss: str = "bpr", temperature: float = 1.0, eval_every: int = 5,
                 patience: int | None = 5, valid_metric: str = "ndcg", valid_k: int = 10,
                 device: str | None = None, seed: int = 0, progress: bool = False,
                 num_threads: int | None = None, callbacks: Sequence = (),
                 steps_per_epoch: int | None = None):
        if embed_dim < 1 or batch_size < 1 or num_epochs < 1:
            raise ValueError("embed_dim, batch_size and num_epochs must be positive")
        if loss not in ("bpr", "softmax"):
            raise ValueError(f"loss must be 'bpr' or 'softmax', got {loss!r}")
        if loss == "bpr" and num_neg is None:
            raise ValueError("BPR needs sampled negatives: set num_neg >= 1")
        if num_threads is not None and num_threads < 1:
            raise ValueError(f"num_threads must be >= 1 or None, got {num_threads}")
        self.embed_dim, self.lr, self.reg = embed_dim, lr, reg
        self.num_epochs, self.batch_size, self.num_neg = num_epochs, batch_size, num_neg
        self.loss, self.temperature = loss, temperature
        self.eval_every, self.patience = eval_every, patience
        self.valid_metric, self.valid_k = valid_metric, valid_k
        self.device = get_device(device)
        self.seed, self.progress, self.num_threads = seed, progress, num_threads
        self.callbacks = list(callbacks)
        self.steps_per_epoch = steps_per_epoch
        self.module: torch.nn.Module | None = None
        self.history: History | None = None
        self.epoch_seconds: float | None = None
        self._cache: tuple[torch.Tensor, torch.Tensor] | None = None

    # -- to override -----------------------------------------------------------------
    def build(self) -> torch.nn.Module:  # pragma: no cover - abstract
        raise NotImplementedError

    # -- save / load (models.base) ------------------------------------------------------
    #: what fitting leaves behind that scoring does not need (samplers, generators, caches)
    _transient = ("module", "history", "train_df", "_cache", "_sampler", "_pairs", "_gen",
                  "_work", "callbacks")
    #: training-time objects, not hyper-parameters (not saved, not in ``repr``)
    _data_params = ("callbacks",)

    def _get_state(self) -> dict:
        """The module's weights and the fitted sizes and matrix; the training frame is
        rebuilt from the matrix on load (``build`` needs the graph)."""
        state = {k: v for k, v in super()._get_state().items() if k not in self._transient}
        state["module_state"] = self.module.state_dict()
        return state

    def _set_state(self, state: dict) -> None:
        weights = state.pop("module_state")
        super()._set_state(state)
        coo = self.train_matrix.tocoo()
        self.train_df = pd.DataFrame({"user": coo.row.astype(np.int64),
                                      "item": coo.col.astype(np.int64)})
        self.module = self.build().to(self.device)
        self.module.load_state_dict(weights)
        self.module.eval()
        self.history, self._cache, self.callbacks = None, None, []

    # -- the trainer's model contract --------------------------------------------------
    def trainer_config(self) -> TrainerConfig:
        """The :class:`~recsys_ref.train.trainer.TrainerConfig` of this model's settings."""
        return TrainerConfig(num_epochs=self.num_epochs, batch_size=self.batch_size,
                             steps_per_epoch=self.steps_per_epoch, lr=self.lr,
                             eval_every=self.eval_every, patience=self.patience, seed=self.seed,
                             device=self.device, num_threads=self.num_threads,
                             progress=self.progress, desc=self.name)

    def setup(self, trainer: Trainer) -> None:
        """Build the module on the device (after the trainer seeded torch), the negative
        sampler, the training pairs and the shuffling generator."""
        self.module = self.build().to(self.device)
        self._sampler = NegativeSampler(self.train_matrix, seed=self.seed)
        self._pairs = self._train_pairs(self.train_matrix)
        self._gen = torch.Generator().manual_seed(self.seed)

    def configure_optimizer(self, config: TrainerConfig) -> torch.optim.Optimizer:
        """Adam over all parameters, ``lr = config.lr``. On CPU and CUDA the *fused*
        implementation: the same update rule (Kingma & Ba) in one kernel per step instead
        of a dozen element-wise passes with temporaries."""
        fused = self.device.type in ("cpu", "cuda")
        return torch.optim.Adam(self.module.parameters(), lr=config.lr, fused=fused)

    def epoch_data(self, epoch: int) -> tuple[torch.Tensor, ...]:
        """The epoch's ``(users (E,), pos (E,)[, neg (E, n)])`` (:meth:`_epoch_triples`)."""
        self._cache = None
        users, pos, neg = self._epoch_triples(*self._pairs, self._sampler, self._gen)
        return (users, pos) if neg is None else (users, pos, neg)

    def calculate_loss(self, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
        """Propagate (``module()``) and take the batch loss (:meth:`_batch_loss`)."""
        users, pos = batch[0], batch[1]
        neg = batch[2] if len(batch) > 2 else None
        user_emb, item_emb = self.module()
        return self._batch_loss(user_emb, item_emb, users, pos, neg)

    def _drop_cache(self) -> None:
        self._cache = None

    # -- training --------------------------------------------------------------------
    def _batch_loss(self, user_emb, item_emb, users, pos, neg) -> torch.Tensor:
        """BPR or softmax over ``num_neg`` sampled negatives, or (``num_neg=None``, softmax
        only) over the whole catalogue (:meth:`_full_softmax`); plus ``reg`` times the
        module's ``reg_loss``."""
        if self.loss == "softmax" and self.num_neg is None:
            loss = self._full_softmax(user_emb, item_emb, users, pos)
        else:
            u = user_emb[users]                                   # (B, d)
            pos_scores = (u * item_emb[pos]).sum(-1)              # (B,)
            other = torch.einsum("bd,bnd->bn", u, item_emb[neg])  # (B, n)
            if self.loss == "bpr":
                loss = bpr_loss(pos_scores, other)
            else:
                loss = softmax_loss(pos_scores, other, self.temperature)
        return self._add_reg(loss, users, pos, neg)

    def _add_reg(self, loss, users, pos, neg) -> torch.Tensor:
        """``loss + reg * module.reg_loss(users, pos, neg)`` (``loss`` when ``reg = 0``)."""
        if self.reg > 0:
            loss = loss + self.reg * self.module.reg_loss(users, pos, neg)
        return loss

    def _full_softmax(self, user_emb, item_emb, users, pos, unit: bool = False) -> torch.Tensor:
        r"""Full-catalogue softmax cross-entropy, the batch mean of
        :math:`-s_{ui}/\tau + \log \sum_{j=1}^{I} \exp(s_{uj}/\tau)` (the positive against
        every item), with the logits computed once per *distinct* user of the batch:
        ``(U_B, I)`` instead of ``(B, I)``, the same value (a user with several positives in
        the batch shares one row of logits). ``unit`` scales the rows to unit length first
        (cosine scores, :class:`~recsys_ref.models.graph.lightgcn.LightGCN`'s ``normalize``)."""
        uniq, inv = torch.unique(users, return_inverse=True)                  # (U_B,), (B,)
        u, items = user_emb.index_select(0, uniq), item_emb                   # (U_B, d), (I, d)
        if unit:
            u, items = F.normalize(u, dim=-1), F.normalize(items, dim=-1)
        logits = u @ items.T / self.temperature                               # (U_B, I)
        return (torch.logsumexp(logits, 1).index_select(0, inv) - logits[inv, pos]).mean()

    def _train_pairs(self, mat) -> tuple[torch.Tensor, torch.Tensor]:
        """The observed ``(user, item)`` pairs of the training matrix as two ``(E,)``
        LongTensors on the CPU (:meth:`_epoch_triples` moves each epoch's shuffled copy to
        the device)."""
        coo = mat.tocoo()
        return (torch.as_tensor(coo.row, dtype=torch.long),
                torch.as_tensor(coo.col, dtype=torch.long))

    def _epoch_triples(self, pairs_u: torch.Tensor, pairs_i: torch.Tensor,
                       sampler: NegativeSampler | None, gen: torch.Generator):
        """One epoch of training data, drawn in one go: the pairs in a random order
        (``torch.randperm`` with ``gen``) and, when ``num_neg`` is set, ``num_neg``
        negatives per pair drawn by **one** vectorised call of ``sampler`` (uniform over
        the user's non-interacted items). Returns ``users (E,)``, ``pos (E,)`` and ``neg
        (E, n)`` or ``None``, on ``self.device`` (one copy per epoch, none on CPU)."""
        perm = torch.randperm(len(pairs_u), generator=gen)
        users, pos = pairs_u[perm], pairs_i[perm]
        neg = sampler(users.numpy(), self.num_neg) if self.num_neg else None
        if self.device.type != "cpu":
            users, pos = users.to(self.device), pos.to(self.device)
            neg = neg.to(self.device) if neg is not None else None
        return users, pos, neg

    def fit(self, train: pd.DataFrame, num_users: int, num_items: int,
            valid: pd.DataFrame | None = None) -> "EmbeddingRecommender":
        """Train with the :class:`~recsys_ref.train.trainer.Trainer` (:meth:`trainer_config`,
        ``callbacks``), early-stopping on ``valid_metric@valid_k`` of ``valid``."""
        self._store_train(train, num_users, num_items)
        self.train_df = train
        trainer = Trainer(self.trainer_config(), self.callbacks)
        self.history = trainer.fit(self, self._validator(train, valid))
        return self._finish_fit()

    def _validator(self, train, valid):
        return ranking_validator(self, train, valid, self.valid_metric, self.valid_k,
                                 before=self._drop_cache)

    def _finish_fit(self) -> "EmbeddingRecommender":
        times = self.history.epoch_seconds
        self.epoch_seconds = float(np.median(times)) if times else None
        self._cache = None
        return self

    # -- inference -------------------------------------------------------------------
    @torch.no_grad()
    def embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Final ``(user_emb (U, d), item_emb (I, d))`` in eval mode (cached)."""
        self._check_fitted()
        if self._cache is None:
            self.module.eval()
            self._cache = tuple(t.detach() for t in self.module())
        return self._cache

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.num_users}+{self.num_items}, {self.embed_dim}, "
                f"loss={self.loss})")
