"""The Trainer and its callbacks on a one-weight model whose steps can be done by hand, plus
seeds, device choice and thread pinning.

The model: a scalar weight w (initial 0), data x = (1, 2), y = (2, 4), loss
L(w) = mean((w x - y)^2), so dL/dw = mean(2 (w x - y) x). Full batch, SGD with lr 0.1:
w: 0 -> 1 (grad -10, loss 10) -> 1.5 (grad -5, loss 2.5) -> 1.75 (grad -2.5, loss 0.625).
"""
import math

import numpy as np
import pytest
import torch

from recsys_ref.train import (EMA, EarlyStopping, Logger, LRSchedule, Phase, Trainer,
                              TrainerConfig, get_device, set_seed, torch_threads)


class Line:
    """The one-weight model of the module docstring (the Trainer's model contract)."""

    def __init__(self, random_init: bool = False):
        self.random_init = random_init
        self.x, self.y = torch.tensor([1.0, 2.0]), torch.tensor([2.0, 4.0])
        self.setups = 0

    def setup(self, trainer):
        self.setups += 1
        if self.setups == 1 or self.random_init:
            self.module = torch.nn.Linear(1, 1, bias=False)
            torch.nn.init.zeros_(self.module.weight)
            if self.random_init:
                torch.nn.init.normal_(self.module.weight)

    def configure_optimizer(self, config):
        return torch.optim.SGD(self.module.parameters(), lr=config.lr)

    def epoch_data(self, epoch):
        if self.random_init:                                   # a random order, seeded
            perm = torch.randperm(2)
            return self.x[perm], self.y[perm]
        return self.x, self.y

    def calculate_loss(self, batch):
        x, y = batch
        return (self.module(x.unsqueeze(1)).squeeze(1) - y).pow(2).mean()

    @property
    def w(self) -> float:
        return float(self.module.weight.detach())


def cfg(**kw):
    base = dict(num_epochs=3, batch_size=None, lr=0.1, eval_every=1, patience=None, seed=0)
    return TrainerConfig(**{**base, **kw})


def test_sgd_steps_and_epoch_losses_match_the_hand_computation():
    model = Line()
    hist = Trainer(cfg()).fit(model)
    assert model.w == pytest.approx(1.75)
    assert hist.frame["loss"].tolist() == pytest.approx([10.0, 2.5, 0.625])
    assert list(hist.frame.columns) == ["epoch", "loss"] and len(hist.epoch_seconds) == 3
    assert hist.best_epoch is None                              # no validation, no restore


def test_epoch_loss_is_the_row_weighted_mean_of_batch_losses():
    # batch_size 1, lr 0: per-row losses (0-2)^2 = 4 and (0-4)^2 = 16, mean 10
    hist = Trainer(cfg(batch_size=1, lr=0.0, num_epochs=1)).fit(Line())
    assert hist.rows[0]["loss"] == pytest.approx(10.0)


def test_early_stopping_stops_and_restores_the_best_weights():
    model, scores = Line(), iter([0.5, 0.9, 0.6, 0.7, 0.8])
    hist = Trainer(cfg(num_epochs=5, patience=2)).fit(model, lambda: next(scores))
    assert hist.stopped_early and len(hist.rows) == 4           # epochs 2, 3 did not improve
    assert hist.best_epoch == 1 and hist.best_score == 0.9
    assert model.w == pytest.approx(1.5)                        # the weight after epoch 1


def test_validation_runs_every_eval_every_epochs_and_after_the_last():
    calls = []
    hist = Trainer(cfg(num_epochs=5, eval_every=2)).fit(Line(), lambda: calls.append(1) or 0.0)
    assert len(calls) == 3 and hist.frame["valid"].notna().tolist() == [
        False, True, False, True, True]


def test_ema_equals_the_hand_computed_average():
    # avg_0 = w_0 = 0; after step 1 (w = 1): 0.5 * 0 + 0.5 * 1 = 0.5;
    # after step 2 (w = 1.5): 0.5 * 0.5 + 0.5 * 1.5 = 1.0
    model = Line()
    Trainer(cfg(num_epochs=2), callbacks=[EMA(0.5)]).fit(model)
    assert model.w == pytest.approx(1.0)
    assert not any(n.startswith("ema__") for n, _ in model.module.named_buffers())


def test_ema_scores_validation_with_the_average_and_keeps_the_training_weights():
    model, seen = Line(), []
    Trainer(cfg(num_epochs=2), callbacks=[EMA(0.5, apply=False)]).fit(
        model, lambda: seen.append(model.w) or float(len(seen)))     # scores 1, 2: last best
    assert seen == pytest.approx([0.5, 1.0])
    assert model.w == pytest.approx(1.0)            # the best state was saved while averaged


def test_lr_schedule_changes_the_learning_rate_per_epoch():
    trainer = Trainer(cfg(num_epochs=3), callbacks=[LRSchedule(
        lambda opt, t: torch.optim.lr_scheduler.StepLR(opt, 1, gamma=0.5), interval="epoch")])
    lrs = []
    trainer.add_callback("on_epoch_start", lambda t: lrs.append(t.optimizer.param_groups[0]["lr"]))
    model = Line()
    trainer.fit(model)
    assert lrs == pytest.approx([0.1, 0.05, 0.025])
    # steps by hand: w = 0 + 0.1*10 = 1, 1 + 0.05*5 = 1.25, grad at 1.25 is -3.75: 1.34375
    assert model.w == pytest.approx(1.34375)


