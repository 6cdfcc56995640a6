"""Sequential recommenders: the order of a user's items, the windows and histories the
models read, the causal mask, and that the models learn a planted order."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from recsys_ref.models.sequential.base import Sequences
from recsys_ref.models.sequential.gru4rec import GRU4Rec
from recsys_ref.models.sequential.markov import ItemTransitions
from recsys_ref.models.sequential.sasrec import SASRec, SASRecModule, attention_mask
from recsys_ref.models.classic.popularity import Popularity
from recsys_ref.protocol.split import Split, evaluate
from recsys_ref.protocol.splits import chronological_order, leave_last_out


def test_leave_last_out_never_puts_a_later_interaction_in_train():
    rng = np.random.default_rng(3)
    f = pd.DataFrame({"user": rng.integers(0, 30, 600), "item": np.arange(600),
                      "timestamp": rng.integers(0, 20, 600)})      # many ties
    train, test = leave_last_out(f, 1)
    assert len(test) == f["user"].nunique()
    order = np.empty(len(f), dtype=np.int64)
    order[chronological_order(f)] = np.arange(len(f))              # rank of each row
    rank = pd.Series(order, index=f.index)
    last_train = rank[train.index].groupby(train["user"]).max()
    test_rank = rank[test.index].groupby(test["user"]).max()
    assert (test_rank.loc[last_train.index] > last_train).all()
    assert (f.loc[test.index, "timestamp"].to_numpy()
            >= train.groupby("user")["timestamp"].max().loc[test["user"]].to_numpy()).all()


def test_sequences_last_and_windows_by_hand():
    f = pd.DataFrame({"user": [0, 0, 0, 0, 1, 2, 2], "item": [5, 3, 4, 1, 2, 0, 6],
                      "timestamp": [4, 1, 2, 3, 9, 1, 1]})
    s = Sequences(f, 4)
    assert s.of(0).tolist() == [3, 4, 1, 5] and s.of(2).tolist() == [0, 6]
    assert s.of(3).tolist() == []
    # latest 3, as item + 1, left-padded with 0
    assert s.last([0, 1, 3], 3).tolist() == [[5, 2, 6], [0, 0, 3], [0, 0, 0]]
    # windows of L + 1 = 3 from the end, overlapping by one item: every target once
    w = s.windows(2).tolist()
    assert w == [[5, 2, 6], [0, 4, 5], [0, 1, 7]]
    assert s.windows(2, latest_only=True).tolist() == [[5, 2, 6], [0, 1, 7]]
    # the targets (positions whose input is an item): every item but each user's first
    targets = sorted(t for row in w for x, t in zip(row[:-1], row[1:]) if x > 0 and t > 0)
    assert targets == sorted([5, 2, 6, 7])


def test_attention_mask_is_causal_and_skips_padding():
    x = torch.tensor([[0, 0, 3, 4]])
    m = attention_mask(x, 1)[0]
    # position 3 may see 2 and 3 (not the padding 0, 1); position 2 sees itself only
    assert (~m[3]).nonzero().ravel().tolist() == [2, 3]
    assert (~m[2]).nonzero().ravel().tolist() == [2]
    assert (~m[0]).nonzero().ravel().tolist() == [0]
    assert attention_mask(x, 2).shape == (2, 4, 4)


def test_sasrec_output_at_t_does_not_see_later_items():
    torch.manual_seed(0)
    module = SASRecModule(num_items=20, max_len=6, embed_dim=8, num_blocks=2, num_heads=2,
                          dropout=0.0).eval()
    x = torch.tensor([[0, 3, 7, 1, 9, 4]])
    y = x.clone()
    y[0, 4] = 15                                                    # change a later item
    with torch.no_grad():
        hx, hy = module.encode(x), module.encode(y)
    assert torch.allclose(hx[0, :4], hy[0, :4], atol=1e-6)          # the past is unchanged
    assert not torch.allclose(hx[0, 4:], hy[0, 4:])                  # the future is not


def test_item_transitions_by_hand_and_history_from_the_split():
    f = pd.DataFrame({"user": [0, 0, 0, 1, 1, 1], "item": [0, 1, 2, 0, 1, 3],
                      "timestamp": [1, 2, 3, 1, 2, 3]})
    m = ItemTransitions().fit(f, 2, 4)
    # 0 -> 1 twice, 1 -> 2 once, 1 -> 3 once; popularity only breaks ties (< 1)
    assert m.transitions.toarray().tolist() == [[0, 2, 0, 0], [0, 0, 1, 1],
                                                [0, 0, 0, 0], [0, 0, 0, 0]]
    s = m.score(torch.tensor([0, 1]))
    assert s.argmax(1).tolist() == [0, 0]          # after 2 or 3 nothing: popularity (item 0/1)
    s = m.score(torch.tensor([0]), history=f[f["item"] < 2])
    assert s[0].argmax().item() == 2 or s[0].argmax().item() == 3
    assert s[0, 2] >= 1 and s[0, 3] >= 1 and s[0, 0] < 1


def test_evaluate_reads_the_history_of_the_split(cycle_frame):
    """Fitted on the tuning part, a model is tested with the validation item in the history:
    on a perfect cycle the next item is then always ranked first."""
    f = cycle_frame()
    split = Split.leave_last_out(f, mask_seen=False, num_users=120, num_items=12)
    m = ItemTransitions().fit(split.tuning.train, 120, 12)
    assert evaluate(m, split.tuning, k=1)["precision"] == 1.0
    assert evaluate(m, split, k=1)["precision"] == 1.0
    # the same scores from the tuning history would predict the validation item instead
    wrong = evaluate(lambda u: m.score(u), split, k=1)
    assert wrong["precision"] == 0.0


def test_mask_seen_changes_what_is_ranked(cycle_frame):
    f = cycle_frame()
    masked = Split.leave_last_out(f, num_users=120, num_items=12)
    ranked = Split.leave_last_out(f, mask_seen=False, num_users=120, num_items=12)
    assert len(masked.exclude()) == 1 and masked.exclude()[0] is masked.train
    assert ranked.exclude() == []
    pop = Popularity().fit(masked.train, 120, 12)
    assert evaluate(pop, masked, k=3)["recall"] != evaluate(pop, ranked, k=3)["recall"]


@pytest.mark.parametrize("cls,kw", [(GRU4Rec, {}), (SASRec, {"num_heads": 2}),
                                    (SASRec, {"loss": "bce"}),
                                    (GRU4Rec, {"loss": "sampled", "num_neg": 5})])
def test_neural_models_learn_a_planted_order(cls, kw, cycle_frame):
    f = cycle_frame(noise=0.1)
    split = Split.leave_last_out(f, mask_seen=False, num_users=120, num_items=12)
    model = cls(max_len=8, embed_dim=16, lr=1e-2, num_epochs=40, batch_size=32,
                eval_every=5, patience=3, seed=0, mask_seen=split.mask_seen, **kw)
    model.fit(split.tuning.train, 120, 12, valid=split.valid)
    pop = Popularity().fit(split.train, 120, 12)
    ours, base = evaluate(model, split, k=1), evaluate(pop, split, k=1)
    assert ours["precision"] > 0.6 > base["precision"] + 0.3


def test_sasrec_save_load_round_trip(tmp_path, cycle_frame):
    f = cycle_frame(num_users=30)
    m = SASRec(max_len=5, embed_dim=8, num_epochs=2, batch_size=16, seed=1)
    m.fit(f, 30, 12)
    path = m.save(tmp_path / "sasrec.pt")
    back = SASRec.load(path)
    users = torch.arange(30)
    assert torch.allclose(m.score(users), back.score(users), atol=1e-6)
    assert torch.allclose(m.score_items([3, 4, 5]), back.score_items([3, 4, 5]), atol=1e-6)


def test_sequential_models_refuse_frames_without_time(cycle_frame):
    f = cycle_frame().drop(columns="timestamp")
    with pytest.raises(ValueError, match="timestamp"):
        GRU4Rec(num_epochs=1).fit(f, 120, 12)


def test_next_item_protocols_reproduce_the_published_dataset_sizes(data_dir):
    """The two ML-1M files: the BERT4Rec release (6,040 / 3,416 / 999,611) and RecBole's
    benchmark (834,449 interactions; RecBole counts 6,034 users and 3,124 items, one
    padding id each)."""
    from recsys_ref import load_movielens
    from recsys_ref.protocol.sequential import next_item_interactions, next_item_split
    ratings = load_movielens("ml-1m", data_dir=data_dir, download=False).ratings
    a = next_item_interactions(ratings, "sasrec")
    assert (a.num_users, a.num_items, len(a.frame)) == (6040, 3416, 999_611)
    b = next_item_interactions(ratings, "recbole")
    assert (b.num_users + 1, b.num_items + 1, len(b.frame)) == (6034, 3124, 834_449)
    split = next_item_split(ratings, "sasrec")
    assert len(split.test) == len(split.valid) == 6040 and split.mask_seen
    assert not next_item_split(ratings, "recbole").mask_seen
    with pytest.raises(ValueError, match="unknown protocol"):
        next_item_interactions(ratings, "bert")


@pytest.mark.parametrize("heads", [1, 2])
def test_block_by_hand_equals_torch_transformer_layer(heads):
    from torch import nn

    from recsys_ref.nn.transformer import CausalSelfAttentionBlock
    from recsys_ref.models.sequential.sasrec import attention_mask
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(8, heads, 16, dropout=0.0, batch_first=True,
                                       norm_first=True).eval()
    block = CausalSelfAttentionBlock.from_torch(layer).eval()
    x_ids = torch.tensor([[0, 0, 3, 4, 5], [1, 2, 3, 4, 5]])
    x = torch.randn(2, 5, 8)
    mask = attention_mask(x_ids, heads)
    with torch.no_grad():
        theirs = layer(x, src_mask=mask)
        ours = block(x, mask.view(2, heads, 5, 5)[:, 0])
    assert torch.allclose(ours, theirs, atol=1e-5)
    # the causal weights: each row sums to one over the past only
    a = block.attention(x)
    assert torch.allclose(a.sum(-1), torch.ones(2, heads, 5))
    assert a[0, 0].triu(1).abs().max() == 0

