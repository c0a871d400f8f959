"""Fit the persona mapping to the user study's logs and compare simulated with real sessions.

    python -m experiments.calibrate_personas --runs RUNS.tsv --users USERS.tsv \
        [--out agents/persona_params.json] [--figure FILE.png] [--seed 0] [--replicates 4]

1. Per experience group (G1 = 0 months, G2 = 1-9, G3 = more than 9), simple robust estimators
   read each behaviour off the logs (user-weighted shares: every participant counts once;
   medians for times and steps); a smooth curve in x = log1p(months) is fitted through the
   three group values by weighted least squares on the logit (probabilities), the log
   (positive quantities) or the log-ratios (softmax choices). See `agents.persona`.
2. The value distributions the heuristics draw from: guessed values (tag 1) per field, the
   values people said had worked for them (tag 3), the mandatory values of first
   configurations, and the mantissas people type; each distinct value counts once per person.
3. Early stopping cannot be read off the logs directly (a cancelled run's length is not
   logged): one simulation with every person watching gives the cancellations the stopping
   rules alone produce per group; the share of watchers and the rate of unexplained
   cancellations are set so that the simulated share of cancelled runs matches the logs.
4. A population drawn like the study's (its participants' months, `--replicates` sessions each)
   plays the surrogate's 120-minute `study` protocol; simulated and real statistics are printed
   side by side per group (rich tables) and drawn in a figure.

Participants with 90+ months and a high-school education (test accounts, see the study's
README) are left out unless `--keep-test-accounts` is given. The logs come from
github.com/anandkanav92/thesis-implementation (see data/study/README.md).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pandas as pd
from scipy.stats import spearmanr

import envs
from agents.persona import Persona
from agents.play import play
from envs.space import DEFAULTS, FLOAT_NAMES, NAMES, SPACE
from envs.space import fields_read_by as optimizer_fields
from envs.trials import STUDY_OUTCOME
from experiments.study_data import GROUPS, experience_group
from heuristics.defaults_first import MANDATORY
from heuristics.numbers import ORDINARY, PARAMS_FILE, is_extreme
from heuristics.past_experience import GOOD_LR, GOOD_PRIOR

CODES: tuple[int, ...] = (1, 2, 3, 4, 5)
SOURCE_CODES: tuple[int, ...] = (1, 2, 3, 5)
MAIN_FIELDS: tuple[str, ...] = ("epochs", "batch_size", "loss", "optimizer", "lr", "weight_decay")
CHANGE_FIELDS: tuple[str, ...] = (*MAIN_FIELDS, "specific")
NUMERIC: tuple[str, ...] = tuple(n for n in NAMES if SPACE[n].kind != "categorical")
BUDGET_S = 120 * 60.0
#: Behaviours the logs cannot identify (a cancelled run's length and the reasons for a run's
#: length are not logged): documented priors. Patience falls from 3 epochs (novice) to 1.5
#: (two years); the budget guard rises from 10 % to 80 %.
PRIORS: dict[str, dict[str, Any]] = {
    "patience": {"kind": "loglinear", "a": math.log(3.0),
                 "b": math.log(0.5) / math.log1p(24.0), "fitted": False},
    "budget_guard": {"kind": "logistic", "a": math.log(0.1 / 0.9),
                     "b": (math.log(0.8 / 0.2) - math.log(0.1 / 0.9)) / math.log1p(24.0),
                     "fitted": False},
}
FALLBACK: dict[str, float] = {"first_defaults": 0.6, "first_lr": 0.5, "first_lr_with": 0.8,
                              "react": 0.5, "learned": 0.3,
                              "extra_changes": 0.5, "base_best": 0.5, "extreme": 0.2,
                              "past_quality": 0.5, "lr_step": 1.0, "think_fraction": 0.03,
                              "cancelled": 0.2}


# --------------------------------------------------------------------------------- data
group_of = experience_group


def load_study(runs: str | Path, users: str | Path, keep_test_accounts: bool = False
               ) -> pd.DataFrame:
    """The runs table with each participant's months, group and session id, in order."""
    table = pd.read_csv(runs, sep="\t", dtype=str, keep_default_na=False)
    people = pd.read_csv(users, sep="\t", dtype=str, keep_default_na=False)
    people["experience_months"] = people["experience_months"].astype(float)
    if not keep_test_accounts:
        test = (people["experience_months"] >= 90) & (people["education"] == "high_school")
        people = people[~test]
    df = table.merge(people[["server", "user_id", "experience_months"]],
                     on=["server", "user_id"], how="inner")
    return tidy(df.assign(session=df["server"] + "/" + df["user_id"],
                          order=df["run_id"].astype(int)))


