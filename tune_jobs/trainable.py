"""The Ray Tune function trainable: flat config -> agent -> chunked training -> evaluation -> report.

Each round trains `eval_every` gradient steps, evaluates (normalised score mean and std, raw return,
the Figure 1 log-likelihood of dataset actions), measures gradient steps/s and actions/s, writes the
Parquet row (trial_id, step) and reports the metrics to Tune with a checkpoint. After a failure Tune
restarts the trial from its last checkpoint (`tune.get_checkpoint()`): weights, optimisers, the
random streams, the step and the iteration count all continue, and a re-run evaluation overwrites
its own row. Checkpoints hold only tensors and plain numbers (torch.load(weights_only=True)).

Where a trial's time goes, in every row (seconds, cumulative over the trial): time_load_s (dataset, agents, candidate
caches, a shared stage's load), time_update_s (gradient steps), time_eval_s (evaluations with actions/s),
time_report_s (the checkpoint, tune.report and the stage save of the rounds before this one), time_trial_s (since the
trainable started, up to this row) and trial_start_unix (when it started, for Ray's start-up as the driver sees it).

A trial trains `seeds_per_trial` seeds (seed, seed + 1, ...) as one pack (genrl_core.run.packing): each seed
is its unpacked run, evaluated with its own random stream, and gets its own row per evaluation, keyed
'<trial id>_s<seed>' when the pack holds more than one seed. Tune sees the seeds' mean metrics. A seed that
diverges ends with its own final row; the others go on.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch
from ray import tune

from genrl_core.algorithms.base import Agent
from genrl_core.data.loading import OfflineData, load
from genrl_core.generative.networks import check_precision
from genrl_core.run.packing import Pack, build_pack
from genrl_core.run.training import EPOCH_KEYS, evaluate_agent, next_eval, steps_from_epochs
from tune_jobs import results
from tune_jobs.stages import StageStore, open_stage, policy_only, stage_key
from tune_jobs.config import flatten, pack_seeds, split

CHECKPOINT_FILE = "checkpoint.pt"
ACT_BATCH = 256  # states per timed act() call for actions/s


def _device(name: str) -> str:
    """auto: cuda when the trial was given a GPU (outside a Tune session: when one is visible)."""
    if name != "auto":
        return name
    return "cuda" if _trial_resource("GPU", outside=1) > 0 and torch.cuda.is_available() else "cpu"


def _trial_resource(name: str, outside: float) -> float:
    """How much of resource `name` (CPU, GPU) the trial was given; `outside` outside a Tune session."""
    try:
        return tune.get_context().get_trial_resources().required_resources.get(name, 0)
    except Exception:  # outside a Tune session
        return outside


def _threads() -> None:
    """As many torch threads as CPUs the trial was given (at least one)."""
    torch.set_num_threads(max(1, int(_trial_resource("CPU", outside=1))))


def _restore(pack: Pack) -> dict[str, Any]:
    """Progress counters from tune.get_checkpoint() (agents and random streams restored in place)."""
    ckpt = tune.get_checkpoint()
    if ckpt is None:
        return {"step": 0, "iteration": 0, "wall_time_s": 0.0, "restarts": 0, "diverged": [], **_no_time()}
    with ckpt.as_directory() as d:
        state = torch.load(Path(d) / CHECKPOINT_FILE, weights_only=True, map_location="cpu")
    pack.load_state(state["pack"])
    return {**_no_time(), **state["progress"], "restarts": state["progress"]["restarts"] + 1}


TIME_KEYS = ("time_load_s", "time_update_s", "time_eval_s", "time_report_s")  # cumulative, in progress and rows


def _no_time() -> dict[str, float]:
    """Every TIME_KEYS counter at zero."""
    return dict.fromkeys(TIME_KEYS, 0.0)


def actions_per_s(agent: Agent, data: OfflineData, seed: int) -> float:
    """Policy sampling throughput on ACT_BATCH dataset states (own random stream, synchronised timing)."""
    g = torch.Generator(device=data.device).manual_seed(seed)
    obs = data.sample(ACT_BATCH, g)["obs"]
    with torch.random.fork_rng(devices=[data.device] if data.device.type == "cuda" else []):
        agent.act(obs)  # warm-up
        if data.device.type == "cuda":
            torch.cuda.synchronize(data.device)
        t0 = time.perf_counter()
        agent.act(obs)
        if data.device.type == "cuda":
            torch.cuda.synchronize(data.device)
    return ACT_BATCH / max(time.perf_counter() - t0, 1e-9)


def _evaluate(pack: Pack, i: int, data: OfflineData, run: dict[str, Any], device: str) -> dict[str, float]:
    """Seed i's evaluation, drawing from seed i's own random stream (as its unpacked run would)."""
    t0 = time.perf_counter()
    with pack.seed_rng(i):
        metrics = evaluate_agent(pack.agents[i], data, run["eval_episodes"], pack.seeds[i], device)
        metrics["actions_per_s"] = actions_per_s(pack.agents[i], data, pack.seeds[i])
    metrics["eval_time_s"] = time.perf_counter() - t0
    return metrics


def _base_rows(config: dict[str, Any], meta: dict[str, Any], device: str, seeds: list[int]) -> list[dict[str, Any]]:
    """Per seed, the columns every row of it shares: config (its own seed), provenance, host.

    A packed trial's rows are keyed '<trial id>_s<seed>' (one row per seed and step, so the key stays unique);
    pack_trial_id is the Ray trial that trained them.
    """
    ctx = tune.get_context()
    import ray

    common = {"sweep": meta.get("sweep", "default"), "experiment": ctx.get_experiment_name(),
              "git_commit": meta.get("git_commit", "unknown"), "node_id": ray.get_runtime_context().get_node_id(),
              "pack_trial_id": ctx.get_trial_id(), **results.host_info(device)}
    rows = []
    for seed in seeds:
        flat = {**flatten(config), "seed": seed}
        trial_id = ctx.get_trial_id() if len(seeds) == 1 else f"{ctx.get_trial_id()}_s{seed}"
        rows.append({"sweep": common["sweep"], "experiment": common["experiment"], "trial_id": trial_id, **flat,
                     "config_json": json.dumps(flat, default=list, sort_keys=True), **common})
    return rows


def _save_and_report(metrics: dict[str, Any], pack: Pack, progress: dict[str, Any]) -> None:
    """tune.report with a checkpoint of everything needed to continue. It is staged in one folder per trial, emptied
    before each save, so a worker killed while reporting leaves at most that folder behind (not one per kill)."""
    state = {"pack": pack.state(), "progress": progress}
    d = Path(tempfile.gettempdir()) / f"genrl-ckpt-{tune.get_context().get_trial_id()}"
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(parents=True)
    try:
        torch.save(state, d / CHECKPOINT_FILE)
        tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(str(d)))
    finally:
        shutil.rmtree(d, ignore_errors=True)


def _metrics_row(base: dict[str, Any], metrics: dict[str, Any]) -> dict[str, Any]:
    """Metrics named like a config key get a 'metric_' prefix, so no column means two things; the evaluation protocol
    (results.PROTOCOL_KEYS, e.g. eval_episodes) keeps its own names."""
    clash = {k: (f"metric_{k}" if k in base and k not in results.PROTOCOL_KEYS else k) for k in metrics}
    return {**base, **{clash[k]: v for k, v in metrics.items()},
            "time_utc": datetime.now(timezone.utc).isoformat(timespec="seconds")}


@dataclass
class _Stage:
    """A trial's shared pre-policy stage: its key, where it lives, and what this trial does with it."""

    key: str
    store: StageStore
    end: int  # the step at which the policy phase starts
    mode: str  # "trained" (this trial trains and saves it) or "loaded"
    rows: list[list[dict[str, Any]]] = field(default_factory=list)  # per round, per seed: the metrics of the stage


