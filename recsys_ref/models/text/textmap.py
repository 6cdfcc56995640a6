r"""Cold items through a learned text -> embedding map: LightGCN for warm items, a ridge
regression from item side features to trained embeddings for items without interactions
(attribute-to-feature mapping :cite:`gantner2010mapping`).

Shapes:
    - item features ``(I, f)`` (dense or SciPy sparse); embeddings ``(I, d)``

Used in: ``chapters/09_language_models``.
"""
from __future__ import annotations

import numpy as np
import torch

from recsys_ref.models.graph.lightgcn import LightGCN

__all__ = ["TextToEmbedding", "LightGCNTextMap"]


class TextToEmbedding:
    r"""Ridge regression from item side features to trained item embeddings.

    Fitted on the warm items, it predicts an embedding for any item from its features
    alone (attribute-to-feature mapping :cite:`gantner2010mapping`, the linear case of
    :cite:`vandenoord2013deep`):

    .. math::

        \min_{W, \mathbf{b}} \sum_{i \in \text{warm}} c_i \lVert \mathbf{f}_i W + \mathbf{b}
        - \mathbf{e}_i \rVert_2^2 + \alpha \lVert W \rVert_F^2,

    with optional per-item weights :math:`c_i` (e.g. :math:`\log(1 + \deg i)`: a
    popular item's trained embedding is less noisy, and it matters more to recall).
    Solved by scikit-learn's :class:`~sklearn.linear_model.Ridge` (dense or sparse
    features; the intercept is not penalised).

    Args:
        alpha: L2 strength :math:`\alpha > 0` (default 10).

    Shapes:
        ``fit(features (n, f), targets (n, d), weights (n,))``; ``predict((m, f)) -> (m, d)``.
    """

    def __init__(self, alpha: float = 10.0):
        if not alpha > 0:
            raise ValueError(f"alpha must be > 0, got {alpha}")
        self.alpha = float(alpha)
        self._ridge = None

    def fit(self, features, targets, weights=None) -> "TextToEmbedding":
        from sklearn.linear_model import Ridge

        targets = np.asarray(targets, dtype=np.float64)
        if targets.ndim != 2 or features.shape[0] != targets.shape[0]:
            raise ValueError(f"features ({features.shape[0]} rows) and targets "
                             f"{targets.shape} must have one row per item, targets 2-D")
        if weights is not None:
            weights = np.asarray(weights, dtype=np.float64)
            if weights.shape != (targets.shape[0],) or (weights < 0).any():
                raise ValueError("weights must be one non-negative number per row")
        # dense features: exact Cholesky solve; sparse ones: conjugate gradients, run to 1e-6
        self._ridge = Ridge(alpha=self.alpha, tol=1e-6).fit(features, targets,
                                                            sample_weight=weights)
        self._dim = targets.shape[1]
        return self

    def predict(self, features) -> np.ndarray:
        if self._ridge is None:
            raise ValueError("TextToEmbedding is not fitted: call fit(features, targets) first")
        return np.asarray(self._ridge.predict(features), dtype=np.float32).reshape(-1, self._dim)

    @property
    def coef_(self) -> np.ndarray:
        """:math:`W^\\top` ``(d, f)``."""
        return np.asarray(self._ridge.coef_).reshape(self._dim, -1)

    @property
    def intercept_(self) -> np.ndarray:
        """:math:`\\mathbf{b}` ``(d,)``."""
        return np.asarray(self._ridge.intercept_).reshape(self._dim)


class LightGCNTextMap(LightGCN):
    r"""LightGCN for warm items, a learned text -> embedding map for cold ones.

    Trains LightGCN on the training graph unchanged (so warm items score exactly as
    LightGCN), then fits :class:`TextToEmbedding` from the item features of the items
    *with* training interactions to their final LightGCN embeddings. An item with no
    training interaction gets :math:`\hat{\mathbf{e}}_j = \mathbf{f}_j W + \mathbf{b}`
    and the score :math:`\mathbf{e}_u^\top \hat{\mathbf{e}}_j`. Because LightGCN's item
    embeddings carry popularity (their norm and their alignment with the average user),
    the map learns which text cues — year, awards, cast, genre — predict popularity as
    well as taste, something a similarity-to-history baseline cannot use.

    Args:
        item_features: ``(I, f)`` dense array or scipy sparse matrix (e.g. MiniLM
            vectors stacked with TF-IDF and metadata); ``None``: MiniLM of ``dataset``.
        alpha: ridge strength (default 10).
        degree_weight: weight warm items by :math:`\log(1 + \deg)` (default ``True``).
        num_layers: LightGCN depth (default 3).
        **kwargs: options of :class:`~recsys_ref.models.graph.lightgcn.LightGCN`; the
            defaults are chapter 9's: ``lr=1e-2, batch_size=4096, num_epochs=16,
            eval_every=4, patience=2``.
    """

    name = "lightgcn-textmap"
    #: chapter 9's training options
    defaults = dict(lr=1e-2, batch_size=4096, num_epochs=16, eval_every=4, patience=2)

    def __init__(self, item_features=None, alpha: float = 10.0, degree_weight: bool = True,
                 dataset: str = "ml-100k", num_layers: int = 3, **kwargs):
        super().__init__(num_layers=num_layers, **kwargs)
        if not alpha > 0:
            raise ValueError(f"alpha must be > 0, got {alpha}")
        self.item_features, self.alpha = item_features, float(alpha)
        self.degree_weight = degree_weight
        self.dataset = dataset
        self.mapper: TextToEmbedding | None = None
        self._mapped: torch.Tensor | None = None
        self.cold_mask: np.ndarray | None = None

    def fit(self, train, num_users: int, num_items: int, valid=None) -> "LightGCNTextMap":
        if self.item_features is None:
            from recsys_ref.models.text.fusion import default_text_features
            self.item_features, _ = default_text_features(self.dataset)
        if self.item_features.shape[0] != num_items:
            raise ValueError(f"item_features has {self.item_features.shape[0]} rows, the data "
                             f"{num_items} items: pass features of this dataset's items")
        self.mapper, self._mapped = None, None
        super().fit(train, num_users, num_items, valid=valid)
        self.fit_map(self.alpha)
        return self

    def fit_map(self, alpha: float | None = None) -> "LightGCNTextMap":
        """(Re)fit the map on the trained embeddings, e.g. for another ``alpha`` (no retraining)."""
        if alpha is not None:
            if not alpha > 0:
                raise ValueError(f"alpha must be > 0, got {alpha}")
            self.alpha = float(alpha)
        self._mapped = None
        _, items = self.embeddings()
        items = items.cpu().numpy()
        deg = np.bincount(self.train_df["item"].to_numpy(), minlength=self.num_items)
        warm = deg > 0
        feats = self.item_features
        weights = np.log1p(deg[warm]) if self.degree_weight else None
        self.mapper = TextToEmbedding(self.alpha).fit(feats[warm], items[warm], weights)
        mapped = items.copy()
        if (~warm).any():
            mapped[~warm] = self.mapper.predict(feats[~warm])
        self.cold_mask = ~warm
        self._mapped = torch.as_tensor(mapped, device=self.device)
        return self

    @torch.no_grad()
    def embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        users, items = super().embeddings()
        return users, (self._mapped if self._mapped is not None else items)

    def __repr__(self) -> str:
        return (f"LightGCNTextMap({self.num_users}+{self.num_items}, {self.embed_dim}, "
                f"num_layers={self.num_layers}, alpha={self.alpha}, "
                f"degree_weight={self.degree_weight})")