def tidy(df: pd.DataFrame) -> pd.DataFrame:
    """Typed columns (numbers and codes as floats, NaN when empty), sorted by session, order."""
    df = df.copy()
    for name in NUMERIC:
        df[name] = pd.to_numeric(df[name])
    for name in NAMES:
        df[f"why_{name}"] = pd.to_numeric(df[f"why_{name}"], errors="coerce")
    for name in ("val_accuracy", "time_taken_s"):
        df[name] = pd.to_numeric(df[name], errors="coerce")
    df["group"] = df["experience_months"].map(group_of)
    return df.sort_values(["session", "order"]).reset_index(drop=True)


def group_x(df: pd.DataFrame) -> dict[str, tuple[float, int]]:
    """Mean log1p(months) and number of participants per group."""
    people = df.groupby("session")[["experience_months", "group"]].first()
    return {g: (float(np.log1p(d["experience_months"]).mean()), len(d))
            for g, d in people.groupby("group")}


# ------------------------------------------------------------------------ set events
def set_events(df: pd.DataFrame) -> pd.DataFrame:
    """Every value a person set: all tagged fields of a first configuration, and every field
    that changed from the previous configuration (kind "first" or "change")."""
    rows = []
    for session, runs in df.groupby("session", sort=False):
        previous = None
        for _, run in runs.iterrows():
            names = _changed(previous, run) if previous is not None else [
                n for n in NAMES if not pd.isna(run[f"why_{n}"]) or n in MANDATORY]
            kind = "first" if previous is None else "change"
            rows += [(session, run["group"], kind, n, run[n], run[f"why_{n}"]) for n in names]
            previous = run
    return pd.DataFrame(rows, columns=["session", "group", "kind", "field", "value", "code"])


def _changed(before: pd.Series, after: pd.Series) -> list[str]:
    return [n for n in NAMES if before[n] != after[n]]


def user_share(frame: pd.DataFrame, indicator: pd.Series) -> dict[str, float]:
    """Per group, the mean over participants of each participant's share of `indicator`."""
    per_user = indicator.groupby([frame["group"], frame["session"]]).mean()
    return {g: float(per_user[g].mean()) if g in per_user.index.get_level_values(0) else math.nan
            for g in GROUPS}


def user_shares(frame: pd.DataFrame, column: str, categories: Sequence[Any]
                ) -> dict[str, dict[Any, float]]:
    """Per group, participant-averaged shares of each category of `column`."""
    shares = {c: user_share(frame, frame[column] == c) for c in categories}
    return {g: {c: shares[c][g] for c in categories} for g in GROUPS}


# ---------------------------------------------------------------------------- estimators
def estimate(df: pd.DataFrame) -> dict[str, Any]:
    """Per-group estimates of every fitted behaviour."""
    events = set_events(df)
    changes = events[events["kind"] == "change"]
    tagged = events[events["code"].isin(SOURCE_CODES)]
    return {
        "source": user_shares(tagged, "code", SOURCE_CODES),
        "learned": user_share(changes[changes["code"].notna()],
                              changes[changes["code"].notna()]["code"] == 4),
        "change_fields": user_shares(changes.assign(
            field=changes["field"].where(changes["field"].isin(MAIN_FIELDS), "specific")),
            "field", CHANGE_FIELDS),
        **first_config_estimates(df),
        **resubmission_estimates(df),
        "extreme": value_share(events, 1, lambda f, v: f in NUMERIC and is_extreme(f, v)),
        "past_quality": value_share(events, 3, _in_good_prior),
        "lr_step": _median_by_group(lr_steps(df)),
        "think_fraction": _median_by_group(think_fractions(df)),
        "cancelled": {g: float((d["outcome"] == "cancelled").mean())
                      for g, d in df.groupby("group")},
    }


def first_config_estimates(df: pd.DataFrame) -> dict[str, dict[str, float]]:
    first = df.groupby("session", sort=False).head(1)
    keeps = first_defaults(first, with_lr=False)
    kept, departed = first[keeps], first[~keeps]
    return {"first_defaults": user_share(first, keeps),
            "first_lr": user_share(kept, kept["lr"] != DEFAULTS["lr"]),
            "first_lr_with": user_share(departed, departed["lr"] != DEFAULTS["lr"])}


def first_defaults(first: pd.DataFrame, with_lr: bool) -> pd.Series:
    """Whether each configuration keeps every optional field its optimizer reads at its
    default (the learning rate included or not)."""
    def keeps(row: pd.Series) -> bool:
        names = [n for n in optimizer_fields(row["optimizer"]) if with_lr or n != "lr"]
        return all(row[n] == DEFAULTS[n] for n in names)
    return first.apply(keeps, axis=1).astype(bool)


