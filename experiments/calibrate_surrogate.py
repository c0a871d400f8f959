"""Fit the surrogate's constants to the study's logs by maximum likelihood (MAP, weak priors).

    python -m experiments.calibrate_surrogate --runs data/study/runs.tsv \
        [--random-search data/study/random_search.tsv] [--out envs/surrogate_params.json] [--seed 0]

Likelihood of each row under the model of `envs.surrogate` (assumption numbers there):
- completed: no divergence within its epochs, times a mixture of the collapsed component
  (exactly 0.100 with probability `chance_exact`, else Binomial(500, 0.1)) and the learning
  one (exactly 0.100 while it still predicts one class, else normal around the expected
  accuracy with binomial noise plus seed luck and the model's own error `misfit_sd` /
  `misfit_rate` (fitted here, not replayed by the simulator), with a 1 % uniform outlier
  share for robustness);
- `nan` (diverged): divergence within the epochs it ran (estimated from its seconds);
- cancelled: weak evidence (half weight) that it did not turn NaN in its first epoch;
- unfinished, and configurations that cannot start: no evidence.
Seconds: log-normal regression of time_taken_s of completed runs, fitted first. The random
search's own seconds imply its machine's start-up time and training-set size per epoch
(`calibration["random_search_*"]`), which its accuracy rows are then modelled with.
Priors: normal, centred on `SurrogateParams()`'s semantic defaults, on transformed scales
(log for positive constants, logit for shares); averaged_sgd shares SGD's constants.

Prints cross-validation against its targets: leave-one-server-out when the table has several
servers (fit on the others plus the random search, predict the held-out one; pooled), else a
seeded 5-fold split (real runs logged on one machine). Also a random search drawn from the grid of
random_search.tsv against the rows' own figures. The parameter file is versioned by a hash of
the input files (no dates), so reruns are reproducible.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table
from scipy import optimize, special, stats
from sklearn.metrics import roc_auc_score

from envs.space import NAMES, config_arrays, validate
from envs.surrogate import (
    CHANCE,
    N_EVAL,
    PARAMS_FILE,
    SurrogateParams,
    components,
    failure,
    one_class,
    progress,
    run_outcomes,
    seconds_per_epoch,
)
from experiments.study_data import (
    CANCELLED,
    COMPLETED,
    DIVERGED,
    RUNS_FILE,
    StudyRows,
    concat,
    load_study,
    read_table,
)

AT_CHANCE = 0.102  # validation accuracy counted as "at chance" (AUC target)
RS_CHANCE = 0.11  # the random search's "ended at chance" (79 % of its rows)
OUTLIER = 0.01
CANCEL_WEIGHT = 0.5
TARGETS = {"spearman": (">=", 0.85), "mae": ("<=", 0.08), "auc": (">=", 0.90),
           "seconds_mdape": ("<=", 0.25)}


@dataclass(frozen=True)
class Free:
    """One fitted constant: where it lives, its scale, its prior sd on that scale."""

    name: str  # attribute, or "attribute.optimizer" for per-optimizer tables
    scale: str  # "id", "log" or "logit"
    prior_sd: float
    ties: tuple[str, ...] = ()  # further names that take the same value


def _per(table: str, scale: str, sd: float, tie_asgd: bool = True) -> list[Free]:
    out = [Free(f"{table}.sgd", scale, sd, (f"{table}.averaged_sgd",) if tie_asgd else ())]
    return out + [Free(f"{table}.{name}", scale, sd)
                  for name in ("adagrad", "rmsprop", "adadelta", "adam")]


ACCURACY: tuple[Free, ...] = (
    *_per("center", "id", 0.5), *_per("base_rate", "log", 0.5),
    Free("slope", "log", 0.3), Free("curve_shape", "log", 0.3), Free("z_stuck", "id", 0.5),
    Free("w_stuck", "log", 0.5), Free("survive", "logit", 1.0),
    Free("z_div_sgd", "id", 0.5), Free("z_div_adaptive", "id", 0.5), Free("w_div", "log", 0.5),
    Free("div_hazard", "logit", 1.0), Free("batch_noise", "id", 0.2),
    Free("steps_power", "id", 0.25), Free("mse_grad", "id", 0.5), Free("mse_stuck", "id", 0.5),
    Free("eps_scale", "id", 0.75), Free("ceiling", "logit", 0.3),
    Free("mse_ceiling", "logit", 0.3), Free("wd_mid", "id", 0.5), Free("wd_width", "log", 0.4),
    Free("large_batch", "log", 1.0), Free("calibration.misfit_sd", "log", 1.0),
    Free("calibration.misfit_rate", "log", 1.0),
    Free("chance_exact", "logit", 1.0), Free("plateau", "log", 1.0),
    Free("edge_drop", "logit", 1.0), Free("z_edge", "id", 0.5), Free("w_edge", "log", 0.5),
)
TIME: tuple[Free, ...] = (
    Free("t_start", "log", 0.5), Free("t_load", "log", 0.5), Free("t_step", "log", 0.5),
    Free("t_pipe", "log", 0.5), Free("time_sd", "log", 0.7),
    Free("calibration.random_search_n_train", "log", 1.5),
    Free("calibration.random_search_t_start", "log", 2.0),
)
_TO = {"id": lambda x: x, "log": np.log, "logit": lambda x: np.log(x / (1.0 - x))}
_FROM = {"id": lambda y: y, "log": np.exp, "logit": lambda y: 1.0 / (1.0 + np.exp(-y))}


def _get(p: SurrogateParams, name: str) -> float:
    attr, _, key = name.partition(".")
    value = getattr(p, attr)
    return float(value[key] if key else value)


def _with(p: SurrogateParams, frees: Sequence[Free], theta: np.ndarray) -> SurrogateParams:
    """A copy of `p` with the free constants set from `theta` (transformed scale)."""
    changes: dict[str, object] = {attr: dict(getattr(p, attr))
                                  for attr in {f.name.partition(".")[0] for f in frees}
                                  if isinstance(getattr(p, attr), dict)}
    for free, y in zip(frees, theta, strict=True):
        value = float(_FROM[free.scale](y))
        for name in (free.name, *free.ties):
            attr, _, key = name.partition(".")
            if key:
                changes[attr][key] = value  # type: ignore[index]
            else:
                changes[attr] = value
    return replace(p, **changes)


def _theta(p: SurrogateParams, frees: Sequence[Free]) -> np.ndarray:
    return np.array([_TO[f.scale](_get(p, f.name)) for f in frees])


# ------------------------------------------------------------------------ likelihood
def setup(rows: StudyRows, p: SurrogateParams) -> tuple[np.ndarray, np.ndarray]:
    """Training images per epoch and start-up seconds of each row's machine.

    The random search's seconds, under the lab machines' cost model, imply its own (fitted)
    training-set size and start-up time.
    """
    rs = rows.source == "random_search"
    return (np.where(rs, p.calibration["random_search_n_train"], p.n_train),
            np.where(rs, p.calibration["random_search_t_start"], p.t_start))


@dataclass(frozen=True)
class Evidence:
    """What the study rows say, precomputed once per fit (likelihood inputs)."""

    rows: StudyRows
    epochs: np.ndarray  # planned
    epochs_run: np.ndarray  # before a NaN, from the run's seconds where recorded
    done: np.ndarray
    diverged: np.ndarray
    cancelled: np.ndarray
    val: np.ndarray
    at_chance: np.ndarray  # val is exactly 0.100
    binomial: np.ndarray  # Binomial(500, 0.1) probability of val

    @classmethod
    def of(cls, rows: StudyRows, p: SurrogateParams) -> Evidence:
        val = np.nan_to_num(rows.val_accuracy)
        k = np.rint(val * N_EVAL)
        epochs = rows.arrays["epochs"].astype(np.float64)
        spe = seconds_per_epoch(rows.arrays["batch_size"].astype(np.float64), p, p.n_train)
        from_time = np.ceil(np.maximum(rows.seconds - p.t_start, 0.0) / spe)
        epochs_run = np.where(np.isfinite(rows.seconds), np.clip(from_time, 1, epochs), epochs)
        return cls(rows, epochs, epochs_run, rows.outcome == COMPLETED,
                   rows.outcome == DIVERGED, rows.outcome == CANCELLED, val,
                   k == CHANCE * N_EVAL, stats.binom.pmf(k, N_EVAL, CHANCE))


@dataclass(frozen=True)
class Prediction:
    """Model quantities for rows at their planned epochs (a learning run: normal, mu, sd)."""

    p_div: np.ndarray
    p_stuck: np.ndarray
    mu: np.ndarray  # expected accuracy of a learning run
    sd: np.ndarray
    hazard: np.ndarray
    one_class: np.ndarray  # probability that a learning run still predicts one class
    chance_exact: float

    def no_divergence(self, epochs: np.ndarray) -> np.ndarray:
        keep = np.log1p(-np.minimum(self.hazard, 1 - 1e-12))
        return 1.0 - self.p_div * -np.expm1(epochs * keep)

    def expected(self) -> np.ndarray:
        """Expected measured accuracy of a completed run."""
        learned = self.one_class * CHANCE + (1.0 - self.one_class) * self.mu
        return self.p_stuck * CHANCE + (1.0 - self.p_stuck) * learned

    def pmf(self, ev: Evidence) -> np.ndarray:
        """Probability of each row's measured accuracy, given the run completed."""
        t = (ev.val - self.mu) / self.sd
        density = np.exp(-0.5 * t * t) / (np.sqrt(2 * np.pi) * self.sd)
        stuck = self.chance_exact * ev.at_chance + (1.0 - self.chance_exact) * ev.binomial
        learned = self.one_class * ev.at_chance + (1.0 - self.one_class) * (
            (1.0 - OUTLIER) * density / N_EVAL + OUTLIER / N_EVAL)
        return self.p_stuck * stuck + (1.0 - self.p_stuck) * learned

    def p_chance(self) -> np.ndarray:
        """Probability that a completed run measures at most AT_CHANCE."""
        exact = self.chance_exact
        stuck = exact + (1 - exact) * stats.binom.cdf(AT_CHANCE * N_EVAL, N_EVAL, CHANCE)
        low = special.ndtr((AT_CHANCE + 0.001 - self.mu) / self.sd)
        learned = self.one_class + (1.0 - self.one_class) * low
        return self.p_stuck * stuck + (1.0 - self.p_stuck) * learned


