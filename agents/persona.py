"""Persona agents: a human tuner parameterized by months of deep-learning experience.

A `Persona` composes the heuristics of `heuristics/` the way the user study's participants
did. How often it uses each habit is a smooth function of experience, `x = log1p(months)`
(`Curve`): probabilities are logistic, `p = 1 / (1 + exp(-(a + b x)))`; positive quantities
log-linear, `exp(a + b x)`; choices among several options a softmax of `a_k + b_k x`. The
coefficients are fitted to the study's logs by `experiments.calibrate_personas` and stored in
agents/persona_params.json, with the value distributions the heuristics draw from.

The behaviours (`Behaviour` fields):

- source: where a freshly chosen value comes from: guess (1), suggested default (2), past
  experience (3), other (5: the time budget for epochs, textbook values otherwise).
- first_defaults: the first configuration keeps the suggested defaults of every optional field
  but the learning rate (defaults first); first_lr: it sets the learning rate anyway (from
  experience, a guess...); first_lr_with: it sets the learning rate when it also sets other
  optional fields.
- react: a resubmission reacts to how the last run went (`LearnFromPrevious`).
- learned: a further changed value is a directed step learned from earlier runs
  (`OneFactorAtATime`) rather than chosen afresh.
- extra_changes: mean number of fields changed per resubmission beyond the first (Poisson).
- base_best: a resubmission builds on the best run (else on the last one).
- change_fields: which field a person varies (softmax; "specific": one the optimizer reads).
- extreme: a guessed number is extreme (learning rate 8, momentum 4, 1,000 epochs).
- past_quality: a remembered value transfers (textbook prior) rather than misleads; persons
  with past_quality >= 0.5 also know the usual ranges (they reset absurd values after a
  failure and know the learning rate of each optimizer).
- lr_step: decades a learned change of a number moves.
- watch: the person watches the losses and stops bad runs (`EarlyStopping`); patience: the
  epochs of no improvement a watcher tolerates; whim: probability that a run is cancelled for
  reasons the logs do not show (`Impatience`).
- budget_guard: the person shortens runs that would not fit the remaining time.
- think_fraction: share of the session budget spent thinking before each submission.

Presets: conf/agent/novice.yaml (0 months), intermediate.yaml (5) and expert.yaml (24).
Extra or replacement heuristics come from config (`heuristics`, see `Persona`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from agents.base import Proposal, SessionView, TrialAgent
from envs.space import DEFAULT, GUESS, OTHER, PAST, Config
from envs.space import fields_read_by as optimizer_fields
from heuristics.base import Heuristic, Partial, as_dict
from heuristics.budget import BudgetAware
from heuristics.defaults_first import MANDATORY, DefaultsFirst
from heuristics.early_stopping import EarlyStopping, Impatience
from heuristics.final_choice import FinalChoice
from heuristics.learn_from_previous import LearnFromPrevious
from heuristics.numbers import load_params, weighted_choice
from heuristics.one_factor import OneFactorAtATime
from heuristics.past_experience import PastExperience
from heuristics.random_guess import RandomGuess
from heuristics.view import best_trial, budget_minutes, with_remaining

SOURCE_SLOTS: dict[int, str] = {GUESS: "random_guess", DEFAULT: "defaults_first",
                                PAST: "past_experience", OTHER: "literature"}
#: spread (sd of the log) of the minutes spent thinking before a submission
THINK_SD = 0.5


def experience_x(months: float) -> float:
    """The experience axis of every curve: log1p(months)."""
    return math.log1p(max(float(months), 0.0))


@dataclass(frozen=True)
class Curve:
    """One behaviour as a function of x = log1p(months)."""

    kind: str  # "logistic" | "loglinear" | "softmax"
    a: Any  # float, or {category: float} for softmax
    b: Any

    @classmethod
    def from_dict(cls, spec: Mapping[str, Any]) -> Curve:
        return cls(spec["kind"], spec["a"], spec["b"])

    def at(self, x: float) -> Any:
        if self.kind == "logistic":
            return 1.0 / (1.0 + math.exp(-(self.a + self.b * x)))
        if self.kind == "loglinear":
            return math.exp(self.a + self.b * x)
        if self.kind == "softmax":
            logits = {k: self.a[k] + self.b[k] * x for k in self.a}
            top = max(logits.values())
            weights = {k: math.exp(v - top) for k, v in logits.items()}
            total = sum(weights.values())
            return {k: w / total for k, w in weights.items()}
        raise ValueError(f"kind={self.kind!r} is not allowed: expected logistic, loglinear or "
                         "softmax")


@dataclass(frozen=True)
class Behaviour:
    """A persona's behaviour at one experience level (see the module docstring)."""

    source: Mapping[int, float]
    first_defaults: float
    first_lr: float
    first_lr_with: float
    react: float
    learned: float
    extra_changes: float
    base_best: float
    change_fields: Mapping[str, float]
    extreme: float
    past_quality: float
    lr_step: float
    watch: float
    patience: float
    whim: float
    budget_guard: float
    think_fraction: float

    @classmethod
    def at(cls, months: float, mapping: Mapping[str, Mapping[str, Any]],
           overrides: Mapping[str, Any] | None = None) -> Behaviour:
        """The behaviour at `months` from a mapping of curves, with fixed `overrides`."""
        x = experience_x(months)
        values = {f.name: Curve.from_dict(mapping[f.name]).at(x) for f in fields(cls)}
        values["source"] = {int(k): v for k, v in values["source"].items()}
        unknown = set(overrides or {}) - set(values)
        if unknown:
            raise ValueError(f"behaviour overrides {sorted(unknown)} are not allowed: expected "
                             f"some of {sorted(values)}")
        return cls(**(values | dict(overrides or {})))


