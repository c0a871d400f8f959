"""Tournament: contestants x seeds play the tuning session; leaderboard, tables and figures.

    python -m experiments.tournament                                  # all of conf/agent x 5 seeds
    python -m experiments.tournament contestants=[random,tpe,novice] seeds=[0,1,2]
    python -m experiments.tournament -m contestant=random,tpe seed=0,1 hydra/launcher=joblib

A run (or one job of a multirun) plays every selected contestant on every selected seed, each
participant with its own environment, inside one Mesa model (`experiments.mesa_model`). It
writes into its output directory, each file atomically: trials.tsv, sessions.tsv, steps.tsv
(the DataCollector's table), leaderboard.tsv, trials_to_threshold.tsv, stats.txt, run.json,
figures/*.png and, last, done.json. A job whose directory holds done.json is skipped when the
sweep runs again (`resume=true`); `python -m experiments.gather DIR` joins a sweep's jobs.
"""

from __future__ import annotations

import contextlib
import sys
import time
import warnings
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import hydra
import pandas as pd
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf, open_dict
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from agents.base import Agent
from experiments import analysis as an
from experiments import results_io as rio
from experiments.mesa_model import ArenaModel, Entry

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"
TABLES: tuple[str, ...] = ("trials", "sessions", "steps")
console = Console(stderr=True)
# conf/hydra/launcher/*.yaml spell out the plugins' configs under the plugins' own names, which
# Hydra 1.3 still checks against the plugins' schemas, with a deprecation warning
warnings.filterwarnings("ignore", message=r"\s*'hydra/launcher/\w+' is validated against",
                        category=UserWarning)


class Unavailable(Agent):
    """Stands in for a contestant that could not be built: its session ends with the error."""

    def __init__(self, name: str, error: Exception) -> None:
        super().__init__(name)
        self.error = error

    def act(self, obs: Mapping[str, Any], info: Mapping[str, Any]) -> dict[str, Any]:
        raise RuntimeError(f"contestant {self.name!r} could not be built: "
                           f"{type(self.error).__name__}: {self.error}")


# ------------------------------------------------------------------- contestant configs
def searchpath(cfg: DictConfig) -> list[str]:
    """The Hydra search path additions of this run (from the config or the running app)."""
    if "hydra" in cfg:
        return list(cfg.hydra.searchpath)
    return list(HydraConfig.get().searchpath) if HydraConfig.initialized() else []


@contextlib.contextmanager
def _hydra_ready() -> Iterator[None]:
    """Use the running Hydra app, or initialize Hydra on this project's conf/ meanwhile."""
    if GlobalHydra.instance().is_initialized():
        yield
        return
    with hydra.initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        yield


def contestant_configs(cfg: DictConfig) -> dict[str, DictConfig]:
    """The selected contestants' configs, by name (the file stem in conf/agent/).

    `contestant=NAME` selects one, `contestants=[...]` several, `contestants=all` every
    conf/agent/*.yaml (including those on the search path).
    """
    paths = searchpath(cfg)
    overrides = [f"hydra.searchpath=[{','.join(repr(p) for p in paths)}]"] if paths else []
    with _hydra_ready():
        loader = GlobalHydra.instance().config_loader()
        available = loader.get_group_options("agent", overrides=list(overrides))
        selected = cfg.contestant or cfg.contestants
        if selected in (None, "all"):
            wanted = available
        else:
            wanted = [selected] if isinstance(selected, str) else [str(n) for n in selected]
        unknown = [name for name in wanted if name not in available]
        if unknown or not wanted:
            raise ValueError(f"contestants={unknown or wanted} not found in conf/agent: "
                             f"expected names among {available}")
        return {name: hydra.compose(overrides=[*overrides, f"+agent={name}"]).agent
                for name in wanted}


def job_seeds(cfg: DictConfig) -> list[int]:
    """`seed=N` selects one seed, `seeds=[...]` several."""
    seeds = [cfg.seed] if cfg.get("seed") is not None else list(cfg.seeds)
    if not seeds or any(not isinstance(s, int) or s < 0 for s in seeds):
        raise ValueError(f"seeds={seeds!r} is not allowed: expected non-negative integers")
    return [int(s) for s in seeds]


