"""Datasets for the trials of a sweep: made, fetched or skipped on the driver, then checked, before Ray starts.

The smoke preset makes the Pendulum stand-in sets it lacks (one small SAC run); the local preset its D4RL-style
MuJoCo sets (one SAC run per env, about half an hour of one core each). The paper preset skips the
tasks whose locally made set (medium-replay) is absent, with a message naming the command that makes it, and
downloads the Minari-hosted sets it lacks (a failed download surfaces as a missing dataset). Last, every
trial's dataset must be on this machine, else SweepConfigError lists each missing one on its own line.
"""
from __future__ import annotations

import argparse
from dataclasses import replace
from typing import Any

from tune_jobs import config as C
from tune_jobs.space import Plan, expand, filter_space

SMOKE_DATA_BUDGET: dict[str, Any] = dict(total_steps=6000, dataset_steps=4000, start_steps=1000, n_checkpoints=30,
                                         eval_episodes=10, ref_episodes=20)


def _missing(dataset: str) -> list[str]:
    return [i for i in dataset.split("+") if C.dataset_problems(i)]


def make_smoke_datasets(datasets: set[str]) -> None:
    """Make the Pendulum stand-in sets the trials need and this machine lacks (one SAC run, ~1 minute)."""
    from genrl_core.data.making import DatasetExistsError, make_datasets

    wanted = {i for d in datasets for i in _missing(d) if i in C.SMOKE_DATASETS.values()}
    kinds = sorted({k for k, v in C.SMOKE_DATASETS.items() if v in wanted})
    if not kinds:
        return
    print(f"making smoke datasets {', '.join(sorted(wanted))} (Pendulum-v1, about a minute) ...", flush=True)
    try:
        make_datasets(C.SMOKE_ENV, kinds, seed=0, progress=False, **SMOKE_DATA_BUDGET, sac=_smoke_sac())
    except DatasetExistsError:  # another sweep made them meanwhile
        pass


def make_local_datasets(datasets: set[str]) -> None:
    """Make the local preset's MuJoCo sets the trials need and this machine lacks: one SAC run per env
    (C.LOCAL_DATA_BUDGET; about 34 minutes of one core each), all its kinds at once, with progress shown."""
    from genrl_core.data.making import DatasetExistsError, make_datasets

    wanted = sorted({i for d in datasets for i in _missing(d) if i in C.LOCAL_DATASETS.values()})
    by_env: dict[str, list[str]] = {}
    for dataset_id in wanted:
        _, name, kind = dataset_id.split("/")
        by_env.setdefault(C.LOCAL_ENVS[name], []).append(kind.rsplit("-v", 1)[0])
    for env, kinds in by_env.items():
        print(f"making {', '.join(kinds)} for {env} (SAC {C.LOCAL_DATA_BUDGET['total_steps']} steps, about 34 minutes "
              f"of one core; the same as `python -m genrl_core.datasets make --env {env} --kinds {','.join(kinds)} "
              f"--total-steps {C.LOCAL_DATA_BUDGET['total_steps']} --dataset-steps "
              f"{C.LOCAL_DATA_BUDGET['dataset_steps']}`) ...", flush=True)
        try:
            make_datasets(env, kinds, seed=0, progress=True, **C.LOCAL_DATA_BUDGET)
        except DatasetExistsError:  # another sweep made them meanwhile
            pass


def _smoke_sac() -> Any:
    from genrl_core.data.sac import SACConfig

    return SACConfig(hidden=(64, 64), lr=1e-3, batch_size=128)


def drop_unavailable_tasks(plan: Plan) -> Plan | None:
    """Paper preset: tasks whose locally made set is absent are skipped with a message."""
    seen: set[str] = set()

    def available(task: Any) -> bool:
        absent = [i for i in _missing(C.resolve_dataset("paper", str(task))) if i.startswith("local/")]
        if absent and str(task) not in seen:
            seen.add(str(task))
            print(f"note: skipping {task}: {absent[0]} is not on this machine; make it with "
                  f"`{C.make_hint(absent[0])}`", flush=True)
        return not absent

    space = filter_space(plan.space, "task", available)
    return None if space is None else replace(plan, space=space)


def download_hosted(datasets: set[str]) -> None:
    """Paper preset: fetch the Minari-hosted sets this machine lacks (failures surface in validation)."""
    import minari

    for dataset_id in sorted({i for d in datasets for i in _missing(d) if not i.startswith(("local/", "toy/"))}):
        print(f"downloading {dataset_id} ...", flush=True)
        try:
            minari.download_dataset(dataset_id)
        except Exception as err:  # reported as a missing dataset by validation
            print(f"  could not download {dataset_id}: {' '.join(str(err).split())}", flush=True)


def provide(plans: list[Plan], args: argparse.Namespace) -> tuple[list[Plan], list[dict[str, Any]]]:
    """(plans, their trial configs) once every dataset is on this machine: paper tasks without their locally made
    set dropped (unless --set dataset=... chose the data), smoke sets made, hosted sets fetched; SweepConfigError
    naming each dataset still missing."""
    if args.preset == "paper" and not any(k.startswith("dataset=") for k in args.sets):
        plans = [p for p in (drop_unavailable_tasks(p) for p in plans) if p is not None]
        if not plans:
            raise C.SweepConfigError("no task of this sweep has its datasets on this machine (see the messages above)")
    trials = [t for p in plans for t in expand(p.space)]
    datasets = {t["dataset"] for t in trials}
    if args.preset == "smoke":
        make_smoke_datasets(datasets)
    elif args.preset == "local":
        make_local_datasets(datasets)
    else:
        download_hosted(datasets)
    C.validate_datasets(trials)
    return plans, trials
