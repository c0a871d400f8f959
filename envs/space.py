"""The study's search space: 15 canonical hyperparameters, their defaults and validation.

The study's form accepted any number a person typed, so validation here rejects only what cannot
describe a training at all (a batch size of -3, an unknown optimizer, text where a number
belongs). Absurd but well-formed values (learning rate 8, momentum 4, 1,200 epochs) are accepted
and simulated by the backends; values that PyTorch's optimizer constructors refuse (Adam with
beta1 = 4, say) are accepted too and make the run *fail*, as they did in the study
(`optimizer_rejection`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any, Literal

import numpy as np

LOSSES: tuple[str, ...] = ("cross_entropy", "nll", "mse", "l1")
OPTIMIZERS: tuple[str, ...] = ("sgd", "averaged_sgd", "adagrad", "rmsprop", "adadelta", "adam")
RATIONALES: dict[int, str] = {
    1: "just a guess",
    2: "suggested default",
    3: "worked for me in the past",
    4: "learned from previous submissions",
    5: "other",
}
GUESS, DEFAULT, PAST, LEARNED, OTHER = 1, 2, 3, 4, 5

Kind = Literal["int", "float", "categorical"]


@dataclass(frozen=True)
class Hyperparameter:
    """One field of the study's form."""

    name: str
    kind: Kind
    default: Any  # None for the four mandatory fields
    choices: tuple[str, ...] = ()
    lower: float | None = None  # smallest allowed value
    lower_inclusive: bool = True
    used_by: tuple[str, ...] = OPTIMIZERS

    @property
    def mandatory(self) -> bool:
        return self.default is None

    def allowed(self) -> str:
        """Human-readable description of the allowed values."""
        if self.kind == "categorical":
            return "one of " + ", ".join(self.choices)
        what = "an integer" if self.kind == "int" else "a finite number"
        if self.lower is None:
            return what
        op = ">=" if self.lower_inclusive else ">"
        low = int(self.lower) if self.kind == "int" else self.lower
        return f"{what} {op} {low}"


HYPERPARAMETERS: tuple[Hyperparameter, ...] = (
    Hyperparameter("epochs", "int", None, lower=1),
    Hyperparameter("batch_size", "int", None, lower=1),
    Hyperparameter("loss", "categorical", None, choices=LOSSES),
    Hyperparameter("optimizer", "categorical", None, choices=OPTIMIZERS),
    Hyperparameter("lr", "float", 0.001, lower=0.0, lower_inclusive=False),
    Hyperparameter("weight_decay", "float", 0.0, lower=0.0),
    Hyperparameter("momentum", "float", 0.0, lower=0.0, used_by=("sgd", "rmsprop")),
    Hyperparameter("rho", "float", 0.9, used_by=("adadelta",)),
    Hyperparameter("lambd", "float", 0.0001, used_by=("averaged_sgd",)),
    Hyperparameter("alpha", "float", 0.75, used_by=("averaged_sgd", "rmsprop")),
    Hyperparameter("eps", "float", 1e-06, used_by=("adam", "rmsprop", "adadelta")),
    Hyperparameter("lr_decay", "float", 0.0, lower=0.0, used_by=("adagrad",)),
    Hyperparameter("initial_accumulator_value", "float", 0.0, lower=0.0, used_by=("adagrad",)),
    Hyperparameter("beta1", "float", 0.9, used_by=("adam",)),
    Hyperparameter("beta2", "float", 0.999, used_by=("adam",)),
)
SPACE: dict[str, Hyperparameter] = {hp.name: hp for hp in HYPERPARAMETERS}
NAMES: tuple[str, ...] = tuple(SPACE)
FLOAT_NAMES: tuple[str, ...] = tuple(hp.name for hp in HYPERPARAMETERS if hp.kind == "float")
DEFAULTS: dict[str, Any] = {hp.name: hp.default for hp in HYPERPARAMETERS if not hp.mandatory}

def fields_read_by(optimizer: str | None) -> tuple[str, ...]:
    """The optional fields `optimizer` reads, in canonical order (None: every optional field)."""
    return tuple(hp.name for hp in HYPERPARAMETERS
                 if not hp.mandatory and (optimizer is None or optimizer in hp.used_by))


class InvalidConfigError(ValueError):
    """A value that cannot describe a training; names the field, the value and what is allowed."""

    def __init__(self, field: str, value: Any, allowed: str) -> None:
        self.field, self.value, self.allowed = field, value, allowed
        super().__init__(f"{field}={value!r} is not allowed: expected {allowed}")


@dataclass(frozen=True)
class Config:
    """A complete, validated configuration (all 15 fields, canonical names)."""

    epochs: int
    batch_size: int
    loss: str
    optimizer: str
    lr: float = 0.001
    weight_decay: float = 0.0
    momentum: float = 0.0
    rho: float = 0.9
    lambd: float = 0.0001
    alpha: float = 0.75
    eps: float = 1e-06
    lr_decay: float = 0.0
    initial_accumulator_value: float = 0.0
    beta1: float = 0.9
    beta2: float = 0.999

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> Config:
        """Validate `values` (canonical names; missing optional fields take the defaults)."""
        return validate(values)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def replace(self, **changes: Any) -> Config:
        """A validated copy with some fields changed."""
        return validate({**self.to_dict(), **changes})

    def optimizer_fields(self) -> dict[str, Any]:
        """The fields the chosen optimizer reads (lr and weight_decay included)."""
        return {name: getattr(self, name) for name in fields_read_by(self.optimizer)}

    def is_default(self, name: str) -> bool:
        return name in DEFAULTS and getattr(self, name) == DEFAULTS[name]


