"""Tidy tables and statistics: tournament results and the simulated user study.

Conventions (also in the figures' labels):
- A *setting* is (backend, protocol, budget_minutes); contestants are compared within one.
- Best-so-far curves count only what the protocol reported; before anything was validated a
  session's best is `NO_RESULT` (0: nothing found yet), and after it ended its best carries on.
- A session's *score* is its final test accuracy; a session that named no final configuration
  (nothing validated, or a crash before) scores `NO_RESULT` and so ranks last.
"""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from agents.play import SessionResult
from envs.space import DEFAULTS, NAMES, RATIONALES, from_row, to_row
from envs.trials import STUDY_OUTCOME
from experiments.study_data import GROUPS, experience_group

SETTING: tuple[str, ...] = ("backend", "protocol", "budget_minutes")
LABELS: tuple[str, ...] = ("contestant", "agent", "params", *SETTING, "seed")
SESSION_KEY: list[str] = [*SETTING, "contestant", "seed"]
NO_RESULT = 0.0
WHY: tuple[str, ...] = tuple(f"why_{name}" for name in NAMES)
TRIAL_COLUMNS: tuple[str, ...] = (
    *LABELS, "trial", *NAMES, *WHY, "outcome", "epochs_planned", "epochs_run", "val_accuracy",
    "last_val_accuracy", "best_val_so_far", "seconds", "minutes", "start_minutes",
    "cum_minutes", "cum_epochs", "think_seconds", "reason",
)
SESSION_COLUMNS: tuple[str, ...] = (
    *LABELS, "status", "error", "n_trials", "n_completed", "epochs", "minutes", "steps",
    "truncated", "best_val_accuracy", "final_trial", "final_test_accuracy", "final_test_sd",
    "think_seconds", *(f"final_{name}" for name in NAMES),
)


# ------------------------------------------------------------------------- result tables
def trial_rows(labels: Mapping[str, Any], result: SessionResult) -> list[dict[str, Any]]:
    """One row per trial: labels, canonical config and why_* columns, outcome, time, think."""
    rows, best, epochs = [], None, 0
    for trial in result.history:
        epochs += trial.epochs_run
        if trial.val_accuracy is not None:
            best = trial.val_accuracy if best is None else max(best, trial.val_accuracy)
        row = trial.to_row()
        row.pop("end_minutes")
        rows.append({**labels, **row, "epochs_planned": trial.epochs_planned,
                     "last_val_accuracy": trial.last_val_accuracy, "best_val_so_far": best,
                     "minutes": trial.seconds / 60.0, "cum_minutes": trial.end_minutes,
                     "cum_epochs": epochs, "think_seconds": result.think_seconds.get(trial.index)})
    return rows


def session_row(labels: Mapping[str, Any], result: SessionResult) -> dict[str, Any]:
    """One row per session: status, counts, best validation and final test accuracy."""
    history, final = result.history, result.final or {}
    validated = [t.val_accuracy for t in history if t.val_accuracy is not None]
    config = final.get("config")
    final_config = to_row(config) if config is not None else dict.fromkeys(NAMES)
    return {
        **labels, "status": result.status,
        "error": result.error.splitlines()[0] if result.error else "",
        "n_trials": len(history),
        "n_completed": sum(t.outcome == "completed" for t in history),
        "epochs": sum(t.epochs_run for t in history), "minutes": result.elapsed_minutes,
        "steps": result.steps, "truncated": result.truncated,
        "best_val_accuracy": max(validated, default=None), "final_trial": final.get("trial"),
        "final_test_accuracy": final.get("test_accuracy"),
        "final_test_sd": final.get("test_accuracy_sd"),
        "think_seconds": result.total_think_seconds,
        **{f"final_{name}": value for name, value in final_config.items()},
    }


