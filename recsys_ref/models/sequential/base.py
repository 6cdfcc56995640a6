r"""What every sequential recommender shares: users' histories as ordered sequences, and
the model contract that scores the next item from them.

A user's sequence is her items in :func:`~recsys_ref.protocol.splits.chronological_order`
(by timestamp, ties in row order): the order in which
:meth:`~recsys_ref.protocol.split.Split.leave_last_out` holds out the latest ones, so the
item held out is exactly the one that comes next. :class:`Sequences` stores them for all
users at once, CSR-like (``ptr`` and ``items``), and cuts them the two ways models need:

* :meth:`Sequences.last` — each user's latest ``L`` items, **left-padded**: a row ends
  with the most recent item, so "the prediction after the history" is always the last
  position. Items appear as ``item + 1``; ``0`` is the padding.
* :meth:`Sequences.windows` — training windows of ``L + 1`` items: inputs
  :math:`s_1 \ldots s_L`, targets :math:`s_2 \ldots s_{L+1}` (each position predicts the
  next item, as SASRec and GRU4Rec train). A sequence longer than ``L + 1`` is cut into
  several windows, from its end, so every next-item target of the training data is used
  once.

:class:`SequentialRecommender` is the :class:`~recsys_ref.models.base.Recommender` of this
family: ``score(users, history=frame)`` scores from the sequences of ``frame`` (default: the
training frame). :func:`recsys_ref.evaluate` passes ``split.train``, so a model fitted on
``split.tuning.train`` (early stopping on the validation items) is tested with the
validation items in each history, as the protocol wants, without refitting.
:class:`NeuralSequentialRecommender` adds the training contract of
:class:`~recsys_ref.train.trainer.Trainer` for a module ``encode(x (B, L)) -> (B, L, d)``:
full-catalogue cross-entropy at every position (``loss="ce"``), the original SASRec's
binary cross-entropy with one sampled negative per position (``"bce"``), or a softmax over
the positive and ``num_neg`` negatives shared by the batch (``"sampled"``).

Used in: ``chapters/10_sequential``, ``chapters/11_session_graphs`` and
``benchmarks/part4_sequential.py``.
"""
from __future__ import annotations

from collections.abc import Sequence as SequenceType

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from recsys_ref.models.base import Recommender, check_fit_frame
from recsys_ref.models.embedding import ranking_validator
from recsys_ref.protocol.splits import chronological_order
from recsys_ref.train.runtime import get_device
from recsys_ref.train.trainer import History, Trainer, TrainerConfig

__all__ = ["Sequences", "SequentialRecommender", "NeuralSequentialRecommender", "SEQ_LOSSES"]

#: training objectives of :class:`NeuralSequentialRecommender`
SEQ_LOSSES = ("ce", "bce", "sampled")


