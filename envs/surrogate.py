"""A fast, seeded surrogate of SqueezeNet-on-Imagenette training, calibrated on the study's logs.

The model is structural: every configuration is mapped to a handful of interpretable
quantities, and the study's logs fit only the constants (see `SurrogateParams`). Its
assumptions, from PyTorch's optimizer semantics and the study's training setup:

1. **Effective step size.** Each optimizer's learning rate is turned into a log10 step size `u`
   on the scale at which it learns: SGD's heavy-ball momentum multiplies the step by
   1/(1 - momentum); averaged SGD (PyTorch's ASGD, t0 = 1e6, so plain SGD here) decays its
   step as (1 + lambd * lr * t)^-alpha over t steps; Adagrad's accumulator shrinks it by
   sqrt(1 + initial_accumulator_value / g2) and lr_decay; Adam, RMSprop and Adadelta divide by
   a running gradient norm, so eps much larger than the gradient scale turns them into SGD with
   rate lr / eps (Adam, RMSprop) or grows Adadelta's unit-less step as sqrt(eps).
   Non-standard losses (mse, l1 on one-hot targets) give smaller gradients: a shift of `u`.
   Smaller batches add gradient noise: `u` moves up by `batch_noise * log10(64 / batch_size)`.
2. **Distance to the optimizer's good range.** `z = u - center[optimizer]`. Below the range
   (z < 0) learning slows in proportion to the step (progress per epoch ~ 10^(slope * z));
   above it the run diverges to NaN with probability sigmoid((z - z_diverge) / width) or
   collapses to chance (dead ReLUs, SqueezeNet's non-negative outputs) with probability
   sigmoid((z - z_stuck) / width). Momentum >= 1 (SGD, RMSprop) and RMSprop alpha > 1 (a
   negative running average under the square root) diverge.
3. **Learning curve.** Validation accuracy after e epochs is
   0.1 + (ceiling - 0.1) * (1 - exp(-rate * e)), with rate = base_rate[optimizer] *
   10^(slope * min(z, 0)) * (steps per epoch / steps at batch 64)^steps_power. The ceiling
   (about 0.8) falls with weight decay (sigmoid in log10 weight decay), with mse and l1 losses,
   and with very large batches; each run has its own luck (a normal offset).
4. **Losses.** nll is log-softmax + NLL, the same function as cross_entropy. l1 on the raw,
   non-negative outputs against one-hot targets learns almost never (every l1 run in the logs
   ended at chance). The training loss follows the accuracy curve from its chance value
   (ln 10 for cross-entropy) with per-batch noise that shrinks with the batch size; a diverged
   run reports inf from its divergence epoch on.
5. **Cost.** Seconds per epoch = t_fixed + t_per_step * (n_train / batch_size) +
   t_per_image_large * batch_size, times a per-run log-normal factor (the study's machines).
6. **Measurement.** Accuracy is measured on 500 images (binomial noise, steps of 0.002).
7. **Final protocol.** The final configuration is retrained on train+validation `repeats`
   times, each with its own draws of luck, collapse and divergence, and tested on 500 images.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from envs.backend import Backend, Run
from envs.space import LOSSES, OPTIMIZERS, Config, config_arrays, optimizer_rejection
from envs.trials import EpochReport, FinalResult

PARAMS_FILE = Path(__file__).with_name("surrogate_params.json")
CHANCE = 0.1
N_EVAL = 500
_OPT = {name: i for i, name in enumerate(OPTIMIZERS)}
_LOSS = {name: i for i, name in enumerate(LOSSES)}


def _per_optimizer(values: dict[str, float]) -> dict[str, float]:
    return {name: float(values[name]) for name in OPTIMIZERS}


@dataclass
class SurrogateParams:
    """The surrogate's free constants (fitted by `experiments.calibrate_surrogate`)."""

    center: dict[str, float] = field(default_factory=lambda: _per_optimizer(
        {"sgd": -1.3, "averaged_sgd": -1.3, "adagrad": -2.0, "rmsprop": -3.7,
         "adadelta": -0.3, "adam": -3.7}))
    base_rate: dict[str, float] = field(default_factory=lambda: _per_optimizer(
        {"sgd": 0.25, "averaged_sgd": 0.25, "adagrad": 0.2, "rmsprop": 0.25,
         "adadelta": 0.25, "adam": 0.3}))
    slope: float = 1.0
    z_diverge: float = 1.6
    z_stuck: float = 0.7
    width: float = 0.25
    batch_noise: float = 0.3
    steps_power: float = 0.5
    mse_shift: float = -1.0
    l1_learns: float = 0.02
    ceiling: float = 0.80
    mse_ceiling: float = 0.55
    wd_mid: float = -2.3
    wd_width: float = 0.3
    large_batch: float = 0.03
    luck_sd: float = 0.03
    adam_eps_scale: float = -3.0
    adagrad_g2: float = 1e-3
    t_fixed: float = 4.5
    t_per_step: float = 0.0222
    t_per_image_large: float = 0.002
    time_sd: float = 0.15
    n_train: int = 13_000
    n_final: int = 13_500
    divergence_epochs: float = 1.0
    version: str = "prior"
    notes: str = ""

    @classmethod
    def load(cls, path: str | Path = PARAMS_FILE) -> SurrogateParams:
        data = json.loads(Path(path).read_text())
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def save(self, path: str | Path = PARAMS_FILE) -> None:
        Path(path).write_text(json.dumps(asdict(self), indent=2) + "\n")


