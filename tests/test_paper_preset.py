"""The paper preset takes GMPO's and GMPG's per-task settings from the authors' configs (the CSV in
analysis/reference), phases in epochs become steps for the dataset's size, and the sweeps carry them."""
import csv
import math

import pytest

from tune_jobs import config as C
from tune_jobs.trainable import phases_in_steps

ROWS = list(csv.DictReader(open(C.AUTHORS_CSV, newline="")))


@pytest.mark.parametrize("row", [r for r in ROWS if r["algorithm"] in ("gmpo", "gmpg")],
                         ids=lambda r: f"{r['algorithm']}-{r['model']}-{r['task']}")
def test_the_preset_per_task_values_equal_the_authors_csv(row):
    v = C.variant("paper", row["algorithm"], row["model"], task=row["task"])
    assert v["lr"] == float(row["policy_lr"]) and v["critic_lr"] == float(row["critic_lr"])
    assert v["batch_size"] == int(row["batch_size"])
    assert v["critic_epochs"] == int(row["critic_epochs_or_iterations"])
    assert v["policy_epochs"] == int(row["policy_epochs_or_iterations"])
    assert v["sampling_steps"] == int(row["t_span_or_sampling_steps"]) - 1  # 32 grid points, 31 Euler steps
    beta = float(row["beta"]) if row["beta"] else C.table8_beta(row["task"], row["algorithm"])
    assert v["beta"] == beta
    if row["algorithm"] == "gmpo":
        assert v["max_weight"] == float(row["weight_clamp"])
    else:
        assert v["policy_batch_size"] == int(row["policy_batch_size"]) and v["train_steps"] == int(row["training_T"])
        assert v["behaviour_epochs"] == int(row["behaviour_epochs_or_iterations"])
        assert v["behaviour_lr"] == float(row["behaviour_lr"]) and v["log_ratio_scale"] == "bits"
        assert v["policy_eval_every"] == 5


def test_the_authors_choices_where_table_8_differs():
    assert C.variant("paper", "gmpo", "gvp", task="halfcheetah-medium-v2")["beta"] == 8.0  # Table 8: 1
    assert C.variant("paper", "gmpg", "vpsde", task="walker2d-medium-replay-v2")["beta"] == 8.0  # Table 8: 4
    assert C.variant("paper", "gmpg", "vpsde", task="hopper-medium-v2")["lr"] == 3e-5
    assert C.variant("paper", "gmpg", "vpsde", task="walker2d-medium-expert-v2")["lr"] == 1e-6
    assert C.variant("paper", "gmpo", "gvp", task="hopper-medium-v2")["max_weight"] == 1000.0
    assert C.variant("paper", "gmpo", "gvp", task="walker2d-medium-replay-v2")["max_weight"] == 10000.0
    assert C.variant("paper", "gmpg", "vpsde", task="antmaze-large-play-v0")["beta"] == 0.5  # Table 8 (not run)
    assert C.variant("paper", "gtp", task="hopper-medium-v2")["steps"] == 2_000_000


def test_epochs_become_steps_for_the_loaded_dataset():
    config = {**C.variant("paper", "gmpg", "vpsde", task="hopper-medium-v2"), "task": "hopper-medium-v2",
              "preset": "paper"}
    run, overrides = phases_in_steps(*C.split(config), 1_000_000)
    per_epoch = math.ceil(1_000_000 / 4096)
    assert overrides["critic_steps"] == 5000 * per_epoch and overrides["behaviour_steps"] == 2000 * per_epoch
    assert run["steps"] == 5000 * per_epoch + 500 * math.ceil(1_000_000 / 40960)
    assert C.trial_problems(config) == []


def test_the_benchmark_sweep_runs_gtp_bc_and_antmaze_over_100_episodes():
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("bench", Path(__file__).parents[1] / "sweeps" / "benchmark.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    variants = bench.plans("paper")[0].space["variant"]["grid_search"]
    algos = {(v["algorithm"], v["task"]) for v in variants}
    assert ("gtp_bc", "hopper-medium-v2") in algos and ("gtp", "antmaze-umaze-v0") in algos
    assert all(v["eval_episodes"] == 100 for v in variants if v["task"].startswith("antmaze"))
    expectiles = {(v["algorithm"], v["task"]): v.get("expectile") for v in variants}
    assert expectiles[("gtp", "antmaze-umaze-v0")] == 0.9 and expectiles[("gmpo", "antmaze-umaze-v0")] == 0.9
    assert expectiles[("gtp", "hopper-medium-v2")] is None and expectiles[("gtp_bc", "antmaze-umaze-v0")] is None
    gmpo = next(v for v in variants if v["algorithm"] == "gmpo" and v["task"] == "halfcheetah-medium-v2")
    assert gmpo["beta"] == 8.0 and gmpo["critic_epochs"] == 5000


def test_the_paper_preset_prefers_d4rl_files_and_says_which(tmp_path, monkeypatch, capsys):
    from tune_jobs import runner

    monkeypatch.setenv("D4RL_DATASETS_PATH", str(tmp_path))
    assert C.resolve_dataset("paper", "hopper-medium-v2") == "mujoco/hopper/medium-v0"  # no file: Minari stand-in
    (tmp_path / "hopper_medium-v2.hdf5").write_bytes(b"")
    assert C.resolve_dataset("paper", "hopper-medium-v2") == "d4rl/hopper-medium-v2"
    assert C.resolve_dataset("paper", "walker2d-medium-v2") == "mujoco/walker2d/medium-v0"
    assert C.resolve_dataset("paper", "antmaze-umaze-v0") == "D4RL/antmaze/umaze-v1"
    assert C.dataset_problems("d4rl/hopper-medium-v2") == []
    assert "no such D4RL file" in C.dataset_problems("d4rl/walker2d-medium-v2")[0]
    trials = [C.flatten({"preset": "paper", "task": t}) for t in ("hopper-medium-v2", "walker2d-medium-v2")]
    runner._print_plan("benchmark", "paper", [], trials)
    out = capsys.readouterr().out
    assert "hopper-medium-v2 -> d4rl/hopper-medium-v2 (D4RL's own file)" in out
    assert "walker2d-medium-v2 -> mujoco/walker2d/medium-v0 (Minari stand-in" in out


def test_policies_use_the_authors_icfm_sigma():
    from genrl_core.run.training import build_agent

    assert build_agent("bc", 3, 2, {}).policy.path.s == 0.1
    assert build_agent("gmpo", 3, 2, {"icfm_sigma": 0.01}).policy.path.s == 0.01
