"""Persona agents: presets, experience mapping, plug-ins, sessions and the calibration script."""

from __future__ import annotations

import json
import math
from pathlib import Path

import gymnasium as gym
import numpy as np
import pandas as pd
import pytest
from hydra.utils import instantiate
from omegaconf import OmegaConf

import envs
from agents.base import SessionView
from agents.persona import Curve, Persona
from agents.play import play
from envs.space import DEFAULTS, GUESS, LEARNED, OTHER, RATIONALES, Config, validate
from envs.trials import Trial
from experiments import calibrate_personas as cp
from heuristics import EarlyStopping, Heuristic, Impatience, Partial, make_view, single

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures"
PRESETS = {"novice": 0.0, "intermediate": 5.0, "expert": 24.0}


def preset(name: str, **overrides: object) -> Persona:
    cfg = OmegaConf.load(ROOT / "conf" / "agent" / f"{name}.yaml")
    return instantiate(cfg, **overrides)


@pytest.fixture(scope="module")
def env() -> gym.Env:
    return gym.make(envs.ENV_ID, backend="surrogate", final_repeats=2)


def guess_share(results: list) -> float:
    codes = [c for r in results for t in r.history for c in t.rationale.values()]
    return codes.count(GUESS) / len(codes)


def first_keeps_defaults(persona: Persona, seed: int) -> bool:
    persona.reset(seed)
    config = persona.propose(make_view()).config
    return all(config.is_default(n) for n in config.optimizer_fields() if n != "lr")


# ----------------------------------------------------------------------------- presets
@pytest.mark.parametrize("name", list(PRESETS))
def test_preset_plays_a_full_study_session(name: str, env: gym.Env) -> None:
    persona = preset(name)
    assert persona.name == name and persona.experience_months == PRESETS[name]
    result = play(persona, env, seed=11)
    assert result.status == "ok", result.error
    assert 0 < result.elapsed_minutes <= 120.0 + 1e-9
    assert len(result.history) >= 3
    for trial in result.history:
        validate(trial.config.to_dict())
        assert set(trial.rationale.values()) <= set(RATIONALES)
        assert trial.rationale.keys() >= {"epochs", "batch_size", "loss", "optimizer"}
    if any(t.val_accuracy is not None for t in result.history):
        assert result.final["test_accuracy"] is not None


@pytest.mark.parametrize("name", list(PRESETS))
def test_same_seed_same_session(name: str, env: gym.Env) -> None:
    rows = [[t.to_row() for t in play(preset(name), env, seed=s).history] for s in (3, 3, 4)]
    assert rows[0] == rows[1] and rows[0] != rows[2]


def test_guess_share_falls_and_defaults_first_rises_with_experience(env: gym.Env) -> None:
    shares = [guess_share([play(preset(n), env, seed=s) for s in range(12)]) for n in PRESETS]
    assert shares[0] > shares[1] > shares[2]
    novice, expert = preset("novice"), preset("expert")
    defaults = [np.mean([first_keeps_defaults(p, s) for s in range(300)])
                for p in (novice, expert)]
    assert defaults[0] + 0.05 < defaults[1]


def test_think_time_ends_sessions_early_and_can_be_switched_off(env: gym.Env) -> None:
    thinking = play(preset("expert"), env, seed=5)
    hurried = play(preset("expert", think=False), env, seed=5)
    assert thinking.elapsed_minutes < hurried.elapsed_minutes
    assert hurried.elapsed_minutes > 110.0


# -------------------------------------------------------------------------------- mapping
def test_curves() -> None:
    assert Curve("logistic", 0.0, 1.0).at(0.0) == pytest.approx(0.5)
    assert Curve("loglinear", math.log(2.0), 0.0).at(3.0) == pytest.approx(2.0)
    probs = Curve("softmax", {"a": 0.0, "b": 0.0}, {"a": 1.0, "b": 0.0}).at(1.0)
    assert sum(probs.values()) == pytest.approx(1.0) and probs["a"] > probs["b"]
    with pytest.raises(ValueError, match="kind"):
        Curve("cubic", 0, 0).at(1.0)


def test_behaviour_moves_with_experience() -> None:
    novice, expert = Persona(0).behaviour, Persona(36).behaviour
    assert novice.source[GUESS] > expert.source[GUESS]
    assert novice.extreme > expert.extreme
    assert novice.past_quality < expert.past_quality
    assert novice.first_defaults < expert.first_defaults
    months = np.linspace(0, 60, 25)
    guesses = [Persona(m).behaviour.source[GUESS] for m in months]
    assert all(np.diff(guesses) <= 1e-12)


