"""Gaussian-process Bayesian optimization, Optuna's GPSampler (Matern-5/2 GP, log EI).

GPSampler models the fields every trial shares (epochs, batch size, loss, optimizer, lr, weight
decay; categoricals with their own kernel); the optimizer-specific fields, which only some
trials have, go to `independent_sampler` ("tpe" by default, "random" possible). Integer fields
are searched as floats and rounded (`Domain.relax_integers`): GPSampler's exhaustive line search
over 497 batch sizes doubled the think time. The effort spent maximizing the acquisition
function is capped by `n_preliminary_samples` (Optuna: 2048), `n_local_search` (Optuna: 10) and
`tol` (Optuna: 1e-4), which set GPSampler's attributes of those names (with a leading
underscore), so that a 120-minute surrogate session stays within about 2 s of think time.
Decisions run on one BLAS/OpenMP thread (`single_threaded`).
"""

from __future__ import annotations

from typing import Any

from optuna.samplers import BaseSampler, GPSampler

from agents.optimizers.base import OptunaAgent, make_sampler


class GPBO(OptunaAgent):
    """Bayesian optimization with a Gaussian process (Optuna's GPSampler)."""

    method = "gp_bo"
    single_threaded = True

    def __init__(self, n_startup_trials: int = 10, independent_sampler: str = "tpe",
                 n_preliminary_samples: int = 256, n_local_search: int = 2,
                 tol: float = 1e-2, **common: Any) -> None:
        super().__init__(**common)
        self.domain = self.domain.relax_integers()
        self.n_startup_trials, self.independent_sampler = n_startup_trials, independent_sampler
        self.effort = {"_n_preliminary_samples": int(n_preliminary_samples),
                       "_n_local_search": int(n_local_search), "_tol": float(tol)}

    def make_sampler(self, seed: int) -> BaseSampler:
        import torch  # noqa: F401 - GPSampler's backend; loaded at reset, not while deciding

        sampler = GPSampler(seed=seed, n_startup_trials=self.n_startup_trials,
                            independent_sampler=make_sampler(self.independent_sampler, seed),
                            warn_independent_sampling=False, **self.sampler_options)
        for attribute, value in self.effort.items():
            if not hasattr(sampler, attribute):
                raise RuntimeError(f"this Optuna's GPSampler has no {attribute}; "
                                   f"update agents/optimizers/gp_bo.py")
            setattr(sampler, attribute, value)
        return sampler

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "n_startup_trials": self.n_startup_trials,
                "independent_sampler": self.independent_sampler,
                **{k.lstrip("_"): v for k, v in self.effort.items()}}
