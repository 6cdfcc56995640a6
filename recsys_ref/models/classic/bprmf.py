r"""BPR-MF: matrix factorisation for implicit feedback trained with Bayesian Personalised
Ranking (Rendle et al., UAI 2009).

A user's score of an item is a dot product plus an item bias (the bias absorbs
popularity, as in Cornac's and LibRec's BPR):

.. math::

    \hat y_{ui} = \mathbf{p}_u^\top \mathbf{q}_i + b_i .

Each training triple pairs an observed item :math:`i` with an item :math:`j` drawn
uniformly among the items the user has **not** interacted with
(:class:`recsys_ref.nn.losses.NegativeSampler`), and BPR maximises the probability that the
observed item ranks higher:

.. math::

    \mathcal{L} = -\frac{1}{|B|} \sum_{(u,i,j) \in B} \log \sigma(\hat y_{ui} - \hat y_{uj})
        + \frac{\lambda}{2|B|} \sum_{(u,i,j) \in B} \big(\lVert \mathbf{p}_u \rVert^2
        + \lVert \mathbf{q}_i \rVert^2 + \lVert \mathbf{q}_j \rVert^2 + b_i^2 + b_j^2\big).

Training (the :class:`~recsys_ref.train.trainer.Trainer`): one epoch draws all its
negatives in a single vectorised call, then takes mini-batches of ``batch_size`` triples
with Adam. Each step computes the loss above *and its gradient* by hand
(:class:`~recsys_ref.nn.fused_losses.BPRMFLoss`): with
:math:`x_{uij} = \hat y_{ui} - \hat y_{uj}`, :math:`c_{uij} = \partial\mathcal{L} /
\partial x_{uij} = -\sigma(-x_{uij}) / |B|` and :math:`r = \lambda / |B|`,

.. math::

    \frac{\partial \mathcal{L}}{\partial \mathbf{p}_u} = c\,(\mathbf{q}_i - \mathbf{q}_j)
        + r\,\mathbf{p}_u,\quad
    \frac{\partial \mathcal{L}}{\partial \mathbf{q}_i} = c\,\mathbf{p}_u + r\,\mathbf{q}_i,\quad
    \frac{\partial \mathcal{L}}{\partial \mathbf{q}_j} = -c\,\mathbf{p}_u + r\,\mathbf{q}_j,\quad
    \frac{\partial \mathcal{L}}{\partial b_i} = c + r\,b_i,\quad
    \frac{\partial \mathcal{L}}{\partial b_j} = -c + r\,b_j,

summed per table row with one ``index_add_`` (a row that occurs several times in the
batch collects every occurrence). That is the gradient autograd would compute (the tests
check it with ``torch.autograd.gradcheck``), in a handful of large kernels instead of
autograd's chain of gathers, powers and scatters. Validation (``valid`` given to
``fit``) measures ``valid_metric@valid_k`` every ``eval_every`` epochs, stops after
``patience`` evaluations without improvement and restores the best weights.

Shapes:
    - ``forward()`` -> ``user_emb (U, d+1)``, ``item_emb (I, d+1)`` (a column of ones on
      the user side and the bias on the item side, so scores stay a dot product)
    - ``score(users (B,))`` -> ``(B, I)``

Used in: ``chapters/04_matrix_factorisation``.
"""
from __future__ import annotations

import torch
from torch import nn

from recsys_ref.models.embedding import EmbeddingRecommender
from recsys_ref.nn.fused_losses import bpr_mf_loss

__all__ = ["MFModule", "BPRMF"]


