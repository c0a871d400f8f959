"""W&B logging: offline runs written per session, offline by default, no silent fallback."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import wandb
from omegaconf import DictConfig

from experiments import tournament
from experiments.wandb_logger import WandbLogger


def test_offline_runs_written_per_session(make_cfg: Callable[..., DictConfig], tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "wb"))
    monkeypatch.setenv("WANDB_SILENT", "true")
    cfg = make_cfg("tournament", "logger=wandb", "seeds=[0]")
    assert cfg.logger.mode == "offline" and cfg.logger.group == "tournament"
    tournament.run(cfg)
    runs = sorted((tmp_path / "wb" / "wandb").glob("offline-run-*"))
    assert len(runs) == 3  # two sessions and the leaderboard
    for run in runs:
        assert list(run.glob("run-*.wandb")) and (run / "files").is_dir()
    logged = b"".join(next(r.glob("run-*.wandb")).read_bytes() for r in runs)
    assert b"by_trial/best_val_accuracy" in logged
    assert b"novice-seed0" in logged and b"random-seed0" in logged


def test_mode_defaults_to_offline(make_cfg: Callable[..., DictConfig],
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WANDB_MODE", raising=False)
    assert make_cfg("tournament", "logger=wandb").logger.mode == "offline"
    with pytest.raises(ValueError, match="logger.mode"):
        WandbLogger(mode="sometimes")


def test_online_failure_raises_without_falling_back(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    def unreachable(**kwargs: object) -> None:
        calls.append(kwargs["mode"])
        raise wandb.errors.CommError("no network")

    monkeypatch.setattr(wandb, "init", unreachable)
    logger = WandbLogger(mode="online", dir=str(tmp_path))
    with pytest.raises(RuntimeError, match="nothing was logged"):
        logger._init("run", "job", {})
    assert calls == ["online"]
    assert not list(tmp_path.rglob("offline-run-*"))