def predict(rows: StudyRows, p: SurrogateParams) -> Prediction:
    """Model quantities of `rows` at their planned epochs."""
    c = components(rows.arrays, p, setup(rows, p)[0])
    share = progress(c, rows.arrays["epochs"].astype(np.float64)[:, None])[:, 0]
    gain = c.ceiling - CHANCE
    mu = CHANCE + gain * share
    # d share / d log rate of 1 - exp(-x^shape) is shape * (1 - share) * x^shape
    luck_rate = np.hypot(p.luck_rate, p.calibration["misfit_rate"])
    luck_gain = np.hypot(p.luck_sd, p.calibration["misfit_sd"])
    speed = gain * p.curve_shape * (1.0 - share) * -np.log1p(-np.minimum(share, 1 - 1e-12)) \
        * luck_rate
    sd = np.sqrt(speed ** 2 + (luck_gain * share) ** 2 + mu * (1.0 - mu) / N_EVAL + 1e-6)
    return Prediction(c.p_diverge, c.p_stuck, mu, sd, c.hazard, one_class(mu, p),
                      p.chance_exact)


def accuracy_loglik(ev: Evidence, p: SurrogateParams) -> float:
    """Log likelihood of the outcomes and accuracies in `ev` (module docstring)."""
    pred = predict(ev.rows, p)
    completed = pred.pmf(ev) * pred.no_divergence(ev.epochs)
    nan = 1.0 - pred.no_divergence(ev.epochs_run)
    first = pred.no_divergence(np.ones(len(ev.epochs)))
    return float(np.sum(np.log(np.maximum(completed[ev.done], 1e-300)))
                 + np.sum(np.log(np.maximum(nan[ev.diverged], 1e-300)))
                 + CANCEL_WEIGHT * np.sum(np.log(np.maximum(first[ev.cancelled], 1e-300))))


