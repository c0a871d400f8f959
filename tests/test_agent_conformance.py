"""Conformance suite run over every registered agent (each YAML in conf/agent/).

Every contestant must: play a full 120-minute surrogate session through the public API with
legal proposals; tolerate diverged, failed, cancelled and NaN-loss runs; give the same session
for the same seed, also in a fresh process; and finish inside the budget.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from agents.play import play
from envs import actions
from envs.space import InvalidConfigError, validate
from envs.trials import Trial
from envs.tuning_session import COMMANDS, SUBMIT
from support import AGENT_CONFIGS, ROOT, HostileBackend, digest, make_agent, make_env

pytestmark = pytest.mark.skipif(not AGENT_CONFIGS, reason="no agent registered in conf/agent")
IDS = [p.stem for p in AGENT_CONFIGS]
SEED = 11


def _legal(trials):
    for trial in trials:
        assert validate(trial.config.to_dict()) == trial.config
        assert set(trial.rationale.values()) <= {1, 2, 3, 4, 5}


@pytest.mark.parametrize("path", AGENT_CONFIGS, ids=IDS)
def test_plays_a_full_session_with_legal_proposals(path):
    agent = make_agent(path)
    assert isinstance(agent.name, str) and agent.name
    assert isinstance(agent.describe(), dict)
    result = play(agent, make_env(120), seed=SEED)
    assert result.status == "ok", result.error
    assert len(result.history) >= 1
    _legal(result.history)
    assert result.elapsed_minutes <= 120.0 + 1e-6
    assert all(t.end_minutes <= 120.0 + 1e-6 for t in result.history)


@pytest.mark.parametrize("path", AGENT_CONFIGS, ids=IDS)
def test_tolerates_diverged_failed_and_cancelled_runs(path):
    result = play(make_agent(path), make_env(60, backend=HostileBackend()), seed=SEED)
    assert result.status == "ok", result.error
    outcomes = {t.outcome for t in result.history}
    assert outcomes & {"diverged", "failed"}
    _legal(result.history)


def _trial(index, outcome, val, losses):
    config = validate({"epochs": 3, "batch_size": 32, "loss": "cross_entropy",
                       "optimizer": "sgd", "lr": 0.01 * (index + 1)})
    return Trial(index=index, config=config, rationale={}, outcome=outcome, epochs_planned=3,
                 epochs_run=len(losses), val_accuracy=val, train_losses=tuple(losses),
                 seconds=30.0, start_minutes=index, end_minutes=index + 0.5)


def _idle_observation(env, remaining):
    obs = env.observation_space.sample()
    obs.update(running=0, val_accuracy=np.float64(-1), best_val_accuracy=np.float64(0.4),
               epoch_loss=np.float64(np.inf), batch_losses=np.full(16, np.inf),
               remaining_minutes=np.float64(remaining), elapsed_minutes=np.float64(10.0),
               n_trials=np.int64(4), last_outcome=2)
    return obs


@pytest.mark.parametrize("path", AGENT_CONFIGS, ids=IDS)
def test_acts_legally_after_a_history_of_every_outcome(path):
    history = (_trial(0, "diverged", None, [float("inf")]), _trial(1, "failed", None, []),
               _trial(2, "cancelled", None, [2.3, float("nan")]),
               _trial(3, "completed", 0.4, [2.0, 1.7, 1.5]))
    env = make_env()
    agent = make_agent(path)
    agent.reset(SEED)
    info = {"event": "cancelled", "history": history, "protocol": "study", "trial": None,
            "backend": "surrogate"}
    action = agent.act(_idle_observation(env.unwrapped, 100.0), info)
    assert 0 <= int(action["command"]) < len(COMMANDS)
    if int(action["command"]) == SUBMIT:
        try:
            env.reset(seed=0)
            env.step(action)
        except InvalidConfigError as error:  # pragma: no cover - the failure message
            pytest.fail(f"{path.stem} proposed an illegal configuration: {error}")


@pytest.mark.parametrize("path", AGENT_CONFIGS, ids=IDS)
def test_same_seed_same_session(path):
    first = play(make_agent(path), make_env(60), seed=SEED)
    second = play(make_agent(path), make_env(60), seed=SEED)
    assert digest(first) == digest(second)


_FRESH = """
import json, sys
sys.path.insert(0, "tests")
from support import AGENT_CONFIGS, digest, make_agent, make_env
from agents.play import play
print(json.dumps({p.stem: digest(play(make_agent(p), make_env(60), seed=%d))
                  for p in AGENT_CONFIGS}))
"""


def test_same_seed_same_session_in_a_fresh_process():
    here = {p.stem: digest(play(make_agent(p), make_env(60), seed=SEED)) for p in AGENT_CONFIGS}
    out = subprocess.run([sys.executable, "-c", _FRESH % SEED], cwd=ROOT, capture_output=True,
                         text=True, check=True, env={**os.environ, "PYTHONHASHSEED": "123"})
    assert json.loads(out.stdout.strip().splitlines()[-1]) == here


def test_finish_action_builder_is_legal_for_the_env():
    env = make_env()
    env.reset(seed=0)
    assert env.step(actions.finish())[2]