class Sequences:
    """Every user's items in chronological order, stored CSR-like.

    Args:
        frame: interactions with ``user``, ``item`` and ``timestamp`` columns.
        num_users: size of the user index space (users without rows get empty sequences).

    Attributes:
        ptr: ``(num_users + 1,)``; user ``u``'s items are ``items[ptr[u]:ptr[u + 1]]``.
        items: ``(n,)`` item indices (0-based), oldest first within each user.
    """

    def __init__(self, frame: pd.DataFrame, num_users: int):
        if "timestamp" not in frame.columns:
            raise ValueError("a sequential model needs the order of each user's items: the "
                             "frame has no 'timestamp' column (load the data with "
                             "timestamps, or add an increasing counter per user)")
        order = chronological_order(frame)
        users = frame["user"].to_numpy()[order]
        self.items = frame["item"].to_numpy()[order].astype(np.int64)
        self.ptr = np.r_[0, np.cumsum(np.bincount(users, minlength=num_users))].astype(np.int64)
        self.num_users = int(num_users)

    @classmethod
    def from_lists(cls, sequences: SequenceType[SequenceType[int]]) -> "Sequences":
        """Sequences given directly, one list of item indices per user (oldest first)."""
        obj = cls.__new__(cls)
        obj.items = np.asarray([i for s in sequences for i in s], dtype=np.int64)
        obj.ptr = np.r_[0, np.cumsum([len(s) for s in sequences])].astype(np.int64)
        obj.num_users = len(sequences)
        return obj

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.ptr)

    def of(self, user: int) -> np.ndarray:
        """User ``user``'s items, oldest first."""
        return self.items[self.ptr[user]:self.ptr[user + 1]]

    def last(self, users, length: int) -> torch.Tensor:
        """``(len(users), length)`` LongTensor: each user's latest ``length`` items as
        ``item + 1``, left-padded with ``0`` (the most recent item is the last column)."""
        users = np.asarray(users, dtype=np.int64).ravel()
        return self._gather(self.ptr[users], self.ptr[users + 1], length)

    def targets(self, length: int | None = None) -> np.ndarray:
        """Positions in :attr:`items` of every next-item target: each item but the first
        of its sequence; with ``length``, each user's latest ``length`` targets only (those
        of :meth:`windows` with ``latest_only``)."""
        pos = np.arange(len(self.items), dtype=np.int64)
        user = np.repeat(np.arange(self.num_users), self.lengths)
        keep = pos > self.ptr[user]
        if length is not None:
            keep &= pos >= self.ptr[user + 1] - length
        return pos[keep]

    def before(self, positions, length: int) -> torch.Tensor:
        """``(len(positions), length)`` LongTensor: the latest ``length`` items of the
        same user *before* each position of :attr:`items` (its prefix), left-padded as
        :meth:`last` — the input of a model that predicts ``items[position]``."""
        positions = np.asarray(positions, dtype=np.int64).ravel()
        if len(positions) and (positions.min() < 0 or positions.max() >= len(self.items)):
            raise ValueError(f"positions must index items (0 to {len(self.items) - 1}); got "
                             f"{positions.min()} to {positions.max()}")
        user = np.searchsorted(self.ptr, positions, side="right") - 1
        return self._gather(self.ptr[user], positions, length)

    def _gather(self, starts: np.ndarray, ends: np.ndarray, length: int) -> torch.Tensor:
        """Rows of ``items[start:end]``'s latest ``length`` entries (+ 1), left-padded."""
        idx = ends[:, None] - length + np.arange(length)[None, :]
        valid = idx >= starts[:, None]
        out = np.where(valid, self.items[np.clip(idx, 0, max(len(self.items) - 1, 0))] + 1
                       if len(self.items) else 0, 0)
        return torch.as_tensor(out, dtype=torch.long)

    def windows(self, length: int, min_len: int = 2, latest_only: bool = False
                ) -> torch.Tensor:
        """``(W, length + 1)`` training windows, left-padded with ``0``, items as
        ``item + 1``. Each sequence is cut from its end into windows of ``length + 1``
        items that overlap by one, so that the targets (every item but a sequence's first)
        are each used once; ``latest_only`` keeps the latest window of each user only (the
        published SASRec reproductions train so: older items of long histories are never
        targets). Sequences shorter than ``min_len`` give none."""
        rows_user, rows_end = [], []
        for u in np.flatnonzero(self.lengths >= min_len):
            start, end = int(self.ptr[u]), int(self.ptr[u + 1])
            e = end
            while e - start >= 2:
                rows_user.append(u)
                rows_end.append(e)
                if latest_only:
                    break
                e -= length
        if not rows_end:
            raise ValueError(f"no user has {min_len} or more interactions to learn from")
        ends = np.asarray(rows_end)[:, None]
        starts = self.ptr[np.asarray(rows_user)][:, None]
        idx = ends - (length + 1) + np.arange(length + 1)[None, :]
        valid = idx >= starts
        out = np.where(valid, self.items[np.clip(idx, 0, None)] + 1, 0)
        return torch.as_tensor(out, dtype=torch.long)

    def __len__(self) -> int:
        return self.num_users


