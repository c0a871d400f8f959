"""The automated optimizers: full surrogate sessions, what they tell their studies, budgets,
multi-fidelity stopping, each method's own mechanics, and short real-training sessions."""

from __future__ import annotations

import math

import numpy as np
import optuna
import pytest
from optuna.trial import TrialState

from agents.base import Agent, Proposal, SessionView, TrialAgent
from agents.domain import DomainError, load_domain
from agents.optimizers import (
    CMAES,
    EpochCost,
    GridSearch,
    MultiFidelity,
    PiBO,
    RandomSearch,
    RegularizedEvolutionSampler,
    WarmStart,
)
from agents.optimizers.multi_fidelity import REFERENCE_LOSS, WORST_SIGNAL, loss_signal
from agents.optimizers.pibo import Prior
from agents.play import play
from envs.space import OTHER, PAST, Config
from envs.trials import Trial
from support import ROOT, make_agent, make_env

OPTIMIZERS = sorted(p for p in (ROOT / "conf" / "agent").glob("*.yaml")
                    if "agents.optimizers." in p.read_text())
IDS = [p.stem for p in OPTIMIZERS]
BASE = {"epochs": 4, "batch_size": 64, "loss": "cross_entropy", "optimizer": "adam"}


def view(env, n_history: int = 0, remaining: float | None = None) -> SessionView:
    """An idle view with `n_history` earlier trials (placeholders) and `remaining` minutes."""
    obs, _ = env.reset(seed=0)
    if remaining is not None:
        obs["remaining_minutes"] = np.float64(remaining)
    return SessionView(obs, [None] * n_history, (), None, "study")


def trial(index: int, config: Config, outcome: str, val: float | None, epochs: int = 4,
          seconds: float = 40.0) -> Trial:
    return Trial(index=index, config=config, rationale={}, outcome=outcome,
                 epochs_planned=config.epochs, epochs_run=epochs, val_accuracy=val,
                 train_losses=(2.0,) * epochs, seconds=seconds, start_minutes=0.0,
                 end_minutes=1.0)


class Scripted(TrialAgent):
    """A stand-in persona: Adam at a fixed learning rate, tagged 'worked for me in the past'."""

    name = "scripted"

    def propose(self, view: SessionView) -> Proposal | None:
        return Proposal({**BASE, "lr": 3e-4, "batch_size": 48}, {"lr": PAST})


# ------------------------------------------------------------------------ full sessions

@pytest.mark.parametrize("path", OPTIMIZERS, ids=IDS)
def test_full_surrogate_session_stays_in_the_domain_and_records_it(path):
    agent = make_agent(path)
    result = play(agent, make_env(120), seed=3)
    assert result.status == "ok", result.error
    assert len(result.history) >= 10 and result.elapsed_minutes <= 120 + 1e-6
    described = agent.describe()
    assert described["domain"] == "default" and described["domain_hash"] == agent.domain.digest
    own = [t for t in result.history if set(t.rationale.values()) == {OTHER}]
    assert len(own) >= 5
    for t in own:  # every proposal lies in the domain, unread fields at the study defaults
        inside = agent.domain.config(agent.domain.encode(t.config))
        assert inside.replace(epochs=t.config.epochs) == t.config, t.config
        assert 1 <= t.config.epochs <= inside.epochs  # epochs only ever shortened (budget)
    assert result.final["test_accuracy"] is not None


# ------------------------------------------------------------------ what studies are told

def test_outcomes_are_told_without_nan_and_failures_at_chance():
    env = make_env()
    agent = RandomSearch(name="random")
    agent.reset(0)
    fates = [("completed", 0.5), ("completed", math.nan), ("diverged", None),
             ("failed", None), ("cancelled", None), ("unfinished", None)]
    for index, (outcome, val) in enumerate(fates):
        config = agent.propose(view(env, index)).config
        agent.observe(trial(index, config, outcome, val))
    told = [(t.state, t.value) for t in agent.study.trials]
    assert told == [(TrialState.COMPLETE, 0.5), (TrialState.COMPLETE, 0.1),
                    (TrialState.COMPLETE, 0.1), (TrialState.COMPLETE, 0.1),
                    (TrialState.PRUNED, None), (TrialState.FAIL, None)]
    strict = RandomSearch(name="strict", failure_value=None)
    strict.reset(0)
    config = strict.propose(view(env)).config
    strict.observe(trial(0, config, "diverged", None))
    assert strict.study.trials[0].state == TrialState.FAIL


def test_trials_the_agent_did_not_propose_are_added_clipped_into_the_domain():
    agent = RandomSearch(name="random")
    agent.reset(0)
    wild = Config.from_mapping({**BASE, "lr": 8.0, "epochs": 300, "optimizer": "sgd",
                                "momentum": 4.0})
    agent.observe(trial(0, wild, "diverged", None))
    agent.observe(trial(1, wild.replace(lr=0.01, momentum=0.9), "completed", 0.6))
    first, second = agent.study.trials
    assert first.params["lr"] == 1.0 and first.params["epochs"] == 30
    assert first.params["momentum"] == 0.99 and first.value == 0.1
    assert second.value == 0.6 and second.params["lr"] == 0.01


