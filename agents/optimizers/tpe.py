"""Tree-structured Parzen Estimator (Bergstra et al., 2011; Watanabe, 2023), Optuna's TPESampler.

The YAML's `sampler_options` go to `TPESampler` (e.g. `multivariate: true, group: true`, which
models the conditional fields of each optimizer jointly).
"""

from __future__ import annotations

from optuna.samplers import BaseSampler, TPESampler

from agents.optimizers.base import OptunaAgent


class TPE(OptunaAgent):
    """Model-based search with TPE over the domain."""

    method = "tpe"

    def make_sampler(self, seed: int) -> BaseSampler:
        return TPESampler(seed=seed, **self.sampler_options)