def resubmission_estimates(df: pd.DataFrame) -> dict[str, dict[str, float]]:
    rows = []
    for _, runs in df.groupby("session", sort=False):
        rows += _resubmissions(runs)
    frame = pd.DataFrame(rows, columns=["session", "group", "n_changed", "closer_to_best",
                                        "reacted"])
    moved = frame[frame["n_changed"] > 0]
    decided = frame[frame["closer_to_best"].notna()]
    after_failure = frame[frame["reacted"].notna()]
    return {"extra_changes": user_share(moved, moved["n_changed"] - 1),
            "base_best": user_share(decided, decided["closer_to_best"].astype(bool)),
            "react": user_share(after_failure, after_failure["reacted"].astype(bool))}


def _resubmissions(runs: pd.DataFrame) -> list[tuple]:
    rows, best = [], None
    records = list(runs.iterrows())
    for (_, before), (_, after) in zip(records, records[1:], strict=False):
        if not pd.isna(before["val_accuracy"]) and (
                best is None or before["val_accuracy"] > best["val_accuracy"]):
            best = before
        to_last = len(_changed(before, after))
        closer = None
        if best is not None and best.name != before.name:
            to_best = len(_changed(best, after))
            closer = None if to_best == to_last else to_best < to_last
        reacted = _reacted(before, after) if _failed(before) else None
        rows.append((after["session"], after["group"], to_last, closer, reacted))
    return rows


def _failed(run: pd.Series) -> bool:
    """Diverged, or completed at chance."""
    return run["outcome"] == "nan" or (run["outcome"] == "completed"
                                       and run["val_accuracy"] <= 0.15)


def _reacted(before: pd.Series, after: pd.Series) -> bool:
    """Whether a resubmission changed what a failure points at: the learning rate, an l1/mse
    loss, or an extreme optimizer setting."""
    if after["lr"] != before["lr"]:
        return True
    if before["loss"] in ("l1", "mse") and after["loss"] != before["loss"]:
        return True
    return any(is_extreme(n, before[n]) and after[n] != before[n]
               for n in optimizer_fields(before["optimizer"]) if n not in ("lr", "weight_decay"))


def value_share(events: pd.DataFrame, code: int, test: Callable[[str, Any], bool]
                ) -> dict[str, float]:
    """Per group, the share of distinct values tagged `code` for which `test` holds."""
    values = distinct(events[events["code"] == code])
    hits = values.apply(lambda r: bool(test(r["field"], r["value"])), axis=1)
    return {g: float(hits[values["group"] == g].mean()) if (values["group"] == g).any()
            else math.nan for g in GROUPS}


def distinct(events: pd.DataFrame) -> pd.DataFrame:
    """Each (person, field, value) once."""
    return events.drop_duplicates(["session", "field", "value"])


def _in_good_prior(field: str, value: Any) -> bool:
    if field == "lr":
        return any(value == row[0] for rates in GOOD_LR.values() for row in rates)
    return any(value == row[0] for row in GOOD_PRIOR.get(field, []))


def lr_steps(df: pd.DataFrame) -> pd.DataFrame:
    """|log10| of every change of the learning rate."""
    ratio = df["lr"] / df.groupby("session")["lr"].shift()
    changed = ratio.notna() & (ratio != 1.0)
    return pd.DataFrame({"group": df["group"][changed],
                         "value": np.abs(np.log10(ratio[changed]))})


def think_fractions(df: pd.DataFrame) -> pd.DataFrame:
    """Per session, the share of the budget not spent training, per submission.

    Training time is the logged seconds; a cancelled run (not timed) counts two epochs at the
    seconds per epoch of its batch size (a line fitted to the completed runs)."""
    done = df[df["outcome"] == "completed"]
    seconds = done["time_taken_s"] / done["epochs"]
    design = np.c_[np.ones(len(done)), 1.0 / done["batch_size"]]
    coef = np.linalg.lstsq(design, seconds, rcond=None)[0]
    logged = df["time_taken_s"]
    guess = np.minimum(df["epochs"], 2) * (coef[0] + coef[1] / df["batch_size"])
    spent = logged.fillna(guess)
    per = df.assign(spent=spent).groupby("session").agg(
        group=("group", "first"), n=("order", "size"), spent=("spent", "sum"))
    per = per[per["n"] >= 2]
    value = (BUDGET_S - per["spent"]).clip(lower=0) / BUDGET_S / per["n"]
    return pd.DataFrame({"group": per["group"], "value": value})


def _median_by_group(frame: pd.DataFrame) -> dict[str, float]:
    return {g: float(frame[frame["group"] == g]["value"].median()) if (
        frame["group"] == g).any() else math.nan for g in GROUPS}


