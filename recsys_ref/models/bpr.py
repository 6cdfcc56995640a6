r"""BPR-MF: matrix factorisation for implicit feedback trained with Bayesian Personalised
Ranking (Rendle et al., UAI 2009).

A user's score of an item is a dot product plus an item bias (the bias absorbs
popularity, as in Cornac's and LibRec's BPR):

.. math::

    \hat y_{ui} = \mathbf{p}_u^\top \mathbf{q}_i + b_i .

Each training triple pairs an observed item :math:`i` with an item :math:`j` drawn
uniformly among the items the user has **not** interacted with
(:class:`recsys_ref.losses.NegativeSampler`), and BPR maximises the probability that the
observed item ranks higher:

.. math::

    \mathcal{L} = -\frac{1}{|B|} \sum_{(u,i,j) \in B} \log \sigma(\hat y_{ui} - \hat y_{uj})
        + \frac{\lambda}{2|B|} \sum_{(u,i,j) \in B} \big(\lVert \mathbf{p}_u \rVert^2
        + \lVert \mathbf{q}_i \rVert^2 + \lVert \mathbf{q}_j \rVert^2 + b_i^2 + b_j^2\big).

The training loop is written for speed: one epoch draws all its negatives in a single
vectorised call, then takes large mini-batches (``batch_size`` triples) with Adam, and
touches only the rows of the batch in the forward pass. Validation (``valid`` given to
``fit``) measures ``valid_metric@valid_k`` every ``eval_every`` epochs, stops after
``patience`` evaluations without improvement and restores the best weights.

Shapes:
    - ``forward()`` -> ``user_emb (U, d+1)``, ``item_emb (I, d+1)`` (a column of ones on
      the user side and the bias on the item side, so scores stay a dot product)
    - ``score(users (B,))`` -> ``(B, I)``

Used in: ``chapters/04_matrix_factorisation``.
"""
from __future__ import annotations

import time

import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from ..losses import NegativeSampler
from .embedding import EmbeddingRecommender

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
        num_neg: negatives per positive (default 1).
        item_bias: learn an item bias (default True).
        eval_every, patience, valid_metric, valid_k: early stopping on ``valid``.
        seed: seeds initialisation, shuffling and sampling.
        progress: show a progress bar.
    """

    name = "bpr"

    def __init__(self, embed_dim: int = 64, lr: float = 5e-3, reg: float = 1e-2,
                 num_epochs: int = 200, batch_size: int = 8192, num_neg: int = 1,
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

    def fit(self, train: pd.DataFrame, num_users: int, num_items: int,
            valid: pd.DataFrame | None = None) -> "BPRMF":
        mat = self._store_train(train, num_users, num_items)
        self.train_df = train
        torch.manual_seed(self.seed)
        self.module = self.build().to(self.device)
        opt = torch.optim.Adam(self.module.parameters(), lr=self.lr)
        sampler = NegativeSampler(mat, seed=self.seed)
        coo = mat.tocoo()
        pairs_u = torch.as_tensor(coo.row, dtype=torch.long)
        pairs_i = torch.as_tensor(coo.col, dtype=torch.long)
        gen = torch.Generator().manual_seed(self.seed)
        times: list[float] = []
        module = self.module

        def step(epoch: int) -> float:
            t0 = time.perf_counter()
            module.train()
            self._cache = None
            perm = torch.randperm(len(pairs_u), generator=gen)
            users_all, pos_all = pairs_u[perm], pairs_i[perm]
            neg_all = sampler(users_all.numpy(), self.num_neg)          # (E, n), one call
            if self.num_neg == 1:
                neg_all = neg_all[:, 0]
            total = 0.0
            for start in range(0, len(perm), self.batch_size):
                users = users_all[start:start + self.batch_size].to(self.device)
                pos = pos_all[start:start + self.batch_size].to(self.device)
                neg = neg_all[start:start + self.batch_size].to(self.device)
                pos_s = module.pair_scores(users, pos)                  # (B,)
                neg_s = module.pair_scores(users, neg)                  # (B,) or (B, n)
                diff = pos_s.unsqueeze(-1) - neg_s if neg_s.dim() == 2 else pos_s - neg_s
                loss = -F.logsigmoid(diff).mean()
                if self.reg > 0:
                    loss = loss + self.reg * module.reg_loss(users, pos, neg)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                total += float(loss.detach()) * len(users)
            times.append(time.perf_counter() - t0)
            return total / len(perm)

        return self._run_epochs(step, times, train, valid)

    def __repr__(self) -> str:
        size = f"{self.num_users}+{self.num_items}, " if self.train_matrix is not None else ""
        return (f"BPRMF({size}{self.embed_dim}, lr={self.lr}, reg={self.reg}, "
                f"item_bias={self.item_bias})")