@dataclass
class _Trial:
    """Everything one running trial holds."""

    run: dict[str, Any]
    device: str
    data: OfflineData
    pack: Pack
    progress: dict[str, Any]
    bases: list[dict[str, Any]]  # one per seed
    results_root: str | None
    stage: _Stage | None = None  # the pre-policy stage this trial shares with others (tune_jobs.stages)
    started: tuple[float, float] = field(default_factory=lambda: (time.perf_counter(), time.time()))  # (clock, unix)


def trainable(config: dict[str, Any], meta: dict[str, Any] | None = None) -> None:
    """Train one flat config (seeds_per_trial seeds, packed); meta holds the sweep name, results root, git commit
    and data root."""
    started = (time.perf_counter(), time.time())
    meta = meta or {}
    logging.getLogger("ray.train").setLevel(logging.WARNING)  # no line per saved checkpoint
    if meta.get("data_root"):
        os.environ["MINARI_DATASETS_PATH"] = meta["data_root"]
    if meta.get("d4rl_root"):  # where the driver found D4RL's files (the paper preset chose them there)
        os.environ["D4RL_DATASETS_PATH"] = meta["d4rl_root"]
    _threads()
    run, overrides = split(config)
    device = _device(run["device"])
    check_precision(run["precision"], device)  # bf16 on a CPU without native bfloat16: one clear error
    data = load(run["dataset"], device, run["reward_scaling"], run["normalize_obs"],
                download=not run["dataset"].startswith(("local/", "toy/")))
    run, overrides = phases_in_steps(run, overrides, len(data))
    seeds = pack_seeds(run)
    pack = build_pack(run["algorithm"], seeds, data.obs_dim, data.act_dim, device, overrides, run["pack_engine"],
                      run["compile"])
    pack.bind_data(data)  # SfBC / QGPO: behaviour candidates drawn once per dataset state
    bases = _base_rows(config, meta, device, seeds)
    for base in bases:  # the step counts this trial really ran (its phases may have been given in epochs)
        base.update({"steps": run["steps"], **{k: overrides[k] for k in ("critic_steps", "behaviour_steps")
                                                if k in overrides}})
    trial = _Trial(run, device, data, pack, _restore(pack), bases, meta.get("results"), started=started)
    if trial.progress["step"] == 0:
        trial.stage = _open_stage(trial, overrides, meta)
    trial.progress["time_load_s"] += time.perf_counter() - started[0]
    while trial.progress["step"] < run["steps"] and _round(trial):
        pass


