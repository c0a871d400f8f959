"""The simulated user study: a population with the study's experience distribution, analysed
as the study was.

    python -m experiments.user_study
    python -m experiments.user_study real_runs=data/study/runs.tsv real_users=data/study/users.tsv

The population (conf/user_study.yaml) has the study's groups: 8 people with 0 months of
deep-learning experience, 11 with 1-9 and 12 with more than 9. Months are drawn within each
group from the distribution named there, from one seed:
- `fixed`: every member gets `value` (G1: 0 months);
- `uniform_int`: integers `low`..`high` equally likely (G2: 1-9);
- `lognormal`: round(exp(N(ln median, sigma))) clipped to [low, high] (G3: median 20, sigma
  0.45, 10-60; the published users above 9 months have a median of 20 and mostly 10-36, leaving
  out three 90-99-month high-school accounts that look like tests).
Each participant is the configured persona (`persona`, instantiated with `experience_months`)
playing the `study` protocol for 120 minutes in the Mesa model. Outputs: runs.tsv and users.tsv
in the study's format, participants.tsv, sessions.tsv, summary.json and the figures. With
`real_runs` and `real_users` the real study is analysed the same way and drawn beside the
simulation; its final accuracy is a proxy (the study's published logs carry no test accuracy):
the validation accuracy of the run flagged final_submission, else of the best completed run
(the environment's default final choice); participants.tsv says which (`final_source`).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import hydra
import numpy as np
import pandas as pd
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from envs.trials import STUDY_RUN_COLUMNS
from experiments import analysis as an
from experiments import plots
from experiments import results_io as rio
from experiments.mesa_model import ArenaModel
from experiments.tournament import console, make_entry, play, wants

SERVER = "sim"
STUDY_LINE_END = "\r\n"  # as in the study's published tables


def draw_months(spec: Mapping[str, Any], n: int, rng: np.random.Generator) -> list[int]:
    """`n` months of experience from one group's distribution (see the module docstring)."""
    kind = spec["dist"]
    if kind == "fixed":
        return [int(spec["value"])] * n
    if kind == "uniform_int":
        return [int(m) for m in rng.integers(spec["low"], spec["high"], endpoint=True, size=n)]
    if kind == "lognormal":
        months = np.rint(np.exp(rng.normal(np.log(spec["median"]), spec["sigma"], size=n)))
        return [int(m) for m in np.clip(months, spec["low"], spec["high"])]
    raise ValueError(f"dist={kind!r} is not allowed: expected fixed, uniform_int or lognormal")


def population(cfg: DictConfig) -> pd.DataFrame:
    """The participants: user_id, experience_months, drawn group, session seed."""
    rng = np.random.default_rng(cfg.seed)
    months = [m for g in cfg.population.groups for m in draw_months(g.months, g.n, rng)]
    seeds = np.random.SeedSequence(cfg.seed).generate_state(len(months))
    return pd.DataFrame({"server": SERVER, "user_id": [f"P{i + 1:02d}" for i in range(len(months))],
                         "experience_months": months, "education": "",
                         "seed": [int(s) for s in seeds]})


def simulate(cfg: DictConfig, users: pd.DataFrame) -> ArenaModel:
    """Every participant plays its own session in one Mesa model."""
    entries = [make_entry(user.user_id, cfg.persona, cfg.env, user.seed,
                          experience_months=int(user.experience_months))
               for user in users.itertuples(index=False)]
    model = ArenaModel(entries, cfg.tick_minutes, seed=cfg.seed)
    play(model, float(cfg.budget_minutes), wants(cfg.progress, console.is_terminal))
    return model


def study_runs(model: ArenaModel) -> pd.DataFrame:
    """All sessions' trials in the study's runs.tsv format (run_id grows as in a server log)."""
    rows: list[dict[str, Any]] = []
    for labels, result in model.results():
        rows += an.study_run_rows(SERVER, labels["contestant"], result, len(rows) + 1)
    return pd.DataFrame(rows, columns=list(STUDY_RUN_COLUMNS))


def analyse(runs: pd.DataFrame, users: pd.DataFrame, thresholds: list[float],
            finals: Mapping[str, float] | None = None) -> dict[str, Any]:
    """The study's analysis of runs and users in its format."""
    participants = an.study_participants(runs, users, finals)
    traces = an.study_traces(runs, participants)
    return {"participants": participants, "traces": traces,
            "reach": an.study_reach(traces, thresholds),
            "shares": an.rationale_shares(runs, participants),
            "summary": an.study_summary(participants)}


def real_study(cfg: DictConfig) -> tuple[pd.DataFrame, pd.DataFrame] | None:
    """The real study's runs and users, when both paths are given."""
    if not cfg.real_runs and not cfg.real_users:
        return None
    if not (cfg.real_runs and cfg.real_users):
        raise ValueError("real_runs and real_users must be given together")
    runs, users = rio.read_table(cfg.real_runs), rio.read_table(cfg.real_users)
    missing = [c for c in STUDY_RUN_COLUMNS if c not in runs]
    if missing:
        raise ValueError(f"real_runs={cfg.real_runs!r} lacks the study's columns {missing}")
    return runs, users


def run(cfg: DictConfig, out: str | Path | None = None) -> dict[str, Any]:
    """Simulate, write and analyse the study; returns the summary."""
    out = Path(out if out is not None else cfg.output_dir)
    started = time.perf_counter()
    users = population(cfg)
    model = simulate(cfg, users)
    trials, sessions = an.result_tables(model.results())
    finals = dict(zip(sessions["contestant"], sessions["final_test_accuracy"], strict=True))
    for name, table in {"runs": study_runs(model), "users": users.drop(columns="seed")}.items():
        rio.write_table(out / f"{name}.tsv", table, line_end=STUDY_LINE_END)
    for name, table in {"sessions": sessions, "trials": trials}.items():
        rio.write_table(out / f"{name}.tsv", table)
    runs, users_read = rio.read_table(out / "runs.tsv"), rio.read_table(out / "users.tsv")
    datasets = {"simulated": analyse(runs, users_read, list(cfg.thresholds), finals)}
    real = real_study(cfg)
    if real is not None:
        datasets["real study (final = validation proxy)"] = analyse(*real, list(cfg.thresholds))
    sim = datasets["simulated"]
    rio.write_table(out / "participants.tsv", sim["participants"])
    summary = {**sim["summary"], "protocol": cfg.protocol, "backend": str(sessions["backend"][0]),
               "budget_minutes": cfg.budget_minutes, "seed": cfg.seed}
    if real is not None:
        summary["real"] = datasets["real study (final = validation proxy)"]["summary"]
    plots.study_figures(out / "figures", datasets)
    summary["wall_seconds"] = time.perf_counter() - started
    rio.write_json(out / "summary.json", summary)
    errors = sessions.loc[sessions["status"] == "error", "error"]
    if len(errors):
        console.print(f"[red]{len(errors)} sessions ended with an error[/red]: {errors.iloc[0]}")
    console.print(f"user study: {len(users)} participants, Spearman(experience, final) = "
                  f"{summary['spearman_experience_final']:.3f} (p = {summary['spearman_p']:.3g})"
                  f", {summary['wall_seconds']:.1f} s -> {out}")
    return summary


@hydra.main(version_base="1.3", config_path="../conf", config_name="user_study")
def main(cfg: DictConfig) -> None:
    """Hydra entry point."""
    # through the importable module: launchers pickle `main` by value when it runs as __main__
    from experiments import user_study

    user_study.run(cfg, HydraConfig.get().runtime.output_dir)


if __name__ == "__main__":
    main()
