"""Grid search: a coarse grid over a few fields, visited in a seeded random order.

Optuna's GridSampler draws the grid points in random order (so a grid larger than the budget
is a random subset of it); the session finishes when the grid is exhausted. `grid` names the
fields and their points: an integer n gives n points evenly spaced along the field's scale in
the domain (log fields in decades, for example), a list gives the values, "all" every choice of
a categorical field. Searched fields of the domain that the grid leaves out keep the study's
defaults; mandatory ones must then be pinned with `fixed` or `epochs`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from optuna.samplers import BaseSampler, GridSampler

from agents.base import Proposal, SessionView
from agents.domain import DomainError
from agents.optimizers.base import OptunaAgent
from envs.space import validate_field

GridSpec = int | str | Sequence[Any]


class _AskTellGridSampler(GridSampler):
    """GridSampler without its `study.stop()` (which only works inside `study.optimize`)."""

    def after_trial(self, study: Any, trial: Any, state: Any, values: Any) -> None:
        """The agent checks `is_exhausted` itself before every proposal."""


class GridSearch(OptunaAgent):
    """Grid search in random order (Optuna's GridSampler)."""

    method = "grid"

    def __init__(self, grid: Mapping[str, GridSpec], **common: Any) -> None:
        super().__init__(**common)
        self.grid = dict(grid)
        self.domain = self.domain.restrict(tuple(self.grid))
        self.points = {name: self._points(name, spec) for name, spec in self.grid.items()}

    def _points(self, name: str, spec: GridSpec) -> list[Any]:
        param = self.domain.param(name)
        if spec == "all" and param.categorical:
            return list(param.choices)
        if isinstance(spec, int) and not isinstance(spec, bool) and not param.categorical:
            return param.grid(spec)
        if isinstance(spec, Sequence) and not isinstance(spec, str):
            points = [param.encode(validate_field(name, value)) for value in spec]
            if None not in points:
                return list(dict.fromkeys(points))
        raise DomainError(f"grid.{name}={spec!r} is not allowed: expected a number of points "
                          f"(numeric fields), 'all' (categorical) or a list of values in the "
                          f"domain")

    def make_sampler(self, seed: int) -> BaseSampler:
        return _AskTellGridSampler(self.points, seed=seed)

    def propose(self, view: SessionView) -> Proposal | None:
        if self.study.sampler.is_exhausted(self.study):
            return None
        return super().propose(view)

    def describe(self) -> dict[str, Any]:
        size = 1
        for values in self.points.values():
            size *= len(values)
        return {**super().describe(), "grid": self.grid, "grid_size": size}