assert tuple(f.name for f in fields(Config)) == NAMES


def _is_missing(value: Any) -> bool:
    """None, an empty cell, or the NaN a dataframe puts in an empty cell."""
    if value is None:
        return True
    if isinstance(value, str):
        return value.strip() == ""
    return isinstance(value, float) and math.isnan(value)


def _parse_number(hp: Hyperparameter, value: Any) -> float:
    if isinstance(value, bool):
        raise InvalidConfigError(hp.name, value, hp.allowed())
    try:
        number = float(value.strip()) if isinstance(value, str) else float(value)
    except (TypeError, ValueError):
        raise InvalidConfigError(hp.name, value, hp.allowed()) from None
    if not math.isfinite(number):
        raise InvalidConfigError(hp.name, value, hp.allowed())
    return number


def validate_field(name: str, value: Any) -> Any:
    """Parse and check one field; returns the canonical Python value."""
    if name not in SPACE:
        raise InvalidConfigError(name, value, "a field among " + ", ".join(NAMES))
    hp = SPACE[name]
    if hp.kind == "categorical":
        text = value.strip().lower() if isinstance(value, str) else value
        if text not in hp.choices:
            raise InvalidConfigError(name, value, hp.allowed())
        return text
    number = _parse_number(hp, value)
    if hp.kind == "int":
        if number != int(number):
            raise InvalidConfigError(name, value, hp.allowed())
        number = int(number)
    if hp.lower is not None and (
        number < hp.lower or (not hp.lower_inclusive and number == hp.lower)
    ):
        raise InvalidConfigError(name, value, hp.allowed())
    return number


def validate(values: Mapping[str, Any], *, strict_names: bool = False) -> Config:
    """Build a `Config` from a mapping of canonical names.

    Missing or empty optional fields take the study's defaults; missing mandatory fields and
    values that cannot describe a training raise `InvalidConfigError`. Unknown keys are ignored
    unless `strict_names` is set.
    """
    if strict_names:
        for key in values:
            if key not in SPACE:
                raise InvalidConfigError(key, values[key], "a field among " + ", ".join(NAMES))
    parsed: dict[str, Any] = {}
    for hp in HYPERPARAMETERS:
        raw = values.get(hp.name)
        if _is_missing(raw):
            if hp.mandatory:
                raise InvalidConfigError(hp.name, raw, hp.allowed() + " (mandatory)")
            parsed[hp.name] = hp.default
        else:
            parsed[hp.name] = validate_field(hp.name, raw)
    return Config(**parsed)


# PyTorch's constructor checks (torch.optim, 2.x), applied to the fields each optimizer reads.
_TORCH_CHECKS: dict[str, tuple[tuple[str, str, Any], ...]] = {
    "adagrad": (("eps", "0 <= eps", lambda v: v >= 0),),
    "rmsprop": (("eps", "0 <= eps", lambda v: v >= 0), ("alpha", "0 <= alpha", lambda v: v >= 0)),
    "adadelta": (("eps", "0 <= eps", lambda v: v >= 0),
                 ("rho", "0 <= rho <= 1", lambda v: 0 <= v <= 1)),
    "adam": (("eps", "0 <= eps", lambda v: v >= 0),
             ("beta1", "0 <= beta1 < 1", lambda v: 0 <= v < 1),
             ("beta2", "0 <= beta2 < 1", lambda v: 0 <= v < 1)),
}


def optimizer_rejection(config: Config) -> str | None:
    """Why PyTorch's optimizer constructor would refuse this configuration, or None.

    Such a run fails at its start (the study logged these as unfinished); it is simulated, not
    rejected as input.
    """
    for name, rule, ok in _TORCH_CHECKS.get(config.optimizer, ()):
        value = getattr(config, name)
        if not ok(value):
            return f"torch.optim refuses {config.optimizer} with {name}={value!r} (needs {rule})"
    return None


def to_row(config: Config) -> dict[str, str]:
    """Flat table row with canonical column names (strings, as written to TSV)."""
    return {name: format_value(getattr(config, name)) for name in NAMES}


def from_row(row: Mapping[str, Any]) -> Config:
    """Inverse of `to_row`; accepts any mapping with canonical column names."""
    return validate(row)


def format_value(value: Any) -> str:
    if isinstance(value, float):
        return repr(value) if value != int(value) or abs(value) >= 1e16 else f"{value:.1f}"
    return str(value)


def config_arrays(configs: Iterable[Config]) -> dict[str, np.ndarray]:
    """Column arrays for vectorized backends: floats as float64, categories as int indices."""
    configs = list(configs)
    arrays: dict[str, np.ndarray] = {}
    for hp in HYPERPARAMETERS:
        column = [getattr(c, hp.name) for c in configs]
        if hp.kind == "categorical":
            index = {choice: i for i, choice in enumerate(hp.choices)}
            arrays[hp.name] = np.array([index[v] for v in column], dtype=np.int64)
        elif hp.kind == "int":
            arrays[hp.name] = np.array(column, dtype=np.int64)
        else:
            arrays[hp.name] = np.array(column, dtype=np.float64)
    return arrays
