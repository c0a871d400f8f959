"""Human warm start: a persona plays the session's first `k` trials, then an optimizer goes on.

The persona (`persona`: any agent, e.g. `agents.persona.Persona` with `experience_months`; a
`_target_` mapping in the YAML) acts alone until `k` of its trials have ended, it wants to
finish, or its phase has used `persona_share` of the budget (its running run is then stopped;
None = no time box: a person's 800-epoch first run can otherwise take the whole session). Its
runs, with its own rationale and early stopping, are part of the session. The
optimizer (`sampler`: "tpe" or "random", Optuna) then receives those trials as finished trials
of its study (`study.add_trial`, values clipped into the domain; completed runs with their
accuracy, diverged and failed ones at `failure_value`, cancelled ones as FAIL) and proposes the
rest of the session.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from optuna.samplers import BaseSampler

from agents.base import Agent
from agents.optimizers.base import OptunaAgent, make_sampler
from envs import actions
from envs.tuning_session import FINISH


class WarmStart(OptunaAgent):
    """A persona's first `k` trials, then a sampler seeded with them."""

    method = "warm_start"

    def __init__(self, persona: Agent, k: int = 3, sampler: str = "tpe",
                 persona_share: float | None = 0.5, **common: Any) -> None:
        super().__init__(**common)
        if not isinstance(persona, Agent):
            raise TypeError(f"persona is a {type(persona).__name__}: expected an Agent (a "
                            f"config with _target_, e.g. agents.persona.Persona)")
        if k < 1:
            raise ValueError(f"k={k!r} is not allowed: expected >= 1")
        if persona_share is not None and not 0 < persona_share <= 1:
            raise ValueError(f"persona_share={persona_share!r} is not allowed: expected a "
                             f"fraction in (0, 1] or None")
        self.persona, self.k, self.sampler = persona, int(k), sampler
        self.persona_share = persona_share
        make_sampler(sampler, 0)  # validates the name early

    def make_sampler(self, seed: int) -> BaseSampler:
        return make_sampler(self.sampler, seed, self.sampler_options)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "k": self.k, "sampler": self.sampler,
                "persona_share": self.persona_share, "persona": self.persona.describe()}

    def reset(self, seed: int) -> None:
        super().reset(seed)
        self.persona.reset(int(self.rng.integers(2**31)))
        self._human = True

    def act(self, obs: Mapping[str, Any], info: Mapping[str, Any]) -> dict[str, Any]:
        if self._human:
            running = bool(obs["running"])
            if not self._time_left(obs):
                self._human = False
                if running:
                    return actions.stop()
            elif running or len(info.get("history", ())) < self.k:
                action = self.persona.act(obs, info)
                if int(action["command"]) != FINISH:
                    return action
            self._human = False
        return super().act(obs, info)

    def _time_left(self, obs: Mapping[str, Any]) -> bool:
        """Whether the persona's phase is still inside its share of the budget."""
        if self.persona_share is None:
            return True
        elapsed = float(obs["elapsed_minutes"])
        return elapsed < self.persona_share * (elapsed + float(obs["remaining_minutes"]))
