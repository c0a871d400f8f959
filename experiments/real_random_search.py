"""Random search with real training, logged in the study's runs-table format.

Trains N random configurations with the real backend and writes one row per run with the
columns of the study's runs.tsv (server, user_id, run_id, the 15 hyperparameters, why_* left
empty, final_submission, outcome, val_accuracy, time_taken_s), flushing after every run.
As in the study's table, val_accuracy is given for completed runs only and time_taken_s for
completed and diverged (nan) runs; the best completed run is marked as the final submission.

    python -m experiments.real_random_search --n 40 --dataset digits --out runs_digits.tsv \
        --seed 0 --max-epochs 5
"""

from __future__ import annotations

import argparse
import csv
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from envs.backend import RunEnd, train_to_end
from envs.space import DEFAULTS, LOSSES, NAMES, OPTIMIZERS, Config, to_row
from envs.trials import STUDY_OUTCOME, STUDY_RUN_COLUMNS


def _typed(value: float) -> float:
    """A value as a person would type it: three significant digits."""
    return float(f"{value:.3g}")


def _log_uniform(rng: np.random.Generator, low: float, high: float) -> float:
    return _typed(math.exp(rng.uniform(math.log(low), math.log(high))))


def _uniform(rng: np.random.Generator, low: float, high: float) -> float:
    return _typed(rng.uniform(low, high))


def _sometimes_zero(rng: np.random.Generator, low: float, high: float) -> float:
    """0 half of the time (the default), else log-uniform in [low, high]."""
    return 0.0 if rng.random() < 0.5 else _log_uniform(rng, low, high)


#: Samplers of the optimizer-specific fields; a field an optimizer ignores keeps its default.
FIELD_SAMPLERS: dict[str, Callable[[np.random.Generator], float]] = {
    "lr": lambda rng: _log_uniform(rng, 1e-5, 1.0),
    "weight_decay": lambda rng: _sometimes_zero(rng, 1e-6, 1e-1),
    "momentum": lambda rng: 0.0 if rng.random() < 0.3 else _uniform(rng, 0.0, 0.99),
    "rho": lambda rng: _uniform(rng, 0.5, 0.999),
    "lambd": lambda rng: _log_uniform(rng, 1e-6, 1e-2),
    "alpha": lambda rng: _uniform(rng, 0.5, 0.999),
    "eps": lambda rng: _log_uniform(rng, 1e-10, 1e-2),
    "lr_decay": lambda rng: _sometimes_zero(rng, 1e-6, 1e-2),
    "initial_accumulator_value": lambda rng: _sometimes_zero(rng, 1e-3, 1.0),
    "beta1": lambda rng: _uniform(rng, 0.5, 0.99),
    "beta2": lambda rng: round(1.0 - _log_uniform(rng, 1e-4, 1e-1), 7),  # always below 1
}


def sample_config(rng: np.random.Generator, max_epochs: int = 10,
                  max_batch_size: int = 512) -> Config:
    """A random configuration from a broad but sensible domain (log scales where natural)."""
    optimizer = str(rng.choice(OPTIMIZERS))
    values: dict[str, Any] = {
        "epochs": int(rng.integers(1, max_epochs + 1)),
        "batch_size": int(round(_log_uniform(rng, 4, max_batch_size))),
        "loss": str(rng.choice(LOSSES)),
        "optimizer": optimizer,
        **DEFAULTS,
    }
    probe = Config.from_mapping(values)
    for name in probe.optimizer_fields():
        values[name] = FIELD_SAMPLERS[name](rng)
    return Config.from_mapping(values)


def study_row(run_id: int, config: Config, result: RunEnd, server: str,
              user_id: str) -> dict[str, str]:
    """One row in the study's runs-table format."""
    outcome = STUDY_OUTCOME[result.outcome]
    row = {"server": server, "user_id": user_id, "run_id": str(run_id), **to_row(config)}
    row |= {f"why_{name}": "" for name in NAMES}
    row |= {"final_submission": "false", "outcome": outcome,
            "val_accuracy": f"{result.val_accuracy:.4g}" if outcome == "completed" else "",
            "time_taken_s": f"{result.seconds:.4f}" if outcome in ("completed", "nan")
            else ""}
    return row


def mark_final(path: Path) -> int | None:
    """Set final_submission on the best completed row of a runs table; its run_id."""
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    done = [r for r in rows if r["outcome"] == "completed"]
    if not done:
        return None
    best = max(done, key=lambda r: float(r["val_accuracy"]))
    best["final_submission"] = "true"
    _write(path, rows, "w")
    return int(best["run_id"])


def _write(path: Path, rows: list[dict[str, str]], mode: str) -> None:
    with path.open(mode, newline="") as handle:
        # the study's table: tab-separated, CRLF line ends (csv's default)
        writer = csv.DictWriter(handle, fieldnames=STUDY_RUN_COLUMNS, delimiter="\t")
        if mode == "w":
            writer.writeheader()
        writer.writerows(rows)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=40, help="number of configurations")
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--out", type=Path, default=Path("runs_digits.tsv"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-epochs", type=int, default=5,
                        help="epochs are drawn from 1..max-epochs")
    parser.add_argument("--max-batch-size", type=int, default=512)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--image-size", type=int, default=None)
    parser.add_argument("--train-subset", type=int, default=None)
    parser.add_argument("--num-threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--run-budget-s", type=float, default=math.inf,
                        help="cancel a run once it has trained this many seconds")
    parser.add_argument("--server", default="local")
    parser.add_argument("--user-id", default=None, help="default: random_search_<seed>")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> Path:
    """Run the search; returns the path of the runs table."""
    from envs.real_training import RealBackend

    args = parse_args(argv)
    backend = RealBackend(dataset=args.dataset, data_root=args.data_root, device=args.device,
                          image_size=args.image_size, max_epochs=args.max_epochs,
                          train_subset=args.train_subset, num_threads=args.num_threads)
    rng = np.random.default_rng(args.seed)
    user_id = args.user_id or f"random_search_{args.seed}"
    _write(args.out, [], "w")
    for run_id in range(1, args.n + 1):
        config = sample_config(rng, args.max_epochs, args.max_batch_size)
        result = train_to_end(backend, config, rng, args.run_budget_s)
        _write(args.out, [study_row(run_id, config, result, args.server, user_id)], "a")
        print(f"[{run_id}/{args.n}] {config.optimizer} {config.loss} lr={config.lr:.3g} "
              f"bs={config.batch_size} epochs={config.epochs}: {result.outcome} "
              f"val={'-' if result.val_accuracy is None else f'{result.val_accuracy:.3f}'} "
              f"{result.seconds:.1f}s", flush=True)
    best = mark_final(args.out)
    print(f"wrote {args.n} runs to {args.out} (final submission: run {best})")
    return args.out


if __name__ == "__main__":
    main()
