"""A fast, seeded surrogate of SqueezeNet-on-Imagenette training, calibrated on the study's logs.

The model is structural: every configuration is mapped to a few interpretable quantities (a
step size, the probabilities of collapse and divergence, a learning rate per epoch, a ceiling,
seconds per epoch); `experiments.calibrate_surrogate` fits only the constants in
`SurrogateParams`, by maximum likelihood with weak priors centred on the defaults below. All
logarithms are base 10. The assumptions, from PyTorch's optimizer semantics and the study's
training code (data/study/README.md):

1. **Step size.** Each configuration gets a log step size `u` in its optimizer's own units.
   SGD's and RMSprop's heavy-ball momentum multiplies the step by 1/(1 - momentum). Adam and
   RMSprop divide the gradient by sqrt(v) + eps, with v ~ s^2 (s = `10^eps_scale`, a typical
   per-parameter gradient size): `u -= log(1 + eps / s)`, so an eps far above s turns them
   into SGD with rate lr / eps. RMSprop with alpha = 1 never updates v (v = 0): its step is
   lr * g / eps. Adadelta's first steps are lr * sqrt(eps) * g / sqrt(g^2 + eps), so its `u`
   moves with sqrt(eps) while eps << s^2 and it becomes SGD with rate lr for eps >> s^2 (`u`
   is relative to the default eps 1e-6). Adagrad's initial accumulator damps the step by
   sqrt(1 + initial_accumulator_value / (steps per epoch * s^2)). mse on one-hot targets has
   gradients `10^mse_grad` times those of cross-entropy: it shrinks SGD's and ASGD's step and
   the `s` of the adaptive denominators, not the normalized steps themselves.
2. **Schedules.** ASGD (t0 = 1e6, so plain SGD here) scales its step by
   (1 + lambd * lr * t)^-alpha after t steps; Adagrad's accumulated squared gradients shrink
   its step as 1 / sqrt(1 + t), and lr_decay by a further 1 / (1 + lr_decay * t). A run's
   progress counts *effective epochs*: epochs times the mean step factor so far. Its risk uses
   the mean factor of the first epoch. (`center` and `base_rate` of Adagrad refer to its
   first step.)
3. **Distance to the good range.** `z = u - center[optimizer]`; `center` is the optimizer's
   good log learning rate (batch 64, default eps, no momentum). Smaller batches add gradient
   noise: the risk distance is `z_risk = z + batch_noise * log(64 / batch_size)`. Above the
   range a run collapses to chance (dead ReLUs, constant outputs) when z_risk passes its own
   threshold ~ N(z_stuck, w_stuck) (for mse `mse_stuck` higher: outputs pulled towards
   [0, 1] keep logits small), unless it is among the share `survive` of runs that train
   anyway (as a few did in the logs); it turns NaN when z_risk passes a threshold
   ~ N(z_div, w_div), where z_div moves from `z_div_sgd` to the higher `z_div_adaptive` as
   the optimizer normalizes its steps (eps << s; normalized steps are bounded by lr). Hard
   divergences:
   momentum >= 1 (SGD, RMSprop), RMSprop alpha > 1 (square root of a negative average),
   ASGD's (1 + lambd * lr * t) turning negative, and SGD/ASGD weight decay with
   lr * weight_decay >= 2 (1 + momentum) (the shrink factor overshoots). A diverging run
   turns NaN in epoch k ~ Geometric(`div_hazard`) (epoch 1 for hard divergences).
4. **Learning curve.** A run that neither collapses nor diverges has validation accuracy
   0.1 + (top - 0.1) * (1 - exp(-x^curve_shape)), x = rate * effective epochs (a stretched
   exponential: fast early progress, slow approach to the top), with
   rate = base_rate[optimizer] * 10^(slope * min(z, 0)) * (steps per epoch / steps at batch
   64)^steps_power (a smooth min: below the range, progress slows with the step).
   top = 0.1 + (ceiling - 0.1) * f_wd * f_batch * f_edge: `ceiling` (cross-entropy, nll) or
   `mse_ceiling`; f_wd = sigmoid(-(log wd - wd_mid) / wd_width), with ASGD's lambd added to
   wd and wd measured against the loss's gradient scale (mse: wd / 10^mse_grad); f_batch =
   exp(-large_batch * softplus(log2(batch_size / 256))); f_edge = 1 - edge_drop *
   sigmoid((z_risk - z_edge) / w_edge): runs just below the collapse edge train unstably and
   plateau lower. Each run (seed) has its own luck: its rate times exp(N(0, luck_rate)) and
   its gain (top - 0.1) plus N(0, luck_sd). These are set, not fitted: repeated
   configurations in the logs spread by about the 500-image measurement noise alone (pooled
   sd 0.021), so seed-to-seed spread is small; the calibration fits the model's own error
   separately (`calibration["misfit_*"]`) and the simulator does not replay it.
5. **Losses.** nll is log-softmax + NLL, the same function as cross_entropy: it is simulated
   with identical numbers. l1 of non-negative outputs against one-hot targets drives all
   outputs to zero: it always collapses (every l1 run in the logs ended at chance). The
   training loss falls from its chance value (ln 10 for cross-entropy) as the accuracy rises;
   per batch it has log-normal noise that shrinks with the batch size; a diverged run reports
   inf.
6. **Measurement.** Accuracy is measured on 500 images: Binomial(500, accuracy) / 500. A
   network that has learned little still predicts a single class and scores exactly 0.100: a
   run that has gained a share L of the learnable accuracy does so with probability
   chance_exact * exp(-L / plateau) (a collapsed run: chance_exact; a diverged one: always).
7. **Cost.** Data loading and GPU compute overlap, so seconds per epoch are a soft maximum:
   (t_load^k + (t_step * steps)^k)^(1/k), k = `t_pipe`, with t_load proportional to the
   training images; a run also pays `t_start` seconds at its start; each run's seconds carry
   a log-normal factor exp(N(0, time_sd)). A diverging run stops part-way through its NaN
   epoch. Batches above `max_batch_size` ran out of GPU memory in the study (sizes >= 5000
   never started): such runs fail, as do values PyTorch refuses.
8. **Final protocol.** The final configuration is retrained on train+validation (`n_final`
   images) `repeats` times, each with its own draws of luck, collapse and divergence, and
   tested on 500 images (a diverged or failed retraining scores chance).

Not modelled (second order and absent from the logs): Adam's beta1/beta2 within PyTorch's valid
range, Adadelta's rho, RMSprop's alpha below 1, Adagrad's own 1/sqrt(t) decay (absorbed in its
constants), overfitting of very long runs, fluctuation between epochs beyond measurement noise.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
from scipy.special import ndtr

from envs.backend import Backend, Run
from envs.space import LOSSES, OPTIMIZERS, Config, config_arrays, optimizer_rejection
from envs.trials import EpochReport, FinalResult

PARAMS_FILE = Path(__file__).with_name("surrogate_params.json")
CHANCE = 0.1
N_EVAL = 500
DEFAULT_EPS = 1e-6
CHUNK_EPOCHS = 64  # epochs a surrogate run simulates at a time
_OPT = {name: i for i, name in enumerate(OPTIMIZERS)}
_LOSS = {name: i for i, name in enumerate(LOSSES)}
_SGD, _ASGD, _ADAGRAD = _OPT["sgd"], _OPT["averaged_sgd"], _OPT["adagrad"]
_RMSPROP, _ADADELTA, _ADAM = _OPT["rmsprop"], _OPT["adadelta"], _OPT["adam"]


def _per_optimizer(values: dict[str, float]) -> dict[str, float]:
    return {name: float(values[name]) for name in OPTIMIZERS}


@dataclass
class SurrogateParams:
    """The surrogate's constants; the defaults are the semantic priors of the calibration."""

    center: dict[str, float] = field(default_factory=lambda: _per_optimizer(
        {"sgd": -1.5, "averaged_sgd": -1.5, "adagrad": -2.0, "rmsprop": -3.7,
         "adadelta": -0.5, "adam": -3.5}))
    # per effective epoch at batch 64; Adagrad's effective epochs count its shrinking steps
    # (about 1/8 of a first-step epoch in its first epoch), hence its larger prior
    base_rate: dict[str, float] = field(default_factory=lambda: _per_optimizer(
        {"sgd": 0.25, "averaged_sgd": 0.25, "adagrad": 2.0, "rmsprop": 0.25,
         "adadelta": 0.25, "adam": 0.25}))
    slope: float = 1.0
    curve_shape: float = 0.7
    z_stuck: float = 0.7
    w_stuck: float = 0.4
    survive: float = 0.02
    z_div_sgd: float = 1.2
    z_div_adaptive: float = 3.0
    w_div: float = 0.3
    div_hazard: float = 0.7
    batch_noise: float = 0.4
    steps_power: float = 0.5
    mse_grad: float = -0.7
    mse_stuck: float = 0.5
    eps_scale: float = -3.0
    ceiling: float = 0.78
    mse_ceiling: float = 0.72
    wd_mid: float = -2.0
    wd_width: float = 0.3
    large_batch: float = 0.05
    edge_drop: float = 0.1
    z_edge: float = 0.5
    w_edge: float = 0.3
    luck_sd: float = 0.015
    luck_rate: float = 0.1
    chance_exact: float = 0.8
    plateau: float = 0.05
    t_start: float = 4.0
    t_load: float = 4.9
    t_step: float = 0.022
    t_pipe: float = 2.0
    time_sd: float = 0.1
    n_train: int = 13_000
    n_final: int = 13_500
    max_batch_size: int = 2048
    version: str = "prior"
    fitted_on: dict[str, int] = field(default_factory=dict)
    #: calibration-data setup and cross-validation figures (not used by the model)
    calibration: dict[str, float] = field(default_factory=lambda: {
        "random_search_n_train": 13_000.0, "random_search_t_start": 4.0, "misfit_sd": 0.03,
        "misfit_rate": 0.3})
    notes: str = ""

    @classmethod
    def load(cls, path: str | Path = PARAMS_FILE) -> SurrogateParams:
        data = json.loads(Path(path).read_text())
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def save(self, path: str | Path = PARAMS_FILE) -> None:
        Path(path).write_text(json.dumps(asdict(self), indent=2) + "\n")

    def digest(self) -> str:
        """Short hash of every constant: identifies the exact parameters behind a result."""
        text = json.dumps(asdict(self), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:12]


