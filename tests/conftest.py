"""Shared fixtures: the real Hydra configs composed and shrunk (lightning-hydra-template style),
and small test-only contestants, registered through a temporary conf dir on the search path.

The test contestants live here so that subprocess sweeps can import them too
(`PYTHONPATH=tests`, `_target_: conftest.ToyRandom`).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, open_dict

from agents.base import Proposal, SessionView, TrialAgent
from envs.space import DEFAULTS, GUESS, LEARNED, OPTIMIZERS, PAST

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"
TOYS = {
    "toy_random": "_target_: conftest.ToyRandom\nname: toy_random\nmax_epochs: 8\n",
    "toy_hill": "_target_: conftest.ToyHill\nname: toy_hill\n",
    "toy_crash": "_target_: conftest.ToyCrash\nname: toy_crash\ncrash_after: 2\n",
    "toy_broken": "_target_: conftest.NoSuchAgent\nname: toy_broken\n",
}
SHRINK = {  # the lightning-hydra-template way: the real config, made small
    "tournament": ["contestants=[toy_random,toy_hill]", "seeds=[0,1]", "budget_minutes=20",
                   "final_repeats=2", "progress=false", "logger=none", "figures=false"],
    "user_study": ["persona._target_=conftest.ToyPersona", "budget_minutes=15",
                   "final_repeats=2", "progress=false"],
}


class ToyRandom(TrialAgent):
    """Seeded random configurations of Adam or SGD (test-only contestant)."""

    def __init__(self, name: str = "toy_random", max_epochs: int = 8) -> None:
        super().__init__(name)
        self.max_epochs = max_epochs

    def describe(self) -> dict:
        return {"agent": self.name, "max_epochs": self.max_epochs}

    def propose(self, view: SessionView) -> Proposal | None:
        if view.remaining_minutes < 0.5:
            return None
        config = {"epochs": int(self.rng.integers(1, self.max_epochs + 1)),
                  "batch_size": int(2 ** self.rng.integers(4, 8)), "loss": "cross_entropy",
                  "optimizer": str(self.rng.choice(["adam", "sgd"])),
                  "lr": float(10 ** self.rng.uniform(-4.5, -0.5))}
        return Proposal(config, dict.fromkeys(config, GUESS))


class ToyHill(TrialAgent):
    """Starts from Adam at lr 1e-3 and perturbs the best validated lr (test-only)."""

    def propose(self, view: SessionView) -> Proposal | None:
        if view.remaining_minutes < 0.5:
            return None
        done = [t for t in view.history if t.val_accuracy is not None]
        best = max(done, key=lambda t: t.val_accuracy).config.lr if done else 1e-3
        lr = float(best * 10 ** self.rng.normal(0, 0.3))
        return Proposal({"epochs": 4, "batch_size": 64, "loss": "cross_entropy",
                         "optimizer": "adam", "lr": lr}, {"lr": LEARNED if done else PAST})


class ToyCrash(ToyRandom):
    """Raises in `propose` after `crash_after` trials (a broken contestant)."""

    def __init__(self, name: str = "toy_crash", crash_after: int = 2) -> None:
        super().__init__(name)
        self.crash_after = crash_after

    def propose(self, view: SessionView) -> Proposal | None:
        if len(view.history) >= self.crash_after:
            raise ZeroDivisionError("toy contestant crashed on purpose")
        return super().propose(view)


class ToyPersona(TrialAgent):
    """A test persona: guesses less and starts from the defaults with more experience."""

    def __init__(self, experience_months: float = 0.0, name: str | None = None) -> None:
        super().__init__(name or f"toy_persona_{experience_months:g}")
        self.experience_months = experience_months

    def describe(self) -> dict:
        return {"agent": self.name, "experience_months": self.experience_months}

    def propose(self, view: SessionView) -> Proposal | None:
        if view.remaining_minutes < 0.5:
            return None
        base = {"epochs": 3, "batch_size": 64, "loss": "cross_entropy"}
        if not view.history and self.experience_months > 0:
            return Proposal({**base, "optimizer": "adam", **DEFAULTS},
                            dict.fromkeys(["optimizer", *DEFAULTS], 2))
        guess = self.rng.random() > min(self.experience_months / 12, 0.9)
        optimizer = str(self.rng.choice(OPTIMIZERS)) if guess else "adam"
        lr = float(10 ** self.rng.uniform(-5, 0)) if guess else float(
            10 ** self.rng.uniform(-3.5, -2.5))
        code = GUESS if guess else PAST
        return Proposal({**base, "optimizer": optimizer, "lr": lr},
                        {"optimizer": code, "lr": code, "epochs": code})


@pytest.fixture(scope="session")
def toy_conf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A conf dir holding the toy contestants (agent/toy_*.yaml), for hydra.searchpath."""
    root = tmp_path_factory.mktemp("toy_conf")
    (root / "agent").mkdir()
    for name, text in TOYS.items():
        (root / "agent" / f"{name}.yaml").write_text(text)
    return root


@pytest.fixture
def subprocess_env() -> dict[str, str]:
    """Environment for `python -m experiments...` subprocesses that use the toy contestants."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "tests"), str(ROOT),
                                         env.get("PYTHONPATH", "")])
    env.update(WANDB_MODE="disabled", OMP_NUM_THREADS="1")
    return env


def compose_shrunk(config_name: str, toy_conf: Path, overrides: Sequence[str] = ()) -> DictConfig:
    """Compose a real top-level config, shrunk, with the toy conf dir on the search path."""
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(config_name=config_name, return_hydra_config=True,
                       overrides=[f"hydra.searchpath=['file://{toy_conf}']",
                                  *SHRINK.get(config_name, []), *overrides])


@pytest.fixture
def make_cfg(toy_conf: Path, tmp_path: Path) -> Callable[..., DictConfig]:
    """`make_cfg(config_name, *overrides, out=...)`: a shrunk config writing under tmp_path."""

    def make(config_name: str, *overrides: str, out: str | None = None) -> DictConfig:
        cfg = compose_shrunk(config_name, toy_conf, overrides)
        with open_dict(cfg):
            cfg.output_dir = str(tmp_path / (out or config_name))
            if config_name == "user_study":
                for group in cfg.population.groups:
                    group.n = 2
        return cfg

    return make


@pytest.fixture
def cfg_tournament(make_cfg: Callable[..., DictConfig]) -> DictConfig:
    """conf/tournament.yaml shrunk: 2 toy contestants, 2 seeds, 20 minutes, no figures."""
    return make_cfg("tournament")


@pytest.fixture
def cfg_user_study(make_cfg: Callable[..., DictConfig]) -> DictConfig:
    """conf/user_study.yaml shrunk: 2 participants per group, 15 minutes, a toy persona."""
    return make_cfg("user_study")


@pytest.fixture(autouse=True)
def _conftest_importable() -> None:
    """Make `conftest.ToyRandom` & co. importable by name for hydra.utils.instantiate."""
    sys.modules.setdefault("conftest", sys.modules[__name__])
