"""Gymnasium environments of hpo-arena: search space, training backends, tuning session."""

from gymnasium.envs.registration import register, registry

from envs.space import DEFAULTS, HYPERPARAMETERS, NAMES, Config, InvalidConfigError, validate

ENV_ID = "hpo_arena/TuningSession-v0"
#: The same environment on real training (measured time), registered as nondeterministic.
REAL_ENV_ID = "hpo_arena/RealTuningSession-v0"

if ENV_ID not in registry:
    register(id=ENV_ID, entry_point="envs.tuning_session:TuningSessionEnv",
             disable_env_checker=True)
if REAL_ENV_ID not in registry:
    register(id=REAL_ENV_ID, entry_point="envs.tuning_session:TuningSessionEnv",
             nondeterministic=True, disable_env_checker=True,
             kwargs={"backend": "real", "dataset": "digits"})

__all__ = ["DEFAULTS", "ENV_ID", "HYPERPARAMETERS", "NAMES", "REAL_ENV_ID", "Config",
           "InvalidConfigError", "validate"]
