"""Evaluate every configuration of a table with a training backend.

    python -m experiments.evaluate_configs --configs FILE --backend surrogate --repeats 10 \
        --out OUT.tsv [--seed 0] [--max-epochs N] [--dataset digits] [--per-row]

FILE is TSV or CSV (by extension, else sniffed) with canonical column names (envs.space);
missing optional hyperparameters take the study's defaults, other columns pass through
unchanged. Every input row is written back with added columns: `outcome` (completed, diverged
or failed), `val_accuracy` (what a session run reports on completion; empty otherwise),
`test_accuracy` / `test_accuracy_sd` (the final protocol: retrain on train+validation
`--repeats` times), `diverged`, `seconds` (training time of the run), `reason` (why a run
failed) and `error` (why a row is not a configuration: field, value, what is allowed). An added
column whose name the input already uses is prefixed with the backend's name
(`surrogate_val_accuracy`). One bad row never stops the file; the same seed gives the same file.

The surrogate evaluates all rows in one vectorized call; any other backend (`real`: SqueezeNet
training through envs.real_training.RealBackend, on `--dataset`) goes row by row through the
Backend interface (start, next_epoch until the run ends, final_test), with a progress bar.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.progress import Progress

from envs.backend import Backend, train_to_end
from envs.space import Config, InvalidConfigError, config_arrays, validate
from envs.surrogate import SurrogateBackend, failure, final_test_batch, run_outcomes
from envs.tuning_session import make_backend
from experiments.study_data import read_table, write_table

ADDED = ("outcome", "val_accuracy", "test_accuracy", "test_accuracy_sd", "diverged", "seconds",
         "reason", "error")


@dataclass(frozen=True)
class Result:
    """What one row's configuration did."""

    outcome: str = ""
    val_accuracy: float | None = None
    test_accuracy: float | None = None
    test_accuracy_sd: float | None = None
    diverged: bool | None = None
    seconds: float | None = None
    reason: str = ""
    error: str = ""

    def cells(self) -> dict[str, str]:
        """The added columns as text."""
        def number(x: float | None, digits: int) -> str:
            return "" if x is None or not math.isfinite(x) else f"{x:.{digits}f}"

        return {"outcome": self.outcome, "val_accuracy": number(self.val_accuracy, 4),
                "test_accuracy": number(self.test_accuracy, 4),
                "test_accuracy_sd": number(self.test_accuracy_sd, 4),
                "diverged": "" if self.diverged is None else str(self.diverged).lower(),
                "seconds": number(self.seconds, 1), "reason": self.reason, "error": self.error}


def parse(row: dict[str, str], max_epochs: int | None) -> Config | InvalidConfigError:
    """The row's configuration (epochs capped at `max_epochs`), or why it is none."""
    try:
        config = validate(row)
    except InvalidConfigError as error:
        return error
    if max_epochs is not None and config.epochs > max_epochs:
        config = config.replace(epochs=max_epochs)
    return config


def evaluate_surrogate(configs: Sequence[Config], backend: SurrogateBackend, repeats: int,
                       rng: np.random.Generator) -> list[Result]:
    """All configurations at once: a session run each, then the final protocol."""
    if not configs:
        return []
    p = backend.params
    reasons = [failure(c, p) for c in configs]
    out = run_outcomes(config_arrays(configs), rng, p, np.array([bool(r) for r in reasons]))
    finals = final_test_batch(configs, rng, repeats, p)
    results = []
    for i, final in enumerate(finals):
        outcome = "failed" if out.failed[i] else "diverged" if out.diverged[i] else "completed"
        val = None if outcome != "completed" else float(out.val_accuracy[i])
        results.append(Result(outcome, val, final.test_accuracy, final.test_accuracy_sd,
                              bool(out.diverged[i]), float(out.seconds[i]), reasons[i]))
    return results