@dataclass(frozen=True)
class Components:
    """Deterministic per-configuration quantities (arrays of length n)."""

    z: np.ndarray  # risk distance to the good range (assumption 3)
    p_diverge: np.ndarray
    p_stuck: np.ndarray
    rate: np.ndarray  # per effective epoch
    ceiling: np.ndarray  # `top` of assumption 4, before luck
    sec_per_epoch: np.ndarray
    failed: np.ndarray  # ran out of GPU memory
    start_seconds: np.ndarray
    hazard: np.ndarray  # per-epoch probability that a diverging run turns NaN
    steps: np.ndarray  # optimizer steps per epoch
    decay_c: np.ndarray  # schedule (1 + decay_c * t)^-decay_alpha (assumption 2)
    decay_alpha: np.ndarray
    accumulate: np.ndarray  # Adagrad: steps shrink as 1 / sqrt(1 + t)
    shape: float  # exponent of the learning curve in training time


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def _softplus(x: np.ndarray) -> np.ndarray:
    return np.logaddexp(0.0, x)


def _lookup(table: dict[str, float], index: np.ndarray) -> np.ndarray:
    return np.array([table[name] for name in OPTIMIZERS])[index]


def _log1p_ratio(x: np.ndarray) -> np.ndarray:
    """log(1 + x) / x, 1 at x = 0 (x > -1)."""
    small = np.abs(x) < 1e-8
    safe = np.where(small, 1.0, x)
    return np.where(small, 1.0 - x / 2.0, np.log1p(safe) / safe)


