"""The common base of the automated optimizers: an Optuna study driven by ask/tell.

Every trial of the session is one Optuna trial: `propose` asks the study (define-by-run over the
agent's `Domain`, so only the chosen optimizer's fields are sampled), `observe` tells it what
became of the run. Trials the agent did not propose (a persona's, in a warm start) are added to
the study as finished trials. What is told:

- completed with a finite validation accuracy: that accuracy;
- diverged, failed (PyTorch refused the values, out of memory, ...) or completed with a NaN
  accuracy: `failure_value`, by default 0.1, the chance accuracy such a run ends at; it keeps
  samplers away from regions that blow up (Optuna's samplers ignore FAIL trials).
  `failure_value: null` tells FAIL instead;
- cancelled by the agent (a multi-fidelity method stopping a run): PRUNED, with the values it
  reported epoch by epoch;
- anything else (the budget ran out, a run someone else cancelled): FAIL.
A NaN never reaches a sampler.

Budget: like a person, the agent does not start what it cannot finish. `EpochCost` learns
seconds per epoch as a function of the batch size from the finished trials; a proposal whose
expected cost exceeds the remaining minutes is shortened to the epochs that fit (at least
`min_epochs`) or the session is finished.
"""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
import optuna
from optuna.samplers import BaseSampler, RandomSampler, TPESampler
from optuna.trial import TrialState
from scipy.optimize import nnls
from threadpoolctl import ThreadpoolController

from agents.base import Proposal, SessionView, TrialAgent
from agents.domain import Domain, load_domain
from envs.space import OTHER, Config
from envs.trials import Trial

optuna.logging.set_verbosity(optuna.logging.WARNING)
warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)

_THREADS: list[ThreadpoolController] = []
CHANCE = 0.1
#: expected cost inflation when checking whether a trial fits the remaining time
SAFETY = 1.1


class EpochCost:
    """Seconds per epoch learned from finished trials: a + b / batch_size (non-negative).

    Fixed per-epoch overhead plus a per-step cost (steps per epoch ~ 1 / batch size), fitted by
    non-negative least squares; None until a trial has run a full epoch.
    """

    def __init__(self) -> None:
        self._rows: list[tuple[float, float]] = []
        self._coef: np.ndarray | None = None

    def add(self, trial: Trial) -> None:
        if trial.outcome in ("completed", "cancelled", "diverged") and trial.epochs_run > 0 \
                and math.isfinite(trial.seconds) and trial.seconds > 0:
            self._rows.append((1.0 / trial.config.batch_size, trial.seconds / trial.epochs_run))
            self._coef = None

    def seconds_per_epoch(self, batch_size: int) -> float | None:
        if not self._rows:
            return None
        if self._coef is None:
            rows = np.array(self._rows)
            design = np.column_stack([np.ones(len(rows)), rows[:, 0]])
            self._coef = nnls(design, rows[:, 1])[0]
        return float(self._coef[0] + self._coef[1] / batch_size)


def make_sampler(kind: str, seed: int, options: Mapping[str, Any] | None = None) -> BaseSampler:
    """An Optuna sampler by short name ("random" or "tpe") with extra keyword options."""
    samplers = {"random": RandomSampler, "tpe": TPESampler}
    if kind not in samplers:
        raise ValueError(f"sampler={kind!r} is not allowed: expected one of {sorted(samplers)}")
    return samplers[kind](seed=seed, **dict(options or {}))


