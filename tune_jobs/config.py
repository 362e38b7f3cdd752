"""The flat trial config of every sweep, its validation, and the paper-task -> dataset table.

A trial config is one flat dict: the run-level keys of RUN_DEFAULTS (algorithm, task, dataset, seed,
budgets) plus any field of the algorithm's config dataclass (beta, solver, sampling_steps, ...);
`model` is accepted as the name of the probability path (the dataclass field `path`). Sweeps may tie
keys together under "variant" (a dict merged into the trial config), e.g. {"algorithm": "gmpg",
"model": "vpsde"}. `validate_trials` checks every trial on the driver, before Ray starts, and
reports each bad value once, one line each: the run-level keys and the names of keys, models and solvers
here, the rules of an algorithm's config by building its agent (genrl_core.run.training.build_agent).
"""
from __future__ import annotations

import csv
import dataclasses
import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable

from genrl_core import algorithms
from genrl_core.data import d4rl
from genrl_core.data.loading import SCALINGS
from genrl_core.generative.networks import PRECISIONS, check_precision
from genrl_core.run.packing import COMPILE_PACKED, ENGINES
from genrl_core.generative.paths import PATHS, PREDICTIONS
from genrl_core.generative.solvers import SOLVERS
from genrl_core.run.training import EPOCH_KEYS, with_run_schedules

RUN_DEFAULTS: dict[str, Any] = {
    "algorithm": "gmpo",  # registered algorithm name (genrl_core.algorithms.names())
    "task": "",  # the paper's task this trial stands for, e.g. halfcheetah-medium-v2 (table rows)
    "dataset": "",  # dataset id(s) actually used ("a+b" concatenates); empty: the preset's table entry for task
    "preset": "",  # smoke, local or paper: which table maps task -> dataset when dataset is empty
    "seed": 0,  # random seed of the run
    "steps": 1_000_000,  # gradient steps in all
    "eval_every": 50_000,  # gradient steps between evaluations (one report and checkpoint each)
    "eval_episodes": 10,  # episodes per evaluation
    "batch_size": 256,  # minibatch size
    "reward_scaling": "auto",  # auto, locomotion, antmaze or none (genrl_core.data.loading)
    "normalize_obs": False,  # normalise observations by the dataset's statistics
    "device": "auto",  # torch device; auto = cuda when the trial got a GPU, else cpu
    "seeds_per_trial": 1,  # seeds seed, seed+1, ... trained together in this trial as one packed model, a row each
    "pack_engine": "vmap",  # packed seeds: vmap (one batched model, faster) or loop (in turn; any algorithm)
    "precision": "fp32",  # updates in fp32, or bf16 (the generative backbones' matmuls in bfloat16; critics fp32)
    "policy_eval_every": 0,  # > 0: also evaluate when the policy phase starts and every this many steps of it
    "critic_epochs": 0,  # > 0: critic_steps = this many passes over the dataset (the authors' unit), set at load
    "behaviour_epochs": 0,  # > 0: behaviour_steps likewise
    "policy_epochs": 0,  # > 0: steps = the phases before the policy + this many passes at the policy's batch size
    "reuse_stages": True,  # GMPO / GMPG: train the critic (and mu) stage once per dataset, seed and stage config in
    #                        the sweep, load it in the other trials (tune_jobs.stages; results are the same)
    "compile": False,  # the networks of every update and of act() through torch.compile (genrl_core.run.compiled; CUDA
    #                    graphs on a GPU); same losses within float rounding; seeds trained one by one only
}
ALIASES = {"model": "path"}  # flat-config name -> dataclass field