def result_tables(results: Iterable[tuple[Mapping[str, Any], SessionResult]]
                  ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The trials and sessions tables of a set of session results."""
    results = list(results)
    trials = pd.DataFrame([r for labels, res in results for r in trial_rows(labels, res)],
                          columns=list(TRIAL_COLUMNS))
    sessions = pd.DataFrame([session_row(labels, res) for labels, res in results],
                            columns=list(SESSION_COLUMNS))
    return trials, sessions


def params_json(params: Mapping[str, Any]) -> str:
    """A contestant's describe() as one compact JSON cell."""
    return json.dumps(params, sort_keys=True, default=str, separators=(",", ":"))


# ------------------------------------------------------------------------------- curves
def settings(sessions: pd.DataFrame) -> list[tuple[Any, ...]]:
    return sorted(set(map(tuple, sessions[list(SETTING)].itertuples(index=False))))


def in_setting(table: pd.DataFrame, setting: Sequence[Any]) -> pd.Series:
    """Rows of `table` that belong to one setting."""
    return (table[list(SETTING)] == pd.Series(list(setting), index=list(SETTING))).all(axis=1)


def session_index(table: pd.DataFrame) -> pd.MultiIndex:
    """Each row's session key (setting, contestant, seed)."""
    return pd.MultiIndex.from_frame(table[SESSION_KEY])


def _pad(values: np.ndarray, length: int) -> np.ndarray:
    """Best-so-far values padded to `length` with the last one (NO_RESULT when empty)."""
    last = values[-1] if len(values) else NO_RESULT
    return np.concatenate([values, np.full(length - len(values), last)])


def trial_curves(trials: pd.DataFrame, sessions: pd.DataFrame) -> pd.DataFrame:
    """Best validation accuracy after each trial, for every session (long format, x = trials)."""
    keyed = trials.groupby(SESSION_KEY, sort=False)["best_val_so_far"]
    per_session = {key: g.ffill().fillna(NO_RESULT).to_numpy() for key, g in keyed}
    frames = []
    for setting in settings(sessions):
        keys = [tuple(k) for k in sessions[SESSION_KEY].itertuples(index=False)
                if tuple(k[:3]) == setting]
        length = max([len(per_session.get(k, ())) for k in keys] + [1])
        for key in keys:
            best = _pad(per_session.get(key, np.array([])), length)
            frames.append(pd.DataFrame({**dict(zip(SESSION_KEY, key, strict=True)),
                                        "x": np.arange(1, length + 1), "best": best}))
    return pd.concat(frames, ignore_index=True)


def grid_curves(steps: pd.DataFrame, sessions: pd.DataFrame, column: str,
                points: int = 121) -> pd.DataFrame:
    """Best-so-far on a grid of `column` (elapsed_minutes or epochs), for every session."""
    grouped = {key: g for key, g in steps.groupby(SESSION_KEY, sort=False)}
    frames = []
    for setting in settings(sessions):
        keys = [tuple(k) for k in sessions[SESSION_KEY].itertuples(index=False)
                if tuple(k[:3]) == setting]
        rows = [grouped[k] for k in keys if k in grouped]
        top = setting[2] if column == "elapsed_minutes" else max(
            [float(g[column].max()) for g in rows] + [1.0])
        grid = np.linspace(0.0, float(top), points)
        for key in keys:
            frames.append(pd.DataFrame({**dict(zip(SESSION_KEY, key, strict=True)), "x": grid,
                                        "best": _step_values(grouped.get(key), column, grid)}))
    return pd.concat(frames, ignore_index=True)


def _step_values(steps: pd.DataFrame | None, column: str, grid: np.ndarray) -> np.ndarray:
    """The best-so-far step function of one session, read at `grid`."""
    if steps is None or steps.empty:
        return np.full(len(grid), NO_RESULT)
    ordered = steps.sort_values("step")
    xs = ordered[column].to_numpy(float)
    ys = ordered["best_val_accuracy"].ffill().fillna(NO_RESULT).to_numpy(float)
    index = np.searchsorted(xs, grid, side="right") - 1
    return np.where(index >= 0, ys[np.clip(index, 0, None)], NO_RESULT)


def mean_curves(curves: pd.DataFrame) -> pd.DataFrame:
    """Mean and standard error over seeds, per setting, contestant and x."""
    grouped = curves.groupby([*SETTING, "contestant", "x"])["best"]
    out = grouped.agg(mean="mean", sem="sem", n="size").reset_index()
    out["sem"] = out["sem"].fillna(0.0)
    return out


def ranks_over_budget(curves: pd.DataFrame) -> pd.DataFrame:
    """Mean rank (1 = best) of each contestant at each x, ranked within setting and seed."""
    ranked = curves.assign(rank=curves.groupby([*SETTING, "seed", "x"])["best"].rank(
        ascending=False, method="average"))
    return ranked.groupby([*SETTING, "contestant", "x"])["rank"].mean().reset_index()


# ------------------------------------------------------------------- thresholds and ranks
def first_reach(best: Sequence[float], threshold: float) -> float:
    """1-based count of trials until `best` reached `threshold` (NaN if it never did)."""
    hits = np.flatnonzero(np.asarray(best, float) >= threshold - 1e-12)
    return float(hits[0] + 1) if len(hits) else np.nan


def trials_to_threshold(curves: pd.DataFrame, thresholds: Sequence[float]) -> pd.DataFrame:
    """Per session and threshold: trials needed to reach it (NaN = never), from trial curves."""
    rows = []
    for key, group in curves.groupby(SESSION_KEY, sort=False):
        best = group.sort_values("x")["best"].to_numpy()
        for threshold in thresholds:
            rows.append({**dict(zip(SESSION_KEY, key, strict=True)), "threshold": threshold,
                         "trials": first_reach(best, threshold)})
    return pd.DataFrame(rows, columns=[*SESSION_KEY, "threshold", "trials"])


def threshold_table(reach: pd.DataFrame) -> pd.DataFrame:
    """Per contestant and threshold: share of sessions that reached it, median and mean trials."""
    grouped = reach.groupby([*SETTING, "contestant", "threshold"])["trials"]
    return grouped.agg(sessions="size", reached=lambda t: t.notna().mean(),
                       median_trials="median", mean_trials="mean").reset_index()


def scored(sessions: pd.DataFrame) -> pd.DataFrame:
    """Sessions with `score` (final test accuracy, NO_RESULT if none) and `rank` per seed."""
    out = sessions.assign(score=sessions["final_test_accuracy"].fillna(NO_RESULT))
    out["rank"] = out.groupby([*SETTING, "seed"])["score"].rank(ascending=False, method="average")
    return out


def leaderboard(sessions: pd.DataFrame, reach: pd.DataFrame) -> pd.DataFrame:
    """One row per contestant and setting, best mean rank first."""
    board = scored(sessions).groupby([*SETTING, "contestant"]).agg(
        sessions=("seed", "size"), errors=("status", lambda s: int((s == "error").sum())),
        mean_rank=("rank", "mean"), final_test_mean=("final_test_accuracy", "mean"),
        final_test_sd=("final_test_accuracy", "std"),
        no_final=("final_test_accuracy", lambda s: int(s.isna().sum())),
        best_val_mean=("best_val_accuracy", "mean"), trials_mean=("n_trials", "mean"),
        epochs_mean=("epochs", "mean"), minutes_mean=("minutes", "mean"),
        think_seconds_mean=("think_seconds", "mean"),
    ).reset_index()
    table = threshold_table(reach)
    for threshold, part in table.groupby("threshold"):
        tag = f"{round(threshold * 100):d}"
        names = {"median_trials": f"trials_to_{tag}", "reached": f"reached_{tag}"}
        part = part.rename(columns=names)[[*SETTING, "contestant", *names.values()]]
        board = board.merge(part, on=[*SETTING, "contestant"], how="left")
    board = board.sort_values([*SETTING, "mean_rank", "final_test_mean"],
                              ascending=[True] * len(SETTING) + [True, False])
    board.insert(0, "place", board.groupby(list(SETTING)).cumcount() + 1)
    return board.reset_index(drop=True)


def critical_difference(sessions: pd.DataFrame, alpha: float = 0.05) -> tuple[Any, str]:
    """autorank's Friedman + Nemenyi analysis of the scores of one setting, or (None, why not).

    Needs complete blocks (every contestant on every seed), >= 2 contestants and >= 5 seeds;
    with exactly two contestants autorank runs a Wilcoxon test, which has no CD diagram.
    """
    from autorank import autorank

    table = scored(sessions).pivot_table(index="seed", columns="contestant", values="score")
    table = table.dropna()
    if table.shape[1] < 2:
        return None, f"a CD diagram needs >= 2 contestants; got {table.shape[1]}"
    if table.shape[0] < 5:
        return None, f"autorank needs >= 5 seeds with every contestant; got {table.shape[0]}"
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            result = autorank(table, alpha=alpha, verbose=False, force_mode="nonparametric")
    except Exception as error:  # noqa: BLE001 - report why the statistics are missing
        return None, f"autorank failed: {type(error).__name__}: {error}"
    if result.posthoc != "nemenyi":
        return result, f"autorank ran {result.omnibus} (two contestants): no CD diagram"
    return result, ""


def rank_report(result: Any) -> str:
    """autorank's own text report of a result."""
    from autorank import create_report

    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        create_report(result)
    return buffer.getvalue()


# --------------------------------------------------------------------------- user study
GROUP_LABELS: dict[str, str] = {"G1": "0 months", "G2": "1-9 months", "G3": "> 9 months"}
PARTICIPANT_COLUMNS: tuple[str, ...] = (
    "participant", "experience_months", "group", "n_runs", "n_completed", "n_cancelled",
    "n_diverged", "guess_share", "first_is_defaults", "best_val_accuracy",
    "final_test_accuracy", "final_source",
)


def study_run_rows(server: str, user_id: str, result: SessionResult, first_run_id: int
                   ) -> list[dict[str, Any]]:
    """A session's trials in the study's runs.tsv format."""
    final = (result.final or {}).get("trial")
    rows = []
    for offset, trial in enumerate(result.history):
        row = trial.to_row()
        rows.append({
            "server": server, "user_id": user_id, "run_id": first_run_id + offset,
            **{name: row[name] for name in (*NAMES, *WHY)},
            "final_submission": "true" if trial.index == final else "false",
            "outcome": STUDY_OUTCOME[trial.outcome],
            "val_accuracy": trial.val_accuracy if trial.outcome == "completed" else None,
            "time_taken_s": round(trial.seconds, 4),
        })
    return rows


def first_is_defaults(run: Mapping[str, Any]) -> bool:
    """Whether a run kept every suggested default that its optimizer reads."""
    try:
        config = from_row(run)
    except ValueError:
        return False
    return all(config.is_default(name) for name in config.optimizer_fields() if name in DEFAULTS)


def _codes(runs: pd.DataFrame) -> pd.Series:
    """Every rationale code the runs carry (empty cells dropped)."""
    return pd.to_numeric(runs[list(WHY)].stack(), errors="coerce").dropna().astype(int)


def _final_proxy(runs: pd.DataFrame) -> tuple[float, str]:
    """The real study's final accuracy proxy: the final_submission run's validation accuracy,
    else the best completed run's (the environment's default final choice)."""
    flagged = runs[runs["final_submission"].astype(str).str.lower() == "true"]["val_accuracy"]
    if flagged.notna().any():
        return float(flagged.dropna().iloc[-1]), "final_submission_val"
    best = runs["val_accuracy"].max()
    return (float(best), "best_completed_val") if pd.notna(best) else (np.nan, "none")


def _participant(user: Any, months: float, runs: pd.DataFrame, final: tuple[float, str]
                 ) -> dict[str, Any]:
    """One participants.tsv row from the participant's runs (possibly none)."""
    outcome, codes = runs["outcome"].astype(str), _codes(runs)
    return {
        "participant": user, "experience_months": months, "group": experience_group(months),
        "n_runs": len(runs), "n_completed": int((outcome == "completed").sum()),
        "n_cancelled": int((outcome == "cancelled").sum()),
        "n_diverged": int((outcome == "nan").sum()),
        "guess_share": float((codes == 1).mean()) if len(codes) else np.nan,
        "first_is_defaults": bool(len(runs)) and first_is_defaults(runs.iloc[0].to_dict()),
        "best_val_accuracy": runs["val_accuracy"].max(),
        "final_test_accuracy": final[0], "final_source": final[1],
    }


def study_participants(runs: pd.DataFrame, users: pd.DataFrame,
                       finals: Mapping[str, float] | None = None) -> pd.DataFrame:
    """The study's per-participant table from runs and users in the study's format.

    `finals` maps user_id to the final test accuracy (simulated sessions); without it the
    real study's proxy is used (see `_final_proxy`).
    """
    runs = runs.sort_values(["server", "user_id", "run_id"])
    by_user = dict(list(runs.groupby(["server", "user_id"], sort=False)))
    rows = []
    for user in users.itertuples(index=False):
        mine = by_user.get((user.server, user.user_id), runs.iloc[:0])
        final = ((finals.get(user.user_id, np.nan), "session_final_test") if finals is not None
                 else _final_proxy(mine))
        rows.append(_participant(user.user_id, float(user.experience_months), mine, final))
    return pd.DataFrame(rows, columns=list(PARTICIPANT_COLUMNS))


def study_summary(participants: pd.DataFrame) -> dict[str, Any]:
    """Experience vs final accuracy (Spearman), group spreads (Levene), means and sds."""
    from scipy import stats

    valid = participants.dropna(subset=["experience_months", "final_test_accuracy"])
    finals = {g: valid.loc[valid["group"] == g, "final_test_accuracy"].to_numpy()
              for g in GROUPS}
    rho, p = (stats.spearmanr(valid["experience_months"], valid["final_test_accuracy"])
              if len(valid) >= 3 else (np.nan, np.nan))
    levene = {}
    for i, a in enumerate(GROUPS):
        for b in GROUPS[i + 1:]:
            ok = min(len(finals[a]), len(finals[b])) >= 2
            stat, pv = stats.levene(finals[a], finals[b]) if ok else (np.nan, np.nan)
            levene[f"{a}_vs_{b}"] = {"statistic": float(stat), "p": float(pv)}
    return {
        "n_participants": len(participants), "n_with_final": len(valid),
        "spearman_experience_final": float(rho), "spearman_p": float(p), "levene": levene,
        "mean_final": float(valid["final_test_accuracy"].mean()),
        "sd_final": float(valid["final_test_accuracy"].std()),
        "group_n": {g: len(finals[g]) for g in GROUPS},
        "group_mean_final": {g: float(np.mean(v)) if len(v) else None for g, v in finals.items()},
        "group_sd_final": {g: float(np.std(v, ddof=1)) if len(v) > 1 else None
                           for g, v in finals.items()},
        "first_is_defaults": {g: int(participants.loc[participants["group"] == g,
                                                      "first_is_defaults"].sum()) for g in GROUPS},
    }


def study_traces(runs: pd.DataFrame, participants: pd.DataFrame) -> pd.DataFrame:
    """Best-so-far validation accuracy per run number, per participant, padded to the
    longest session of the group (columns group, participant, x, best)."""
    group_of = dict(zip(participants["participant"], participants["group"], strict=True))
    per_user = {user: g.sort_values("run_id")["val_accuracy"].cummax().ffill().fillna(NO_RESULT)
                .to_numpy() for (_, user), g in runs.groupby(["server", "user_id"])}
    frames = []
    for group in GROUPS:
        users = [u for u in per_user if group_of.get(u) == group]
        length = max([len(per_user[u]) for u in users] + [1])
        frames += [pd.DataFrame({"group": group, "participant": u, "x": np.arange(1, length + 1),
                                 "best": _pad(per_user[u], length)}) for u in users]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
        columns=["group", "participant", "x", "best"])


def study_reach(traces: pd.DataFrame, thresholds: Sequence[float]) -> pd.DataFrame:
    """Runs needed to reach each threshold, per participant (NaN = never)."""
    rows = [{"group": group, "participant": user, "threshold": t,
             "trials": first_reach(g.sort_values("x")["best"], t)}
            for (group, user), g in traces.groupby(["group", "participant"]) for t in thresholds]
    return pd.DataFrame(rows, columns=["group", "participant", "threshold", "trials"])


def rationale_shares(runs: pd.DataFrame, participants: pd.DataFrame) -> pd.DataFrame:
    """Share of each rationale code among the codes given, per experience group."""
    group_of = dict(zip(participants["participant"], participants["group"], strict=True))
    rows = []
    for group in GROUPS:
        codes = _codes(runs[runs["user_id"].map(group_of) == group])
        for code, label in RATIONALES.items():
            rows.append({"group": group, "code": code, "rationale": label,
                         "share": float((codes == code).mean()) if len(codes) else np.nan})
    return pd.DataFrame(rows)
