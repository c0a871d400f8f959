"""Benchmark: the same tournament sweep run serially (Hydra's basic launcher) and with joblib.

    python -m experiments.bench_sweep                         # 8 jobs of 1 seed, all contestants
    python -m experiments.bench_sweep --jobs 6 --seeds-per-job 3 --contestants random,tpe

Both runs are fresh sweeps in a temporary folder, started as subprocesses the way a user starts
them; each job plays every selected contestant on a block of seeds, so a job is long enough
that process start-up does not dominate. The script prints both wall times, the speed-up
(target >= 1.7 on 2 cores) and whether both sweeps produced the same sessions.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
from rich.console import Console
from rich.table import Table

from experiments import analysis as an
from experiments.gather import gather

TARGET = 1.7
#: columns that differ between two runs of the same sessions (measured wall time)
MEASURED = ("think_seconds",)


def sweep_arguments(args: argparse.Namespace) -> list[str]:
    """The sweep's overrides: jobs over blocks of seeds, the chosen contestants."""
    blocks = [list(range(j * args.seeds_per_job, (j + 1) * args.seeds_per_job))
              for j in range(args.jobs)]
    seeds = ",".join("[" + ",".join(map(str, block)) + "]" for block in blocks)
    contestants = "all" if args.contestants == "all" else f"[{args.contestants}]"
    extra = [f"hydra.searchpath=[file://{Path(args.searchpath).resolve()}]"] if args.searchpath \
        else []
    return [f"seeds={seeds}", f"contestants={contestants}", f"budget_minutes={args.budget}",
            "logger=none", "progress=false", "figures=false", *extra]


def timed_sweep(arguments: list[str], launcher: list[str], sweep_dir: Path) -> float:
    """Wall seconds of one sweep, run as `python -m experiments.tournament -m ...`."""
    command = [sys.executable, "-m", "experiments.tournament", "-m", *arguments, *launcher,
               f"hydra.sweep.dir={sweep_dir}"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "WANDB_MODE": "disabled"}
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"sweep failed ({' '.join(command)}):\n{done.stderr[-3000:]}")
    return wall


def sessions_of(sweep_dir: Path) -> pd.DataFrame:
    sessions = gather(sweep_dir, sweep_dir / "gathered")["sessions"]
    return sessions.drop(columns=list(MEASURED)).sort_values(an.SESSION_KEY).reset_index(
        drop=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=8, help="jobs in the sweep")
    parser.add_argument("--seeds-per-job", type=int, default=2,
                        help="seeds each job plays (jobs of ~10 s: a worker pays its imports once)")
    parser.add_argument("--contestants", default="all", help="comma-separated names, or all")
    parser.add_argument("--budget", type=float, default=120.0, help="budget_minutes")
    parser.add_argument("--n-jobs", type=int, default=2, help="joblib processes")
    parser.add_argument("--searchpath", help="an extra conf dir (e.g. with more agent/*.yaml)")
    parser.add_argument("--keep", type=Path, help="keep the sweeps in this folder")
    args = parser.parse_args()
    arguments = sweep_arguments(args)
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        root = args.keep or Path(tmp)
        serial = timed_sweep(arguments, ["hydra/launcher=basic"], root / "serial")
        parallel = timed_sweep(arguments, ["hydra/launcher=joblib",
                                           f"hydra.launcher.n_jobs={args.n_jobs}"],
                               root / "joblib")
        same = sessions_of(root / "serial").equals(sessions_of(root / "joblib"))
    table = Table(title=f"{args.jobs} jobs x {args.seeds_per_job} seeds, contestants="
                        f"{args.contestants}, {os.cpu_count()} CPUs")
    for column in ("launcher", "wall s", "speed-up"):
        table.add_column(column, justify="right")
    table.add_row("basic (serial)", f"{serial:.1f}", "1.00")
    table.add_row(f"joblib (n_jobs={args.n_jobs})", f"{parallel:.1f}", f"{serial / parallel:.2f}")
    Console().print(table)
    verdict = "meets" if serial / parallel >= TARGET else "misses"
    print(f"speed-up {serial / parallel:.2f} {verdict} the target {TARGET}; "
          f"identical sessions: {same}; load average before {load_before:.1f}, after "
          f"{os.getloadavg()[0]:.1f} (other processes on the machine distort the timings)")


if __name__ == "__main__":
    main()