# The paper's D4RL -v2 / -v0 task -> the dataset(s) used for it (Minari does not host D4RL locomotion):
# medium -> mujoco/<env>/medium-v0; medium-expert -> medium-v0 + expert-v0 concatenated (how D4RL built it);
# medium-replay -> a locally made set (python -m genrl_core.datasets make --env <Env>-v5 --kinds medium-replay),
# skipped with a message when absent; antmaze-* -> D4RL/antmaze/*-v1.
PAPER_DATASETS: dict[str, tuple[str, ...]] = {
    "halfcheetah-medium-v2": ("mujoco/halfcheetah/medium-v0",),
    "hopper-medium-v2": ("mujoco/hopper/medium-v0",),
    "walker2d-medium-v2": ("mujoco/walker2d/medium-v0",),
    "halfcheetah-medium-expert-v2": ("mujoco/halfcheetah/medium-v0", "mujoco/halfcheetah/expert-v0"),
    "hopper-medium-expert-v2": ("mujoco/hopper/medium-v0", "mujoco/hopper/expert-v0"),
    "walker2d-medium-expert-v2": ("mujoco/walker2d/medium-v0", "mujoco/walker2d/expert-v0"),
    "halfcheetah-medium-replay-v2": ("local/halfcheetah/medium-replay-v0",),
    "hopper-medium-replay-v2": ("local/hopper/medium-replay-v0",),
    "walker2d-medium-replay-v2": ("local/walker2d/medium-replay-v0",),
    "antmaze-umaze-v0": ("D4RL/antmaze/umaze-v1",),
    "antmaze-umaze-diverse-v0": ("D4RL/antmaze/umaze-diverse-v1",),
    "antmaze-medium-play-v0": ("D4RL/antmaze/medium-play-v1",),
    "antmaze-medium-diverse-v0": ("D4RL/antmaze/medium-diverse-v1",),
    "antmaze-large-play-v0": ("D4RL/antmaze/large-play-v1",),
    "antmaze-large-diverse-v0": ("D4RL/antmaze/large-diverse-v1",),
}
LOCOMOTION = [t for t in PAPER_DATASETS if not t.startswith("antmaze")]
ANTMAZE = [t for t in PAPER_DATASETS if t.startswith("antmaze")]
# Gymnasium envs of the locally made medium-replay sets (for the message that says how to make them).
LOCAL_ENVS = {"halfcheetah": "HalfCheetah-v5", "hopper": "Hopper-v5", "walker2d": "Walker2d-v5"}

