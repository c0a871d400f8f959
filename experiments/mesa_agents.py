"""Mesa agents of the arena: a participant is one contestant playing its own environment.

Mesa wraps the contestants, it does not reimplement them: a `Participant` holds an
`agents.base.Agent`, its own tuning-session environment, and the `agents.play.Session` that
steps them; the model decides *when* each participant steps (see `experiments.mesa_model`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import gymnasium as gym
import mesa

from agents.base import Agent
from agents.play import Session
from envs.trials import Trial

if TYPE_CHECKING:
    from experiments.mesa_model import ArenaModel

#: columns of the DataCollector's "steps" table (one row per environment step)
STEP_COLUMNS: tuple[str, ...] = (
    "participant", "model_step", "step", "trial", "event", "elapsed_minutes", "epochs",
    "n_trials", "best_val_accuracy", "status",
)


class Participant(mesa.Agent):
    """One contestant with its own environment, advanced one environment step at a time.

    `labels` (contestant, seed, ...) go into every row recorded for this participant.
    """

    model: ArenaModel

    def __init__(self, model: ArenaModel, contestant: Agent, env: gym.Env, seed: int,
                 labels: Mapping[str, Any]) -> None:
        super().__init__(model)
        self.labels = dict(labels)
        self.env = env
        self.session = Session(contestant, env, seed)
        self._seen = 0
        self._ended_epochs = 0

    @property
    def clock(self) -> float:
        """Minutes of the session's budget this participant has used."""
        return float(self.session.obs["elapsed_minutes"])

    @property
    def done(self) -> bool:
        return self.session.done

    def step(self) -> None:
        """Take one environment step if this participant is behind the model's clock."""
        if self.done or self.clock >= self.model.clock:
            return
        self.session.step()
        self.model.datacollector.add_table_row("steps", self._row())
        if self.done:
            self.env.close()

    def _history(self) -> tuple[Trial, ...]:
        if self.done:
            return self.session.result.history
        return tuple(self.session.info.get("history", ()))

    def _epochs(self, history: tuple[Trial, ...]) -> int:
        """Epochs trained so far: ended trials plus the running one."""
        for trial in history[self._seen:]:
            self._ended_epochs += trial.epochs_run
        self._seen = len(history)
        obs = self.session.obs
        return self._ended_epochs + (int(obs["epoch"]) if obs["running"] and not self.done else 0)

    def _row(self) -> dict[str, Any]:
        result, obs, info = self.session.result, self.session.obs, self.session.info
        history = self._history()
        best = float(obs["best_val_accuracy"])
        trial = info.get("trial")
        return {
            **self.labels,
            "participant": self.unique_id,
            "model_step": self.model.steps,
            "step": result.steps,
            "trial": len(history) - 1 if trial is None else trial,
            "event": "error" if result.status == "error" else info.get("event", ""),
            "elapsed_minutes": self.clock,
            "epochs": self._epochs(history),
            "n_trials": len(history),
            "best_val_accuracy": best if best >= 0 else None,
            "status": result.status,
        }
