"""Table 8: a per-dataset beta found by Bayesian optimisation (Optuna's TPE) with ASHA early stopping.

One Tune experiment per (task, algorithm); beta ~ log-uniform on [0.1, 32]; metric: normalised score of the
latest evaluation, maximised; ASHA stops weak trials at the evaluations (grace period 1, factor 2).

    python sweeps/tune_beta.py                          # smoke: GMPO on one Pendulum stand-in, 6 samples
    python sweeps/tune_beta.py --preset paper           # 15 tasks x GMPO, GMPG, 24 samples each
"""
from __future__ import annotations

import math
import sys
from typing import Any

from ray import tune

from tune_jobs import config as C
from tune_jobs.runner import main
from tune_jobs.space import Plan, points, every_preset

BETA_RANGE = (0.1, 32.0)
SAMPLES = {"smoke": 6, "local": 8, "paper": 24}


def _searcher():
    from ray.tune.search.optuna import OptunaSearch

    return OptunaSearch()


def evaluations(space: dict[str, Any]) -> int:
    """Evaluations a trial of this (prepared) space reports: its longest run over its most frequent evaluation."""
    budget = {**C.RUN_DEFAULTS, **space.get("variant", {}), **{k: v for k, v in space.items() if k != "variant"}}
    return math.ceil(max(points(budget["steps"])) / min(points(budget["eval_every"])))


def _asha(space: dict[str, Any]):
    """ASHA over the evaluations, sized after --set (a trial's steps and eval_every)."""
    from ray.tune.schedulers import ASHAScheduler

    return ASHAScheduler(time_attr="training_iteration", max_t=evaluations(space), grace_period=1, reduction_factor=2)


def plans(preset: str) -> list[Plan]:
    """One searcher experiment per (task, algorithm)."""
    tasks = {"smoke": ["halfcheetah-medium-v2"], "local": C.LOCAL_TASKS[:1]}.get(preset, C.LOCOMOTION + C.ANTMAZE)
    algos = [("gmpo", "gvp")] if preset == "smoke" else [("gmpo", "gvp"), ("gmpg", "vpsde")]
    out = []
    for task in tasks:
        for algo, model in algos:
            extra = {"expectile": 0.9} if task.startswith("antmaze") else {}
            variant = C.variant(preset, algo, model, task=task, **extra)
            space = {**C.run_budget(preset), "variant": variant, "beta": tune.loguniform(*BETA_RANGE)}
            out.append(Plan(f"tune_beta-{algo}-{task}", space, samples=SAMPLES[preset], searcher=_searcher,
                            scheduler=_asha, metric="score_mean", mode="max"))
    return out


if __name__ == "__main__":
    sys.exit(main("tune_beta", every_preset(plans), __doc__))
