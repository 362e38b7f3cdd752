"""Tables 3 and 11 (GMPO-GVP and GMPG-VPSDE on D4RL locomotion and AntMaze), the baselines of Table 3 (SfBC, QGPO,
IDQL, SRPO, Diffusion-QL) and GTP's Tables 1 and 2 (GTP-BC and GTP on the same tasks), in one sweep. The paper preset
takes GMPO's and GMPG's per-task settings from the authors' configs (tune_jobs.config.authors_settings); the smoke
preset uses Table 8's beta.

    python sweeps/benchmark.py                          # smoke: three Pendulum stand-in tasks
    python sweeps/benchmark.py --preset local           # Hopper medium, medium-replay: BC, GMPO, GMPG, GTP, 3 seeds
    python sweeps/benchmark.py --preset paper           # 9 locomotion + 6 AntMaze tasks, 5 seeds

AntMaze rows (Table 11, GTP Table 2) are scored as D4RL scored them: the success rate x 100 over the evaluation
episodes, each ending when the ant reaches the goal (genrl_core.evaluation; the rows' ref_source "success"), with
IQL's r - 1 reward and expectile 0.9. They need gymnasium-robotics and the D4RL/antmaze sets (`minari download
D4RL/antmaze/umaze-v1`, ...; provisioned by the runner where there is a network).
"""
from __future__ import annotations

import sys

from ray import tune

from tune_jobs import config as C
from tune_jobs.runner import main
from tune_jobs.space import Plan, every_preset

GMP = [("gmpo", "gvp"), ("gmpg", "vpsde")]
# the paper's baselines (Table 3 rows; Appendix C), each with its paper model: VPSDE (Diffusion-QL's DDPM is a VP too)
BASELINES = [("sfbc", "vpsde"), ("qgpo", "vpsde"), ("idql", "vpsde"), ("srpo", "vpsde"), ("dql", "vpsde")]
IQL_BASED = {"gmpo", "gmpg", "idql", "srpo"}  # the algorithms with an IQL expectile
# GTP's V net (v_source "expectile", a choice: the paper does not say how V is formed) is an expectile too, so its
# AntMaze rows take the same 0.9 (GTP-BC uses no critic)
SMOKE_TASKS = ["halfcheetah-medium-v2", "hopper-medium-replay-v2", "walker2d-medium-expert-v2"]
ANTMAZE = {"expectile": 0.9}  # Table 7: IQL expectile 0.9 on AntMaze
# AntMaze: 100 evaluation episodes, the success rate over them (GTP; the GMPO/GMPG configs use 10)
ANTMAZE_RUN = {"eval_episodes": 100}


def _gtp_available() -> bool:
    from genrl_core.run.training import build_agent

    try:
        build_agent("gtp", 3, 1, {})
        return True
    except Exception:  # not written yet or broken: the sweep runs without it
        return False


def _local_variants(task: str) -> list[dict]:
    """The local preset's rows: BC, the two GMP methods and GTP (the baselines fit no CPU-hours budget beside them)."""
    return [C.variant("local", a, m, task=task) for a, m in [("bc", "gvp"), *GMP]] + \
        ([C.variant("local", "gtp", task=task)] if _gtp_available() else [])


def _variants(preset: str, task: str) -> list[dict]:
    if preset == "local":
        return _local_variants(task)
    antmaze = task.startswith("antmaze")
    run = ANTMAZE_RUN if antmaze and preset == "paper" else {}
    beta = (lambda a: {"beta": C.table8_beta(task, a)}) if preset == "smoke" else (lambda a: {})
    out = [C.variant(preset, a, m, task=task, **beta(a), **(ANTMAZE if antmaze else {}), **run) for a, m in GMP]
    out += [C.variant(preset, a, m, task=task, **(ANTMAZE if antmaze and a in IQL_BASED else {}), **run)
            for a, m in BASELINES]
    if _gtp_available():
        out += [C.variant(preset, a, task=task, **(ANTMAZE if antmaze and a == "gtp" else {}), **run)
                for a in ("gtp", "gtp_bc")]
    return out


def plans(preset: str) -> list[Plan]:
    """One grid over (task, algorithm) variants (seeds added by the runner)."""
    tasks = {"smoke": SMOKE_TASKS, "local": C.LOCAL_TASKS}.get(preset, C.LOCOMOTION + C.ANTMAZE)
    space = {**C.run_budget(preset), "variant": tune.grid_search([v for t in tasks for v in _variants(preset, t)])}
    notes = [] if _gtp_available() else ["GTP is not available yet: Table 2 is left out"]
    if preset == "smoke":
        notes.append("AntMaze (Table 11) has no smoke stand-in; run --preset paper for it")
    if preset == "local":
        notes.append("local preset: BC, GMPO, GMPG and GTP only (the baselines run in the smoke and paper presets)")
    return [Plan("benchmark", space, notes=notes)]


if __name__ == "__main__":
    sys.exit(main("benchmark", every_preset(plans), __doc__))