def predicted_seconds(rows: StudyRows, p: SurrogateParams) -> np.ndarray:
    """Median seconds of each run trained to its planned epochs."""
    n_train, start = setup(rows, p)
    spe = seconds_per_epoch(rows.arrays["batch_size"].astype(np.float64), p, n_train)
    return start + rows.arrays["epochs"] * spe


def time_loglik(rows: StudyRows, p: SurrogateParams) -> float:
    """Log-normal likelihood of the seconds of completed runs."""
    log_pred = np.log(predicted_seconds(rows, p))
    return float(np.sum(stats.norm.logpdf(np.log(rows.seconds), log_pred, p.time_sd)))


def _fit(loglik: Callable[[SurrogateParams], float], p: SurrogateParams,
         frees: Sequence[Free]) -> SurrogateParams:
    """MAP estimate of `frees`, starting from `p` (priors centred on the defaults)."""
    prior = _theta(SurrogateParams(), frees)
    sd = np.array([f.prior_sd for f in frees])

    def objective(theta: np.ndarray) -> float:
        value = -loglik(_with(p, frees, theta)) + 0.5 * np.sum(((theta - prior) / sd) ** 2)
        return value if np.isfinite(value) else 1e12

    result = optimize.minimize(objective, _theta(p, frees), method="L-BFGS-B",
                               bounds=[(m - 5 * s, m + 5 * s) for m, s in zip(prior, sd,
                                                                                strict=True)],
                               options={"maxiter": 400, "maxfun": 40_000, "ftol": 1e-6})
    return _with(p, frees, result.x)


