"""The interface between the tuning-session environment and a training backend."""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass

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


@dataclass(frozen=True)
class RunEnd:
    """How a run trained to its end finished: outcome ("completed", "diverged", "failed", or
    "cancelled" past its time limit), the last validation accuracy (completed runs only),
    seconds trained, epochs completed and the reason when it did not complete."""

    outcome: str
    val_accuracy: float | None
    seconds: float
    epochs_run: int
    reason: str = ""


def train_to_end(backend: Backend, config: Config, rng: np.random.Generator,
                 max_seconds: float = math.inf) -> RunEnd:
    """Train `config` epoch by epoch until it completes, diverges, fails or runs past
    `max_seconds` (then it is cancelled, as a person would)."""
    run = backend.start(config, rng)
    seconds, epochs_run = 0.0, 0
    try:
        while True:
            report = run.next_epoch(max_seconds=max_seconds - seconds)
            seconds += report.seconds
            if report.failed:
                return RunEnd("failed", None, seconds, epochs_run, report.failed)
            if report.diverged:
                return RunEnd("diverged", None, seconds, epochs_run, "loss became NaN or inf")
            if report.interrupted:
                return RunEnd("cancelled", None, seconds, epochs_run, "ran past its time limit")
            epochs_run += 1
            if report.epoch >= config.epochs:
                return RunEnd("completed", report.val_accuracy, seconds, epochs_run)
    finally:
        run.close()
