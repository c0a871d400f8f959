"""The search space as optimizers see it: ranges, scales, conditional fields, pinned values.

A `Domain` is read from `conf/domain/<name>.yaml` (or a mapping of the same shape):

    name: default
    search:                       # the searched fields and their ranges
      lr: {low: 1.0e-5, high: 1.0, log: true}
      weight_decay: {low: 1.0e-7, high: 0.1, log: true, zero_below: 1.0e-6}
      optimizer: {choices: [sgd, adam]}
    fixed: {loss: cross_entropy}  # fields pinned to one value

The kind of each field (int, float, categorical) comes from `envs.space`. Fields that are neither
searched nor fixed keep the study's defaults; the four mandatory fields (epochs, batch_size,
loss, optimizer) must be searched or fixed. Fields are **conditional** on the optimizer: a field
is searched only when the chosen optimizer reads it (`Hyperparameter.used_by`), so an Adam trial
never samples momentum. `zero_below` makes 0 reachable on a log scale: sampled values below it
mean 0 (weight decay off), so about log(zero_below/low)/log(high/low) of a uniform draw is 0.

Optimizers work on *raw* parameter values (what Optuna stores); `Domain.config` turns them into
a `Config` and `Domain.encode` maps any `Config` (a person's, say) back into the domain.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from envs.space import (
    DEFAULTS,
    HYPERPARAMETERS,
    SPACE,
    Config,
    InvalidConfigError,
    validate_field,
)

DOMAIN_DIR = Path(__file__).resolve().parents[1] / "conf" / "domain"
MANDATORY: tuple[str, ...] = tuple(hp.name for hp in HYPERPARAMETERS if hp.mandatory)
_PARAM_KEYS = {"low", "high", "log", "zero_below", "choices"}


class DomainError(ValueError):
    """A domain specification that cannot be used (names the field and the problem)."""


@dataclass(frozen=True)
class Param:
    """One searched field: its range and scale (numeric) or its choices (categorical)."""

    name: str
    low: float = 0.0
    high: float = 1.0
    log: bool = False
    zero_below: float | None = None
    choices: tuple[str, ...] = ()
    relaxed: bool = False  # an integer field searched as a float and rounded

    @cached_property
    def kind(self) -> str:
        return SPACE[self.name].kind

    @cached_property
    def integer(self) -> bool:
        """Whether raw values are integers (integer fields that are not relaxed)."""
        return self.kind == "int" and not self.relaxed

    @cached_property
    def categorical(self) -> bool:
        return self.kind == "categorical"

    def active(self, optimizer: str) -> bool:
        """Whether `optimizer` reads this field (so the field is searched for it)."""
        return optimizer in SPACE[self.name].used_by

    def distribution(self) -> BaseDistribution:
        """The Optuna distribution of the raw value."""
        if self.categorical:
            return CategoricalDistribution(self.choices)
        if self.integer:
            return IntDistribution(int(self.low), int(self.high), log=self.log)
        return FloatDistribution(self.low, self.high, log=self.log)

    def decode(self, raw: Any) -> Any:
        """The field value a raw value stands for (0 below `zero_below`)."""
        if self.categorical:
            return raw
        if self.kind == "int":
            return int(round(raw))
        if self.zero_below is not None and raw < self.zero_below:
            return 0.0
        return float(raw)

    def encode(self, value: Any) -> Any | None:
        """The raw value nearest to a field value (clipped into range); None if impossible."""
        if self.categorical:
            return value if value in self.choices else None
        if self.zero_below is not None and value < self.zero_below:
            return self.low
        raw = min(max(value, self.low), self.high)
        return int(round(raw)) if self.integer else float(raw)

    def to_unit(self, raw: Any) -> float:
        """A numeric raw value on [0, 1] along the field's scale."""
        if self.log:
            return math.log(raw / self.low) / math.log(self.high / self.low)
        return (raw - self.low) / (self.high - self.low)

    def from_unit(self, unit: float) -> Any:
        """Inverse of `to_unit` (rounded for integers)."""
        unit = min(max(float(unit), 0.0), 1.0)
        if self.log:
            raw = self.low * (self.high / self.low) ** unit
        else:
            raw = self.low + unit * (self.high - self.low)
        raw = min(max(raw, self.low), self.high)
        return int(round(raw)) if self.integer else float(raw)

    def draw(self, rng: np.random.Generator) -> Any:
        """A uniform raw value along the field's scale (a uniform choice if categorical)."""
        if self.categorical:
            return self.choices[int(rng.integers(len(self.choices)))]
        return self.from_unit(rng.random())

    def grid(self, points: int) -> list[Any]:
        """`points` raw values evenly spaced along the scale (all choices if categorical)."""
        if self.categorical:
            return list(self.choices)
        units = np.linspace(0.0, 1.0, points) if points > 1 else [0.5]
        return list(dict.fromkeys(self.from_unit(u) for u in units))

    def spec(self) -> dict[str, Any]:
        if self.categorical:
            return {"choices": list(self.choices)}
        spec: dict[str, Any] = {"low": self.low, "high": self.high, "log": self.log}
        if self.zero_below is not None:
            spec["zero_below"] = self.zero_below
        if self.relaxed:
            spec["relaxed"] = True
        return spec


