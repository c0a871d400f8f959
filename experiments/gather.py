"""Join a sweep's finished jobs into one set of tables, leaderboard and figures.

    python -m experiments.gather multirun/tournament              # -> multirun/tournament/gathered
    python -m experiments.gather multirun/tournament --missing    # jobs of the sweep not done yet

Only jobs with a done marker count (a killed job left none); sessions found twice (the same
setting, contestant and seed) are kept once. `--missing` expands the sweep recorded in
DIR/multirun.yaml (hydra.sweeper.params and the command-line overrides) the way Hydra's basic
sweeper does, and lists each job whose output folder has no done marker; it exits with 1 when
some are missing. Running the same sweep command again runs exactly those.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
from hydra._internal.config_loader_impl import get_overrides_dirname
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf

from experiments import analysis as an
from experiments import results_io as rio
from experiments.tournament import TABLES, console, show_leaderboard, write_report

OUT = "gathered"
SUBDIR = "${hydra.job.override_dirname}"


def gather(root: Path, out: Path) -> dict[str, pd.DataFrame]:
    """Concatenate the tables of every finished job under `root`; a session found in an
    earlier job is dropped from later ones."""
    jobs = [d for d in rio.done_dirs(root) if out not in (d, *d.parents)]
    if not jobs:
        raise SystemExit(f"no finished job (no {rio.DONE}) under {root}")
    parts: dict[str, list[pd.DataFrame]] = {name: [] for name in TABLES}
    seen: set[tuple] = set()
    dropped = 0
    for job in jobs:
        tables = {name: rio.read_table(job / f"{name}.tsv") for name in TABLES}
        keys = set(an.session_index(tables["sessions"]))
        repeated, seen = keys & seen, seen | keys
        dropped += len(repeated)
        for name, table in tables.items():
            parts[name].append(table[~an.session_index(table).isin(list(repeated))]
                               if repeated else table)
    if dropped:
        console.print(f"[yellow]{dropped} sessions found in more than one job: kept once[/yellow]")
    console.print(f"{len(jobs)} finished jobs under {root}")
    return {name: pd.concat(frames, ignore_index=True) for name, frames in parts.items()}


def job_overrides(sweep: Path) -> list[list[str]]:
    """The override lists of every job of the sweep recorded in DIR/multirun.yaml."""
    path = sweep / "multirun.yaml"
    if not path.is_file():
        raise SystemExit(f"{path} not found: --missing needs the sweep's multirun.yaml")
    cfg = OmegaConf.load(path)
    params = OmegaConf.select(cfg, "hydra.sweeper.params") or {}
    arguments = [f"{k}={v}" for k, v in params.items()] + list(cfg.hydra.overrides.task)
    parsed = OverridesParser.create().parse_overrides(arguments)
    return [job for batch in BasicSweeper.split_arguments(parsed, None) for job in batch]


def job_dir(sweep: Path, overrides: Sequence[str]) -> Path:
    """Where the job with these overrides writes (hydra.sweep.subdir = override_dirname)."""
    hydra_cfg = OmegaConf.load(sweep / "multirun.yaml").hydra
    if OmegaConf.to_container(hydra_cfg.sweep)["subdir"] != SUBDIR:
        raise SystemExit(f"--missing needs hydra.sweep.subdir={SUBDIR} (conf/tournament.yaml)")
    cfg = hydra_cfg.job.config.override_dirname
    parsed = OverridesParser.create().parse_overrides(list(overrides))
    return sweep / get_overrides_dirname(parsed, list(cfg.exclude_keys), cfg.item_sep, cfg.kv_sep)


def missing(sweep: Path) -> list[list[str]]:
    """Jobs of the sweep without a done marker."""
    return [job for job in job_overrides(sweep) if not rio.is_done(job_dir(sweep, job))]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweep", type=Path, help="a sweep directory (hydra.sweep.dir)")
    parser.add_argument("--out", type=Path, help=f"output folder (default: SWEEP/{OUT})")
    parser.add_argument("--missing", action="store_true", help="list the jobs not done")
    parser.add_argument("--no-figures", action="store_true", help="tables only")
    parser.add_argument("--thresholds", type=float, nargs="+", default=[0.25, 0.5, 0.75])
    args = parser.parse_args(argv)
    if args.missing:
        jobs = missing(args.sweep)
        for job in jobs:
            print(" ".join(job))
        console.print(f"{len(jobs)} of {len(job_overrides(args.sweep))} jobs missing")
        return 1 if jobs else 0
    out = args.out or args.sweep / OUT
    tables = gather(args.sweep, out)
    for name, table in tables.items():
        rio.write_table(out / f"{name}.tsv", table)
    board = write_report(out, tables, args.thresholds, figures=not args.no_figures)
    show_leaderboard(board)
    console.print(f"written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