# ----------------------------------------------------------------------- smooth mapping
def fit_line(points: Mapping[str, float], xs: Mapping[str, tuple[float, int]],
             transform: Callable[[float], float], fallback: float) -> tuple[float, float]:
    """Weighted least squares line through transformed group values (a, b)."""
    usable = [(xs[g][0], transform(v), xs[g][1]) for g, v in points.items()
              if g in xs and not math.isnan(v)]
    if not usable:
        return transform(fallback), 0.0
    if len({x for x, _, _ in usable}) < 2:
        return float(np.average([y for _, y, _ in usable], weights=[w for *_, w in usable])), 0.0
    x, y, w = (np.array(c, dtype=np.float64) for c in zip(*usable, strict=True))
    b, a = np.polyfit(x, y, 1, w=np.sqrt(w))
    return float(a), float(b)


def logit(p: float) -> float:
    p = min(max(p, 0.02), 0.98)
    return math.log(p / (1 - p))


def logistic_curve(points: Mapping[str, float], xs: Mapping[str, tuple[float, int]],
                   fallback: float) -> dict[str, Any]:
    a, b = fit_line(points, xs, logit, fallback)
    return {"kind": "logistic", "a": a, "b": b, "fitted": True, "groups": dict(points)}


def loglinear_curve(points: Mapping[str, float], xs: Mapping[str, tuple[float, int]],
                    fallback: float) -> dict[str, Any]:
    a, b = fit_line(points, xs, lambda v: math.log(max(v, 1e-3)), fallback)
    return {"kind": "loglinear", "a": a, "b": b, "fitted": True, "groups": dict(points)}


def softmax_curve(points: Mapping[str, Mapping[Any, float]], xs: Mapping[str, tuple[float, int]]
                  ) -> dict[str, Any]:
    """Softmax of lines: log-ratios to the last category fitted per category."""
    categories = list(next(iter(points.values())))
    ref = categories[-1]
    a, b = {}, {}
    for c in categories:
        ratios = {g: _log_ratio(shares, c, ref) for g, shares in points.items()}
        a[str(c)], b[str(c)] = fit_line(ratios, xs, lambda v: v, 0.0) if c != ref else (0.0, 0.0)
    return {"kind": "softmax", "a": a, "b": b, "fitted": True,
            "groups": {g: {str(k): v for k, v in s.items()} for g, s in points.items()}}


def _log_ratio(shares: Mapping[Any, float], c: Any, ref: Any) -> float:
    if any(math.isnan(v) for v in shares.values()):
        return math.nan
    smooth = {k: v + 0.02 for k, v in shares.items()}
    return math.log(smooth[c] / smooth[ref])


def fit_mapping(targets: Mapping[str, Any], xs: Mapping[str, tuple[float, int]]
                ) -> dict[str, dict[str, Any]]:
    """Every behaviour's curve (the stopping pair is set later by `calibrate_stopping`)."""
    mapping = {name: softmax_curve(targets[name], xs) for name in ("source", "change_fields")}
    for name in ("first_defaults", "first_lr", "first_lr_with", "react", "learned", "base_best",
                 "extreme", "past_quality"):
        mapping[name] = logistic_curve(targets[name], xs, FALLBACK[name])
    for name in ("extra_changes", "lr_step", "think_fraction"):
        mapping[name] = loglinear_curve(targets[name], xs, FALLBACK[name])
    mapping |= {name: dict(spec) for name, spec in PRIORS.items()}
    mapping["watch"] = {"kind": "logistic", "a": 5.0, "b": 0.0, "fitted": False}
    mapping["whim"] = {"kind": "logistic", "a": -5.0, "b": 0.0, "fitted": False}
    return mapping


# ----------------------------------------------------------------- value distributions
def fit_values(df: pd.DataFrame) -> dict[str, Any]:
    """The distributions the heuristics draw values from."""
    events = set_events(df)
    guesses = distinct(events[events["code"] == 1])
    return {"guess": {n: _guess_distribution(n, guesses[guesses["field"] == n]["value"])
                      for n in NAMES},
            "mantissas": mantissas(guesses[guesses["field"].isin(NUMERIC)]["value"]),
            "past": {n: _table(distinct(events[events["code"] == 3]), n) for n in NAMES},
            "switch_to": _switches(distinct(events[events["code"] == 4])),
            "defaults_first": _first_picks(df)}


