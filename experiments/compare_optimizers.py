"""Compare every registered contestant (conf/agent/*.yaml) over seeds on the surrogate.

    python -m experiments.compare_optimizers --seeds 10 --budget-minutes 120 [--out DIR]
        [--agents random tpe ...] [--protocol study|full] [--jobs N]

Each agent plays one session per seed. The table gives, per agent (mean ± sd over seeds): the
best validation accuracy reported within the first 20 trials (chance, 0.1, when none was
reported: under the study protocol cancelled runs report none), the best at the end of the
session, the final configuration's test accuracy (the study's protocol), the trials run, the
measured think seconds per session, and how many seeds it beat random search at 20 trials
(ties count half), with the p-value of a paired two-sided Wilcoxon signed-rank test. Writes
sessions.tsv (one row per session, with each agent's domain and its hash) and summary.tsv to
`--out`.
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from hydra.utils import instantiate
from omegaconf import OmegaConf
from scipy.stats import wilcoxon

import envs
from agents.play import SessionResult, play

AGENT_DIR = Path(__file__).resolve().parents[1] / "conf" / "agent"
CHANCE = 0.1
EARLY = 20
METRICS: tuple[str, ...] = ("best_at_20", "best", "test_accuracy", "trials", "think_s")


def best_within(result: SessionResult, n: int | None = None) -> float:
    """Best reported validation accuracy among the first `n` trials (chance if none)."""
    values = [t.val_accuracy for t in result.history[:n]
              if t.val_accuracy is not None and math.isfinite(t.val_accuracy)]
    return max(values, default=CHANCE)


def run_session(path: str, seed: int, budget_minutes: float, protocol: str) -> dict[str, Any]:
    """Play one session of the agent in `path`; one flat row of results."""
    agent = instantiate(OmegaConf.load(path))
    env = gym.make(envs.ENV_ID, backend="surrogate", protocol=protocol,
                   budget_minutes=budget_minutes)
    started = time.perf_counter()
    result = play(agent, env, seed)
    described = agent.describe()
    test = result.final.get("test_accuracy")
    return {
        "agent": agent.name, "seed": seed, "status": result.status,
        "method": described.get("method", "persona"),
        "domain": described.get("domain", ""), "domain_hash": described.get("domain_hash", ""),
        "best_at_20": best_within(result, EARLY), "best": best_within(result),
        "test_accuracy": CHANCE if test is None else float(test),
        "trials": len(result.history), "think_s": result.total_think_seconds,
        "wall_s": time.perf_counter() - started, "protocol": protocol,
        "budget_minutes": budget_minutes,
    }


def run_all(paths: Sequence[Path], seeds: int, budget_minutes: float, protocol: str,
            jobs: int) -> list[dict[str, Any]]:
    tasks = [(str(p), seed, budget_minutes, protocol) for p in paths for seed in range(seeds)]
    if jobs <= 1:
        return [run_session(*task) for task in tasks]
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        return list(pool.map(run_session, *zip(*tasks, strict=True)))


def summarize(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean and sd of each metric per agent, and wins over random search at 20 trials."""
    agents = list(dict.fromkeys(r["agent"] for r in rows))
    random_at_20 = {r["seed"]: r["best_at_20"] for r in rows if r["agent"] == "random"}
    summary = []
    for name in agents:
        mine = [r for r in rows if r["agent"] == name]
        entry: dict[str, Any] = {"agent": name, "method": mine[0]["method"],
                                 "seeds": len(mine),
                                 "errors": sum(r["status"] != "ok" for r in mine)}
        for metric in METRICS:
            values = np.array([r[metric] for r in mine], dtype=float)
            entry[f"{metric}_mean"] = float(values.mean())
            entry[f"{metric}_sd"] = float(values.std(ddof=1)) if len(values) > 1 else 0.0
        paired = [(r["best_at_20"], random_at_20[r["seed"]]) for r in mine
                  if r["seed"] in random_at_20]
        entry["wins_vs_random_at_20"] = sum(1.0 if a > b else 0.5 if a == b else 0.0
                                            for a, b in paired) if paired else math.nan
        entry["p_vs_random_at_20"] = paired_p(paired)
        summary.append(entry)
    return sorted(summary, key=lambda e: -e["best_at_20_mean"])


def paired_p(pairs: Sequence[tuple[float, float]]) -> float:
    """Two-sided Wilcoxon signed-rank p-value of paired values (NaN when undefined)."""
    differences = [a - b for a, b in pairs]
    if len(differences) < 2 or not any(differences):
        return math.nan
    return float(wilcoxon(differences, zero_method="zsplit").pvalue)


def format_table(summary: Sequence[dict[str, Any]]) -> str:
    """A fixed-width table of the summary."""
    head = (f"{'agent':<14}{'best@20':>15}{'best':>15}{'test':>15}{'trials':>12}"
            f"{'think s':>13}{'>random@20':>12}{'p':>7}")
    lines = [head, "-" * len(head)]
    for e in summary:
        cells = [f"{e[f'{m}_mean']:.3f} ± {e[f'{m}_sd']:.3f}" for m in METRICS[:3]]
        lines.append(
            f"{e['agent']:<14}" + "".join(f"{c:>15}" for c in cells)
            + f"{e['trials_mean']:>7.1f} ± {e['trials_sd']:<3.0f}"
            + f"{e['think_s_mean']:>7.2f} ± {e['think_s_sd']:<4.2f}"
            + (f"{e['wins_vs_random_at_20']:>6.1f}/{e['seeds']}"
               if not math.isnan(e["wins_vs_random_at_20"]) else f"{'-':>9}")
            + (f"{e['p_vs_random_at_20']:>7.3f}" if not math.isnan(e["p_vs_random_at_20"])
               else f"{'-':>7}")
            + (f"  ({e['errors']} errors)" if e["errors"] else ""))
    return "\n".join(lines)


def write_tsv(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]), delimiter="\t")
        writer.writeheader()
        writer.writerows(rows)


def agent_paths(names: Sequence[str] | None) -> list[Path]:
    """The conf/agent YAMLs to compare (all of them by default)."""
    paths = sorted(AGENT_DIR.glob("*.yaml"))
    if not names:
        return paths
    known = {p.stem: p for p in paths}
    missing = [n for n in names if n not in known]
    if missing:
        raise SystemExit(f"unknown agents {missing}: expected names among {sorted(known)}")
    return [known[n] for n in names]


def main(argv: Sequence[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--budget-minutes", type=float, default=120.0)
    parser.add_argument("--protocol", choices=("study", "full"), default="study")
    parser.add_argument("--agents", nargs="*", help="conf/agent names (default: all)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--out", type=Path, default=Path("outputs/compare_optimizers"))
    args = parser.parse_args(argv)
    rows = run_all(agent_paths(args.agents), args.seeds, args.budget_minutes, args.protocol,
                   args.jobs)
    summary = summarize(rows)
    print(format_table(summary))
    write_tsv(args.out / "sessions.tsv", rows)
    write_tsv(args.out / "summary.tsv", summary)
    print(f"wrote {args.out / 'sessions.tsv'} and {args.out / 'summary.tsv'}")
    return summary


if __name__ == "__main__":
    main()
