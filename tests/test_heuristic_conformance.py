"""Every heuristic config in conf/heuristic/ honours the heuristic protocol."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from hydra.utils import instantiate
from omegaconf import OmegaConf

from agents.base import SessionView
from envs.space import RATIONALES, Config, validate
from envs.trials import Trial
from heuristics import ROLES, Heuristic, make_view

CONF = Path(__file__).resolve().parents[1] / "conf" / "heuristic"
CONFIGS = sorted(CONF.glob("*.yaml"))
BASE = Config(epochs=10, batch_size=64, loss="cross_entropy", optimizer="adam")


def trial(index: int, outcome: str, config: Config = BASE, val: float | None = None,
          losses: tuple[float, ...] = (2.3,)) -> Trial:
    return Trial(index=index, config=config, rationale={"lr": 1}, outcome=outcome,
                 epochs_planned=config.epochs, epochs_run=len(losses), val_accuracy=val,
                 train_losses=losses, seconds=9.0 * len(losses), start_minutes=index,
                 end_minutes=index + 0.5)


HISTORY = (
    trial(0, "diverged", BASE.replace(lr=8.0, optimizer="sgd", momentum=4.0), None,
          (2.3, math.nan)),
    trial(1, "cancelled", BASE.replace(loss="l1"), None, (0.2, 0.2)),
    trial(2, "failed", BASE.replace(beta1=4.0), None, ()),
    trial(3, "completed", BASE, 0.55, (2.0, 1.4, 1.1)),
    trial(4, "completed", BASE.replace(batch_size=1, epochs=1), 0.1, (2.3,)),
    trial(5, "unfinished", BASE.replace(epochs=1000), None, (2.1, 1.9)),
)
VIEWS: dict[str, SessionView] = {
    "empty": make_view(),
    "diverged only": make_view(HISTORY[:1]),
    "cancelled and failed": make_view(HISTORY[1:3]),
    "mixed": make_view(HISTORY, remaining_minutes=30.0, elapsed_minutes=90.0),
    "no time left": make_view(HISTORY, remaining_minutes=0.0, elapsed_minutes=120.0),
    "running with nan": make_view(HISTORY, (2.3, math.nan), BASE.replace(epochs=5)),
    "running, full protocol": make_view(HISTORY, (2.2, 2.2, 2.2), BASE, protocol="full",
                                        val_accuracy=0.1),
}


def load(path: Path) -> Heuristic:
    return instantiate(OmegaConf.load(path))


def decisions(heuristic: Heuristic, view: SessionView, seed: int) -> list[object]:
    """Everything the heuristic decides on a view (for determinism checks)."""
    rng = np.random.default_rng(seed)
    out: list[object] = []
    for base, fields in ((None, None), (BASE, None), (BASE, ["lr", "epochs"])):
        partial = heuristic.propose(view, rng, base=base, fields=fields)
        out.append((dict(partial.values), dict(partial.rationale)))
    out.append(heuristic.should_stop(view, rng))
    out.append(heuristic.final_choice(view, rng))
    return out


@pytest.fixture(params=CONFIGS, ids=[p.stem for p in CONFIGS])
def heuristic(request: pytest.FixtureRequest) -> Heuristic:
    return load(request.param)


def test_every_heuristic_has_a_config() -> None:
    assert len(CONFIGS) >= 9


def test_instantiates_with_roles(heuristic: Heuristic) -> None:
    assert isinstance(heuristic, Heuristic)
    assert heuristic.roles and set(heuristic.roles) <= set(ROLES)
    assert 0.0 <= heuristic.weight <= 1.0
    assert heuristic.describe()["heuristic"] == heuristic.name


@pytest.mark.parametrize("view_name", list(VIEWS))
def test_proposals_are_legal_and_tagged(heuristic: Heuristic, view_name: str) -> None:
    view = VIEWS[view_name]
    for seed in range(5):
        rng = np.random.default_rng(seed)
        for base, fields in ((None, None), (BASE, None), (BASE, ["lr", "epochs", "momentum"])):
            partial = heuristic.propose(view, rng, base=base, fields=fields)
            assert set(partial.values) == set(partial.rationale)
            assert set(partial.rationale.values()) <= set(RATIONALES)
            if fields is not None:
                assert set(partial.values) <= set(fields)
            validate({**BASE.to_dict(), **partial.values})
            assert isinstance(partial.apply(BASE), Config)


@pytest.mark.parametrize("view_name", list(VIEWS))
def test_stop_and_final_answers_are_well_formed(heuristic: Heuristic, view_name: str) -> None:
    view = VIEWS[view_name]
    rng = np.random.default_rng(0)
    assert isinstance(heuristic.should_stop(view, rng), bool)
    choice = heuristic.final_choice(view, rng)
    assert choice is None or any(t.index == choice and t.val_accuracy is not None
                                 for t in view.history)


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_same_seed_same_output(path: Path) -> None:
    first, second = load(path), load(path)
    for view in VIEWS.values():
        assert decisions(first, view, 7) == decisions(second, view, 7)
