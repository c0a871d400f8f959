"""The surrogate's known behaviours, for its semantic priors and for the shipped calibration."""

import dataclasses

import numpy as np
import pytest

from envs.space import config_arrays, validate
from envs.surrogate import (
    CHANCE,
    PARAMS_FILE,
    SurrogateBackend,
    SurrogateParams,
    components,
    expected_accuracy,
    final_test_batch,
    run_outcomes,
    seconds_per_epoch,
    simulate,
)

BASE = {"epochs": 20, "batch_size": 64, "loss": "cross_entropy", "optimizer": "adam",
        "lr": 1e-4}


@pytest.fixture(params=["prior", "calibrated"])
def params(request):
    return SurrogateParams() if request.param == "prior" else SurrogateParams.load(PARAMS_FILE)


def arrays(*changes, repeat=1):
    return config_arrays([validate({**BASE, **c}) for c in changes for _ in range(repeat)])


def grid(name, values, **fixed):
    return arrays(*({name: v, **fixed} for v in values))


def test_divergence_probability_rises_with_lr_for_sgd_and_adam(params):
    lrs = 10.0 ** np.arange(-5, 3.5, 0.5)
    for optimizer in ("sgd", "adam"):
        p_div = components(grid("lr", lrs, optimizer=optimizer), params).p_diverge
        assert np.all(np.diff(p_div) >= -1e-12), optimizer
        assert p_div[0] < 0.01 and p_div[-1] > 0.5, optimizer


def test_hard_divergences_and_failures(params):
    a = arrays({"optimizer": "sgd", "momentum": 4.0}, {"optimizer": "rmsprop", "alpha": 2.0},
               {"optimizer": "sgd", "lr": 1.0, "weight_decay": 5.0},
               {"batch_size": 100_000})
    c = components(a, params)
    assert np.all(c.p_diverge[:3] == 1.0) and np.all(c.hazard[:3] == 1.0)
    assert c.failed.tolist() == [False, False, False, True]
    out = run_outcomes(a, np.random.default_rng(0), params)
    assert out.diverged[:3].all() and out.failed[3] and np.isnan(out.val_accuracy).all()


def test_l1_is_at_chance(params):
    a = grid("lr", [1e-5, 1e-4, 1e-3, 1e-2], loss="l1", epochs=100)
    curves = simulate(a, 30, np.random.default_rng(1), params)
    assert curves.stuck.all() and curves.val_accuracy.max() < 0.16
    assert abs(curves.val_accuracy.mean() - CHANCE) < 0.01


def test_nll_gives_exactly_the_curves_of_cross_entropy(params):
    changes = [{"lr": lr, "optimizer": opt} for lr in (1e-4, 1e-2, 3.0)
               for opt in ("sgd", "adam", "adadelta")]
    ce = simulate(arrays(*changes), 12, np.random.default_rng(5), params)
    nll = simulate(arrays(*({**c, "loss": "nll"} for c in changes)), 12,
                   np.random.default_rng(5), params)
    for field in dataclasses.fields(ce):
        assert np.array_equal(getattr(ce, field.name), getattr(nll, field.name)), field.name


@pytest.mark.parametrize("optimizer", ["sgd", "adadelta"])
def test_default_lr_is_slow_for_sgd_and_adadelta(params, optimizer):
    good = 10.0 ** params.center[optimizer]
    c = components(grid("lr", [1e-3, good], optimizer=optimizer, batch_size=128), params)
    slow, fast = expected_accuracy(c, np.array([5, 5]))
    assert c.rate[0] < c.rate[1] / 3 and fast - slow > 0.1


def test_seconds_per_epoch_rise_for_small_batches(params):
    sizes = np.array([1, 2, 5, 10, 32, 64, 256, 1000], dtype=float)
    seconds = seconds_per_epoch(sizes, params, params.n_train)
    assert np.all(np.diff(seconds) < 0) and seconds[0] > 20 * seconds[-2]


def test_weight_decay_underfits(params):
    c = components(grid("weight_decay", [0.0, 1e-3, 0.1], epochs=30), params)
    none, small, large = expected_accuracy(c, np.full(3, 30))
    assert none > 0.6 and small > none - 0.1 and large < 0.2


def test_ceiling_is_near_080(params):
    a = grid("lr", 10.0 ** np.linspace(-6, -2, 40), epochs=200, batch_size=32)
    assert expected_accuracy(components(a, params), np.full(40, 200)).max() <= 0.82
    good = arrays({"epochs": 100, "batch_size": 32}, repeat=20_000)
    val = run_outcomes(good, np.random.default_rng(2), params).val_accuracy
    assert np.nanpercentile(val, 99) <= 0.86 and np.nanmedian(val) > 0.6


def test_same_seed_same_curves_other_seed_differs(params):
    a = grid("lr", [1e-5, 1e-4, 1e-3, 1e-1, 10.0], optimizer="sgd")
    first, second, other = (simulate(a, 15, np.random.default_rng(s), params)
                            for s in (3, 3, 4))
    assert all(np.array_equal(getattr(first, f.name), getattr(second, f.name))
               for f in dataclasses.fields(first))
    assert not np.array_equal(first.val_accuracy, other.val_accuracy)


def test_run_streams_epochs_of_very_long_runs():
    backend = SurrogateBackend()
    config = validate({**BASE, "epochs": 10**9})
    run = backend.start(config, np.random.default_rng(0))
    reports = [run.next_epoch() for _ in range(3 * 64 + 1)]
    assert [r.epoch for r in reports] == list(range(1, 3 * 64 + 2))
    assert all(np.isfinite(r.train_loss) and 0 <= r.val_accuracy <= 1 for r in reports)
    assert reports[0].seconds > reports[1].seconds > 0  # the first epoch pays the start-up
    assert reports[0].batch_losses.shape == (16,)


def test_final_protocol_batch():
    p = SurrogateParams.load()
    configs = [validate(BASE), validate({**BASE, "optimizer": "sgd", "momentum": 4.0}),
               validate({**BASE, "beta1": 4.0})]
    results = final_test_batch(configs, np.random.default_rng(0), 10, p)
    assert [len(r.test_accuracies) for r in results] == [10, 10, 10]
    assert results[0].test_accuracy > 0.4 and not results[0].diverged
    assert results[1].diverged and results[1].test_accuracy == CHANCE
    assert results[2].test_accuracy == CHANCE and results[2].seconds == 0.0
    again = final_test_batch(configs, np.random.default_rng(0), 10, p)
    assert [r.test_accuracies for r in again] == [r.test_accuracies for r in results]


def test_params_round_trip(tmp_path):
    p = SurrogateParams.load()
    p.save(tmp_path / "p.json")
    assert SurrogateParams.load(tmp_path / "p.json") == p
    assert SurrogateBackend(tmp_path / "p.json").describe()["surrogate_version"] == p.version
