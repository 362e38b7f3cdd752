"""The shared sweep driver: presets, validation before Ray starts, local or cluster Ray, Tune, Parquet.

A sweep script gives, per preset, a list of Plans (one Tune experiment each: a param space of
constants, tune.grid_search lists, searcher domains, and optionally "variant" dicts of tied keys).
The driver adds seeds and the preset, applies --set / --only, makes or checks the datasets, expands
and validates every trial (one line per problem, exit code 2, Ray never started), then runs Tune
on an embedded local Ray bound to 127.0.0.1 or on the cluster named by --address / RAY_ADDRESS
(the paper preset also joins a cluster already running on this machine, as under `ray submit`).
"""
from __future__ import annotations

import argparse
import ast
import contextlib
import itertools
import os
import sys
import time
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Iterator

from ray import tune
from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback

from genrl_core.d4rl import PATH_ENV as D4RL_ENV
from tune_jobs import config as C
from tune_jobs import results

LOOPBACK = "127.0.0.1"
SINGLE_MACHINE = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"  # "0": Ray processes take 127.0.0.1 as their node IP
LABEL_KEYS = ("task", "algorithm", "model", "prediction", "solver", "sampling_steps", "train_steps", "beta", "eta",
              "seed")
SMOKE_DATA_BUDGET: dict[str, Any] = dict(total_steps=6000, dataset_steps=4000, start_steps=1000, n_checkpoints=30,
                                         eval_episodes=10, ref_episodes=20)


@dataclass
class Plan:
    """One Tune experiment of a sweep."""

    name: str  # Ray experiment name (a folder under --storage)
    space: dict[str, Any]  # param space: constants, tune.grid_search(...), searcher domains, "variant"
    samples: int = 1  # num_samples (searcher plans)
    searcher: Callable[[], Any] | None = None  # makes the search algorithm (e.g. OptunaSearch)
    scheduler: Callable[[dict[str, Any]], Any] | None = None  # makes the trial scheduler from the prepared space
    metric: str | None = None  # metric and mode given to TuneConfig (searcher / scheduler plans)
    mode: str | None = None
    notes: list[str] = field(default_factory=list)  # printed before running (skipped tasks, ...)


Presets = dict[str, Callable[[], list[Plan]]]


def parser(name: str, doc: str | None) -> argparse.ArgumentParser:
    """The flags every sweep script shares."""
    p = argparse.ArgumentParser(prog=f"sweeps/{name}.py", description=doc,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", choices=["smoke", "paper"], default="smoke",
                   help="smoke: tiny budgets on a locally made Pendulum set (default); paper: the paper's grid")
    p.add_argument("--seeds", type=int, nargs="+", default=None, help="seeds (default: smoke 0 1, paper 0 1 2 3 4)")
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


# --- param spaces ---------------------------------------------------------------------------------------------

def _grid(value: Any) -> list | None:
    return value["grid_search"] if isinstance(value, dict) and set(value) == {"grid_search"} else None


def points(value: Any) -> list:
    """The values a key takes for validation: grid values, a domain's bounds or categories, or the constant."""
    if _grid(value) is not None:
        return _grid(value)
    from ray.tune.search.sample import Categorical, Domain

    if isinstance(value, Categorical):
        return list(value.categories)
    if isinstance(value, Domain):
        return [value.lower, value.upper]
    return [value]


def expand(space: dict[str, Any]) -> list[dict[str, Any]]:
    """Every trial config of a param space (searcher domains at their bounds), variants merged."""
    keys = list(space)
    combos = itertools.product(*(points(space[k]) for k in keys))
    return [C.flatten(dict(zip(keys, combo))) for combo in combos]


def _literal(text: str) -> Any:
    """A Python literal, true / false (any case) as bools, else the text itself."""
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def _key_value(item: str, flag: str) -> tuple[str, str]:
    if "=" not in item:
        raise C.SweepConfigError(f"{flag} {item!r}: expected KEY=VALUE")
    key, value = item.split("=", 1)
    return key.strip(), value.strip()


def apply_sets(space: dict[str, Any], sets: list[str]) -> dict[str, Any]:
    """--set KEY=VALUE: a top-level key wins over variants; a list value becomes a grid."""
    out = dict(space)
    for item in sets:
        key, text = _key_value(item, "--set")
        value = _literal(text)
        out[key] = tune.grid_search(value) if isinstance(value, list) else value
    return out