def _startable(rows: StudyRows, p: SurrogateParams) -> np.ndarray:
    return np.array([not failure(c, p) for c in rows.configs])


def _timed(rows: StudyRows) -> np.ndarray:
    return (rows.outcome == COMPLETED) & (rows.seconds > 0)


def fit(rows: StudyRows, p: SurrogateParams | None = None) -> SurrogateParams:
    """Fit cost, then accuracy and divergence, to `rows`."""
    p = p or SurrogateParams()
    timed = rows.subset(_timed(rows))
    p = _fit(lambda q: time_loglik(timed, q), p, TIME)
    evidence = Evidence.of(rows.subset(_startable(rows, p)), p)
    return _fit(lambda q: accuracy_loglik(evidence, q), p, ACCURACY)


# ------------------------------------------------------------------ cross-validation
def cv_folds(runs: StudyRows, seed: int, k: int = 5) -> tuple[np.ndarray, str]:
    """Fold label of every row: its server when the table has several (leave-one-server-out),
    else a seeded k-fold split (one machine, e.g. real runs logged by this project)."""
    if len(set(runs.server)) >= 2:
        return runs.server, "Leave-one-server-out"
    order = np.random.default_rng(seed).permutation(len(runs))
    folds = np.empty(len(runs), dtype=object)
    folds[order] = [f"fold{i % k}" for i in range(len(runs))]
    return folds, f"{k}-fold"


