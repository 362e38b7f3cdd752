"""Table 8: a per-dataset beta found by Bayesian optimisation (Optuna's TPE) with ASHA early stopping.

One Tune experiment per (task, algorithm); beta ~ log-uniform on [0.1, 32]; metric: normalised score of the
latest evaluation, maximised; ASHA stops weak trials at the evaluations (grace period 1, factor 2).

    python sweeps/tune_beta.py                          # smoke: GMPO on one Pendulum stand-in, 6 samples
    python sweeps/tune_beta.py --preset paper           # 15 tasks x GMPO, GMPG, 24 samples each
"""
from __future__ import annotations

import sys

from ray import tune

from tune_jobs import config as C
from tune_jobs.runner import Plan, main

BETA_RANGE = (0.1, 32.0)
SAMPLES = {"smoke": 6, "paper": 24}


def _searcher():
    from ray.tune.search.optuna import OptunaSearch

    return OptunaSearch()


def _scheduler(evaluations: int):
    from ray.tune.schedulers import ASHAScheduler

    return lambda: ASHAScheduler(time_attr="training_iteration", max_t=evaluations, grace_period=1,
                                 reduction_factor=2)


def plans(preset: str) -> list[Plan]:
    """One searcher experiment per (task, algorithm)."""
    tasks = ["halfcheetah-medium-v2"] if preset == "smoke" else C.LOCOMOTION + C.ANTMAZE
    algos = [("gmpo", "gvp")] if preset == "smoke" else [("gmpo", "gvp"), ("gmpg", "vpsde")]
    out = []
    for task in tasks:
        for algo, model in algos:
            extra = {"expectile": 0.9} if task.startswith("antmaze") else {}
            variant = C.variant(preset, algo, model, **extra)
            run = C.run_budget(preset)
            evaluations = {**variant, **run}["steps"] // {**variant, **run}["eval_every"]
            space = {**run, "task": task, "variant": variant, "beta": tune.loguniform(*BETA_RANGE)}
            out.append(Plan(f"tune_beta-{algo}-{task}", space, samples=SAMPLES[preset], searcher=_searcher,
                            scheduler=_scheduler(evaluations), metric="score_mean", mode="max"))
    return out


if __name__ == "__main__":
    sys.exit(main("tune_beta", {"smoke": lambda: plans("smoke"), "paper": lambda: plans("paper")}, __doc__))
