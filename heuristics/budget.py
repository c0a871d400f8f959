"""Budget awareness: epochs chosen to fit the remaining minutes, from observed seconds per epoch."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from agents.base import SessionView
from envs.space import LEARNED, OTHER
from heuristics.base import Base, Heuristic, Partial, single, value_of
from heuristics.numbers import human_number
from heuristics.view import seconds_per_epoch


class BudgetAware(Heuristic):
    """Plan a run's epochs to take about `fraction` of the remaining time, tagged OTHER.

    Seconds per epoch are estimated from the runs seen so far (`heuristics.view.
    seconds_per_epoch`; `default_seconds` per epoch at batch size 64 before any run), and the
    epochs rounded as a person would. `cap` is the guard a budget-aware person applies to any
    plan: a run that would not finish in the remaining time is shortened to fit (tag LEARNED:
    it comes from what earlier runs took).
    """

    name = "budget_aware"
    roles = frozenset({"propose"})
    default_fields = ("epochs",)

    def __init__(self, fraction: float = 0.3, default_seconds: float = 10.0,
                 weight: float = 1.0, name: str | None = None) -> None:
        super().__init__(weight, name)
        if not 0.0 < fraction <= 1.0:
            raise ValueError(f"fraction={fraction!r} is not allowed: expected 0 < fraction <= 1")
        self.fraction, self.default_seconds = float(fraction), float(default_seconds)

    def propose(self, view: SessionView, rng: np.random.Generator, base: Base = None,
                fields: Sequence[str] | None = None) -> Partial:
        if "epochs" not in self._fields(fields):
            return Partial()
        per_epoch = self._per_epoch(view, base)
        epochs = self.fraction * view.remaining_minutes * 60.0 / per_epoch
        return single("epochs", human_number("epochs", max(epochs, 1.0), rng), OTHER)

    def cap(self, view: SessionView, base: Base) -> Partial:
        """Fewer epochs when the planned run would outlast the remaining time, else nothing."""
        per_epoch = self._per_epoch(view, base)
        fits = int(view.remaining_minutes * 60.0 / per_epoch)
        epochs = value_of(base, "epochs")
        if epochs is None or epochs <= max(fits, 1):
            return Partial()
        return single("epochs", max(fits, 1), LEARNED)

    def _per_epoch(self, view: SessionView, base: Base) -> float:
        batch_size = value_of(base, "batch_size") or 64
        return seconds_per_epoch(view, int(batch_size), self.default_seconds)

    def describe(self) -> dict[str, Any]:
        return super().describe() | {"fraction": self.fraction}