# ------------------------------------------------------------------------------ budget

def test_epoch_cost_learns_overhead_plus_per_step_cost():
    cost = EpochCost()
    assert cost.seconds_per_epoch(64) is None
    for batch in (16, 32, 128, 512):
        config = Config.from_mapping({**BASE, "batch_size": batch})
        cost.add(trial(0, config, "completed", 0.5, epochs=4, seconds=4 * (3 + 640 / batch)))
    cost.add(trial(0, Config.from_mapping(BASE), "unfinished", None, seconds=1e6))  # ignored
    assert cost.seconds_per_epoch(64) == pytest.approx(13.0)
    assert cost.seconds_per_epoch(1024) == pytest.approx(3.625)


def test_proposals_are_shortened_to_the_remaining_time_or_the_session_ends():
    env = make_env()
    agent = RandomSearch(name="random", epochs=10, min_epochs=3)
    agent.reset(0)
    config = agent.propose(view(env)).config
    agent.observe(trial(0, config, "completed", 0.5, epochs=10, seconds=10 * 12.0))
    assert agent.fit_budget(config, view(env, 1, remaining=100.0)) == config
    assert agent.fit_budget(config, view(env, 1, remaining=1.0)).epochs == 4  # 60 / 13.2
    assert agent.fit_budget(config, view(env, 1, remaining=0.5)) is None  # 2 < min_epochs
    assert agent.propose(view(env, 1, remaining=0.5)) is None
    assert agent.study.trials[-1].state == TrialState.FAIL


# ---------------------------------------------------------------------- multi-fidelity

def test_loss_signal_is_comparable_across_losses():
    assert loss_signal(REFERENCE_LOSS["cross_entropy"], "cross_entropy") == pytest.approx(0.0)
    assert loss_signal(0.045, "mse") == pytest.approx(0.5)
    assert loss_signal(float("inf"), "nll") == loss_signal(float("nan"), "l1") == WORST_SIGNAL
    assert loss_signal(1e9, "cross_entropy") == WORST_SIGNAL


def test_hyperband_stops_runs_at_its_rungs_on_the_loss():
    agent = make_agent(ROOT / "conf" / "agent" / "hyperband.yaml")
    result = play(agent, make_env(120), seed=2)
    assert result.status == "ok" and agent.describe()["fidelity_signal"] == "loss"
    cancelled = [t.epochs_run for t in result.history if t.outcome == "cancelled"]
    completed = [t.epochs_run for t in result.history if t.outcome == "completed"]
    assert len(cancelled) > len(completed) > 0
    assert set(cancelled) <= {1, 3, 9} and max(completed) == 27


def test_validation_accuracy_signal_needs_the_full_protocol():
    agent = MultiFidelity(name="asha", pruner="asha", fidelity_signal="val_accuracy",
                          max_epochs=9)
    result = play(agent, make_env(30), seed=0)
    assert result.status == "error" and "needs protocol 'full'" in result.error
    result = play(agent, make_env(30, protocol="full"), seed=0)
    assert result.status == "ok" and any(t.outcome == "cancelled" for t in result.history)
    with pytest.raises(ValueError, match="fidelity_signal"):
        MultiFidelity(fidelity_signal="accuracy")


# -------------------------------------------------------------------- method mechanics

def test_grid_search_visits_its_grid_once_and_finishes():
    agent = GridSearch(name="grid", grid={"optimizer": ["adam", "sgd"], "lr": 3},
                       fixed={"loss": "nll", "batch_size": 64}, epochs=2)
    result = play(agent, make_env(120), seed=0)
    points = {(t.config.optimizer, t.config.lr) for t in result.history}
    assert len(result.history) == 6 and len(points) == 6
    assert sorted({lr for _, lr in points}) == pytest.approx([1e-5, 10 ** -2.5, 1.0])
    assert result.elapsed_minutes < 60 and agent.describe()["grid_size"] == 6
    with pytest.raises(DomainError, match="grid.lr"):
        GridSearch(name="grid", grid={"lr": "all", "optimizer": "all"}, epochs=2,
                   fixed={"loss": "nll", "batch_size": 64})
    with pytest.raises(DomainError, match="momentum is not searched"):
        GridSearch(name="grid", grid={"momentum": 3}, fixed={"momentum": 0.9})