class SequentialRecommender(Recommender):
    """A recommender that scores the next item from each user's ordered history.

    Subclasses implement :meth:`_score_last` (scores from the latest ``max_len`` items of
    some users). ``score(users, history=None)`` reads the sequences of ``history`` (a
    frame with timestamps) or, by default, of the training frame.
    """

    #: :func:`recsys_ref.evaluate` passes ``history=split.train`` to such a model
    reads_history = True
    max_len: int = 50

    def _store_sequences(self, train: pd.DataFrame, num_users: int, num_items: int) -> None:
        self._store_train(train, num_users, num_items)
        self.sequences = Sequences(train, self.num_users)
        self._history_cache: tuple[int, Sequences] | None = None

    def _sequences_for(self, history: pd.DataFrame | Sequences | None) -> Sequences:
        if history is None:
            return self.sequences
        if isinstance(history, Sequences):
            return history
        cached = getattr(self, "_history_cache", None)
        if cached is not None and cached[0] is history:
            return cached[1]
        check_fit_frame(history, self.num_users, self.num_items, what="history")
        seqs = Sequences(history, self.num_users)
        self._history_cache = (history, seqs)
        return seqs

    def score(self, users, history: pd.DataFrame | Sequences | None = None) -> torch.Tensor:
        """``(len(users), num_items)`` scores of the item that comes next after each
        user's history (the latest ``max_len`` items of ``history``, default the
        training frame). A user with an empty history gets the scores of an empty input."""
        users = self._check_users(users)
        x = self._sequences_for(history).last(users.numpy(), self.max_len)
        return self._score_last(x)

    def _score_items(self, items: np.ndarray, ratings: np.ndarray) -> torch.Tensor:
        """Fold-in: the items are the new user's sequence, in the order given."""
        seq = Sequences.from_lists([items.tolist()])
        return self._score_last(seq.last([0], self.max_len))[0]

    def _score_last(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def _get_state(self) -> dict:
        state = super()._get_state()
        state.pop("_history_cache", None)
        seqs = state.pop("sequences")
        state["_seq_ptr"], state["_seq_items"] = seqs.ptr, seqs.items
        return state

    def _set_state(self, state: dict) -> None:
        ptr, items = np.asarray(state.pop("_seq_ptr")), np.asarray(state.pop("_seq_items"))
        super()._set_state(state)
        self.sequences = Sequences.from_lists([items[a:b] for a, b in zip(ptr[:-1], ptr[1:])])
        self._history_cache = None


class NeuralSequentialRecommender(SequentialRecommender):
    r"""A sequence encoder trained by the :class:`~recsys_ref.train.trainer.Trainer`.

    The subclass's :meth:`build` returns a module with ``encode(x (B, L)) -> (B, L, d)``
    (position :math:`t` sees items :math:`\le t` only) and ``item_vectors() -> (I, d)``;
    the score of item :math:`i` after position :math:`t` is
    :math:`\mathbf h_t^\top \mathbf e_i`. A model that reads each prefix separately
    instead (SR-GNN) overrides :meth:`setup`, :meth:`calculate_loss` and
    :meth:`_final_state` and keeps the rest (losses, early stopping, scoring).

    Losses, over the positions :math:`t` with a target :math:`i_t` (padding ignored):

    * ``"ce"``: :math:`-\log \operatorname{softmax}(\mathbf h_t^\top \mathbf E^\top)_{i_t}`,
      the whole catalogue as classes;
    * ``"bce"`` (the original SASRec): :math:`-\log\sigma(\mathbf h_t^\top \mathbf e_{i_t})
      - \log(1 - \sigma(\mathbf h_t^\top \mathbf e_{j_t}))`, one uniform negative
      :math:`j_t` per position;
    * ``"sampled"``: the softmax over the positive and ``num_neg`` uniform negatives
      shared by the batch (cheaper than ``"ce"`` for large catalogues).

    Args:
        max_len: the history length :math:`L` the model reads (latest items).
        embed_dim: :math:`d`.
        loss, num_neg: the objective (above).
        windows: ``"all"`` trains on every next-item target of the training sequences
            (long histories cut into several windows); ``"latest"`` on each user's latest
            ``max_len + 1`` items only, as the published reproductions do (cheaper).
        lr, weight_decay: Adam's.
        num_epochs, batch_size: at most this many epochs of ``batch_size`` windows.
        eval_every, patience, valid_metric, valid_k: early stopping on ``valid``.
        mask_seen: whether validation masks the items already in the history; set it as
            the split does (:class:`~recsys_ref.protocol.split.Split`'s ``mask_seen``,
            default ``True``; ``False`` for RecBole's protocol).
        device, seed, num_threads, progress: as every trained model.
    """

    name = "sequential"
    uses_validation = True

    def __init__(self, max_len: int = 50, embed_dim: int = 64, loss: str = "ce",
                 num_neg: int = 1, windows: str = "all", lr: float = 1e-3, weight_decay: float = 0.0,
                 num_epochs: int = 200, batch_size: int = 128, eval_every: int = 1,
                 patience: int | None = 5, valid_metric: str = "ndcg", valid_k: int = 10,
                 mask_seen: bool = True, device: str | None = None, seed: int = 0,
                 num_threads: int | None = None, progress: bool = False):
        if loss not in SEQ_LOSSES:
            raise ValueError(f"loss must be one of {SEQ_LOSSES}, got {loss!r}")
        if windows not in ("all", "latest"):
            raise ValueError(f"windows must be 'all' or 'latest', got {windows!r}")
        if max_len < 1 or embed_dim < 1 or batch_size < 1 or num_epochs < 1 or num_neg < 1:
            raise ValueError("max_len, embed_dim, batch_size, num_epochs and num_neg must be "
                             "positive")
        self.max_len, self.embed_dim, self.loss, self.num_neg = max_len, embed_dim, loss, num_neg
        self.windows = windows
        self.lr, self.weight_decay = lr, weight_decay
        self.num_epochs, self.batch_size = num_epochs, batch_size
        self.eval_every, self.patience = eval_every, patience
        self.valid_metric, self.valid_k, self.mask_seen = valid_metric, valid_k, mask_seen
        self.device = get_device(device)
        self.seed, self.num_threads, self.progress = seed, num_threads, progress
        self.module: torch.nn.Module | None = None
        self.history: History | None = None
        self.epoch_seconds: float | None = None

    def build(self) -> torch.nn.Module:  # pragma: no cover - abstract
        raise NotImplementedError

    # -- the trainer's model contract --------------------------------------------------
    def trainer_config(self) -> TrainerConfig:
        return TrainerConfig(num_epochs=self.num_epochs, batch_size=self.batch_size,
                             lr=self.lr, eval_every=self.eval_every, patience=self.patience,
                             seed=self.seed, device=self.device, num_threads=self.num_threads,
                             progress=self.progress, desc=self.name)

    def setup(self, trainer: Trainer) -> None:
        """Build the module (after the trainer seeded torch), the training windows and
        the generators of shuffling and negative sampling."""
        self.module = self.build().to(self.device)
        self._windows = self.sequences.windows(self.max_len,
                                               latest_only=self.windows == "latest")
        self._gen = torch.Generator().manual_seed(self.seed)

    def configure_optimizer(self, config: TrainerConfig) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.module.parameters(), lr=config.lr,
                                weight_decay=self.weight_decay)

    def epoch_data(self, epoch: int) -> tuple[torch.Tensor, ...]:
        """The training windows in a new random order."""
        perm = torch.randperm(len(self._windows), generator=self._gen)
        return (self._windows[perm].to(self.device),)

    def calculate_loss(self, batch: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, int]:
        """The loss over every position with a target; weighted by their number."""
        w = batch[0]
        x, y = w[:, :-1], w[:, 1:]
        keep = (x > 0) & (y > 0)          # an item predicts the next one (no pad inputs)
        h = self.module.encode(x)[keep]                       # (P, d)
        return self._loss(h, y[keep] - 1), int(keep.sum())

    def _loss(self, h: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The objective for states ``h (P, d)`` and their next items ``target (P,)``."""
        items = self.module.item_vectors()                    # (I, d)
        if self.loss == "ce":
            return F.cross_entropy(h @ items.T, target)
        if self.loss == "bce":
            neg = torch.randint(0, self.num_items, target.shape, generator=self._gen)
            neg = neg.to(h.device)
            # index_select, not items[...]: its backward adds rows in a fixed order
            # (advanced indexing's accumulates across threads: not reproducible)
            pos_s = (h * items.index_select(0, target)).sum(-1)
            neg_s = (h * items.index_select(0, neg)).sum(-1)
            return (F.softplus(-pos_s) + F.softplus(neg_s)).mean()
        neg = torch.randint(0, self.num_items, (self.num_neg,), generator=self._gen)
        neg = neg.to(h.device)
        pos_s = (h * items.index_select(0, target)).sum(-1, keepdim=True)
        neg_s = h @ items.index_select(0, neg).T                # (P, n)
        # a sampled negative equal to the target is not a negative
        neg_s = neg_s.masked_fill(neg[None, :] == target[:, None], float("-inf"))
        return -torch.log_softmax(torch.cat([pos_s, neg_s], 1), 1)[:, 0].mean()

    # -- fit / score -------------------------------------------------------------------
    def fit(self, train: pd.DataFrame, num_users: int, num_items: int,
            valid: pd.DataFrame | None = None) -> "NeuralSequentialRecommender":
        """Train on the sequences of ``train``; with ``valid``, early stopping on
        ``valid_metric@valid_k`` of the next item after each training history."""
        self._store_sequences(train, num_users, num_items)
        validator = ranking_validator(self, train, valid, self.valid_metric, self.valid_k,
                                      mask_seen=self.mask_seen)
        self.history = Trainer(self.trainer_config()).fit(self, validator)
        times = self.history.epoch_seconds
        self.epoch_seconds = float(np.median(times)) if times else None
        self.module.eval()
        return self

    @torch.no_grad()
    def _score_last(self, x: torch.Tensor) -> torch.Tensor:
        self._check_fitted()
        self.module.eval()
        h = self._final_state(x.to(self.device))
        return (h @ self.module.item_vectors().T).cpu()

    def _final_state(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, d)``: the state after the latest item of each left-padded row."""
        return self.module.encode(x)[:, -1]

    _transient = ("module", "history", "_windows", "_gen", "_history_cache")

    def _get_state(self) -> dict:
        state = {k: v for k, v in super()._get_state().items() if k not in self._transient}
        state["module_state"] = self.module.state_dict()
        return state

    def _set_state(self, state: dict) -> None:
        weights = state.pop("module_state")
        super()._set_state(state)
        self.module = self.build().to(self.device)
        self.module.load_state_dict(weights)
        self.module.eval()
        self.history = None

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(L={self.max_len}, d={self.embed_dim}, "
                f"loss={self.loss})")
