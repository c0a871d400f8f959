"""Learning from previous submissions: react to how the last run went, build on the best."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from agents.base import SessionView
from envs.space import DEFAULTS, LEARNED, Config
from envs.space import fields_read_by as optimizer_fields
from envs.trials import Trial
from heuristics.base import Base, Heuristic, Partial, single, value_of
from heuristics.numbers import ORDINARY, is_extreme, step
from heuristics.past_experience import GOOD_LR
from heuristics.view import NO_LEARNING, best_trial, broke, last_trial, learned_nothing


def typical_lr(optimizer: str) -> float:
    """The middle of the learning rates known to work for `optimizer` (geometric mean)."""
    rates = [row[0] for row in GOOD_LR[optimizer]]
    return float(np.exp(np.mean(np.log(rates))))


class LearnFromPrevious(Heuristic):
    """React to the last trial, tagged LEARNED, on top of `base` (default: the best trial).

    - The last run diverged or failed: reset absurd optimizer settings (momentum >= 1, beta1 >= 1,
      ...) to their defaults when the person `knows_ranges`, else lower the learning rate by
      `step` decades ("lower lr after NaN").
    - It learned nothing (chance accuracy, or a flat loss when cancelled): a person who
      `knows_ranges` drops an l1/mse loss for the best run's loss (or cross-entropy) and moves
      the learning rate toward the optimizer's usual range; a person who does not cannot tell
      what went wrong (empty).
    - It was the best so far: train longer (epochs times `exploit`).
    - Anything else: nothing learned (empty).
    """

    name = "learn_from_previous"
    roles = frozenset({"propose"})

    def __init__(self, step: float = 1.0, knows_ranges: bool = True, exploit: float = 2.0,
                 weight: float = 1.0, name: str | None = None) -> None:
        super().__init__(weight, name)
        if step <= 0 or exploit < 1:
            raise ValueError(f"step={step!r}, exploit={exploit!r} are not allowed: expected "
                             "step > 0 and exploit >= 1")
        self.step, self.knows_ranges, self.exploit = float(step), bool(knows_ranges), exploit

    def propose(self, view: SessionView, rng: np.random.Generator, base: Base = None,
                fields: Sequence[str] | None = None) -> Partial:
        last, best = last_trial(view.history), best_trial(view.history)
        if last is None:
            return Partial()
        base = base if base is not None else (best or last).config
        if broke(last):
            change = self._after_break(last.config, base, rng)
        elif learned_nothing(last):
            change = self._after_nothing(last.config, base, best, rng)
        elif best is not None and last.index == best.index:
            change = self._after_success(last)
        else:
            change = Partial()
        return change if fields is None else change.without(set(change.values) - set(fields))

    def _after_break(self, last: Config, base: Base, rng: np.random.Generator) -> Partial:
        if self.knows_ranges:
            absurd = {n: DEFAULTS[n] for n in optimizer_fields(last.optimizer)
                      if n not in ("lr", "weight_decay") and is_extreme(n, getattr(last, n))}
            if absurd:
                return Partial(absurd, dict.fromkeys(absurd, LEARNED))
        lr = min(float(value_of(base, "lr")), last.lr)
        return single("lr", step("lr", lr, -self.step), LEARNED)

    def _after_nothing(self, last: Config, base: Base, best: Trial | None,
                       rng: np.random.Generator) -> Partial:
        if self.knows_ranges and last.loss in ("l1", "mse"):
            good = best is not None and best.val_accuracy > NO_LEARNING
            loss = best.config.loss if good and best.config.loss != last.loss else "cross_entropy"
            if loss != last.loss:
                return single("loss", loss, LEARNED)
        if not self.knows_ranges:
            return Partial()
        target = typical_lr(last.optimizer)
        direction = -1.0 if last.lr > target else 1.0
        lr = float(value_of(base, "lr"))
        if abs(math.log10(lr / target)) < self.step / 2:
            return Partial()  # already in the usual range: nothing to learn about lr
        return single("lr", step("lr", lr, direction * self.step), LEARNED)

    def _after_success(self, last: Trial) -> Partial:
        epochs = min(int(round(last.config.epochs * self.exploit)), int(ORDINARY["epochs"][1]))
        if epochs <= last.config.epochs:
            return Partial()
        return single("epochs", epochs, LEARNED)

    def describe(self) -> dict[str, Any]:
        return super().describe() | {"step": self.step, "knows_ranges": self.knows_ranges}
