"""The interface between the tuning-session environment and a training backend."""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from envs.space import Config
from envs.trials import EpochReport, FinalResult


class Run(ABC):
    """One training run in progress; the environment pulls it one epoch at a time."""

    @abstractmethod
    def next_epoch(self, max_seconds: float = float("inf")) -> EpochReport:
        """Train one more epoch; stop early (report `interrupted`) past `max_seconds`."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources (called on stop, completion, or when the session ends)."""


class Backend(ABC):
    """A way to train a configuration: the surrogate model or real training.

    `deterministic` is True when seconds are simulated (same seed, same session), False when
    they are measured on the machine.
    """

    name: str = "backend"
    deterministic: bool = True
    #: length of the per-epoch batch-loss sample shown to agents
    n_batch_losses: int = 16

    @abstractmethod
    def start(self, config: Config, rng: np.random.Generator) -> Run:
        """Begin training `config`; all randomness comes from `rng`."""

    @abstractmethod
    def final_test(self, config: Config, rng: np.random.Generator, repeats: int) -> FinalResult:
        """Retrain on train+validation `repeats` times and report the test accuracies."""

    def describe(self) -> dict[str, object]:
        """Settings to record beside every result."""
        return {"backend": self.name}
