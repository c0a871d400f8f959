"""Automated optimizers as contestants: one module per strategy, all on a shared Optuna
ask/tell base (`base.OptunaAgent`) over the search domain of `agents.domain`.

| module | class | method | library |
|---|---|---|---|
| random_search | RandomSearch | random search | optuna RandomSampler |
| grid_search | GridSearch | grid search, random order | optuna GridSampler |
| gp_bo | GPBO | Gaussian-process BO | optuna GPSampler |
| tpe | TPE | tree-structured Parzen estimator | optuna TPESampler |
| cma_es | CMAES | CMA-ES (TPE for categoricals) | optuna CmaEsSampler |
| evolution | RegularizedEvolution | aging evolution | native Optuna sampler |
| multi_fidelity | MultiFidelity | Hyperband / ASHA, BOHB-style with TPE | optuna pruners |
| pibo | PiBO | prior-guided BO | native (scikit-learn GP) |
| warm_start | WarmStart | persona's first trials, then TPE | optuna add_trial |

Each has a conf/agent/<name>.yaml; docs/optimizers.md compares them.
"""

from agents.optimizers.base import EpochCost, OptunaAgent
from agents.optimizers.cma_es import CMAES
from agents.optimizers.evolution import RegularizedEvolution, RegularizedEvolutionSampler
from agents.optimizers.gp_bo import GPBO
from agents.optimizers.grid_search import GridSearch
from agents.optimizers.multi_fidelity import MultiFidelity
from agents.optimizers.pibo import PiBO
from agents.optimizers.random_search import RandomSearch
from agents.optimizers.tpe import TPE
from agents.optimizers.warm_start import WarmStart

__all__ = ["CMAES", "GPBO", "TPE", "EpochCost", "GridSearch", "MultiFidelity", "OptunaAgent",
           "PiBO", "RandomSearch", "RegularizedEvolution", "RegularizedEvolutionSampler",
           "WarmStart"]