def filter_space(space: dict[str, Any], key: str, keep: Callable[[Any], bool]) -> dict[str, Any] | None:
    """Keep only trials whose `key` passes `keep` (a grid, a constant or a variant key); None if none is left."""
    out = dict(space)
    variants = [k for k in out if k.startswith("variant") and _grid(out[k]) is not None
                and any(key in v for v in _grid(out[k]))]
    if key in out and _grid(out[key]) is not None:
        out[key] = tune.grid_search([v for v in _grid(out[key]) if keep(v)])
        return out if _grid(out[key]) else None
    if key in out:
        return out if keep(out[key]) else None
    for vkey in variants:
        out[vkey] = tune.grid_search([v for v in _grid(out[vkey]) if keep(v.get(key, C.RUN_DEFAULTS.get(key)))])
        if not _grid(out[vkey]):
            return None
    if not variants:
        return out if keep(C.RUN_DEFAULTS.get(key)) else None
    return out


def _one_of(value: Any, allowed: list[str]) -> bool:
    """Whether a config value is one of --only's texts (numbers compared as numbers: beta=4 keeps 4.0)."""
    for text in allowed:
        wanted = _literal(text)
        if str(value) == text or (_number(value) and _number(wanted) and float(value) == float(wanted)):
            return True
    return False


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def apply_only(space: dict[str, Any], only: list[str]) -> dict[str, Any] | None:
    """--only KEY=V1,V2 on grids, constants and variants; None when no trial is left."""
    out: dict[str, Any] | None = dict(space)
    for item in only:
        key, text = _key_value(item, "--only")
        allowed = text.split(",")
        out = filter_space(out, key, lambda v: _one_of(v, allowed)) if out is not None else None
    return out


def _only_problem(plans: list[Plan], only: list[str]) -> str:
    """Why --only left no trial: the first filter naming an unknown key or a value no trial has, with the valid ones."""
    configs = [c for p in plans for c in expand(p.space)]
    for item in only:
        key, text = _key_value(item, "--only")
        values = sorted({str(c[key]) for c in configs if key in c})
        if not values:
            keys = sorted({k for c in configs for k in c})
            return f"--only {item}: no trial of this sweep sets {key!r}; keys: {', '.join(keys)}"
        if not any(_one_of(c[key], text.split(",")) for c in configs if key in c):
            return f"--only {item}: no trial has {key}={text}; values in this sweep: {', '.join(values)}"
    return f"no trials left after --only {' '.join(only)}: no trial passes all of them together"


def _prepare_plan(plan: Plan, args: argparse.Namespace) -> Plan | None:
    """Seeds, preset, --set and --only applied to a plan; None if --only leaves nothing."""
    space = dict(plan.space)
    seeds = args.seeds or ([0, 1] if args.preset == "smoke" else [0, 1, 2, 3, 4])
    if len(set(seeds)) != len(seeds) or min(seeds) < 0:
        raise C.SweepConfigError(f"--seeds {' '.join(map(str, seeds))}: give each seed once, as integers >= 0")
    if plan.searcher and args.seeds and len(seeds) > 1:
        raise C.SweepConfigError(f"--seeds {' '.join(map(str, seeds))}: {plan.name} searches with one seed per trial; "
                                 f"give one seed")
    space.setdefault("seed", seeds[0] if plan.searcher else tune.grid_search(seeds))
    space["preset"] = args.preset
    space = apply_only(apply_sets(space, args.sets), args.only)
    return None if space is None else replace(plan, space=space)


# --- datasets --------------------------------------------------------------------------------------------------

def _missing(dataset: str) -> list[str]:
    return [i for i in dataset.split("+") if C.dataset_problems(i)]


def make_smoke_datasets(datasets: set[str]) -> None:
    """Make the Pendulum stand-in sets the trials need and this machine lacks (one SAC run, ~1 minute)."""
    from genrl_core.datasets_local import DatasetExistsError, make_datasets

    wanted = {i for d in datasets for i in _missing(d) if i in C.SMOKE_DATASETS.values()}
    kinds = sorted({k for k, v in C.SMOKE_DATASETS.items() if v in wanted})
    if not kinds:
        return
    print(f"making smoke datasets {', '.join(sorted(wanted))} (Pendulum-v1, about a minute) ...", flush=True)
    try:
        make_datasets(C.SMOKE_ENV, kinds, seed=0, progress=False, **SMOKE_DATA_BUDGET, sac=_smoke_sac())
    except DatasetExistsError:  # another sweep made them meanwhile
        pass


def _smoke_sac():
    from genrl_core.sac import SACConfig

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