@dataclass(frozen=True)
class Components:
    """Deterministic per-configuration quantities (arrays of length n)."""

    z: np.ndarray
    p_diverge: np.ndarray
    p_stuck: np.ndarray
    rate: np.ndarray
    ceiling: np.ndarray
    sec_per_epoch: np.ndarray
    failed: np.ndarray


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def _lookup(table: dict[str, float], index: np.ndarray) -> np.ndarray:
    return np.array([table[name] for name in OPTIMIZERS])[index]


def step_size(a: dict[str, np.ndarray], p: SurrogateParams) -> np.ndarray:
    """log10 effective step size u of each configuration (assumption 1)."""
    opt, lr = a["optimizer"], a["lr"]
    u = np.log10(lr)
    mom = np.clip(a["momentum"], 0.0, 0.999999)
    heavy = (opt == _OPT["sgd"]) | (opt == _OPT["rmsprop"])
    u = np.where(heavy, u - np.log10(1.0 - mom), u)
    steps = a["epochs"] * p.n_train / a["batch_size"]
    decay = np.log1p(np.maximum(a["lambd"] * lr * steps / 2.0, -0.999999)) * a["alpha"]
    u = np.where(opt == _OPT["averaged_sgd"], u - np.clip(decay, -10, 10) / np.log(10), u)
    eps_log = np.log10(np.maximum(np.abs(a["eps"]), 1e-30))
    adaptive = (opt == _OPT["adam"]) | (opt == _OPT["rmsprop"])
    u = np.where(adaptive, u - np.log10(1.0 + 10.0 ** (eps_log - p.adam_eps_scale)), u)
    u = np.where(opt == _OPT["adadelta"], u + 0.5 * (eps_log + 6.0), u)
    acc = 0.5 * np.log10(1.0 + a["initial_accumulator_value"] / p.adagrad_g2)
    acc += 0.5 * np.log10(1.0 + a["lr_decay"] * steps)
    u = np.where(opt == _OPT["adagrad"], u - acc, u)
    loss = a["loss"]
    u = np.where(loss == _LOSS["mse"], u + p.mse_shift, u)
    return u + p.batch_noise * np.log10(64.0 / a["batch_size"])


