"""Small, composable human tuning heuristics (see `heuristics.base` for the protocol).

Each module is one habit the user study observed: defaults first, random guessing as people
guess, past-experience priors, learning from previous submissions, one factor at a time, early
stopping from the visible losses, impatience, budget awareness and a final-choice rule.
Personas (`agents.persona.Persona`) compose them; a new heuristic is one module here and one
YAML file in conf/heuristic/ (docs/extending.md).
"""

from heuristics.base import ROLES, Heuristic, Partial, single
from heuristics.budget import BudgetAware
from heuristics.defaults_first import DefaultsFirst
from heuristics.early_stopping import EarlyStopping, Impatience
from heuristics.final_choice import FinalChoice
from heuristics.learn_from_previous import LearnFromPrevious
from heuristics.numbers import human_number, load_params
from heuristics.one_factor import OneFactorAtATime
from heuristics.past_experience import PastExperience
from heuristics.random_guess import RandomGuess
from heuristics.view import best_trial, make_view, seconds_per_epoch

__all__ = [
    "ROLES", "BudgetAware", "DefaultsFirst", "EarlyStopping", "FinalChoice", "Heuristic",
    "Impatience", "LearnFromPrevious", "OneFactorAtATime", "Partial", "PastExperience",
    "RandomGuess", "best_trial", "human_number", "load_params", "make_view",
    "seconds_per_epoch", "single",
]
