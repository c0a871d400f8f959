"""Multi-fidelity search with epochs as the fidelity: Hyperband / ASHA, random or TPE proposals.

Every trial is planned for `max_epochs`; after each epoch the run reports a fidelity signal to
its Optuna trial and an Optuna pruner decides, at its rungs (`min_epochs` * `reduction_factor`^k),
whether the run goes on (`keep_training`) or is stopped. Stopped runs are told as PRUNED.

- `pruner: hyperband` is Optuna's HyperbandPruner (Li et al., 2018): several brackets of
  successive halving with different starting fidelities, trials assigned to brackets by budget;
  `pruner: asha` is its SuccessiveHalvingPruner (asynchronous successive halving, Li et al.,
  2020).
- `sampler: random` gives Hyperband/ASHA proper; `sampler: tpe` gives the BOHB-style model-based
  variant Optuna recommends (TPE proposals, Hyperband stopping; Falkner et al., 2018, fit the KDE
  on the largest fidelity with enough data, TPE here uses all finished and pruned trials).

The signal (`fidelity_signal`, recorded in describe()): under the `study` protocol a run shows
no validation accuracy before it finishes, so `loss` compares runs on their epoch loss, as a
fraction of the loss of the best constant prediction of that loss function (1 - loss / reference:
0 at chance, higher is better; comparable across losses). `val_accuracy` uses the accuracy shown
after every epoch and needs protocol `full`; asking for it under `study` raises an error.
"""

from __future__ import annotations

import math
from typing import Any

import optuna
from optuna.samplers import BaseSampler

from agents.base import Proposal, SessionView
from agents.optimizers.base import OptunaAgent, make_sampler

#: loss of the best constant prediction, per loss function, for 10 classes with one-hot targets
#: (uniform probabilities for cross-entropy and nll; 0.1 everywhere for mse; 0 for l1)
REFERENCE_LOSS: dict[str, float] = {"cross_entropy": math.log(10.0), "nll": math.log(10.0),
                                    "mse": 0.09, "l1": 0.1}
#: the signal of a run whose loss is NaN or inf (below any learning run)
WORST_SIGNAL = -1.0
SIGNALS: tuple[str, ...] = ("loss", "val_accuracy")


def loss_signal(epoch_loss: float, loss: str) -> float:
    """1 - loss / reference loss (0 at chance, up to 1); WORST_SIGNAL when not finite."""
    if not math.isfinite(epoch_loss):
        return WORST_SIGNAL
    return max(1.0 - epoch_loss / REFERENCE_LOSS[loss], WORST_SIGNAL)


class MultiFidelity(OptunaAgent):
    """Hyperband or ASHA over epochs, driven from `keep_training` (see the module docstring)."""

    method = "multi_fidelity"

    def __init__(self, pruner: str = "hyperband", sampler: str = "random", min_epochs: int = 1,
                 max_epochs: int = 27, reduction_factor: int = 3,
                 fidelity_signal: str = "loss", **common: Any) -> None:
        if pruner not in ("hyperband", "asha"):
            raise ValueError(f"pruner={pruner!r} is not allowed: expected hyperband or asha")
        if fidelity_signal not in SIGNALS:
            raise ValueError(f"fidelity_signal={fidelity_signal!r} is not allowed: expected one "
                             f"of {SIGNALS}")
        if not 1 <= min_epochs < max_epochs or reduction_factor < 2:
            raise ValueError(f"min_epochs={min_epochs}, max_epochs={max_epochs}, reduction_factor"
                             f"={reduction_factor} are not allowed: expected 1 <= min_epochs < "
                             f"max_epochs and reduction_factor >= 2")
        super().__init__(epochs=max_epochs, min_epochs=min_epochs, **common)
        self.pruner, self.sampler = pruner, sampler
        self.max_epochs, self.reduction_factor = max_epochs, reduction_factor
        self.fidelity_signal = fidelity_signal

    def make_sampler(self, seed: int) -> BaseSampler:
        return make_sampler(self.sampler, seed, self.sampler_options)

    def make_pruner(self) -> optuna.pruners.BasePruner:
        if self.pruner == "asha":
            return optuna.pruners.SuccessiveHalvingPruner(
                min_resource=self.min_epochs, reduction_factor=self.reduction_factor)
        return optuna.pruners.HyperbandPruner(
            min_resource=self.min_epochs, max_resource=self.max_epochs,
            reduction_factor=self.reduction_factor)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "pruner": self.pruner, "sampler": self.sampler,
                "min_epochs": self.min_epochs, "max_epochs": self.max_epochs,
                "reduction_factor": self.reduction_factor,
                "fidelity_signal": self.fidelity_signal}

    def check_protocol(self, protocol: str) -> None:
        """Raise when the signal needs validation accuracy that the protocol hides."""
        if self.fidelity_signal == "val_accuracy" and protocol != "full":
            raise ValueError(
                f"{self.name}: fidelity_signal='val_accuracy' needs protocol 'full' (protocol "
                f"{protocol!r} shows validation accuracy only when a run finishes); use "
                f"fidelity_signal='loss' or the full protocol")

    def propose(self, view: SessionView) -> Proposal | None:
        self.check_protocol(view.protocol)
        return super().propose(view)

    def signal(self, view: SessionView) -> float:
        """This epoch's fidelity signal (higher is better)."""
        if self.fidelity_signal == "val_accuracy" and view.val_accuracy is not None:
            return view.val_accuracy
        loss = view.running_losses[-1] if view.running_losses else math.inf
        return loss_signal(loss, view.running_config.loss)

    def keep_training(self, view: SessionView) -> bool:
        trial = self._asked.get(len(view.history))
        if trial is None or view.running_config is None or not view.running_losses:
            return True
        trial.report(self.signal(view), step=len(view.running_losses))
        return not trial.should_prune()
