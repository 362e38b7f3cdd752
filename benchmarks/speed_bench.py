"""One-run speed table at hopper size (state 11, action 3, ResidualUNet 512-256-128): the machine's own ceilings
and every hot path against them. Prints one table and writes JSON (`--json PATH`) to compare across commits.

    .venv/bin/python benchmarks/speed_bench.py --quick          # a few minutes on 2 CPUs
    .venv/bin/python benchmarks/speed_bench.py --ray --packing --json out/speed.json
    .venv/bin/python benchmarks/speed_bench.py --smoke          # tiny sizes, seconds: checks that every section runs
    .venv/bin/python benchmarks/speed_bench.py --quick --only compile          # compiled against eager updates
    .venv/bin/python benchmarks/speed_bench.py --only overhead --overhead local --overhead-set steps=7000 ...

Sections (--only picks some; the ceiling always runs):
- ceiling: a large float32 and bfloat16 matmul; on CPU the read bandwidth of a buffer bigger than L2, on CUDA a
  device-to-device copy.
- update: IQL's critic and every algorithm's update in its main (policy) phase, in fp32 and bf16: matmul FLOPs per
  update counted from the network shapes by torch's FlopCounterMode, achieved FLOP/s, fraction of the ceilings; on CPU
  also the matmuls' own rate inside the update, which bounds it; for SfBC / QGPO the time to draw their candidate
  cache. (BC's update is the generative model's loss + backward + Adam step.)
- act: actions/s of every algorithm's act() at batch 1 and 256 (GTP also at K = 1 and 2 flow-map jumps).
- gtp: GTP's update with the surrogate teacher against the ODE-solver teacher (the teacher ablation of its Table 3).
- sample: plain and fast samplers per solver, step count and batch: latency and its ratio to the FLOP floor
  (FLOPs / ceiling) and on CPU to the weight-streaming floor (network calls x weight bytes / read bandwidth);
  samples/s at a large batch; the CUDA-graph sampler on a GPU.
- log_prob: time, with backward. loglik: likelihood error per solver and step count against a converged reference.
- gmpg: two passes against a three-pass version of the same code, with the ratios the passes' costs and FLOP counts
  allow; peak memory at T = 32, 100, 1000 with gradient checkpointing.
- packing (--packing): total updates/s of N seeds packed into one model against one unpacked seed.
- ray (--ray): one smoke trial under Ray against the same run without Ray.
- compile (--compile): every algorithm's update eager and with its networks compiled (genrl_core.run.compiled) side by
  side, the compile time, and both against the eager update's own matmul time (CPU); --compile-algos picks some.
- overhead (--overhead smoke|local): one GMPO trial of the beta-ablation sweep under Ray, its wall time split into
  Ray start-up, dataset load, gradient updates, evaluation, checkpoint + report and the rest (tune_jobs.trainable's
  time_* columns); --overhead-set KEY=VALUE shortens it (MINARI_DATASETS_PATH: where the local sets are).
Headline CPU figures use one torch thread (--threads).
"""
from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import torch

from common import (ACT, OBS, REPO, Table, agent_for, batch_of, environment, flops_of, hopper_agent, hopper_model,
                    interleaved, matmul_profile, random_data, seconds, set_threads, sync, timed, with_cache)
from genrl_core import algorithms
from genrl_core.generative.fast_sampling import CudaGraphSampler, fast_sample
from genrl_core.generative.model import GenerativeModel
from genrl_core.generative.networks import PRECISIONS, bf16_note, precision_context
from genrl_core.run.compiled import compile_agent, compiled_calls
from genrl_core.run.packing import build_pack
from genrl_core.run.training import train_steps

TABLE = Table()
row = TABLE.row
SECTIONS = ("ceiling", "update", "act", "gtp", "sample", "log_prob", "loglik", "gmpg", "packing", "ray", "compile",
            "overhead")
OPT_IN = ("packing", "ray", "compile", "overhead")  # run only when asked for (--packing, --ray, ..., --only)


@dataclasses.dataclass(frozen=True)
class Packing:
    """What the packing section times: algorithms x models x pack sizes."""
    algos: tuple[str, ...] = ("bc", "gmpo")
    models: tuple[str, ...] = ("mlp64", "mlp256", "resunet")
    packs: tuple[int, ...] = (1, 4, 8)
    batch: int = 256
    steps: int = 30  # updates per timed call
    reps: int = 5
    rows: int = 100_000  # transitions of the random dataset


@dataclasses.dataclass(frozen=True)
class Settings:
    """Sizes and repetitions of one run (PRESETS: full, quick, smoke)."""
    reps: int = 7  # timed calls per ceiling, update and GTP figure
    matmul_n: int = 2048  # side of the ceiling's square matmul (doubled on CUDA)
    update_batch: int = 4096
    small_batch: int = 256  # GMPG's update solves two ODEs of T steps with a divergence each: timed at this batch
    gmpg_steps: int = 32  # GMPG's T in the update and pass timings
    act_batch: int = 256  # states per act() call (also timed at 1)
    gtp_batch: int = 256
    sample_batches: tuple[int, ...] = (1, 256)
    sample_steps: tuple[int, ...] = (1, 2, 5, 10, 32)
    sample_reps: int = 20  # timed calls per sampling and act figure (a quarter of them above batch 1)
    throughput: tuple[int, int] = (4096, 32)  # (batch, steps) of the samples/s rows
    log_prob_batch: int = 256
    log_prob_steps: int = 32
    log_prob_reps: int = 3
    loglik_iters: int = 400  # fitting steps of the model whose likelihood is checked
    loglik_states: int = 64
    loglik_ref_steps: int = 512  # RK4 steps of the reference (checked against half as many)
    loglik_steps: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64, 128, 256)
    gmpg_batch: int = 256  # batch of the two- vs three-pass timing
    gmpg_reps: int = 5
    memory_batch: int = 64
    memory_steps: tuple[int, ...] = (32, 100, 1000)  # T of the peak-memory rows (also without checkpoints to 100)
    packing: Packing = Packing()


