"""The contestant interface: every persona and optimizer plays through `reset` and `act`."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from envs import actions
from envs.space import Config
from envs.trials import Trial


@dataclass(frozen=True)
class Proposal:
    """A configuration to submit, with the rationale code of each value it sets."""

    config: Config | Mapping[str, Any]
    rationale: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class SessionView:
    """What an agent sees at a decision point, read off the environment's obs and info."""

    obs: Mapping[str, Any]
    history: Sequence[Trial]
    running_losses: Sequence[float]
    running_config: Config | None
    protocol: str

    @property
    def remaining_minutes(self) -> float:
        return float(self.obs["remaining_minutes"])

    @property
    def elapsed_minutes(self) -> float:
        return float(self.obs["elapsed_minutes"])

    @property
    def running(self) -> bool:
        return bool(self.obs["running"])

    @property
    def val_accuracy(self) -> float | None:
        """The validation accuracy shown now (None when the protocol hides it)."""
        value = float(self.obs["val_accuracy"])
        return None if value < 0 else value


class Agent(ABC):
    """A contestant in a tuning session.

    `reset(seed)` starts a session (all randomness from `self.rng`); `act(obs, info)` returns
    an environment action (see `envs.actions`). Agents see the environment only through
    observations and infos.
    """

    #: short name used in tables and output directories
    name: str = "agent"

    def __init__(self, name: str | None = None) -> None:
        if name is not None:
            self.name = name
        self.rng = np.random.default_rng(0)

    def reset(self, seed: int) -> None:
        """Begin a new session; every random choice flows from `seed`."""
        self.rng = np.random.default_rng(seed)

    @abstractmethod
    def act(self, obs: Mapping[str, Any], info: Mapping[str, Any]) -> dict[str, Any]:
        """The next action for the environment."""

    def describe(self) -> dict[str, Any]:
        """Parameters recorded beside every result (override to add yours)."""
        return {"agent": self.name}


class TrialAgent(Agent):
    """An agent written as three decisions: what to try next, whether to keep training, which
    trial to name final. The step protocol (submit, continue, stop, finish) is handled here.

    Subclasses implement `propose`; `keep_training` (early stopping) and `final_choice`
    default to "always" and "the best validated trial".
    """

    def reset(self, seed: int) -> None:
        super().reset(seed)
        self._seen = 0
        self._losses: list[float] = []
        self._config: Config | None = None

    @abstractmethod
    def propose(self, view: SessionView) -> Proposal | None:
        """The next configuration to submit, or None to end the session."""

    def keep_training(self, view: SessionView) -> bool:
        """Whether the running run should go on for another epoch."""
        return True

    def observe(self, trial: Trial) -> None:
        """Called once for every trial that ended (override to learn from it)."""

    def final_choice(self, view: SessionView) -> int | None:
        """Index of the trial to name final; None = the environment's best validated."""
        return None

    def session_over(self, view: SessionView) -> bool:
        """Whether to end the session now, even mid-run (default: only when `propose` says so)."""
        return False

    def act(self, obs: Mapping[str, Any], info: Mapping[str, Any]) -> dict[str, Any]:
        history: Sequence[Trial] = info.get("history", ())
        for trial in history[self._seen:]:
            self.observe(trial)
        self._seen = len(history)
        running = bool(obs["running"])
        if running:
            if info.get("event") in ("epoch", "submit"):
                self._losses.append(float(obs["epoch_loss"]))
        else:
            self._losses, self._config = [], None
        view = SessionView(obs, history, tuple(self._losses), self._config,
                           str(info.get("protocol", "study")))
        if self.session_over(view):
            return actions.finish(self.final_choice(view))
        if running:
            return actions.continue_() if self.keep_training(view) else actions.stop()
        proposal = self.propose(view)
        if proposal is None:
            return actions.finish(self.final_choice(view))
        config = proposal.config if isinstance(proposal.config, Config) else Config.from_mapping(
            proposal.config)
        self._config, self._losses = config, []
        return actions.submit(config, proposal.rationale)
