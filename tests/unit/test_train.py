"""Seeds, device choice, early stopping and the training loop."""
import numpy as np
import pytest
import torch

from recsys_ref.train import EarlyStopping, get_device, set_seed, torch_threads, train_loop


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


def test_train_loop_stops_early_and_restores_best_state():
    model = torch.nn.Linear(1, 1, bias=False)
    valid = [0.5, 0.7, 0.6, 0.65, 0.4, 0.9]

    def step(epoch):
        with torch.no_grad():
            model.weight.fill_(float(epoch))
        return 1.0 / (epoch + 1)

    it = iter(valid)
    hist = train_loop(step, 6, evaluate=lambda: next(it), patience=3, model=model, progress=False)
    assert hist.stopped_early and len(hist.rows) == 5  # epochs 2,3,4 did not improve
    assert hist.best_epoch == 1 and model.weight.item() == 1.0
    assert list(hist.frame.columns) == ["epoch", "loss", "valid"]


def test_train_loop_eval_every_and_errors():
    calls = []
    hist = train_loop(lambda e: 1.0, 5, evaluate=lambda: calls.append(1) or 0.0, eval_every=2,
                      progress=False)
    assert len(calls) == 3  # epochs 1, 3 and the last one (4)
    assert hist.frame["valid"].notna().sum() == 3
    with pytest.raises(ValueError, match="NaN"):
        train_loop(lambda e: float("nan"), 2, progress=False)
    with pytest.raises(ValueError, match="evaluate"):
        train_loop(lambda e: 1.0, 2, patience=1, progress=False)
    with pytest.raises(ValueError, match="num_epochs"):
        train_loop(lambda e: 1.0, 0, progress=False)


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