def prepare(plans: list[Plan], args: argparse.Namespace) -> tuple[list[Plan], list[dict[str, Any]]]:
    """Plans after flags, datasets made or fetched, and every trial validated; SweepConfigError if bad."""
    prepared = [p for p in (_prepare_plan(p, args) for p in plans) if p is not None]
    if not prepared:
        raise C.SweepConfigError(_only_problem(plans, args.only))
    C.validate_configs([t for p in prepared for t in expand(p.space)])
    if args.preset == "paper" and not any(k.startswith("dataset=") for k in args.sets):
        prepared = [p for p in (drop_unavailable_tasks(p) for p in prepared) if p is not None]
        if not prepared:
            raise C.SweepConfigError("no task of this sweep has its datasets on this machine (see the messages above)")
    trials = [t for p in prepared for t in expand(p.space)]
    datasets = {t["dataset"] for t in trials}
    if args.preset == "smoke":
        make_smoke_datasets(datasets)
    else:
        download_hosted(datasets)
    C.validate_datasets(trials)
    return prepared, trials


# --- Ray --------------------------------------------------------------------------------------------------------

def connect(args: argparse.Namespace) -> str:
    """Join the cluster (--address, RAY_ADDRESS, or a running one for the paper preset) or start local Ray."""
    import ray

    address = args.address or os.environ.get("RAY_ADDRESS")
    if address:
        ray.init(address=address, log_to_driver=True)
        return f"cluster at {address}"
    if args.preset == "paper":
        try:
            ray.init(address="auto", log_to_driver=True)
            return "the cluster running on this machine"
        except ConnectionError:
            pass
    with loopback_node_ip():
        ray.init(num_cpus=args.num_cpus or os.cpu_count(), include_dashboard=False, _node_ip_address=LOOPBACK,
                 _temp_dir=args.temp_dir, log_to_driver=True)
    return f"embedded local Ray on {LOOPBACK}"


@contextlib.contextmanager
def loopback_node_ip() -> Iterator[None]:
    """Keep 127.0.0.1 as the node IP, so that GCS, raylet, workers and agents listen on the loopback interface
    only: Ray swaps a loopback address for the external one in this process (patched here) and in the processes it
    starts (RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0, which they inherit, makes them use 127.0.0.1)."""
    from ray._private import services

    original, env = services.resolve_ip_for_localhost, os.environ.get(SINGLE_MACHINE)
    services.resolve_ip_for_localhost = lambda host: host if host == LOOPBACK else original(host)
    os.environ[SINGLE_MACHINE] = "0"
    try:
        yield
    finally:
        services.resolve_ip_for_localhost = original
        if env is None:
            os.environ.pop(SINGLE_MACHINE, None)
        else:
            os.environ[SINGLE_MACHINE] = env


def _gpus_per_trial(args: argparse.Namespace) -> float:
    import ray

    if args.gpus_per_trial is not None:
        return args.gpus_per_trial
    return 0.25 if ray.cluster_resources().get("GPU", 0) > 0 else 0.0


def _label(config: dict[str, Any]) -> str:
    flat = C.flatten(config)
    return " ".join(f"{k}={flat[k]}" for k in LABEL_KEYS if k in flat and flat[k] not in ("", None))


class Progress(tune.Callback):
    """Console lines per trial start, evaluation, completion and error; marks early-stopped trials' last row final."""

    def __init__(self, root: str, sweep: str, total: int):
        self.root, self.sweep, self.total = root, sweep, total
        self.done, self.start = 0, time.time()

    def _say(self, trial, text: str) -> None:
        print(f"[{time.time() - self.start:7.1f}s] {trial.trial_id} {text}", flush=True)

    def on_trial_start(self, iteration, trials, trial, **info):
        self._say(trial, f"start  {_label(trial.config)}")

    def on_trial_result(self, iteration, trials, trial, result, **info):
        steps = C.flatten(trial.config)["steps"]
        self._say(trial, f"step {result.get('step')}/{steps} score {result.get('score_mean', float('nan')):.2f} "
                         f"return {result.get('return_mean', float('nan')):.1f} "
                         f"{result.get('grad_steps_per_s', 0):.0f} steps/s")

    def on_trial_complete(self, iteration, trials, trial, **info):
        self.done += 1
        last = trial.last_result or {}
        if last.get("step") and not last.get("final"):
            results.mark_final(self.root, self.sweep, trial.trial_id, last["step"], "stopped_early")
        self._say(trial, f"done   ({self.done}/{self.total} trials finished)")

    def on_trial_error(self, iteration, trials, trial, **info):
        self.done += 1
        self._say(trial, f"ERROR  ({self.done}/{self.total}); logs in {trial.local_path}")


def trial_dirname(trial) -> str:
    """Short trial folder names (the default spells out every variant key)."""
    return f"trial_{trial.trial_id}"