def build_contestant(name: str, spec: DictConfig, **options: Any) -> tuple[Agent, dict[str, Any]]:
    """A fresh contestant (`options` go to its constructor) and its describe(); a failure
    becomes an `Unavailable` stand-in."""
    try:
        agent = instantiate(spec, _convert_="all", **options)
        if not isinstance(agent, Agent):
            raise TypeError(f"{type(agent).__name__} is not an agents.base.Agent")
        return agent, agent.describe()
    except Exception as error:  # noqa: BLE001 - a broken contestant ends only its sessions
        return Unavailable(name, error), {"agent": name, "error": str(error)}


def make_entry(name: str, spec: DictConfig, env_cfg: DictConfig, seed: int, **options: Any
               ) -> Entry:
    """A participant: the contestant, its own environment, its seed, and the labels (setting
    read off the environment itself) that go into every result row."""
    agent, params = build_contestant(name, spec, **options)
    env = instantiate(env_cfg)
    core = env.unwrapped
    labels = {"contestant": name, "agent": agent.name, "params": an.params_json(params),
              "backend": core.backend.name, "protocol": core.protocol,
              "budget_minutes": core.budget_minutes, "seed": seed}
    return Entry(agent, env, seed, labels)


# ----------------------------------------------------------------------------- running
def wants(value: Any, default: bool) -> bool:
    return default if value in (None, "auto") else bool(value)


def multirun_job() -> bool:
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def play(model: ArenaModel, budget: float, show: bool) -> None:
    """Run the model to its end, with a rich progress bar of simulated time."""
    total = len(model.participants)
    columns = (TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[done]}"),
               TimeElapsedColumn())
    with Progress(*columns, console=console, disable=not show, transient=False) as progress:
        task = progress.add_task("simulated minutes", total=budget, done="")

        def update(m: ArenaModel) -> None:
            progress.update(task, completed=min(m.clock, budget),
                            done=f"{total - m.n_active}/{total} sessions done")

        model.run(update)


def save_tables(out: Path, model: ArenaModel) -> dict[str, pd.DataFrame]:
    """Write trials, sessions and steps (atomically) and read them back as typed tables."""
    trials, sessions = an.result_tables(model.results())
    tables = {"trials": trials, "sessions": sessions, "steps": model.steps_table()}
    for name, table in tables.items():
        rio.write_table(out / f"{name}.tsv", table)
    errors = [f"## {labels['contestant']} seed {labels['seed']}\n{result.error}"
              for labels, result in model.results() if result.error]
    if errors:
        rio.write_text(out / "errors.log", "\n".join(errors))
    return {name: rio.read_table(out / f"{name}.tsv") for name in TABLES}


def write_report(out: Path, tables: Mapping[str, pd.DataFrame], thresholds: Sequence[float],
                 figures: bool = True) -> pd.DataFrame:
    """Leaderboard, trials-to-threshold table, statistics and figures of a set of sessions."""
    trials, sessions, steps = (tables[name] for name in TABLES)
    reach = an.trials_to_threshold(an.trial_curves(trials, sessions), thresholds)
    board = an.leaderboard(sessions, reach)
    rio.write_table(out / "leaderboard.tsv", board)
    rio.write_table(out / "trials_to_threshold.tsv", an.threshold_table(reach))
    notes, all_settings = [], an.settings(sessions)
    for setting in all_settings:
        part = [df[an.in_setting(df, setting)] for df in (trials, sessions, steps)]
        title = "{} · {} · {:g} min".format(*setting)
        result, note = an.critical_difference(part[1])
        notes.append(f"# {title}\n" + (note + "\n" if note else "")
                     + (an.rank_report(result) if result is not None else ""))
        if figures:
            from experiments import plots  # matplotlib: only when drawing

            folder = out / "figures"
            if len(all_settings) > 1:
                folder = folder / "{}_{}_{:g}min".format(*setting)
            plots.tournament_figures(folder, *part, thresholds, title, (result, note))
    rio.write_text(out / "stats.txt", "\n".join(notes))
    return board


#: leaderboard column: (header, format)
BOARD_COLUMNS: dict[str, tuple[str, str]] = {
    "place": ("#", "{}"), "contestant": ("contestant", "{}"), "sessions": ("n", "{}"),
    "errors": ("errors", "{}"), "mean_rank": ("mean rank", "{:.2f}"),
    "final_test_mean": ("final test", "{:.3f}"), "final_test_sd": ("sd", "{:.3f}"),
    "best_val_mean": ("best val", "{:.3f}"), "trials_mean": ("trials", "{:.1f}"),
    "epochs_mean": ("epochs", "{:.0f}"), "trials_to_50": ("trials to 50%", "{:.1f}"),
    "reached_50": ("reached 50%", "{:.0%}"),
}


