"""Random guessing as people guess: round numbers, powers of ten, occasional extreme values."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from agents.base import SessionView
from envs.space import GUESS
from heuristics.base import Base, Heuristic, Partial
from heuristics.numbers import ORDINARY, human_number, load_params, weighted_choice

#: how far (in decades) a guess lands from the extreme values people typed
EXTREME_JITTER = 0.25


class RandomGuess(Heuristic):
    """Guess values, tagged GUESS, from distributions fitted to the study's guessed values.

    `distributions` maps each field to either ``{"kind": "categorical", "probs": {...}}`` or
    ``{"kind": "numeric", "mu", "sigma", "p_zero", "pow2", "extremes"}``: an ordinary guess has
    a log10 magnitude ~ Normal(mu, sigma) inside the field's ordinary range, a share `p_zero` of
    guesses is 0, and with probability `extreme` a guess lands near one of the extreme values
    people typed (`extremes`, log10). Magnitudes become round numbers with the fitted
    `mantissas` (batch sizes and epochs a power of two with probability `pow2`). None loads
    both from the parameter file.
    """

    name = "random_guess"
    roles = frozenset({"propose"})
    default_fields = ("optimizer", "loss", "batch_size", "epochs", "lr")

    def __init__(self, extreme: float = 0.2,
                 distributions: Mapping[str, Mapping[str, Any]] | None = None,
                 mantissas: Mapping[str, float] | None = None,
                 fields: Sequence[str] | None = None, weight: float = 1.0,
                 name: str | None = None) -> None:
        super().__init__(weight, name)
        if not 0.0 <= extreme <= 1.0:
            raise ValueError(f"extreme={extreme!r} is not allowed: expected 0 <= extreme <= 1")
        params = load_params() if distributions is None or mantissas is None else {}
        self.extreme = float(extreme)
        self.distributions = dict(distributions or params["guess"])
        self.mantissas = dict(mantissas or params["mantissas"])
        if fields is not None:
            self.default_fields = tuple(fields)

    def propose(self, view: SessionView, rng: np.random.Generator, base: Base = None,
                fields: Sequence[str] | None = None) -> Partial:
        values = {name: self.guess(name, rng) for name in self._fields(fields)}
        return Partial(values, dict.fromkeys(values, GUESS))

    def guess(self, name: str, rng: np.random.Generator) -> Any:
        """One guessed value for field `name`."""
        dist = self.distributions[name]
        if dist["kind"] == "categorical":
            return weighted_choice(dist["probs"], rng)
        if rng.random() < dist.get("p_zero", 0.0):
            return 0.0
        if rng.random() < self.extreme:
            magnitude = self._extreme(name, dist, rng)
        else:
            magnitude = self._ordinary(name, dist, rng)
        return human_number(name, magnitude, rng, self.mantissas, dist.get("pow2", 0.0))

    @staticmethod
    def _ordinary(name: str, dist: Mapping[str, Any], rng: np.random.Generator) -> float:
        low, high = ORDINARY[name]
        log_low = math.log10(low) if low > 0 else -math.inf
        draw = dist["mu"]
        for _ in range(20):
            draw = rng.normal(dist["mu"], dist["sigma"])
            if log_low <= draw <= math.log10(high):
                break
        return 10.0 ** min(max(draw, log_low), math.log10(high))

    @staticmethod
    def _extreme(name: str, dist: Mapping[str, Any], rng: np.random.Generator) -> float:
        extremes = dist.get("extremes") or [math.log10(ORDINARY[name][1]) + 1.0]
        centre = extremes[int(rng.integers(len(extremes)))]
        return 10.0 ** rng.normal(centre, EXTREME_JITTER)

    def describe(self) -> dict[str, Any]:
        return super().describe() | {"extreme": self.extreme}
