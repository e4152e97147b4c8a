"""The trainer: configured optimizer/schedule/clipping, seeded reproducibility, stopping on request."""
from __future__ import annotations

import pytest
import torch

from _tiny import tiny_split
from a4nn.search.evaluation import SettingsError, TrainSettings
from a4nn.search.trainer import build_model, model_seed, train_network

torch.set_num_threads(1)
BITS = (1, 1, 0, 1, 1, 0, 1) * 3
SETTINGS = TrainSettings(epochs=3, batch_size=8, channels=4, checkpoints="none")


def test_trains_validates_every_epoch_and_learns() -> None:
    data = tiny_split()
    history = train_network(build_model(BITS, SETTINGS, data), data, SETTINGS, lambda m, _: False)
    assert [m.epoch for m in history] == [1, 2, 3]
    for m in history:
        assert 0 <= m.val_acc <= 100 and m.train_loss > 0 and m.val_loss > 0 and m.seconds > 0
    assert history[-1].val_acc >= 75.0  # the synthetic task is easy: the loop really trains


def test_stops_when_the_callback_says_so() -> None:
    data = tiny_split()
    seen: list[int] = []

    def stop_at_two(metrics, model) -> bool:
        assert isinstance(model, torch.nn.Module)
        seen.append(metrics.epoch)
        return metrics.epoch == 2

    history = train_network(build_model(BITS, SETTINGS, data), data, SETTINGS, stop_at_two)
    assert seen == [1, 2] and len(history) == 2


def test_settings_reach_optimizer_schedule_and_clipping(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: dict[str, object] = {}
    real_sgd, real_cosine, real_clip = torch.optim.SGD, torch.optim.lr_scheduler.CosineAnnealingLR, torch.nn.utils.clip_grad_norm_

    def sgd(params, **kwargs):
        calls["sgd"] = kwargs
        return real_sgd(params, **kwargs)

    def cosine(optimizer, t_max):
        calls["t_max"] = t_max
        return real_cosine(optimizer, t_max)

    def clip(params, max_norm):
        calls.setdefault("clip", set()).add(max_norm)
        return real_clip(params, max_norm)

    monkeypatch.setattr(torch.optim, "SGD", sgd)
    monkeypatch.setattr(torch.optim.lr_scheduler, "CosineAnnealingLR", cosine)
    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", clip)
    settings = TrainSettings(epochs=2, batch_size=8, channels=4, lr=0.05, momentum=0.8, weight_decay=1e-3,
                             grad_clip=2.5)
    data = tiny_split()
    train_network(build_model(BITS, settings, data), data, settings, lambda m, _: False)
    assert calls["sgd"] == {"lr": 0.05, "momentum": 0.8, "weight_decay": 1e-3}
    assert calls["t_max"] == 2 and calls["clip"] == {2.5}

    calls.clear()
    flat = TrainSettings(epochs=2, batch_size=8, channels=4, cosine=False)
    train_network(build_model(BITS, flat, data), data, flat, lambda m, _: False)
    assert "t_max" not in calls


def test_defaults_are_nsga_net_training() -> None:
    s = TrainSettings()
    assert (s.lr, s.momentum, s.weight_decay, s.grad_clip, s.cosine, s.epochs) == (0.025, 0.9, 3e-4, 5.0, True, 25)


def test_same_genome_and_seed_give_the_same_curve() -> None:
    data = tiny_split()
    run = lambda bits, settings: [m.val_loss for m in train_network(build_model(bits, settings, data), data,
                                                                     settings, lambda m, _: False)]
    assert run(BITS, SETTINGS) == run(BITS, SETTINGS)
    other_seed = TrainSettings(epochs=3, batch_size=8, channels=4, seed=1)
    assert run(BITS, other_seed) != run(BITS, SETTINGS)
    assert model_seed(BITS, 0) != model_seed((0,) + BITS[1:], 0)


def test_build_model_leaves_the_global_generator_alone() -> None:
    torch.manual_seed(123)
    expected = torch.rand(1)
    torch.manual_seed(123)
    build_model(BITS, SETTINGS, tiny_split())
    assert torch.equal(torch.rand(1), expected)


@pytest.mark.parametrize("bad", [dict(epochs=0), dict(batch_size=0), dict(lr=-1.0), dict(checkpoints="often"),
                                 dict(grad_clip=0.0)])
def test_bad_settings_are_named(bad: dict) -> None:
    with pytest.raises(SettingsError, match=next(iter(bad))):
        TrainSettings(**bad)


def test_empty_split_is_refused() -> None:
    data = tiny_split()
    model = build_model(BITS, SETTINGS, data)
    data.val_x, data.val_y = data.val_x[:0], data.val_y[:0]
    with pytest.raises(ValueError, match="empty"):
        train_network(model, data, SETTINGS, lambda m, _: False)


def _first_batchnorm(model: torch.nn.Module) -> torch.nn.BatchNorm2d:
    return next(m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d))


def test_precise_bn_validates_with_the_training_splits_statistics() -> None:
    """Before validating, BatchNorm statistics are those of the training split under the epoch's weights."""
    data = tiny_split()
    settings = TrainSettings(epochs=2, batch_size=8, channels=4, checkpoints="none", precise_bn=True)
    model = build_model(BITS, settings, data)
    seen: list[torch.Tensor] = []
    bn = _first_batchnorm(model)

    def capture(metrics, network) -> bool:
        seen.append(bn.running_mean.clone())
        return False

    train_network(model, data, settings, capture)
    # the first BatchNorm's input over the whole training split, with the final weights
    inputs: list[torch.Tensor] = []
    hook = bn.register_forward_hook(lambda module, args, output: inputs.append(args[0].detach()))
    model.train()
    with torch.no_grad():
        model(data.train_x)
    hook.remove()
    expected = inputs[0].mean(dim=(0, 2, 3))
    assert torch.allclose(seen[-1], expected, atol=1e-5)

    plain = TrainSettings(**{**settings.to_dict(), "precise_bn": False})
    model = build_model(BITS, plain, data)
    train_network(model, data, plain, lambda m, _: False)
    assert not torch.allclose(_first_batchnorm(model).running_mean, expected, atol=1e-3)


def test_precise_bn_changes_validation_only_not_training() -> None:
    data = tiny_split()
    on = TrainSettings(epochs=3, batch_size=8, channels=4, checkpoints="none", precise_bn=True)
    off = TrainSettings(**{**on.to_dict(), "precise_bn": False})
    with_bn = train_network(build_model(BITS, on, data), data, on, lambda m, _: False)
    without = train_network(build_model(BITS, off, data), data, off, lambda m, _: False)
    assert [m.train_loss for m in with_bn] == [m.train_loss for m in without]
    assert [m.val_loss for m in with_bn] != [m.val_loss for m in without]
