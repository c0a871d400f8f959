"""PNG figures (matplotlib, Agg) of tournaments and of the simulated user study."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from experiments import analysis as an  # noqa: E402
from experiments.results_io import save_figure  # noqa: E402

BEST_LABEL = "best validation accuracy so far\n(0 until a run is validated)"


def colors(names: Sequence[str]) -> dict[str, Any]:
    """A stable color per name."""
    cmap = plt.get_cmap("tab10" if len(names) <= 10 else "tab20")
    return {name: cmap(i % cmap.N) for i, name in enumerate(sorted(names))}


def _legend(ax: plt.Axes, **options: Any) -> None:
    """A legend, when something is labelled."""
    if ax.get_legend_handles_labels()[0]:
        ax.legend(**options)


def _band(ax: plt.Axes, curves: pd.DataFrame, palette: Mapping[str, Any]) -> None:
    """Mean line and standard-error band per contestant."""
    for name, part in curves.groupby("contestant"):
        x, mean, sem = part["x"], part["mean"], part["sem"]
        ax.plot(x, mean, label=name, color=palette[name], lw=1.6)
        ax.fill_between(x, mean - sem, mean + sem, color=palette[name], alpha=0.2, lw=0)


def _anytime(curves: pd.DataFrame, palette: Mapping[str, Any], xlabel: str, title: str
             ) -> plt.Figure:
    fig, ax = plt.subplots(figsize=(7, 4.2), layout="constrained")
    _band(ax, an.mean_curves(curves), palette)
    ax.set(xlabel=xlabel, ylabel=BEST_LABEL, title=f"{title}\nmean ± standard error over seeds")
    ax.grid(alpha=0.3)
    _legend(ax, fontsize=8, loc="lower right")
    return fig


def _violin(ax: plt.Axes, values: np.ndarray, position: int, color: Any) -> None:
    """One violin (or a dot for a single value) in the contestant's color."""
    if len(values) == 1:
        ax.plot([position], values, "o", color=color)
        return
    parts = ax.violinplot(values, positions=[position], showmedians=True)
    for body in parts["bodies"]:
        body.set_color(color)
    for key in ("cbars", "cmins", "cmaxes", "cmedians"):
        parts[key].set_color(color)


def _violins(reach: pd.DataFrame, names: Sequence[str], thresholds: Sequence[float],
             title: str) -> plt.Figure:
    palette = colors(names)
    fig, axes = plt.subplots(1, len(thresholds), figsize=(4 * len(thresholds), 4), sharey=True,
                             squeeze=False, layout="constrained")
    for ax, threshold in zip(axes[0], thresholds, strict=True):
        part = reach[np.isclose(reach["threshold"], threshold)]
        labels = []
        for i, name in enumerate(names):
            values = part.loc[part["contestant"] == name, "trials"]
            reached = values.dropna().to_numpy()
            labels.append(f"{name}\n{len(reached)}/{len(values)}")
            if len(reached):
                _violin(ax, reached, i, palette[name])
        ax.set_xticks(range(len(names)), labels, rotation=45, ha="right", fontsize=7)
        ax.set_title(f"reach {threshold:.0%} validation accuracy")
        ax.grid(alpha=0.3, axis="y")
    axes[0][0].set_ylabel("trials needed (sessions that reached it)")
    fig.suptitle(f"{title}: trials to threshold (n reached / sessions)")
    return fig


def _ranks(ranks: pd.DataFrame, palette: Mapping[str, Any], title: str) -> plt.Figure:
    fig, ax = plt.subplots(figsize=(7, 4.2), layout="constrained")
    for name, part in ranks.groupby("contestant"):
        ax.plot(part["x"], part["rank"], label=name, color=palette[name], lw=1.6)
    ax.invert_yaxis()
    ax.set(xlabel="simulated minutes", ylabel="mean rank (1 = best)",
           title=f"{title}\nrank of best-so-far over the budget, averaged over seeds")
    ax.grid(alpha=0.3)
    _legend(ax, fontsize=8)
    return fig


def _note_figure(text: str, title: str) -> plt.Figure:
    fig, ax = plt.subplots(figsize=(7, 2.2), layout="constrained")
    ax.axis("off")
    ax.text(0.5, 0.5, text, ha="center", va="center", wrap=True, fontsize=10)
    ax.set_title(title)
    return fig


