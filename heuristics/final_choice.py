"""The final-choice rule: which trial a person names as their final configuration."""

from __future__ import annotations

from typing import Any

import numpy as np

from agents.base import SessionView
from heuristics.base import Heuristic
from heuristics.view import validated


class FinalChoice(Heuristic):
    """Name the best validated trial; among those within `tolerance` of it, the longest trained.

    The final configuration is retrained on train+validation, so a person who knows that prefers
    a run with more epochs when its accuracy is about as good. `prefer="last"` names the last
    validated trial instead (a person who trusts their latest result). No validated trial: no
    opinion (the environment's default applies).
    """

    name = "final_choice"
    roles = frozenset({"final"})

    def __init__(self, tolerance: float = 0.0, prefer: str = "best", weight: float = 1.0,
                 name: str | None = None) -> None:
        super().__init__(weight, name)
        if prefer not in ("best", "last") or tolerance < 0:
            raise ValueError(f"prefer={prefer!r}, tolerance={tolerance!r} are not allowed: "
                             "expected prefer in ('best', 'last') and tolerance >= 0")
        self.tolerance, self.prefer = float(tolerance), prefer

    def final_choice(self, view: SessionView, rng: np.random.Generator) -> int | None:
        trials = validated(view.history)
        if not trials:
            return None
        if self.prefer == "last":
            return trials[-1].index
        top = max(t.val_accuracy for t in trials)
        near = [t for t in trials if t.val_accuracy >= top - self.tolerance]
        return max(near, key=lambda t: (t.config.epochs, t.val_accuracy, -t.index)).index

    def describe(self) -> dict[str, Any]:
        return super().describe() | {"tolerance": self.tolerance, "prefer": self.prefer}