PRESETS = {
    "full": Settings(),
    "quick": Settings(reps=3, update_batch=1024, sample_steps=(1, 5, 32), sample_reps=5, throughput=(1024, 5),
                      log_prob_reps=1, loglik_iters=150, loglik_steps=(2, 4, 8, 16, 32, 64), gmpg_batch=64,
                      gmpg_reps=1, memory_batch=32,
                      packing=Packing(models=("mlp256",), packs=(1, 4), steps=10, reps=3)),
    "smoke": Settings(reps=1, matmul_n=256, update_batch=16, small_batch=16, gmpg_steps=2, act_batch=4, gtp_batch=8,
                      sample_batches=(1, 4), sample_steps=(1, 2), sample_reps=1, throughput=(8, 1),
                      log_prob_batch=8, log_prob_steps=2, log_prob_reps=1, loglik_iters=2, loglik_states=8,
                      loglik_ref_steps=8, loglik_steps=(1, 2), gmpg_batch=8, gmpg_reps=1, memory_batch=4,
                      memory_steps=(2,),
                      packing=Packing(algos=("bc",), models=("mlp64",), packs=(1, 2), batch=8, steps=2, reps=1,
                                      rows=64)),
}


# --- ceilings ---------------------------------------------------------------------------------------------------

def big_matmul(device: str, n: int, dtype: torch.dtype = torch.float32) -> tuple[Callable[[], Any], int]:
    """(a square matmul of side n in `dtype`, doubled on CUDA; its FLOPs)."""
    n = 2 * n if device.startswith("cuda") else n
    a, b = (torch.randn(n, n, device=device, dtype=dtype) for _ in range(2))
    return (lambda: a @ b), 2 * n ** 3


def matmul_rate(device: str, n: int, reps: int, dtype: torch.dtype = torch.float32) -> float:
    """FLOP/s of a large square matmul in `dtype` (median of reps)."""
    fn, flops = big_matmul(device, n, dtype)
    return flops / seconds(fn, device, reps)


def ceilings(device: str, s: Settings, reps: int) -> dict[str, float]:
    """The machine's float32 and bfloat16 matmul FLOP rates (best of two measurements each) and, on CPU, the read
    bandwidth; on CUDA, the copy bandwidth."""
    n = 2 * s.matmul_n if device.startswith("cuda") else s.matmul_n
    out = {"matmul_flops": max(matmul_rate(device, s.matmul_n, reps) for _ in range(2)),
           "matmul_flops_bf16": max(matmul_rate(device, s.matmul_n, reps, torch.bfloat16) for _ in range(2))}
    row("ceiling", f"float32 matmul {n}^3", f"{out['matmul_flops'] / 1e9:8.1f} GFLOP/s")
    row("ceiling", f"bfloat16 matmul {n}^3", f"{out['matmul_flops_bf16'] / 1e9:8.1f} GFLOP/s")
    if not device.startswith("cuda"):  # weights of a batch-1 network call stream from here (bigger than L2)
        x = torch.randn(8 * 2 ** 20, device=device)
        out["read_bytes_per_s"] = x.numel() * 4 / seconds(lambda: x.sum(), device, 21, warmup=3)
        row("ceiling", "float32 read of 32 MiB (sum)", f"{out['read_bytes_per_s'] / 1e9:8.1f} GB/s")
    else:
        x = torch.empty(256 * 2 ** 20, device=device)
        y = torch.empty_like(x)
        out["copy_bytes_per_s"] = 2 * x.numel() * 4 / seconds(lambda: y.copy_(x), device, 10)
        row("ceiling", "device-to-device copy 1 GiB", f"{out['copy_bytes_per_s'] / 1e9:8.1f} GB/s")
    return out


# --- updates ----------------------------------------------------------------------------------------------------

# per algorithm: config overrides putting it in its main (policy) phase
UPDATE_SETUPS: dict[str, dict[str, Any]] = {"gmpo": {"critic_steps": 0},
                                            "gmpg": {"behaviour_steps": 0, "critic_steps": 0}}
UpdateCase = tuple[Callable[[], Any], int, "float | None"]  # (one update, its batch, candidate-cache seconds)


def case_batch(name: str, s: Settings) -> int:
    """The batch an update of `name` is timed at (GMPG's, which solves ODEs with divergences, is smaller)."""
    return min(s.update_batch, s.small_batch) if name == "gmpg" else s.update_batch


def case_agent(name: str, s: Settings, device: str) -> torch.nn.Module:
    """The hopper-sized agent of `name` set up in its policy phase."""
    setup = {**UPDATE_SETUPS.get(name, {}), **({"train_steps": s.gmpg_steps} if name == "gmpg" else {})}
    fields = set(algorithms.get(name)[0].config_class.__dataclass_fields__)
    return hopper_agent(name, {k: v for k, v in setup.items() if k in fields}, device)


def update_case(name: str, s: Settings, device: str, agent: torch.nn.Module | None = None) -> UpdateCase:
    """One update of algorithm `name` in its policy phase (step 10^6 on), its batch, and for SfBC / QGPO the seconds
    to draw the batch's candidate cache (drawn once per dataset state, before the timed calls); `agent`: one made by
    case_agent (e.g. compiled), else a fresh one."""
    agent, batch = agent or case_agent(name, s, device), case_batch(name, s)
    data, step = batch_of(batch, device), iter(range(10 ** 6, 10 ** 7))
    t0 = time.perf_counter()
    data = with_cache(agent, data)
    sync(device)
    cache = time.perf_counter() - t0 if "index" in data else None
    return (lambda: agent.update(data, next(step))), batch, cache


def iql_case(s: Settings, device: str) -> UpdateCase:
    """One update of GMPO's IQL critic (Q and V), its batch."""
    agent, data = hopper_agent("gmpo", {}, device), batch_of(s.update_batch, device)
    return (lambda: agent.critic.update(data)), s.update_batch, None


def time_update(fn: Callable[[], Any], big: Callable[[], Any], device: str,
                reps: int) -> tuple[float, float, int, float]:
    """(seconds per update, seconds of the big matmul timed in turn with it, matmul FLOPs of one update and seconds
    inside its matmuls); one timed call when an update takes seconds."""
    t0 = time.perf_counter()
    fn()  # warm-up
    slow = time.perf_counter() - t0 > 2.0
    big()
    sec, big_sec = interleaved([fn, big], device, 1 if slow else reps, warmup=False)
    fl, mm_sec = matmul_profile(fn, 1 if slow else min(reps, 3))  # warm, like the timed calls
    return sec, big_sec, fl, mm_sec


