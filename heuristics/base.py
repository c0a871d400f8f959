"""The heuristic protocol: small human tuning rules that personas compose.

A heuristic is one human habit. It can play up to three roles, declared in `roles`:

- ``"propose"``: `propose(view, rng, base=None, fields=None) -> Partial` sets some fields of the
  next configuration and tags each value it sets with one of the study's rationale codes
  (`envs.space.GUESS`, `DEFAULT`, `PAST`, `LEARNED`, `OTHER`). `base` holds the values decided
  so far (a `Config`, a mapping, or None); `fields` asks for those fields only (None: the
  heuristic's own choice). An empty `Partial` means "nothing to say".
- ``"stop"``: `should_stop(view, rng) -> bool` decides, after an epoch, to cancel the run.
- ``"final"``: `final_choice(view, rng) -> int | None` names the trial to submit as final.

Heuristics are stateless: everything they know comes from the `SessionView` (the history of
trials and the running run's losses) and every random choice from the `rng` passed in, so the
same view and seed give the same answer. `weight` is the probability that a persona consults a
heuristic plugged in as an extra (see `agents.persona.Persona`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from agents.base import SessionView
from envs.space import DEFAULTS, RATIONALES, SPACE, Config, validate

ROLES: tuple[str, ...] = ("propose", "stop", "final")
Base = Config | Mapping[str, Any] | None


@dataclass(frozen=True)
class Partial:
    """Some fields of a configuration, each with the rationale code of its value."""

    values: Mapping[str, Any] = field(default_factory=dict)
    rationale: Mapping[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in self.values:
            if name not in SPACE:
                raise ValueError(f"field={name!r} is not allowed: expected a canonical name")
            if self.rationale.get(name) not in RATIONALES:
                raise ValueError(f"{name}: rationale code {self.rationale.get(name)!r} is not "
                                 f"allowed: expected one of {sorted(RATIONALES)}")

    def __len__(self) -> int:
        return len(self.values)

    def merge(self, other: Partial) -> Partial:
        """This partial overridden by `other` (its fields win)."""
        return Partial({**self.values, **other.values}, {**self.rationale, **other.rationale})

    def without(self, names: Iterable[str]) -> Partial:
        drop = set(names)
        return Partial({k: v for k, v in self.values.items() if k not in drop},
                       {k: v for k, v in self.rationale.items() if k not in drop})

    def apply(self, base: Base = None) -> Config:
        """The validated configuration: `base` with these values on top."""
        return validate({**as_dict(base), **self.values})


def single(name: str, value: Any, code: int) -> Partial:
    """A partial that sets one field."""
    return Partial({name: value}, {name: code})


def as_dict(base: Base) -> dict[str, Any]:
    """Plain values of a base (Config, mapping or None)."""
    if base is None:
        return {}
    return base.to_dict() if isinstance(base, Config) else dict(base)


def value_of(base: Base, name: str) -> Any:
    """A field's value in `base`, else its study default (None for an unset mandatory field)."""
    return as_dict(base).get(name, DEFAULTS.get(name))


class Heuristic:
    """Base class of every heuristic (see the module docstring for the protocol)."""

    name: str = "heuristic"
    roles: frozenset[str] = frozenset()
    #: the fields `propose` sets when asked for none in particular
    default_fields: tuple[str, ...] = ()

    def __init__(self, weight: float = 1.0, name: str | None = None) -> None:
        if not 0.0 <= weight <= 1.0:
            raise ValueError(f"weight={weight!r} is not allowed: expected 0 <= weight <= 1")
        self.weight = float(weight)
        if name is not None:
            self.name = name

    def propose(self, view: SessionView, rng: np.random.Generator, base: Base = None,
                fields: Sequence[str] | None = None) -> Partial:
        """Values for some fields of the next configuration (empty: nothing to say)."""
        return Partial()

    def should_stop(self, view: SessionView, rng: np.random.Generator) -> bool:
        """Whether to cancel the running run now."""
        return False

    def final_choice(self, view: SessionView, rng: np.random.Generator) -> int | None:
        """Index of the trial to name final (None: no opinion)."""
        return None

    def describe(self) -> dict[str, Any]:
        """Parameters recorded beside results."""
        return {"heuristic": self.name, "weight": self.weight}

    def _fields(self, fields: Sequence[str] | None) -> tuple[str, ...]:
        return tuple(self.default_fields if fields is None else fields)
