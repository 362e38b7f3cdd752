"""Table 12: the temperature beta of GMPO (GVP) and GMPG (VPSDE), beta in {1, 4, 8}.

    python sweeps/beta_ablation.py                      # smoke: Pendulum stand-ins, minutes on 2 CPUs
    python sweeps/beta_ablation.py --preset local       # hopper-medium on a locally made set, 3 seeds, CPU hours
    python sweeps/beta_ablation.py --preset paper       # halfcheetah-medium(-replay), 5 seeds, GPU cluster
"""
from __future__ import annotations

import sys

from ray import tune

from tune_jobs import config as C
from tune_jobs.runner import main
from tune_jobs.space import Plan, every_preset

TASKS = ["halfcheetah-medium-v2", "halfcheetah-medium-replay-v2"]
BETAS = [1.0, 4.0, 8.0]
MODELS = [("gmpo", "gvp"), ("gmpg", "vpsde")]  # the paper's pairs in Table 12


def plans(preset: str) -> list[Plan]:
    """One grid: task x (algorithm, model) x beta (seeds added by the runner)."""
    tasks = C.LOCAL_TASKS[:1] if preset == "local" else TASKS
    space = {**C.run_budget(preset),
             "variant": tune.grid_search([C.variant(preset, a, m, task=t) for t in tasks for a, m in MODELS]),
             "beta": tune.grid_search(BETAS)}
    return [Plan("beta_ablation", space)]


if __name__ == "__main__":
    sys.exit(main("beta_ablation", every_preset(plans), __doc__))
