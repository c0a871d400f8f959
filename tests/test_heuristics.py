"""Behaviour of each heuristic building block."""

from __future__ import annotations

import math

import numpy as np
import pytest

from envs.space import DEFAULT, DEFAULTS, GUESS, LEARNED, OTHER, PAST, Config, validate
from envs.trials import Trial
from heuristics import (
    BudgetAware,
    DefaultsFirst,
    EarlyStopping,
    FinalChoice,
    Impatience,
    LearnFromPrevious,
    OneFactorAtATime,
    Partial,
    PastExperience,
    RandomGuess,
    make_view,
    seconds_per_epoch,
)
from heuristics.numbers import ORDINARY, human_number, is_extreme, step
from heuristics.past_experience import GOOD_LR

BASE = Config(epochs=10, batch_size=64, loss="cross_entropy", optimizer="adam")
NUMERIC_GUESS = {"kind": "numeric", "mu": -3.0, "sigma": 0.5, "p_zero": 0.0, "pow2": 0.0,
                 "extremes": [0.0, 1.0]}
DISTRIBUTIONS = {
    "lr": NUMERIC_GUESS,
    "epochs": {"kind": "numeric", "mu": 1.0, "sigma": 0.5, "p_zero": 0.0, "pow2": 0.0,
               "extremes": [3.0]},
    "batch_size": {"kind": "numeric", "mu": 2.0, "sigma": 0.5, "p_zero": 0.0, "pow2": 0.5,
                   "extremes": [0.0]},
    "loss": {"kind": "categorical", "probs": {"cross_entropy": 1.0, "mse": 1.0}},
    "optimizer": {"kind": "categorical", "probs": {"adam": 3.0, "sgd": 1.0}},
}
MANTISSAS = {"1": 3.0, "5": 1.0}


def trial(index: int, config: Config = BASE, outcome: str = "completed",
          val: float | None = 0.5, losses: tuple[float, ...] = (2.0, 1.5), seconds: float = 20.0,
          **rationale: int) -> Trial:
    return Trial(index=index, config=config, rationale=dict(rationale), outcome=outcome,
                 epochs_planned=config.epochs, epochs_run=len(losses), val_accuracy=val,
                 train_losses=losses, seconds=seconds, start_minutes=index,
                 end_minutes=index + 1)


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


# ------------------------------------------------------------------------------ protocol
def test_partial_checks_names_and_codes_and_merges() -> None:
    with pytest.raises(ValueError, match="colour"):
        Partial({"colour": 1}, {"colour": GUESS})
    with pytest.raises(ValueError, match="rationale code"):
        Partial({"lr": 0.1}, {"lr": 9})
    merged = Partial({"lr": 0.1}, {"lr": GUESS}).merge(Partial({"lr": 0.01}, {"lr": PAST}))
    assert merged.values == {"lr": 0.01} and merged.rationale == {"lr": PAST}
    assert merged.apply(BASE).lr == 0.01
    assert len(merged.without(["lr"])) == 0


def test_human_numbers_are_round() -> None:
    values = [human_number("lr", 0.0042, rng(s), MANTISSAS) for s in range(50)]
    assert set(values) <= {0.001, 0.005}
    assert all(human_number("batch_size", 100, rng(s), pow2=1.0) == 128 for s in range(5))


def test_step_moves_like_a_person() -> None:
    assert step("lr", 0.001, -1.0) == 0.0001
    assert step("lr", 0.001, 0.5) == 0.003
    assert step("momentum", 0.9, 1.0) == 0.99
    assert step("momentum", 4.0, -1.0) == 0.9  # absurd: back to the usual value
    assert step("weight_decay", 0.0, 1.0) == 1e-4
    assert step("epochs", 10, 0.3) == 20 and step("batch_size", 1, -1.0) == 1


# ----------------------------------------------------------------------------- proposals
def test_random_guess_ordinary_and_extreme() -> None:
    calm = RandomGuess(0.0, DISTRIBUTIONS, MANTISSAS)
    wild = RandomGuess(1.0, DISTRIBUTIONS, MANTISSAS)
    calm_lr = [calm.guess("lr", rng(s)) for s in range(200)]
    wild_lr = [wild.guess("lr", rng(s)) for s in range(200)]
    assert not any(is_extreme("lr", v) for v in calm_lr)
    assert np.mean([is_extreme("lr", v) for v in wild_lr]) > 0.8
    optimizers = [calm.guess("optimizer", rng(s)) for s in range(400)]
    assert 0.65 < optimizers.count("adam") / 400 < 0.85
    proposal = calm.propose(make_view(), rng())
    assert set(proposal.rationale.values()) == {GUESS}
    validate(proposal.values)


