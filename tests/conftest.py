"""Shared fixtures: the real Hydra configs composed and shrunk (lightning-hydra-template style),
playing the real contestants (conf/agent/random.yaml and novice.yaml, the study's
agents.persona.Persona). The only test-only contestants are the broken ones the crash test needs
(a contestant that raises, one that cannot be built), registered through a temporary conf dir on
the search path.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, open_dict

from agents.base import Proposal, SessionView
from agents.optimizers.random_search import RandomSearch

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"
TOYS = {  # deliberately broken contestants: nothing real behaves like them
    "toy_crash": "_target_: conftest.ToyCrash\nname: toy_crash\ncrash_after: 2\n",
    "toy_broken": "_target_: conftest.NoSuchAgent\nname: toy_broken\n",
}
SHRINK = {  # the lightning-hydra-template way: the real config, made small
    "tournament": ["contestants=[random,novice]", "seeds=[2,3]", "budget_minutes=20",
                   "final_repeats=2", "progress=false", "logger=none", "figures=false"],
    "user_study": ["budget_minutes=15", "final_repeats=2", "progress=false"],
}


class ToyCrash(RandomSearch):
    """Random search that raises in `propose` after `crash_after` trials (a broken contestant)."""

    def __init__(self, name: str = "toy_crash", crash_after: int = 2) -> None:
        super().__init__(name)
        self.crash_after = crash_after

    def propose(self, view: SessionView) -> Proposal | None:
        if len(view.history) >= self.crash_after:
            raise ZeroDivisionError("toy contestant crashed on purpose")
        return super().propose(view)


@pytest.fixture(scope="session")
def toy_conf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A conf dir holding the broken test contestants (agent/toy_*.yaml), for hydra.searchpath."""
    root = tmp_path_factory.mktemp("toy_conf")
    (root / "agent").mkdir()
    for name, text in TOYS.items():
        (root / "agent" / f"{name}.yaml").write_text(text)
    return root


@pytest.fixture
def subprocess_env() -> dict[str, str]:
    """Environment for `python -m experiments...` subprocesses (W&B off, one BLAS thread)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    env.update(WANDB_MODE="disabled", OMP_NUM_THREADS="1")
    return env


def compose_shrunk(config_name: str, toy_conf: Path, overrides: Sequence[str] = ()) -> DictConfig:
    """Compose a real top-level config, shrunk, with the broken contestants on the search path."""
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
    """conf/tournament.yaml shrunk: random and novice, 2 seeds, 20 minutes, no figures."""
    return make_cfg("tournament")


@pytest.fixture
def cfg_user_study(make_cfg: Callable[..., DictConfig]) -> DictConfig:
    """conf/user_study.yaml shrunk: 2 participants per group, 15 minutes, the real Persona."""
    return make_cfg("user_study")


@pytest.fixture(autouse=True)
def _conftest_importable() -> None:
    """Make `conftest.ToyCrash` importable by name for hydra.utils.instantiate."""
    sys.modules.setdefault("conftest", sys.modules[__name__])