def cross_validate(runs: StudyRows, extra: StudyRows | None,
                   folds: np.ndarray | None = None) -> dict[str, float]:
    """Fit on all folds but one (+ `extra`), predict the held-out one; pooled metrics.
    Folds default to the servers (leave-one-server-out)."""
    folds = runs.server if folds is None else folds
    truth, guess, chance, p_chance, sec_true, sec_pred = [], [], [], [], [], []
    for fold in sorted(set(folds)):
        held = folds == fold
        train = runs.subset(~held) if extra is None else concat([runs.subset(~held), extra])
        p = fit(train)
        test = runs.subset(held & (runs.outcome == COMPLETED) & np.isfinite(runs.val_accuracy))
        test = test.subset(_startable(test, p))
        pred = predict(test, p)
        truth.append(test.val_accuracy)
        guess.append(pred.expected())
        chance.append(test.val_accuracy <= AT_CHANCE)
        p_chance.append(pred.p_chance())
        timed = runs.subset(held & _timed(runs))
        sec_true.append(timed.seconds)
        sec_pred.append(predicted_seconds(timed, p))
    t, g = np.concatenate(truth), np.concatenate(guess)
    st, sp = np.concatenate(sec_true), np.concatenate(sec_pred)
    return {"spearman": float(stats.spearmanr(t, g).statistic),
            "mae": float(np.mean(np.abs(t - g))),
            "auc": float(roc_auc_score(np.concatenate(chance), np.concatenate(p_chance))),
            "seconds_mdape": float(np.median(np.abs(sp - st) / st)),
            "n_accuracy": float(len(t)), "n_seconds": float(len(st))}


# --------------------------------------------------------------------- random search
def grid_of(path: str | Path) -> dict[str, list[str]]:
    """Each canonical field's observed values in a random-search file (empty = default)."""
    rows, _, _ = read_table(path)
    return {name: sorted({r[name] for r in rows if r.get(name, "").strip()})
            for name in NAMES if any(r.get(name, "").strip() for r in rows)}


def simulate_search(sample: Callable[[np.random.Generator], dict[str, object]], n: int,
                    rng: np.random.Generator, p: SurrogateParams,
                    n_train: float | None = None) -> np.ndarray:
    """Final validation accuracy of `n` sampled configurations (diverged/failed = chance)."""
    configs = [validate(sample(rng)) for _ in range(n)]
    failed = np.array([bool(failure(c, p)) for c in configs])
    out = run_outcomes(config_arrays(configs), rng, p, failed, n_train)
    return np.where(np.isnan(out.val_accuracy), CHANCE, out.val_accuracy)


def thesis_domain(rng: np.random.Generator) -> dict[str, object]:
    """A plausible restricted domain (the thesis does not specify its own)."""
    return {"optimizer": rng.choice(["sgd", "averaged_sgd", "adagrad", "rmsprop", "adadelta",
                                     "adam"]),
            "loss": rng.choice(["cross_entropy", "nll", "mse"]),
            "lr": 10 ** rng.uniform(-5, -1), "batch_size": int(rng.choice([16, 32, 64, 128, 256])),
            "epochs": int(rng.integers(10, 51)), "weight_decay": 10 ** rng.uniform(-6, -2),
            "momentum": rng.uniform(0, 0.95)}