def evaluate_one(backend: Backend, config: Config, repeats: int,
                 rng: np.random.Generator) -> Result:
    """A session run and the final protocol of one configuration, with any backend."""
    try:
        end = train_to_end(backend, config, rng)
        final = backend.final_test(config, rng, repeats)
    except Exception as error:  # noqa: BLE001 - one row's crash is recorded, not raised
        return Result("failed", reason=f"{type(error).__name__}: {error}")
    return Result(end.outcome, end.val_accuracy, final.test_accuracy, final.test_accuracy_sd,
                  end.outcome == "diverged", end.seconds, end.reason)


def evaluate_rows(configs: Sequence[Config], backend: Backend, repeats: int, seed: int,
                  advance: Callable[[], None] = lambda: None) -> list[Result]:
    """Row by row; each row draws from its own child of the seed."""
    children = np.random.SeedSequence(seed).spawn(len(configs))
    results = []
    for config, child in zip(configs, children, strict=True):
        results.append(evaluate_one(backend, config, repeats, np.random.default_rng(child)))
        advance()
    return results


def evaluate(parsed: Sequence[Config | InvalidConfigError], backend: Backend, repeats: int,
             seed: int, per_row: bool = False, console: Console | None = None) -> list[Result]:
    """Results in row order: errors for invalid rows, the backend's outcome for the others."""
    index = [i for i, c in enumerate(parsed) if isinstance(c, Config)]
    configs = [parsed[i] for i in index]
    if isinstance(backend, SurrogateBackend) and not per_row:
        done = evaluate_surrogate(configs, backend, repeats, np.random.default_rng(seed))
    else:
        with Progress(console=console or Console(stderr=True), transient=True) as bar:
            task = bar.add_task(f"{backend.name}: training", total=len(configs))
            done = evaluate_rows(configs, backend, repeats, seed,
                                 lambda: bar.advance(task))
    results = [Result(error=str(c)) if isinstance(c, InvalidConfigError) else None
               for c in parsed]
    for i, result in zip(index, done, strict=True):
        results[i] = result
    return results  # type: ignore[return-value]


def output_columns(columns: Sequence[str], backend: str) -> dict[str, str]:
    """Added column name -> name in the output (prefixed where the input has it)."""
    return {name: f"{backend}_{name}" if name in columns else name for name in ADDED}


def build_backend(name: str, max_epochs: int | None, dataset: str,
                  params: Path | None) -> Backend:
    if name == "surrogate":
        return SurrogateBackend(params)
    return make_backend(name, dataset=dataset, max_epochs=max_epochs)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", type=Path, required=True)
    parser.add_argument("--backend", default="surrogate", choices=("surrogate", "real"))
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-epochs", type=int, default=None,
                        help="cap every run's epochs (quick checks)")
    parser.add_argument("--dataset", default="digits", help="real backend's dataset")
    parser.add_argument("--params", type=Path, default=None, help="surrogate parameter file")
    parser.add_argument("--per-row", action="store_true",
                        help="surrogate: go row by row through the Backend interface")
    args = parser.parse_args(argv)
    if args.repeats < 1 or (args.max_epochs is not None and args.max_epochs < 1):
        parser.error("--repeats and --max-epochs must be >= 1")
    console = Console(stderr=True)
    rows, columns, _ = read_table(args.configs)
    backend = build_backend(args.backend, args.max_epochs, args.dataset, args.params)
    parsed = [parse(row, args.max_epochs) for row in rows]
    results = evaluate(parsed, backend, args.repeats, args.seed, args.per_row, console)
    names = output_columns(columns, backend.name)
    out_rows = [{**row, **{names[k]: v for k, v in result.cells().items()}}
                for row, result in zip(rows, results, strict=True)]
    write_table(args.out, out_rows, [*columns, *names.values()])
    errors = sum(bool(r.error) for r in results)
    console.print(f"{len(rows)} rows -> {args.out} ({errors} not configurations, "
                  f"backend {backend.name})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
