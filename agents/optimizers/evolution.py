"""Regularized (aging) evolution (Real et al., 2019), written as an Optuna sampler.

Why this evolutionary method: the session is sequential and short (30-80 trials), and the space
is conditional (each optimizer has its own fields). Aging evolution is steady-state (one child
per trial, no generation to wait for), its mutation changes one field at a time so a child stays
meaningful in a conditional space, and it was the strongest evolutionary baseline on the NAS
benchmarks it was proposed for. Optuna's genetic samplers (NSGA-II/III) are generational with
populations of ~50 and cross over fields of different optimizers, which fit neither constraint.

The population is the `population_size` most recent finished trials (the oldest dies: aging);
each child copies the best of `tournament_size` random members and mutates one of its fields: a
numeric field moves by a normal step of `mutation_scale` along its scale (log fields in log
space), a categorical one takes another choice; fields the parent lacks (after the optimizer
mutated) are drawn at random. Until the population is full, trials are random.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from optuna.distributions import BaseDistribution, CategoricalDistribution, IntDistribution
from optuna.samplers import BaseSampler, RandomSampler
from optuna.trial import FrozenTrial, TrialState

from agents.optimizers.base import OptunaAgent


class RegularizedEvolutionSampler(BaseSampler):
    """Aging evolution with tournament selection and one-field mutation."""

    def __init__(self, population_size: int = 8, tournament_size: int = 4,
                 mutation_scale: float = 0.2, seed: int | None = None) -> None:
        if not 1 <= tournament_size <= population_size:
            raise ValueError(f"tournament_size={tournament_size} is not allowed: expected "
                             f"1 <= tournament_size <= population_size={population_size}")
        self.population_size, self.tournament_size = population_size, tournament_size
        self.mutation_scale = mutation_scale
        self._rng = np.random.default_rng(seed)
        self._random = RandomSampler(seed=seed)
        self._plans: dict[int, tuple[FrozenTrial, str]] = {}

    def infer_relative_search_space(self, study: Any, trial: FrozenTrial
                                    ) -> dict[str, BaseDistribution]:
        return {}

    def sample_relative(self, study: Any, trial: FrozenTrial,
                        search_space: dict[str, BaseDistribution]) -> dict[str, Any]:
        return {}

    def before_trial(self, study: Any, trial: FrozenTrial) -> None:
        done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        population = done[-self.population_size:]
        if len(population) < self.population_size:
            return
        picks = self._rng.choice(len(population), size=self.tournament_size, replace=False)
        parent = max((population[i] for i in sorted(picks)), key=lambda t: t.value)
        names = sorted(parent.params)
        if names:
            self._plans[trial.number] = (parent, names[int(self._rng.integers(len(names)))])

    def sample_independent(self, study: Any, trial: FrozenTrial, param_name: str,
                           param_distribution: BaseDistribution) -> Any:
        plan = self._plans.get(trial.number)
        if plan is None or plan[0].distributions.get(param_name) != param_distribution:
            return self._random.sample_independent(study, trial, param_name,
                                                   param_distribution)
        parent, mutated = plan
        value = parent.params[param_name]
        return self.mutate(value, param_distribution) if param_name == mutated else value

    def mutate(self, value: Any, dist: BaseDistribution) -> Any:
        """Another value near `value` (another choice for a categorical)."""
        if isinstance(dist, CategoricalDistribution):
            others = [c for c in dist.choices if c != value] or list(dist.choices)
            return others[int(self._rng.integers(len(others)))]
        low, high = float(dist.low), float(dist.high)
        scale = (math.log, math.exp) if dist.log else (float, float)
        lo, hi = scale[0](low), scale[0](high)
        unit = (scale[0](value) - lo) / (hi - lo) + self._rng.normal(0.0, self.mutation_scale)
        unit = abs(unit) % 2.0
        unit = 2.0 - unit if unit > 1.0 else unit  # reflect into [0, 1]
        new = min(max(scale[1](lo + unit * (hi - lo)), low), high)
        return int(round(new)) if isinstance(dist, IntDistribution) else new

    def after_trial(self, study: Any, trial: FrozenTrial, state: TrialState,
                    values: Any) -> None:
        self._plans.pop(trial.number, None)


class RegularizedEvolution(OptunaAgent):
    """Aging evolution over the domain (see the module docstring)."""

    method = "evolution"

    def __init__(self, population_size: int = 8, tournament_size: int = 4,
                 mutation_scale: float = 0.2, **common: Any) -> None:
        super().__init__(**common)
        self.evolution = {"population_size": population_size,
                          "tournament_size": tournament_size, "mutation_scale": mutation_scale}
        RegularizedEvolutionSampler(**self.evolution)  # validates early

    def make_sampler(self, seed: int) -> BaseSampler:
        return RegularizedEvolutionSampler(seed=seed, **self.evolution)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), **self.evolution}