def test_evolution_children_change_one_field_of_a_population_member():
    domain = load_domain("default").with_fixed({"optimizer": "adam", "loss": "nll"})
    sampler = RegularizedEvolutionSampler(population_size=5, tournament_size=3, seed=0)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    rng = np.random.default_rng(0)
    for number in range(25):
        population = [t.params for t in study.trials[-5:]]
        asked = study.ask()
        params = domain.suggest(asked)
        if number >= 5:
            changed = [sum(p[k] != params[k] for k in params) for p in population]
            assert min(changed) == 1
        study.tell(asked, float(rng.random()))
    for value, dist in ((0.999, optuna.distributions.FloatDistribution(0.5, 0.999)),
                        (16, optuna.distributions.IntDistribution(16, 512, log=True))):
        mutated = [sampler.mutate(value, dist) for _ in range(200)]
        assert min(mutated) >= dist.low and max(mutated) <= dist.high


def test_cma_es_runs_on_the_shared_numeric_fields():
    agent = CMAES(name="cma_es")
    result = play(agent, make_env(120), seed=1)
    assert result.status == "ok"
    space = agent.study.sampler.infer_relative_search_space(agent.study, None)
    assert set(space) == {"epochs", "batch_size", "lr", "weight_decay"}
    generations = [t for t in agent.study.trials
                   if any(k.endswith("generation") for k in t.system_attrs)]
    assert len(generations) >= len(result.history) - 2  # CMA-ES, not the fallback


def test_pibo_starts_from_its_prior_and_decays_it():
    prior = {"epochs": 5, "batch_size": 64, "loss": "cross_entropy", "optimizer": "sgd",
             "lr": 0.05, "momentum": 0.9}
    agent = PiBO(name="pibo", prior=prior, prior_sd=0.01, prior_weight=0.99,
                 n_startup_trials=4)
    result = play(agent, make_env(60), seed=0)
    assert result.status == "ok" and len(result.history) > 10
    for t in result.history[:4]:
        assert t.config.optimizer == "sgd" and 0.04 < t.config.lr < 0.065
    assert len({t.config.epochs for t in result.history[:4]}) > 1  # epochs: flat prior
    density = Prior(agent.domain, Config.from_mapping(prior), 0.15, 0.6)
    centre = density.centre
    assert density.log_density({"lr": centre["lr"], "optimizer": "sgd"}) == 0.0
    assert density.log_density({"lr": 1e-4, "optimizer": "adam"}) < -5
    assert agent.describe()["prior"]["lr"] == 0.05


def test_pibo_centres_its_prior_on_the_personas_first_configuration():
    agent = PiBO(name="pibo", prior_persona=Scripted(), n_startup_trials=2)
    result = play(agent, make_env(30), seed=0)
    assert result.status == "ok"
    assert agent.prior.centre["lr"] == 3e-4 and agent.prior.centre["batch_size"] == 48
    assert "epochs" not in agent.prior.centre


def test_warm_start_plays_the_persona_first_then_seeds_the_optimizer():
    agent = WarmStart(name="warm", persona=Scripted(), k=2)
    result = play(agent, make_env(60), seed=0)
    assert result.status == "ok" and len(result.history) > 4
    assert [t.rationale for t in result.history[:2]] == [{"lr": PAST}] * 2
    assert all(set(t.rationale.values()) == {OTHER} for t in result.history[2:])
    first = agent.study.trials[0]
    assert first.params["lr"] == 3e-4 and first.params["batch_size"] == 48
    assert first.value == result.history[0].val_accuracy
    with pytest.raises(TypeError, match="expected an Agent"):
        WarmStart(name="warm", persona={"experience_months": 3})
    assert isinstance(agent.persona, Agent)


class Marathon(Scripted):
    """A persona whose first run would take the whole session."""

    def propose(self, view: SessionView) -> Proposal | None:
        return Proposal({**BASE, "epochs": 900, "lr": 3e-4}, {"epochs": PAST})


def test_warm_start_time_boxes_the_persona():
    agent = WarmStart(name="warm", persona=Marathon(), k=3, persona_share=0.25)
    result = play(agent, make_env(60), seed=0)
    first = result.history[0]
    assert first.outcome == "cancelled" and 15.0 <= first.end_minutes < 16.0
    assert len(result.history) > 3 and result.history[1].rationale != first.rationale


# ------------------------------------------------------------------------ real training

@pytest.fixture(scope="module")
def digits():
    """One small real backend shared by every method (digits loaded and decoded once), on one
    CPU thread (tiny batches on a busy machine run many times faster than on several)."""
    torch = pytest.importorskip("torch")
    from envs.real_training import RealBackend

    threads = torch.get_num_threads()
    yield RealBackend(dataset="digits", image_size=17, max_epochs=1, device="cpu",
                      train_subset=32, num_threads=1)
    torch.set_num_threads(threads)


@pytest.mark.parametrize("path", OPTIMIZERS, ids=IDS)
def test_short_real_training_session_on_digits(path, digits):
    agent = make_agent(path)
    result = play(agent, make_env(0.02, backend=digits, final_repeats=1), seed=0)
    assert result.status == "ok", result.error
    assert result.history and result.history[0].seconds > 0
    for t in result.history:
        assert Config.from_mapping(t.config.to_dict()) == t.config
