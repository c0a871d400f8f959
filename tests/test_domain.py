"""The search domain as optimizers see it: conditional fields, scales, defaults, errors."""

from __future__ import annotations

import math

import numpy as np
import optuna
import pytest

from agents.domain import DOMAIN_DIR, Domain, DomainError, load_domain
from envs.space import DEFAULTS, OPTIMIZERS, SPACE, Config


@pytest.fixture(scope="module")
def domain() -> Domain:
    return load_domain("default")


def _ask(domain: Domain, n: int, seed: int = 0) -> list[dict]:
    study = optuna.create_study(direction="maximize",
                                sampler=optuna.samplers.RandomSampler(seed=seed))
    raws = []
    for _ in range(n):
        trial = study.ask()
        raws.append(domain.suggest(trial))
        study.tell(trial, 0.5)
    return raws


def test_default_domain_is_documented_and_recorded(domain):
    assert domain.name == "default"
    assert set(domain.names) == set(SPACE)
    assert domain.param("optimizer").choices == OPTIMIZERS
    assert "l1" not in domain.param("loss").choices
    described = domain.describe()
    assert described["domain"] == "default" and len(described["domain_hash"]) == 12
    assert "l1" in (DOMAIN_DIR / "default.yaml").read_text()  # the exclusion is explained


def test_hash_changes_with_any_range_or_pinned_value(domain):
    spec = domain.spec()
    spec["search"]["lr"] = {"low": 1e-4, "high": 1.0, "log": True}
    assert Domain.from_spec(spec).digest != domain.digest
    assert domain.with_fixed({"loss": "cross_entropy"}).digest != domain.digest
    assert Domain.from_spec(domain.spec()).digest == domain.digest


def test_only_the_chosen_optimizers_fields_are_searched(domain):
    for raw in _ask(domain, 120):
        optimizer = raw["optimizer"]
        expected = {name for name, hp in SPACE.items() if optimizer in hp.used_by}
        assert set(raw) == expected
        config = domain.config(raw)
        for name in set(DEFAULTS) - expected:
            assert getattr(config, name) == DEFAULTS[name], name


def test_log_scales_integers_and_zero_weight_decay(domain):
    raws = _ask(domain, 600, seed=1)
    configs = [domain.config(r) for r in raws]
    lrs = np.log10([c.lr for c in configs])
    assert lrs.min() >= -5 and lrs.max() <= 0
    assert 0.3 < np.mean(lrs < -3) < 0.5  # 2 of 5 decades: log-uniform, not uniform
    batch = np.array([c.batch_size for c in configs])
    assert all(isinstance(c.batch_size, int) and isinstance(c.epochs, int) for c in configs)
    assert batch.min() >= 16 and batch.max() <= 512 and 0.4 < np.mean(batch < 90) < 0.6
    zeros = np.mean([c.weight_decay == 0.0 for c in configs])
    assert 0.1 < zeros < 0.25  # log(1e-6/1e-7) / log(0.1/1e-7) = 1/6
    assert min(c.weight_decay for c in configs if c.weight_decay > 0) >= 1e-6


def test_encode_round_trips_in_domain_and_clips_outside(domain):
    config = Config.from_mapping({"epochs": 12, "batch_size": 64, "loss": "nll",
                                  "optimizer": "sgd", "lr": 0.05, "momentum": 0.9})
    raw = domain.encode(config)
    assert set(raw) == {"epochs", "batch_size", "loss", "optimizer", "lr", "weight_decay",
                        "momentum"}
    assert domain.config(raw) == config
    wild = config.replace(lr=8.0, epochs=500, momentum=4.0, loss="l1")
    clipped = domain.encode(wild)
    assert clipped["lr"] == 1.0 and clipped["epochs"] == 30 and clipped["momentum"] == 0.99
    assert "loss" not in clipped  # l1 is outside the domain's choices


def test_pinning_restricting_and_relaxing(domain):
    pinned = domain.with_fixed({"loss": "cross_entropy", "epochs": 5})
    assert "loss" not in pinned.names and pinned.fixed["epochs"] == 5
    raw = _ask(pinned, 1)[0]
    assert "loss" not in raw and "epochs" not in raw
    assert pinned.config(raw).epochs == 5 and pinned.config(raw).loss == "cross_entropy"
    small = pinned.restrict(("optimizer", "lr", "batch_size"))
    assert small.names == ("batch_size", "optimizer", "lr")
    assert small.config({"optimizer": "adam", "lr": 0.01, "batch_size": 32}).momentum == 0.0
    relaxed = domain.relax_integers()
    assert isinstance(relaxed.param("batch_size").distribution(),
                      optuna.distributions.FloatDistribution)
    assert relaxed.config({**raw, "loss": "nll", "epochs": 7.6, "batch_size": 40.4}).epochs == 8


@pytest.mark.parametrize("spec, message", [
    ({"search": {"weight_decay": {"low": 0.0, "high": 1.0, "log": True}}}, "needs low > 0"),
    ({"search": {"lr": {"low": 0.0, "high": 1.0}}}, "search.lr: lr=0.0 is not allowed"),
    ({"search": {"learning_rate": {"low": 1e-4, "high": 1.0}}}, "unknown field"),
    ({"search": {"loss": {"choices": ["hinge"]}}}, "loss='hinge'"),
    ({"search": {"epochs": {"low": 1, "high": 10}}}, "mandatory field"),
    ({"search": {"lr": {"low": 1e-3, "high": 1e-4}}}, "must be below"),
    ({"search": {"momentum": {"low": 0.0, "high": 0.9, "zero_below": 0.1}}}, "zero_below"),
    ({"serach": {}}, "unknown"),
])
def test_bad_domains_are_rejected_with_the_field_named(spec, message):
    full = {"fixed": {"epochs": 3, "batch_size": 32, "loss": "nll", "optimizer": "adam"}}
    if "search" in spec and "epochs" in spec["search"] and message == "mandatory field":
        full = {"fixed": {"batch_size": 32, "optimizer": "adam"}}
    with pytest.raises(DomainError, match=message):
        load_domain({**full, **spec})


def test_load_by_name_path_and_mapping(tmp_path, domain):
    path = tmp_path / "mine.yaml"
    path.write_text("search:\n  lr: {low: 1.0e-4, high: 0.1, log: true}\n"
                    "fixed: {epochs: 3, batch_size: 32, loss: nll, optimizer: adam}\n")
    mine = load_domain(str(path))
    assert mine.name == "mine" and mine.names == ("lr",)
    assert math.isclose(mine.param("lr").to_unit(1e-4 * 10 ** 1.5), 0.5)
    assert load_domain(domain.spec()).digest == domain.digest
    with pytest.raises(DomainError, match="not found"):
        load_domain("no_such_domain")