def test_defaults_first_sets_defaults_and_typical_picks() -> None:
    picks = {"optimizer": [["adam", 1.0]], "loss": [["cross_entropy", 1.0]],
             "batch_size": [[32, 1.0]], "epochs": [[10, 1.0]]}
    partial = DefaultsFirst(picks).propose(make_view(), rng())
    config = partial.apply()
    assert (config.optimizer, config.batch_size, config.epochs) == ("adam", 32, 10)
    assert all(partial.values[n] == DEFAULTS[n] for n in ("lr", "eps", "beta1", "beta2"))
    assert set(partial.rationale.values()) == {DEFAULT}


def test_past_experience_quality_knob() -> None:
    misleading = {"lr": [[0.9, 1.0]], "loss": [["mse", 1.0]]}
    good = PastExperience(1.0, experience=misleading)
    bad = PastExperience(0.0, experience=misleading)
    adam_rates = {row[0] for row in GOOD_LR["adam"]}
    for s in range(20):
        assert good.propose(make_view(), rng(s), {"optimizer": "adam"}, ["lr"]).values["lr"] \
            in adam_rates
        assert bad.propose(make_view(), rng(s), BASE, ["lr", "loss"]).values == {
            "lr": 0.9, "loss": "mse"}
    assert set(bad.propose(make_view(), rng(), BASE, ["lr"]).rationale.values()) == {PAST}
    assert PastExperience(1.0, OTHER, misleading).propose(
        make_view(), rng(), BASE, ["lr"]).rationale == {"lr": OTHER}


def test_learn_lowers_lr_after_nan_and_fixes_absurd_values() -> None:
    learn = LearnFromPrevious(step=1.0)
    hot = BASE.replace(lr=0.1)
    diverged = trial(0, hot, "diverged", None, (2.3, math.inf))
    partial = learn.propose(make_view([diverged]), rng())
    assert partial.values == {"lr": 0.01} and partial.rationale == {"lr": LEARNED}
    broken = trial(0, BASE.replace(optimizer="sgd", momentum=4.0), "diverged", None, (math.inf,))
    assert learn.propose(make_view([broken]), rng()).values == {"momentum": 0.0}
    naive = LearnFromPrevious(step=1.0, knows_ranges=False)
    assert naive.propose(make_view([broken]), rng()).values == {"lr": 0.0001}


def test_learn_after_chance_and_after_success() -> None:
    learn = LearnFromPrevious(step=1.0)
    l1 = trial(0, BASE.replace(loss="l1"), val=0.1, losses=(0.2, 0.2))
    assert learn.propose(make_view([l1]), rng()).values == {"loss": "cross_entropy"}
    sgd_slow = trial(0, BASE.replace(optimizer="sgd", lr=0.0001), val=0.1)
    assert learn.propose(make_view([sgd_slow]), rng()).values == {"lr": 0.001}
    assert LearnFromPrevious(knows_ranges=False).propose(make_view([sgd_slow]), rng()) == \
        Partial()
    best = trial(0, BASE, val=0.6)
    assert learn.propose(make_view([best]), rng()).values == {"epochs": 20}
    assert learn.propose(make_view(), rng()) == Partial()


def test_one_factor_changes_one_field_in_the_direction_that_helped() -> None:
    ofat = OneFactorAtATime(step=0.5, switch_to={"loss": {"mse": 1.0},
                                                 "optimizer": {"sgd": 1.0}})
    history = [trial(0, BASE.replace(lr=0.001), val=0.3), trial(1, BASE.replace(lr=0.0001),
                                                                 val=0.5)]
    view = make_view(history)
    for s in range(10):
        partial = ofat.propose(view, rng(s))
        assert len(partial) == 1 and set(partial.rationale.values()) == {LEARNED}
    lowered = ofat.propose(view, rng(), fields=["lr"]).values["lr"]
    assert lowered < 0.0001  # lowering helped: keep lowering
    assert ofat.propose(view, rng(), fields=["loss"]).values == {"loss": "mse"}
    assert ofat.propose(make_view(), rng()) == Partial()