def _param(name: str, spec: Mapping[str, Any]) -> Param:
    """Validate one entry of a domain's `search` section."""
    try:
        return _checked_param(name, spec)
    except InvalidConfigError as error:
        raise DomainError(f"search.{name}: {error}") from None


def _checked_param(name: str, spec: Mapping[str, Any]) -> Param:
    if name not in SPACE:
        raise DomainError(f"search.{name}: unknown field; expected one of {', '.join(SPACE)}")
    if not isinstance(spec, Mapping) or set(spec) - _PARAM_KEYS:
        raise DomainError(f"search.{name}: expected a mapping with keys among {_PARAM_KEYS}")
    hp = SPACE[name]
    if hp.kind == "categorical":
        choices = tuple(validate_field(name, c) for c in spec.get("choices", hp.choices))
        if not choices or len(set(choices)) != len(choices):
            raise DomainError(f"search.{name}: choices must be distinct values of {hp.choices}")
        return Param(name, choices=choices)
    if "low" not in spec or "high" not in spec:
        raise DomainError(f"search.{name}: needs low and high")
    low, high = validate_field(name, spec["low"]), validate_field(name, spec["high"])
    log, zero = bool(spec.get("log", False)), spec.get("zero_below")
    if not low < high:
        raise DomainError(f"search.{name}: low={low} must be below high={high}")
    if log and low <= 0:
        raise DomainError(f"search.{name}: a log scale needs low > 0 (use zero_below for 0)")
    if zero is not None and not (log and hp.kind == "float" and hp.lower == 0.0
                                 and low < zero < high):
        raise DomainError(f"search.{name}: zero_below needs a log float field with a lower "
                          f"bound of 0 and low < zero_below < high")
    return Param(name, float(low), float(high), log, None if zero is None else float(zero))


