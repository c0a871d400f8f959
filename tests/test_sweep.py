"""Hydra multirun: launchers compose, a joblib sweep runs, gathers, and resumes after a kill."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from conftest import CONF, ROOT
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from experiments import gather, tournament
from experiments.results_io import DONE, TMP_MARK, read_table


@pytest.mark.parametrize(("launcher", "target"), [
    ("joblib", "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher"),
    ("submitit_slurm", "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher"),
    ("ray", "hydra_plugins.hydra_ray_launcher.ray_launcher.RayLauncher"),
])
def test_launcher_configs_compose(launcher: str, target: str) -> None:
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("tournament", return_hydra_config=True,
                      overrides=[f"hydra/launcher={launcher}", "contestant=novice", "seed=3"])
    assert cfg.hydra.launcher._target_ == target
    assert cfg.hydra.job.config.override_dirname.item_sep == "/"
    if launcher == "joblib":
        assert cfg.hydra.launcher.n_jobs == 2


def sweep(sweep_dir: Path, env: dict[str, str], launcher: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "experiments.tournament", "-m",
               "contestant=random,novice", "seed=3", "budget_minutes=20",
               "final_repeats=2", f"hydra/launcher={launcher}", f"hydra.sweep.dir={sweep_dir}"]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done


def test_joblib_sweep_gathers_and_resumes(tmp_path: Path, subprocess_env: dict[str, str],
                                          make_cfg: Callable[..., DictConfig]) -> None:
    sweep_dir = tmp_path / "sweep"
    sweep(sweep_dir, subprocess_env, "joblib")
    job_dirs = sorted(p.parent for p in sweep_dir.rglob(DONE))
    assert [d.relative_to(sweep_dir).as_posix() for d in job_dirs] == [
        "budget_minutes=20/contestant=novice/final_repeats=2/seed=3",
        "budget_minutes=20/contestant=random/final_repeats=2/seed=3"]
    assert not (job_dirs[0] / "figures").exists()  # figures come from gather

    assert gather.main([str(sweep_dir)]) == 0
    gathered = read_table(sweep_dir / "gathered" / "sessions.tsv")
    gathered_trials = read_table(sweep_dir / "gathered" / "trials.tsv")
    assert len(gathered_trials) == gathered["n_trials"].sum() > len(gathered)
    single = make_cfg("tournament", "seeds=[3]", "final_repeats=2")
    tournament.run(single)
    expected = read_table(Path(single.output_dir) / "sessions.tsv")
    key = ["contestant", "seed"]
    pd.testing.assert_frame_equal(
        gathered.drop(columns="think_seconds").sort_values(key).reset_index(drop=True),
        expected.drop(columns="think_seconds").sort_values(key).reset_index(drop=True))
    assert (sweep_dir / "gathered" / "figures" / "best_vs_minutes.png").is_file()
    assert gather.main([str(sweep_dir), "--missing"]) == 0

    # a killed job: no done marker, a half-written temporary file
    killed, finished = job_dirs
    (killed / DONE).unlink()
    (killed / f"trials.tsv{TMP_MARK}12345").write_text("half a tab")
    stamp = (finished / "trials.tsv").stat().st_mtime_ns
    assert gather.missing(sweep_dir) == [
        ["contestant=novice", "seed=3", "budget_minutes=20", "final_repeats=2"]]
    assert gather.main([str(sweep_dir), "--missing"]) == 1

    rerun = sweep(sweep_dir, subprocess_env, "basic")  # any launcher resumes
    assert "skipped" in rerun.stderr + rerun.stdout
    assert (killed / DONE).is_file() and not list(killed.glob(f"*{TMP_MARK}*"))
    assert (finished / "trials.tsv").stat().st_mtime_ns == stamp
    assert gather.missing(sweep_dir) == []
    shutil.copytree(finished, sweep_dir / "copy_of_a_job")  # the same sessions twice
    regathered = gather.gather(sweep_dir, sweep_dir / "gathered")
    assert len(regathered["sessions"]) == 2
    assert len(regathered["trials"]) == len(gathered_trials)
