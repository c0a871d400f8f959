"""Shared test helpers: environments, agents from conf/agent, session digests."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from hydra.utils import instantiate
from omegaconf import OmegaConf

import envs  # noqa: F401 - registers the environment
from agents.base import Agent
from agents.play import SessionResult
from envs.backend import Run
from envs.space import Config
from envs.surrogate import SurrogateBackend
from envs.trials import EpochReport

ROOT = Path(__file__).resolve().parents[1]
AGENT_CONFIGS = sorted((ROOT / "conf" / "agent").glob("*.yaml"))


def make_agent(path: Path) -> Agent:
    """Instantiate a registered agent from its conf/agent YAML."""
    return instantiate(OmegaConf.load(path))


def make_env(budget_minutes: float = 120.0, **kwargs: Any) -> gym.Env:
    return gym.make(envs.ENV_ID, budget_minutes=budget_minutes, **kwargs)


def digest(result: SessionResult) -> str:
    """A fingerprint of what a session did (configurations, outcomes, final score)."""
    parts = [(sorted(t.config.to_dict().items()), t.outcome, t.epochs_run, t.val_accuracy)
             for t in result.history]
    parts.append(result.final.get("test_accuracy"))
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:16]


class _FatedRun(Run):
    def __init__(self, inner: Run, fate: str, n_batch: int) -> None:
        self.inner, self.fate, self.n_batch = inner, fate, n_batch

    def next_epoch(self, max_seconds: float = float("inf")) -> EpochReport:
        report = self.inner.next_epoch(max_seconds)
        if self.fate == "diverge" and not report.interrupted:
            return EpochReport(report.epoch, float("inf"), np.full(self.n_batch, np.inf),
                               0.1, report.seconds, diverged=True)
        if self.fate == "fail" and not report.interrupted:
            return EpochReport(report.epoch, float("nan"), np.zeros(self.n_batch), 0.1,
                               report.seconds, failed="CUDA out of memory (test backend)")
        return report


class HostileBackend(SurrogateBackend):
    """The surrogate, except that runs take turns to diverge, fail, and train normally."""

    name = "hostile"
    FATES = ("diverge", "fail", "normal")

    def __init__(self) -> None:
        super().__init__()
        self.started = 0

    def start(self, config: Config, rng: np.random.Generator) -> Run:
        fate = self.FATES[self.started % len(self.FATES)]
        self.started += 1
        return _FatedRun(super().start(config, rng), fate, self.n_batch_losses)