def _load(params: str | Path | Mapping[str, Any] | None) -> Mapping[str, Any]:
    return params if isinstance(params, Mapping) else load_params(params)


class Persona(TrialAgent):
    """A human tuner with `experience_months` of deep-learning experience.

    Arguments: `experience_months` (>= 0, continuous), `name`, `params` (a parameter file, a
    dict like it, or None for agents/persona_params.json), `behaviour` (fixed values for some
    `Behaviour` fields, e.g. ``{"watch": 1.0}``), `think` (False: no thinking time, the persona
    may use the whole budget for training), `heuristics` (plug-ins: a list of `Heuristic`
    objects, or a mapping name -> Heuristic). A plug-in whose name (its key, or its `name`)
    matches a built-in slot (`SLOTS`) replaces it; any other is an extra: proposal extras
    override the fields they set (each consulted with probability `weight`), stopping extras
    can stop a run, and a final-choice extra names the final trial.
    """

    name = "persona"
    SLOTS: tuple[str, ...] = ("defaults_first", "random_guess", "past_experience", "literature",
                              "learn_from_previous", "one_factor_at_a_time", "budget_aware",
                              "early_stopping", "impatience", "final_choice")

    def __init__(self, experience_months: float = 0.0, name: str | None = None,
                 params: str | Path | Mapping[str, Any] | None = None,
                 behaviour: Mapping[str, Any] | None = None, think: bool = True,
                 heuristics: Sequence[Heuristic] | Mapping[str, Heuristic] | None = None
                 ) -> None:
        super().__init__(name)
        if not (isinstance(experience_months, int | float) and math.isfinite(experience_months)
                and experience_months >= 0):
            raise ValueError(f"experience_months={experience_months!r} is not allowed: "
                             "expected a finite number >= 0")
        self.experience_months = float(experience_months)
        self.params = _load(params)
        self.behaviour = Behaviour.at(self.experience_months, self.params["mapping"], behaviour)
        self.think = bool(think)
        self.slots: dict[str, Heuristic] = self._builtins()
        self.extras: list[Heuristic] = []
        self._plug(heuristics)
        self.reset(0)

    # ---------------------------------------------------------------- building
    def _builtins(self) -> dict[str, Heuristic]:
        b, p = self.behaviour, self.params
        return {
            "defaults_first": DefaultsFirst(picks=p["defaults_first"]),
            "random_guess": RandomGuess(b.extreme, p["guess"], p["mantissas"]),
            "past_experience": PastExperience(b.past_quality, PAST, p["past"]),
            "literature": PastExperience(1.0, OTHER, p["past"], name="literature"),
            "learn_from_previous": LearnFromPrevious(b.lr_step, knows_ranges=self.knows_ranges),
            "one_factor_at_a_time": OneFactorAtATime(b.lr_step, switch_to=p["switch_to"]),
            "budget_aware": BudgetAware(),
            "early_stopping": EarlyStopping(patience=max(1, round(b.patience))),
            "impatience": Impatience(b.whim),
            "final_choice": FinalChoice(),
        }

    @property
    def knows_ranges(self) -> bool:
        """Whether this person knows the usual ranges of the optimizers' settings."""
        return self.behaviour.past_quality >= 0.5

    def _plug(self, heuristics: Sequence[Heuristic] | Mapping[str, Heuristic] | None) -> None:
        if heuristics is None:
            return
        items = (heuristics.items() if isinstance(heuristics, Mapping)
                 else ((getattr(h, "name", repr(h)), h) for h in heuristics))
        for key, heuristic in items:
            if not isinstance(heuristic, Heuristic):
                raise TypeError(f"heuristic {key!r} is a {type(heuristic).__name__}: expected a "
                                "heuristics.base.Heuristic (a config with _target_)")
            if key in self.slots:
                self.slots[key] = heuristic
            else:
                self.extras.append(heuristic)

    def reset(self, seed: int) -> None:
        super().reset(seed)
        self._watcher = bool(self.rng.random() < self.behaviour.watch)
        self._guard = bool(self.rng.random() < self.behaviour.budget_guard)
        self._overhead = 0.0

    def describe(self) -> dict[str, Any]:
        return super().describe() | {
            "experience_months": self.experience_months,
            "heuristics": [h.describe() for h in (*self.slots.values(), *self.extras)],
        }

    # ------------------------------------------------------------------ timing
    def _own_view(self, view: SessionView) -> SessionView:
        """The view with the minutes this person has left after thinking."""
        return with_remaining(view, view.remaining_minutes - self._overhead)

    def _think(self, view: SessionView) -> None:
        if self.think:
            scale = self.behaviour.think_fraction * budget_minutes(view)
            self._overhead += scale * math.exp(self.rng.normal(-THINK_SD**2 / 2, THINK_SD))

    def session_over(self, view: SessionView) -> bool:
        """Out of time once thinking is counted: the session is over, even mid-run."""
        return self.think and self._own_view(view).remaining_minutes <= 0.0

    # ---------------------------------------------------------------- decisions
    def propose(self, view: SessionView) -> Proposal | None:
        self._think(view)
        view = self._own_view(view)
        if view.remaining_minutes <= 0.0:
            return None
        base, tags, changes = self._next(view) if view.history else (None, {}, self._first(view))
        changes = self._extras(view, base, changes)
        if self._guard:
            changes = changes.merge(self.slots["budget_aware"].cap(
                view, {**as_dict(base), **changes.values}))
        config = changes.apply(base)
        return Proposal(config, {**tags, **changes.rationale})

    def _first(self, view: SessionView) -> Partial:
        b, rng = self.behaviour, self.rng
        draft = Partial()
        for name in MANDATORY:
            draft = draft.merge(self._fresh(view, draft.values, name))
        names, lr_share = [], b.first_lr
        if rng.random() >= b.first_defaults:
            options = [n for n in optimizer_fields(draft.values["optimizer"]) if n != "lr"]
            count = min(1 + int(rng.poisson(b.extra_changes)), len(options))
            names = [str(n) for n in rng.choice(options, size=count, replace=False)]
            lr_share = b.first_lr_with
        if rng.random() < lr_share:
            names.insert(0, "lr")
        for name in names:
            draft = draft.merge(self._fresh(view, draft.values, name))
        return draft

    def _next(self, view: SessionView) -> tuple[Config, dict[str, int], Partial]:
        b, rng = self.behaviour, self.rng
        best, last = best_trial(view.history), view.history[-1]
        anchor = best if best is not None and rng.random() < b.base_best else last
        base = anchor.config
        changes = Partial()
        if rng.random() < b.react:
            changes = self.slots["learn_from_previous"].propose(view, rng, base=base)
        wanted = 1 + int(rng.poisson(b.extra_changes))
        for _ in range(3 * wanted):
            if len(changes) >= wanted:
                break
            current = {**base.to_dict(), **changes.values}
            name = self._field_to_change(current, set(changes.values))
            if rng.random() < b.learned:
                part = self.slots["one_factor_at_a_time"].propose(view, rng, current, [name])
            else:
                part = self._fresh(view, current, name)
            same = [n for n, v in part.values.items() if v == getattr(base, n)]
            changes = changes.merge(part.without(same))
        return base, dict(anchor.rationale), changes

    def _field_to_change(self, current: Mapping[str, Any], taken: set[str]) -> str:
        specific = [n for n in optimizer_fields(current["optimizer"])
                    if n not in ("lr", "weight_decay") and n not in taken]
        options = {k: w for k, w in self.behaviour.change_fields.items()
                   if k not in taken and (k != "specific" or specific)}
        name = weighted_choice(options or {"lr": 1.0}, self.rng)
        return str(self.rng.choice(specific)) if name == "specific" else name

    def _fresh(self, view: SessionView, current: Mapping[str, Any], name: str) -> Partial:
        """A value chosen afresh for `name`, from a source drawn by experience."""
        code = weighted_choice(self.behaviour.source, self.rng)
        slot = "budget_aware" if code == OTHER and name == "epochs" else SOURCE_SLOTS[code]
        part = self.slots[slot].propose(view, self.rng, base=current, fields=[name])
        if name not in part.values:  # a replacement that has nothing to say: guess
            part = self.slots["random_guess"].propose(view, self.rng, base=current,
                                                      fields=[name])
        return part

    def _extras(self, view: SessionView, base: Config | None, changes: Partial) -> Partial:
        for extra in self._consulted("propose"):
            current = {**as_dict(base), **changes.values}
            changes = changes.merge(extra.propose(view, self.rng, base=current))
        return changes

    def _consulted(self, role: str) -> list[Heuristic]:
        return [h for h in self.extras if role in h.roles and self.rng.random() < h.weight]

    def keep_training(self, view: SessionView) -> bool:
        view = self._own_view(view)
        stop = self._watcher and self.slots["early_stopping"].should_stop(view, self.rng)
        stop = self.slots["impatience"].should_stop(view, self.rng) or stop
        for extra in self._consulted("stop"):
            stop = extra.should_stop(view, self.rng) or stop
        return not stop

    def final_choice(self, view: SessionView) -> int | None:
        for extra in self._consulted("final"):
            choice = extra.final_choice(view, self.rng)
            if choice is not None:
                return choice
        return self.slots["final_choice"].final_choice(view, self.rng)


__all__ = ["Behaviour", "Curve", "Persona", "experience_x"]