def test_arguments_are_checked() -> None:
    for bad in (-1, math.nan, "ten"):
        with pytest.raises(ValueError, match="experience_months"):
            Persona(bad)
    with pytest.raises(ValueError, match="overrides"):
        Persona(3, behaviour={"courage": 1.0})
    with pytest.raises(TypeError, match="Heuristic"):
        Persona(3, heuristics=["not a heuristic"])
    assert Persona(3, behaviour={"watch": 1.0}).behaviour.watch == 1.0
    assert tuple(Persona(3).slots) == Persona.SLOTS


# ---------------------------------------------------------------------- broken histories
def broken_history() -> tuple[Trial, ...]:
    base = Config(epochs=5, batch_size=32, loss="cross_entropy", optimizer="sgd")

    def trial(i: int, config: Config, outcome: str, val: float | None,
              losses: tuple[float, ...]) -> Trial:
        return Trial(i, config, {"lr": GUESS}, outcome, config.epochs, len(losses), val,
                     losses, 5.0, i, i + 0.1)
    return (trial(0, base.replace(lr=8.0, momentum=4.0), "diverged", None, (2.3, math.inf)),
            trial(1, base.replace(optimizer="adam", beta1=4.0), "failed", None, ()),
            trial(2, base, "cancelled", None, (2.3, 2.3)),
            trial(3, base.replace(batch_size=1), "unfinished", None, ()))


@pytest.mark.parametrize("months", [0.0, 5.0, 24.0])
def test_tolerates_nan_failed_cancelled_history(months: float) -> None:
    persona = Persona(months)
    for seed in range(10):
        persona.reset(seed)
        view = make_view(broken_history(), remaining_minutes=60.0, elapsed_minutes=60.0)
        proposal = persona.propose(view)
        assert proposal is not None and isinstance(proposal.config, Config)
        validate(proposal.config.to_dict())
        assert isinstance(persona.keep_training(make_view(
            broken_history(), (2.3, math.nan), Config(5, 32, "mse", "adam"))), bool)


def test_expert_lowers_lr_or_fixes_settings_after_divergence() -> None:
    persona = Persona(24, behaviour={"react": 1.0, "base_best": 0.0})
    history = broken_history()[:1]
    changed = []
    for seed in range(20):
        persona.reset(seed)
        proposal = persona.propose(make_view(history))
        changed.append(proposal.rationale.get("momentum") == LEARNED
                       or proposal.config.lr < 8.0)
    assert all(changed)


# ------------------------------------------------------------------------------ plug-ins
class AlwaysBatch32(Heuristic):
    name = "always_batch_32"
    roles = frozenset({"propose"})

    def propose(self, view: SessionView, rng: np.random.Generator, base=None,
                fields=None) -> Partial:
        return single("batch_size", 32, OTHER)


class StopAtTwo(Heuristic):
    name = "stop_at_two"
    roles = frozenset({"stop"})

    def should_stop(self, view: SessionView, rng: np.random.Generator) -> bool:
        return len(view.running_losses) >= 2


def test_extra_heuristics_from_a_list_and_overrides_from_a_dict(env: gym.Env) -> None:
    result = play(Persona(5, heuristics=[AlwaysBatch32(), StopAtTwo()]), env, seed=1)
    assert all(t.config.batch_size == 32 and t.rationale["batch_size"] == OTHER
               for t in result.history)
    assert all(t.epochs_run <= 2 for t in result.history)
    patient = EarlyStopping(patience=9)
    persona = Persona(5, heuristics={"early_stopping": patient, "impatience": Impatience(0.0)})
    assert persona.slots["early_stopping"] is patient and not persona.extras


def test_plugin_from_hydra_config(env: gym.Env) -> None:
    cfg = OmegaConf.create({
        "_target_": "agents.persona.Persona", "name": "cautious", "experience_months": 12,
        "heuristics": [OmegaConf.merge(OmegaConf.load(ROOT / "conf" / "heuristic" /
                                                      "impatience.yaml"),
                                       {"per_run": 1.0, "name": "fidget"})],
    })
    persona = instantiate(cfg)
    assert persona.extras[0].name == "fidget"
    result = play(persona, env, seed=2)
    assert all(t.outcome != "completed" or t.epochs_run <= 1 for t in result.history)


