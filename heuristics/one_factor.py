"""One factor at a time: change a single field of the best configuration by a directed step."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from agents.base import SessionView
from envs.space import LEARNED, SPACE, Config
from envs.space import fields_read_by as optimizer_fields
from envs.trials import Trial
from heuristics.base import Base, Heuristic, Partial, as_dict, value_of
from heuristics.numbers import load_params, step, weighted_choice
from heuristics.view import best_trial, last_trial

#: how often a person varies each field when left to choose
FIELD_WEIGHTS: dict[str, float] = {"lr": 3.0, "epochs": 2.0, "batch_size": 2.0,
                                   "weight_decay": 1.0, "optimizer": 1.0, "momentum": 1.0}


def score(trial: Trial) -> float:
    """How well a trial went as a person reads it (chance for anything not validated)."""
    return trial.val_accuracy if trial.val_accuracy is not None else 0.1


def changed(before: Config, after: Config) -> list[str]:
    return [n for n in SPACE if getattr(before, n) != getattr(after, n)]


class OneFactorAtATime(Heuristic):
    """Vary one field of `base` (default: the best trial, else the last), tagged LEARNED.

    Without `fields`, the field is drawn by `weights` among those the optimizer reads, never the
    one varied last. Numbers move by `step` decades (integers by powers of two) in the direction
    that last helped for that field (the opposite one if it hurt; at random if never tried);
    categories switch to the value of a better run, else to one drawn from `switch_to`
    ({"loss": {value: weight}, "optimizer": {...}}: what people switched to after learning
    something, fitted from the logs; None loads it from the parameter file).
    """

    name = "one_factor_at_a_time"
    roles = frozenset({"propose"})

    def __init__(self, step: float = 0.5, weights: Mapping[str, float] | None = None,
                 switch_to: Mapping[str, Mapping[str, float]] | None = None,
                 weight: float = 1.0, name: str | None = None) -> None:
        super().__init__(weight, name)
        if step <= 0:
            raise ValueError(f"step={step!r} is not allowed: expected > 0")
        self.step = float(step)
        self.weights = dict(weights or FIELD_WEIGHTS)
        self.switch_to = dict(switch_to or load_params()["switch_to"])

    def propose(self, view: SessionView, rng: np.random.Generator, base: Base = None,
                fields: Sequence[str] | None = None) -> Partial:
        anchor = best_trial(view.history) or last_trial(view.history)
        if base is None and anchor is None:
            return Partial()
        base = as_dict(base if base is not None else anchor.config)
        names = fields if fields is not None else self._pick(view, base, rng)
        values = {n: self.move(n, base, view.history, rng) for n in names}
        values = {n: v for n, v in values.items() if v != value_of(base, n)}
        return Partial(values, dict.fromkeys(values, LEARNED))

    def _pick(self, view: SessionView, base: Mapping[str, Any],
              rng: np.random.Generator) -> list[str]:
        readable = set(optimizer_fields(base.get("optimizer"))) | {"epochs", "batch_size",
                                                                   "optimizer", "loss"}
        recent = set(changed(view.history[-2].config, view.history[-1].config)) if len(
            view.history) > 1 else set()
        options = {n: w for n, w in self.weights.items() if n in readable and n not in recent}
        options = options or {n: w for n, w in self.weights.items() if n in readable}
        return [weighted_choice(options, rng)] if options else []

    def move(self, name: str, base: Mapping[str, Any], history: Sequence[Trial],
             rng: np.random.Generator) -> Any:
        """A new value for `name`, one step away from its value in `base`."""
        current = value_of(base, name)
        if SPACE[name].kind == "categorical":
            return self._switch(name, current, history, rng)
        direction = self._direction(name, history, rng)
        if current <= 0:
            direction = 1.0
        return step(name, float(current), direction * self.step)

    def _switch(self, name: str, current: Any, history: Sequence[Trial],
                rng: np.random.Generator) -> Any:
        here = max((score(t) for t in history if getattr(t.config, name) == current), default=0)
        others = [t for t in history if getattr(t.config, name) != current and score(t) > here]
        if others:
            return getattr(max(others, key=score).config, name)
        options = {k: w for k, w in self.switch_to[name].items() if k != current}
        return weighted_choice(options, rng)

    @staticmethod
    def _direction(name: str, history: Sequence[Trial], rng: np.random.Generator) -> float:
        for before, after in zip(history[-2::-1], history[:0:-1], strict=False):
            old, new = getattr(before.config, name), getattr(after.config, name)
            if old != new:
                went_up = 1.0 if new > old else -1.0
                return went_up if score(after) > score(before) else -went_up
        return 1.0 if rng.random() < 0.5 else -1.0

    def describe(self) -> dict[str, Any]:
        return super().describe() | {"step": self.step}
