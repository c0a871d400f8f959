"""Frozen records that decouple contestants from tasks: what a run reported, what a trial was."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from envs.space import NAMES, Config, to_row

Outcome = Literal["completed", "cancelled", "diverged", "failed", "unfinished"]
OUTCOMES: tuple[str, ...] = ("completed", "cancelled", "diverged", "failed", "unfinished")
#: The study's runs-table spelling of each outcome.
STUDY_OUTCOME: dict[str, str] = {
    "completed": "completed",
    "cancelled": "cancelled",
    "diverged": "nan",
    "failed": "unfinished",
    "unfinished": "unfinished",
}
#: Columns of the study's runs table (data/study/runs.tsv), in order.
STUDY_RUN_COLUMNS: tuple[str, ...] = (
    "server", "user_id", "run_id", *NAMES, *(f"why_{name}" for name in NAMES),
    "final_submission", "outcome", "val_accuracy", "time_taken_s",
)
Protocol = Literal["study", "full"]
PROTOCOLS: tuple[str, ...] = ("study", "full")


@dataclass(frozen=True)
class EpochReport:
    """What one epoch of a run produced (one `continue` of the environment).

    `val_accuracy` is always measured; the environment hides it under the `study` protocol
    until the run completes. `batch_losses` is a fixed-length sample of the epoch's per-batch
    losses in order (inf where the loss was NaN or inf). `interrupted` is set when a deadline
    cut the epoch short (budget exhausted); `failed` carries a reason when the run broke.
    """

    epoch: int
    train_loss: float
    batch_losses: np.ndarray
    val_accuracy: float
    seconds: float
    diverged: bool = False
    interrupted: bool = False
    failed: str = ""


@dataclass(frozen=True)
class FinalResult:
    """The study's final protocol: retrain on train+validation, test accuracy over repeats."""

    test_accuracies: tuple[float, ...]
    diverged: bool
    seconds: float

    @property
    def test_accuracy(self) -> float:
        return float(np.mean(self.test_accuracies))

    @property
    def test_accuracy_sd(self) -> float:
        return float(np.std(self.test_accuracies, ddof=1)) if len(self.test_accuracies) > 1 else 0.0


@dataclass(frozen=True)
class Trial:
    """One submitted configuration and what became of it.

    `val_accuracy` is what the protocol reported (study: completed runs only; full: the last
    epoch run); `last_val_accuracy` is the last measured value, hidden under `study` and kept
    for analysis only.
    """

    index: int
    config: Config
    rationale: dict[str, int]
    outcome: Outcome
    epochs_planned: int
    epochs_run: int
    val_accuracy: float | None
    train_losses: tuple[float, ...]
    seconds: float
    start_minutes: float
    end_minutes: float
    last_val_accuracy: float | None = None
    reason: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def to_row(self) -> dict[str, str]:
        """Flat row with canonical config columns, why_<name> codes and outcome fields."""
        row = to_row(self.config)
        row |= {f"why_{name}": str(self.rationale.get(name, "")) for name in NAMES}
        row |= {
            "trial": str(self.index),
            "outcome": self.outcome,
            "epochs_run": str(self.epochs_run),
            "val_accuracy": "" if self.val_accuracy is None else f"{self.val_accuracy:.4f}",
            "seconds": f"{self.seconds:.3f}",
            "start_minutes": f"{self.start_minutes:.4f}",
            "end_minutes": f"{self.end_minutes:.4f}",
            "reason": self.reason,
        }
        return row


def validated(history: Sequence[Trial]) -> list[Trial]:
    """The trials whose validation accuracy was shown."""
    return [t for t in history if t.val_accuracy is not None]


def best_trial(history: Sequence[Trial]) -> Trial | None:
    """The trial with the highest shown validation accuracy (earliest on ties)."""
    return max(validated(history), key=lambda t: t.val_accuracy, default=None)
