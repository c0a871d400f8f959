"""Builders for the tuning-session environment's Dict actions."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from envs.space import NAMES, Config
from envs.tuning_session import CONTINUE, FINISH, STOP, SUBMIT

_NO_RATIONALE = np.zeros(len(NAMES), dtype=np.int64)


def submit(config: Config | Mapping[str, Any], rationale: Mapping[str, int] | None = None
           ) -> dict[str, Any]:
    """Submit a configuration (a Config or a mapping of canonical names to typed values)."""
    values = config.to_dict() if isinstance(config, Config) else dict(config)
    codes = np.array([int((rationale or {}).get(n, 0) or 0) for n in NAMES], dtype=np.int64)
    return {"command": SUBMIT, "config": values, "rationale": codes, "final_trial": -1}


def continue_() -> dict[str, Any]:
    """Train the running run for one more epoch."""
    return {"command": CONTINUE, "config": {}, "rationale": _NO_RATIONALE, "final_trial": -1}


def stop() -> dict[str, Any]:
    """Cancel the running run."""
    return {"command": STOP, "config": {}, "rationale": _NO_RATIONALE, "final_trial": -1}


def finish(final_trial: int | None = None) -> dict[str, Any]:
    """End the session, naming a trial as final (default: the best validated one)."""
    index = -1 if final_trial is None else int(final_trial)
    return {"command": FINISH, "config": {}, "rationale": _NO_RATIONALE, "final_trial": index}
