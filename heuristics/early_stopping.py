"""Early stopping read from what a person sees: losses under `study`, accuracy too under `full`."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from agents.base import SessionView
from heuristics.base import Heuristic
from heuristics.view import NO_LEARNING, best_trial


class EarlyStopping(Heuristic):
    """Cancel a run that diverges, has stopped improving, or does worse than the best run.

    The person compares losses by eye: every comparison carries a relative perception `noise`.
    Rules (any one stops the run):

    - divergence: the loss is not finite or has risen `divergence` (relative) above its first
      epoch's value;
    - plateau: the loss has not come down by `learning` (relative) from its first epoch and the
      last `patience` epochs did not improve it by `tolerance` (a converged run that did learn
      is left to finish: only finished runs show their accuracy);
    - worse than the best: after `patience` epochs the loss is `margin` (relative) above the best
      validated run's loss at the same epoch (same loss function only);
    - under protocol `full`, accuracy at chance after `patience` epochs.
    """

    name = "early_stopping"
    roles = frozenset({"stop"})

    def __init__(self, patience: int = 2, tolerance: float = 0.03, noise: float = 0.02,
                 margin: float = 0.1, divergence: float = 0.25, learning: float = 0.1,
                 weight: float = 1.0, name: str | None = None) -> None:
        super().__init__(weight, name)
        if patience < 1 or min(tolerance, noise, margin, divergence, learning) < 0:
            raise ValueError("patience >= 1 and non-negative tolerance, noise, margin and "
                             f"divergence expected, got patience={patience!r}")
        self.patience, self.tolerance, self.noise = int(patience), tolerance, noise
        self.margin, self.divergence, self.learning = margin, divergence, learning

    def should_stop(self, view: SessionView, rng: np.random.Generator) -> bool:
        losses = list(view.running_losses)
        if not losses:
            return False
        seen = [x * (1.0 + rng.normal(0.0, self.noise)) for x in losses]
        return (self._diverging(seen) or self._plateau(seen) or self._worse(view, seen)
                or self._chance(view, len(seen)))

    def _diverging(self, seen: Sequence[float]) -> bool:
        if not all(math.isfinite(x) for x in seen):
            return True
        return seen[-1] > seen[0] * (1.0 + self.divergence)

    def _plateau(self, seen: Sequence[float]) -> bool:
        if len(seen) <= self.patience or min(seen) < seen[0] * (1.0 - self.learning):
            return False
        before = min(seen[: -self.patience])
        return min(seen[-self.patience:]) > before * (1.0 - self.tolerance)

    def _worse(self, view: SessionView, seen: Sequence[float]) -> bool:
        best, epoch = best_trial(view.history), len(seen) - 1
        config = view.running_config
        if best is None or config is None or len(seen) < self.patience:
            return False
        if best.config.loss != config.loss or len(best.train_losses) <= epoch:
            return False
        reference = best.train_losses[epoch]
        return math.isfinite(reference) and seen[-1] > reference * (1.0 + self.margin)

    def _chance(self, view: SessionView, epochs: int) -> bool:
        accuracy = view.val_accuracy
        return accuracy is not None and epochs >= self.patience and accuracy <= NO_LEARNING

    def describe(self) -> dict[str, Any]:
        return super().describe() | {"patience": self.patience, "noise": self.noise}


class Impatience(Heuristic):
    """Cancel a run for reasons the logs do not show (second thoughts, a slow run, a typo).

    Each run is cancelled with probability `per_run`, at an epoch spread evenly over its planned
    length: the hazard per decision is 1 - (1 - per_run)^(1 / (planned epochs - 1)).
    """

    name = "impatience"
    roles = frozenset({"stop"})

    def __init__(self, per_run: float = 0.1, weight: float = 1.0,
                 name: str | None = None) -> None:
        super().__init__(weight, name)
        if not 0.0 <= per_run <= 1.0:
            raise ValueError(f"per_run={per_run!r} is not allowed: expected 0 <= per_run <= 1")
        self.per_run = float(per_run)

    def should_stop(self, view: SessionView, rng: np.random.Generator) -> bool:
        config = view.running_config
        if config is None or config.epochs < 2 or self.per_run <= 0:
            return False
        hazard = 1.0 - (1.0 - self.per_run) ** (1.0 / (config.epochs - 1))
        return bool(rng.random() < hazard)

    def describe(self) -> dict[str, Any]:
        return super().describe() | {"per_run": self.per_run}