def components(a: dict[str, np.ndarray], p: SurrogateParams) -> Components:
    """Deterministic quantities of each configuration (assumptions 2-5)."""
    opt, loss, bs = a["optimizer"], a["loss"], a["batch_size"].astype(np.float64)
    z = step_size(a, p) - _lookup(p.center, opt)
    p_div = _sigmoid((z - p.z_diverge) / p.width)
    heavy = (opt == _OPT["sgd"]) | (opt == _OPT["rmsprop"])
    p_div = np.where(heavy & (a["momentum"] >= 1.0), 1.0, p_div)
    p_div = np.where((opt == _OPT["rmsprop"]) & (a["alpha"] > 1.0), 1.0, p_div)
    p_stuck = _sigmoid((z - p.z_stuck) / p.width)
    p_stuck = np.where(loss == _LOSS["l1"], 1.0 - p.l1_learns, p_stuck)
    steps = p.n_train / bs
    rate = _lookup(p.base_rate, opt) * 10.0 ** (p.slope * np.minimum(z, 0.0))
    rate *= (steps / (p.n_train / 64.0)) ** p.steps_power
    wd = a["weight_decay"] + np.where(opt == _OPT["averaged_sgd"], a["lambd"], 0.0)
    wd_log = np.log10(np.maximum(wd, 1e-12))
    ceiling = p.ceiling * _sigmoid(-(wd_log - p.wd_mid) / p.wd_width)
    ceiling = np.where(loss == _LOSS["mse"], ceiling * p.mse_ceiling / p.ceiling, ceiling)
    ceiling -= p.large_batch * np.maximum(np.log2(bs / 256.0), 0.0)
    ceiling = np.maximum(ceiling, CHANCE)
    sec = p.t_fixed + p.t_per_step * steps + p.t_per_image_large * bs
    failed = np.zeros(len(z), dtype=bool)
    return Components(z, p_div, p_stuck, rate, ceiling, sec, failed)


@dataclass(frozen=True)
class Curves:
    """Simulated runs: arrays of shape (n, E) for per-epoch values, (n,) otherwise."""

    val_accuracy: np.ndarray
    train_loss: np.ndarray
    seconds_per_epoch: np.ndarray
    diverge_epoch: np.ndarray  # 1-based epoch whose loss is NaN; 0 = never
    stuck: np.ndarray


def expected_accuracy(c: Components, epochs: np.ndarray) -> np.ndarray:
    """Accuracy a learning (not stuck, not diverged) run reaches after `epochs` epochs."""
    return CHANCE + (c.ceiling - CHANCE) * -np.expm1(-c.rate * epochs)


