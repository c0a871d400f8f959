"""The tournament: a tiny run (shrunk real config), its files and numbers, crashes, Mesa model."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import gymnasium as gym
import numpy as np
import pandas as pd
import pytest
from conftest import CONF
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import DictConfig

from agents.base import Agent
from envs.space import NAMES
from experiments import tournament
from experiments.mesa_model import ArenaModel, Entry
from experiments.results_io import read_table
from support import make_agent

FIGURES = ("best_vs_trials", "best_vs_epochs", "best_vs_minutes", "trials_to_threshold",
           "ranks_over_budget", "critical_difference", "final_accuracy")


def test_tiny_tournament_writes_sane_results(make_cfg: Callable[..., DictConfig]) -> None:
    cfg = make_cfg("tournament", "figures=true")
    board = tournament.run(cfg)
    out = Path(cfg.output_dir)
    trials, sessions = read_table(out / "trials.tsv"), read_table(out / "sessions.tsv")
    steps = read_table(out / "steps.tsv")

    assert sorted(board["contestant"]) == ["novice", "random"]
    assert len(sessions) == 4 and set(sessions["status"]) == {"ok"}
    assert set(sessions["protocol"]) == {"study"} and set(sessions["backend"]) == {"surrogate"}
    assert {*NAMES, *(f"why_{n}" for n in NAMES), "contestant", "params", "seed", "trial",
            "outcome", "epochs_run", "val_accuracy", "minutes", "cum_minutes",
            "think_seconds"} <= set(trials.columns)
    by_session = sessions.set_index(["contestant", "seed"]).sort_index()
    for table, column in ((trials, "n_trials"), (steps, "steps")):
        counts = table.groupby(["contestant", "seed"]).size()
        pd.testing.assert_series_equal(counts, by_session[column], check_names=False)
    assert trials["val_accuracy"].dropna().between(0.0, 1.0).all()
    assert sessions["final_test_accuracy"].between(0.0, 1.0).all()
    assert (trials["cum_minutes"] <= 20 + 1e-6).all()
    assert (trials.groupby(["contestant", "seed"])["cum_minutes"].diff().dropna() >= 0).all()
    best = trials.groupby(["contestant", "seed"])["val_accuracy"].max()
    assert np.allclose(best, by_session["best_val_accuracy"])
    assert (by_session["n_trials"] >= 3).all()  # every session tried several configurations
    params = {c: json.loads(p) for c, p in zip(sessions["contestant"], sessions["params"],
                                                strict=True)}
    assert params["random"]["method"] == "random" and params["random"]["agent"] == "random"
    assert params["novice"]["experience_months"] == 0
    # the leaderboard ranks the sessions' own final test accuracies, seed by seed
    finals = sessions.pivot(index="seed", columns="contestant", values="final_test_accuracy")
    ranks = finals.rank(axis=1, ascending=False).mean()
    board = board.set_index("contestant")
    assert np.allclose(board["mean_rank"], ranks[board.index])
    assert np.allclose(board["final_test_mean"], finals.mean()[board.index])
    assert list(board.sort_values("mean_rank")["place"]) == [1, 2]
    for name in FIGURES:
        assert (out / "figures" / f"{name}.png").stat().st_size > 5_000
    assert json.loads((out / "done.json").read_text())["sessions"] == 4
    run = json.loads((out / "run.json").read_text())
    assert run["settings"] == [{"backend": "surrogate", "protocol": "study", "budget_minutes": 20}]
    specs = run["config"]["contestant_configs"]
    assert specs["random"]["_target_"] == "agents.optimizers.random_search.RandomSearch"
    assert specs["novice"] == {"_target_": "agents.persona.Persona", "name": "novice",
                               "experience_months": 0, "heuristics": []}
    assert "needs >= 5 seeds" in (out / "stats.txt").read_text()


def test_same_seed_same_sessions_in_any_grouping(make_cfg: Callable[..., DictConfig]) -> None:
    both = tournament.run(make_cfg("tournament", out="both"))
    alone = tournament.run(make_cfg("tournament", "contestant=novice", "seed=3", out="alone"))
    columns = ["final_test_mean", "best_val_mean", "trials_mean"]
    assert both is not None and alone is not None
    novice = both.set_index("contestant").loc["novice", columns]
    assert not novice.equals(alone.set_index("contestant").loc["novice", columns])  # 2 seeds vs 1
    out = Path(make_cfg("tournament").output_dir).parent
    a, b = (read_table(out / d / "trials.tsv").drop(columns="think_seconds") for d in
            ("both", "alone"))
    a = a[(a["contestant"] == "novice") & (a["seed"] == 3)].reset_index(drop=True)
    assert len(a) >= 3
    pd.testing.assert_frame_equal(a.astype(str), b.astype(str))


def test_crashing_and_unbuildable_contestants_end_only_their_sessions(
        make_cfg: Callable[..., DictConfig]) -> None:
    cfg = make_cfg("tournament", "contestants=[random,toy_crash,toy_broken]")
    board = tournament.run(cfg).set_index("contestant")
    sessions = read_table(Path(cfg.output_dir) / "sessions.tsv").set_index("contestant")
    assert (sessions.loc["random", "status"] == "ok").all()
    assert (sessions.loc["toy_crash", "status"] == "error").all()
    assert sessions.loc["toy_crash", "error"].str.contains("ZeroDivisionError").all()
    assert (sessions.loc["toy_crash", "n_trials"] == 2).all()  # crashed on its third proposal
    assert sessions.loc["toy_broken", "error"].str.contains("could not be built").all()
    assert board.loc["toy_crash", "errors"] == 2 and board.loc["random", "errors"] == 0
    assert board.loc["toy_broken", "place"] == 3  # nothing validated: scores 0, ranks last
    assert "ZeroDivisionError" in (Path(cfg.output_dir) / "errors.log").read_text()


def test_unknown_contestant_names_the_available_ones(make_cfg: Callable[..., DictConfig]
                                                     ) -> None:
    with pytest.raises(ValueError, match=r"expected names among .*'novice'.*'random'"):
        tournament.run(make_cfg("tournament", "contestants=[no_such_agent]"))


def test_finished_run_is_skipped(cfg_tournament: DictConfig) -> None:
    assert tournament.run(cfg_tournament) is not None
    assert tournament.run(cfg_tournament) is None


def test_all_contestants_are_every_agent_yaml() -> None:
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("tournament", overrides=["contestants=all"])
    names = sorted(p.stem for p in (CONF / "agent").glob("*.yaml"))
    assert sorted(tournament.contestant_configs(cfg)) == names


@pytest.mark.parametrize("path", sorted((CONF / "agent").glob("*.yaml")), ids=lambda p: p.stem)
def test_registered_contestant_builds(path: Path) -> None:
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        spec = compose(overrides=[f"+agent={path.stem}"]).agent
    assert isinstance(instantiate(spec, _convert_="all"), Agent)


def test_model_steps_only_participants_behind_its_clock() -> None:
    def model(seed: int) -> ArenaModel:
        entries = [Entry(make_agent(CONF / "agent" / f"{name}.yaml"),
                         gym.make("hpo_arena/TuningSession-v0", budget_minutes=15,
                                  final_repeats=2), s, {"contestant": name, "seed": s})
                   for name in ("random", "novice") for s in (2, 3)]
        m = ArenaModel(entries, tick_minutes=1.0, seed=seed)
        m.run()
        return m

    first, second = model(0), model(1)
    steps = first.steps_table()
    clock = first.datacollector.get_model_vars_dataframe()["clock"].to_numpy()
    before = steps.groupby("participant")["elapsed_minutes"].shift(fill_value=0.0)
    assert (before.to_numpy() < clock[steps["model_step"].to_numpy() - 1]).all()
    assert len(steps) == sum(r.steps for _, r in first.results())
    assert [r.final["test_accuracy"] for _, r in first.results()] == [
        r.final["test_accuracy"] for _, r in second.results()]
    order = [list(m.steps_table()["participant"][:40]) for m in (first, second)]
    assert order[0] != order[1]  # the seeded shuffle orders the steps, not the results