# Smoke preset: each paper task is stood in for by a small Pendulum-v1 set of the same kind, made on demand.
SMOKE_ENV = "Pendulum-v1"
SMOKE_DATASETS: dict[str, str] = {
    "medium": "local/pendulum/medium-v0",
    "medium-replay": "local/pendulum/medium-replay-v0",
    "medium-expert": "local/pendulum/medium-expert-v0",
    "expert": "local/pendulum/expert-v0",
}
# Budgets. Run-level keys every trial of a preset shares; the rest is per algorithm (variant dicts), since
# the algorithms' config dataclasses differ (GTP has no path / widths).
SMOKE_RUN: dict[str, Any] = {"steps": 300, "eval_every": 100, "eval_episodes": 2, "batch_size": 128}
_SMOKE_POLICY = {"backbone": "mlp", "widths": (64, 64), "lr": 1e-3, "sampling_steps": 8, "loglik_steps": 8}
_SMOKE_IQL = {"critic_hidden": (64, 64), "critic_lr": 1e-3}
SMOKE_ALGOS: dict[str, dict[str, Any]] = {
    "bc": _SMOKE_POLICY,
    "gmpo": {**_SMOKE_POLICY, **_SMOKE_IQL, "critic_steps": 100},  # Algorithm 1: critic first, then the policy
    "gmpg": {**_SMOKE_POLICY, **_SMOKE_IQL, "behaviour_steps": 100, "critic_steps": 100, "train_steps": 8},
    "gtp": {"hidden": (64, 64), "critic_hidden": (64, 64)},  # GTP: schedule_steps follows steps (the trainable)
    "gtp_bc": {"hidden": (64, 64), "critic_hidden": (64, 64)},
    "sfbc": {**_SMOKE_POLICY, **_SMOKE_IQL, "behaviour_steps": 100, "target_candidates": 4, "candidates": 8,
             "train_sampling_steps": 4},
    "qgpo": {**_SMOKE_POLICY, **_SMOKE_IQL, "behaviour_steps": 100, "target_candidates": 4, "energy_candidates": 4,
             "train_sampling_steps": 4, "energy_hidden": (64, 64)},
    "idql": {**_SMOKE_POLICY, **_SMOKE_IQL, "candidates": 8},
    "srpo": {**_SMOKE_POLICY, **_SMOKE_IQL, "behaviour_steps": 100, "actor_hidden": (64, 64)},
    "dql": {**_SMOKE_POLICY, **_SMOKE_IQL, "sampling_steps": 5},
}
# The paper gives Table 7's learning rates, batch sizes and T, not step counts ("24 to 72 hours" per run on an
# A100). GMPO and GMPG take every per-task setting from the authors' own configs (authors_settings below: phases
# in epochs, learning rates, clamps, batches); the other algorithms' step counts are this project's choice.
PAPER_RUN: dict[str, Any] = {"eval_episodes": 10}
_PAPER_POLICY = {"backbone": "resunet", "lr": 1e-4, "sampling_steps": 32, "solver": "euler"}
PAPER_ALGOS: dict[str, dict[str, Any]] = {
    "bc": {**_PAPER_POLICY, "steps": 500_000, "eval_every": 25_000, "batch_size": 4096},
    # GMPO / GMPG: the step counts below are placeholders that authors_settings' epochs replace for their tasks
    "gmpo": {**_PAPER_POLICY, "steps": 500_000, "eval_every": 25_000, "batch_size": 4096, "critic_lr": 3e-4},
    "gmpg": {**_PAPER_POLICY, "steps": 300_000, "eval_every": 15_000, "batch_size": 4096, "critic_lr": 3e-4,
             "behaviour_steps": 200_000, "critic_steps": 200_000, "train_steps": 1000, "grad_checkpoint": True,
             "policy_batch_size": 40960},
    "gtp": {"steps": 2_000_000, "eval_every": 100_000, "batch_size": 256},  # GTP: 2M steps at batch 256
    "gtp_bc": {"steps": 2_000_000, "eval_every": 100_000, "batch_size": 256},
    # baselines (paper Appendix C): behaviour pretraining as GMPG's; the rest of each config is its dataclass default
    "sfbc": {**_PAPER_POLICY, "steps": 500_000, "eval_every": 25_000, "batch_size": 4096, "behaviour_steps": 200_000},
    "qgpo": {**_PAPER_POLICY, "steps": 500_000, "eval_every": 25_000, "batch_size": 4096, "behaviour_steps": 200_000},
    "idql": {**_PAPER_POLICY, "steps": 500_000, "eval_every": 25_000, "batch_size": 4096},
    "srpo": {**_PAPER_POLICY, "steps": 500_000, "eval_every": 25_000, "batch_size": 4096, "behaviour_steps": 200_000},
    "dql": {"steps": 500_000, "eval_every": 25_000, "batch_size": 256},  # Diffusion-QL's own 3x256 MLP (its default)
}
# Local preset: the paper's locomotion tasks on D4RL-style MuJoCo sets made on this machine (genrl_core.data.making:
# one SAC run per env, LOCAL_DATA_BUDGET; medium-expert = medium ++ expert episodes, as D4RL built it), at budgets that
# fit a CPU workstation: batch 256, a 256x3 MLP backbone (the paper's residual U-Net and batch 4096 do not fit), GMPO's
# and GMPG's per-task beta, clamps and learning rates from the authors' configs (local_settings; GMPG's beta is the
# preset's own, LOCAL_OVER_AUTHORS), phases in steps.
# Seed packing is off: on this CPU 3 seeds packed by vmap took longer than 3 runs one after another (BC 11.2 ms a step
# against 3 x 3.1 ms), so the preset runs one seed per trial and core.
LOCAL_DATASETS: dict[str, str] = {t: "local/{}/{}-v0".format(*t.rsplit("-v", 1)[0].split("-", 1)) for t in LOCOMOTION}
LOCAL_DATA_BUDGET: dict[str, Any] = dict(total_steps=200_000, dataset_steps=100_000)  # ~34 min of one core per env
LOCAL_RUN: dict[str, Any] = {"eval_episodes": 10, "batch_size": 256, "seeds_per_trial": 1}
_LOCAL_NET = {"backbone": "mlp", "widths": (256, 256, 256), "sampling_steps": 31, "solver": "euler", "loglik_steps": 8}
# The critic's budget decides GMPO's and GMPG's scores (issue 20: GMPO 12.4 on a 25k-step critic, 16.4 on 100k, 18.1 on
# 200k): the local preset gives it 50k steps at the authors' critic learning rate. critic_value_init stays off: on
# local/hopper/medium-v0 it made Q's mean overshoot the returns and left the advantage unrelated to them after 20k steps
# (corr(A, G - V) -0.03, against 0.17 without it).
_LOCAL_CRITIC = {"critic_lr": 3e-4}
_LOCAL_IQL = {**_LOCAL_CRITIC, "critic_steps": 50_000}  # GMPO / GMPG: the critic phase before the policy
LOCAL_ALGOS: dict[str, dict[str, Any]] = {
    "bc": {**_LOCAL_NET, "path": "gvp", "steps": 20_000, "eval_every": 5_000},
    "gmpo": {**_LOCAL_NET, **_LOCAL_IQL, "steps": 70_000, "eval_every": 10_000},
    # GMPG: mu and the critic together for 50k steps, then 100 policy steps (evaluated every 5, as the authors' code)
    "gmpg": {**_LOCAL_NET, **_LOCAL_IQL, "behaviour_steps": 50_000, "train_steps": 16, "steps": 50_100,
             "eval_every": 25_000, "policy_eval_every": 5},
    "gtp": {"steps": 15_000, "eval_every": 5_000},  # GTP's defaults (K = 5, its TD critic alongside)
    "gtp_bc": {"steps": 15_000, "eval_every": 5_000},
    "sfbc": {**_LOCAL_NET, **_LOCAL_CRITIC, "steps": 70_000, "eval_every": 10_000, "behaviour_steps": 50_000},
    "qgpo": {**_LOCAL_NET, **_LOCAL_CRITIC, "steps": 70_000, "eval_every": 10_000, "behaviour_steps": 50_000},
    "idql": {**_LOCAL_NET, **_LOCAL_IQL, "steps": 70_000, "eval_every": 10_000},
    "srpo": {**_LOCAL_NET, **_LOCAL_IQL, "steps": 70_000, "eval_every": 10_000, "behaviour_steps": 50_000},
    "dql": {"steps": 30_000, "eval_every": 10_000},
}
# ms per gradient step at batch 256 on one core of an AMD EPYC, measured for the local preset's networks: per algorithm,
# (pre-policy stage, policy phase); GMPG's stage trains mu and the critic together, its policy phase at T = 16
LOCAL_MS_PER_STEP: dict[str, tuple[float, float]] = {"bc": (3.1, 3.1), "gmpo": (6.7, 4.9), "gmpg": (10.0, 190.0),
                                                     "gtp": (20.5, 20.5)}
