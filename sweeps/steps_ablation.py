"""Table 6: GMPG's training solver steps T in {32, 100, 1000} (VPSDE, velocity), evaluated with 32 steps.

    python sweeps/steps_ablation.py                     # smoke: Pendulum stand-ins, a few policy steps
    python sweeps/steps_ablation.py --preset paper      # halfcheetah-medium(-replay), 5 seeds, GPU cluster
"""
from __future__ import annotations

import sys

from ray import tune

from tune_jobs import config as C
from tune_jobs.runner import main
from tune_jobs.space import Plan, every_preset

TASKS = ["halfcheetah-medium-v2", "halfcheetah-medium-replay-v2"]
TRAIN_STEPS = [32, 100, 1000]
# T = 1000 backpropagates through 1000 solver steps: the smoke preset takes only 30 policy steps on small batches.
SMOKE = {"steps": 130, "eval_every": 65, "batch_size": 32}


def plans(preset: str) -> list[Plan]:
    """One grid: task x T (seeds added by the runner)."""
    budget = {**C.run_budget(preset), **(SMOKE if preset == "smoke" else {})}
    tasks = C.LOCAL_TASKS[:1] if preset == "local" else TASKS
    variants = [C.variant(preset, "gmpg", "vpsde", prediction="velocity", sampling_steps=32, task=t) for t in tasks]
    space = {**budget, "variant": tune.grid_search(variants), "train_steps": tune.grid_search(TRAIN_STEPS)}
    return [Plan("steps_ablation", space)]


if __name__ == "__main__":
    sys.exit(main("steps_ablation", every_preset(plans), __doc__))