def _guess_distribution(name: str, values: pd.Series) -> dict[str, Any]:
    if SPACE[name].kind == "categorical":
        counts = values.value_counts()
        return {"kind": "categorical",
                "probs": {c: float(counts.get(c, 0) + 0.5) for c in SPACE[name].choices}}
    values = values.astype(float)
    positive = values[values > 0]
    ordinary = positive[[not is_extreme(name, v) for v in positive]]
    logs = np.log10(ordinary.to_numpy())
    if len(logs) >= 3:
        mu, sigma = float(np.median(logs)), max(float(np.std(logs)), 0.25)
    else:
        mu, sigma = _prior_magnitude(name), 0.5
    extremes = sorted({round(math.log10(v), 3) for v in positive if is_extreme(name, v)})
    return {"kind": "numeric", "mu": mu, "sigma": sigma,
            "p_zero": float((values == 0).mean()) if len(values) and name != "lr" else 0.0,
            "pow2": _pow2_share(values) if SPACE[name].kind == "int" else 0.0,
            "extremes": extremes}


def _prior_magnitude(name: str) -> float:
    default = DEFAULTS.get(name) or 0.0
    low, high = ORDINARY[name]
    return math.log10(default) if default > 0 else math.log10(max(low, 1e-4) * high) / 2


def _pow2_share(values: pd.Series) -> float:
    ints = values[values >= 16].astype(int)
    if not len(ints):
        return 0.0
    return float(np.mean([(v & (v - 1)) == 0 for v in ints]))


def mantissas(values: Iterable[float]) -> dict[str, float]:
    """Leading digits of the typed numbers (two significant digits), counted."""
    counts: dict[str, float] = {}
    for value in values:
        value = float(value)
        if value > 0:
            mantissa = round(value / 10 ** math.floor(math.log10(value)), 1)
            key = f"{mantissa:g}"
            counts[key] = counts.get(key, 0.0) + 1.0
    kept = {k: v for k, v in counts.items() if v >= 2}
    return kept or {"1": 1.0}


def _switches(learned: pd.DataFrame) -> dict[str, dict[str, float]]:
    """What people switched categories to when they had learned something (+0.5 each)."""
    return {name: {c: float((learned[learned["field"] == name]["value"] == c).sum() + 0.5)
                   for c in SPACE[name].choices} for name in ("loss", "optimizer")}


def _table(events: pd.DataFrame, name: str) -> list[list[Any]]:
    counts = events[events["field"] == name]["value"].value_counts()
    return [[_plain(name, v), float(c)] for v, c in counts.items()]


def _first_picks(df: pd.DataFrame) -> dict[str, list[list[Any]]]:
    first = df.groupby("session", sort=False).head(1)
    picks = {}
    for name in MANDATORY:
        values = first[name]
        if SPACE[name].kind != "categorical":
            values = values[[not is_extreme(name, v) for v in values]]
        counts = values.value_counts()
        picks[name] = [[_plain(name, v), float(c)] for v, c in counts.items()] or [
            [{"optimizer": "adam", "loss": "cross_entropy", "batch_size": 64,
              "epochs": 10}[name], 1.0]]
    return picks


def _plain(name: str, value: Any) -> Any:
    kind = SPACE[name].kind
    return int(value) if kind == "int" else (float(value) if name in FLOAT_NAMES else value)


# ---------------------------------------------------------------------- simulation
def simulate(params: Mapping[str, Any], months: Sequence[float], replicates: int, seed: int,
             env: gym.Env | None = None, behaviour: Mapping[str, Any] | None = None
             ) -> pd.DataFrame:
    """Play one surrogate 120-minute `study` session per (participant, replicate)."""
    env = env or gym.make(envs.ENV_ID, backend="surrogate", final_repeats=1)
    rows = []
    for i, m in enumerate(months):
        agent = Persona(m, params=params, behaviour=behaviour)
        for r in range(replicates):
            session_seed = seed * 1_000_003 + i * 1009 + r
            result = play(agent, env, session_seed)
            rows += [_sim_row(trial, f"sim{i}-{r}", m) for trial in result.history]
    return tidy(pd.DataFrame(rows))


def _sim_row(trial: Any, session: str, months: float) -> dict[str, Any]:
    row = trial.to_row()
    row.update(session=session, experience_months=months, order=trial.index,
               outcome=STUDY_OUTCOME[trial.outcome], time_taken_s=row["seconds"])
    return row


def calibrate_stopping(params: dict[str, Any], df: pd.DataFrame, targets: Mapping[str, Any],
                       xs: Mapping[str, tuple[float, int]], seed: int, env: gym.Env) -> None:
    """Set the `watch` and `whim` curves so that simulated cancellations match the logs.

    Two probes per group, everyone watching and nobody watching (no whims), give the cancelled
    share c1, c0 and runs per session R1, R0; the watcher share w solving
    (w R1 c1 + (1 - w) R0 c0) / (w R1 + (1 - w) R0) = goal is that group's value; a goal above
    c1 is met with whims on top of watching everyone."""
    months = df.groupby("session")["experience_months"].first().tolist()
    probes = [_cancel_profile(simulate(params, months, 2, seed + 1, env,
                                       {"watch": w, "whim": 0.0})) for w in (1.0, 0.0)]
    watch, whim = {}, {}
    for g in GROUPS:
        goal = targets["cancelled"].get(g, math.nan)
        (c1, r1), (c0, r0) = probes[0].get(g, (math.nan,) * 2), probes[1].get(g, (math.nan,) * 2)
        watch[g], whim[g] = _mixture(goal, c1, r1, c0, r0)
    params["mapping"]["watch"] = logistic_curve(watch, xs, 0.5)
    params["mapping"]["whim"] = logistic_curve(whim, xs, 0.1)
    params["mapping"]["watch"]["probes"] = {"all_watch": probes[0], "none_watch": probes[1]}