def update_row(name: str, batch: int, prec: str, timing: tuple[float, float, int, float], big_flops: int,
               ceil: dict[str, float], device: str) -> dict[str, float]:
    """The figures of one timed update (and its table row); updates ceil["matmul_flops"] to the highest reading."""
    sec, big_sec, fl, mm_sec = timing
    ceiling, rate = big_flops / big_sec, fl / sec
    ceil["matmul_flops"] = max(ceil["matmul_flops"], ceiling)
    out = {"batch": batch, "precision": prec, "flops": fl, "seconds": sec, "flops_per_s": rate,
           "of_ceiling": rate / ceiling, "ceiling": ceiling}
    figs = f"{sec * 1e3:8.1f} ms {fl / 1e9:7.2f} GFLOP {rate / 1e9:7.1f} GFLOP/s {100 * rate / ceiling:5.1f}% of fp32"
    if device == "cpu":  # the matmuls' own rate bounds the update's (ops outside them would cost nothing)
        out.update(matmul_seconds=mm_sec, matmul_of_ceiling=fl / mm_sec / ceiling)
        figs += f" (matmuls alone {100 * fl / mm_sec / ceiling:3.0f}%)"
    if prec == "bf16":
        out["of_bf16_ceiling"] = rate / ceil["matmul_flops_bf16"]
        figs += f", {100 * rate / ceil['matmul_flops_bf16']:4.1f}% of bf16"
    row("update", f"{name} batch {batch} {prec}", figs + " ceiling")
    return out


def updates(ceil: dict[str, float], device: str, s: Settings,
            precisions: tuple[str, ...] = PRECISIONS) -> dict[str, dict[str, float]]:
    """Each update's figures per training precision (bf16: the generative backbones under bfloat16 autocast, against
    both ceilings). The float32 ceiling of each row is the large matmul timed in turn with the update (the machine's
    speed drifts by 10-20% within minutes here)."""
    out, (big, big_flops) = {}, big_matmul(device, s.matmul_n)
    cases: dict[str, Callable[[], UpdateCase]] = {"iql": lambda: iql_case(s, device)}
    cases.update({n: (lambda n=n: update_case(n, s, device)) for n in algorithms.names()})
    for name, make in cases.items():
        made = None
        for prec in precisions if name != "iql" else ("fp32",):  # critics always train in float32
            try:
                fn, batch, cache = made = made or make()
                with precision_context(prec):
                    timing = time_update(fn, big, device, s.reps)
            except Exception as err:  # a baseline under construction must not stop the run
                row("update", f"{name} {prec}", f"skipped: {type(err).__name__}: {err}"[:90])
                continue
            out[f"{name}_{prec}"] = update_row(name, batch, prec, timing, big_flops, ceil, device)
            if cache is not None and prec == precisions[0]:
                out[f"{name}_{prec}"]["cache_s"] = cache
                row("update", f"{name} candidate cache batch {batch}", f"{cache:8.2f} s (once per dataset state)")
    return out


# --- compiled updates ----------------------------------------------------------------------------------------------

def eager_share(agent: torch.nn.Module, fn: Callable[[], Any]) -> tuple[int, int]:
    """(network calls that ran eager, all network calls) in one call of fn on a compiled agent."""
    before = compiled_calls(agent)
    fn()
    after = compiled_calls(agent)
    diff = [(after[k][0] - before[k][0], after[k][1] - before[k][1]) for k in after]
    return sum(e for _, e in diff), sum(c + e for c, e in diff)


def compiled_update(name: str, s: Settings, device: str) -> dict[str, float]:
    """One algorithm's update eager and compiled (its networks through torch.compile): seconds per update of each,
    timed in turn; the compile time (the first compiled calls less as many eager ones); network calls left eager (an
    input that needs a gradient: run.compiled); and on CPU the eager update's seconds inside its matmuls."""
    plain, batch, _ = update_case(name, s, device)
    agent = compile_agent(case_agent(name, s, device))
    comp = update_case(name, s, device, agent)[0]
    plain()
    t0 = time.perf_counter()
    for fn in (comp, comp):  # the second call compiles what the first one's shapes or grad modes did not reach
        fn()
        sync(device)
    compile_s = time.perf_counter() - t0 - 2 * seconds(plain, device, 1, warmup=0)
    eager_calls, calls = eager_share(agent, comp)
    eager_s, comp_s = interleaved([plain, comp], device, s.reps)
    out = {"batch": batch, "eager_s": eager_s, "compiled_s": comp_s, "compile_s": compile_s,
           "eager_calls": eager_calls, "calls": calls}
    figs = (f"eager {eager_s * 1e3:8.1f} ms  compiled {comp_s * 1e3:8.1f} ms ({eager_s / comp_s:4.2f}x)  "
            f"compile {compile_s:5.1f} s  eager calls {eager_calls}/{calls}")
    if device == "cpu":
        _, mm = matmul_profile(plain, min(s.reps, 3))
        out.update(matmul_s=mm, compiled_over_matmul=comp_s / mm, eager_over_matmul=eager_s / mm)
        figs += f"  matmuls {mm * 1e3:7.1f} ms: compiled {comp_s / mm:4.2f}x, eager {eager_s / mm:4.2f}x of them"
    row("compile", f"{name} batch {batch} fp32", figs)
    return out


