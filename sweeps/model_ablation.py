"""Tables 5 and 10: the generative model of GMPO (VPSDE-eps, GVP, I-CFM) and GMPG (VPSDE, GVP, I-CFM; all
velocity) on the D4RL locomotion tasks, each with the paper's per-task beta (Table 8). Table 5 is the average.

    python sweeps/model_ablation.py                     # smoke: two Pendulum stand-in tasks
    python sweeps/model_ablation.py --preset paper      # the 9 locomotion tasks, 5 seeds, GPU cluster
"""
from __future__ import annotations

import sys

from ray import tune

from tune_jobs import config as C
from tune_jobs.runner import main
from tune_jobs.space import Plan, every_preset

MODELS = [("gmpo", "vpsde", "eps"), ("gmpo", "gvp", "velocity"), ("gmpo", "icfm", "velocity"),
          ("gmpg", "vpsde", "velocity"), ("gmpg", "gvp", "velocity"), ("gmpg", "icfm", "velocity")]
SMOKE_TASKS = ["halfcheetah-medium-v2", "hopper-medium-replay-v2"]


def plans(preset: str) -> list[Plan]:
    """One grid over (task, algorithm, model, prediction, beta) variants (seeds added by the runner)."""
    tasks = {"smoke": SMOKE_TASKS, "local": C.LOCAL_TASKS[:1]}.get(preset, C.LOCOMOTION)
    beta = (lambda t, a: {"beta": C.table8_beta(t, a)}) if preset == "smoke" else (lambda t, a: {})  # paper: authors'
    variants = [C.variant(preset, a, m, prediction=p, task=t, **beta(t, a)) for t in tasks for a, m, p in MODELS]
    return [Plan("model_ablation", {**C.run_budget(preset), "variant": tune.grid_search(variants)})]


if __name__ == "__main__":
    sys.exit(main("model_ablation", every_preset(plans), __doc__))
