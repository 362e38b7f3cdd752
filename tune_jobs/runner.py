"""The shared sweep driver: every sweep script calls main(), which validates before Ray starts, then runs Tune.

A sweep script gives, per preset, a list of Plans (tune_jobs.space: one Tune experiment each). main() parses
the shared flags (tune_jobs.cli), applies seeds, preset, --set and --only (tune_jobs.space), validates every
trial (tune_jobs.config) and provides its datasets (tune_jobs.provision) — one line per problem, exit code 2,
Ray never started — prints the plan, checks the storage for an earlier run of the same sweep, then run_sweep()
connects to Ray (tune_jobs.cluster) and runs one Tuner per plan, with console lines from tune_jobs.progress, the
Parquet rows of tune_jobs.results and each trial's CSV, JSON and TensorBoard logs (logger_callbacks).
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from typing import Any

from ray import tune
from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback, TBXLoggerCallback
from ray.tune.result import TIMESTEPS_TOTAL

from genrl_core.data.d4rl import PATH_ENV as D4RL_ENV
from tune_jobs import cluster, provision, results
from tune_jobs import config as C
from tune_jobs.cli import parser, print_plan
from tune_jobs.progress import Progress
from tune_jobs.space import Plan, Presets, expand, named, only_problem, points, prepare_plan, trial_count, with_samples

__all__ = ["Plan", "Presets", "expand", "main", "named", "parser", "points", "prepare", "run_sweep", "trial_count"]
_print_plan = print_plan  # the name tests/test_paper_preset.py calls


def prepare(plans: list[Plan], args: argparse.Namespace) -> tuple[list[Plan], list[dict[str, Any]]]:
    """Plans after flags, datasets made or fetched, and every trial validated; SweepConfigError if bad."""
    prepared = [p for p in (prepare_plan(p, args) for p in plans) if p is not None]
    if not prepared:
        raise C.SweepConfigError(only_problem(plans, args.only))
    C.validate_configs([t for p in prepared for t in expand(p.space)])
    return provision.provide(prepared, args)


def trial_dirname(trial: Any) -> str:
    """Short trial folder names (the default spells out every variant key)."""
    return f"trial_{trial.trial_id}"


class StepTBXLogger(TBXLoggerCallback):
    """Tune's TensorBoard logger (ray/tune/<metric> scalars per trial) with the trial's gradient step, the reported
    'step', on the x axis instead of Tune's iteration count."""

    def log_trial_result(self, iteration: int, trial: Any, result: dict[str, Any]) -> None:
        if "step" in result and TIMESTEPS_TOTAL not in result:
            result = {**result, TIMESTEPS_TOTAL: result["step"]}
        super().log_trial_result(iteration, trial, result)


def logger_callbacks() -> list[tune.Callback]:
    """Each trial's logs in its folder: progress.csv, result.json and TensorBoard events (tensorboardX), so
    `tensorboard --logdir <storage>` shows every trial's curves."""
    logging.getLogger("ray.tune.logger.tensorboardx").setLevel(logging.WARNING)  # no line per trial on its hparams
    return [CSVLoggerCallback(), JsonLoggerCallback(), StepTBXLogger()]


def _tuner(plan: Plan, args: argparse.Namespace, meta: dict[str, Any], storage: str, total: int) -> tune.Tuner:
    from tune_jobs.trainable import trainable

    fn = tune.with_resources(tune.with_parameters(trainable, meta=meta),
                             {"cpu": args.cpus_per_trial, "gpu": cluster.gpus_per_trial(args)})
    path = f"{storage.rstrip('/')}/{plan.name}"
    if args.resume and tune.Tuner.can_restore(path):
        print(f"resuming {path}: only unfinished trials run", flush=True)
        return tune.Tuner.restore(path, fn, resume_unfinished=True, resume_errored=True)
    tune_config = tune.TuneConfig(num_samples=plan.samples, search_alg=plan.searcher() if plan.searcher else None,
                                  scheduler=plan.scheduler(plan.space) if plan.scheduler else None, metric=plan.metric,
                                  mode=plan.mode, reuse_actors=True, trial_dirname_creator=trial_dirname)
    run_config = tune.RunConfig(name=plan.name, storage_path=storage, verbose=0,
                                failure_config=tune.FailureConfig(max_failures=args.max_failures),
                                checkpoint_config=tune.CheckpointConfig(num_to_keep=2),
                                callbacks=[*logger_callbacks(), Progress(meta["results"], meta["sweep"], total)])
    return tune.Tuner(fn, param_space=plan.space, tune_config=tune_config, run_config=run_config)


