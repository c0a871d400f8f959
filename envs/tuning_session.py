"""The tuning-session environment: one hyperparameter-tuning session of the user study."""

from __future__ import annotations

import importlib
import math
from collections.abc import Mapping
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from envs.backend import Backend, Run
from envs.space import HYPERPARAMETERS, NAMES, SPACE, Config, validate
from envs.trials import OUTCOMES, PROTOCOLS, EpochReport, FinalResult, Trial, best_trial

SUBMIT, CONTINUE, STOP, FINISH = 0, 1, 2, 3
COMMANDS: tuple[str, ...] = ("submit", "continue", "stop", "finish")
BACKENDS: dict[str, str] = {
    "surrogate": "envs.surrogate:SurrogateBackend",
    "real": "envs.real_training:RealBackend",
}
NO_VALUE = -1.0
MAX_INT = 2**31 - 1


def make_backend(backend: str | Backend, **options: Any) -> Backend:
    """A backend instance from its registered name (imported lazily) or an instance."""
    if isinstance(backend, Backend):
        if options:
            raise TypeError(f"backend options {sorted(options)} given with a Backend instance")
        return backend
    if backend not in BACKENDS:
        raise ValueError(f"backend={backend!r} is not allowed: expected one of {sorted(BACKENDS)}")
    module, _, name = BACKENDS[backend].partition(":")
    return getattr(importlib.import_module(module), name)(**options)


def _scalar(low: float, high: float, dtype: type = np.float64) -> spaces.Box:
    return spaces.Box(low=low, high=high, shape=(), dtype=dtype)


def config_space() -> spaces.Dict:
    """Gymnasium space of one configuration (categories as indices into their choices)."""
    items: dict[str, spaces.Space] = {}
    for hp in HYPERPARAMETERS:
        if hp.kind == "categorical":
            items[hp.name] = spaces.Discrete(len(hp.choices))
        elif hp.kind == "int":
            items[hp.name] = _scalar(1, 10_000, np.int64)
        else:
            low = -np.inf if hp.lower is None else (hp.lower if hp.lower_inclusive else 1e-12)
            items[hp.name] = _scalar(low, np.inf)
    return spaces.Dict(items)


def decode_config(values: Mapping[str, Any]) -> Config:
    """A validated Config from an action's config part (category indices or names)."""
    plain: dict[str, Any] = {}
    for name, value in values.items():
        hp = SPACE.get(name)
        if isinstance(value, np.ndarray):
            value = value.item()
        if hp is not None and hp.kind == "categorical" and isinstance(value, int | np.integer):
            if not 0 <= int(value) < len(hp.choices):
                value = f"index {int(value)}"
            else:
                value = hp.choices[int(value)]
        plain[name] = value
    return validate(plain)