class OptunaAgent(TrialAgent):
    """An optimizer playing the session through an Optuna study (ask/tell).

    Options shared by every method (set them in its conf/agent YAML):
    `domain` (a name in conf/domain, a YAML path or a mapping; see `agents.domain`), `fixed`
    (fields pinned for this method), `epochs` (an int pins the epochs per trial; None searches
    them in the domain), `min_epochs` (the shortest run worth starting when time runs short),
    `failure_value` (what a diverged or failed run is told as; None = FAIL), `max_trials`
    (stop proposing after this many trials; None = until the budget is spent), and
    `sampler_options` (keyword arguments of the Optuna sampler).
    Subclasses set `method` and implement `make_sampler` (and `make_pruner` if they prune).
    """

    method: str = "optuna"
    #: run decisions on one BLAS/OpenMP thread: GP fits issue many small linear-algebra calls,
    #: which thread pools competing for few cores slow down many times over
    single_threaded: bool = False

    def __init__(self, name: str | None = None, domain: Any = "default",
                 fixed: Mapping[str, Any] | None = None, epochs: int | None = None,
                 min_epochs: int = 1, failure_value: float | None = CHANCE,
                 max_trials: int | None = None,
                 sampler_options: Mapping[str, Any] | None = None) -> None:
        super().__init__(name)
        pinned = dict(fixed or {})
        if epochs is not None:
            pinned["epochs"] = epochs
        self.domain: Domain = load_domain(domain).with_fixed(pinned)
        if min_epochs < 1:
            raise ValueError(f"min_epochs={min_epochs!r} is not allowed: expected >= 1")
        self.min_epochs = int(min_epochs)
        self.failure_value = None if failure_value is None else float(failure_value)
        self.max_trials = max_trials
        self.sampler_options = dict(sampler_options or {})
        self.study: optuna.Study | None = None

    # ----------------------------------------------------------------- hooks
    def make_sampler(self, seed: int) -> BaseSampler:
        """The Optuna sampler of this method, seeded from the agent's rng."""
        return RandomSampler(seed=seed)

    def make_pruner(self) -> optuna.pruners.BasePruner:
        return optuna.pruners.NopPruner()

    def describe(self) -> dict[str, Any]:
        return {"agent": self.name, "method": self.method,
                "library": f"optuna {optuna.__version__}", **self.domain.describe(),
                "epochs": self.domain.fixed.get("epochs", "searched"),
                "failure_value": self.failure_value, "max_trials": self.max_trials,
                "sampler_options": dict(self.sampler_options)}

    # ------------------------------------------------------------- session
    def reset(self, seed: int) -> None:
        super().reset(seed)
        self.study = optuna.create_study(
            direction="maximize", sampler=self.make_sampler(int(self.rng.integers(2**31))),
            pruner=self.make_pruner(), study_name=self.name)
        self._asked: dict[int, optuna.Trial] = {}
        self.cost = EpochCost()

    def thinking(self) -> contextlib.AbstractContextManager:
        """The context of a proposal: one BLAS/OpenMP thread if `single_threaded`."""
        if not self.single_threaded:
            return contextlib.nullcontext()
        if not _THREADS:  # scanning the loaded libraries is slow: once per process
            _THREADS.append(ThreadpoolController())
        return _THREADS[0].limit(limits=1)

    def propose(self, view: SessionView) -> Proposal | None:
        with self.thinking():
            return self.ask(view)

    def ask(self, view: SessionView) -> Proposal | None:
        """Ask the study for the next configuration and fit it into the remaining time."""
        if self.max_trials is not None and len(view.history) >= self.max_trials:
            return None
        trial = self.study.ask()
        raw = self.domain.suggest(trial)
        config = self.fit_budget(self.domain.config(raw), view)
        if config is None:
            self.study.tell(trial, state=TrialState.FAIL)
            return None
        self._asked[len(view.history)] = trial
        return Proposal(config, {name: OTHER for name in (*raw, *self.domain.fixed)})

    def fit_budget(self, config: Config, view: SessionView) -> Config | None:
        """`config`, shortened to the epochs the remaining time fits; None if too few fit."""
        per_epoch = self.cost.seconds_per_epoch(config.batch_size)
        if per_epoch is None:
            return config
        fits = int(view.remaining_minutes * 60.0 // (per_epoch * SAFETY))
        if fits >= config.epochs:
            return config
        return config.replace(epochs=fits) if fits >= self.min_epochs else None

    def observe(self, trial: Trial) -> None:
        self.cost.add(trial)
        asked = self._asked.pop(trial.index, None)
        if asked is None:
            self._add_external(trial)
            return
        value, state = self.outcome(trial)
        if state == TrialState.COMPLETE:
            self.study.tell(asked, value)
        else:
            self.study.tell(asked, state=state)

    def outcome(self, trial: Trial, own: bool = True) -> tuple[float | None, TrialState]:
        """The value and state told for a finished trial (see the module docstring)."""
        value = trial.val_accuracy
        if trial.outcome == "completed" and value is not None and math.isfinite(value):
            return float(value), TrialState.COMPLETE
        if trial.outcome in ("diverged", "failed", "completed") \
                and self.failure_value is not None:
            return self.failure_value, TrialState.COMPLETE
        if trial.outcome == "cancelled" and own:
            return None, TrialState.PRUNED
        return None, TrialState.FAIL

    def _add_external(self, trial: Trial) -> None:
        """Add a trial the agent did not propose (clipped into the domain) to the study."""
        raw = self.domain.encode(trial.config)
        value, state = self.outcome(trial, own=False)
        self.study.add_trial(optuna.trial.create_trial(
            params=raw, distributions=self.domain.distributions(raw), value=value,
            state=state))
