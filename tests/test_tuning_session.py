"""The tuning-session environment: Gymnasium contract, protocols, commands, budget, final test."""

import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import envs
from envs import actions
from envs.space import InvalidConfigError
from support import make_env

GOOD = {"epochs": 4, "batch_size": 64, "loss": "cross_entropy", "optimizer": "adam", "lr": 1e-4}


def run_to_end(env, obs):
    """Continue until the running run ends; returns the last step's results."""
    result = (obs, 0.0, False, False, {})
    while result[0]["running"] and not (result[2] or result[3]):
        result = env.step(actions.continue_())
    return result


def test_registered_and_passes_check_env():
    env = gym.make(envs.ENV_ID)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check_env(env.unwrapped)
    assert env.unwrapped.protocol == "study" and env.unwrapped.budget_minutes == 120


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="protocol='fast'"):
        make_env(protocol="fast")
    with pytest.raises(ValueError, match="backend='gpu'"):
        make_env(backend="gpu")
    with pytest.raises(ValueError, match="budget_minutes=-1"):
        make_env(budget_minutes=-1)


def test_study_protocol_hides_accuracy_until_the_run_completes():
    env = make_env()
    env.reset(seed=0)
    obs, reward, *_ = env.step(actions.submit(GOOD))
    assert obs["running"] == 1 and obs["epoch"] == 1 and obs["val_accuracy"] == -1.0
    assert np.isfinite(obs["epoch_loss"]) and obs["batch_losses"].shape == (16,)
    assert reward == 0.0
    obs, reward, _, _, info = run_to_end(env, obs)
    assert info["event"] == "completed" and obs["running"] == 0
    assert obs["val_accuracy"] > 0.3 and reward == pytest.approx(obs["val_accuracy"])
    trial = info["history"][0]
    assert trial.outcome == "completed" and trial.epochs_run == 4
    assert trial.val_accuracy == obs["val_accuracy"] and len(trial.train_losses) == 4


def test_full_protocol_shows_accuracy_every_epoch_and_rewards_improvement():
    env = make_env(protocol="full")
    env.reset(seed=0)
    obs, reward, *_ = env.step(actions.submit(GOOD))
    assert 0.0 <= obs["val_accuracy"] <= 1.0 and reward == pytest.approx(obs["val_accuracy"])
    total = reward
    while obs["running"]:
        obs, reward, *_ = env.step(actions.continue_())
        total += reward
        assert reward >= 0.0
    assert total == pytest.approx(obs["best_val_accuracy"])


def test_stop_cancels_and_submit_aborts_the_running_run():
    env = make_env()
    env.reset(seed=1)
    env.step(actions.submit(GOOD))
    obs, _, _, _, info = env.step(actions.stop())
    assert info["event"] == "cancelled" and obs["running"] == 0
    assert info["history"][-1].outcome == "cancelled" and info["history"][-1].val_accuracy is None
    env.step(actions.submit(GOOD))
    _, _, _, _, info = env.step(actions.submit({**GOOD, "lr": 1e-4}))
    assert [t.outcome for t in info["history"]] == ["cancelled", "cancelled"]
    assert info["history"][1].reason == "aborted by a new submission"
    _, _, _, _, info = env.step(actions.stop())
    assert env.step(actions.stop())[4]["event"] == "noop"


def test_absurd_values_diverge_and_refused_values_fail():
    env = make_env()
    env.reset(seed=2)
    absurd = {**GOOD, "optimizer": "sgd", "lr": 8, "momentum": 4}
    obs, reward, _, _, info = run_to_end(env, env.step(actions.submit(absurd))[0])
    assert env.unwrapped._history[-1].outcome == "diverged"
    assert np.isinf(env.unwrapped._history[-1].train_losses[-1])
    _, _, _, _, info = env.step(actions.submit({**GOOD, "beta1": 4}))
    assert info["event"] == "failed" and "beta1" in info["history"][-1].reason