# --------------------------------------------------------------------------- calibration
def test_calibration_on_the_fixture(tmp_path: Path) -> None:
    out, figure = tmp_path / "params.json", tmp_path / "cmp.png"
    report = cp.main(["--runs", str(FIXTURES / "persona_runs.tsv"),
                      "--users", str(FIXTURES / "persona_users.tsv"), "--out", str(out),
                      "--figure", str(figure), "--replicates", "1", "--seed", "3"])
    params = json.loads(out.read_text())
    assert figure.stat().st_size > 10_000
    assert set(params) >= {"mapping", "guess", "mantissas", "past", "defaults_first",
                           "switch_to"}
    assert set(report["real"]) == {"G1", "G2", "G3"} == set(report["sim"])
    novice = Persona(0, params=params).behaviour
    expert = Persona(24, params=params).behaviour
    assert novice.source[GUESS] > expert.source[GUESS]
    assert play(Persona(5, params=params), gym.make(envs.ENV_ID), 0).status == "ok"


def test_study_loading_drops_test_accounts() -> None:
    runs, users = FIXTURES / "persona_runs.tsv", FIXTURES / "persona_users.tsv"
    df = cp.load_study(runs, users)
    assert "c/FT99" not in set(df["session"])
    assert "c/FT99" in set(cp.load_study(runs, users, keep_test_accounts=True)["session"])
    assert set(df["group"]) == {"G1", "G2", "G3"}
    assert [cp.group_of(m) for m in (0, 1, 9, 10)] == ["G1", "G2", "G2", "G3"]


def test_estimators() -> None:
    assert cp.mantissas([0.001, 0.005, 0.01, 25, 250, 3]) == {"1": 2.0, "2.5": 2.0}
    assert cp._mixture(0.3, 0.6, 10, 0.0, 10) == (pytest.approx(0.5), 0.0)
    watch, whim = cp._mixture(0.8, 0.6, 10, 0.0, 10)
    assert watch == 1.0 and whim == pytest.approx(0.5)
    df = cp.load_study(FIXTURES / "persona_runs.tsv", FIXTURES / "persona_users.tsv")
    first = df.groupby("session", sort=False).head(1)
    keeps = cp.first_defaults(first, with_lr=False)
    for (_, row), keep in zip(first.iterrows(), keeps, strict=True):
        touched = [n for n in DEFAULTS
                   if n != "lr" and row[n] != DEFAULTS[n] and row["optimizer"] in
                   cp.SPACE[n].used_by]
        assert keep == (not touched)
    a, b = cp.fit_line({"G1": 0.2, "G2": 0.5, "G3": 0.8}, {"G1": (0.0, 5), "G2": (1.0, 5),
                                                            "G3": (2.0, 5)}, cp.logit, 0.5)
    assert b > 0 and 1 / (1 + math.exp(-a)) == pytest.approx(0.2, abs=0.02)


# ------------------------------------------------------------------------ real backend
@pytest.mark.parametrize("name", ["novice", "intermediate", "expert"])
def test_short_real_digits_session(name: str) -> None:
    env = gym.make(envs.ENV_ID, backend="real", dataset="digits", image_size=32, max_epochs=2,
                   budget_minutes=0.1, final_repeats=1, train_subset=256, num_threads=1)
    result = play(preset(name), env, seed=0)
    assert result.status == "ok", result.error
    assert result.history and result.elapsed_minutes <= 0.1 + 0.05
    assert all(set(t.rationale.values()) <= set(RATIONALES) for t in result.history)


def test_behaviour_check_ranges_hold_the_real_values_and_reject_others() -> None:
    df = cp.load_study(FIXTURES / "persona_runs.tsv", FIXTURES / "persona_users.tsv")
    checks = cp.behaviour_check(df, df, seed=0)
    assert len(checks) == len(cp.CHECKED) * 3
    assert all(low <= value <= high for _, _, low, high, value, _ in checks)
    more_runs = pd.concat([df, df.assign(order=df["order"] + 1000)])  # every session doubled
    doubled = {(n, g): ok for n, g, *_, ok in cp.behaviour_check(df, more_runs, seed=0)}
    assert not any(ok for (name, _), ok in doubled.items() if name == "runs per session")
    assert all(ok for (name, _), ok in doubled.items() if name != "runs per session")
