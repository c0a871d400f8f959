"""Past-experience priors: values that worked before, for such models, from good to misleading."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from agents.base import SessionView
from envs.space import DEFAULTS, OTHER, PAST
from heuristics.base import Base, Heuristic, Partial, value_of
from heuristics.numbers import load_params, sample_table

Table = Sequence[Sequence[Any]]

#: Conventional values for training a small CNN from scratch (PyTorch documentation and common
#: practice): what "worked for me in the past" means for someone whose past transfers.
GOOD_PRIOR: dict[str, Table] = {
    "epochs": [[10, 2], [20, 3], [30, 2], [50, 2], [100, 1]],
    "batch_size": [[32, 3], [64, 4], [128, 3], [256, 1]],
    "loss": [["cross_entropy", 1]],
    "optimizer": [["adam", 7], ["sgd", 3]],
    "weight_decay": [[0.0, 2], [0.0001, 1], [0.0005, 2]],
    "momentum": [[0.9, 1]],
    "rho": [[0.9, 1]],
    "lambd": [[0.0001, 1]],
    "alpha": [[0.99, 1]],
    "eps": [[1e-08, 2], [1e-06, 1]],
    "lr_decay": [[0.0, 1]],
    "initial_accumulator_value": [[0.0, 1]],
    "beta1": [[0.9, 1]],
    "beta2": [[0.999, 1]],
}
#: learning rates people know to work, per optimizer
GOOD_LR: dict[str, Table] = {
    "sgd": [[0.1, 1], [0.01, 3], [0.05, 1]],
    "averaged_sgd": [[0.01, 2], [0.1, 1]],
    "adagrad": [[0.01, 2], [0.1, 1]],
    "rmsprop": [[0.001, 2], [0.0001, 1]],
    "adadelta": [[1.0, 3], [0.1, 1]],
    "adam": [[0.001, 2], [0.0003, 2], [0.0001, 3]],
}


class PastExperience(Heuristic):
    """Values a person remembers working, tagged PAST (or `code`).

    `quality` is the probability that a recalled value comes from the conventional, transferable
    prior (`GOOD_PRIOR`, learning rates per optimizer in `GOOD_LR`); otherwise it comes from
    `experience` ([[value, weight], ...] per field: what the study's participants said had worked
    for them, misleading values included; None loads them from the parameter file). A quality of
    1 is a textbook; 0 is experience with other models that does not transfer.
    """

    name = "past_experience"
    roles = frozenset({"propose"})
    default_fields = ("optimizer", "loss", "batch_size", "epochs", "lr")

    def __init__(self, quality: float = 0.7, code: int = PAST,
                 experience: Mapping[str, Table] | None = None,
                 fields: Sequence[str] | None = None, weight: float = 1.0,
                 name: str | None = None) -> None:
        super().__init__(weight, name)
        if not 0.0 <= quality <= 1.0:
            raise ValueError(f"quality={quality!r} is not allowed: expected 0 <= quality <= 1")
        if code not in (PAST, OTHER):
            raise ValueError(f"code={code!r} is not allowed: expected {PAST} or {OTHER}")
        self.quality, self.code = float(quality), int(code)
        self.experience = dict(experience if experience is not None else load_params()["past"])
        if fields is not None:
            self.default_fields = tuple(fields)

    def propose(self, view: SessionView, rng: np.random.Generator, base: Base = None,
                fields: Sequence[str] | None = None) -> Partial:
        values: dict[str, Any] = {}
        for name in self._fields(fields):
            optimizer = values.get("optimizer", value_of(base, "optimizer"))
            values[name] = self.recall(name, optimizer, rng)
        return Partial(values, dict.fromkeys(values, self.code))

    def recall(self, name: str, optimizer: str | None, rng: np.random.Generator) -> Any:
        """One remembered value for `name` (the learning rate for `optimizer`)."""
        if rng.random() < self.quality or not self.experience.get(name):
            return sample_table(self._good(name, optimizer), rng)
        return sample_table(self.experience[name], rng)

    @staticmethod
    def _good(name: str, optimizer: str | None) -> Table:
        if name == "lr":
            return GOOD_LR.get(optimizer or "adam", GOOD_LR["adam"])
        return GOOD_PRIOR.get(name, [[DEFAULTS.get(name), 1]])

    def describe(self) -> dict[str, Any]:
        return super().describe() | {"quality": self.quality, "code": self.code}
