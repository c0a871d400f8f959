"""The search space: defaults, validation errors, rows and arrays."""

import math

import numpy as np
import pytest

from envs.space import (
    DEFAULTS,
    NAMES,
    SPACE,
    Config,
    InvalidConfigError,
    config_arrays,
    from_row,
    optimizer_rejection,
    to_row,
    validate,
)

MINIMAL = {"epochs": 10, "batch_size": 32, "loss": "cross_entropy", "optimizer": "adam"}


def test_fifteen_canonical_fields_with_study_defaults():
    assert len(NAMES) == 15
    assert DEFAULTS == {
        "lr": 0.001, "weight_decay": 0.0, "momentum": 0.0, "rho": 0.9, "lambd": 0.0001,
        "alpha": 0.75, "eps": 1e-06, "lr_decay": 0.0, "initial_accumulator_value": 0.0,
        "beta1": 0.9, "beta2": 0.999,
    }
    assert set(SPACE["alpha"].used_by) == {"averaged_sgd", "rmsprop"}
    assert set(SPACE["eps"].used_by) == {"adam", "rmsprop", "adadelta"}


def test_missing_optional_fields_take_defaults_and_strings_are_parsed():
    config = validate({**MINIMAL, "lr": "0.01", "epochs": "3", "weight_decay": ""})
    assert config.lr == 0.01 and config.epochs == 3 and config.weight_decay == 0.0
    assert config.momentum == 0.0 and config.beta2 == 0.999
    assert validate({**MINIMAL, "momentum": math.nan}).momentum == 0.0  # an empty cell


@pytest.mark.parametrize(
    ("field", "value", "allowed"),
    [
        ("batch_size", -3, "an integer >= 1"),
        ("batch_size", 2.5, "an integer >= 1"),
        ("epochs", 0, "an integer >= 1"),
        ("optimizer", "lbfgs", "one of sgd, averaged_sgd, adagrad, rmsprop, adadelta, adam"),
        ("loss", "hinge", "one of cross_entropy, nll, mse, l1"),
        ("lr", "fast", "a finite number > 0.0"),
        ("lr", 0, "a finite number > 0.0"),
        ("lr", "inf", "a finite number > 0.0"),
        ("weight_decay", -0.1, "a finite number >= 0.0"),
        ("momentum", -1, "a finite number >= 0.0"),
        ("eps", "nan", "a finite number"),
    ],
)
def test_bad_values_name_field_value_and_what_is_allowed(field, value, allowed):
    with pytest.raises(InvalidConfigError) as excinfo:
        validate({**MINIMAL, field: value})
    error = excinfo.value
    assert (error.field, error.value, error.allowed) == (field, value, allowed)
    assert field in str(error) and repr(value) in str(error) and allowed in str(error)


def test_missing_mandatory_field_is_named():
    with pytest.raises(InvalidConfigError, match="optimizer"):
        validate({"epochs": 1, "batch_size": 1, "loss": "l1"})


def test_unknown_field_rejected_only_when_strict():
    assert validate({**MINIMAL, "comment": "x"}).epochs == 10
    with pytest.raises(InvalidConfigError, match="comment"):
        validate({**MINIMAL, "comment": "x"}, strict_names=True)


def test_absurd_human_values_are_accepted():
    config = validate({**MINIMAL, "optimizer": "sgd", "lr": 8, "momentum": 4, "batch_size": 1,
                       "epochs": 1200, "eps": 6, "beta2": 0})
    assert (config.lr, config.momentum, config.epochs) == (8.0, 4.0, 1200)
    assert optimizer_rejection(config) is None


def test_values_torch_refuses_make_the_run_fail_not_the_input():
    config = validate({**MINIMAL, "beta1": 4, "beta2": 8})
    assert "beta1=4.0" in optimizer_rejection(config)
    assert optimizer_rejection(config.replace(optimizer="sgd")) is None  # sgd ignores betas
    assert "rho" in optimizer_rejection(validate({**MINIMAL, "optimizer": "adadelta", "rho": 2}))


def test_row_round_trip_and_arrays():
    config = validate({**MINIMAL, "lr": 3e-4, "weight_decay": 1e-5})
    row = to_row(config)
    assert set(row) == set(NAMES) and row["lr"] == "0.0003" and row["epochs"] == "10"
    assert from_row(row) == config
    arrays = config_arrays([config, config.replace(optimizer="sgd", loss="mse")])
    np.testing.assert_array_equal(arrays["optimizer"], [5, 0])
    np.testing.assert_array_equal(arrays["loss"], [0, 2])
    assert arrays["lr"].dtype == np.float64 and arrays["epochs"].dtype == np.int64


def test_config_helpers():
    config = Config(**MINIMAL)
    assert set(config.optimizer_fields()) == {"lr", "weight_decay", "eps", "beta1", "beta2"}
    assert config.is_default("lr") and not config.is_default("epochs")
    with pytest.raises(InvalidConfigError):
        config.replace(batch_size=0)
