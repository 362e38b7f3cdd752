"""benchmarks/: the speed entry point's smallest configuration (--smoke --packing) runs every section and reports
positive finite figures, and fidelity_hopper.py still starts. Speed itself is never asserted."""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from genrl_core import algorithms
from genrl_core.generative.networks import PRECISIONS

REPO = Path(__file__).resolve().parents[1]
SECTIONS = ("ceiling", "update", "act", "gtp", "sample", "log_prob", "loglik", "gmpg", "packing")


def _env() -> dict[str, str]:
    """One thread, as `make bench` runs it."""
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict[str, Any]]:
    """(stdout, JSON figures) of `python benchmarks/speed_bench.py --smoke --packing --json F` from the repo root."""
    out = tmp_path_factory.mktemp("bench") / "speed.json"
    res = subprocess.run([sys.executable, "benchmarks/speed_bench.py", "--smoke", "--packing", "--json", str(out)],
                         cwd=REPO, env=_env(), capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    return res.stdout, json.loads(out.read_text())


def _positive(value: Any, where: str) -> None:
    assert isinstance(value, (int, float)) and math.isfinite(value) and value > 0, f"{where}: {value!r}"


def test_table_has_every_section(smoke: tuple[str, dict[str, Any]]) -> None:
    stdout, _ = smoke
    table = stdout[stdout.index("\nspeed table (smoke)"):].splitlines()[3:]
    sections = {line.split()[0] for line in table if line.strip()}
    assert sections == set(SECTIONS)
    assert not [line for line in table if "skipped" in line or "failed" in line]


def test_ceilings_updates_and_act(smoke: tuple[str, dict[str, Any]]) -> None:
    _, res = smoke
    for key in ("ceiling", "ceiling_after"):
        for name in ("matmul_flops", "matmul_flops_bf16", "read_bytes_per_s"):
            _positive(res[key][name], f"{key}.{name}")
    expected = {"iql_fp32"} | {f"{n}_{p}" for n in algorithms.names() for p in PRECISIONS}
    assert set(res["update"]) == expected
    for key, fig in res["update"].items():
        for name in ("seconds", "flops", "flops_per_s", "of_ceiling", "matmul_seconds"):
            _positive(fig[name], f"update.{key}.{name}")
    for name in ("sfbc", "qgpo"):
        _positive(res["update"][f"{name}_fp32"]["cache_s"], f"{name} cache")
    acts = {f"{n}_b{b}" for n in [*algorithms.names(), "gtp_K=1", "gtp_K=2"] for b in (1, 4)}
    assert set(res["act"]) == acts
    for key, fig in res["act"].items():
        _positive(fig["seconds"], f"act.{key}")
        _positive(fig["actions_per_s"], f"act.{key}")


def test_sampling_likelihood_gmpg_packing(smoke: tuple[str, dict[str, Any]]) -> None:
    _, res = smoke
    _positive(res["gtp_teacher"]["surrogate_s"], "gtp surrogate")
    _positive(res["gtp_teacher"]["ode_s"], "gtp ode")
    assert len(res["sample"]) == 2 * 4 * 2 + 4  # batches x solvers x step counts, and one throughput row per solver
    for key, fig in res["sample"].items():
        for name in ("plain_s", "fast_s"):
            _positive(fig[name], f"sample.{key}.{name}")
    for name, value in res["log_prob"].items():
        _positive(value, f"log_prob.{name}")
    assert len(res["loglik_accuracy"]["cases"]) == 3 * 2
    for key, fig in res["loglik_accuracy"]["cases"].items():
        _positive(fig["error"], f"loglik.{key}")
    for name in ("two_pass_s", "three_pass_s", "sample_pass_s", "pi_density_pass_s", "mu_density_pass_s",
                 "flop_ratio"):
        _positive(res["gmpg_passes"][name], f"gmpg.{name}")
    assert set(res["gmpg_memory"]) == {"T2_ckpt", "T2_plain"}
    for key, fig in res["gmpg_memory"].items():
        assert math.isfinite(fig["peak_mib"]) and fig["peak_mib"] >= 0, key
    assert [(r["algo"], r["n"]) for r in res["packing"]] == [("bc", 1), ("bc", 2)]
    for r in res["packing"]:
        _positive(r["single_steps_per_s"], "packing single")
        _positive(r["packed_total_steps_per_s"], "packing packed")


def test_fidelity_hopper_starts() -> None:
    """Its shared helpers import when it is run as a script (the study itself needs its Hopper dataset)."""
    res = subprocess.run([sys.executable, "benchmarks/fidelity_hopper.py", "--help"], cwd=REPO, env=_env(),
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "{run,table,critic}" in res.stdout


def _bench(tmp_path: Path, *flags: str, timeout: int = 900) -> dict[str, Any]:
    """The JSON figures of `python benchmarks/speed_bench.py --smoke FLAGS --json F` (it must succeed)."""
    out = tmp_path / "speed.json"
    env = {**_env(), "MINARI_DATASETS_PATH": str(tmp_path / "minari")}  # its own sets, not the session's fixtures'
    res = subprocess.run([sys.executable, "benchmarks/speed_bench.py", "--smoke", *flags, "--json", str(out)],
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "skipped" not in res.stdout and "failed" not in res.stdout, res.stdout[-3000:]
    return json.loads(out.read_text())


def test_compile_section_times_eager_and_compiled_updates(tmp_path: Path) -> None:
    fig = _bench(tmp_path, "--only", "compile", "--compile-algos", "bc")["compile"]["bc"]
    for name in ("eager_s", "compiled_s", "matmul_s", "compiled_over_matmul", "eager_over_matmul", "calls"):
        _positive(fig[name], f"compile.bc.{name}")
    assert fig["eager_calls"] == 0 and fig["batch"] == 16  # BC's matching loss differentiates no network input


def test_overhead_split_adds_up_to_the_wall_time() -> None:
    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        from speed_bench import overhead_split
    finally:
        sys.path.pop(0)
    import pandas as pd

    rows = pd.DataFrame({"step": [100, 200], "iteration": [1, 2], "trial_start_unix": [1003.0, 1003.0],
                         "time_load_s": [1.0, 1.0], "time_update_s": [5.0, 10.0], "time_eval_s": [2.0, 4.0],
                         "time_report_s": [0.0, 0.5], "time_trial_s": [8.5, 16.0]})
    out = overhead_split(rows, started=1000.0, ended=1020.0)
    assert out == pytest.approx({"wall_s": 20.0, "ray_startup_s": 3.0, "load_s": 1.0, "update_s": 10.0, "eval_s": 4.0,
                                 "report_s": 0.5, "rest_in_trial_s": 0.5, "after_last_row_s": 1.0, "rounds": 2,
                                 "steps": 200, "overhead_fraction": 0.3})


@pytest.mark.slow
def test_overhead_section_splits_a_smoke_trial_under_ray(tmp_path: Path) -> None:
    fig = _bench(tmp_path, "--only", "overhead", "--overhead", "smoke")["overhead"]
    assert fig["ok"] and fig["steps"] == 300 and fig["rounds"] >= 3
    parts = ("ray_startup_s", "load_s", "update_s", "eval_s", "report_s", "rest_in_trial_s", "after_last_row_s")
    for name in ("wall_s", "update_s", "eval_s", "report_s", "load_s", "ray_startup_s"):
        _positive(fig[name], f"overhead.{name}")
    assert min(fig[k] for k in parts) >= 0
    assert sum(fig[k] for k in parts) == pytest.approx(fig["wall_s"], rel=1e-6)
    assert 0 < fig["overhead_fraction"] < 1


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the machine without CUDA")
def test_gpu_check_stops_with_one_line_without_cuda(tmp_path: Path) -> None:
    res = subprocess.run(["bash", "benchmarks/gpu_check.sh", str(tmp_path / "gpu.log")], cwd=REPO, env=_env(),
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 2 and res.stdout == ""
    assert res.stderr.strip().startswith("gpu_check: no CUDA device here") and len(res.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "gpu.log").exists()
