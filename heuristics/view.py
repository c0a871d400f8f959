"""Reading a `SessionView` as a person would: the best run, the last run, what a curve shows."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from agents.base import SessionView
from envs.space import Config
from envs.trials import Trial, best_trial, validated  # noqa: F401 - re-exported

#: accuracies at or below this read as "learned nothing"
NO_LEARNING = 0.15


def make_view(history: Sequence[Trial] = (), running_losses: Sequence[float] = (),
              running_config: Config | None = None, remaining_minutes: float = 120.0,
              elapsed_minutes: float = 0.0, protocol: str = "study",
              val_accuracy: float | None = None) -> SessionView:
    """A `SessionView` built by hand (for tests, notebooks and plug-in authors)."""
    obs: dict[str, Any] = {
        "running": int(running_config is not None),
        "epoch": np.int64(len(running_losses)),
        "epoch_loss": np.float64(running_losses[-1] if running_losses else 0.0),
        "val_accuracy": np.float64(-1.0 if val_accuracy is None else val_accuracy),
        "best_val_accuracy": np.float64(best_accuracy(history) or -1.0),
        "elapsed_minutes": np.float64(elapsed_minutes),
        "remaining_minutes": np.float64(remaining_minutes),
        "n_trials": np.int64(len(history)),
    }
    return SessionView(obs, tuple(history), tuple(running_losses), running_config, protocol)


def with_remaining(view: SessionView, minutes: float) -> SessionView:
    """The same view with the remaining minutes a person believes they have."""
    return replace(view, obs={**view.obs, "remaining_minutes": np.float64(max(minutes, 0.0))})


def budget_minutes(view: SessionView) -> float:
    return view.elapsed_minutes + view.remaining_minutes


def best_accuracy(history: Sequence[Trial]) -> float | None:
    best = best_trial(history)
    return None if best is None else best.val_accuracy


def last_trial(history: Sequence[Trial]) -> Trial | None:
    return history[-1] if history else None


def broke(trial: Trial) -> bool:
    """Diverged (NaN loss) or failed to start."""
    return trial.outcome in ("diverged", "failed")


def finite(losses: Sequence[float]) -> list[float]:
    return [x for x in losses if math.isfinite(x)]


def flat(losses: Sequence[float], tolerance: float = 0.03) -> bool:
    """Whether a loss curve shows no learning (relative drop below `tolerance`)."""
    ok = finite(losses)
    if len(ok) < 2 or len(ok) < len(losses):
        return False
    return (ok[0] - min(ok)) < tolerance * abs(ok[0])


def learned_nothing(trial: Trial) -> bool:
    """Chance accuracy, a flat loss curve, or a broken run."""
    if broke(trial):
        return True
    if trial.val_accuracy is not None:
        return trial.val_accuracy <= NO_LEARNING
    return flat(trial.train_losses)


def seconds_per_epoch(view: SessionView, batch_size: int, default: float = 10.0) -> float:
    """A person's estimate of one epoch's seconds at `batch_size`.

    From the run with the nearest batch size seen so far, scaled by the rule of thumb "time per
    epoch ~ a fixed part + a part proportional to the number of batches" (the fixed part worth
    64 images per batch); `default` seconds at batch size 64 before any run.
    """
    timed = [t for t in view.history if t.epochs_run > 0 and t.seconds > 0]
    if not timed:
        return default * _batch_cost(batch_size) / _batch_cost(64)
    near = min(timed, key=lambda t: abs(math.log(t.config.batch_size / batch_size)))
    per_epoch = near.seconds / near.epochs_run
    return per_epoch * _batch_cost(batch_size) / _batch_cost(near.config.batch_size)


def _batch_cost(batch_size: int) -> float:
    return 1.0 / 64.0 + 1.0 / max(batch_size, 1)
