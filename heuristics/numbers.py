"""Numbers as people type them, the fields' ordinary ranges, and the fitted parameter file.

People type round numbers: one or two significant digits, powers of ten, for batch sizes powers
of two. `human_number` turns a magnitude into such a number by keeping its decade and drawing
the leading digits from the mantissas people used (fitted from the study's logs).
`ORDINARY` is the range a value is unremarkable in; the study's novices often typed values far
outside it ("extreme": learning rate 8, momentum 4, batch size 1, 1,000 epochs).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from envs.space import SPACE

#: agents/persona_params.json: the fitted mapping and value distributions
PARAMS_FILE = Path(__file__).resolve().parents[1] / "agents" / "persona_params.json"

#: [low, high] of unremarkable values per numeric field (outside: "extreme")
ORDINARY: dict[str, tuple[float, float]] = {
    "epochs": (1, 150), "batch_size": (4, 1024), "lr": (1e-5, 0.09),
    "weight_decay": (0.0, 0.01), "momentum": (0.0, 0.99), "rho": (0.0, 1.0),
    "lambd": (0.0, 0.01), "alpha": (0.0, 1.0), "eps": (0.0, 0.01), "lr_decay": (0.0, 0.01),
    "initial_accumulator_value": (0.0, 1.0), "beta1": (0.0, 0.999), "beta2": (0.0, 0.9999),
}
#: the largest value a guess may take (people typed up to 1,200 epochs and batch size 100,000)
HARD_MAX: dict[str, float] = {"epochs": 2000, "batch_size": 100_000}
FLOAT_MAX = 1e4
#: mantissas before any fit: the leading digits of round numbers
DEFAULT_MANTISSAS: dict[str, float] = {"1": 0.5, "2": 0.15, "5": 0.2, "3": 0.1, "8": 0.05}


def is_extreme(name: str, value: float) -> bool:
    low, high = ORDINARY[name]
    return not low <= value <= high


def weighted_choice(table: Mapping[Any, float], rng: np.random.Generator) -> Any:
    """One key of `table`, drawn with probability proportional to its weight."""
    keys = list(table)
    weights = np.array([table[k] for k in keys], dtype=np.float64)
    return keys[int(rng.choice(len(keys), p=weights / weights.sum()))]


def human_number(name: str, magnitude: float, rng: np.random.Generator,
                 mantissas: Mapping[str, float] | None = None, pow2: float = 0.0) -> float | int:
    """A round number of `magnitude`'s decade, as a person would type it for field `name`."""
    magnitude = max(magnitude, 1e-12)
    if SPACE[name].kind == "int" and rng.random() < pow2:
        value: float = 2.0 ** round(math.log2(max(magnitude, 1.0)))
    else:
        mantissa = weighted_choice(mantissas or DEFAULT_MANTISSAS, rng)
        value = float(f"{mantissa}e{math.floor(math.log10(magnitude))}")
    return clip_value(name, value)


def clip_value(name: str, value: float) -> float | int:
    """`value` made legal for `name` (ints >= 1, rates > 0) and below the hard maxima."""
    if SPACE[name].kind == "int":
        return int(min(max(round(value), 1), HARD_MAX[name]))
    value = min(float(value), FLOAT_MAX)
    hp = SPACE[name]
    if hp.lower is not None and not hp.lower_inclusive and value <= hp.lower:
        return float(f"1e{math.floor(math.log10(ORDINARY[name][0]))}")
    return max(value, hp.lower) if hp.lower is not None else value


#: fields confined to [0, 1): people move them toward or away from 1 (0.9 -> 0.99 or 0.7)
BOUNDED: tuple[str, ...] = ("momentum", "rho", "alpha", "beta1", "beta2")
SNAP_MANTISSAS: tuple[float, ...] = (1.0, 2.0, 3.0, 5.0, 10.0)
#: the value a person tries first when moving a field up from 0
FIRST_NONZERO: dict[str, float] = {"weight_decay": 1e-4, "lambd": 1e-4, "lr_decay": 1e-4,
                                   "initial_accumulator_value": 0.1, "eps": 1e-8, "lr": 1e-5}


def step(name: str, value: float, decades: float) -> float | int:
    """`value` moved by `decades` (log10), re-rounded as a person would (integers: doubled or
    halved; fields in `BOUNDED`: their distance to 1 scaled; from 0: `FIRST_NONZERO`)."""
    if name in BOUNDED:
        return _step_bounded(value, decades)
    if value <= 0:
        return clip_value(name, FIRST_NONZERO.get(name, 1.0)) if decades > 0 else value
    if SPACE[name].kind == "int":
        moved = clip_value(name, value * 2.0 ** math.copysign(1, decades))
        return moved if moved != value else clip_value(name, value + math.copysign(1, decades))
    return snap(name, value * 10.0 ** decades)


def snap(name: str, value: float) -> float | int:
    """`value` rounded to the nearest (in log) of 1, 2, 3 or 5 times a power of ten."""
    decade = math.floor(math.log10(value))
    mantissa = value / 10.0**decade
    nearest = min(SNAP_MANTISSAS, key=lambda m: abs(math.log(mantissa / m)))
    return clip_value(name, float(f"{nearest:g}e{decade}"))


def _step_bounded(value: float, decades: float) -> float:
    gap = 1.0 - value
    if not 0.0 < gap <= 1.0:
        return 0.9  # an absurd value (>= 1 or < 0): back to the usual one
    gap = min(max(gap * 10.0 ** -decades, 0.001), 1.0)
    digits = max(0, -math.floor(math.log10(gap)))
    return round(1.0 - round(gap, digits), digits)


def sample_table(table: Sequence[Sequence[Any]], rng: np.random.Generator) -> Any:
    """A value from a [[value, weight], ...] table."""
    return table[weighted_choice({i: row[1] for i, row in enumerate(table)}, rng)][0]


@cache
def _load(path: str) -> dict[str, Any]:
    return json.loads(Path(path).read_text())


def load_params(path: str | Path | None = None) -> dict[str, Any]:
    """The fitted persona parameters (cached; `PARAMS_FILE` by default)."""
    return _load(str(Path(path or PARAMS_FILE).resolve()))
