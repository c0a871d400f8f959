"""Benchmark the surrogate: batched learning curves vs one configuration at a time, env steps.

    python -m experiments.bench_surrogate [--configs 100000] [--epochs 20] [--loop 2000]
        [--steps 20000] [--seed 0]

1. Curves per second: one `simulate` call on `--configs` random configurations of
   `--epochs` epochs, against a loop of `simulate` calls with one configuration each (the
   baseline, measured on `--loop` of the same configurations), in the same process.
2. The tuning-session environment's median step time: `gymnasium.make` of the registered id,
   sessions of `continue` steps on long runs (a new run is submitted when one ends; submit
   steps are not counted).
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from collections.abc import Sequence

import gymnasium as gym
import numpy as np
from rich.console import Console
from rich.table import Table

import envs
from envs import actions
from envs.space import LOSSES, OPTIMIZERS, config_arrays, validate
from envs.surrogate import SurrogateParams, simulate

TARGET_CURVES_PER_S = 100_000
TARGET_STEP_US = 50.0


def random_arrays(n: int, epochs: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """`n` random configurations over the whole space (plausible and absurd values)."""
    configs = [validate({
        "epochs": epochs, "batch_size": int(rng.choice([1, 8, 32, 64, 256, 1000])),
        "loss": rng.choice(LOSSES), "optimizer": rng.choice(OPTIMIZERS),
        "lr": 10 ** rng.uniform(-6, 1), "weight_decay": rng.choice([0.0, 1e-4, 1e-2]),
        "momentum": rng.choice([0.0, 0.9, 1.5]), "eps": 10 ** rng.uniform(-10, 0),
        "lambd": 10 ** rng.uniform(-5, 0), "lr_decay": rng.choice([0.0, 1e-3])})
        for _ in range(min(n, 5_000))]
    arrays = config_arrays(configs)
    index = rng.integers(0, len(configs), n)
    return {k: v[index] for k, v in arrays.items()}


def bench_curves(n: int, epochs: int, loop: int, seed: int, p: SurrogateParams
                 ) -> dict[str, float]:
    """Curves per second, batched and one at a time."""
    rng = np.random.default_rng(seed)
    arrays = random_arrays(n, epochs, rng)
    simulate({k: v[:100] for k, v in arrays.items()}, epochs, rng, p)  # warm-up
    start = time.perf_counter()
    simulate(arrays, epochs, rng, p)
    batched = n / (time.perf_counter() - start)
    start = time.perf_counter()
    for i in range(loop):
        simulate({k: v[i:i + 1] for k, v in arrays.items()}, epochs, rng, p)
    single = loop / (time.perf_counter() - start)
    return {"batched": batched, "single": single}


def bench_env(steps: int, seed: int) -> dict[str, float]:
    """Median and mean microseconds of a `continue` step."""
    env = gym.make(envs.ENV_ID, budget_minutes=1e9, max_steps=10**9)
    env.reset(seed=seed)
    config = {"epochs": 1_000_000, "batch_size": 64, "loss": "cross_entropy",
              "optimizer": "adam", "lr": 1e-4}
    submit, step = actions.submit(config), actions.continue_()
    times = np.empty(steps)
    obs, *_ = env.step(submit)
    for i in range(steps):
        if not obs["running"]:
            obs, *_ = env.step(submit)
        start = time.perf_counter()
        obs, *_ = env.step(step)
        times[i] = time.perf_counter() - start
    env.close()
    return {"median_us": float(np.median(times) * 1e6), "mean_us": float(times.mean() * 1e6)}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", type=int, default=100_000)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--loop", type=int, default=2_000)
    parser.add_argument("--steps", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    p = SurrogateParams.load()
    curves = bench_curves(args.configs, args.epochs, args.loop, args.seed, p)
    env = bench_env(args.steps, args.seed)
    table = Table(title=f"Surrogate benchmark ({platform.processor() or platform.machine()}, "
                        f"one process, surrogate {p.version})")
    for column in ("measure", "value", "target", "status"):
        table.add_column(column)

    def status(ok: bool) -> str:
        return "[green]PASS[/]" if ok else "[red]FAIL[/]"

    table.add_row(f"curves/s, batched ({args.configs:,} configs x {args.epochs} epochs)",
                  f"{curves['batched']:,.0f}", f">= {TARGET_CURVES_PER_S:,}",
                  status(curves["batched"] >= TARGET_CURVES_PER_S))
    table.add_row(f"curves/s, one at a time (loop of {args.loop:,})",
                  f"{curves['single']:,.0f}", "baseline", "")
    table.add_row("speed-up, batched / one at a time",
                  f"{curves['batched'] / curves['single']:,.0f}x", "", "")
    table.add_row(f"env continue step, median of {args.steps:,} (us)",
                  f"{env['median_us']:.1f}", f"<= {TARGET_STEP_US:.0f}",
                  status(env["median_us"] <= TARGET_STEP_US))
    table.add_row("env continue step, mean (us)", f"{env['mean_us']:.1f}", "", "")
    Console().print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