def summary(vals: np.ndarray, batch: int) -> dict[str, float]:
    """Mean, sd, share at chance, and the median best of searches of `batch` runs."""
    best = vals[: len(vals) // batch * batch].reshape(-1, batch).max(axis=1)
    return {"mean": float(vals.mean()), "sd": float(vals.std(ddof=1)),
            "at_chance": float(np.mean(vals <= RS_CHANCE)), "best": float(np.median(best))}


# -------------------------------------------------------------------------- output
def _status(name: str, value: float) -> str:
    op, target = TARGETS[name]
    ok = value >= target if op == ">=" else value <= target
    return "[green]PASS[/]" if ok else "[red]FAIL[/]"


def cv_table(cv: dict[str, float], scheme: str = "Leave-one-server-out") -> Table:
    table = Table(title=f"{scheme} cross-validation (pooled; "
                        f"{cv['n_accuracy']:.0f} completed runs, {cv['n_seconds']:.0f} timed)")
    for column in ("metric", "value", "target", "status"):
        table.add_column(column)
    labels = {"spearman": "Spearman, val accuracy", "mae": "MAE, val accuracy",
              "auc": f"AUC, at chance (val <= {AT_CHANCE})",
              "seconds_mdape": "median abs % error, seconds"}
    for name, label in labels.items():
        op, target = TARGETS[name]
        table.add_row(label, f"{cv[name]:.3f}", f"{op} {target}", _status(name, cv[name]))
    return table


def search_table(results: list[tuple[str, dict[str, float]]]) -> Table:
    table = Table(title="Random search: simulated vs the study (best: median of searches "
                        "of the same size)")
    for column in ("", "mean", "sd", f"share <= {RS_CHANCE}", "best"):
        table.add_column(column)
    table.add_row("thesis: 320 runs, its restricted domain", "~0.42", "~0.25",
                  "most 0.1-0.2", "< 0.80")
    for label, r in results:
        table.add_row(label, *(f"{r[k]:.3f}" for k in ("mean", "sd", "at_chance", "best")))
    return table


def random_search_check(path: Path, rows: StudyRows, p: SurrogateParams, draws: int,
                        rng: np.random.Generator) -> Table:
    """Simulate searches over the grid of `path` (and a plausible restricted domain)."""
    grid = grid_of(path)

    def sample(g: np.random.Generator) -> dict[str, object]:
        return {k: g.choice(v) for k, v in grid.items()}

    own = p.calibration["random_search_n_train"]
    results = [("random_search.tsv rows", summary(rows.val_accuracy, len(rows))),
               (f"surrogate, same grid, the search's setup ({own:.0f} images/epoch)",
                summary(simulate_search(sample, draws, rng, p, own), len(rows))),
               (f"surrogate, same grid, the study's setup ({p.n_train} images/epoch)",
                summary(simulate_search(sample, draws, rng, p), len(rows))),
               ("surrogate, a plausible restricted domain (320 runs)",
                summary(simulate_search(thesis_domain, draws, rng, p), 320))]
    return search_table(results)


def _version(paths: Sequence[Path]) -> str:
    digest = hashlib.sha256(b"".join(Path(x).read_bytes() for x in paths)).hexdigest()[:10]
    return f"study-map-v2+{digest}"


def _rounded(p: SurrogateParams) -> SurrogateParams:
    def r(x: object) -> object:
        if isinstance(x, float):
            return float(f"{x:.6g}")
        return {k: r(v) for k, v in x.items()} if isinstance(x, dict) else x

    return replace(p, **{f.name: r(getattr(p, f.name)) for f in fields(p)})


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=Path, default=RUNS_FILE)
    parser.add_argument("--random-search", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=PARAMS_FILE)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--draws", type=int, default=20_480, help="simulated search runs")
    parser.add_argument("--skip-cv", action="store_true", help="fit only (no cross-validation)")
    args = parser.parse_args(argv)
    console = Console()
    runs = load_study(args.runs, "runs")
    extra = load_study(args.random_search, "random_search") if args.random_search else None
    parts = [runs] + ([extra] if extra is not None else [])
    params = fit(concat(parts))
    folds, scheme = cv_folds(runs, args.seed)
    cv = {} if args.skip_cv else cross_validate(runs, extra, folds)
    inputs = [args.runs] + ([args.random_search] if extra is not None else [])
    params = _rounded(replace(
        params, version=_version(inputs),
        fitted_on={Path(x).name: len(part) for x, part in zip(inputs, parts, strict=True)},
        calibration={**params.calibration, **{f"cv_{k}": v for k, v in cv.items()}},
        notes="MAP fit by experiments.calibrate_surrogate (see its docstring)"))
    params.save(args.out)
    console.print(f"fitted on {params.fitted_on} -> {args.out} (version {params.version})")
    if cv:
        console.print(cv_table(cv, scheme))
    if extra is not None:
        console.print(random_search_check(args.random_search, extra, params, args.draws,
                                          np.random.default_rng(args.seed)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