def show_leaderboard(board: pd.DataFrame, wall_seconds: float | None = None) -> None:
    """Print one rich table per setting."""
    out = Console() if Console().is_terminal else Console(width=160)
    columns = [c for c in BOARD_COLUMNS if c in board]
    for setting, part in board.groupby(list(an.SETTING)):
        title = "Leaderboard: {} · {} · {:g} min".format(*setting)
        table = Table(title=title + (f" ({wall_seconds:.1f} s)" if wall_seconds else ""))
        for column in columns:
            table.add_column(BOARD_COLUMNS[column][0], no_wrap=column == "contestant",
                             justify="left" if column == "contestant" else "right")
        for row in part[columns].itertuples(index=False):
            table.add_row(*["-" if pd.isna(v) else BOARD_COLUMNS[c][1].format(v)
                            for c, v in zip(columns, row, strict=True)])
        out.print(table)


def log_results(cfg: DictConfig, tables: Mapping[str, pd.DataFrame], board: pd.DataFrame,
                plain: Mapping[str, Any]) -> None:
    """Hand every session (and, for a single run, the leaderboard) to the configured logger."""
    logger = instantiate(cfg.logger)
    trials, sessions, steps = (tables[name] for name in TABLES)
    by_session = [{key: rows for key, rows in df.groupby(an.SESSION_KEY)} for df in (trials, steps)]
    try:
        for session in sessions.to_dict("records"):
            key = tuple(session[k] for k in an.SESSION_KEY)
            mine = [groups.get(key, df.iloc[:0]) for groups, df in zip(by_session, (trials, steps),
                                                                          strict=True)]
            config = {**plain, "session": {k: session[k] for k in an.LABELS}}
            logger.log_session(session, *mine, config)
        if not multirun_job():
            logger.log_leaderboard(board, plain)
    finally:
        logger.close()


def plain_config(cfg: DictConfig) -> dict[str, Any]:
    """The resolved config as plain data, without Hydra's own node."""
    cfg = cfg.copy()
    with open_dict(cfg):
        cfg.pop("hydra", None)
    return OmegaConf.to_container(cfg, resolve=True)


def run(cfg: DictConfig, out: str | Path | None = None) -> pd.DataFrame | None:
    """Play, write and report one tournament (or one job of a sweep); None when skipped."""
    out = Path(out if out is not None else cfg.output_dir)
    if cfg.resume and rio.is_done(out):
        console.print(f"[yellow]skipped[/yellow] {out}: done.json present (resume=true)")
        return None
    rio.clear_partial(out)
    started = time.perf_counter()
    specs, seeds = contestant_configs(cfg), job_seeds(cfg)
    plain = plain_config(cfg)
    plain["contestant_configs"] = {k: OmegaConf.to_container(v) for k, v in specs.items()}
    entries = [make_entry(name, spec, cfg.env, seed) for name, spec in specs.items()
               for seed in seeds]
    model = ArenaModel(entries, cfg.tick_minutes, seed=min(seeds))
    play(model, float(cfg.budget_minutes), wants(cfg.progress, console.is_terminal))
    tables = save_tables(out, model)
    board = write_report(out, tables, list(cfg.thresholds), wants(cfg.figures, not multirun_job()))
    wall = time.perf_counter() - started
    log_results(cfg, tables, board, plain)
    sessions = tables["sessions"]
    summary = {"settings": sessions[list(an.SETTING)].drop_duplicates().to_dict("records"),
               "sessions": len(sessions), "errors": int((sessions["status"] == "error").sum()),
               "wall_seconds": wall, "backend": entries[0].env.unwrapped.backend.describe()}
    rio.write_json(out / "run.json", {**summary, "argv": sys.argv, "config": plain})
    rio.mark_done(out, summary)
    show_leaderboard(board, wall)
    return board


@hydra.main(version_base="1.3", config_path="../conf", config_name="tournament")
def main(cfg: DictConfig) -> float | None:
    """Hydra entry point; returns the best mean final test accuracy (for sweepers)."""
    # through the importable module: launchers pickle `main` by value when it runs as __main__
    from experiments import tournament

    board = tournament.run(cfg, HydraConfig.get().runtime.output_dir)
    return None if board is None else float(board["final_test_mean"].max())


if __name__ == "__main__":
    main()