# the tasks the local preset's sweeps run by default (every locomotion task has its local set in LOCAL_DATASETS): Hopper,
# whose locally made sets are the closest to D4RL's kinds; the ablations take the first
LOCAL_TASKS = ["hopper-medium-v2", "hopper-medium-replay-v2"]
# the authors' settings the local preset does not take: batches, phases in epochs and GMPG's T = 1000 (above instead)
LOCAL_NOT_AUTHORS = ("batch_size", "policy_batch_size", "critic_epochs", "behaviour_epochs", "policy_epochs",
                     "train_steps")
# the local preset's own values in place of the authors' (named in the tables' captions, make_tables.LOCAL_CHOICES).
# GMPG beta 1 (authors: 20 on hopper-medium, 8 on medium-replay): behind a 50k-step critic (theirs: 5000 epochs) a
# large beta follows the critic's gradient off the data within the 100 policy steps. The local beta ablation at
# dfa165e, final scores over seeds 0-2: hopper-medium 14.2 / 4.9 / 3.0 at beta 1 / 4 / 8 and 2.6 at the authors' 20
# (BC 12.1); hopper-medium-replay 11.1 / 11.1 / 10.9 at 1 / 4 / 8 (BC 10.3).
LOCAL_OVER_AUTHORS: dict[str, dict[str, Any]] = {"gmpg": {"beta": 1.0}}
PRESETS = ("smoke", "local", "paper")
PRESET_ALGOS = {"smoke": SMOKE_ALGOS, "local": LOCAL_ALGOS, "paper": PAPER_ALGOS}
PRESET_RUN = {"smoke": SMOKE_RUN, "local": LOCAL_RUN, "paper": PAPER_RUN}
PRESET_SEEDS = {"smoke": [0, 1], "local": [0, 1, 2], "paper": [0, 1, 2, 3, 4]}  # the runner's default seeds
TABLE8_CSV = Path(__file__).resolve().parents[1] / "analysis" / "reference" / "table8_beta_per_task.csv"
AUTHORS_CSV = TABLE8_CSV.with_name("generativerl_d4rl_configs.csv")  # the GMPO/GMPG authors' per-task configs


def variant(preset: str, algorithm: str, model: str | None = None, **extra: Any) -> dict[str, Any]:
    """The tied settings of one algorithm (and model) with the preset's budget for it; in the paper preset, with a
    task in `extra`, the authors' settings for that task (authors_settings) on top."""
    out = {"algorithm": algorithm, **PRESET_ALGOS[preset].get(algorithm, {})}
    if model is not None:
        out["model"] = model
    if preset == "paper" and "task" in extra:
        out.update(authors_settings(algorithm, model or "", extra["task"]))
    if preset == "local" and "task" in extra:
        out.update(local_settings(algorithm, model or "", extra["task"]))
    return {**out, **extra}