def _cancel_profile(sim: pd.DataFrame) -> dict[str, tuple[float, float]]:
    """Per group: share of cancelled runs and runs per session."""
    return {g: (float((d["outcome"] == "cancelled").mean()), float(d.groupby("session").size()
                                                                   .mean()))
            for g, d in sim.groupby("group")}


def _mixture(goal: float, c1: float, r1: float, c0: float, r0: float) -> tuple[float, float]:
    if any(math.isnan(v) for v in (goal, c1, r1, c0, r0)):
        return math.nan, math.nan
    if goal >= c1:
        return 1.0, (goal - c1) / max(1.0 - c1, 1e-9)
    if goal <= c0:
        return 0.0, 0.0
    w = r0 * (goal - c0) / (r1 * (c1 - goal) + r0 * (goal - c0))
    return w, 0.0


def fit(df: pd.DataFrame, seed: int = 0, env: gym.Env | None = None) -> dict[str, Any]:
    """The complete parameter set (mapping and value distributions) fitted to `df`."""
    env = env or gym.make(envs.ENV_ID, backend="surrogate", final_repeats=1)
    xs = group_x(df)
    targets = estimate(df)
    params: dict[str, Any] = {
        "version": "study-logs",
        "notes": "Fitted by experiments.calibrate_personas to the study's logs "
                 "(github.com/anandkanav92/thesis-implementation); x = log1p(months).",
        "groups": {g: {"x": xs[g][0], "participants": xs[g][1]} for g in xs},
        "mapping": fit_mapping(targets, xs), **fit_values(df)}
    calibrate_stopping(params, df, targets, xs, seed, env)
    return _jsonable(params)


def _jsonable(value: Any) -> Any:
    """`value` with NaN turned into None and numpy scalars into Python ones."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    return None if isinstance(value, float) and math.isnan(value) else value


# ------------------------------------------------------------------------- comparison
def summarize(df: pd.DataFrame) -> dict[str, dict[str, float]]:
    """The compared statistics per group (real and simulated tables alike)."""
    return {g: _group_stats(d) for g, d in df.groupby("group")}


def _group_stats(d: pd.DataFrame) -> dict[str, float]:
    sessions = d.groupby("session")
    runs = sessions.size()
    first = sessions.head(1)
    codes = pd.concat([d[f"why_{n}"] for n in NAMES]).dropna()
    stats = {"sessions": float(len(runs)), "runs/session mean": float(runs.mean()),
             "runs/session median": float(runs.median())}
    stats |= {f"{o} share": float((d["outcome"] == o).mean())
              for o in ("cancelled", "nan", "unfinished")}
    stats |= {f"code {c} share": float((codes == c).mean()) if len(codes) else math.nan
              for c in CODES}
    stats["first config defaults (lr aside)"] = float(first_defaults(first, False).mean())
    stats["first config all defaults"] = float(first_defaults(first, True).mean())
    stats |= {f"loss {v}": float((d["loss"] == v).mean()) for v in SPACE["loss"].choices}
    stats |= {f"optimizer {v}": float((d["optimizer"] == v).mean())
              for v in SPACE["optimizer"].choices}
    stats |= {f"lr q{int(q * 100)}": float(d["lr"].quantile(q)) for q in (0.1, 0.25, 0.5, 0.75,
                                                                         0.9)}
    stats["lr share >= 0.1"] = float((d["lr"] >= 0.1).mean())
    best = sessions["val_accuracy"].max()
    stats["best val acc mean"] = float(best.mean())
    stats["best val acc median"] = float(best.median())
    return stats


def print_comparison(real: Mapping[str, Mapping[str, float]],
                     sim: Mapping[str, Mapping[str, float]]) -> None:
    """A rich table: one row per statistic, real and simulated columns per group."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title="Personas vs the study's logs (real | sim) per experience group")
    table.add_column("statistic")
    for g in GROUPS:
        table.add_column(f"{g} real", justify="right")
        table.add_column(f"{g} sim", justify="right", style="cyan")
    keys = next(iter(real.values())).keys()
    for key in keys:
        cells = [_fmt(src.get(g, {}).get(key)) for g in GROUPS for src in (real, sim)]
        table.add_row(key, *cells)
    Console(width=140).print(table)