def test_phases_run_in_order_with_their_own_settings():
    model, started = Line(), []
    trainer = Trainer(cfg())
    lrs = []
    trainer.add_callback("on_fit_start", lambda t: lrs.append(t.optimizer.param_groups[0]["lr"]))
    phases = [Phase("first", 1, lambda m: started.append("first"), {"lr": 0.1}),
              Phase("second", 2, lambda m: started.append("second"), {"lr": 0.0})]
    hist = trainer.fit_phases(model, phases)
    assert started == ["first", "second"] and lrs == [0.1, 0.0]
    assert len(hist["first"].rows) == 1 and len(hist["second"].rows) == 2
    assert model.w == pytest.approx(1.0)                # lr 0 in the second phase: no change
    assert trainer.config.lr == 0.1 and trainer.config.num_epochs == 3   # restored


def test_seeding_makes_two_runs_identical():
    runs = []
    for _ in range(2):
        model = Line(random_init=True)
        hist = Trainer(cfg(batch_size=1, seed=3)).fit(model)
        runs.append((model.w, hist.frame["loss"].tolist()))
    assert runs[0] == runs[1]
    other = Line(random_init=True)
    Trainer(cfg(batch_size=1, seed=4)).fit(other)
    assert other.w != runs[0][0]


def test_logger_callbacks_by_event_and_errors():
    lines = []
    trainer = Trainer(cfg(num_epochs=2), callbacks=[Logger(lines.append)])
    trainer.fit(Line())
    assert len(lines) == 2 and lines[0].startswith("train epoch 0: loss=10.0000")
    with pytest.raises(ValueError, match="unknown event"):
        trainer.add_callback("on_step", lambda t: None)
    with pytest.raises(ValueError, match="none of the hooks"):
        trainer.add_callback(object())
    with pytest.raises(ValueError, match="num_epochs"):
        Trainer(cfg(num_epochs=0)).fit(Line())
    with pytest.raises(ValueError, match="NaN"):
        Trainer(cfg(lr=float("nan"), num_epochs=2)).fit(Line())


def test_a_callback_can_stop_the_run():
    trainer = Trainer(cfg(num_epochs=5))
    trainer.add_callback("on_epoch_end", lambda t: setattr(t, "should_stop", t.epoch == 1))
    hist = trainer.fit(Line())
    assert len(hist.rows) == 2 and hist.stopped_early


def test_set_seed_makes_torch_and_numpy_repeatable():
    set_seed(7)
    a = torch.rand(3), np.random.rand(3)
    set_seed(7)
    b = torch.rand(3), np.random.rand(3)
    assert torch.equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    with pytest.raises(ValueError):
        set_seed(-1)


def test_get_device_defaults_and_override(monkeypatch):
    monkeypatch.delenv("RECSYS_REF_DEVICE", raising=False)
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert get_device().type == expected
    assert get_device("cpu").type == "cpu"
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            get_device("cuda")


def test_early_stopping_tracks_best_and_patience():
    model = torch.nn.Linear(1, 1)
    es = EarlyStopping(patience=2)
    for epoch, score in enumerate([0.1, 0.3, 0.2, 0.25]):
        with torch.no_grad():
            model.weight.fill_(score)
        es.update(score, epoch, model)
    assert es.best == 0.3 and es.best_epoch == 1 and es.should_stop
    es.restore(model)
    assert model.weight.item() == pytest.approx(0.3)
    assert not EarlyStopping(math.inf).should_stop


def test_torch_threads_sets_and_restores_the_thread_count():
    before = torch.get_num_threads()
    other = 2 if before == 1 else 1
    with torch_threads(other):
        assert torch.get_num_threads() == other
    assert torch.get_num_threads() == before
    with pytest.raises(RuntimeError, match="boom"):
        with torch_threads(other):
            raise RuntimeError("boom")
    assert torch.get_num_threads() == before          # restored after an exception too
    with torch_threads(None):
        assert torch.get_num_threads() == before      # None leaves the setting alone
    with pytest.raises(ValueError, match="num_threads must be >= 1"):
        with torch_threads(0):
            pass


def test_steps_per_epoch_trains_on_the_first_rows_only():
    # batch 1, one step per epoch: only (x=1, y=2) is seen. Loss (w - 2)^2, grad 2 (w - 2):
    # w: 0 -> 0.4 (loss 4) -> 0.72 (loss 2.56)
    model = Line()
    steps = []
    trainer = Trainer(cfg(num_epochs=2, batch_size=1, steps_per_epoch=1))
    trainer.add_callback("on_batch_end", lambda t: steps.append(t.epoch))
    hist = trainer.fit(model)
    assert steps == [0, 1]
    assert model.w == pytest.approx(0.72)
    assert [r["loss"] for r in hist.rows] == pytest.approx([4.0, 2.56])
    with pytest.raises(ValueError, match="steps_per_epoch"):
        Trainer(cfg(steps_per_epoch=0)).fit(Line())