def _open_stage(t: _Trial, overrides: dict[str, Any], meta: dict[str, Any]) -> _Stage | None:
    """Load the trial's shared stage where one is saved (its rows written again, marked loaded), or claim it; None
    when the algorithm shares no stage, reuse is off, or the storage is remote."""
    end = t.pack.agents[0].policy_start
    store = StageStore.for_results(t.results_root)
    if not (t.run["reuse_stages"] and policy_only(t.run["algorithm"]) and 0 < end < t.run["steps"] and store):
        return None
    key = stage_key(t.run, overrides, t.data.content_hash, meta.get("git_commit", "unknown"))
    saved, train = open_stage(store, key)
    if saved is None:
        return _Stage(key, store, end, "trained") if train else None
    t.pack.load_state(saved["pack"])
    t.progress = {**saved["progress"], "restarts": 0, **_no_time()}  # the times are this trial's own
    for per_seed in saved["rows"]:
        for base, metrics in zip(t.bases, per_seed):
            if t.results_root:
                results.write_row(t.results_root, _metrics_row(base, {**metrics, "stage": "loaded"}))
    return _Stage(key, store, end, "loaded")


def _stage_round(t: _Trial, reported: list[dict[str, Any]]) -> None:
    """Keep the stage's rows; at the policy phase's start, save the stage (unless a seed diverged on the way)."""
    st = t.stage
    if st is None or st.mode != "trained" or t.progress["step"] > st.end:
        return
    st.rows.append(reported)
    st.store.touch(st.key)
    if t.progress["step"] == st.end:
        if t.progress["diverged"]:
            st.store.release(st.key)
        else:
            st.store.save(st.key, {"pack": t.pack.state(), "progress": dict(t.progress), "rows": st.rows})