class MFModule(nn.Module):
    """User and item embedding tables plus an optional item bias.

    Args:
        num_users, num_items: table sizes.
        embed_dim: :math:`d`.
        item_bias: learn :math:`b_i` (default True).
        init_std: std of the normal initialisation of the embeddings (default 0.1).
    """

    def __init__(self, num_users: int, num_items: int, embed_dim: int, item_bias: bool = True,
                 init_std: float = 0.1):
        super().__init__()
        self.user = nn.Embedding(num_users, embed_dim)
        self.item = nn.Embedding(num_items, embed_dim)
        self.bias = nn.Parameter(torch.zeros(num_items)) if item_bias else None
        self.init_std = init_std
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.normal_(self.user.weight, std=self.init_std)
        nn.init.normal_(self.item.weight, std=self.init_std)
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def pair_scores(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Scores of ``items`` ``(B,)`` or ``(B, n)`` for ``users`` ``(B,)``."""
        u = self.user.weight[users]                          # (B, d)
        q = self.item.weight[items]                          # (B, d) or (B, n, d)
        s = (u.unsqueeze(-2) * q).sum(-1) if items.dim() == 2 else (u * q).sum(-1)
        return s + self.bias[items] if self.bias is not None else s

    def forward(self) -> tuple[torch.Tensor, torch.Tensor]:
        u, q = self.user.weight, self.item.weight
        if self.bias is None:
            return u, q
        return (torch.cat([u, torch.ones(len(u), 1, device=u.device)], 1),
                torch.cat([q, self.bias.unsqueeze(1)], 1))

    def reg_loss(self, users, pos, neg) -> torch.Tensor:
        terms = [self.user.weight[users].pow(2).sum(), self.item.weight[pos].pow(2).sum(),
                 self.item.weight[neg].pow(2).sum()]
        if self.bias is not None:
            terms += [self.bias[pos].pow(2).sum(), self.bias[neg].pow(2).sum()]
        return sum(terms) / (2 * len(users))

    def __repr__(self) -> str:
        return (f"MFModule({self.user.num_embeddings}+{self.item.num_embeddings}, "
                f"{self.user.embedding_dim}, item_bias={self.bias is not None})")


class BPRMF(EmbeddingRecommender):
    """BPR-MF recommender (see the module docstring).

    Args:
        embed_dim: :math:`d` (default 64).
        lr: Adam learning rate (default 5e-3).
        reg: :math:`\\lambda` (default 1e-2, the value chapter 4 selects on validation data).
        num_epochs: maximum epochs (default 200).
        batch_size: triples per step (default 8192).
        num_neg: negatives per positive (default 4, chapter 4's setting).
        item_bias: learn an item bias (default True).
        eval_every, patience, valid_metric, valid_k: early stopping on ``valid``.
        seed: seeds initialisation, shuffling and sampling.
        progress: show a progress bar.
    """

    name = "bpr"

    def __init__(self, embed_dim: int = 64, lr: float = 5e-3, reg: float = 1e-2,
                 num_epochs: int = 200, batch_size: int = 8192, num_neg: int = 4,
                 item_bias: bool = True, eval_every: int = 10, patience: int | None = 3,
                 valid_metric: str = "ndcg", valid_k: int = 10, device: str | None = None,
                 seed: int = 0, progress: bool = False):
        if num_neg is None or num_neg < 1:
            raise ValueError(f"BPR needs sampled negatives: num_neg must be >= 1, got {num_neg}")
        if lr <= 0 or reg < 0:
            raise ValueError(f"lr must be > 0 and reg >= 0, got lr={lr}, reg={reg}")
        super().__init__(embed_dim=embed_dim, lr=lr, reg=reg, num_epochs=num_epochs,
                         batch_size=batch_size, num_neg=num_neg, loss="bpr",
                         eval_every=eval_every, patience=patience, valid_metric=valid_metric,
                         valid_k=valid_k, device=device, seed=seed, progress=progress)
        self.item_bias = item_bias

    def build(self) -> nn.Module:
        return MFModule(self.num_users, self.num_items, self.embed_dim, self.item_bias)

    def setup(self, trainer) -> None:
        """The parent's setup plus the scratch tensors reused by every step
        (:class:`~recsys_ref.nn.fused_losses.BPRMFLoss`)."""
        super().setup(trainer)
        self._work: dict = {}

    def calculate_loss(self, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
        """BPR-MF batch loss with its hand-written gradient (:func:`bpr_mf_loss`)."""
        users, pos, neg = batch
        return bpr_mf_loss(self.module, users, pos, neg, self.reg, self._work)

    def __repr__(self) -> str:
        size = f"{self.num_users}+{self.num_items}, " if self.train_matrix is not None else ""
        return (f"BPRMF({size}{self.embed_dim}, lr={self.lr}, reg={self.reg}, "
                f"item_bias={self.item_bias})")
