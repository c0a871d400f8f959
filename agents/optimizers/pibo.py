"""piBO (Hvarfner et al., 2022): Bayesian optimization guided by a prior over the optimum.

The prior is centred on an expert's starting configuration: the first configuration an expert
persona (`prior_persona`, e.g. `agents.persona.Persona` with 24 months) submits in this session,
or the fixed `prior` configuration when no persona is given. It is a product over the searched
fields: a normal bump of width `prior_sd` on each numeric field's unit scale (log fields in
log space) and probability `prior_weight` on the centre's choice of each categorical field.
Fields in `prior_flat` get no prior (by default epochs: a person's first run is often a short
test run of 1-2 epochs, a statement about the budget rather than about the optimum; centring
on it made piBO run hundreds of one-epoch trials).

Native code (no well-kept library implements piBO for mixed, conditional spaces): the first
`n_startup_trials` configurations are drawn from the prior; then a Gaussian process
(scikit-learn, isotropic Matern 5/2 plus noise: one length scale per feature costs ten times
the think time for no gain at 30-80 trials) is fitted to the told
values, `n_candidates` configurations are drawn (half from the prior, half uniformly), and the
one maximizing log EI(x) + (beta / n) log prior(x) is enqueued into the Optuna study and asked
like any other trial (n = trials told so far, so the prior's weight decays as data comes in).
Features: one-hot categoricals, unit-scaled numerics, 0.5 for fields the optimizer does not
read.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from optuna.trial import FrozenTrial, TrialState
from scipy.stats import norm
from sklearn.exceptions import ConvergenceWarning
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import ConstantKernel, Kernel, Matern, WhiteKernel

from agents.base import Agent, Proposal, SessionView
from agents.domain import Domain, Param
from agents.optimizers.base import OptunaAgent
from envs.space import Config
from envs.tuning_session import SUBMIT, decode_config

#: an expert's usual first configuration: the study's suggested defaults with Adam, cross-entropy,
#: batch 64 and 20 epochs (what most experienced participants submitted first)
EXPERT_START: dict[str, Any] = {"epochs": 20, "batch_size": 64, "loss": "cross_entropy",
                                "optimizer": "adam"}


class Prior:
    """A product prior around `centre` on the domain's unit scales (see module docstring)."""

    def __init__(self, domain: Domain, centre: Config, sd: float, weight: float,
                 flat: Sequence[str] = ()) -> None:
        self.domain, self.sd, self.weight = domain, sd, weight
        self.centre = {p.name: p.encode(getattr(centre, p.name)) for p in domain.params
                       if p.name not in flat}

    def log_density(self, raw: Mapping[str, Any]) -> float:
        """log prior(raw), up to a constant (0 at the centre)."""
        total = 0.0
        for name, value in raw.items():
            if name not in self.centre:
                continue
            param, centre = self.domain.param(name), self.centre[name]
            if param.categorical:
                others = (1.0 - self.weight) / max(len(param.choices) - 1, 1)
                total += 0.0 if value == centre else math.log(others / self.weight)
            else:
                gap = (param.to_unit(value) - param.to_unit(centre)) / self.sd
                total -= 0.5 * gap * gap
        return total

    def sample(self, rng: np.random.Generator) -> dict[str, Any]:
        """Raw values drawn from the prior (conditional on the optimizer drawn)."""
        raw: dict[str, Any] = {}
        if "optimizer" in self.domain.names:
            raw["optimizer"] = self._draw(self.domain.param("optimizer"), rng)
        for param in self.domain.active(self.domain.optimizer_of(raw)):
            if param.name != "optimizer":
                raw[param.name] = self._draw(param, rng)
        return raw

    def _draw(self, param: Param, rng: np.random.Generator) -> Any:
        if param.name not in self.centre:
            return param.draw(rng)
        centre = self.centre[param.name]
        if not param.categorical:
            return param.from_unit(param.to_unit(centre) + rng.normal(0.0, self.sd))
        if centre is not None and rng.random() < self.weight:
            return centre
        others = [c for c in param.choices if c != centre]
        return others[int(rng.integers(len(others)))]


