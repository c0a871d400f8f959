"""Random search (Bergstra & Bengio, 2012): independent draws along each field's scale."""

from __future__ import annotations

from optuna.samplers import BaseSampler, RandomSampler

from agents.optimizers.base import OptunaAgent


class RandomSearch(OptunaAgent):
    """Uniform draws over the domain (log fields log-uniformly), Optuna's RandomSampler."""

    method = "random"

    def make_sampler(self, seed: int) -> BaseSampler:
        return RandomSampler(seed=seed, **self.sampler_options)
