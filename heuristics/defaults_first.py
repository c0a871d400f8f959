"""Defaults first: the study's suggested defaults, plus the mandatory values a person would pick."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from agents.base import SessionView
from envs.space import DEFAULT, DEFAULTS
from envs.space import fields_read_by as optimizer_fields
from heuristics.base import Base, Heuristic, Partial, value_of
from heuristics.numbers import load_params, sample_table

MANDATORY: tuple[str, ...] = ("optimizer", "loss", "batch_size", "epochs")


class DefaultsFirst(Heuristic):
    """Start from the form's suggested defaults, tagged DEFAULT.

    Optional fields take the study's defaults (lr 0.001 for every optimizer, and so on); the four
    mandatory fields, which have none, take the values people typically entered first (`picks`:
    [[value, weight], ...] per field, fitted from the first configurations in the study's logs;
    None loads them from the parameter file). Without `fields` it sets the mandatory fields and
    every optional field the chosen optimizer reads.
    """

    name = "defaults_first"
    roles = frozenset({"propose"})

    def __init__(self, picks: Mapping[str, Sequence[Sequence[Any]]] | None = None,
                 fields: Sequence[str] | None = None, weight: float = 1.0,
                 name: str | None = None) -> None:
        super().__init__(weight, name)
        self.picks = dict(picks if picks is not None else load_params()["defaults_first"])
        self.fields = None if fields is None else tuple(fields)

    def propose(self, view: SessionView, rng: np.random.Generator, base: Base = None,
                fields: Sequence[str] | None = None) -> Partial:
        values: dict[str, Any] = {}
        names = fields if fields is not None else self.fields
        for name in names if names is not None else MANDATORY:
            values[name] = self._value(name, rng)
        if names is None:
            optimizer = values.get("optimizer", value_of(base, "optimizer"))
            values |= {name: DEFAULTS[name] for name in optimizer_fields(optimizer)}
        return Partial(values, dict.fromkeys(values, DEFAULT))

    def _value(self, name: str, rng: np.random.Generator) -> Any:
        if name in DEFAULTS:
            return DEFAULTS[name]
        return sample_table(self.picks[name], rng)