def _cd(result: Any, note: str, sessions: pd.DataFrame, title: str) -> plt.Figure:
    """autorank's CD diagram, or (with the note why not) the mean ranks as bars."""
    if result is not None and not note:
        from autorank import plot_stats

        try:
            ax = plot_stats(result, allow_insignificant=True)
            significant = result.pvalue < result.alpha
            ax.set_title(f"{title}: Friedman p = {result.pvalue:.3g}"
                         f"{'' if significant else ' (not significant)'}", fontsize=9)
            return ax.figure
        except Exception as error:  # noqa: BLE001 - fall back with the reason
            note = f"autorank could not plot: {error}"
    ranks = an.scored(sessions).groupby("contestant")["rank"].mean().sort_values()
    if ranks.empty:
        return _note_figure(note, title)
    fig, ax = plt.subplots(figsize=(7, 1.2 + 0.35 * len(ranks)), layout="constrained")
    ax.barh(ranks.index, ranks.to_numpy(), color="0.6")
    ax.invert_yaxis()
    ax.set(xlabel="mean rank of the final test accuracy (1 = best)",
           title=f"{title}: no critical-difference diagram\n{note}")
    return fig


def _boxes(sessions: pd.DataFrame, names: Sequence[str], title: str) -> plt.Figure:
    fig, ax = plt.subplots(figsize=(max(5, 0.9 * len(names) + 2), 4.2), layout="constrained")
    data = [sessions.loc[sessions["contestant"] == n, "final_test_accuracy"].dropna().to_numpy()
            for n in names]
    ax.boxplot(data, tick_labels=list(names), showmeans=True)
    for i, values in enumerate(data, start=1):
        ax.plot(np.full(len(values), i), values, ".", color="0.3", alpha=0.6)
    ax.tick_params(axis="x", rotation=45)
    ax.set(ylabel="final test accuracy (mean of repeats)", title=f"{title}: final accuracy")
    ax.grid(alpha=0.3, axis="y")
    return fig


def tournament_figures(out: Path, trials: pd.DataFrame, sessions: pd.DataFrame,
                       steps: pd.DataFrame, thresholds: Sequence[float], title: str,
                       critical: tuple[Any, str]) -> dict[str, Path]:
    """All figures of one setting's tournament, written as PNG files into `out`;
    `critical` is `analysis.critical_difference(sessions)`, computed once by the caller."""
    names = sorted(sessions["contestant"].unique())
    palette = colors(names)
    by_trial = an.trial_curves(trials, sessions)
    by_minute = an.grid_curves(steps, sessions, "elapsed_minutes")
    result, note = critical
    makers: dict[str, Callable[[], plt.Figure]] = {
        "best_vs_trials": lambda: _anytime(by_trial, palette, "trials", title),
        "best_vs_epochs": lambda: _anytime(an.grid_curves(steps, sessions, "epochs"), palette,
                                           "epochs trained", title),
        "best_vs_minutes": lambda: _anytime(by_minute, palette, "simulated minutes", title),
        "trials_to_threshold": lambda: _violins(an.trials_to_threshold(by_trial, thresholds),
                                                names, thresholds, title),
        "ranks_over_budget": lambda: _ranks(an.ranks_over_budget(by_minute), palette, title),
        "critical_difference": lambda: _cd(result, note, sessions, title),
        "final_accuracy": lambda: _boxes(sessions, names, title),
    }
    return {name: save_figure(make(), out / f"{name}.png") for name, make in makers.items()}


# --------------------------------------------------------------------------- user study
StudyData = Mapping[str, pd.DataFrame]  # participants, traces, reach, shares


def _panels(datasets: Mapping[str, StudyData], draw: Callable[[plt.Axes, StudyData], None],
            title: str, share: bool, width: float = 5.5) -> plt.Figure:
    """One panel per dataset (simulated, and the real study when given); one legend."""
    fig, axes = plt.subplots(1, len(datasets), figsize=(width * len(datasets), 4.2),
                             sharey=share, squeeze=False, layout="constrained")
    for ax, (label, data) in zip(axes[0], datasets.items(), strict=True):
        draw(ax, data)
        ax.set_title(label, fontsize=10)
        ax.grid(alpha=0.3)
    for ax in axes[0][:-1]:
        if ax.get_legend() is not None:
            ax.get_legend().remove()
    fig.suptitle(title)
    return fig