def _expm1_ratio(y: np.ndarray) -> np.ndarray:
    """(exp(y) - 1) / y, 1 at y = 0."""
    small = np.abs(y) < 1e-8
    safe = np.where(small, 1.0, np.minimum(y, 700.0))
    return np.where(small, 1.0 + y / 2.0, np.expm1(safe) / safe)


def mean_factor(c: np.ndarray, alpha: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Mean of (1 + c * s)^-alpha over s in [0, t]: the schedule's average step factor."""
    x = np.maximum(c * t, -1.0 + 1e-12)
    log_base = np.log1p(x)
    return _expm1_ratio((1.0 - alpha) * log_base) * _log1p_ratio(x)


def schedule_mean(c: np.ndarray, alpha: np.ndarray, accumulate: np.ndarray,
                  t: np.ndarray) -> np.ndarray:
    """Mean step factor over the first t steps (assumption 2); Adagrad's 1/sqrt(1 + t)
    accumulator multiplies its lr_decay schedule (product of the two means)."""
    m = mean_factor(c, alpha, t)
    return np.where(accumulate, m * mean_factor(np.ones_like(m), np.full_like(m, 0.5), t), m)


@dataclass(frozen=True)
class _Kind:
    """Boolean masks of the optimizers and losses of each configuration."""

    sgd: np.ndarray
    asgd: np.ndarray
    adagrad: np.ndarray
    rmsprop: np.ndarray
    adadelta: np.ndarray
    adam_like: np.ndarray  # adam and rmsprop
    heavy: np.ndarray  # heavy-ball momentum: sgd and rmsprop
    sgd_like: np.ndarray  # sgd and averaged_sgd
    mse: np.ndarray
    l1: np.ndarray

    @classmethod
    def of(cls, a: dict[str, np.ndarray]) -> _Kind:
        opt, loss = a["optimizer"], a["loss"]
        sgd, asgd, rms = opt == _SGD, opt == _ASGD, opt == _RMSPROP
        return cls(sgd, asgd, opt == _ADAGRAD, rms, opt == _ADADELTA, (opt == _ADAM) | rms,
                   sgd | rms, sgd | asgd, loss == _LOSS["mse"], loss == _LOSS["l1"])


def _adaptive_shift(a: dict[str, np.ndarray], k: _Kind, log_s: np.ndarray, steps: np.ndarray
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Step-size shift of the adaptive optimizers and how normalized their steps are (0-1)."""
    s = 10.0 ** log_s
    eps = np.maximum(np.abs(a["eps"]), 1e-30)
    den = np.where(k.rmsprop & (a["alpha"] >= 1.0), 0.0, s)  # alpha = 1: v stays 0
    s2 = s * s

    def adadelta(e: np.ndarray | float) -> np.ndarray:
        return 0.5 * np.log10(e) + log_s - 0.5 * np.log10(s2 + e)

    ratio = np.maximum(a["initial_accumulator_value"], 0.0) / (steps * s2)
    shift = np.where(k.adam_like, -np.log10((den + eps) / s),
                     np.where(k.adadelta, adadelta(eps) - adadelta(DEFAULT_EPS),
                              np.where(k.adagrad, -0.5 * np.log10(1.0 + ratio), 0.0)))
    nu = np.where(k.adam_like, den / (den + eps),
                  np.where(k.adadelta, s2 / (s2 + eps),
                           np.where(k.adagrad, 1.0 / (1.0 + ratio), 0.0)))
    return shift, nu


def _schedule(a: dict[str, np.ndarray], k: _Kind) -> tuple[np.ndarray, np.ndarray]:
    """(c, alpha) of each run's step schedule (1 + c t)^-alpha (assumption 2)."""
    c = np.where(k.asgd, a["lambd"] * a["lr"], np.where(k.adagrad, a["lr_decay"], 0.0))
    return c, np.where(k.asgd, a["alpha"], np.where(k.adagrad, 1.0, 0.0))


def _hard_divergence(a: dict[str, np.ndarray], k: _Kind, c: np.ndarray, m1: np.ndarray,
                     steps: np.ndarray) -> np.ndarray:
    """Runs that must turn NaN at once (assumption 3)."""
    mom = a["momentum"]
    wd = a["weight_decay"] + np.where(k.asgd, a["lambd"], 0.0)
    unstable_wd = k.sgd_like & (a["lr"] * m1 * wd >= 2.0 * (1.0 + np.where(k.sgd, mom, 0.0)))
    negative_base = k.asgd & (1.0 + c * steps * a["epochs"] <= 0.0)
    return (k.heavy & (mom >= 1.0)) | (k.rmsprop & (a["alpha"] > 1.0)) | unstable_wd \
        | negative_base


def step_size(a: dict[str, np.ndarray], p: SurrogateParams, steps: np.ndarray,
              k: _Kind | None = None) -> tuple[np.ndarray, np.ndarray]:
    """log effective step `u` and degree of normalization `nu` (assumption 1)."""
    k = k or _Kind.of(a)
    u = np.log10(np.maximum(a["lr"], 1e-30))
    u = u - np.where(k.heavy, np.log10(1.0 - np.clip(a["momentum"], 0.0, 0.999999)), 0.0)
    log_s = p.eps_scale + np.where(k.mse, p.mse_grad, 0.0)  # typical gradient size
    shift, nu = _adaptive_shift(a, k, log_s, steps)
    return u + shift + np.where(k.sgd_like & k.mse, p.mse_grad, 0.0), nu


def _ceiling(a: dict[str, np.ndarray], k: _Kind, p: SurrogateParams, bs: np.ndarray,
             z_risk: np.ndarray) -> np.ndarray:
    """`top` of assumption 4 (before luck)."""
    wd = a["weight_decay"] + np.where(k.asgd, a["lambd"], 0.0)
    wd_log = np.log10(np.maximum(wd, 1e-12)) - np.where(k.mse, p.mse_grad, 0.0)
    factor = _sigmoid(-(wd_log - p.wd_mid) / p.wd_width)
    factor = factor * np.exp(-p.large_batch * _softplus(np.log2(bs / 256.0)))
    factor = factor * (1.0 - p.edge_drop * _sigmoid((z_risk - p.z_edge) / p.w_edge))
    return CHANCE + (np.where(k.mse, p.mse_ceiling, p.ceiling) - CHANCE) * factor


def seconds_per_epoch(bs: np.ndarray, p: SurrogateParams,
                      n_train: float | np.ndarray) -> np.ndarray:
    """Soft maximum of loading and compute time per epoch (assumption 7)."""
    steps = np.maximum(n_train / bs, 1.0)
    load = p.t_load * n_train / p.n_train
    k = p.t_pipe
    return (load ** k + (p.t_step * steps) ** k) ** (1.0 / k)


def components(a: dict[str, np.ndarray], p: SurrogateParams,
               n_train: float | np.ndarray | None = None) -> Components:
    """Deterministic quantities of each configuration (assumptions 1-4 and 7).

    `n_train` (training images per epoch; scalar or per row) defaults to `p.n_train`.
    """
    n_train = p.n_train if n_train is None else n_train
    k = _Kind.of(a)
    opt = a["optimizer"]
    bs = a["batch_size"].astype(np.float64)
    steps = np.maximum(n_train / bs, 1.0)
    u, nu = step_size(a, p, steps, k)
    z = u - _lookup(p.center, opt)
    c, alpha = _schedule(a, k)
    m1 = schedule_mean(c, alpha, k.adagrad, steps)
    z_risk = z + np.log10(np.maximum(m1, 1e-300)) + p.batch_noise * np.log10(64.0 / bs)
    hard = _hard_divergence(a, k, c, m1, steps)
    z_div = nu * p.z_div_adaptive + (1.0 - nu) * p.z_div_sgd
    p_div = np.where(hard, 1.0, ndtr((z_risk - z_div) / p.w_div))
    stuck_at = p.z_stuck + np.where(k.mse, p.mse_stuck, 0.0)
    p_stuck = np.where(k.l1, 1.0, (1.0 - p.survive) * ndtr((z_risk - stuck_at) / p.w_stuck))
    smooth_min = -_softplus(-3.0 * z) / 3.0
    rate = _lookup(p.base_rate, opt) * 10.0 ** (p.slope * smooth_min)
    rate = rate * (steps / (p.n_train / 64.0)) ** p.steps_power
    spe = seconds_per_epoch(bs, p, n_train)
    hazard = np.where(hard, 1.0, p.div_hazard)
    top = _ceiling(a, k, p, bs, z_risk)
    return Components(z_risk, p_div, p_stuck, rate, top, spe,
                      bs > p.max_batch_size, np.full(len(z), p.t_start), hazard, steps, c, alpha,
                      k.adagrad, p.curve_shape)


def effective_epochs(c: Components, epochs: np.ndarray) -> np.ndarray:
    """Epochs times the schedule's mean step factor; `epochs` broadcasts against (n, 1)."""
    e = np.asarray(epochs, dtype=np.float64)
    out = np.broadcast_to(e, np.broadcast_shapes(e.shape, c.rate[:, None].shape)).copy()
    rows = np.flatnonzero((c.decay_c != 0.0) | c.accumulate)
    if rows.size:
        er = np.broadcast_to(e, out.shape)[rows]
        cc, aa, acc, ss = (x[rows, None] for x in (c.decay_c, c.decay_alpha, c.accumulate,
                                                      c.steps))
        out[rows] = er * schedule_mean(cc, aa, acc, er * ss)
    return out


def progress(c: Components, epochs: np.ndarray, rate_factor: np.ndarray | float = 1.0
             ) -> np.ndarray:
    """Share of the learnable accuracy a learning run has reached (shape (n, k)).

    A stretched exponential in training time: 1 - exp(-x^shape), x = rate * effective epochs.
    """
    rate = c.rate * rate_factor
    return -np.expm1(-(rate[:, None] * effective_epochs(c, epochs)) ** c.shape)


def expected_accuracy(c: Components, epochs: np.ndarray) -> np.ndarray:
    """Accuracy a learning (not collapsed, not diverged) run reaches after `epochs` epochs."""
    e = np.asarray(epochs, dtype=np.float64)
    return CHANCE + (c.ceiling - CHANCE) * progress(c, e.reshape(-1, 1))[:, 0]


@dataclass(frozen=True)
class Draws:
    """A run's own luck: collapse, divergence, luck, timing (arrays of length n)."""

    diverge_epoch: np.ndarray  # 1-based epoch whose loss is NaN; 0 = never
    diverge_fraction: np.ndarray  # share of that epoch trained before NaN
    stuck: np.ndarray
    plateau: np.ndarray  # uniform draw: the run predicts one class while below its plateau
    luck: np.ndarray  # added to the learnable gain
    rate_factor: np.ndarray  # multiplies the rate
    time_factor: np.ndarray


def draw(c: Components, rng: np.random.Generator, p: SurrogateParams) -> Draws:
    """Draw every run-level random quantity at once, in a fixed order."""
    n = len(c.z)
    u = rng.random((5, n))
    g = rng.standard_normal((3, n))
    diverged = u[0] < c.p_diverge
    log_keep = np.log1p(-np.minimum(c.hazard, 1.0 - 1e-12))
    epoch = 1 + np.floor(np.log(1.0 - u[1]) / log_keep)
    epoch = np.where(c.hazard >= 1.0, 1, np.minimum(epoch, 2**62)).astype(np.int64)
    return Draws(np.where(diverged, epoch, 0), u[4], u[2] < c.p_stuck, u[3],
                 p.luck_sd * g[0], np.exp(p.luck_rate * g[2]), np.exp(p.time_sd * g[1]))


def one_class(accuracy: np.ndarray, p: SurrogateParams) -> np.ndarray:
    """Probability that a run of this (true) accuracy still predicts a single class."""
    return p.chance_exact * np.exp(-(accuracy - CHANCE) / ((p.ceiling - CHANCE) * p.plateau))


def _chance_loss(loss: np.ndarray) -> np.ndarray:
    return np.select([loss <= _LOSS["nll"], loss == _LOSS["mse"]], [np.log(10.0), 0.1], 0.1)


def epoch_values(a: dict[str, np.ndarray], c: Components, d: Draws, epochs: np.ndarray,
                 rng: np.random.Generator, p: SurrogateParams) -> tuple[np.ndarray, np.ndarray]:
    """Measured accuracy and training loss at `epochs` (shape (1, k) or (n, 1)): (n, k) each."""
    e = np.asarray(epochs, dtype=np.float64)
    learned = np.where(d.stuck, 0.0, 1.0)[:, None] * progress(c, e, d.rate_factor)
    gain = np.maximum(c.ceiling - CHANCE + d.luck, 0.0)
    acc = CHANCE + gain[:, None] * learned
    after = (d.diverge_epoch[:, None] > 0) & (e >= d.diverge_epoch[:, None])
    measured = rng.binomial(N_EVAL, np.clip(acc, 0.0, 1.0)) / N_EVAL
    exact = after | (d.plateau[:, None] < one_class(acc, p))
    chance_loss = _chance_loss(a["loss"])[:, None]
    fit = np.clip((acc - CHANCE) / (0.8 - CHANCE), 0.0, 1.0)
    loss = chance_loss * (1.0 - 0.85 * fit)
    return np.where(exact, CHANCE, measured), np.where(after, np.inf, loss)


@dataclass(frozen=True)
class Curves:
    """Simulated runs: arrays of shape (n, E) for per-epoch values, (n,) otherwise."""

    val_accuracy: np.ndarray
    train_loss: np.ndarray
    seconds_per_epoch: np.ndarray
    diverge_epoch: np.ndarray  # 1-based epoch whose loss is NaN; 0 = never
    stuck: np.ndarray
    start_seconds: np.ndarray
    failed: np.ndarray


def simulate(
    a: dict[str, np.ndarray], n_epochs: int, rng: np.random.Generator,
    p: SurrogateParams, n_train: float | np.ndarray | None = None,
) -> Curves:
    """Simulate `n_epochs` epochs of every configuration in `a` at once (vectorized)."""
    c = components(a, p, n_train)
    d = draw(c, rng, p)
    e = np.arange(1, n_epochs + 1, dtype=np.float64)[None, :]
    acc, loss = epoch_values(a, c, d, e, rng, p)
    return Curves(acc, loss, c.sec_per_epoch * d.time_factor, d.diverge_epoch, d.stuck,
                  c.start_seconds * d.time_factor, c.failed)


def failure(config: Config, p: SurrogateParams) -> str:
    """Why a run of `config` fails at its start ('' if it trains)."""
    if config.batch_size > p.max_batch_size:
        return (f"CUDA out of memory: batch_size={config.batch_size} does not fit the study's "
                f"GPU (at most about {p.max_batch_size} images of 128 px per batch)")
    return optimizer_rejection(config) or ""


class SurrogateRun(Run):
    """A surrogate run: its run-level luck is drawn at start, epochs in chunks as needed."""

    def __init__(self, arrays: dict[str, np.ndarray], c: Components, d: Draws, epochs: int,
                 n_batch: int, rng: np.random.Generator, p: SurrogateParams,
                 failed: str = "") -> None:
        self._a, self._c, self._d, self._p = arrays, c, d, p
        self._epochs, self._failed = epochs, failed
        self._sec = float(c.sec_per_epoch[0] * d.time_factor[0])
        self._start = float(c.start_seconds[0] * d.time_factor[0])
        self._div_epoch = int(d.diverge_epoch[0])
        self._noise = 0.6 / np.sqrt(float(arrays["batch_size"][0])) + 0.02
        self._rng, self._n_batch, self._epoch = rng, n_batch, 0
        self._chunk_start, self._acc, self._loss = 1, np.empty(0), np.empty(0)
        self._previous_loss = float(_chance_loss(arrays["loss"])[0])

    def _values(self, epoch: int) -> tuple[float, float]:
        i = epoch - self._chunk_start
        if not 0 <= i < len(self._acc):
            stop = min(epoch + CHUNK_EPOCHS, self._epochs + 1)
            e = np.arange(epoch, max(stop, epoch + 1), dtype=np.float64)[None, :]
            acc, loss = epoch_values(self._a, self._c, self._d, e, self._rng, self._p)
            self._chunk_start, self._acc, self._loss, i = epoch, acc[0], loss[0], 0
        return float(self._acc[i]), float(self._loss[i])

    def next_epoch(self, max_seconds: float = float("inf")) -> EpochReport:
        if self._failed:
            return EpochReport(self._epoch + 1, float("inf"), np.full(self._n_batch, np.inf),
                               CHANCE, 0.0, failed=self._failed)
        epoch = self._epoch + 1
        diverges = epoch == self._div_epoch
        fraction = float(self._d.diverge_fraction[0]) if diverges else 1.0
        seconds = self._sec * fraction + (self._start if epoch == 1 else 0.0)
        if seconds > max_seconds:
            return EpochReport(epoch, float("nan"), np.zeros(self._n_batch),
                               CHANCE, max_seconds, interrupted=True)
        self._epoch = epoch
        acc, loss = self._values(epoch)
        if diverges:
            batch = np.full(self._n_batch, np.inf)
            batch[: int(fraction * self._n_batch)] = self._previous_loss
            return EpochReport(epoch, loss, batch, acc, seconds, diverged=True)
        batch = loss * np.exp(self._rng.normal(0.0, self._noise, self._n_batch))
        self._previous_loss = loss
        return EpochReport(epoch, loss, batch, acc, seconds)


class SurrogateBackend(Backend):
    """Backend that simulates training with the calibrated surrogate (see module docstring).

    Arguments: `params` (a `SurrogateParams`, a path to a parameter file, or None for the
    calibrated file shipped with the package), `n_batch_losses` (per-epoch batch-loss sample).
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
        return {"backend": self.name, "surrogate_version": self.params.version,
                "surrogate_params_sha": self.params.digest()}

    def start(self, config: Config, rng: np.random.Generator) -> Run:
        arrays = config_arrays([config])
        c = components(arrays, self.params)
        d = draw(c, rng, self.params)
        return SurrogateRun(arrays, c, d, config.epochs, self.n_batch_losses, rng, self.params,
                            failed=failure(config, self.params))

    def final_test(self, config: Config, rng: np.random.Generator, repeats: int) -> FinalResult:
        return final_test_batch([config], rng, repeats, self.params)[0]


@dataclass(frozen=True)
class Outcomes:
    """The end of one run per configuration (arrays of length n)."""

    val_accuracy: np.ndarray  # at the last epoch; NaN when the run diverged or failed
    diverged: np.ndarray
    failed: np.ndarray
    seconds: np.ndarray


def run_outcomes(a: dict[str, np.ndarray], rng: np.random.Generator, p: SurrogateParams,
                 failed: np.ndarray | None = None,
                 n_train: float | np.ndarray | None = None) -> Outcomes:
    """Run every configuration to its planned end at once (what a session run reports)."""
    c = components(a, p, n_train)
    d = draw(c, rng, p)
    epochs = a["epochs"].astype(np.float64)
    acc, _ = epoch_values(a, c, d, epochs[:, None], rng, p)
    failed = c.failed if failed is None else (failed | c.failed)
    diverged = (d.diverge_epoch > 0) & (d.diverge_epoch <= epochs) & ~failed
    trained = np.where(diverged, d.diverge_epoch - 1 + d.diverge_fraction, epochs)
    seconds = (c.start_seconds + c.sec_per_epoch * trained) * d.time_factor
    val = np.where(diverged | failed, np.nan, acc[:, 0])
    return Outcomes(val, diverged, failed, np.where(failed, 0.0, seconds))


def final_test_batch(configs: Sequence[Config], rng: np.random.Generator, repeats: int,
                     params: SurrogateParams) -> list[FinalResult]:
    """The final protocol for many configurations at once: `repeats` retrainings each."""
    arrays = config_arrays([c for c in configs for _ in range(repeats)])
    failed = np.repeat([bool(failure(c, params)) for c in configs], repeats)
    out = run_outcomes(arrays, rng, params, failed, n_train=params.n_final)
    test = np.where(np.isnan(out.val_accuracy), CHANCE, out.val_accuracy)
    shape = (len(configs), repeats)
    test, diverged, seconds = test.reshape(shape), out.diverged.reshape(shape).any(axis=1), \
        out.seconds.reshape(shape).sum(axis=1)
    return [FinalResult(tuple(float(x) for x in test[i]), bool(diverged[i]), float(seconds[i]))
            for i in range(len(configs))]
