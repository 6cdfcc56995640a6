"""Text-fusion LightGCN: shapes, gradients, exact reduction to LightGCN at text weight 0,
cold items scored from text alone."""
from __future__ import annotations

import pandas as pd
import pytest
import torch

from recsys_ref.graph import bipartite_edge_index, normalized_adjacency
from recsys_ref.models.text.fusion import FUSIONS, LightGCNText, TextFusionModule
from recsys_ref.models.graph.lightgcn import LightGCNModule

U, I, T, D = 3, 5, 6, 4
PAIRS = pd.DataFrame({"user": [0, 0, 1, 1, 2, 2], "item": [0, 1, 1, 2, 0, 3]})   # item 4 is cold


def _adj():
    return normalized_adjacency(bipartite_edge_index(PAIRS, U, I), U + I)


def _module(fusion, w=1.0, **kw):
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1)
    return TextFusionModule(U, I, D, 2, _adj(), torch.randn(I, T, generator=g),
                            torch.randn(U, T, generator=g), fusion=fusion, text_weight=w, **kw)


@pytest.mark.parametrize("fusion", FUSIONS)
def test_shapes_and_gradients_reach_every_view(fusion):
    m = _module(fusion)
    users, items = m()
    assert users.shape == (U, D) and items.shape == (I, D)
    (users[0] @ items[1] - users[1] @ items[2]).backward()
    assert m.item_proj.weight.grad is not None and m.item_proj.weight.grad.abs().sum() > 0
    if fusion != "feature":
        assert m.user_proj.weight.grad.abs().sum() > 0
    assert m.embedding.weight.grad.abs().sum() > 0
    if fusion == "gate":
        assert m.gate.weight.grad.abs().sum() > 0
    if fusion == "attention":
        assert m.att_q.grad.abs().sum() > 0


@pytest.mark.parametrize("fusion", ["sum", "gate", "attention"])
def test_text_weight_zero_is_exactly_lightgcn(fusion):
    m = _module(fusion, w=0.0)
    ref = LightGCNModule(U, I, D, 2, _adj())
    ref.embedding.weight.data.copy_(m.embedding.weight.data)
    for a, b in zip(m(), ref()):
        assert torch.allclose(a, b, atol=1e-6)


def test_concat_with_zero_text_weight_scores_like_lightgcn_on_id_half():
    m = _module("concat", w=0.0)
    ref = LightGCNModule(U, I, D // 2, 2, _adj())
    ref.embedding.weight.data.copy_(m.embedding.weight.data)
    (u, i), (ru, ri) = m(), ref()
    assert torch.allclose(u @ i.T, ru @ ri.T, atol=1e-6)
    assert torch.all(u[:, D // 2:] == 0)


def test_sum_fusion_layer0_by_hand():
    m = _module("sum", w=0.5)
    x0 = m.layer0()
    z_item = m.item_text @ m.item_proj.weight.T
    assert torch.allclose(x0[U + 2], m.embedding.weight[U + 2] + 0.5 * z_item[2], atol=1e-6)


def test_attention_weights_are_a_distribution_over_two_views():
    m = _module("attention")
    m.layer0()
    assert m._alpha.shape == (U + I, 2)
    assert torch.allclose(m._alpha.sum(1), torch.ones(U + I))


def test_cold_item_is_scored_from_text_only():
    est = LightGCNText(item_features=torch.randn(I, T).numpy(), user_features=None, fusion="sum",
                       embed_dim=D, num_layers=2, num_epochs=2, batch_size=4, seed=0)
    est.fit(PAIRS, U, I)
    mod = est.module
    assert mod.id_mask[U + 4] == 0 and mod.id_mask[U:U + 4].eq(1).all()
    _, items = est.embeddings()
    z = mod.item_proj(mod.item_text[4])
    # no edges: the cold item keeps only its layer-0 text view, averaged over L+1 layers
    assert torch.allclose(items[4], z / 3, atol=1e-6)


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="fusion must be"):
        _module("mean")
    with pytest.raises(ValueError, match="item_text must be"):
        TextFusionModule(U, I, D, 1, _adj(), torch.randn(I + 1, T))
    with pytest.raises(ValueError, match="even embed_dim"):
        TextFusionModule(U, I, 5, 1, _adj(), torch.randn(I, T), fusion="concat")
    est = LightGCNText(item_features=torch.randn(I + 2, T).numpy(), num_epochs=1)
    with pytest.raises(ValueError, match="item_features has"):
        est.fit(PAIRS, U, I)


def test_id_dropout_makes_dropped_items_look_cold_in_training_only():
    m = _module("sum", id_dropout=0.5)
    torch.manual_seed(0)
    m.train()
    _, items = m()
    x0_cold = m.item_proj(m.item_text) / 3                     # ID zeroed, no graph, L=2
    is_cold = torch.isclose(items, x0_cold, atol=1e-6).all(1)
    assert 0 < int(is_cold.sum()) < I                          # some, not all, dropped
    m.eval()
    _, items_eval = m()
    # in eval nothing is dropped (this module has no id_mask: every ID vector is used)
    assert not torch.isclose(items_eval, x0_cold, atol=1e-6).all(1).any()
