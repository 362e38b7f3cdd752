"""The local preset: every sweep's trials map the paper's tasks to the locally made D4RL-style sets, carry the authors'
per-task settings where the preset keeps them and its own CPU budgets where it does not, and validate; the sets a sweep
lacks are made with the preset's SAC budget before Ray starts."""
import argparse
import importlib.util
from pathlib import Path

import pytest

from tune_jobs import config as C
from tune_jobs import provision
from tune_jobs.space import expand, prepare_plan

SWEEPS = Path(__file__).resolve().parents[1] / "sweeps"
SCRIPTS = ["benchmark", "beta_ablation", "model_ablation", "solver_ablation", "steps_ablation", "tune_beta"]


def _plans(script: str) -> list:
    spec = importlib.util.spec_from_file_location(f"sweep_{script}", SWEEPS / f"{script}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.plans("local")


def _trials(script: str) -> list[dict]:
    args = argparse.Namespace(seeds=None, preset="local", sets=[], only=[])
    return [t for p in _plans(script) for t in expand(prepare_plan(p, args).space)]


def test_every_locomotion_task_maps_to_its_local_set():
    assert len(C.LOCAL_DATASETS) == 9 and set(C.LOCAL_DATASETS) == set(C.LOCOMOTION)
    assert C.resolve_dataset("local", "hopper-medium-v2") == "local/hopper/medium-v0"
    assert C.resolve_dataset("local", "walker2d-medium-replay-v2") == "local/walker2d/medium-replay-v0"
    assert C.resolve_dataset("local", "halfcheetah-medium-expert-v2") == "local/halfcheetah/medium-expert-v0"
    assert C.resolve_dataset("local", "antmaze-umaze-v0") == ""
    problems = C.trial_problems({"algorithm": "bc", "task": "antmaze-umaze-v0", "preset": "local"})
    assert problems == [f"task 'antmaze-umaze-v0' has no local dataset; valid: {', '.join(C.LOCAL_DATASETS)}"]


@pytest.mark.parametrize("script", SCRIPTS)
def test_every_sweep_has_a_valid_local_preset_on_hopper(script):
    trials = _trials(script)
    assert trials and {t["preset"] for t in trials} == {"local"}
    assert {t["dataset"] for t in trials} <= {"local/hopper/medium-v0", "local/hopper/medium-replay-v0"}
    if not _plans(script)[0].searcher:
        assert {t["seed"] for t in trials} == {0, 1, 2}
    C.validate_configs(trials)


def test_the_local_benchmark_runs_bc_gmpo_gmpg_gtp_on_both_hopper_sets_within_a_few_cpu_hours():
    trials = _trials("benchmark")
    flat = [C.flatten(t) for t in trials]
    cells = {(f["task"], f["algorithm"], f["seed"]) for f in flat}
    assert cells == {(task, algo, seed) for task in C.LOCAL_TASKS for algo in ("bc", "gmpo", "gmpg", "gtp")
                     for seed in (0, 1, 2)} and len(flat) == 24
    assert all(f["batch_size"] == 256 and f["seeds_per_trial"] == 1 and f["eval_episodes"] == 10 for f in flat)
    hours = sum(C.cpu_hours(t) for t in trials)
    assert 1.0 < hours < 4.0  # "a few CPU-hours" for the whole sweep (gradient steps at the measured ms per step)


def test_gmpo_and_gmpg_keep_the_authors_per_task_settings_with_the_local_phases():
    gmpo = C.variant("local", "gmpo", "gvp", task="hopper-medium-v2")
    assert (gmpo["beta"], gmpo["max_weight"], gmpo["lr"], gmpo["critic_lr"]) == (16.0, 1000.0, 1e-4, 3e-4)
    replay = C.variant("local", "gmpo", "gvp", task="hopper-medium-replay-v2")
    assert (replay["beta"], replay["max_weight"]) == (6.0, 100.0)
    gmpg = C.variant("local", "gmpg", "vpsde", task="hopper-medium-v2")
    assert (gmpg["lr"], gmpg["log_ratio_scale"], gmpg["policy_eval_every"]) == (3e-5, "bits", 5)
    # GMPG's beta is the preset's own (1), not the authors' 20 / 8: the named departure of LOCAL_OVER_AUTHORS
    assert C.authors_settings("gmpg", "vpsde", "hopper-medium-v2")["beta"] == 20.0
    assert gmpg["beta"] == 1.0 and C.variant("local", "gmpg", "vpsde", task="hopper-medium-replay-v2")["beta"] == 1.0
    for v in (gmpo, gmpg):  # the authors' batches, epochs and T = 1000 are replaced by the local budget
        assert not {"critic_epochs", "policy_epochs", "behaviour_epochs", "policy_batch_size"} & set(v)
    assert gmpg["train_steps"] == 16 and gmpo["critic_steps"] == 50_000 and gmpo["steps"] - 50_000 == 20_000
    assert gmpg["steps"] - max(gmpg["critic_steps"], gmpg["behaviour_steps"]) == 100


def test_the_beta_ablation_shares_one_stage_per_seed_across_betas():
    from tune_jobs.stages import stage_key

    keys = {}
    for t in _trials("beta_ablation"):
        run, overrides = C.split(t)
        keys.setdefault((run["algorithm"], run["seed"]), set()).add(stage_key(run, overrides, "hash", "commit"))
    assert len(keys) == 6 and all(len(k) == 1 for k in keys.values())  # 3 betas, one stage per algorithm and seed


def test_missing_local_sets_are_made_with_the_preset_budget_one_sac_run_per_env(tmp_path, monkeypatch, capsys):
    import genrl_core.data.making as making

    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path))
    calls = []
    monkeypatch.setattr(making, "make_datasets", lambda env, kinds, **kw: calls.append((env, sorted(kinds), kw)))
    provision.make_local_datasets({"local/hopper/medium-v0", "local/hopper/medium-replay-v0",
                                   "local/walker2d/medium-expert-v0", "local/pendulum/medium-v0"})
    assert calls == [("Hopper-v5", ["medium", "medium-replay"], {"seed": 0, "progress": True, **C.LOCAL_DATA_BUDGET}),
                     ("Walker2d-v5", ["medium-expert"], {"seed": 0, "progress": True, **C.LOCAL_DATA_BUDGET})]
    assert "--total-steps 200000 --dataset-steps 100000" in capsys.readouterr().out