def run_budget(preset: str) -> dict[str, Any]:
    """Run-level keys shared by every trial of a preset."""
    return dict(PRESET_RUN[preset])


@lru_cache(maxsize=1)
def _table8() -> dict[tuple[str, str], float]:
    with open(TABLE8_CSV, newline="") as f:
        rows = list(csv.DictReader(f))
    return {(r["task"], algo): float(r[f"beta_{algo}"]) for r in rows for algo in ("gmpo", "gmpg")}


def table8_beta(task: str, algorithm: str, default: float = 4.0) -> float:
    """The paper's per-task beta (Table 8) for gmpo / gmpg; `default` where it gives none."""
    return _table8().get((task, algorithm), default)


@lru_cache(maxsize=1)
def _authors() -> dict[tuple[str, str, str], dict[str, str]]:
    with open(AUTHORS_CSV, newline="") as f:
        return {(r["algorithm"], r["model"], r["task"]): r for r in csv.DictReader(f)}


# Where the authors' configs differ from the paper's Table 8 (beta), they are what produced Tables 3 and 12:
# GMPO halfcheetah-medium beta 8 (Table 8: 1) and GMPG walker2d-medium-replay beta 8 (Table 8: 4). Their AntMaze
# GMPG configs set `eta`, which nothing reads (beta fell back to 1, and the files do not run as committed): there
# Table 8's beta is used instead, a choice named in the tables' captions.
def authors_settings(algorithm: str, model: str, task: str) -> dict[str, Any]:
    """Flat-config keys for one (algorithm, model, task) from the authors' configs; {} when they have no such row.

    Phase lengths stay in epochs (converted to steps for the dataset's size when it is loaded); sampling runs 31
    Euler steps (their 32 grid points); GMPG evaluates every 5 policy steps as their code does."""
    row = _authors().get((algorithm, model, task))
    if row is None or algorithm not in ("gmpo", "gmpg"):
        return {}
    num = lambda key: float(row[key])  # noqa: E731
    out: dict[str, Any] = {"beta": num("beta") if row["beta"] else table8_beta(task, algorithm),
                           "lr": num("policy_lr"), "critic_lr": num("critic_lr"), "batch_size": int(num("batch_size")),
                           "critic_epochs": int(num("critic_epochs_or_iterations")),
                           "policy_epochs": int(num("policy_epochs_or_iterations")),
                           "sampling_steps": int(num("t_span_or_sampling_steps")) - 1, "solver": "euler"}
    if algorithm == "gmpo":
        out["max_weight"] = num("weight_clamp")
    else:
        out.update(behaviour_lr=num("behaviour_lr"), behaviour_epochs=int(num("behaviour_epochs_or_iterations")),
                   policy_batch_size=int(num("policy_batch_size")), train_steps=int(num("training_T")),
                   log_ratio_scale="bits", policy_eval_every=5)
    return out


def cpu_hours(config: dict[str, Any]) -> float | None:
    """The gradient steps of one flat trial config in hours of one CPU core (LOCAL_MS_PER_STEP; evaluation not
    counted); None for an algorithm not measured."""
    run, overrides = split(config)
    if run["algorithm"] not in LOCAL_MS_PER_STEP:
        return None
    stage_ms, policy_ms = LOCAL_MS_PER_STEP[run["algorithm"]]
    stage = min(run["steps"], max(overrides.get("critic_steps", 0), overrides.get("behaviour_steps", 0)))
    return run["seeds_per_trial"] * (stage * stage_ms + (run["steps"] - stage) * policy_ms) / 3.6e6


def local_settings(algorithm: str, model: str, task: str) -> dict[str, Any]:
    """The authors' per-task settings the local preset keeps (beta, clamps, learning rates, GMPG's bits and evaluation
    every 5 policy steps); its own batch, phases and T replace theirs (LOCAL_ALGOS), and LOCAL_OVER_AUTHORS' values
    (GMPG's beta) replace those."""
    kept = {k: v for k, v in authors_settings(algorithm, model, task).items() if k not in LOCAL_NOT_AUTHORS}
    return {**kept, **LOCAL_OVER_AUTHORS.get(algorithm, {})}


