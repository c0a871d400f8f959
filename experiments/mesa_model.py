"""The arena as a Mesa model: participants advance together in simulated time.

Each model step moves the model's clock to `tick_minutes` past the participant that lags most;
every participant behind the clock then takes one environment step, in an order shuffled by
the model's seeded random generator (`self.agents.shuffle_do("step")`). A DataCollector
records the model (clock, active participants) every model step, and every participant's
environment step in its "steps" table.

The sessions themselves are seeded by their own seeds (the same seed for every contestant:
common random numbers), so a participant's result does not depend on who else is in the model
or on the stepping order: a tournament split into many jobs gives the same sessions as one job.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import mesa
import pandas as pd

from agents.base import Agent
from agents.play import SessionResult
from experiments.mesa_agents import STEP_COLUMNS, Participant


@dataclass
class Entry:
    """What a participant is made of: a contestant, its own environment, a seed, labels."""

    contestant: Agent
    env: gym.Env
    seed: int
    labels: Mapping[str, Any] = field(default_factory=dict)


class ArenaModel(mesa.Model):
    """Participants playing their sessions side by side in simulated time."""

    def __init__(self, entries: Sequence[Entry], tick_minutes: float = 1.0, seed: int = 0
                 ) -> None:
        super().__init__(seed=seed)
        if tick_minutes <= 0:
            raise ValueError(f"tick_minutes={tick_minutes!r} is not allowed: expected > 0")
        self.tick_minutes = float(tick_minutes)
        self.clock = 0.0
        label_columns = list(dict.fromkeys(k for e in entries for k in e.labels))
        self.datacollector = mesa.DataCollector(
            model_reporters={"clock": "clock", "active": "n_active"},
            tables={"steps": [*label_columns, *STEP_COLUMNS]},
        )
        self.participants = [Participant(self, e.contestant, e.env, e.seed,
                                         {c: e.labels.get(c) for c in label_columns})
                             for e in entries]
        self.running = bool(self.participants)

    @property
    def n_active(self) -> int:
        return sum(not p.done for p in self.participants)

    def step(self) -> None:
        active = [p.clock for p in self.participants if not p.done]
        if not active:
            self.running = False
            return
        self.clock = max(self.clock, min(active) + self.tick_minutes)
        self.agents.shuffle_do("step")
        self.datacollector.collect(self)
        self.running = self.n_active > 0

    def run(self, callback: Callable[[ArenaModel], None] | None = None) -> None:
        """Step until every session has ended; `callback(model)` after each step."""
        while self.running:
            self.step()
            if callback is not None:
                callback(self)

    def results(self) -> list[tuple[dict[str, Any], SessionResult]]:
        """Each participant's labels and session result, in creation order."""
        return [(p.labels, p.session.result) for p in self.participants]

    def steps_table(self) -> pd.DataFrame:
        """The DataCollector's "steps" table: one row per environment step."""
        return self.datacollector.get_table_dataframe("steps")