def _tuner(plan: Plan, args: argparse.Namespace, meta: dict[str, Any], storage: str, total: int):
    from tune_jobs.trainable import trainable

    fn = tune.with_resources(tune.with_parameters(trainable, meta=meta),
                             {"cpu": args.cpus_per_trial, "gpu": _gpus_per_trial(args)})
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
                                callbacks=[CSVLoggerCallback(), JsonLoggerCallback(),
                                           Progress(meta["results"], meta["sweep"], total)])
    return tune.Tuner(fn, param_space=plan.space, tune_config=tune_config, run_config=run_config)


def named(plans: list[Plan], default: str, name: str) -> list[Plan]:
    """The plans' experiment folders under --name: the sweep's own name, their prefix, replaced by it."""
    if name == default:
        return plans
    return [replace(p, name=name + (p.name[len(default):] if p.name.startswith(default) else f"-{p.name}"))
            for p in plans]


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
    existing = _existing(storage, plans, args)
    if existing and args.fresh:
        _clear(existing)
    elif existing and not args.resume:
        raise C.SweepConfigError(f"sweep {args.name!r} already has results at {existing[0]}; pass --resume to finish "
                                 f"it, --fresh to start over, or another --storage / --name")


def trial_count(plan: Plan) -> int:
    """Trials a plan runs: its grid (times samples), or the searcher's samples."""
    return plan.samples if plan.searcher else len(expand(plan.space)) * plan.samples


def _print_plan(name: str, preset: str, plans: list[Plan], trials: list[dict[str, Any]]) -> None:
    pairs = sorted({(t["task"], t["dataset"]) for t in trials})
    print(f"sweep {name} ({preset} preset): {sum(trial_count(p) for p in plans)} trials in {len(plans)} experiment(s)")
    for task, dataset in pairs:
        source = C.dataset_source(dataset) if preset == "paper" else ""
        print(f"  {task or '(no task)'} -> {dataset}" + (f" ({source})" if source else ""))
    for note in (n for p in plans for n in p.notes):
        print(f"  note: {note}")
    sys.stdout.flush()


def _run(plans: list[Plan], args: argparse.Namespace, trials: list[dict[str, Any]]) -> int:
    """Run every plan on Ray; 0 when every trial finished, 1 otherwise."""
    import ray

    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")  # CSV and JSON only, no TensorBoard files
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    storage = results.absolute(args.storage)
    meta = {"sweep": args.name, "results": results.results_root(storage), "git_commit": results.git_commit(),
            "data_root": os.path.abspath(os.environ["MINARI_DATASETS_PATH"]) if os.environ.get("MINARI_DATASETS_PATH")
            else None,
            "d4rl_root": os.path.abspath(os.environ[D4RL_ENV]) if os.environ.get(D4RL_ENV) else None}
    print(f"Ray: {connect(args)}; results: {meta['results']}/sweep={args.name}", flush=True)
    if "://" not in storage and len({n["NodeManagerHostname"] for n in ray.nodes() if n["Alive"]}) > 1:
        print(f"warning: --storage {storage} is a local path on a multi-host cluster; trials on other hosts write "
              f"their checkpoints and rows to their own disks. Use s3://, gs:// or a shared (NFS) path.", flush=True)
    start, failed, total = time.time(), 0, 0
    try:
        for plan in plans:
            grid = _tuner(plan, args, meta, storage, trial_count(plan)).fit()
            total += len(grid)
            failed += sum(1 for r in grid if r.error is not None)
    finally:
        ray.shutdown()
    print(f"sweep {args.name}: {total - failed}/{total} trials finished in {time.time() - start:.0f} s; "
          f"rows: {len(results.read_rows(meta['results'], args.name))} in {meta['results']}/sweep={args.name}")
    return 1 if failed else 0


def main(name: str, presets: Presets, doc: str | None = None, argv: list[str] | None = None) -> int:
    """Parse flags, validate every trial before Ray starts, run the sweep; the process exit code."""
    args = parser(name, doc).parse_args(argv)
    if args.samples is not None:
        presets = {k: _with_samples(v, args.samples) for k, v in presets.items()}
    try:
        if args.samples is not None and args.samples < 1:
            raise C.SweepConfigError(f"--samples {args.samples}: give at least 1 trial per searcher experiment")
        plans, trials = prepare(presets[args.preset](), args)
        plans = named(plans, name, args.name)
        _print_plan(args.name, args.preset, plans, trials)
        if args.dry_run:
            return 0
        _check_storage(results.absolute(args.storage), plans, args)
    except C.SweepConfigError as err:
        for line in str(err).splitlines():
            print(f"error: {line}", file=sys.stderr)
        return 2
    return _run(plans, args, trials)


def _with_samples(make: Callable[[], list[Plan]], samples: int) -> Callable[[], list[Plan]]:
    return lambda: [replace(p, samples=samples) if p.searcher else p for p in make()]
