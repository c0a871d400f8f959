"""CMA-ES (Hansen, 2016), Optuna's CmaEsSampler, with a fallback for what CMA-ES cannot model.

CMA-ES searches a fixed-dimensional real space. Here it runs on the numeric fields every trial
shares (epochs, batch size, lr, weight decay; integers with the margin correction of Hamano et
al., 2022, `with_margin`), declared up front: Optuna's CmaEsSampler would otherwise take the
intersection of the fields seen so far, which shrinks as trials with other optimizers arrive,
and then hand every later trial to the fallback. The categorical fields (loss, optimizer) and
the fields only some optimizers read (momentum, betas, ...) fall back to `independent_sampler`:
"tpe" (default; it learns which loss and optimizer work) or "random". `sampler_options` go to
CmaEsSampler (`popsize`, `restart_strategy`, `sigma0`, ...).
"""

from __future__ import annotations

from typing import Any

from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler, CmaEsSampler

from agents.domain import Domain
from agents.optimizers.base import OptunaAgent, make_sampler


class SharedSpaceCmaEsSampler(CmaEsSampler):
    """CmaEsSampler on a fixed search space: the numeric fields every optimizer reads."""

    def __init__(self, domain: Domain, **options: Any) -> None:
        super().__init__(**options)
        self._space = {p.name: p.distribution() for p in domain.params
                       if not p.categorical and all(p.active(o) for o in domain.optimizers)}

    def infer_relative_search_space(self, study: Any, trial: Any
                                    ) -> dict[str, BaseDistribution]:
        return dict(self._space)


class CMAES(OptunaAgent):
    """Covariance matrix adaptation evolution strategy on the shared numeric fields."""

    method = "cma_es"

    def __init__(self, independent_sampler: str = "tpe", with_margin: bool = True,
                 **common: Any) -> None:
        super().__init__(**common)
        self.independent_sampler, self.with_margin = independent_sampler, with_margin

    def make_sampler(self, seed: int) -> BaseSampler:
        return SharedSpaceCmaEsSampler(self.domain, seed=seed, with_margin=self.with_margin,
                            independent_sampler=make_sampler(self.independent_sampler, seed),
                            warn_independent_sampling=False, **self.sampler_options)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "independent_sampler": self.independent_sampler,
                "with_margin": self.with_margin}