def _measure(acc: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Accuracy measured on 500 images: binomial noise, steps of 0.002."""
    return rng.binomial(N_EVAL, np.clip(acc, 0.0, 1.0)) / N_EVAL


def _chance_loss(loss: np.ndarray) -> np.ndarray:
    return np.select([loss <= _LOSS["nll"], loss == _LOSS["mse"]], [np.log(10.0), 0.1], 0.2)


def simulate(
    a: dict[str, np.ndarray], n_epochs: int, rng: np.random.Generator,
    p: SurrogateParams, n_train: int | None = None,
) -> Curves:
    """Simulate `n_epochs` epochs of every configuration in `a` at once (vectorized)."""
    c = components(a, p)
    n = len(c.z)
    diverged = rng.random(n) < c.p_diverge
    stuck = rng.random(n) < c.p_stuck
    luck = rng.normal(0.0, p.luck_sd, n)
    scale = (n_train or p.n_train) / p.n_train
    e = np.arange(1, n_epochs + 1, dtype=np.float64)
    progress = -np.expm1(-(c.rate * scale)[:, None] * e[None, :])
    top = np.maximum(c.ceiling + luck, CHANCE)
    learned = np.where(stuck, 0.0, 1.0)[:, None] * progress
    acc = CHANCE + (top - CHANCE)[:, None] * learned
    chance_loss = _chance_loss(a["loss"])
    floor = np.where(a["loss"] <= _LOSS["nll"], 0.35, 0.35 * chance_loss / np.log(10.0))
    fit = learned * ((top - CHANCE) / (p.ceiling - CHANCE))[:, None]
    loss = chance_loss[:, None] - (chance_loss - floor)[:, None] * np.clip(fit, 0.0, 1.0)
    div_epoch = 1 + np.floor(rng.exponential(p.divergence_epochs, n)).astype(np.int64)
    div_epoch = np.where(diverged, div_epoch, 0)
    after = (div_epoch[:, None] > 0) & (e[None, :] >= div_epoch[:, None])
    loss = np.where(after, np.inf, loss)
    acc = np.where(after, CHANCE, acc)
    sec = c.sec_per_epoch * np.exp(rng.normal(0.0, p.time_sd, n))
    return Curves(_measure(acc, rng), loss, sec, div_epoch, stuck)


class SurrogateRun(Run):
    """A surrogate run: its whole curve is drawn at start, epochs are read off it."""

    def __init__(self, curves: Curves, row: int, epochs: int, batch_size: int,
                 n_batch: int, rng: np.random.Generator, failed: str = "") -> None:
        self._acc = curves.val_accuracy[row]
        self._loss = curves.train_loss[row]
        self._sec = float(curves.seconds_per_epoch[row])
        self._epochs, self._failed = epochs, failed
        self._noise = 0.6 / np.sqrt(batch_size) + 0.02
        self._rng, self._n_batch, self._epoch = rng, n_batch, 0

    def next_epoch(self, max_seconds: float = float("inf")) -> EpochReport:
        if self._failed:
            return EpochReport(self._epoch + 1, float("inf"), np.full(self._n_batch, np.inf),
                               CHANCE, 0.0, failed=self._failed)
        if self._sec > max_seconds:
            return EpochReport(self._epoch + 1, float("nan"), np.zeros(self._n_batch),
                               CHANCE, max_seconds, interrupted=True)
        self._epoch += 1
        i = self._epoch - 1
        loss = float(self._loss[i])
        if np.isfinite(loss):
            batch = loss * np.exp(self._rng.normal(0.0, self._noise, self._n_batch))
        else:
            batch = np.full(self._n_batch, np.inf)
            batch[: self._rng.integers(0, self._n_batch)] = float(self._loss[i - 1]) if i else 2.3
        return EpochReport(self._epoch, loss, batch, float(self._acc[i]), self._sec,
                           diverged=not np.isfinite(loss))


class SurrogateBackend(Backend):
    """Backend that simulates training with the calibrated surrogate (see module docstring).

    Arguments: `params` (a `SurrogateParams`, a path to a parameter file, or None for the
    calibrated file shipped with the package), `max_curve_epochs` (epochs simulated at a run's
    start; longer runs draw more as needed).
    """

    name = "surrogate"
    deterministic = True

    def __init__(self, params: SurrogateParams | str | Path | None = None,
                 n_batch_losses: int = 16) -> None:
        if params is None or isinstance(params, str | Path):
            params = SurrogateParams.load(params or PARAMS_FILE)
        self.params = params
        self.n_batch_losses = n_batch_losses

    def describe(self) -> dict[str, Any]:
        return {"backend": self.name, "surrogate_version": self.params.version}

    def start(self, config: Config, rng: np.random.Generator) -> Run:
        curves = simulate(config_arrays([config]), config.epochs, rng, self.params)
        return SurrogateRun(curves, 0, config.epochs, config.batch_size, self.n_batch_losses,
                            rng, failed=optimizer_rejection(config) or "")

    def final_test(self, config: Config, rng: np.random.Generator, repeats: int) -> FinalResult:
        return final_test_batch([config], rng, repeats, self.params)[0]


def final_test_batch(configs: Sequence[Config], rng: np.random.Generator, repeats: int,
                     params: SurrogateParams) -> list[FinalResult]:
    """The final protocol for many configurations at once: `repeats` retrainings each."""
    arrays = config_arrays([c for c in configs for _ in range(repeats)])
    n_epochs = max(c.epochs for c in configs)
    curves = simulate(arrays, n_epochs, rng, params, n_train=params.n_final)
    last = np.repeat([c.epochs - 1 for c in configs], repeats)
    rows = np.arange(len(last))
    test = curves.val_accuracy[rows, last].reshape(len(configs), repeats)
    diverged = (curves.diverge_epoch > 0).reshape(len(configs), repeats).any(axis=1)
    seconds = (curves.seconds_per_epoch * (last + 1)).reshape(len(configs), repeats).sum(axis=1)
    results = []
    for i, config in enumerate(configs):
        accs = test[i] if not optimizer_rejection(config) else np.full(repeats, CHANCE)
        results.append(FinalResult(tuple(float(x) for x in accs), bool(diverged[i]),
                                   float(seconds[i])))
    return results
