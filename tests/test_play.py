"""The session loop: a seeded agent plays to the end; crashes end only their own session."""

import pytest

from agents import Proposal, TrialAgent, play
from support import make_env


class Ladder(TrialAgent):
    """Tries learning rates from a seeded list; stops runs whose loss rises."""

    name = "ladder"

    def propose(self, view):
        if len(view.history) >= 5:
            return None
        lr = float(10 ** self.rng.uniform(-5, -1))
        return Proposal({"epochs": 3, "batch_size": 64, "loss": "nll", "optimizer": "adam",
                         "lr": lr}, {"lr": 1, "epochs": 2})

    def keep_training(self, view):
        losses = view.running_losses
        return len(losses) < 2 or losses[-1] <= losses[-2]


class Crashing(Ladder):
    name = "crashing"

    def propose(self, view):
        if len(view.history) >= 2:
            raise ZeroDivisionError("the contestant broke")
        return super().propose(view)


class Illegal(Ladder):
    def propose(self, view):
        return Proposal({"epochs": 3, "batch_size": -1, "loss": "nll", "optimizer": "adam"})


def test_play_records_history_rationale_and_think_time():
    result = play(Ladder(), make_env(), seed=0)
    assert result.status == "ok" and len(result.history) == 5
    assert result.history[0].rationale == {"epochs": 2, "lr": 1}
    assert set(result.think_seconds) == {0, 1, 2, 3, 4}
    assert all(s >= 0 for s in result.think_seconds.values())
    assert result.final["test_accuracy"] is not None
    assert result.returns == pytest.approx(max(
        (t.val_accuracy for t in result.history if t.val_accuracy is not None), default=0))


def test_crashing_agent_ends_only_its_own_session_with_an_error_record():
    result = play(Crashing(), make_env(), seed=0)
    assert result.status == "error" and "ZeroDivisionError" in result.error
    assert len(result.history) == 2 and "test_accuracy" in result.final
    assert play(Ladder(), make_env(), seed=0).status == "ok"


def test_illegal_configuration_is_recorded_as_the_agents_error():
    result = play(Illegal(), make_env(), seed=0)
    assert result.status == "error" and "batch_size=-1" in result.error