def test_budget_epochs_fit_the_remaining_time() -> None:
    budget = BudgetAware(fraction=0.5)
    seen = trial(0, BASE, seconds=100.0, losses=(2.0,) * 10)  # 10 s per epoch at batch 64
    view = make_view([seen], remaining_minutes=10.0)
    assert seconds_per_epoch(view, 64) == pytest.approx(10.0)
    epochs = budget.propose(view, rng(), BASE).values["epochs"]
    assert 10 <= epochs <= 50 and budget.propose(view, rng(), BASE).rationale == {"epochs": OTHER}
    assert budget.cap(view, BASE.replace(epochs=500)).values == {"epochs": 60}
    assert budget.cap(view, BASE) == Partial()
    assert seconds_per_epoch(view, 8) > seconds_per_epoch(view, 512)


# ------------------------------------------------------------------------------ stopping
def running(losses: tuple[float, ...], history: tuple[Trial, ...] = (),
            config: Config = BASE, **kwargs: object) -> object:
    return make_view(history, losses, config, **kwargs)


def test_early_stopping_rules() -> None:
    stop = EarlyStopping(patience=2, noise=0.0)
    assert stop.should_stop(running((2.30, 2.30, 2.30)), rng())  # flat from the start
    assert not stop.should_stop(running((2.30, 2.29)), rng())  # not patient yet
    assert not stop.should_stop(running((2.0, 1.5, 1.2, 1.0)), rng())  # learning
    assert not stop.should_stop(running((2.0, 1.0, 0.99, 0.99)), rng())  # converged: finish
    assert stop.should_stop(running((2.0, 2.8)), rng())  # diverging
    assert stop.should_stop(running((2.0, math.inf)), rng())
    best = trial(0, BASE, val=0.7, losses=(1.5, 1.0, 0.8))
    assert stop.should_stop(running((2.0, 1.6), (best,)), rng())  # worse than the best
    assert not stop.should_stop(running((1.5, 1.0), (best,)), rng())
    full = running((2.0, 1.9), protocol="full", val_accuracy=0.1)
    assert stop.should_stop(full, rng())
    assert not stop.should_stop(running(()), rng())


def test_impatience_spreads_cancels_over_the_run() -> None:
    long_run = running((2.0,), config=BASE.replace(epochs=11))
    assert Impatience(1.0).should_stop(long_run, rng())
    assert not any(Impatience(0.0).should_stop(long_run, rng(s)) for s in range(50))
    stops = np.mean([Impatience(0.5).should_stop(long_run, rng(s)) for s in range(2000)])
    assert stops == pytest.approx(1 - 0.5 ** 0.1, abs=0.02)


# ---------------------------------------------------------------------------------- final
def test_final_choice() -> None:
    history = [trial(0, BASE.replace(epochs=5), val=0.70), trial(1, val=None,
                                                               outcome="cancelled"),
               trial(2, BASE.replace(epochs=50), val=0.69), trial(3, val=0.4)]
    view = make_view(history)
    assert FinalChoice().final_choice(view, rng()) == 0
    assert FinalChoice(tolerance=0.02).final_choice(view, rng()) == 2
    assert FinalChoice(prefer="last").final_choice(view, rng()) == 3
    assert FinalChoice().final_choice(make_view(history[1:2]), rng()) is None


@pytest.mark.parametrize("bad", [
    lambda: RandomGuess(extreme=2.0), lambda: PastExperience(quality=-1),
    lambda: PastExperience(code=4), lambda: EarlyStopping(patience=0),
    lambda: BudgetAware(fraction=0), lambda: FinalChoice(prefer="worst"),
    lambda: Impatience(per_run=1.5), lambda: LearnFromPrevious(step=0),
    lambda: OneFactorAtATime(step=-1), lambda: FinalChoice(weight=2.0),
])
def test_bad_parameters_are_rejected(bad: object) -> None:
    with pytest.raises(ValueError):
        bad()


def test_ordinary_ranges_cover_every_numeric_field() -> None:
    from envs.space import SPACE

    assert {n for n, hp in SPACE.items() if hp.kind != "categorical"} == set(ORDINARY)