class PiBO(OptunaAgent):
    """Prior-guided Bayesian optimization (native GP + EI, prior weight beta / n)."""

    method = "pibo"
    single_threaded = True

    def __init__(self, prior: Mapping[str, Any] | None = None,
                 prior_persona: Agent | None = None, prior_flat: Sequence[str] = ("epochs",),
                 prior_sd: float = 0.15,
                 prior_weight: float = 0.6, beta: float = 10.0, n_startup_trials: int = 3,
                 n_candidates: int = 256, **common: Any) -> None:
        super().__init__(**common)
        if not (prior_sd > 0 and 0 < prior_weight < 1 and beta >= 0 and n_candidates >= 1):
            raise ValueError("expected prior_sd > 0, 0 < prior_weight < 1, beta >= 0, "
                             "n_candidates >= 1")
        self.prior_config = Config.from_mapping({**EXPERT_START, **(prior or {})})
        self.prior_persona, self.prior_flat = prior_persona, tuple(prior_flat)
        self.prior_sd, self.prior_weight, self.beta = prior_sd, prior_weight, beta
        self.n_startup_trials, self.n_candidates = n_startup_trials, n_candidates

    def describe(self) -> dict[str, Any]:
        source = (type(self.prior_persona).__name__ + " first proposal"
                  if self.prior_persona is not None else self.prior_config.to_dict())
        return {**super().describe(), "prior": source, "prior_flat": self.prior_flat,
                "prior_sd": self.prior_sd,
                "prior_weight": self.prior_weight, "beta": self.beta,
                "n_startup_trials": self.n_startup_trials, "n_candidates": self.n_candidates}

    def reset(self, seed: int) -> None:
        super().reset(seed)
        self._draws = np.random.default_rng(int(self.rng.integers(2**31)))
        self._kernel: Kernel | None = None
        self._features: dict[int, list[float]] = {}
        if self.prior_persona is not None:
            self.prior_persona.reset(int(self.rng.integers(2**31)))
        self.prior: Prior | None = None

    def act(self, obs: Mapping[str, Any], info: Mapping[str, Any]) -> dict[str, Any]:
        if self.prior is None:
            self.prior = Prior(self.domain, self._centre(obs, info), self.prior_sd,
                               self.prior_weight, self.prior_flat)
        return super().act(obs, info)

    def _centre(self, obs: Mapping[str, Any], info: Mapping[str, Any]) -> Config:
        """The persona's first submission in this session, else the fixed prior."""
        if self.prior_persona is None:
            return self.prior_config
        action = self.prior_persona.act(obs, info)
        if int(action["command"]) != SUBMIT:
            return self.prior_config
        return decode_config(action["config"])

    def ask(self, view: SessionView) -> Proposal | None:
        self.study.enqueue_trial(self.next_raw(), skip_if_exists=False)
        return super().ask(view)

    def next_raw(self) -> dict[str, Any]:
        """The next configuration's raw values (prior draws first, then prior-weighted EI)."""
        told = self.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if len(told) < self.n_startup_trials:
            return self.prior.sample(self._draws)
        half = self.n_candidates // 2
        candidates = [self.prior.sample(self._draws) for _ in range(self.n_candidates - half)]
        candidates += [self.domain.sample(self._draws) for _ in range(half)]
        x = np.array([self._told_features(t) for t in told])
        y = np.array([t.value for t in told])
        ei, self._kernel = expected_improvement(
            x, y, np.array([self.features(c) for c in candidates]), self._kernel)
        weight = self.beta / len(told)
        scores = [math.log(e + 1e-300) + weight * self.prior.log_density(c)
                  for e, c in zip(ei, candidates, strict=True)]
        return candidates[int(np.argmax(scores))]

    def _told_features(self, trial: FrozenTrial) -> list[float]:
        if trial.number not in self._features:
            self._features[trial.number] = self.features(trial.params)
        return self._features[trial.number]

    def features(self, raw: Mapping[str, Any]) -> list[float]:
        """One-hot categoricals, unit-scaled numerics, 0.5 for fields absent from `raw`."""
        out: list[float] = []
        for param in self.domain.params:
            value = raw.get(param.name)
            if param.categorical:
                out += [float(value == c) for c in param.choices]
            else:
                out.append(0.5 if value is None else param.to_unit(value))
        return out


def expected_improvement(x: np.ndarray, y: np.ndarray, candidates: np.ndarray,
                         kernel: Kernel | None = None) -> tuple[np.ndarray, Kernel]:
    """EI of each candidate under a GP fitted to (x, y) (maximization), and the fitted kernel
    (pass it back to start the next fit from its hyperparameters)."""
    if kernel is None:
        kernel = (ConstantKernel(1.0, (1e-2, 1e2)) * Matern(0.5, (1e-2, 1e2), nu=2.5)
                  + WhiteKernel(1e-2, (1e-6, 1e-1)))
    gp = GaussianProcessRegressor(kernel, normalize_y=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        gp.fit(x, y)
    mean, sd = gp.predict(candidates, return_std=True)
    sd = np.maximum(sd, 1e-9)
    gap = (mean - y.max()) / sd
    return sd * (gap * norm.cdf(gap) + norm.pdf(gap)), gp.kernel_
