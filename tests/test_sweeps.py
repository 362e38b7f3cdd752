"""The sweep platform on real Ray: validation before Ray starts, a two-node cluster fed by `ray job submit`,
a trial worker killed with SIGKILL, a driver killed and resumed. Every Ray this file starts binds to 127.0.0.1,
lives in its own short temporary --temp-dir, and is stopped by killing exactly its own processes."""
from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

from tune_jobs import config as C
from tune_jobs import results, runner, space

REPO = Path(__file__).resolve().parents[1]
PY = sys.executable
# `ray ...` with Ray's loopback-to-external-IP swap disabled, so that every service listens on 127.0.0.1 only.
# (The CLI itself may still add a second node: that check reads ENABLE_RAY_CLUSTER, set back to True.)
RAY_CLI = ("import sys; from tune_jobs.ray_compat import allow_multi_node_cli, loopback_node_ip; "
           "from ray.scripts.scripts import main; sys.argv[0] = 'ray'; ctx = loopback_node_ip(); ctx.__enter__(); "
           "allow_multi_node_cli(); main()")
GMPO_ONLY = ["--only", "task=halfcheetah-medium-v2", "--only", "algorithm=gmpo"]


def _beta_sweep():
    spec = importlib.util.spec_from_file_location("beta_ablation", REPO / "sweeps" / "beta_ablation.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _processes() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, command line) of every process we can see."""
    out = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmd = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            ppid = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        out[int(entry)] = (ppid, cmd)
    return out


def _ray_tree(markers: list[str], roots: set[int] = frozenset()) -> set[int]:
    """Processes whose command line names a marker (our temp dir, our GCS port), the given roots, and all their
    descendants."""
    procs = _processes()
    found = {pid for pid, (_, cmd) in procs.items() if any(m in cmd for m in markers) and pid != os.getpid()}
    found |= set(roots) & set(procs)
    while True:
        children = {pid for pid, (ppid, _) in procs.items() if ppid in found} - found
        if not children:
            return found
        found |= children


def _kill(pids: set[int], sig: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except OSError:
            pass


def stop_ray(markers: list[str]) -> None:
    """Stop exactly the Ray processes of this test (SIGTERM, then SIGKILL), never anybody else's."""
    for sig, wait in ((signal.SIGTERM, 3.0), (signal.SIGKILL, 1.0)):
        pids = _ray_tree(markers)
        _kill(pids, sig)
        if pids:
            time.sleep(wait)


def kill_driver(proc: subprocess.Popen, temp: str) -> None:
    """SIGKILL a sweep's driver, then what is left of its Ray (listed first: orphans lose their parent and marker)."""
    tree = _ray_tree([temp], {proc.pid})
    proc.kill()
    proc.communicate(timeout=60)
    time.sleep(1.0)
    _kill(tree - {proc.pid}, signal.SIGKILL)


@pytest.fixture()
def ray_temp():
    """A short Ray temp dir (unix socket paths are limited to ~107 characters); its Ray is stopped afterwards."""
    path = tempfile.mkdtemp(prefix="rt", dir="/tmp")
    yield path
    stop_ray([path])
    shutil.rmtree(path, ignore_errors=True)


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", RAY_DEDUP_LOGS="0", TUNE_GLOBAL_CHECKPOINT_S="1",
               PYTHONUNBUFFERED="1", **extra)
    return env


def _sweep_cmd(storage: str, temp: str, *extra: str) -> list[str]:
    return [PY, str(REPO / "sweeps" / "beta_ablation.py"), "--storage", storage, "--temp-dir", temp, *extra]


def _rows(storage: str):
    return results.read_rows(results.results_root(storage), "beta_ablation")


def _wait_for(predicate, proc: subprocess.Popen, timeout: float, what: str):
    end = time.time() + timeout
    while time.time() < end:
        value = predicate()
        if value:
            return value
        if proc.poll() is not None:
            raise AssertionError(f"the sweep ended (rc {proc.returncode}) before {what}:\n{proc.stdout.read()}")
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _terminated_in_experiment_state(experiment: Path) -> set[str]:
    """Trials the driver's last saved experiment state records as finished (what --resume will skip)."""
    try:
        state = json.loads(max(experiment.glob("experiment_state-*.json")).read_text())
        trials = [json.loads(t[0]) for t in state["trial_data"]]
    except (ValueError, OSError, KeyError):  # not written yet, or caught mid-write
        return set()
    return {t["trial_id"] for t in trials if t.get("status") == "TERMINATED"}


def _assert_complete(rows, steps: list[int]) -> None:
    """Every trial has each evaluation exactly once, and exactly its last one is marked final."""
    for trial_id, g in rows.groupby("trial_id"):
        assert sorted(g["step"]) == steps, f"{trial_id}: steps {sorted(g['step'])}"
        assert list(g.sort_values("step")["final"]) == [False] * (len(steps) - 1) + [True], trial_id
        assert sorted(g["iteration"]) == list(range(1, len(steps) + 1)), trial_id


# --- without Ray ------------------------------------------------------------------------------------------------

def test_paper_mapping_table_names_the_datasets_used():
    assert C.paper_dataset("hopper-medium-v2") == "mujoco/hopper/medium-v0"
    assert C.paper_dataset("walker2d-medium-expert-v2") == "mujoco/walker2d/medium-v0+mujoco/walker2d/expert-v0"
    assert C.paper_dataset("halfcheetah-medium-replay-v2") == "local/halfcheetah/medium-replay-v0"
    assert C.paper_dataset("antmaze-large-diverse-v0") == "D4RL/antmaze/large-diverse-v1"
    assert len(C.LOCOMOTION) == 9 and len(C.ANTMAZE) == 6
    assert C.smoke_dataset("hopper-medium-replay-v2") == "local/pendulum/medium-replay-v0"
    flat = C.flatten({"task": "hopper-medium-expert-v2", "preset": "smoke", "variant": {"algorithm": "gmpg"}})
    assert flat["dataset"] == "local/pendulum/medium-expert-v0" and flat["algorithm"] == "gmpg"


def test_every_sweep_expands_and_validates_its_configs():
    for name in ("beta_ablation", "solver_ablation", "steps_ablation", "model_ablation", "benchmark", "tune_beta"):
        spec = importlib.util.spec_from_file_location(name, REPO / "sweeps" / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        for preset in ("smoke", "paper"):
            plans = module.plans(preset)
            configs = [c for p in plans for c in runner.expand({**p.space, "preset": preset})]
            assert configs, (name, preset)
            C.validate_configs(configs)


@pytest.mark.parametrize("flags, message", [
    (["--set", "algorithm=nope"], "unknown algorithm 'nope'"),
    (["--set", "solver=nope"], "unknown solver 'nope'"),
    (["--set", "model=nope"], "unknown model 'nope'"),
    (["--set", "beta=-1"], "beta must be >= 0, got -1"),
    (["--only", "algorithm=gmpg", "--set", "prediction=eps"], "GMPG needs a velocity model"),
    (["--set", "dataset=local/nothing/medium-v0"], "dataset 'local/nothing/medium-v0' does not exist"),
    (["--seeds", "0", "0"], "--seeds 0 0: give each seed once, as integers >= 0"),
    (["--seeds", "-1"], "--seeds -1: give each seed once, as integers >= 0"),
    (["--samples", "0"], "--samples 0: give at least 1 trial"),
    (["--only", "algoritm=gmpo"], "--only algoritm=gmpo: no trial of this sweep sets 'algoritm'; keys: "),
    (["--only", "beta=5"], "--only beta=5: no trial has beta=5; values in this sweep: "),
    (["--set", "seed=abc"], "seed must be an integer >= 0, got 'abc'"),
    (["--set", "device=gpu"], "unknown device 'gpu'; valid: auto, cpu, cuda, cuda:N"),
    (["--set", "normalize_obs=yes"], "normalize_obs must be true or false, got 'yes'"),
    (["--set", "steps=True"], "steps must be an integer >= 1, got True"),
    (["--only", "algorithm=gmpg", "--set", "grad_checkpoint=maybe"], "grad_checkpoint must be true or false"),
])
def test_bad_sweeps_fail_before_ray_starts_with_one_line(flags, message, tmp_path, capsys):
    import ray

    temp = tmp_path / "ray"
    module = _beta_sweep()
    presets = {"smoke": lambda: module.plans("smoke"), "paper": lambda: module.plans("paper")}
    rc = runner.main("beta_ablation", presets, argv=["--storage", str(tmp_path / "s"), "--temp-dir", str(temp), *flags])
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert rc == 2
    assert len(err) == 1 and err[0].startswith("error: ") and message in err[0], err
    assert not ray.is_initialized() and not temp.exists() and not (tmp_path / "s").exists()


def test_a_named_sweep_has_its_own_experiment_folders(tmp_path):
    """--name separates the Ray experiment folders too: --fresh under one name never clears another's."""
    storage = str(tmp_path)
    first = runner.named(_beta_sweep().plans("smoke"), "beta_ablation", "beta_ablation")
    second = runner.named(_beta_sweep().plans("smoke"), "beta_ablation", "second")
    assert [p.name for p in first] == ["beta_ablation"] and [p.name for p in second] == ["second"]
    (tmp_path / "beta_ablation").mkdir()  # the first sweep's experiment folder
    args = runner.parser("beta_ablation", None).parse_args(["--name", "second", "--fresh"])
    assert runner._existing(storage, second, args) == []
    runner._check_storage(storage, second, args)
    assert (tmp_path / "beta_ablation").is_dir()
    tune_beta = runner.named([runner.Plan("tune_beta-gmpo-hopper", {})], "tune_beta", "mine")
    assert tune_beta[0].name == "mine-gmpo-hopper"


def test_tune_beta_sizes_asha_after_set_and_gtp_schedules_span_the_run():
    spec = importlib.util.spec_from_file_location("tune_beta", REPO / "sweeps" / "tune_beta.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for flags, evaluations in [([], 3), (["--set", "steps=1000"], 10), (["--set", "steps=1050"], 11)]:
        plan = space.prepare_plan(module.plans("smoke")[0], runner.parser("tune_beta", None).parse_args(flags))
        assert module.evaluations(plan.space) == evaluations and plan.scheduler(plan.space)._max_t == evaluations
    run, overrides = C.split({"preset": "smoke", "task": "hopper-medium-v2", "variant": {"algorithm": "gtp"},
                              "steps": 2000})
    assert run["steps"] == 2000 and overrides["schedule_steps"] == 2000


def test_tune_sees_the_mean_over_seeds_still_training():
    from tune_jobs.trainable import _mean_metrics

    diverged = {"score_mean": float("nan"), "error": "training diverged at step 3", "final": True, "step": 100}
    healthy = {"score_mean": 25.0, "return_mean": -900.0, "error": "", "final": False, "step": 100}
    seen = _mean_metrics([diverged, healthy, {**healthy, "score_mean": 35.0}])
    assert seen["score_mean"] == 30.0 and seen["return_mean"] == -900.0 and seen["error"] == ""
    assert seen["final"] is False
    assert np.isnan(_mean_metrics([diverged])["score_mean"])


def test_results_rows_are_idempotent_and_final_marked(tmp_path):
    root = results.results_root(str(tmp_path))
    row = {"sweep": "s", "trial_id": "t1", "step": 10, "final": False, "score_mean": 1.0, "widths": (64, 64)}
    results.write_row(root, row)
    results.write_row(root, {**row, "score_mean": 2.0})  # a resumed trial evaluating step 10 again
    results.write_row(root, {**row, "step": 20})
    assert results.mark_final(root, "s", "t1", 20, "stopped_early")
    rows = results.read_rows(root)
    assert list(rows["step"]) == [10, 20] and list(rows["score_mean"]) == [2.0, 1.0]
    assert list(rows["final"]) == [False, True] and rows["stop_reason"].iloc[1] == "stopped_early"
    assert json.loads(rows["widths"].iloc[0]) == [64, 64]


def test_medium_expert_style_concatenation_scales_rewards_over_all_episodes(pendulum_datasets):
    from genrl_core.data.loading import load
    from genrl_core.data.loading import load as load_data

    medium, expert = pendulum_datasets["medium"], pendulum_datasets["expert"]
    both = load_data(f"{medium}+{expert}", "cpu", reward_scaling="locomotion")
    raw = [load(i, "cpu", reward_scaling="none") for i in (medium, expert)]
    assert len(both) == sum(len(d) for d in raw) and both.dataset_id == f"{medium}+{expert}"
    ratio = both.reward.numpy() / np.concatenate([d.reward.numpy() for d in raw])
    assert np.allclose(ratio[np.isfinite(ratio)], ratio[np.isfinite(ratio)][0], rtol=1e-4)  # one scale for all


# --- real Ray ---------------------------------------------------------------------------------------------------

@pytest.fixture()
def two_nodes(ray_temp, minari_root):
    """A head node and a second node (each 1 CPU) on 127.0.0.1, with the job server (dashboard)."""
    port, dash = _free_port(), _free_port()
    env = _env(RAY_AUTH_MODE="token", MINARI_DATASETS_PATH=minari_root)
    common = ["--node-ip-address=127.0.0.1", "--num-cpus=1", "--num-gpus=0", "--disable-usage-stats"]

    def ports() -> list[str]:
        return [f"--dashboard-agent-listen-port={_free_port()}", f"--dashboard-agent-grpc-port={_free_port()}",
                f"--runtime-env-agent-port={_free_port()}", f"--metrics-export-port={_free_port()}"]

    head = [PY, "-c", RAY_CLI, "start", "--head", f"--port={port}", f"--temp-dir={ray_temp}",
            "--include-dashboard=true", "--dashboard-host=127.0.0.1", f"--dashboard-port={dash}",
            f"--ray-client-server-port={_free_port()}", *common, *ports()]
    second = [PY, "-c", RAY_CLI, "start", f"--address=127.0.0.1:{port}", '--resources={"second_node": 1}',
              *common, *ports()]
    try:
        for cmd in (head, second):
            subprocess.run(cmd, env=env, check=True, capture_output=True, text=True, timeout=120)
        yield {"dashboard": f"http://127.0.0.1:{dash}", "env": env}
    finally:
        stop_ray([ray_temp, f"127.0.0.1:{port}"])


@pytest.mark.slow
def test_job_submit_on_two_node_cluster_runs_trials_on_both(two_nodes, pendulum_datasets, tmp_path):
    storage = str(tmp_path / "store")
    job = [PY, "-c", RAY_CLI, "job", "submit", f"--address={two_nodes['dashboard']}", "--",
           PY, str(REPO / "sweeps" / "beta_ablation.py"), "--storage", storage, "--seeds", "0", *GMPO_ONLY,
           "--set", "steps=60", "--set", "eval_every=30"]
    out = subprocess.run(job, env=two_nodes["env"], capture_output=True, text=True, timeout=420)
    assert out.returncode == 0 and "succeeded" in out.stdout, out.stdout[-4000:] + out.stderr[-4000:]
    rows = _rows(storage)
    assert rows["trial_id"].nunique() == 3  # beta 1, 4, 8
    _assert_complete(rows, [30, 60])
    assert rows["node_id"].nunique() == 2, "trials should have run on both nodes"


@pytest.mark.slow
def test_sigkilled_trial_worker_resumes_from_its_checkpoint(ray_temp, pendulum_datasets, tmp_path):
    storage = str(tmp_path / "store")
    cmd = _sweep_cmd(storage, ray_temp, "--seeds", "0", *GMPO_ONLY, "--set", "beta=1.0", "--set", "steps=800",
                     "--set", "eval_every=100", "--num-cpus", "1", "--max-failures", "2")
    proc = subprocess.Popen(cmd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        _wait_for(lambda: len(_rows(storage)) >= 2, proc, 300, "two evaluations")
        victim = int(_rows(storage)["pid"].iloc[-1])
        os.kill(victim, signal.SIGKILL)
        out, _ = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            kill_driver(proc, ray_temp)
    assert proc.returncode == 0, out[-4000:]
    rows = _rows(storage)
    _assert_complete(rows, list(range(100, 900, 100)))
    assert victim in set(rows["pid"]) and rows["pid"].nunique() == 2
    restarted = rows[rows["restarts"] == 1].sort_values("step")
    assert len(restarted) and restarted["iteration"].iloc[0] > 1  # continued, not started over
    trial_dir = next((Path(storage) / "beta_ablation").glob("trial_*"))
    reports = [json.loads(line) for line in (trial_dir / "result.json").read_text().splitlines()]
    restarts = [r["training_iteration"] for r in reports if r["iterations_since_restore"] == 1]
    assert len(restarts) == 2 and restarts[1] > 1 and reports[-1]["training_iteration"] == 8


@pytest.mark.slow
def test_killed_driver_resume_completes_only_unfinished_trials(pendulum_datasets, tmp_path):
    storage = str(tmp_path / "store")
    flags = ["--seeds", "0", "1", *GMPO_ONLY, "--set", "beta=[1.0,4.0]", "--set", "steps=800", "--set",
             "eval_every=100", "--num-cpus", "2"]
    steps = list(range(100, 900, 100))
    first, second = tempfile.mkdtemp(prefix="rt", dir="/tmp"), tempfile.mkdtemp(prefix="rt", dir="/tmp")
    try:
        proc = subprocess.Popen(_sweep_cmd(storage, first, *flags), env=_env(), stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)

        def two_done_one_running():
            rows = _rows(storage)
            if rows.empty:
                return None
            done = set(rows.loc[rows["final"], "trial_id"])
            running = set(rows["trial_id"]) - done
            saved = _terminated_in_experiment_state(Path(storage) / "beta_ablation")
            return (done, running) if len(done) >= 2 and running and done <= saved else None

        done, _ = _wait_for(two_done_one_running, proc, 300, "two finished trials and a running one")
        kill_driver(proc, first)
        before = {p: p.stat().st_mtime_ns for p in Path(results.results_root(storage)).rglob("*.parquet")}
        resumed = subprocess.run(_sweep_cmd(storage, second, *flags, "--resume"), env=_env(), capture_output=True,
                                 text=True, timeout=400)
    finally:
        stop_ray([first, second])
        shutil.rmtree(first, ignore_errors=True)
        shutil.rmtree(second, ignore_errors=True)
    assert resumed.returncode == 0, resumed.stdout[-4000:] + resumed.stderr[-4000:]
    rows = _rows(storage)
    assert rows["trial_id"].nunique() == 4
    _assert_complete(rows, steps)
    started = set(re.findall(r"\] (\S+) start ", resumed.stdout))
    assert started and not started & done, (started, done)  # finished trials did not run again
    assert started == set(rows["trial_id"]) - done
    for path, mtime in before.items():
        if any(path.name.startswith(t) for t in done):
            assert path.stat().st_mtime_ns == mtime, path  # their rows were not rewritten


@pytest.mark.slow
def test_stage_reuse_gives_the_same_rows_as_training_every_stage(ray_temp, pendulum_datasets, tmp_path):
    """Two GMPO trials that differ only in beta: with reuse the second loads the first's critic stage, and every
    row (scores and losses) equals the rows of the same sweep with each trial training its own critic."""
    flags = ["--seeds", "0", *GMPO_ONLY, "--set", "beta=[1.0,4.0]", "--set", "steps=300", "--set", "eval_every=100",
             "--num-cpus", "1"]
    got = {}
    for reuse in ("true", "false"):
        storage = str(tmp_path / f"store-{reuse}")
        out = subprocess.run(_sweep_cmd(storage, ray_temp, *flags, "--set", f"reuse_stages={reuse}"), env=_env(),
                             capture_output=True, text=True, timeout=600)
        assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-4000:]
        stop_ray([ray_temp])
        got[reuse] = _rows(storage).sort_values(["beta", "step"]).reset_index(drop=True)
    on, off = got["true"], got["false"]
    assert sorted(on.groupby("beta")["stage"].first()) == ["loaded", "trained"]
    assert set(off["stage"]) == {""}
    assert list(on["step"]) == list(off["step"]) == [100, 200, 300] * 2
    for column in ("score_mean", "return_mean", "q_loss", "policy_loss"):
        assert on[column].equals(off[column]), column
    assert on.loc[on["step"] > 100, "score_mean"].nunique() > 1  # the betas' policies did differ after the stage
    assert len(list((tmp_path / "store-true").rglob("stages/*.pt"))) == 1
    # TensorBoard: every trial's events file holds the scores it reported, at their gradient steps
    from test_tensorboard import read_scalars  # noqa: PLC0415

    trials = sorted((tmp_path / "store-false" / "beta_ablation").glob("trial_*"))
    logged = sorted(v for t in trials for _, v in read_scalars(t)["ray/tune/score_mean"])
    assert len(trials) == 2 and logged == pytest.approx(sorted(off["score_mean"]), rel=1e-5)
    assert sorted({s for t in trials for s, _ in read_scalars(t)["ray/tune/score_mean"]}) == [100, 200, 300]