def test_invalid_submission_raises_and_loses_nothing():
    env = make_env()
    env.reset(seed=3)
    env.step(actions.submit(GOOD))
    before = env.unwrapped._elapsed_s
    with pytest.raises(InvalidConfigError, match="batch_size=-3"):
        env.step(actions.submit({**GOOD, "batch_size": -3}))
    obs, *_ = env.step(actions.continue_())
    assert obs["running"] == 1 and obs["epoch"] == 2 and env.unwrapped._elapsed_s > before


def test_budget_truncates_and_final_test_uses_best_validated_trial():
    env = make_env(budget_minutes=3)
    env.reset(seed=4)
    env.step(actions.submit({**GOOD, "epochs": 1}))
    obs, _, terminated, truncated, info = env.step(actions.submit({**GOOD, "epochs": 1000}))
    while not (terminated or truncated):
        obs, _, terminated, truncated, info = env.step(actions.continue_())
    assert truncated and not terminated and obs["remaining_minutes"] == 0.0
    assert obs["elapsed_minutes"] == pytest.approx(3.0)
    history = info["history"]
    assert [t.outcome for t in history] == ["completed", "unfinished"]
    final = info["final"]
    assert final["trial"] == 0 and len(final["test_accuracies"]) == 10
    assert 0.0 <= final["test_accuracy"] <= 1.0 and final["test_accuracy_sd"] >= 0.0
    with pytest.raises(RuntimeError, match="reset"):
        env.step(actions.continue_())


def test_finish_names_a_trial_and_without_runs_has_no_final():
    env = make_env()
    env.reset(seed=5)
    for lr in (1e-4, 1e-2):
        run_to_end(env, env.step(actions.submit({**GOOD, "lr": lr}))[0])
    _, _, terminated, _, info = env.step(actions.finish(final_trial=1))
    assert terminated and info["final"]["trial"] == 1 and info["final"]["config"].lr == 1e-2
    env.reset(seed=5)
    _, _, terminated, _, info = env.step(actions.finish())
    assert terminated and info["final"]["test_accuracy"] is None and info["history"] == ()


def _session(seed):
    env = make_env()
    obs, _ = env.reset(seed=seed)
    seen = []
    for lr in (1e-4, 3e-3, 0.3):
        obs, *_ = env.step(actions.submit({**GOOD, "lr": lr}))
        seen.append(obs["batch_losses"].copy())
        obs, _, _, _, info = run_to_end(env, obs)
        seen.append(obs["val_accuracy"])
    info = env.step(actions.finish())[4]
    return seen, info["final"]["test_accuracies"]


def test_same_seed_same_session_and_other_seed_differs():
    first, second, other = _session(7), _session(7), _session(8)
    assert repr(first) == repr(second)
    assert repr(first) != repr(other)


def test_seconds_are_simulated_per_epoch_and_small_batches_cost_more():
    env = make_env()
    env.reset(seed=9)
    obs, *_ = env.step(actions.submit({**GOOD, "batch_size": 256}))
    large = float(obs["elapsed_minutes"])
    env.step(actions.stop())
    obs, *_ = env.step(actions.submit({**GOOD, "batch_size": 2}))
    small = float(obs["elapsed_minutes"]) - large
    assert small > 5 * large > 0


def test_render_ansi():
    env = make_env(render_mode="ansi")
    env.reset(seed=0)
    env.step(actions.submit(GOOD))
    assert "trials=1" in env.render() and "running=1" in env.render()


def test_real_training_id_is_registered_as_nondeterministic():
    spec = gym.spec(envs.REAL_ENV_ID)
    assert spec.nondeterministic and spec.kwargs["backend"] == "real"
    assert not gym.spec(envs.ENV_ID).nondeterministic


def test_finishing_during_a_run_records_it_as_unfinished_in_the_final_history():
    env = make_env()
    env.reset(seed=6)
    env.step(actions.submit({**GOOD, "epochs": 900}))
    _, _, terminated, _, info = env.step(actions.finish())
    assert terminated and [t.outcome for t in info["history"]] == ["unfinished"]
    assert info["history"][0].epochs_run == 1 and info["history"][0].reason == "session ended"
    assert info["final"]["trial"] is None  # an unfinished run was never validated
