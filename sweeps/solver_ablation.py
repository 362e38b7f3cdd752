"""Table 13: the sampling solver of GMPO and GMPG (both VPSDE): Euler, midpoint, RK4 (3/8 rule) at 32 steps
and DPM-Solver-2 at 17 steps. The solver only changes how actions are sampled (training is the same).

    python sweeps/solver_ablation.py                    # smoke: Pendulum stand-ins, minutes on 2 CPUs
    python sweeps/solver_ablation.py --preset paper     # hopper-medium, halfcheetah-medium-expert, 5 seeds
"""
from __future__ import annotations

import sys

from ray import tune

from tune_jobs import config as C
from tune_jobs.runner import main
from tune_jobs.space import Plan, every_preset

TASKS = ["hopper-medium-v2", "halfcheetah-medium-expert-v2"]
# GMPO-VPSDE predicts noise as the authors' config does (noise net, score matching); GMPG needs a velocity model
MODELS = [("gmpo", "vpsde", "eps"), ("gmpg", "vpsde", "velocity")]
SOLVERS = [{"solver": "euler", "sampling_steps": 32}, {"solver": "midpoint", "sampling_steps": 32},
           {"solver": "rk4", "sampling_steps": 32}, {"solver": "dpm2", "sampling_steps": 17}]


def plans(preset: str) -> list[Plan]:
    """One grid: task x (algorithm, model) x (solver, steps) (seeds added by the runner)."""
    space = {**C.run_budget(preset),
             "variant": tune.grid_search([C.variant(preset, a, m, prediction=p, task=t)
                                          for t in (C.LOCAL_TASKS[:1] if preset == "local" else TASKS)
                                          for a, m, p in MODELS]),
             "variant_solver": tune.grid_search(SOLVERS)}
    return [Plan("solver_ablation", space)]


if __name__ == "__main__":
    sys.exit(main("solver_ablation", every_preset(plans), __doc__))
