"""Session loggers: none (the default) or Weights & Biases, one W&B run per session.

W&B runs are grouped by tournament (`group`), typed by contestant (`job_type`), and hold the
session's config, its curves (best-so-far per trial and per simulated minute) and summary
tables. The mode comes from the config and defaults to offline: nothing touches the network,
and `wandb sync <dir>/wandb/offline-run-*` uploads later. Online mode fails loudly when W&B
cannot start; it never falls back to offline within a process. Each process (each joblib job)
logs its own runs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from experiments import analysis as an

MODES: tuple[str, ...] = ("offline", "online", "disabled")


class NullLogger:
    """Logs nothing."""

    def log_session(self, session: Mapping[str, Any], trials: pd.DataFrame,
                    steps: pd.DataFrame, config: Mapping[str, Any]) -> None:
        """Log one session (its sessions.tsv row, trials and steps rows, run config)."""

    def log_leaderboard(self, board: pd.DataFrame, config: Mapping[str, Any]) -> None:
        """Log a tournament's leaderboard."""

    def close(self) -> None:
        """Release whatever logging holds."""


class WandbLogger(NullLogger):
    """One W&B run per session (see the module docstring)."""

    def __init__(self, project: str = "hpo-arena", entity: str | None = None,
                 group: str | None = None, mode: str = "offline", dir: str | None = None,
                 tags: Sequence[str] = (), init_timeout: float = 30.0,
                 minute_points: int = 121) -> None:
        if mode not in MODES:
            raise ValueError(f"logger.mode={mode!r} is not allowed: expected one of {MODES}")
        self.project, self.entity, self.group, self.mode = project, entity, group, mode
        self.dir = None if dir is None else str(Path(dir))
        self.tags, self.init_timeout, self.minute_points = list(tags), init_timeout, minute_points
        self.run_dirs: list[str] = []

    def _settings(self) -> Any:
        import wandb

        return wandb.Settings(mode=self.mode, init_timeout=self.init_timeout, console="off",
                              silent=True, disable_git=True, x_disable_stats=True,
                              x_disable_meta=True, x_disable_machine_info=True)

    def _init(self, name: str, job_type: str, config: Mapping[str, Any]) -> Any:
        import wandb

        if self.dir is not None:
            Path(self.dir).mkdir(parents=True, exist_ok=True)
        try:
            run = wandb.init(project=self.project, entity=self.entity, group=self.group,
                             job_type=job_type, name=name, config=dict(config), dir=self.dir,
                             mode=self.mode, tags=self.tags, settings=self._settings(),
                             reinit="create_new")
        except Exception as error:
            raise RuntimeError(
                f"W&B could not start a {self.mode} run ({type(error).__name__}: {error}); "
                "nothing was logged. Use logger.mode=offline (then `wandb sync`) or "
                "logger=none.") from error
        if getattr(run, "dir", None):
            self.run_dirs.append(str(Path(run.dir).parent))
        return run

    def log_session(self, session: Mapping[str, Any], trials: pd.DataFrame,
                    steps: pd.DataFrame, config: Mapping[str, Any]) -> None:
        import wandb

        name = f"{session['contestant']}-seed{session['seed']}"
        run = self._init(name, str(session["contestant"]), config)
        try:
            run.define_metric("trial")
            run.define_metric("by_trial/*", step_metric="trial")
            run.define_metric("minutes")
            run.define_metric("by_minute/*", step_metric="minutes")
            for row in trials.itertuples(index=False):
                run.log(_finite({"trial": int(row.trial) + 1,
                                 "by_trial/val_accuracy": row.val_accuracy,
                                 "by_trial/best_val_accuracy": row.best_val_so_far,
                                 "by_trial/cum_minutes": row.cum_minutes,
                                 "by_trial/cum_epochs": row.cum_epochs}))
            for x, best in self._minute_curve(session, steps):
                run.log({"minutes": x, "by_minute/best_val_accuracy": best})
            run.log({"trials": wandb.Table(dataframe=trials.astype(str))})
            run.summary.update(_finite(dict(session)))
        finally:
            run.finish()

    def _minute_curve(self, session: Mapping[str, Any], steps: pd.DataFrame
                      ) -> list[tuple[float, float]]:
        one = pd.DataFrame([{k: session[k] for k in an.SESSION_KEY}])
        curve = an.grid_curves(steps, one, "elapsed_minutes", self.minute_points)
        return list(zip(curve["x"].astype(float), curve["best"].astype(float), strict=True))

    def log_leaderboard(self, board: pd.DataFrame, config: Mapping[str, Any]) -> None:
        import wandb

        run = self._init(f"{self.group or 'tournament'}-leaderboard", "leaderboard", config)
        try:
            run.log({"leaderboard": wandb.Table(dataframe=board.astype(str))})
        finally:
            run.finish()

    def close(self) -> None:
        import wandb

        wandb.teardown()


def _finite(values: Mapping[str, Any]) -> dict[str, Any]:
    """Drop missing values (W&B needs none of them), numpy scalars as Python."""
    out = {}
    for key, value in values.items():
        if isinstance(value, np.generic):
            value = value.item()
        if value is None or (isinstance(value, float) and not np.isfinite(value)):
            continue
        out[key] = value
    return out
