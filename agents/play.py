"""The session loop, written once: one contestant plays one environment episode."""

from __future__ import annotations

import time
import traceback
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym

from agents.base import Agent
from envs import actions
from envs.trials import Trial
from envs.tuning_session import SUBMIT


@dataclass
class SessionResult:
    """Everything one session produced.

    `think_seconds[i]` is the agent's measured decision time spent before trial i was
    submitted (wall clock, kept apart from the simulated training time). `status` is "ok" or
    "error" (the agent raised; `error` holds the message and the session was ended there).
    """

    agent: str
    seed: int
    history: tuple[Trial, ...] = ()
    final: dict[str, Any] = field(default_factory=dict)
    think_seconds: dict[int, float] = field(default_factory=dict)
    total_think_seconds: float = 0.0
    steps: int = 0
    status: str = "ok"
    error: str = ""
    truncated: bool = False
    elapsed_minutes: float = 0.0
    returns: float = 0.0


class Session:
    """Steps one agent through one episode; `step()` advances by one environment step.

    A crashing agent (or one whose configuration cannot describe a training) ends only its own
    session, recorded with the error; the environment is still finished so its history and
    final evaluation are kept.
    """

    def __init__(self, agent: Agent, env: gym.Env, seed: int) -> None:
        self.agent, self.env, self.seed = agent, env, seed
        self.result = SessionResult(agent=agent.name, seed=seed)
        self.done = False
        self._pending_think = 0.0
        agent.reset(seed)
        self.obs, self.info = env.reset(seed=seed)

    def step(self) -> bool:
        """One decision and one environment step; False once the session has ended."""
        if self.done:
            return False
        started = time.perf_counter()
        try:
            action = self.agent.act(self.obs, self.info)
            self._record_think(time.perf_counter() - started, action)
            obs, reward, terminated, truncated, info = self.env.step(action)
        except Exception as error:  # noqa: BLE001 - a contestant's crash ends its own session
            self._fail(error)
            return False
        self.obs, self.info = obs, info
        self.result.returns += reward
        self.result.steps += 1
        if terminated or truncated:
            self._close(info, truncated)
        return not self.done

    def _record_think(self, seconds: float, action: dict[str, Any]) -> None:
        self.result.total_think_seconds += seconds
        self._pending_think += seconds
        if int(action["command"]) == SUBMIT:
            index = len(self.info.get("history", ())) + int(bool(self.obs["running"]))
            self.result.think_seconds[index] = self._pending_think
            self._pending_think = 0.0

    def _fail(self, error: Exception) -> None:
        self.result.status = "error"
        self.result.error = f"{type(error).__name__}: {error}\n{traceback.format_exc(limit=3)}"
        try:
            self.obs, _, _, truncated, info = self.env.step(actions.finish())
            self._close(info, truncated)
        except Exception:  # noqa: BLE001 - the environment itself is broken: record and end
            self.done = True

    def _close(self, info: dict[str, Any], truncated: bool) -> None:
        self.done = True
        self.result.history = tuple(info.get("history", ()))
        self.result.final = dict(info.get("final", {}))
        self.result.truncated = truncated
        self.result.elapsed_minutes = float(self.obs["elapsed_minutes"])


def play(agent: Agent, env: gym.Env, seed: int) -> SessionResult:
    """Play a whole session and return its result."""
    session = Session(agent, env, seed)
    while session.step():
        pass
    return session.result
