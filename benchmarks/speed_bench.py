"""One-run speed table at hopper size (state 11, action 3, ResidualUNet 512-256-128): the machine's own ceilings
and every hot path against them. Prints one table and writes JSON (`--json PATH`) to compare across commits.

    .venv/bin/python benchmarks/speed_bench.py --quick          # a few minutes on 2 CPUs
    .venv/bin/python benchmarks/speed_bench.py --ray --json out/speed.json

Sections: ceiling (a large float32 and bfloat16 matmul; on CPU the read bandwidth of a buffer bigger than L2, on CUDA
a device-to-device copy), updates in fp32 and bf16 (matmul FLOPs per update counted from the network shapes by torch's
FlopCounterMode, achieved FLOP/s, fraction of the ceilings; on CPU also the matmuls' own rate inside the update, which
bounds it), sampling (plain and fast samplers per solver, step count and batch; latency and its ratio to the FLOP floor
= FLOPs / ceiling, and on CPU to the weight-streaming floor = network calls x weight bytes / read bandwidth; CUDA-graph
sampler on a GPU), log_prob (time, with backward), likelihood accuracy per cost (error against a converged reference,
per solver and step count), GMPG (two passes against a three-pass version of the same code, with the ratios the
passes' costs and FLOP counts allow; peak memory at T = 32, 100, 1000 with gradient checkpointing), and optionally
(--ray) one smoke trial under Ray against the same run without Ray. Headline CPU figures use one torch thread
(--threads).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import flop_registry

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from genrl_core import algorithms  # noqa: E402
from genrl_core.fast_sampling import CudaGraphSampler, fast_sample  # noqa: E402
from genrl_core.generative import GenerativeModel  # noqa: E402
from genrl_core.networks import PRECISIONS, ResidualUNet, precision_context  # noqa: E402
from genrl_core.train import build_agent  # noqa: E402
from baseline_bench import with_cache  # noqa: E402  (benchmarks/ is on sys.path)

OBS, ACT = 11, 3
ROWS: list[tuple[str, str, str]] = []  # (section, what, figures) for the printed table


def row(section: str, what: str, figures: str) -> None:
    """Add one line to the table (and echo it, so a long run shows progress)."""
    ROWS.append((section, what, figures))
    print(f"  {section:<9} {what:<44} {figures}", flush=True)


# --- timing helpers ---------------------------------------------------------------------------------------------

def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def seconds(fn: Callable[[], Any], device: str, reps: int, warmup: int = 1) -> float:
    """Median seconds per call of fn over `reps` timed calls (after warm-up)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(reps):
        sync(device)
        t0 = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - t0)
    return sorted(times)[len(times) // 2]


def interleaved(fns: list[Callable[[], Any]], device: str, reps: int, warmup: bool = True) -> list[float]:
    """Median seconds per call of each fn, timed in turn (a b a b ...) so that a drift of the machine's speed
    falls on all of them alike."""
    for fn in fns if warmup else []:
        fn()
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(reps):
        for fn, out in zip(fns, times):
            sync(device)
            t0 = time.perf_counter()
            fn()
            sync(device)
            out.append(time.perf_counter() - t0)
    return [sorted(t)[len(t) // 2] for t in times]


class _FlopCount(TorchDispatchMode):
    """Sums torch's FLOP formulas (matmuls, from operand shapes) over every op dispatched, backward included, and the
    seconds spent inside those ops (CPU: ops run synchronously)."""

    def __init__(self):
        super().__init__()
        self.total, self.seconds = 0, 0.0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        formula = flop_registry.get(func._overloadpacket)
        t0 = time.perf_counter()
        out = func(*args, **kwargs)
        if formula is not None:
            self.seconds += time.perf_counter() - t0
            self.total += formula(*args, **kwargs, out_val=out)
        return out


def flops_of(fn: Callable[[], Any]) -> int:
    """Matmul FLOPs of one call of fn, counted from the operand shapes."""
    return matmul_profile(fn)[0]


def matmul_profile(fn: Callable[[], Any], reps: int = 1) -> tuple[int, float]:
    """(matmul FLOPs, seconds inside the matmuls) of one call of fn (fewest seconds over reps calls). The FLOPs over
    those seconds is the matmuls' own rate: the rate the whole call would reach if everything else in it cost nothing
    (CPU only)."""
    counts = []
    for _ in range(reps):
        with _FlopCount() as counter:
            fn()
        counts.append((int(counter.total), counter.seconds))
    return min(counts, key=lambda c: c[1])


# --- ceilings ---------------------------------------------------------------------------------------------------

def big_matmul(device: str, dtype: torch.dtype = torch.float32) -> tuple[Callable[[], Any], int]:
    """(a large square matmul in `dtype`, its FLOPs)."""
    n = 4096 if device.startswith("cuda") else 2048
    a, b = (torch.randn(n, n, device=device, dtype=dtype) for _ in range(2))
    return (lambda: a @ b), 2 * n ** 3


def matmul_rate(device: str, reps: int, dtype: torch.dtype = torch.float32) -> float:
    """FLOP/s of a large square matmul in `dtype` (median of reps)."""
    fn, flops = big_matmul(device, dtype)
    return flops / seconds(fn, device, reps)


def ceilings(device: str, quick: bool) -> dict[str, float]:
    """The machine's float32 and bfloat16 matmul FLOP rates (best of two measurements each) and, on CUDA, copy
    bandwidth."""
    n = 4096 if device.startswith("cuda") else 2048
    out = {"matmul_flops": max(matmul_rate(device, 3 if quick else 7) for _ in range(2)),
           "matmul_flops_bf16": max(matmul_rate(device, 3 if quick else 7, torch.bfloat16) for _ in range(2))}
    row("ceiling", f"float32 matmul {n}^3", f"{out['matmul_flops'] / 1e9:8.1f} GFLOP/s")
    row("ceiling", f"bfloat16 matmul {n}^3", f"{out['matmul_flops_bf16'] / 1e9:8.1f} GFLOP/s")
    if not device.startswith("cuda"):  # weights of a batch-1 network call stream from here (bigger than L2)
        x = torch.randn(8 * 2 ** 20, device=device)
        out["read_bytes_per_s"] = x.numel() * 4 / seconds(lambda: x.sum(), device, 21, warmup=3)
        row("ceiling", "float32 read of 32 MiB (sum)", f"{out['read_bytes_per_s'] / 1e9:8.1f} GB/s")
    if device.startswith("cuda"):
        x = torch.empty(256 * 2 ** 20, device=device)
        y = torch.empty_like(x)
        sec = seconds(lambda: y.copy_(x), device, 10)
        out["copy_bytes_per_s"] = 2 * x.numel() * 4 / sec
        row("ceiling", "device-to-device copy 1 GiB", f"{out['copy_bytes_per_s'] / 1e9:8.1f} GB/s")
    return out


# --- updates ----------------------------------------------------------------------------------------------------

def batch_of(n: int, device: str) -> dict[str, torch.Tensor]:
    """A random hopper-sized transition batch."""
    return {"obs": torch.randn(n, OBS, device=device), "action": torch.rand(n, ACT, device=device) * 2 - 1,
            "reward": torch.randn(n, device=device), "next_obs": torch.randn(n, OBS, device=device),
            "terminal": torch.zeros(n, device=device)}


# per algorithm: config overrides putting it in its main (policy) phase, and the batch it is timed at
UPDATE_SETUPS: dict[str, dict[str, Any]] = {
    "gmpo": {"critic_steps": 0},
    "gmpg": {"behaviour_steps": 0, "critic_steps": 0, "train_steps": 32},
}
SMALL_BATCH = {"gmpg": 256}  # GMPG's update solves two ODEs of T steps with a divergence each: timed at 256


def update_case(name: str, batch: int, device: str) -> tuple[Callable[[], Any], int]:
    """(one update of algorithm `name` in its policy phase, batch size used)."""
    batch = min(batch, SMALL_BATCH.get(name, batch))
    cls = algorithms.get(name)[0]
    fields = {f for f in cls.config_class.__dataclass_fields__}
    setup = {k: v for k, v in UPDATE_SETUPS.get(name, {}).items() if k in fields}
    agent = build_agent(name, OBS, ACT, setup).to(device)
    data, step = batch_of(batch, device), iter(range(10 ** 6, 10 ** 7))
    data = with_cache(agent, data)  # SfBC / QGPO: candidates drawn once per dataset state, before the timed calls
    return (lambda: agent.update(data, next(step))), batch


def iql_case(batch: int, device: str) -> tuple[Callable[[], Any], int]:
    agent = build_agent("gmpo", OBS, ACT).to(device)
    data = batch_of(batch, device)
    return (lambda: agent.critic.update(data)), batch


def updates(ceil: dict[str, float], device: str, batch: int, reps: int,
            precisions: tuple[str, ...] = PRECISIONS) -> dict[str, dict[str, float]]:
    """FLOPs, seconds, FLOP/s and fraction of the ceiling of each algorithm's update, per training precision (bf16:
    the generative backbones under bfloat16 autocast, against both the float32 and the bfloat16 ceiling). The float32
    ceiling of each row is the large matmul timed in turn with the update (a b a b ...: the machine's speed drifts by
    10-20% within minutes here); ceil["matmul_flops"] keeps the highest reading."""
    out, (big, big_flops) = {}, big_matmul(device)
    cases = {"iql": lambda: iql_case(batch, device)}
    cases.update({n: (lambda n=n: update_case(n, batch, device)) for n in algorithms.names()})
    for name, make in cases.items():
        made = None
        for prec in precisions if name != "iql" else ("fp32",):  # critics always train in float32
            try:
                fn, b = made = made or make()
                with precision_context(prec):
                    t0 = time.perf_counter()
                    fn()  # warm-up
                    slow = time.perf_counter() - t0 > 2.0  # an update of seconds: one timed call is enough
                    big()
                    sec, big_sec = interleaved([fn, big], device, 1 if slow else reps, warmup=False)
                    fl, mm_sec = matmul_profile(fn, 1 if slow else 3)  # warm, like the timed calls
            except Exception as err:  # a baseline under construction must not stop the run
                row("update", f"{name} {prec}", f"skipped: {type(err).__name__}: {err}"[:90])
                continue
            ceiling = big_flops / big_sec
            ceil["matmul_flops"] = max(ceil["matmul_flops"], ceiling)
            rate = fl / sec
            out[f"{name}_{prec}"] = {"batch": b, "precision": prec, "flops": fl, "seconds": sec, "flops_per_s": rate,
                                     "of_ceiling": rate / ceiling, "ceiling": ceiling}
            figs = f"{sec * 1e3:8.1f} ms {fl / 1e9:7.2f} GFLOP {rate / 1e9:7.1f} GFLOP/s"
            figs += f" {100 * rate / ceiling:5.1f}% of fp32"
            if device == "cpu":  # the matmuls' own rate bounds the update's (ops outside them would cost nothing)
                out[f"{name}_{prec}"]["matmul_seconds"] = mm_sec
                out[f"{name}_{prec}"]["matmul_of_ceiling"] = fl / mm_sec / ceiling
                figs += f" (matmuls alone {100 * fl / mm_sec / ceiling:3.0f}%)"
            if prec == "bf16":
                out[f"{name}_{prec}"]["of_bf16_ceiling"] = rate / ceil["matmul_flops_bf16"]
                figs += f", {100 * rate / ceil['matmul_flops_bf16']:4.1f}% of bf16"
            row("update", f"{name} batch {b} {prec}", figs + " ceiling")
    return out


# --- sampling ---------------------------------------------------------------------------------------------------

def hopper_model(path: str = "vpsde", device: str = "cpu", seed: int = 0) -> GenerativeModel:
    """The hopper-sized velocity model (VPSDE, so that DPM-Solver applies too)."""
    torch.manual_seed(seed)
    return GenerativeModel(path, ResidualUNet(ACT, OBS), "velocity").to(device)


def network_calls(model: GenerativeModel, fn: Callable[[], Any]) -> int:
    """How many times fn calls the model's backbone."""
    calls = []
    handle = model.net.register_forward_hook(lambda *_: calls.append(1))
    try:
        fn()
    finally:
        handle.remove()
    return len(calls)


def sampling(ceil: dict[str, float], device: str, steps_list: list[int], reps: int) -> dict[str, dict[str, float]]:
    """Latency of plain and fast samplers per solver, step count and batch, against the FLOP floor (FLOPs / matmul
    ceiling) and, on CPU, the roofline floor: the larger of that and the weight-streaming floor (network calls x
    bytes of the weights that act on x / read bandwidth; each call must read them all, from L3 when they do not fit
    in L2; the time and condition embeddings' weights need not be read per call)."""
    model, out = hopper_model(device=device), {}
    embedding_only = ("t_embed.", "c_embed.", ".emb.")
    weight_bytes = sum(p.numel() * p.element_size() for name, p in model.net.named_parameters()
                       if not any(part in f".{name}" for part in embedding_only))
    for batch in (1, 256):
        cond = torch.randn(batch, OBS, device=device)
        for solver in ("euler", "midpoint", "rk4", "dpm2"):
            for steps in steps_list:
                fl = flops_of(lambda: model.sample(cond, solver=solver, steps=steps))
                calls = network_calls(model, lambda: model.sample(cond, solver=solver, steps=steps))
                r = max(2, reps // (4 if batch > 1 else 1))
                plain = seconds(lambda: model.sample(cond, solver=solver, steps=steps), device, r)
                fast = seconds(lambda: fast_sample(model, cond, solver=solver, steps=steps), device, r)
                floor = fl / ceil["matmul_flops"]
                stream = calls * weight_bytes / ceil["read_bytes_per_s"] if "read_bytes_per_s" in ceil else 0.0
                key = f"{solver}_K{steps}_b{batch}"
                roof = max(floor, stream)
                out[key] = {"flops": fl, "floor_s": floor, "stream_floor_s": stream, "roofline_s": roof,
                            "plain_s": plain, "fast_s": fast}
                row("sample", f"{solver:<8} K={steps:<3} batch {batch:<4}",
                    f"plain {plain * 1e3:8.2f} ms ({plain / floor:5.1f}x FLOP floor)  fast {fast * 1e3:8.2f} ms "
                    f"({fast / floor:5.1f}x FLOP floor, {fast / roof:4.2f}x roofline)")
    if device.startswith("cuda"):
        out.update(cuda_graph_sampling(model, ceil["matmul_flops"], device))
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

def log_prob_times(device: str, steps: int, reps: int) -> dict[str, float]:
    """log_prob at batch 256 with `steps` Euler steps: exact and Hutchinson, without and with backward."""
    model, out = hopper_model(device=device), {}
    s, a = torch.randn(256, OBS, device=device), torch.randn(256, ACT, device=device)
    for trace in ("exact", "hutchinson"):
        fwd = seconds(lambda: model.log_prob(a, s, steps=steps, trace=trace), device, reps)
        bwd = seconds(lambda: model.log_prob(a, s, steps=steps, trace=trace, with_grad=True).mean().backward(),
                      device, reps)
        out[f"{trace}_s"], out[f"{trace}_backward_s"] = fwd, bwd
        row("log_prob", f"{trace} batch 256 K={steps}", f"{fwd * 1e3:8.1f} ms   with backward {bwd * 1e3:8.1f} ms")
    return out


def trained_model(device: str, iters: int) -> GenerativeModel:
    """A hopper-sized ICFM model briefly fit to a bimodal state-dependent action distribution (a non-trivial field)."""
    model = hopper_model("icfm", device, seed=1)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    proj = torch.randn(OBS, ACT, device=device) / OBS ** 0.5
    for _ in range(iters):
        s = torch.randn(256, OBS, device=device)
        sign = torch.randint(0, 2, (256, 1), device=device) * 2 - 1
        a = (torch.tanh(s @ proj) * 0.5 + 0.4 * sign + 0.05 * torch.randn(256, ACT, device=device)).clamp(-1, 1)
        loss = model.loss(a, s).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model


def likelihood_accuracy(device: str, quick: bool) -> dict[str, Any]:
    """Mean |log_prob - reference| (exact trace) per solver and step count; reference: RK4 with 512 steps."""
    model = trained_model(device, 150 if quick else 400)
    g = torch.Generator(device=device).manual_seed(0)
    s = torch.randn(64, OBS, device=device, generator=g)
    a = fast_sample(model, s, steps=64)
    ref = model.log_prob(a, s, solver="rk4", steps=512)
    check = (model.log_prob(a, s, solver="rk4", steps=256) - ref).abs().mean().item()
    row("loglik", "reference RK4 K=512 vs K=256", f"{check:.2e} nats (reference error bound)")
    out: dict[str, Any] = {"reference_check": check, "cases": {}}
    for solver in ("euler", "midpoint", "rk4"):
        for steps in (1, 2, 4, 8, 16, 32, 64, 128, 256) if not quick else (2, 4, 8, 16, 32, 64):
            sec = seconds(lambda: model.log_prob(a, s, solver=solver, steps=steps), device, 1, warmup=0)
            err = (model.log_prob(a, s, solver=solver, steps=steps) - ref).abs().mean().item()
            nfe = steps * {"euler": 1, "midpoint": 2, "rk4": 4}[solver]
            out["cases"][f"{solver}_K{steps}"] = {"error": err, "nfe": nfe, "seconds_b64": sec}
            row("loglik", f"{solver:<8} K={steps:<4} ({nfe:4d} evals)", f"error {err:9.2e} nats  {sec * 1e3:8.1f} ms")
    ok = {k: v for k, v in out["cases"].items() if v["error"] < 0.01}
    if ok:
        best = min(ok, key=lambda k: ok[k]["nfe"])
        out["cheapest_within_0.01"] = best
        row("loglik", "cheapest within 0.01 nats", f"{best} ({ok[best]['nfe']} evals)")
    return out


# --- GMPG ---------------------------------------------------------------------------------------------------------

def gmpg_agent(steps: int, device: str, checkpoint: bool = False):
    """A GMPG agent in its policy-gradient phase with T = steps."""
    return build_agent("gmpg", OBS, ACT, {"behaviour_steps": 0, "critic_steps": 0, "train_steps": steps,
                                           "grad_checkpoint": checkpoint}).to(device)


def three_pass_loss(agent, obs: torch.Tensor) -> torch.Tensor:
    """The same objective as GMPG._kl_loss by three ODE solves: sample, log pi on its own pass, log mu."""
    c = agent.cfg
    act = agent.policy.sample(obs, solver=c.train_solver, steps=c.train_steps, with_grad=True)
    log_pi = agent.policy.log_prob(act, obs, solver=c.train_solver, steps=c.train_steps, trace=c.trace,
                                   with_grad=True)
    log_mu = agent.behaviour.log_prob(act, obs, solver=c.train_solver, steps=c.train_steps, trace=c.trace,
                                      with_grad=True)
    return -c.beta * agent.critic.q_value(obs, act).mean() + (log_pi - log_mu).mean()


def gmpg_passes(device: str, batch: int, reps: int) -> dict[str, float]:
    """Loss + backward of GMPG's two-pass objective against the three-pass version, T = 32, timed in turn; the ratio
    the passes' own costs allow, (sample + pi density + mu density) / (pi density + mu density), each pass timed with
    its backward (mu frozen: its density pass back-propagates into the action only); and the ratio of the two
    versions' matmul FLOPs (a speed-up above it needs the two-pass version to run its FLOPs faster)."""
    agent, obs = gmpg_agent(32, device), torch.randn(batch, OBS, device=device)
    agent.behaviour.requires_grad_(False)
    c = agent.cfg
    two, three = interleaved([lambda: agent._kl_loss({"obs": obs})["policy_loss"].backward(),
                              lambda: three_pass_loss(agent, obs).backward()], device, reps)
    act = agent.policy.sample(obs, steps=c.train_steps).detach().requires_grad_(True)
    kw = dict(steps=c.train_steps, trace=c.trace, with_grad=True)
    sample = seconds(lambda: agent.policy.sample(obs, steps=c.train_steps, with_grad=True).sum().backward(),
                     device, reps)
    pi = seconds(lambda: agent.policy.log_prob(act, obs, **kw).sum().backward(), device, reps)
    mu = seconds(lambda: agent.behaviour.log_prob(act, obs, **kw).sum().backward(), device, reps)
    bound = (sample + pi + mu) / (pi + mu)
    flop_bound = flops_of(lambda: three_pass_loss(agent, obs).backward()) / flops_of(
        lambda: agent._kl_loss({"obs": obs})["policy_loss"].backward())
    row("gmpg", f"T=32 batch {batch}: two passes vs three", f"{two * 1e3:8.1f} ms vs {three * 1e3:8.1f} ms: "
                                                            f"{three / two:4.2f}x (pass costs allow {bound:4.2f}x, "
                                                            f"FLOP counts {flop_bound:4.2f}x)")
    row("gmpg", f"T=32 batch {batch}: one pass + backward", f"sample {sample * 1e3:7.1f} ms, log pi {pi * 1e3:7.1f} "
                                                            f"ms, log mu {mu * 1e3:7.1f} ms ({c.trace})")
    return {"two_pass_s": two, "three_pass_s": three, "speedup": three / two, "batch": batch,
            "sample_pass_s": sample, "pi_density_pass_s": pi, "mu_density_pass_s": mu, "speedup_bound": bound,
            "flop_ratio": flop_bound}


def _peak_rss_child(steps: int, batch: int, checkpoint: bool) -> None:
    """In a subprocess: one GMPG loss + backward; prints the peak RSS growth in MiB and the seconds taken."""
    torch.set_num_threads(1)
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


def gmpg_memory(batch: int, steps_list: list[int]) -> dict[str, dict[str, float]]:
    """Peak memory growth of one GMPG loss + backward at each T, with checkpointing (and without, T <= 100)."""
    out = {}
    for steps in steps_list:
        for ckpt in (True, False) if steps <= 100 else (True,):
            cmd = [sys.executable, __file__, "--_child", f"{steps},{batch},{int(ckpt)}"]
            res = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
            if res.returncode:
                row("gmpg", f"memory T={steps}", f"failed: {res.stderr.strip().splitlines()[-1][:80]}")
                continue
            fig = json.loads(res.stdout.strip().splitlines()[-1])
            out[f"T{steps}_{'ckpt' if ckpt else 'plain'}"] = fig
            row("gmpg", f"memory T={steps} batch {batch} {'checkpointed' if ckpt else 'plain'}",
                f"peak +{fig['peak_mib']:8.1f} MiB  {fig['seconds']:7.1f} s")
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
    code = (f"from genrl_core.train import train; train('gmpo', 'local/pendulum/medium-v0', steps={budget['steps']}, "
            f"eval_every={budget['eval_every']}, eval_episodes={budget['eval_episodes']}, "
            f"batch_size={budget['batch_size']}, overrides={overrides!r}, log=None)")
    t0 = time.perf_counter()
    plain = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=REPO)
    plain_s = time.perf_counter() - t0
    ok = ray_run.returncode == 0 and plain.returncode == 0
    row("ray", "smoke gmpo trial (300 steps, 3 evals)", f"Ray {ray_s:6.1f} s   no Ray {plain_s:6.1f} s   "
                                                         f"overhead {ray_s - plain_s:6.1f} s" + ("" if ok else " (FAILED)"))
    return {"ray_s": ray_s, "plain_s": plain_s, "ok": ok}


# --- main -------------------------------------------------------------------------------------------------------------

def environment(device: str) -> dict[str, Any]:
    """What the figures depend on: versions, threads, device, load, commit."""
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout
    return {"torch": torch.__version__, "threads": torch.get_num_threads(), "device": device,
            "cpu": platform.processor() or platform.machine(), "loadavg": os.getloadavg(), "commit": commit.strip(),
            "gpu": torch.cuda.get_device_name() if device.startswith("cuda") else None}


def print_table(env: dict[str, Any]) -> None:
    print(f"\nspeed table: torch {env['torch']}, {env['device']}, {env['threads']} thread(s), commit {env['commit']}, "
          f"load average before {env['loadavg_before']}, after {env['loadavg_after']}")
    print(f"{'section':<9} {'what':<44} figures")
    for section, what, figures in ROWS:
        print(f"{section:<9} {what:<44} {figures}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="fewer repetitions, batch 1024 updates, fewer step counts")
    p.add_argument("--json", default=None, help="write every figure to this JSON file")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (headline figures: 1)")
    p.add_argument("--ray", action="store_true", help="also time one smoke trial under Ray against no Ray")
    p.add_argument("--only", default="", help="comma list of sections: ceiling,update,sample,log_prob,loglik,gmpg,ray")
    p.add_argument("--_child", default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    if args._child:
        steps, batch, ckpt = (int(v) for v in args._child.split(","))
        return _peak_rss_child(steps, batch, bool(ckpt))
    want = set(args.only.split(",")) if args.only else {"ceiling", "update", "sample", "log_prob", "loglik", "gmpg"}
    if args.ray:
        want.add("ray")
    env, res = environment(args.device), {}
    env["loadavg_before"] = env.pop("loadavg")
    dev, reps = args.device, 3 if args.quick else 7
    res["ceiling"] = ceilings(dev, args.quick)
    if "update" in want:
        res["update"] = updates(res["ceiling"], dev, 1024 if args.quick else 4096, reps)
    if "sample" in want:
        res["sample"] = sampling(res["ceiling"], dev, [1, 5, 32] if args.quick else [1, 2, 5, 10, 32],
                                 5 if args.quick else 20)
    if "log_prob" in want:
        res["log_prob"] = log_prob_times(dev, 32, 1 if args.quick else 3)
    if "loglik" in want:
        res["loglik_accuracy"] = likelihood_accuracy(dev, args.quick)
    if "gmpg" in want:
        res["gmpg_passes"] = gmpg_passes(dev, 64 if args.quick else 256, 1 if args.quick else 5)
        if dev == "cpu":
            res["gmpg_memory"] = gmpg_memory(32 if args.quick else 64, [32, 100, 1000])
    if "ray" in want:
        res["ray"] = ray_vs_plain()
    res["ceiling_after"] = ceilings(dev, True)
    env["loadavg_after"] = os.getloadavg()
    print_table(env)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"env": env, **res}, indent=1))


if __name__ == "__main__":
    main()
