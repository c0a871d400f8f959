"""The simulated user study: population, study-format files, analysis, the real study beside."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from omegaconf import DictConfig

from agents.persona import Persona
from envs.space import DEFAULTS, GUESS, NAMES
from experiments import analysis as an
from experiments import user_study
from experiments.results_io import read_table, write_table

RUNS_HEADER = ["server", "user_id", "run_id", *NAMES, *(f"why_{n}" for n in NAMES),
               "final_submission", "outcome", "val_accuracy", "time_taken_s"]
PARTICIPANT_HEADER = ["participant", "experience_months", "group", "n_runs", "n_completed",
                      "n_cancelled", "n_diverged", "guess_share", "first_is_defaults",
                      "best_val_accuracy", "final_test_accuracy"]
FIGURES = ("accuracy_vs_experience", "group_final_accuracy", "best_so_far_per_group",
           "trials_to_threshold_per_group", "rationale_shares", "defaults_first")


def test_population_has_the_study_groups(make_cfg: Callable[..., DictConfig]) -> None:
    cfg = make_cfg("user_study")
    cfg.population.groups[0].n, cfg.population.groups[1].n, cfg.population.groups[2].n = 8, 11, 12
    users = user_study.population(cfg)
    groups = users["experience_months"].map(an.experience_group)
    assert groups.value_counts().to_dict() == {"G1": 8, "G2": 11, "G3": 12}
    assert users["experience_months"][groups == "G2"].between(1, 9).all()
    assert users["experience_months"][groups == "G3"].between(10, 60).all()
    assert users.equals(user_study.population(cfg))
    cfg.seed = 1
    assert not users.equals(user_study.population(cfg))


def test_small_study_writes_its_files(cfg_user_study: DictConfig) -> None:
    summary = user_study.run(cfg_user_study)
    out = Path(cfg_user_study.output_dir)
    runs, participants = read_table(out / "runs.tsv"), read_table(out / "participants.tsv")
    header = (out / "runs.tsv").read_bytes().split(b"\n")[0]
    assert header == "\t".join(RUNS_HEADER).encode() + b"\r"  # the study's own line ends
    assert list(participants.columns[:len(PARTICIPANT_HEADER)]) == PARTICIPANT_HEADER
    assert list(participants["group"]) == ["G1", "G1", "G2", "G2", "G3", "G3"]
    assert set(runs["outcome"]) <= {"completed", "cancelled", "nan", "unfinished"}
    assert runs["run_id"].is_monotonic_increasing
    assert (runs.groupby("user_id")["final_submission"].apply(
        lambda f: f.astype(str).str.lower().eq("true").sum()) <= 1).all()
    assert (participants.set_index("participant")["n_runs"]
            == runs.groupby("user_id").size()).all()
    # participants.tsv agrees with the real persona's sessions and the study-format runs
    sessions = read_table(out / "sessions.tsv").set_index("contestant")
    by_user = participants.set_index("participant")
    assert set(sessions["agent"]) == {"persona"} and (sessions["status"] == "ok").all()
    assert (by_user["n_runs"] == sessions["n_trials"][by_user.index]).all()
    assert np.allclose(by_user["final_test_accuracy"],
                       sessions["final_test_accuracy"][by_user.index])
    assert participants["final_test_accuracy"].between(0, 1).all()
    params = sessions["params"].map(json.loads)[by_user.index]
    assert list(params.map(lambda p: p["experience_months"])) == list(
        by_user["experience_months"])
    assert all([h["heuristic"] for h in p["heuristics"]] == list(Persona.SLOTS) for p in params)
    first = runs.groupby("user_id").first()
    kept = [all(np.isclose(float(row[n]), v) for n, v in DEFAULTS.items())
            for _, row in first.loc[by_user.index].iterrows()]
    assert list(by_user["first_is_defaults"]) == kept
    assert 0 < sum(kept) < len(kept)  # some personas start from the defaults, some do not
    codes = runs.set_index("user_id")[[f"why_{n}" for n in NAMES]].stack()
    guessed = pd.to_numeric(codes, errors="coerce").dropna().eq(GUESS).groupby(level=0).mean()
    assert np.allclose(by_user["guess_share"], guessed[by_user.index])
    shares = participants.groupby("group")["guess_share"].mean()
    assert shares["G1"] > 0.5 > shares["G3"]  # novices guess, the experienced do not
    assert {"completed", "cancelled"} <= set(runs["outcome"])  # personas stop runs too
    assert {"spearman_experience_final", "spearman_p", "levene", "mean_final", "sd_final",
            "group_mean_final"} <= set(summary)
    assert set(summary["levene"]) == {"G1_vs_G2", "G1_vs_G3", "G2_vs_G3"}
    assert json.loads((out / "summary.json").read_text())["protocol"] == "study"
    for name in FIGURES:
        assert (out / "figures" / f"{name}.png").stat().st_size > 5_000


def study_fixture(folder: Path) -> tuple[Path, Path]:
    """A tiny real study in the published format: 4 people, 3 runs each."""
    users = pd.DataFrame({"server": "a", "user_id": ["U1", "U2", "U3", "U4"],
                          "experience_months": [0, 3, 12, 24], "education": "bachelors"})
    rows = []
    for i, user in enumerate(users["user_id"]):
        for run in range(3):
            completed = run != 1
            rows.append({"server": "a", "user_id": user, "run_id": 10 * i + run, "epochs": 5,
                         "batch_size": 64, "loss": "cross_entropy", "optimizer": "adam",
                         "lr": 0.001 if run == 0 else 0.01, "why_epochs": 1 + i % 3,
                         "why_lr": 2, "final_submission": "true" if run == 1 else "false",
                         "outcome": "completed" if completed else ("nan" if i else "cancelled"),
                         "val_accuracy": 0.2 * (i + 1) + 0.05 * run if completed else None,
                         "time_taken_s": 60.0})
    runs = pd.DataFrame(rows).reindex(columns=RUNS_HEADER)
    write_table(folder / "runs.tsv", runs)
    write_table(folder / "users.tsv", users)
    return folder / "runs.tsv", folder / "users.tsv"


def test_real_study_is_analysed_beside(cfg_user_study: DictConfig, tmp_path: Path) -> None:
    cfg_user_study.real_runs, cfg_user_study.real_users = map(str, study_fixture(tmp_path))
    summary = user_study.run(cfg_user_study)
    real = summary["real"]
    assert real["n_participants"] == 4 and real["group_n"] == {"G1": 1, "G2": 1, "G3": 2}
    assert np.isclose(real["spearman_experience_final"], 1.0)  # finals rise with experience
    participants = an.study_participants(*(read_table(p) for p in study_fixture(tmp_path)))
    # the flagged final run was not completed: the proxy is the best completed run
    assert list(participants["final_source"]) == ["best_completed_val"] * 4
    assert np.allclose(participants["final_test_accuracy"], [0.3, 0.5, 0.7, 0.9])
    assert list(participants["n_diverged"]) == [0, 1, 1, 1]