@dataclass(frozen=True)
class Domain:
    """A search domain: searched `params` (in the study's field order) and `fixed` values."""

    name: str
    params: tuple[Param, ...]
    fixed: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        names = {p.name for p in self.params}
        for name in MANDATORY:
            if name not in names and name not in self.fixed:
                raise DomainError(f"domain {self.name!r}: mandatory field {name} must be "
                                  f"searched or fixed")
        if overlap := names & set(self.fixed):
            raise DomainError(f"domain {self.name!r}: {sorted(overlap)} both searched and fixed")

    # ------------------------------------------------------------------ building
    @classmethod
    def from_spec(cls, spec: Mapping[str, Any], name: str | None = None) -> Domain:
        """A domain from a mapping with `name`, `search` and `fixed` (see module docstring)."""
        unknown = set(spec) - {"name", "search", "fixed", "description"}
        if unknown:
            raise DomainError(f"domain keys {sorted(unknown)} unknown; expected name, search, "
                              f"fixed, description")
        search = dict(spec.get("search") or {})
        params = tuple(_param(hp.name, search[hp.name]) for hp in HYPERPARAMETERS
                       if hp.name in search)
        for key in search:
            if key not in SPACE:
                _param(key, search[key])  # raises with the field named
        fixed = _pinned(spec.get("fixed") or {})
        return cls(str(name or spec.get("name") or "custom"), params, fixed)

    def with_fixed(self, fixed: Mapping[str, Any]) -> Domain:
        """A copy with more fields pinned (they leave the search)."""
        if not fixed:
            return self
        pinned = _pinned(fixed)
        params = tuple(p for p in self.params if p.name not in pinned)
        return Domain(self.name, params, {**self.fixed, **pinned})

    def restrict(self, names: tuple[str, ...]) -> Domain:
        """A copy that searches only `names`; the other searched fields keep study defaults."""
        for name in names:
            if name not in self.names:
                raise DomainError(f"{name} is not searched in domain {self.name!r} (searched: "
                                  f"{', '.join(self.names)}; fixed: {', '.join(self.fixed)})")
        return Domain(self.name, tuple(p for p in self.params if p.name in names), self.fixed)

    def relax_integers(self) -> Domain:
        """A copy whose integer fields are searched as floats and rounded (for GP and CMA-ES
        samplers, whose local search over long integer ranges is slow)."""
        params = tuple(replace(p, relaxed=p.kind == "int") for p in self.params)
        return Domain(self.name, params, self.fixed)

    # ---------------------------------------------------------------- recording
    def spec(self) -> dict[str, Any]:
        return {"name": self.name, "search": {p.name: p.spec() for p in self.params},
                "fixed": dict(self.fixed)}

    @property
    def digest(self) -> str:
        """A short hash of the full specification (ranges, scales, pinned values)."""
        text = json.dumps(self.spec(), sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    def describe(self) -> dict[str, Any]:
        return {"domain": self.name, "domain_hash": self.digest}

    # ------------------------------------------------------------------- access
    @cached_property
    def names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.params)

    @cached_property
    def _by_name(self) -> dict[str, Param]:
        return {p.name: p for p in self.params}

    def param(self, name: str) -> Param:
        return self._by_name[name]

    @property
    def optimizers(self) -> tuple[str, ...]:
        """The optimizers this domain can choose."""
        if "optimizer" in self.fixed:
            return (self.fixed["optimizer"],)
        return self.param("optimizer").choices

    def optimizer_of(self, raw: Mapping[str, Any]) -> str:
        return str(raw.get("optimizer", self.fixed.get("optimizer", "")))

    def active(self, optimizer: str) -> tuple[Param, ...]:
        """The fields searched when `optimizer` is chosen (optimizer itself first)."""
        if optimizer not in self._active:
            first = tuple(p for p in self.params if p.name == "optimizer")
            rest = tuple(p for p in self.params if p.name != "optimizer" and p.active(optimizer))
            self._active[optimizer] = first + rest
        return self._active[optimizer]

    @cached_property
    def _active(self) -> dict[str, tuple[Param, ...]]:
        return {}

    # ------------------------------------------------------------- conversions
    def suggest(self, trial: Any) -> dict[str, Any]:
        """Raw values from an Optuna trial, define-by-run (optimizer first, then its fields)."""
        raw: dict[str, Any] = {}
        if "optimizer" in self.names:
            raw["optimizer"] = _suggest(trial, self.param("optimizer"))
        for p in self.active(self.optimizer_of(raw)):
            if p.name != "optimizer":
                raw[p.name] = _suggest(trial, p)
        return raw

    def distributions(self, raw: Mapping[str, Any]) -> dict[str, BaseDistribution]:
        return {name: self.param(name).distribution() for name in raw}

    def config(self, raw: Mapping[str, Any]) -> Config:
        """The configuration raw values describe (pinned fields, study defaults elsewhere)."""
        values: dict[str, Any] = {**DEFAULTS, **self.fixed}
        values |= {name: self.param(name).decode(v) for name, v in raw.items()}
        return Config.from_mapping(values)

    def encode(self, config: Config) -> dict[str, Any]:
        """Raw values nearest to `config` (values out of range are clipped; a categorical
        value outside the domain's choices, and the fields its optimizer depends on, drop)."""
        raw: dict[str, Any] = {}
        if "optimizer" in self.names:
            value = self.param("optimizer").encode(config.optimizer)
            if value is None:
                return {}
            raw["optimizer"] = value
        for p in self.active(config.optimizer):
            value = p.encode(getattr(config, p.name))
            if value is not None:
                raw[p.name] = value
        return raw

    def sample(self, rng: np.random.Generator) -> dict[str, Any]:
        """Uniform raw values along each field's scale (conditional on the optimizer drawn)."""
        raw: dict[str, Any] = {}
        if "optimizer" in self.names:
            raw["optimizer"] = self.param("optimizer").draw(rng)
        for p in self.active(self.optimizer_of(raw)):
            if p.name != "optimizer":
                raw[p.name] = p.draw(rng)
        return raw


def _pinned(fixed: Mapping[str, Any]) -> dict[str, Any]:
    """Validated pinned values."""
    try:
        return {k: validate_field(k, v) for k, v in fixed.items()}
    except InvalidConfigError as error:
        raise DomainError(f"fixed: {error}") from None


def _suggest(trial: Any, p: Param) -> Any:
    if p.categorical:
        return trial.suggest_categorical(p.name, p.choices)
    if p.integer:
        return trial.suggest_int(p.name, int(p.low), int(p.high), log=p.log)
    return trial.suggest_float(p.name, p.low, p.high, log=p.log)


def load_domain(domain: str | Path | Mapping[str, Any] | Domain = "default") -> Domain:
    """A domain by name (`conf/domain/<name>.yaml`), from a YAML path, or from a mapping."""
    if isinstance(domain, Domain):
        return domain
    if isinstance(domain, Mapping):
        return Domain.from_spec(_plain(domain))
    path = Path(domain)
    if path.suffix not in (".yaml", ".yml"):
        path = DOMAIN_DIR / f"{domain}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in DOMAIN_DIR.glob("*.yaml"))
        raise DomainError(f"domain={str(domain)!r} not found: expected a YAML path or one of "
                          f"{known}")
    return Domain.from_spec(_plain(_read_yaml(path)), name=path.stem)


def _read_yaml(path: Path) -> Any:
    from omegaconf import OmegaConf

    return OmegaConf.load(path)


def _plain(spec: Any) -> dict[str, Any]:
    """A plain dict from a mapping or an OmegaConf node."""
    from omegaconf import DictConfig, OmegaConf

    if isinstance(spec, DictConfig):
        return OmegaConf.to_container(spec, resolve=True)
    return dict(spec)


__all__ = ["DOMAIN_DIR", "MANDATORY", "Domain", "DomainError", "Param", "load_domain"]