def phases_in_steps(run: dict[str, Any], overrides: dict[str, Any], n: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """(run, overrides) with phases given in epochs (critic_epochs, ...) turned into steps for n transitions."""
    steps, overrides = steps_from_epochs(run["algorithm"], n, run["batch_size"], {k: run[k] for k in EPOCH_KEYS},
                                         overrides)
    return ({**run, "steps": steps} if steps else run), overrides


def _round(t: _Trial) -> bool:
    """Train one chunk, evaluate each seed, write its row, report; False when every seed has diverged."""
    step = t.progress["step"]
    n = next_eval(step, t.run["steps"], t.run["eval_every"], t.pack.agents[0].policy_start,
                  t.run["policy_eval_every"]) - step
    if policy_only(t.run["algorithm"]) and step < t.pack.agents[0].policy_start:
        n = min(n, t.pack.agents[0].policy_start - step)  # the policy phase starts a round: where a stage ends
    t0 = time.perf_counter()
    per_seed = t.pack.train(t.data, t.progress["step"], n, t.run["batch_size"], t.run["precision"])
    train_s = time.perf_counter() - t0
    p = t.progress
    p.update(step=p["step"] + n, iteration=p["iteration"] + 1, wall_time_s=p["wall_time_s"] + train_s,
             time_update_s=p["time_update_s"] + train_s)
    reported = []
    for i, seed in enumerate(t.pack.seeds):
        if seed not in p["diverged"]:
            reported.append(_seed_round(t, i, per_seed[i], n, train_s))
    p["wall_time_s"] += sum(m.get("eval_time_s", 0.0) for m in reported)
    t0 = time.perf_counter()
    _stage_round(t, reported)
    metrics = _mean_metrics(reported)
    if len(p["diverged"]) == len(t.pack.seeds):
        tune.report(metrics)
        return False
    _save_and_report(metrics, t.pack, dict(p, diverged=list(p["diverged"])))
    p["time_report_s"] += time.perf_counter() - t0
    return True


def _seed_round(t: _Trial, i: int, result: dict[str, float] | str, n: int, train_s: float) -> dict[str, Any]:
    """Seed i's evaluation and Parquet row for this round (a diverged seed's row is its last)."""
    diverged = result if isinstance(result, str) else ""
    losses = {} if diverged else result
    evaluation = {"score_mean": float("nan")} if diverged else _evaluate(t.pack, i, t.data, t.run, t.device)
    p = t.progress
    p["time_eval_s"] = p.get("time_eval_s", 0.0) + evaluation.get("eval_time_s", 0.0)
    final = p["step"] >= t.run["steps"] or bool(diverged)
    metrics = {"step": p["step"], "iteration": p["iteration"],
               **results.protocol_columns(t.data, t.run["eval_episodes"]), **losses, **evaluation,
               "grad_steps_per_s": n / max(train_s, 1e-9), "train_time_s": train_s, "wall_time_s": p["wall_time_s"],
               "restarts": p["restarts"], "final": final, "error": diverged, "pack_size": len(t.pack.seeds),
               "stop_reason": "diverged" if diverged else ("completed" if final else ""),
               "stage": t.stage.mode if t.stage else "", **{k: p.get(k, 0.0) for k in TIME_KEYS},
               "time_trial_s": time.perf_counter() - t.started[0], "trial_start_unix": t.started[1]}
    if diverged:
        p["diverged"].append(t.pack.seeds[i])
    if t.results_root:
        results.write_row(t.results_root, _metrics_row(t.bases[i], metrics))
    return metrics


def _mean_metrics(per_seed: list[dict[str, Any]]) -> dict[str, Any]:
    """What Tune sees for a round: the mean of each number over the seeds still training (all seeds when none is),
    the first of them's other values."""
    healthy = [m for m in per_seed if not m["error"]] or per_seed
    out = dict(healthy[0])
    for k, v in out.items():
        if isinstance(v, float):
            out[k] = float(np.mean([m[k] for m in healthy if isinstance(m.get(k), float)]))
    out["final"] = all(m["final"] for m in per_seed)
    return out