class SweepConfigError(ValueError):
    """A sweep with bad trial configs; str() is one line per problem."""


def task_kind(task: str) -> str:
    """'halfcheetah-medium-expert-v2' -> 'medium-expert' (antmaze tasks -> 'antmaze')."""
    if task.startswith("antmaze"):
        return "antmaze"
    parts = task.rsplit("-v", 1)[0].split("-")
    return "-".join(parts[1:])


def smoke_dataset(task: str) -> str:
    """The Pendulum stand-in for a paper task in the smoke preset (antmaze and unknown kinds -> medium)."""
    return SMOKE_DATASETS.get(task_kind(task), SMOKE_DATASETS["medium"])


def paper_dataset(task: str) -> str:
    """The dataset id(s) used for a paper task, '+'-joined; a clear error for an unknown task."""
    if task not in PAPER_DATASETS:
        raise SweepConfigError(f"unknown paper task {task!r}; valid: {', '.join(PAPER_DATASETS)}")
    return "+".join(PAPER_DATASETS[task])


def make_hint(dataset_id: str) -> str:
    """The command that makes a locally made dataset (D4RL-scale budgets for the MuJoCo envs)."""
    parts = dataset_id.split("/")
    name, kind = (parts[1], parts[-1].rsplit("-v", 1)[0]) if len(parts) == 3 else ("<env>", "<kind>")
    if name == "pendulum":
        return f"python -m genrl_core.datasets make --env {SMOKE_ENV} --kinds {kind} --total-steps 6000"
    env = LOCAL_ENVS.get(name, "<Env>-v5")
    return (f"python -m genrl_core.datasets make --env {env} --kinds {kind} --total-steps 1000000 "
            f"--dataset-steps 1000000")


def resolve_dataset(preset: str, task: str) -> str:
    """The dataset a preset uses for a task ('' when the preset or task is unknown): in the paper preset D4RL's own
    file where D4RL_DATASETS_PATH holds it (genrl_core.data.d4rl), else the Minari stand-in of PAPER_DATASETS."""
    if preset == "smoke":
        return smoke_dataset(task)
    if preset == "paper" and task in PAPER_DATASETS:
        return d4rl.dataset_id(task) if d4rl.local_file(task) is not None else paper_dataset(task)
    return LOCAL_DATASETS.get(task, "") if preset == "local" else ""


def dataset_source(dataset: str) -> str:
    """Where a trial's data comes from, in words (for the sweep's printed plan)."""
    if dataset.startswith(d4rl.PREFIX):
        return "D4RL's own file"
    if dataset.startswith(("local/", "mujoco/", "D4RL/")):
        return f"Minari stand-in (no D4RL file in ${d4rl.PATH_ENV})"
    return ""


def flatten(config: dict[str, Any]) -> dict[str, Any]:
    """Merge a trial's "variant*" dicts into the flat config (a plain key wins); defaults and dataset filled."""
    tied: dict[str, Any] = {}
    for key in sorted(k for k in config if k.startswith("variant")):
        tied.update(config[key] or {})
    flat = {**RUN_DEFAULTS, **tied, **{k: v for k, v in config.items() if not k.startswith("variant")}}
    if not flat["dataset"]:
        flat["dataset"] = resolve_dataset(flat["preset"], flat["task"])
    return flat