def _scatter(ax: plt.Axes, data: StudyData) -> None:
    p = data["participants"]
    for group, part in p.groupby("group"):
        ax.plot(part["experience_months"], part["final_test_accuracy"], "o", label=group,
                alpha=0.8)
    ax.set(xlabel="months of deep-learning experience", ylabel="final accuracy")
    _legend(ax, fontsize=8)


def _group_boxes(ax: plt.Axes, data: StudyData) -> None:
    p = data["participants"]
    values = [p.loc[p["group"] == g, "final_test_accuracy"].dropna().to_numpy()
              for g in an.GROUPS]
    ax.boxplot(values, tick_labels=[f"{g}\n{an.GROUP_LABELS[g]}" for g in an.GROUPS],
               showmeans=True)
    ax.set(ylabel="final accuracy")


def _traces(ax: plt.Axes, data: StudyData) -> None:
    traces = data["traces"]
    for group in an.GROUPS:
        part = traces[traces["group"] == group].groupby("x")["best"].agg(["mean", "sem"])
        if part.empty:
            continue
        sem = part["sem"].fillna(0.0)
        ax.plot(part.index, part["mean"], label=f"{group} ({an.GROUP_LABELS[group]})")
        ax.fill_between(part.index, part["mean"] - sem, part["mean"] + sem, alpha=0.2, lw=0)
    ax.set(xlabel="run number", ylabel=BEST_LABEL)
    _legend(ax, fontsize=8)


def _reach(ax: plt.Axes, data: StudyData) -> None:
    reach = data["reach"]
    thresholds = sorted(reach["threshold"].unique())
    width = 0.8 / max(len(an.GROUPS), 1)
    for i, group in enumerate(an.GROUPS):
        part = reach[reach["group"] == group]
        per = [part.loc[np.isclose(part["threshold"], t), "trials"] for t in thresholds]
        medians, shares = [p.median() for p in per], [p.notna().mean() for p in per]
        xs = np.arange(len(thresholds)) + (i - 1) * width
        bars = ax.bar(xs, np.nan_to_num(medians), width, label=group)
        for bar, share in zip(bars, shares, strict=True):
            ax.annotate(f"{share:.0%}", (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                        ha="center", va="bottom", fontsize=7)
    ax.set_xticks(range(len(thresholds)), [f"{t:.0%}" for t in thresholds])
    ax.set(xlabel="validation accuracy threshold",
           ylabel="median runs to reach it\n(label: share of participants who did)")
    _legend(ax, fontsize=8)


def _shares(ax: plt.Axes, data: StudyData) -> None:
    shares = data["shares"].pivot(index="group", columns="rationale", values="share")
    shares = shares.reindex(an.GROUPS)[list(an.RATIONALES.values())].fillna(0.0)
    bottom = np.zeros(len(shares))
    for label in shares.columns:
        ax.bar(shares.index, shares[label], bottom=bottom, label=label)
        bottom += shares[label].to_numpy()
    ax.set(ylabel="share of rationale codes given")
    _legend(ax, fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))


def _defaults(ax: plt.Axes, data: StudyData) -> None:
    p = data["participants"]
    counts = p.groupby("group")["first_is_defaults"].agg(["sum", "size"]).reindex(an.GROUPS)
    counts = counts.fillna(0)
    ax.bar(an.GROUPS, counts["size"], color="0.85", label="participants")
    ax.bar(an.GROUPS, counts["sum"], color="C2", label="first run = suggested defaults")
    ax.set(ylabel="participants")
    _legend(ax, fontsize=8)


#: name: (panel drawer, title, shared y axis)
STUDY_FIGURES: dict[str, tuple[Callable[[plt.Axes, StudyData], None], str, bool]] = {
    "accuracy_vs_experience": (_scatter, "Final accuracy vs experience", True),
    "group_final_accuracy": (_group_boxes, "Final accuracy per experience group", True),
    "best_so_far_per_group": (_traces, "Best-so-far per group (mean ± standard error)", True),
    "trials_to_threshold_per_group": (_reach, "Runs to reach an accuracy", False),
    "rationale_shares": (_shares, "Rationale codes per group", True),
    "defaults_first": (_defaults, "First configuration = the suggested defaults", True),
}


def study_figures(out: Path, datasets: Mapping[str, StudyData]) -> dict[str, Path]:
    """The study's figures, one panel per dataset (simulated | real study)."""
    return {name: save_figure(_panels(datasets, draw, title, share), out / f"{name}.png")
            for name, (draw, title, share) in STUDY_FIGURES.items()}