def compiled_act(name: str, s: Settings, device: str) -> dict[str, float]:
    """act() of the algorithm's default agent (eval mode) eager and compiled, at batch 1 and s.act_batch, timed in
    turn, with the compile time (the first compiled calls less as many eager ones)."""
    plain, comp = hopper_agent(name, {}, device).eval(), compile_agent(hopper_agent(name, {}, device)).eval()
    out, figs = {}, []
    for batch in (1, s.act_batch):
        obs = torch.randn(batch, OBS, device=device)
        first = seconds(lambda: comp.act(obs), device, 1, warmup=0) + seconds(lambda: comp.act(obs), device, 1, 0)
        eager_s, comp_s = interleaved([lambda: plain.act(obs), lambda: comp.act(obs)], device,
                                      max(1, s.sample_reps // (4 if batch > 1 else 1)))
        out[f"b{batch}"] = {"eager_s": eager_s, "compiled_s": comp_s, "compile_s": first - 2 * eager_s}
        figs.append(f"batch {batch:<4} {eager_s * 1e3:7.2f} ms vs {comp_s * 1e3:7.2f} ms ({eager_s / comp_s:4.2f}x, "
                    f"compile {first - 2 * eager_s:5.1f} s)")
    row("compile", f"{name} act() eager vs compiled", "   ".join(figs))
    return out


def compiled_updates(device: str, s: Settings, algos: tuple[str, ...] = ()) -> dict[str, dict[str, Any]]:
    """compiled_update and compiled_act for each algorithm of `algos` (all registered ones when empty), fp32."""
    out = {}
    for name in algos or tuple(algorithms.names()):
        try:
            torch.compiler.reset()  # each algorithm's compile time is its own (no graphs of the one before)
            out[name] = compiled_update(name, s, device)
            torch.compiler.reset()
            out[name]["act"] = compiled_act(name, s, device)
        except Exception as err:  # as in updates
            row("compile", name, f"skipped: {type(err).__name__}: {err}"[:90])
    return out


# --- acting and GTP ---------------------------------------------------------------------------------------------

ACT_VARIANTS = {"gtp K=1": ("gtp", {"sampling_steps": 1}), "gtp K=2": ("gtp", {"sampling_steps": 2})}


def act_rates(device: str, s: Settings) -> dict[str, dict[str, float]]:
    """Seconds and actions/s of act() (default config, eval mode, as evaluation calls it) per algorithm at batch 1
    and s.act_batch; GTP also at K = 1 and 2 (its default K = 5 is the plain gtp row)."""
    out: dict[str, dict[str, float]] = {}
    for name, (algo, overrides) in {**{n: (n, {}) for n in algorithms.names()}, **ACT_VARIANTS}.items():
        figs = []
        try:
            agent = hopper_agent(algo, overrides, device).eval()
            for batch in (1, s.act_batch):
                obs = torch.randn(batch, OBS, device=device)
                sec = timed(lambda: agent.act(obs), device, max(1, s.sample_reps // (4 if batch > 1 else 1)))
                out[f"{name.replace(' ', '_')}_b{batch}"] = {"seconds": sec, "actions_per_s": batch / sec}
                figs.append(f"batch {batch:<4} {sec * 1e3:8.2f} ms ({batch / sec:9.1f} actions/s)")
        except Exception as err:  # as in updates
            figs.append(f"skipped: {type(err).__name__}: {err}"[:90])
        row("act", name, "   ".join(figs))
    return out


def gtp_teachers(device: str, s: Settings) -> dict[str, float]:
    """Seconds per GTP update with the surrogate teacher and with the ODE-solver teacher (GTPConfig.ode_steps Euler
    steps of the EMA velocity: the teacher ablation of GTP's Table 3), timed in turn at batch s.gtp_batch."""
    data, fns = batch_of(s.gtp_batch, device), []
    for teacher in ("surrogate", "ode"):
        agent, step = hopper_agent("gtp", {"teacher": teacher}, device), itertools.count()
        fns.append(lambda agent=agent, step=step: agent.update(data, next(step)))
    sur, ode = interleaved(fns, device, max(s.reps, s.sample_reps))
    row("gtp", f"update batch {s.gtp_batch}: surrogate vs ODE teacher",
        f"{sur * 1e3:8.2f} ms vs {ode * 1e3:8.2f} ms ({1 / sur:7.1f} vs {1 / ode:7.1f} updates/s, "
        f"ODE {ode / sur:4.2f}x)")
    return {"surrogate_s": sur, "ode_s": ode, "batch": s.gtp_batch}


# --- sampling ---------------------------------------------------------------------------------------------------

SOLVERS = ("euler", "midpoint", "rk4", "dpm2")


def network_calls(model: GenerativeModel, fn: Callable[[], Any]) -> int:
    """How many times fn calls the model's backbone."""
    calls = []
    handle = model.net.register_forward_hook(lambda *_: calls.append(1))
    try:
        fn()
    finally:
        handle.remove()
    return len(calls)


def streamed_bytes(model: GenerativeModel) -> int:
    """Bytes of the weights that act on x, which every network call must read (the time and condition embeddings'
    weights need not be read per call)."""
    embedding_only = ("t_embed.", "c_embed.", ".emb.")
    return sum(p.numel() * p.element_size() for name, p in model.net.named_parameters()
               if not any(part in f".{name}" for part in embedding_only))


def sampling(ceil: dict[str, float], device: str, s: Settings) -> dict[str, dict[str, float]]:
    """Latency of plain and fast samplers per solver, step count and batch, against the FLOP floor (FLOPs / matmul
    ceiling) and, on CPU, the roofline floor: the larger of that and the weight-streaming floor (network calls x
    streamed weight bytes / read bandwidth; from L3 when the weights do not fit in L2)."""
    model, out = hopper_model(device=device), {}
    weight_bytes = streamed_bytes(model)
    for batch, solver, steps in itertools.product(s.sample_batches, SOLVERS, s.sample_steps):
        cond = torch.randn(batch, OBS, device=device)
        fl = flops_of(lambda: model.sample(cond, solver=solver, steps=steps))
        calls = network_calls(model, lambda: model.sample(cond, solver=solver, steps=steps))
        r = max(1, s.sample_reps // (4 if batch > 1 else 1))
        plain = seconds(lambda: model.sample(cond, solver=solver, steps=steps), device, r)
        fast = seconds(lambda: fast_sample(model, cond, solver=solver, steps=steps), device, r)
        floor = fl / ceil["matmul_flops"]
        stream = calls * weight_bytes / ceil["read_bytes_per_s"] if "read_bytes_per_s" in ceil else 0.0
        roof = max(floor, stream)
        out[f"{solver}_K{steps}_b{batch}"] = {"flops": fl, "floor_s": floor, "stream_floor_s": stream,
                                              "roofline_s": roof, "plain_s": plain, "fast_s": fast}
        row("sample", f"{solver:<8} K={steps:<3} batch {batch:<4}",
            f"plain {plain * 1e3:8.2f} ms ({plain / floor:5.1f}x FLOP floor)  fast {fast * 1e3:8.2f} ms "
            f"({fast / floor:5.1f}x FLOP floor, {fast / roof:4.2f}x roofline)")
    out.update(throughput(model, device, *s.throughput))
    if device.startswith("cuda"):
        out.update(cuda_graph_sampling(model, ceil["matmul_flops"], device))
    return out


def throughput(model: GenerativeModel, device: str, batch: int, steps: int) -> dict[str, dict[str, float]]:
    """Samples/s of the plain and fast samplers per solver at a large batch (one call each: at this size a call
    takes long enough)."""
    cond, out = torch.randn(batch, OBS, device=device), {}
    for solver in SOLVERS:
        plain = seconds(lambda: model.sample(cond, solver=solver, steps=steps), device, 1, warmup=0)
        fast = seconds(lambda: fast_sample(model, cond, solver=solver, steps=steps), device, 1, warmup=0)
        out[f"{solver}_K{steps}_b{batch}_throughput"] = {"plain_s": plain, "fast_s": fast,
                                                         "fast_samples_per_s": batch / fast}
        row("sample", f"{solver:<8} K={steps:<3} batch {batch:<5} throughput",
            f"plain {batch / plain:10.1f} samples/s  fast {batch / fast:10.1f} samples/s ({fast * 1e3:8.1f} ms)")
    return out


def cuda_graph_sampling(model: GenerativeModel, ceiling: float, device: str) -> dict[str, dict[str, float]]:
    """Batch-1 Euler latency of the CUDA-graph sampler for K = 1..32."""
    sampler, cond, out = CudaGraphSampler(model), torch.randn(1, OBS, device=device), {}
    for steps in (1, 2, 3, 5, 8, 10, 16, 32):
        sec = seconds(lambda: sampler(cond, solver="euler", steps=steps), device, 50, warmup=3)
        fl = flops_of(lambda: model.sample(cond, solver="euler", steps=steps))
        out[f"cudagraph_euler_K{steps}_b1"] = {"flops": fl, "floor_s": fl / ceiling, "graph_s": sec}
        row("sample", f"cuda graph euler K={steps:<3} batch 1", f"{sec * 1e3:8.3f} ms")
    return out


# --- likelihoods ------------------------------------------------------------------------------------------------

def log_prob_times(device: str, s: Settings) -> dict[str, float]:
    """log_prob with s.log_prob_steps Euler steps: exact and Hutchinson, without and with backward."""
    model, out, b, k = hopper_model(device=device), {}, s.log_prob_batch, s.log_prob_steps
    obs, act = torch.randn(b, OBS, device=device), torch.randn(b, ACT, device=device)
    for trace in ("exact", "hutchinson"):
        fwd = seconds(lambda: model.log_prob(act, obs, steps=k, trace=trace), device, s.log_prob_reps)
        bwd = seconds(lambda: model.log_prob(act, obs, steps=k, trace=trace, with_grad=True).mean().backward(),
                      device, s.log_prob_reps)
        out[f"{trace}_s"], out[f"{trace}_backward_s"] = fwd, bwd
        row("log_prob", f"{trace} batch {b} K={k}", f"{fwd * 1e3:8.1f} ms   with backward {bwd * 1e3:8.1f} ms")
    return out


def trained_model(device: str, iters: int) -> GenerativeModel:
    """A hopper-sized ICFM model briefly fit to a bimodal state-dependent action distribution (a non-trivial field)."""
    model = hopper_model("icfm", device, seed=1)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    proj = torch.randn(OBS, ACT, device=device) / OBS ** 0.5
    for _ in range(iters):
        obs = torch.randn(256, OBS, device=device)
        sign = torch.randint(0, 2, (256, 1), device=device) * 2 - 1
        act = (torch.tanh(obs @ proj) * 0.5 + 0.4 * sign + 0.05 * torch.randn(256, ACT, device=device)).clamp(-1, 1)
        loss = model.loss(act, obs).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model


def likelihood_accuracy(device: str, s: Settings) -> dict[str, Any]:
    """Mean |log_prob - reference| (exact trace) per solver and step count; reference: RK4 with s.loglik_ref_steps."""
    model = trained_model(device, s.loglik_iters)
    g = torch.Generator(device=device).manual_seed(0)
    obs = torch.randn(s.loglik_states, OBS, device=device, generator=g)
    act = fast_sample(model, obs, steps=64)
    ref_k = s.loglik_ref_steps
    ref = model.log_prob(act, obs, solver="rk4", steps=ref_k)
    check = (model.log_prob(act, obs, solver="rk4", steps=ref_k // 2) - ref).abs().mean().item()
    row("loglik", f"reference RK4 K={ref_k} vs K={ref_k // 2}", f"{check:.2e} nats (reference error bound)")
    out: dict[str, Any] = {"reference_check": check, "cases": {}}
    for solver, steps in itertools.product(("euler", "midpoint", "rk4"), s.loglik_steps):
        sec = seconds(lambda: model.log_prob(act, obs, solver=solver, steps=steps), device, 1, warmup=0)
        err = (model.log_prob(act, obs, solver=solver, steps=steps) - ref).abs().mean().item()
        nfe = steps * {"euler": 1, "midpoint": 2, "rk4": 4}[solver]
        out["cases"][f"{solver}_K{steps}"] = {"error": err, "nfe": nfe, "seconds": sec}
        row("loglik", f"{solver:<8} K={steps:<4} ({nfe:4d} evals)", f"error {err:9.2e} nats  {sec * 1e3:8.1f} ms")
    ok = {k: v for k, v in out["cases"].items() if v["error"] < 0.01}
    if ok:
        best = min(ok, key=lambda k: ok[k]["nfe"])
        out["cheapest_within_0.01"] = best
        row("loglik", "cheapest within 0.01 nats", f"{best} ({ok[best]['nfe']} evals)")
    return out


# --- GMPG ---------------------------------------------------------------------------------------------------------

def gmpg_agent(steps: int, device: str, checkpoint: bool = False) -> torch.nn.Module:
    """A hopper-sized GMPG agent in its policy-gradient phase with T = steps."""
    return hopper_agent("gmpg", {"behaviour_steps": 0, "critic_steps": 0, "train_steps": steps,
                                 "grad_checkpoint": checkpoint}, device)


def three_pass_loss(agent: torch.nn.Module, obs: torch.Tensor) -> torch.Tensor:
    """The same objective as GMPG._kl_loss by three ODE solves: sample, log pi on its own pass, log mu."""
    c = agent.cfg
    act = agent.policy.sample(obs, solver=c.train_solver, steps=c.train_steps, with_grad=True)
    log_pi = agent.policy.log_prob(act, obs, solver=c.train_solver, steps=c.train_steps, trace=c.trace,
                                   with_grad=True)
    log_mu = agent.behaviour.log_prob(act, obs, solver=c.train_solver, steps=c.train_steps, trace=c.trace,
                                      with_grad=True)
    return -c.beta * agent.critic.q_value(obs, act).mean() + (log_pi - log_mu).mean()


def gmpg_passes(device: str, s: Settings) -> dict[str, float]:
    """Loss + backward of GMPG's two-pass objective against the three-pass version at T = s.gmpg_steps, timed in
    turn; the ratio the passes' own costs allow, (sample + pi density + mu density) / (pi density + mu density), each
    pass timed with its backward (mu frozen: its density pass back-propagates into the action only); and the ratio
    of the two versions' matmul FLOPs (a speed-up above it needs the two-pass version to run its FLOPs faster)."""
    batch, reps, t = s.gmpg_batch, s.gmpg_reps, s.gmpg_steps
    agent, obs = gmpg_agent(t, device), torch.randn(batch, OBS, device=device)
    agent.behaviour.requires_grad_(False)
    c = agent.cfg
    two_fn = lambda: agent._kl_loss({"obs": obs})["policy_loss"].backward()  # noqa: E731
    three_fn = lambda: three_pass_loss(agent, obs).backward()  # noqa: E731
    two, three = interleaved([two_fn, three_fn], device, reps)
    act = agent.policy.sample(obs, steps=c.train_steps).detach().requires_grad_(True)
    kw = dict(steps=c.train_steps, trace=c.trace, with_grad=True)
    sample = seconds(lambda: agent.policy.sample(obs, steps=c.train_steps, with_grad=True).sum().backward(),
                     device, reps)
    pi = seconds(lambda: agent.policy.log_prob(act, obs, **kw).sum().backward(), device, reps)
    mu = seconds(lambda: agent.behaviour.log_prob(act, obs, **kw).sum().backward(), device, reps)
    bound, flop_bound = (sample + pi + mu) / (pi + mu), flops_of(three_fn) / flops_of(two_fn)
    row("gmpg", f"T={t} batch {batch}: two passes vs three", f"{two * 1e3:8.1f} ms vs {three * 1e3:8.1f} ms: "
        f"{three / two:4.2f}x (pass costs allow {bound:4.2f}x, FLOP counts {flop_bound:4.2f}x)")
    row("gmpg", f"T={t} batch {batch}: one pass + backward", f"sample {sample * 1e3:7.1f} ms, log pi "
        f"{pi * 1e3:7.1f} ms, log mu {mu * 1e3:7.1f} ms ({c.trace})")
    return {"two_pass_s": two, "three_pass_s": three, "speedup": three / two, "batch": batch, "steps": t,
            "sample_pass_s": sample, "pi_density_pass_s": pi, "mu_density_pass_s": mu, "speedup_bound": bound,
            "flop_ratio": flop_bound}


def _peak_rss_child(steps: int, batch: int, checkpoint: bool) -> None:
    """In a subprocess: one GMPG loss + backward; prints the peak RSS growth in MiB and the seconds taken."""
    agent, obs = gmpg_agent(steps, "cpu", checkpoint), torch.randn(batch, OBS)
    agent.behaviour.requires_grad_(False)
    _reset_peak_rss()
    base = _status_kib("VmRSS")
    t0 = time.perf_counter()
    agent._kl_loss({"obs": obs})["policy_loss"].backward()
    print(json.dumps({"peak_mib": (_status_kib("VmHWM") - base) / 1024, "seconds": time.perf_counter() - t0}))


def _reset_peak_rss() -> None:
    """Set this process's peak RSS (VmHWM) to its current RSS (Linux >= 4.0). ru_maxrss cannot be used: after
    fork + exec it keeps the parent's peak."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:  # not allowed here: the peak then includes start-up (imports), an over-estimate
        pass


def _status_kib(key: str) -> int:
    """A memory figure of /proc/self/status in KiB (VmRSS: resident now, VmHWM: peak resident)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


def gmpg_memory(batch: int, steps_list: tuple[int, ...]) -> dict[str, dict[str, float]]:
    """Peak memory growth of one GMPG loss + backward at each T, with checkpointing (and without, T <= 100), each
    in a fresh process on one thread."""
    out = {}
    for steps in steps_list:
        for ckpt in (True, False) if steps <= 100 else (True,):
            cmd = [sys.executable, __file__, "--_child", f"{steps},{batch},{int(ckpt)}"]
            res = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
            if res.returncode:
                row("gmpg", f"memory T={steps}", f"failed: {(res.stderr.strip().splitlines() or [''])[-1][:80]}")
                continue
            fig = json.loads(res.stdout.strip().splitlines()[-1])
            out[f"T{steps}_{'ckpt' if ckpt else 'plain'}"] = fig
            row("gmpg", f"memory T={steps} batch {batch} {'checkpointed' if ckpt else 'plain'}",
                f"peak +{fig['peak_mib']:8.1f} MiB  {fig['seconds']:7.1f} s")
    return out


# --- seed packing -------------------------------------------------------------------------------------------------

PACK_MODELS = {
    "mlp64": {"backbone": "mlp", "widths": (64, 64), "critic_hidden": (64, 64)},
    "mlp256": {"backbone": "mlp", "widths": (256, 256), "critic_hidden": (256, 256)},
    "resunet": {"backbone": "resunet", "widths": (512, 256, 128), "critic_hidden": (256, 256)},
}


def pack_overrides(algo: str, model: str) -> dict[str, Any]:
    """The model's fields that the algorithm's config has."""
    fields = set(algorithms.get(algo)[0].config_class.__dataclass_fields__)
    return {k: v for k, v in PACK_MODELS[model].items() if k in fields}


def packing(device: str, p: Packing) -> list[dict[str, Any]]:
    """Total updates/s of N seeds packed into one model (genrl_core.run.packing, vmap engine) against one unpacked
    seed (the plain loop of genrl_core.run.training), on random hopper-sized data, all timed in turn; the speed-up
    is (N x packed steps/s) / single steps/s."""
    data, out = random_data(p.rows, device), []
    for algo, model in itertools.product(p.algos, p.models):
        overrides = pack_overrides(algo, model)
        agent, gen = agent_for(algo, data, overrides, device), torch.Generator(device=device).manual_seed(0)
        fns = [lambda: train_steps(agent, data, 3, 3 + p.steps, p.batch, gen).read()]
        for n in p.packs:
            pack = build_pack(algo, list(range(n)), data.obs_dim, data.act_dim, device, overrides)
            fns.append(lambda pack=pack: pack.train(data, 3, p.steps, p.batch))
        single, *packed = (p.steps / sec for sec in interleaved(fns, device, p.reps))
        for n, rate in zip(p.packs, packed):
            total = n * rate
            out.append({"algo": algo, "model": model, "n": n, "single_steps_per_s": single,
                        "packed_total_steps_per_s": total, "speedup": total / single})
            row("packing", f"{algo} {model} N={n} batch {p.batch}",
                f"single {single:8.1f} updates/s  packed total {total:8.1f} updates/s  x{total / single:.2f}")
    return out


# --- Ray ------------------------------------------------------------------------------------------------------------

def ray_vs_plain() -> dict[str, float]:
    """One smoke GMPO trial (300 steps, Pendulum stand-in) under Ray Tune against the same run without Ray."""
    from tune_jobs import config as C

    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1",
           "MINARI_DATASETS_PATH": os.environ.get("MINARI_DATASETS_PATH", str(REPO / "out" / "minari"))}
    env.pop("RAY_ADDRESS", None)
    with tempfile.TemporaryDirectory(prefix="rt", dir="/tmp") as tmp:
        sweep = [sys.executable, str(REPO / "sweeps" / "beta_ablation.py"), "--storage", f"{tmp}/store",
                 "--temp-dir", f"{tmp}/ray", "--seeds", "0", "--only", "task=halfcheetah-medium-v2",
                 "--only", "algorithm=gmpo", "--set", "beta=4.0", "--num-cpus", "1", "--fresh"]
        subprocess.run([*sweep, "--dry-run"], env=env, capture_output=True)  # makes the smoke dataset if missing
        t0 = time.perf_counter()
        ray_run = subprocess.run(sweep, env=env, capture_output=True, text=True)
        ray_s = time.perf_counter() - t0
    variant = C.variant("smoke", "gmpo", "gvp")
    overrides = {k: v for k, v in variant.items() if k not in ("algorithm", "model")}
    overrides.update(path="gvp", beta=4.0)
    budget = C.run_budget("smoke")
    code = (f"from genrl_core.run.training import train; train('gmpo', 'local/pendulum/medium-v0', "
            f"steps={budget['steps']}, eval_every={budget['eval_every']}, eval_episodes={budget['eval_episodes']}, "
            f"batch_size={budget['batch_size']}, overrides={overrides!r}, log=None)")
    t0 = time.perf_counter()
    plain = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=REPO)
    plain_s = time.perf_counter() - t0
    ok = ray_run.returncode == 0 and plain.returncode == 0
    row("ray", "smoke gmpo trial (300 steps, 3 evals)", f"Ray {ray_s:6.1f} s   no Ray {plain_s:6.1f} s   "
        f"overhead {ray_s - plain_s:6.1f} s" + ("" if ok else " (FAILED)"))
    return {"ray_s": ray_s, "plain_s": plain_s, "ok": ok}


# --- trial overhead ------------------------------------------------------------------------------------------------

OVERHEAD_TASK = {"smoke": "halfcheetah-medium-v2", "local": "hopper-medium-v2"}  # one task each: one GMPO trial


def sweep_env() -> dict[str, str]:
    """One thread, no Ray address (an embedded Ray), the Minari root (MINARI_DATASETS_PATH, else out/minari)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1",
           "MINARI_DATASETS_PATH": os.environ.get("MINARI_DATASETS_PATH", str(REPO / "out" / "minari"))}
    env.pop("RAY_ADDRESS", None)
    return env


def overhead_split(rows: Any, started: float, ended: float) -> dict[str, float]:
    """A trial's wall time (driver start to driver end, unix seconds) split by its last row's time_* columns."""
    last = rows.sort_values("step").iloc[-1]
    wall = ended - started
    trial_start = float(last["trial_start_unix"]) - started  # driver, validation, provisioning, Ray, worker
    parts = {"ray_startup_s": trial_start, "load_s": float(last["time_load_s"]),
             "update_s": float(last["time_update_s"]), "eval_s": float(last["time_eval_s"]),
             "report_s": float(last["time_report_s"])}
    inside = float(last["time_trial_s"])
    parts["rest_in_trial_s"] = inside - sum(parts[k] for k in ("load_s", "update_s", "eval_s", "report_s"))
    parts["after_last_row_s"] = wall - trial_start - inside  # the last report, Ray's shutdown, the driver's end
    return {"wall_s": wall, **parts, "rounds": int(last["iteration"]), "steps": int(last["step"]),
            "overhead_fraction": 1 - (parts["update_s"] + parts["eval_s"]) / wall}


def trial_overhead(preset: str, sets: tuple[str, ...]) -> dict[str, float]:
    """One GMPO trial (seed 0, beta 4) of sweeps/beta_ablation.py at `preset` under an embedded Ray on one CPU,
    with `sets` (KEY=VALUE) on top: where its wall time went (overhead_split), from the sweep's Parquet rows."""
    from tune_jobs import results

    with tempfile.TemporaryDirectory(prefix="ov", dir="/tmp") as tmp:
        cmd = [sys.executable, str(REPO / "sweeps" / "beta_ablation.py"), "--preset", preset, "--storage",
               f"{tmp}/store", "--temp-dir", f"{tmp}/ray", "--seeds", "0", "--only", f"task={OVERHEAD_TASK[preset]}",
               "--only", "algorithm=gmpo", "--set", "beta=4.0", "--num-cpus", "1", "--fresh",
               *itertools.chain.from_iterable(("--set", kv) for kv in sets)]
        subprocess.run([*cmd, "--dry-run"], env=sweep_env(), capture_output=True)  # makes a smoke set if missing
        started = time.time()
        res = subprocess.run(cmd, env=sweep_env(), capture_output=True, text=True)
        ended = time.time()
        rows = results.read_rows(results.results_root(f"{tmp}/store")) if res.returncode == 0 else None
    if rows is None or rows.empty:
        tail = (res.stderr.strip().splitlines() or [""])[-1][:80]
        row("overhead", f"{preset} gmpo trial", f"failed: {tail}")
        return {"ok": False}
    out = {**overhead_split(rows, started, ended), "ok": True}
    wall = out["wall_s"]
    pct = {k: 100 * out[k] / wall for k in ("ray_startup_s", "load_s", "update_s", "eval_s", "report_s",
                                            "rest_in_trial_s", "after_last_row_s")}
    what = f"{preset} gmpo trial, {out['steps']} steps, {out['rounds']} evals"
    row("overhead", what, f"wall {wall:7.1f} s: updates {out['update_s']:7.1f} s ({pct['update_s']:4.1f}%), "
        f"evaluation {out['eval_s']:6.1f} s ({pct['eval_s']:4.1f}%)")
    row("overhead", f"{what}: the rest", f"Ray start-up {out['ray_startup_s']:5.1f} s ({pct['ray_startup_s']:4.1f}%), "
        f"load {out['load_s']:5.1f} s ({pct['load_s']:4.1f}%), checkpoint+report {out['report_s']:5.1f} s "
        f"({pct['report_s']:4.1f}%), rest {out['rest_in_trial_s']:4.1f} s, last report+shutdown "
        f"{out['after_last_row_s']:4.1f} s: {100 * out['overhead_fraction']:4.1f}% neither updates nor evaluation")
    return out


# --- main -------------------------------------------------------------------------------------------------------------

def run_sections(want: set[str], dev: str, s: Settings, args: argparse.Namespace) -> dict[str, Any]:
    """The figures of the sections in `want` (the ceiling always: the other sections are measured against it)."""
    res: dict[str, Any] = {"ceiling": ceilings(dev, s, s.reps)}
    steps: list[tuple[str, str, Callable[[], Any]]] = [
        ("update", "update", lambda: updates(res["ceiling"], dev, s)),
        ("act", "act", lambda: act_rates(dev, s)),
        ("gtp", "gtp_teacher", lambda: gtp_teachers(dev, s)),
        ("sample", "sample", lambda: sampling(res["ceiling"], dev, s)),
        ("log_prob", "log_prob", lambda: log_prob_times(dev, s)),
        ("loglik", "loglik_accuracy", lambda: likelihood_accuracy(dev, s)),
        ("gmpg", "gmpg_passes", lambda: gmpg_passes(dev, s)),
        ("gmpg", "gmpg_memory", lambda: gmpg_memory(s.memory_batch, s.memory_steps) if dev == "cpu" else None),
        ("packing", "packing", lambda: packing(dev, s.packing)),
        ("ray", "ray", ray_vs_plain),
        ("compile", "compile", lambda: compiled_updates(dev, s, compile_algos(args.compile_algos))),
        ("overhead", "overhead", lambda: trial_overhead(args.overhead or "smoke", tuple(args.overhead_set))),
    ]
    for section, key, fn in steps:
        if section in want and (fig := fn()) is not None:
            res[key] = fig
    res["ceiling_after"] = ceilings(dev, s, min(s.reps, 3))
    return res


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line (see the module's docstring)."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    size = p.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="fewer repetitions, batch 1024 updates, fewer step counts")
    size.add_argument("--smoke", action="store_true", help="tiny sizes, one repetition: checks that every section "
                                                           "runs (tests/test_benchmarks.py); the figures mean nothing")
    p.add_argument("--json", default=None, help="write every figure to this JSON file")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (headline figures: 1; 0: torch's default)")
    p.add_argument("--ray", action="store_true", help="also time one smoke trial under Ray against no Ray")
    p.add_argument("--packing", action="store_true", help="also time packed seeds against one unpacked seed")
    p.add_argument("--compile", action="store_true", help="also time compiled against eager updates")
    p.add_argument("--compile-algos", default="", help="comma list of algorithms for --compile (default: all)")
    p.add_argument("--overhead", choices=("smoke", "local"), default=None,
                   help="also split one GMPO trial's wall time under Ray (preset smoke or local)")
    p.add_argument("--overhead-set", action="append", default=[], metavar="KEY=VALUE",
                   help="settings of the --overhead trial (e.g. steps=7000), as the sweep's --set")
    p.add_argument("--only", default="", help="comma list of sections: " + ",".join(SECTIONS))
    p.add_argument("--_child", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    unknown = set(args.only.split(",")) - set(SECTIONS) if args.only else set()
    if unknown:
        p.error(f"unknown section(s) {', '.join(sorted(unknown))}; valid: {', '.join(SECTIONS)}")
    bad = set(compile_algos(args.compile_algos)) - set(algorithms.names())
    if bad:
        p.error(f"unknown algorithm(s) {', '.join(sorted(bad))} in --compile-algos; valid: {', '.join(algorithms.names())}")
    return args


def compile_algos(text: str) -> tuple[str, ...]:
    """The algorithms of a --compile-algos comma list (none: every registered one)."""
    return tuple(a for a in text.split(",") if a)


def main(argv: list[str] | None = None) -> None:
    """Run the sections asked for, print the table and write the JSON."""
    args = parse_args(argv)
    set_threads(args.threads)
    if args._child:
        steps, batch, ckpt = (int(v) for v in args._child.split(","))
        return _peak_rss_child(steps, batch, bool(ckpt))
    want = set(args.only.split(",")) if args.only else set(SECTIONS) - set(OPT_IN)
    want |= {name for name in OPT_IN if getattr(args, name)}
    s = PRESETS["smoke" if args.smoke else "quick" if args.quick else "full"]
    env = environment(args.device)
    env["loadavg_before"] = env.pop("loadavg")
    env["preset"] = "smoke" if args.smoke else "quick" if args.quick else "full"
    env["bf16"] = bf16_note(args.device)  # native or emulated (slow) bfloat16: the bf16 rows mean that
    print(env["bf16"], flush=True)
    res = run_sections(want, args.device, s, args)
    env["loadavg_after"] = os.getloadavg()
    TABLE.print(f"speed table ({env['preset']}): torch {env['torch']}, {env['device']}, {env['threads']} thread(s), "
                f"commit {env['commit']}, load average before {env['loadavg_before']}, after {env['loadavg_after']}")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"env": env, **res}, indent=1))


if __name__ == "__main__":
    main()