def split(config: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(run-level keys, algorithm dataclass overrides) of a flat config; aliases resolved, tuples restored; a
    schedule over training (GTP's schedule_steps) spans the run's steps unless set, as in train.py."""
    flat = flatten(config)
    run = {k: flat[k] for k in RUN_DEFAULTS}
    overrides = {ALIASES.get(k, k): tuple(v) if isinstance(v, list) else v
                 for k, v in flat.items() if k not in RUN_DEFAULTS}
    if run["algorithm"] in algorithms.names():
        overrides = with_run_schedules(run["algorithm"], run["steps"], overrides)
    return run, overrides


@lru_cache(maxsize=None)
def algorithm_fields(algo: str) -> frozenset[str]:
    """The config dataclass fields of algorithm `algo`."""
    cls, _ = algorithms.get(algo)
    return frozenset(f.name for f in dataclasses.fields(cls.config_class))


def _name_problems(algo: str, overrides: dict[str, Any]) -> list[str]:
    """Unknown keys, paths, predictions and solvers."""
    fields = algorithm_fields(algo)
    unknown = sorted(set(overrides) - fields)
    if unknown:
        shown = ["model" if k == "path" else k for k in unknown]
        return [f"unknown config key(s) {shown} for algorithm {algo!r}; valid: "
                f"{', '.join(sorted([*RUN_DEFAULTS, *(['model'] if 'path' in fields else []), *fields]))}"]
    out = []
    if "path" in overrides and overrides["path"] not in PATHS:
        out.append(f"unknown model {overrides['path']!r}; valid: {', '.join(sorted(PATHS))}")
    if "prediction" in overrides and overrides["prediction"] not in PREDICTIONS:
        out.append(f"unknown prediction {overrides['prediction']!r}; valid: {', '.join(PREDICTIONS)}")
    for key in ("solver", "train_solver"):
        if key in overrides and overrides[key] not in SOLVERS:
            out.append(f"unknown {key} {overrides[key]!r}; valid: {', '.join(SOLVERS)}")
    return out


def _value_problems(algo: str, overrides: dict[str, Any]) -> list[str]:
    """Negative temperatures (one line whichever algorithms a sweep mixes), and switches that are not true / false
    (a config dataclass takes any value for a bool field). Every other rule of an algorithm's config is its own,
    found by building it (_build_problems)."""
    out = [f"{k} must be >= 0, got {overrides[k]}" for k in ("beta", "eta")
           if isinstance(overrides.get(k), (int, float)) and overrides[k] < 0]
    cls, _ = algorithms.get(algo)
    switches = {f.name for f in dataclasses.fields(cls.config_class) if f.type in (bool, "bool")}
    out += [f"{k} must be true or false, got {v!r}" for k, v in overrides.items()
            if k in switches and not isinstance(v, bool)]
    return out


_BUILT: dict[str, list[str]] = {}  # repr of (algorithm, overrides) -> problems found by building it


def _build_problems(algo: str, overrides: dict[str, Any]) -> list[str]:
    """Build the config dataclass and a tiny agent (obs 3, action 1); any error becomes one line."""
    from genrl_core.run.training import build_agent

    key = repr((algo, sorted(overrides.items())))
    if key not in _BUILT:
        try:
            build_agent(algo, 3, 1, overrides)
            _BUILT[key] = []
        except (TypeError, ValueError) as err:
            _BUILT[key] = [f"algorithm {algo}: {' '.join(str(err).split())}"]
    return _BUILT[key]


def _whole(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _run_problems(run: dict[str, Any]) -> list[str]:
    out = [f"{k} must be an integer >= 1, got {run[k]!r}" for k in ("steps", "eval_every", "eval_episodes",
                                                                    "batch_size", "seeds_per_trial")
           if not _whole(run[k]) or run[k] < 1]
    out += [f"{k} must be an integer >= 0, got {run[k]!r}" for k in ("policy_eval_every", *EPOCH_KEYS)
            if not _whole(run[k]) or run[k] < 0]
    if not _whole(run["seed"]) or run["seed"] < 0:
        out.append(f"seed must be an integer >= 0, got {run['seed']!r}")
    out += [f"{k} must be true or false, got {run[k]!r}" for k in ("normalize_obs", "reuse_stages", "compile")
            if not isinstance(run[k], bool)]
    if run["compile"] is True and run["pack_engine"] == "vmap" and _whole(run["seeds_per_trial"]) \
            and run["seeds_per_trial"] > 1:
        out.append(COMPILE_PACKED)
    if run["device"] != "auto" and not _device_name(run["device"]):
        out.append(f"unknown device {run['device']!r}; valid: auto, cpu, cuda, cuda:N")
    if run["pack_engine"] not in ENGINES:
        out.append(f"unknown pack_engine {run['pack_engine']!r}; valid: {', '.join(ENGINES)}")
    if run["precision"] not in PRECISIONS:
        out.append(f"unknown precision {run['precision']!r}; valid: {', '.join(PRECISIONS)}")
    elif run["device"] == "cpu":  # bf16 on a CPU without native bfloat16 (trials on device auto: checked there)
        try:
            check_precision(run["precision"], "cpu")
        except ValueError as err:
            out.append(str(err))
    if run["reward_scaling"] not in SCALINGS:
        out.append(f"unknown reward_scaling {run['reward_scaling']!r}; valid: {', '.join(SCALINGS)}")
    if run["preset"] == "paper" and not run["dataset"] and run["task"] not in PAPER_DATASETS:
        out.append(f"unknown paper task {run['task']!r}; valid: {', '.join(PAPER_DATASETS)}")
    elif run["preset"] == "local" and not run["dataset"]:
        out.append(f"task {run['task']!r} has no local dataset; valid: {', '.join(LOCAL_DATASETS)}")
    elif not run["dataset"]:
        out.append(f"trial of task {run['task']!r} has no dataset (set dataset=... or preset={'|'.join(PRESETS)})")
    return out


def _device_name(name: Any) -> bool:
    """Whether torch reads `name` as a device."""
    import torch

    try:
        torch.device(name)
    except (RuntimeError, TypeError):
        return False
    return True


def trial_problems(config: dict[str, Any]) -> list[str]:
    """Everything wrong with one flat trial config (dataset existence is checked separately)."""
    run, overrides = split(config)
    if run["algorithm"] not in algorithms.names():
        return [f"unknown algorithm {run['algorithm']!r}; valid: {', '.join(algorithms.names())}"]
    problems = _run_problems(run) + _name_problems(run["algorithm"], overrides)
    problems += _value_problems(run["algorithm"], overrides)
    return problems or _build_problems(run["algorithm"], overrides)


def dataset_problems(dataset: str) -> list[str]:
    """A line for each id of a (possibly '+'-joined) dataset that is not on this machine."""
    from minari.storage.datasets_root_dir import get_dataset_path

    from genrl_core.data import bandits

    out = []
    for dataset_id in dataset.split("+"):
        if dataset_id in bandits.DATASETS:
            continue
        if dataset_id.startswith(d4rl.PREFIX):
            if d4rl.local_file(dataset_id[len(d4rl.PREFIX):]) is None:
                out.append(f"dataset {dataset_id!r}: no such D4RL file in ${d4rl.PATH_ENV} "
                           f"({os.environ.get(d4rl.PATH_ENV) or 'not set'}); put D4RL's hdf5 file there")
            continue
        try:
            path = get_dataset_path(dataset_id)
        except Exception as err:  # malformed ids
            out.append(f"dataset {dataset_id!r} is not a valid Minari id ({err})")
            continue
        if not (path / "data").exists():
            how = f"make it with `{make_hint(dataset_id)}`" if dataset_id.startswith("local/") else \
                f"download it with `minari download {dataset_id}`"
            out.append(f"dataset {dataset_id!r} does not exist (looked in {path.parent}); {how}")
    return out


def _raise(problems: Iterable[str]) -> None:
    unique = list(dict.fromkeys(problems))
    if unique:
        raise SweepConfigError("\n".join(unique))


def pack_seeds(run: dict[str, Any]) -> list[int]:
    """The seeds a trial trains: seed, seed + 1, ..., seed + seeds_per_trial - 1."""
    return [run["seed"] + j for j in range(run["seeds_per_trial"])]


def _overlap_problems(configs: list[dict[str, Any]]) -> list[str]:
    """Packed trials of one configuration whose seed ranges overlap (the same run would be trained twice)."""
    owner: dict[tuple[str, int], int] = {}
    out = []
    for config in configs:
        flat = flatten(config)
        if not isinstance(flat["seed"], int) or not isinstance(flat["seeds_per_trial"], int):
            continue
        key = json.dumps({k: v for k, v in flat.items() if k != "seed"}, default=list, sort_keys=True)
        for seed in pack_seeds(flat):
            if (key, seed) in owner and owner[(key, seed)] != flat["seed"]:
                out.append(f"seed {seed} is trained by two trials (seeds {owner[(key, seed)]} and {flat['seed']} "
                           f"with seeds_per_trial={flat['seeds_per_trial']}); space the seeds seeds_per_trial apart")
            owner.setdefault((key, seed), flat["seed"])
    return out[:1]


def validate_configs(configs: Iterable[dict[str, Any]]) -> None:
    """Raise SweepConfigError listing each distinct config problem of the trials once, one line each."""
    configs = list(configs)
    _raise([p for config in configs for p in trial_problems(config)] or _overlap_problems(configs))


def validate_datasets(configs: Iterable[dict[str, Any]]) -> None:
    """Raise SweepConfigError with a line for each dataset of the trials that is not on this machine."""
    datasets = dict.fromkeys(flatten(c)["dataset"] for c in configs)
    _raise(p for d in datasets if d for p in dataset_problems(d))


def validate_trials(configs: Iterable[dict[str, Any]]) -> None:
    """Both checks: configs first, then datasets."""
    configs = list(configs)
    validate_configs(configs)
    validate_datasets(configs)
