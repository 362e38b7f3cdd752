"""The command line every sweep script shares, and the plan it prints before running.

parser() defines the flags (preset, seeds, storage, resume / fresh, cluster and resources, --set / --only,
--dry-run); print_plan() says how many trials run in how many experiments, which dataset stands for each task
(and, in the paper preset, where its data comes from), and each plan's notes.
"""
from __future__ import annotations

import argparse
import sys
from typing import Any

from tune_jobs import config as C
from tune_jobs.space import Plan, trial_count


def parser(name: str, doc: str | None) -> argparse.ArgumentParser:
    """The flags every sweep script shares."""
    p = argparse.ArgumentParser(prog=f"sweeps/{name}.py", description=doc,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", choices=list(C.PRESETS), default="smoke",
                   help="smoke: tiny budgets on a locally made Pendulum set (default); local: the paper's MuJoCo "
                        "tasks on D4RL-style sets made on this machine, budgets for a CPU workstation; paper: the "
                        "paper's grid")
    p.add_argument("--seeds", type=int, nargs="+", default=None,
                   help="seeds (default: " + ", ".join(f"{k} {' '.join(map(str, v))}" for k, v in C.PRESET_SEEDS.items())
                        + ")")
    p.add_argument("--storage", default="results", help="local path or s3:// / gs:// URI for Ray state and Parquet")
    p.add_argument("--name", default=name, help="sweep name: Parquet partition and experiment folder")
    p.add_argument("--resume", action="store_true", help="continue the unfinished trials (Tuner.restore)")
    p.add_argument("--fresh", action="store_true", help="delete this sweep's previous results and state first")
    p.add_argument("--address", default=None, help="Ray cluster to join (default: RAY_ADDRESS, else local Ray)")
    p.add_argument("--temp-dir", default=None, help="Ray temp dir of the embedded local Ray")
    p.add_argument("--num-cpus", type=int, default=None, help="CPUs of the embedded local Ray (default: all)")
    p.add_argument("--cpus-per-trial", type=float, default=1.0, help="CPUs per trial")
    p.add_argument("--gpus-per-trial", type=float, default=None,
                   help="GPU fraction per trial; several small trials share a GPU (default: 0.25 if the cluster "
                        "has GPUs, else 0)")
    p.add_argument("--max-failures", type=int, default=3, help="restarts of a failed trial from its checkpoint")
    p.add_argument("--samples", type=int, default=None, help="trials per searcher experiment (tune_beta)")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key in every trial (a [list] becomes a grid), e.g. --set steps=2000")
    p.add_argument("--only", action="append", default=[], metavar="KEY=V1,V2",
                   help="keep only trials whose KEY is one of the values, e.g. --only algorithm=gmpo")
    p.add_argument("--dry-run", action="store_true", help="validate and list the trials, then exit")
    return p


def print_plan(name: str, preset: str, plans: list[Plan], trials: list[dict[str, Any]]) -> None:
    """The sweep's trial count, each task's dataset (and its source in the paper preset), and the plans' notes."""
    pairs = sorted({(t["task"], t["dataset"]) for t in trials})
    print(f"sweep {name} ({preset} preset): {sum(trial_count(p) for p in plans)} trials in {len(plans)} experiment(s)")
    for task, dataset in pairs:
        source = C.dataset_source(dataset) if preset == "paper" else ""
        print(f"  {task or '(no task)'} -> {dataset}" + (f" ({source})" if source else ""))
    if preset == "local":
        hours = [C.cpu_hours(t) for t in trials]
        known = [h for h in hours if h is not None]
        print(f"  gradient steps: about {sum(known):.1f} CPU-hours on one core of an AMD EPYC (evaluation not counted"
              + (f"; {len(hours) - len(known)} trial(s) of unmeasured algorithms left out)" if len(known) < len(hours)
                 else ")"))
    for note in (n for p in plans for n in p.notes):
        print(f"  note: {note}")
    sys.stdout.flush()