# --- storage ----------------------------------------------------------------------------------------------------

def _existing(storage: str, plans: list[Plan], args: argparse.Namespace) -> list[str]:
    """Experiment folders and Parquet partition this sweep already has."""
    from pyarrow import fs as pafs

    paths = [f"{storage}/{p.name}" for p in plans] + [f"{results.results_root(storage)}/sweep={args.name}"]
    out = []
    for path in paths:
        fs, p = pafs.FileSystem.from_uri(path)
        if fs.get_file_info(p).type != pafs.FileType.NotFound:
            out.append(path)
    return out


def _clear(paths: list[str]) -> None:
    from pyarrow import fs as pafs

    for path in paths:
        fs, p = pafs.FileSystem.from_uri(path)
        fs.delete_dir(p)


def _check_storage(storage: str, plans: list[Plan], args: argparse.Namespace) -> None:
    """--fresh clears this sweep's earlier results; without --resume, earlier results are an error."""
    existing = _existing(storage, plans, args)
    if existing and args.fresh:
        _clear(existing)
    elif existing and not args.resume:
        raise C.SweepConfigError(f"sweep {args.name!r} already has results at {existing[0]}; pass --resume to finish "
                                 f"it, --fresh to start over, or another --storage / --name")


# --- running ----------------------------------------------------------------------------------------------------

def _meta(args: argparse.Namespace, storage: str) -> dict[str, Any]:
    """What every trial gets besides its config: sweep name, results root, git commit, the driver's data roots."""
    return {"sweep": args.name, "results": results.results_root(storage), "git_commit": results.git_commit(),
            "data_root": os.path.abspath(os.environ["MINARI_DATASETS_PATH"]) if os.environ.get("MINARI_DATASETS_PATH")
            else None,
            "d4rl_root": os.path.abspath(os.environ[D4RL_ENV]) if os.environ.get(D4RL_ENV) else None}


def run_sweep(plans: list[Plan], args: argparse.Namespace, trials: list[dict[str, Any]]) -> int:
    """Run every plan on Ray; 0 when every trial finished, 1 otherwise."""
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")  # the loggers are logger_callbacks()
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    storage = results.absolute(args.storage)
    meta = _meta(args, storage)
    print(f"Ray: {cluster.connect(args)}; results: {meta['results']}/sweep={args.name}", flush=True)
    if "://" not in storage and cluster.host_count() > 1:
        print(f"warning: --storage {storage} is a local path on a multi-host cluster; trials on other hosts write "
              f"their checkpoints and rows to their own disks. Use s3://, gs:// or a shared (NFS) path.", flush=True)
    start, failed, total = time.time(), 0, 0
    try:
        for plan in plans:
            grid = _tuner(plan, args, meta, storage, trial_count(plan)).fit()
            total += len(grid)
            failed += sum(1 for r in grid if r.error is not None)
    finally:
        cluster.shutdown()
    print(f"sweep {args.name}: {total - failed}/{total} trials finished in {time.time() - start:.0f} s; "
          f"rows: {len(results.read_rows(meta['results'], args.name))} in {meta['results']}/sweep={args.name}")
    return 1 if failed else 0


def main(name: str, presets: Presets, doc: str | None = None, argv: list[str] | None = None) -> int:
    """Parse flags, validate every trial before Ray starts, run the sweep; the process exit code."""
    args = parser(name, doc).parse_args(argv)
    if args.samples is not None:
        presets = {k: with_samples(v, args.samples) for k, v in presets.items()}
    try:
        if args.samples is not None and args.samples < 1:
            raise C.SweepConfigError(f"--samples {args.samples}: give at least 1 trial per searcher experiment")
        plans, trials = prepare(presets[args.preset](), args)
        plans = named(plans, name, args.name)
        print_plan(args.name, args.preset, plans, trials)
        if args.dry_run:
            return 0
        _check_storage(results.absolute(args.storage), plans, args)
    except C.SweepConfigError as err:
        for line in str(err).splitlines():
            print(f"error: {line}", file=sys.stderr)
        return 2
    return run_sweep(plans, args, trials)