# The behaviours whose simulated group values must fall inside the real range, as
# (numerator, denominator) columns of `session_metrics`: shares pool runs (or values) over a
# group's sessions, like the comparison table; per-session quantities average over sessions.
CHECKED: dict[str, tuple[str, str]] = {
    "runs per session": ("runs", "one"),
    "cancelled share": ("cancelled", "runs"),
    "guess share": ("guesses", "codes"),
    "first config defaults": ("first_defaults", "one"),
}


def session_metrics(df: pd.DataFrame) -> pd.DataFrame:
    """One row per session: months, group, counts behind the checked behaviours, best val."""
    rows = []
    for session, d in df.groupby("session"):
        codes = pd.concat([d[f"why_{n}"] for n in NAMES]).dropna()
        rows.append({"session": session, "group": d["group"].iloc[0],
                     "months": float(d["experience_months"].iloc[0]), "one": 1.0,
                     "runs": float(len(d)), "cancelled": float((d["outcome"] == "cancelled").sum()),
                     "guesses": float((codes == 1).sum()), "codes": float(len(codes)),
                     "first_defaults": float(first_defaults(d.head(1), False).iloc[0]),
                     "best val acc": float(d["val_accuracy"].max())})
    return pd.DataFrame(rows)


def real_range(num: np.ndarray, den: np.ndarray, rng: np.random.Generator, draws: int = 2000,
               level: float = 0.95) -> tuple[float, float]:
    """Bootstrap interval (resampling participants) of sum(num) / sum(den) for one group."""
    pick = rng.integers(0, len(num), size=(draws, len(num)))
    values = num[pick].sum(axis=1) / np.maximum(den[pick].sum(axis=1), 1e-12)
    tail = (1.0 - level) / 2.0
    return float(np.quantile(values, tail)), float(np.quantile(values, 1.0 - tail))


def behaviour_check(real: pd.DataFrame, sim: pd.DataFrame, seed: int = 0
                    ) -> list[tuple[str, str, float, float, float, bool]]:
    """(behaviour, group, range low, range high, simulated value, inside) per check."""
    rng = np.random.default_rng(seed)
    real_m, sim_m = session_metrics(real), session_metrics(sim)
    rows = []
    for name, (num, den) in CHECKED.items():
        for g in GROUPS:
            r, s_ = real_m[real_m["group"] == g], sim_m[sim_m["group"] == g]
            low, high = real_range(r[num].to_numpy(), r[den].to_numpy(), rng)
            value = float(s_[num].sum() / max(s_[den].sum(), 1e-12))
            rows.append((name, g, low, high, value, low <= value <= high))
    return rows


def trends(sim: pd.DataFrame) -> dict[str, tuple[float, float, bool]]:
    """The study's analysis of experience, on the simulated sessions: Spearman correlation of
    months with the guess share (should fall) and the best validation accuracy (should rise);
    (rho, one-sided p for the stated direction, holds at p < 0.05)."""
    m = session_metrics(sim)
    guess = spearmanr(m["months"], m["guesses"] / m["codes"].clip(lower=1), alternative="less")
    best = spearmanr(m["months"], m["best val acc"].fillna(0.0), alternative="greater")
    return {"guess share falls with experience": (guess.statistic, guess.pvalue,
                                                  guess.statistic < 0 and guess.pvalue < 0.05),
            "best accuracy rises with experience": (best.statistic, best.pvalue,
                                                    best.statistic > 0 and best.pvalue < 0.05)}