class TuningSessionEnv(gym.Env):
    """
    ## Description
    One session of the "Black Magic in Deep Learning" user study: tune SqueezeNet on a
    10-class image task within a wall-clock budget. The agent submits configurations, watches
    the training loss epoch by epoch, may stop a run, and finally names the configuration whose
    test accuracy (retrained on train+validation, averaged over repeats) is its score.

    ## Action Space
    `Dict` with `command` (`Discrete(4)`: 0 submit, 1 continue, 2 stop, 3 finish), `config` (a
    `Dict` of the 15 canonical hyperparameters; categories as indices), `rationale`
    (`MultiDiscrete([6] * 15)`: the study's rationale code per field, 0 = not given) and
    `final_trial` (index of the trial to name as final at `finish`; -1 = best validated).
    `envs.actions` builds these dicts. Submitting starts a run and trains its first epoch
    (aborting a running one); continue trains one more epoch; a run that reaches its planned
    epochs completes. Values that cannot describe a training raise `InvalidConfigError` before
    anything changes; absurd values are simulated.

    ## Observation Space
    `Dict`: `running` (0/1), `epoch` and `epochs_planned` of the current or last run,
    `batch_losses` (the last epoch's per-batch loss sample, inf when NaN), `epoch_loss`,
    `val_accuracy` (-1 when not shown: under protocol `study` only completed runs show it,
    under `full` every epoch does), `best_val_accuracy` (-1 before any), `elapsed_minutes`,
    `remaining_minutes`, `n_trials`, `last_outcome` (0 none, then 1 + index in
    `envs.trials.OUTCOMES`).

    ## Rewards
    The improvement of the best validation accuracy seen so far (so the return is the best
    validation accuracy seen, above 0).

    ## Episode End
    Terminates on `finish`; truncates when the wall-clock budget is spent (or after
    `max_steps`). At the end `info["final"]` holds the final configuration, its test accuracy
    (mean and sd over `final_repeats` trainings) and `info["history"]` every trial.

    ## Arguments
    `backend` ("surrogate" or "real", or a `Backend`), `protocol` ("study" | "full"),
    `budget_minutes` (120), `final_repeats` (10), `max_steps` (100000); further keyword
    arguments go to the backend (e.g. `dataset="digits"` for the real one).
    """

    metadata = {"render_modes": ["ansi"]}

    def __init__(
        self,
        backend: str | Backend = "surrogate",
        protocol: str = "study",
        budget_minutes: float = 120.0,
        final_repeats: int = 10,
        max_steps: int = 100_000,
        render_mode: str | None = None,
        **backend_options: Any,
    ) -> None:
        if protocol not in PROTOCOLS:
            raise ValueError(f"protocol={protocol!r} is not allowed: expected one of {PROTOCOLS}")
        if not (isinstance(budget_minutes, int | float) and budget_minutes > 0):
            raise ValueError(f"budget_minutes={budget_minutes!r} is not allowed: expected > 0")
        if not (isinstance(final_repeats, int) and final_repeats >= 1):
            raise ValueError(f"final_repeats={final_repeats!r} is not allowed: expected int >= 1")
        self.backend = make_backend(backend, **backend_options)
        self.protocol = protocol
        self.budget_minutes = float(budget_minutes)
        self.final_repeats = final_repeats
        self.max_steps = max_steps
        self.render_mode = render_mode
        k = self.backend.n_batch_losses
        self.action_space = spaces.Dict({
            "command": spaces.Discrete(len(COMMANDS)),
            "config": config_space(),
            "rationale": spaces.MultiDiscrete([6] * len(NAMES)),
            "final_trial": _scalar(-1, MAX_INT, np.int64),
        })
        self.observation_space = spaces.Dict({
            "running": spaces.Discrete(2),
            "epoch": _scalar(0, MAX_INT, np.int64),
            "epochs_planned": _scalar(0, MAX_INT, np.int64),
            "batch_losses": spaces.Box(0.0, np.inf, shape=(k,), dtype=np.float64),
            "epoch_loss": _scalar(0.0, np.inf),
            "val_accuracy": _scalar(NO_VALUE, 1.0),
            "best_val_accuracy": _scalar(NO_VALUE, 1.0),
            "elapsed_minutes": _scalar(0.0, np.inf),
            "remaining_minutes": _scalar(0.0, np.inf),
            "n_trials": _scalar(0, MAX_INT, np.int64),
            "last_outcome": spaces.Discrete(len(OUTCOMES) + 1),
        })
        self._zeros = np.zeros(k)
        self._reset_state()

    # ------------------------------------------------------------------ state
    def _reset_state(self) -> None:
        self._history: list[Trial] = []
        self._history_view: tuple[Trial, ...] = ()
        self._run: Run | None = None
        self._current: dict[str, Any] | None = None
        self._elapsed_s = 0.0
        self._best = NO_VALUE
        self._last_report: EpochReport | None = None
        self._shown_val = NO_VALUE
        self._last_outcome = 0
        self._steps = 0
        self._done = False

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        super().reset(seed=seed)
        self._close_run()
        self._reset_state()
        return self._observation(), self._info("reset")

    # ------------------------------------------------------------------- step
    def step(
        self, action: Mapping[str, Any]
    ) -> tuple[dict[str, Any], float, bool, bool, dict[str, Any]]:
        if self._done:
            raise RuntimeError("step() called after the episode ended; call reset() first")
        command = int(action["command"])
        if not 0 <= command < len(COMMANDS):
            raise ValueError(f"command={command!r} is not allowed: expected 0-3 ({COMMANDS})")
        best_before = max(self._best, 0.0)
        config = decode_config(action["config"]) if command == SUBMIT else None
        self._steps += 1
        event = COMMANDS[command]
        if command == SUBMIT:
            self._end_run("cancelled", "aborted by a new submission")
            self._start_run(config, _rationale(action.get("rationale")))
            event = self._advance()
        elif command == CONTINUE:
            event = self._advance() if self._run is not None else "noop"
        elif command == STOP:
            event = "cancelled" if self._end_run("cancelled", "stopped") else "noop"
        terminated = command == FINISH
        truncated = not terminated and (self._budget_spent() or self._steps >= self.max_steps)
        reward = max(self._best, 0.0) - best_before
        if terminated or truncated:  # close a running run first: the final history holds it
            self._end_run("unfinished", "session ended")
            info = self._finish(int(action.get("final_trial", -1)), self._info(event))
        else:
            info = self._info(event)
        return self._observation(), float(reward), terminated, truncated, info

    def _start_run(self, config: Config, rationale: dict[str, int]) -> None:
        self._run = self.backend.start(config, self.np_random)
        self._current = {
            "index": len(self._history), "config": config, "rationale": rationale,
            "losses": [], "seconds": 0.0, "start_s": self._elapsed_s, "last_val": None,
        }
        self._shown_val = NO_VALUE

    def _advance(self) -> str:
        """Train one epoch of the running run; returns the event name."""
        assert self._run is not None and self._current is not None
        remaining_s = self.budget_minutes * 60.0 - self._elapsed_s
        report = self._run.next_epoch(max_seconds=remaining_s)
        self._elapsed_s += min(report.seconds, remaining_s)
        self._last_report = report
        cur = self._current
        cur["seconds"] += min(report.seconds, remaining_s)
        if report.interrupted:
            return "interrupted" if self._end_run("unfinished", "budget spent") else "noop"
        cur["losses"].append(report.train_loss)
        cur["last_val"] = report.val_accuracy
        if report.failed:
            self._end_run("failed", report.failed)
            return "failed"
        if report.diverged:
            self._end_run("diverged", "loss became NaN or inf")
            return "diverged"
        if self.protocol == "full":
            self._show(report.val_accuracy)
        if report.epoch >= cur["config"].epochs:
            self._end_run("completed", "")
            return "completed"
        return "epoch"

    def _show(self, val_accuracy: float) -> None:
        self._shown_val = val_accuracy
        self._best = max(self._best, val_accuracy)

    def _end_run(self, outcome: str, reason: str) -> bool:
        """Record the running run as a trial; False when no run was running."""
        if self._run is None or self._current is None:
            return False
        cur = self._current
        last_val = cur["last_val"]
        shown = None
        if outcome == "completed":
            self._show(last_val)
            shown = last_val
        elif self.protocol == "full" and outcome in ("cancelled", "unfinished") and cur["losses"]:
            shown = last_val
        elif outcome in ("diverged", "failed"):
            self._shown_val = NO_VALUE
        trial = Trial(
            index=cur["index"], config=cur["config"], rationale=cur["rationale"],
            outcome=outcome, epochs_planned=cur["config"].epochs, epochs_run=len(cur["losses"]),
            val_accuracy=shown, train_losses=tuple(cur["losses"]), seconds=cur["seconds"],
            start_minutes=cur["start_s"] / 60.0, end_minutes=self._elapsed_s / 60.0,
            last_val_accuracy=last_val, reason=reason,
        )
        self._history.append(trial)
        self._history_view = tuple(self._history)
        self._last_outcome = 1 + OUTCOMES.index(outcome)
        self._close_run()
        return True

    def _close_run(self) -> None:
        if self._run is not None:
            self._run.close()
        self._run, self._current = None, None

    def _budget_spent(self) -> bool:
        return self._elapsed_s >= self.budget_minutes * 60.0 - 1e-9

    # ------------------------------------------------------------------ final
    def best_trial(self) -> Trial | None:
        """The trial with the highest reported validation accuracy (earliest on ties)."""
        return best_trial(self._history)

    def _finish(self, final_trial: int, info: dict[str, Any]) -> dict[str, Any]:
        self._done = True
        if 0 <= final_trial < len(self._history):
            trial = self._history[final_trial]
        else:
            trial = self.best_trial()
        final: dict[str, Any] = {"trial": None, "config": None, "test_accuracy": None,
                                 "test_accuracy_sd": None, "test_accuracies": (),
                                 "diverged": None, "seconds": 0.0}
        if trial is not None:
            result: FinalResult = self.backend.final_test(
                trial.config, self.np_random, self.final_repeats)
            final.update(trial=trial.index, config=trial.config,
                         test_accuracy=result.test_accuracy,
                         test_accuracy_sd=result.test_accuracy_sd,
                         test_accuracies=result.test_accuracies, diverged=result.diverged,
                         seconds=result.seconds)
        info["final"] = final
        return info

    # ------------------------------------------------------------ observation
    def _observation(self) -> dict[str, Any]:
        report = self._last_report if self._run is not None or self._history else None
        cur = self._current
        if report is not None:
            losses = report.batch_losses
            epoch_loss = report.train_loss if math.isfinite(report.train_loss) else np.inf
        else:
            losses, epoch_loss = self._zeros, 0.0
        planned = cur["config"].epochs if cur else (
            self._history[-1].epochs_planned if self._history else 0)
        epoch = len(cur["losses"]) if cur else (
            self._history[-1].epochs_run if self._history else 0)
        remaining = max(self.budget_minutes - self._elapsed_s / 60.0, 0.0)
        return {
            "running": int(self._run is not None),
            "epoch": np.int64(epoch),
            "epochs_planned": np.int64(min(planned, MAX_INT)),
            "batch_losses": losses.copy(),
            "epoch_loss": np.float64(epoch_loss),
            "val_accuracy": np.float64(self._shown_val),
            "best_val_accuracy": np.float64(self._best),
            "elapsed_minutes": np.float64(self._elapsed_s / 60.0),
            "remaining_minutes": np.float64(remaining),
            "n_trials": np.int64(len(self._history) + (self._run is not None)),
            "last_outcome": self._last_outcome,
        }

    def _info(self, event: str) -> dict[str, Any]:
        return {
            "event": event,
            "history": self._history_view,
            "trial": self._current["index"] if self._current else None,
            "protocol": self.protocol,
            "backend": self.backend.name,
        }

    def render(self) -> str | None:
        if self.render_mode != "ansi":
            return None
        obs = self._observation()
        return (f"t={obs['elapsed_minutes']:.1f}/{self.budget_minutes:.0f} min "
                f"trials={obs['n_trials']} best={obs['best_val_accuracy']:.3f} "
                f"running={obs['running']} epoch={obs['epoch']}/{obs['epochs_planned']} "
                f"loss={obs['epoch_loss']:.4f}")

    def close(self) -> None:
        self._close_run()


def _rationale(codes: Any) -> dict[str, int]:
    """Rationale codes per field from an action's `rationale` (array or mapping)."""
    if codes is None:
        return {}
    if isinstance(codes, Mapping):
        return {name: int(code) for name, code in codes.items() if code and name in SPACE}
    return {name: int(code) for name, code in zip(NAMES, codes, strict=True) if code}