def print_behaviour_check(real: pd.DataFrame, sim: pd.DataFrame, seed: int) -> bool:
    """A rich table of `behaviour_check` and `trends`; True when everything holds."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title="Simulated group values inside the real range (95% bootstrap interval "
                        "over the study's participants)")
    for column in ("behaviour", "group", "real range", "simulated", "status"):
        table.add_column(column)
    checks = behaviour_check(real, sim, seed)
    for name, g, low, high, value, ok in checks:
        table.add_row(name, g, f"{low:.3g} - {high:.3g}", f"{value:.3g}",
                      "[green]PASS[/]" if ok else "[red]FAIL[/]")
    directions = trends(sim)
    for name, (rho, p, ok) in directions.items():
        table.add_row(name, "all", "Spearman with months", f"rho {rho:.2f} (one-sided p {p:.2g})",
                      "[green]PASS[/]" if ok else "[red]FAIL[/]")
    Console(width=140).print(table)
    return all(c[-1] for c in checks) and all(d[-1] for d in directions.values())


def print_mapping(params: Mapping[str, Any]) -> None:
    """A rich table of the fitted behaviours at 0, 5 and 24 months."""
    from rich.console import Console
    from rich.table import Table

    from agents.persona import Behaviour

    presets = {"novice (0)": 0.0, "intermediate (5)": 5.0, "expert (24)": 24.0}
    table = Table(title="Persona mapping (behaviour at the presets' months)")
    table.add_column("behaviour")
    for label in presets:
        table.add_column(label, justify="right")
    rows = {label: Behaviour.at(m, params["mapping"]) for label, m in presets.items()}
    for name in next(iter(rows.values())).__dataclass_fields__:
        table.add_row(name, *[_fmt(getattr(b, name)) for b in rows.values()])
    Console(width=140).print(table)


def _fmt(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, Mapping):
        return " ".join(f"{k}:{v:.2f}" for k, v in value.items())
    if abs(value) >= 100 or value == int(value):
        return f"{value:.0f}" if abs(value) >= 100 else f"{value:g}"
    return f"{value:.3g}"


FIGURE_PANELS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("runs per session", ("runs/session mean", "runs/session median")),
    ("outcomes", ("cancelled share", "nan share", "unfinished share")),
    ("rationale codes", tuple(f"code {c} share" for c in CODES)),
    ("first configuration", ("first config defaults (lr aside)", "first config all defaults")),
    ("loss", tuple(f"loss {v}" for v in SPACE["loss"].choices)),
    ("optimizer", tuple(f"optimizer {v}" for v in SPACE["optimizer"].choices)),
    ("learning rate (log10 quantiles)", ("lr q10", "lr q25", "lr q50", "lr q75", "lr q90")),
    ("best validation accuracy", ("best val acc mean", "best val acc median", "lr share >= 0.1")),
)


def draw_figure(real: Mapping[str, Mapping[str, float]], sim: Mapping[str, Mapping[str, float]],
                path: str | Path) -> None:
    """Paired bars (real solid, simulated hatched) per group for every panel."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 4, figsize=(20, 8.5))
    colors = {"G1": "#d95f02", "G2": "#7570b3", "G3": "#1b9e77"}
    for ax, (title, keys) in zip(axes.flat, FIGURE_PANELS, strict=True):
        log = title.startswith("learning rate")
        width = 0.8 / (2 * len(GROUPS))
        for j, g in enumerate(GROUPS):
            for k, (src, hatch) in enumerate(((real, ""), (sim, "//"))):
                values = [src.get(g, {}).get(key, math.nan) for key in keys]
                values = [math.log10(v) if log and v and v > 0 else v for v in values]
                offset = (2 * j + k) * width - 0.4 + width / 2
                ax.bar(np.arange(len(keys)) + offset, values, width, color=colors[g],
                       hatch=hatch, edgecolor="black", linewidth=0.3,
                       label=f"{g} {'sim' if k else 'real'}")
        ax.set_title(title)
        ax.set_xticks(np.arange(len(keys)), [k.replace(" share", "") for k in keys],
                      rotation=30, ha="right", fontsize=8)
    axes.flat[0].legend(fontsize=7, ncols=2)
    fig.suptitle("Personas (hatched) vs the study's participants (solid) by experience group")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# --------------------------------------------------------------------------------- CLI
def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", default="data/study/runs.tsv")
    parser.add_argument("--users", default="data/study/users.tsv")
    parser.add_argument("--out", default=str(PARAMS_FILE))
    parser.add_argument("--figure", default=None, help="PNG file for the comparison figure")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--replicates", type=int, default=4,
                        help="simulated sessions per study participant")
    parser.add_argument("--keep-test-accounts", action="store_true")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    for path in (args.runs, args.users):
        if not Path(path).is_file():
            sys.exit(f"error: {path} does not exist (give --runs and --users)")
    df = load_study(args.runs, args.users, args.keep_test_accounts)
    env = gym.make(envs.ENV_ID, backend="surrogate", final_repeats=1)
    params = fit(df, args.seed, env)
    Path(args.out).write_text(json.dumps(params, indent=1) + "\n")
    months = df.groupby("session")["experience_months"].first().tolist()
    sim = simulate(params, months, args.replicates, args.seed, env)
    real_stats, sim_stats = summarize(df), summarize(sim)
    print_mapping(params)
    print_comparison(real_stats, sim_stats)
    print_behaviour_check(df, sim, args.seed)
    if args.figure:
        draw_figure(real_stats, sim_stats, args.figure)
    print(f"wrote {args.out}" + (f" and {args.figure}" if args.figure else ""))
    return {"params": params, "real": real_stats, "sim": sim_stats}


if __name__ == "__main__":
    main()
