"""Helpers shared by the benchmark scripts: thread setup, timing, FLOP counting, tables, and the agents, batches and
datasets a bench runs on (hopper-sized by default: state 11, action 3).

The scripts run as `python benchmarks/<script>.py`, which puts benchmarks/ first on sys.path: they import this
module as `common`.
"""
from __future__ import annotations

import os
import platform
import subprocess
import time
from pathlib import Path
from typing import Any, Callable

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import flop_registry

from genrl_core.algorithms.base import Agent
from genrl_core.algorithms.in_support import InSupportAgent
from genrl_core.data.offline import OfflineData
from genrl_core.generative.model import GenerativeModel
from genrl_core.generative.networks import ResidualUNet
from genrl_core.run.training import build_agent

REPO = Path(__file__).resolve().parents[1]
OBS, ACT = 11, 3  # Hopper's state and action sizes


# --- threads and environment -----------------------------------------------------------------------------------

def set_threads(threads: int) -> None:
    """Use `threads` torch CPU threads (0: leave torch's default)."""
    if threads:
        torch.set_num_threads(threads)


def environment(device: str) -> dict[str, Any]:
    """What the figures depend on: versions, threads, device, load, commit."""
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout
    return {"torch": torch.__version__, "threads": torch.get_num_threads(), "device": device,
            "cpu": platform.processor() or platform.machine(), "loadavg": os.getloadavg(), "commit": commit.strip(),
            "gpu": torch.cuda.get_device_name() if device.startswith("cuda") else None}


# --- timing -----------------------------------------------------------------------------------------------------

def sync(device: str) -> None:
    """Wait for the device's queued work (CUDA); nothing on CPU."""
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def seconds(fn: Callable[[], Any], device: str, reps: int, warmup: int = 1) -> float:
    """Median seconds per call of fn over `reps` timed calls (after `warmup` untimed ones)."""
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


def timed(fn: Callable[[], Any], device: str, reps: int, slow: float = 1.0) -> float:
    """Median seconds per call of fn over `reps` calls after one warm-up call; when the warm-up takes over `slow`
    seconds, one more call is enough."""
    sync(device)
    t0 = time.perf_counter()
    fn()
    sync(device)
    return seconds(fn, device, 1 if time.perf_counter() - t0 > slow else reps, warmup=0)


def flops_of(fn: Callable[[], Any]) -> int:
    """Matmul FLOPs of one call of fn, counted from the operand shapes."""
    return matmul_profile(fn)[0]


# --- tables -----------------------------------------------------------------------------------------------------

class Table:
    """Rows (section, what, figures) of a speed table; each row is echoed as it comes, so a long run shows progress."""

    def __init__(self, echo: bool = True):
        self.rows: list[tuple[str, str, str]] = []
        self.echo = echo

    def row(self, section: str, what: str, figures: str) -> None:
        """Add one line to the table."""
        self.rows.append((section, what, figures))
        if self.echo:
            print(f"  {section:<9} {what:<44} {figures}", flush=True)

    def print(self, title: str) -> None:
        """The whole table under a title line."""
        print(f"\n{title}")
        print(f"{'section':<9} {'what':<44} figures")
        for section, what, figures in self.rows:
            print(f"{section:<9} {what:<44} {figures}")


def markdown_table(header: list[str], rows: list[list[str]]) -> list[str]:
    """The lines of a Markdown table: header, rule, one line per row."""
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header),
            *("| " + " | ".join(r) + " |" for r in rows)]


# --- what a bench runs on ---------------------------------------------------------------------------------------

def batch_of(n: int, device: str = "cpu", obs_dim: int = OBS, act_dim: int = ACT) -> dict[str, torch.Tensor]:
    """A random transition batch (hopper-sized by default)."""
    return {"obs": torch.randn(n, obs_dim, device=device), "action": torch.rand(n, act_dim, device=device) * 2 - 1,
            "reward": torch.randn(n, device=device), "next_obs": torch.randn(n, obs_dim, device=device),
            "terminal": torch.zeros(n, device=device)}


def as_dataset(batch: dict[str, torch.Tensor], dataset_id: str = "bench/fake-v0") -> OfflineData:
    """A batch's transitions as a dataset (the batch is then its rows 0..B-1)."""
    return OfflineData(obs=batch["obs"], action=batch["action"], reward=batch["reward"], next_obs=batch["next_obs"],
                       terminal=batch["terminal"], dataset_id=dataset_id, env_id=None, ref_min_score=None,
                       ref_max_score=None, obs_mean=None, obs_std=None)


def random_data(n: int, device: str = "cpu", obs_dim: int = OBS, act_dim: int = ACT, seed: int = 0) -> OfflineData:
    """A dataset of n random transitions (speed only: the figures do not depend on the values)."""
    torch.manual_seed(seed)
    return as_dataset(batch_of(n, device, obs_dim, act_dim))


def agent_for(algo: str, data: OfflineData, overrides: dict[str, Any] | None = None, device: str = "cpu") -> Agent:
    """The agent of `algo` sized for `data`, with its config's defaults and `overrides`, on `device`."""
    return build_agent(algo, data.obs_dim, data.act_dim, overrides).to(device)


def hopper_agent(algo: str, overrides: dict[str, Any] | None = None, device: str = "cpu") -> Agent:
    """The hopper-sized agent of `algo` with its config's defaults and `overrides`, on `device`."""
    return build_agent(algo, OBS, ACT, overrides).to(device)


def with_cache(agent: torch.nn.Module, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """SfBC / QGPO (InSupportAgent): the batch bound as their dataset and its candidates drawn once, before any timed
    update; returns the batch with its row indices. Other agents: the batch as it is."""
    if not isinstance(agent, InSupportAgent):
        return batch
    agent.bind_data(as_dataset(batch), seed=0)
    batch = {**batch, "index": torch.arange(batch["obs"].shape[0], device=batch["obs"].device)}
    agent.cached(batch, "next_obs")
    return batch


def hopper_model(path: str = "vpsde", device: str = "cpu", seed: int = 0) -> GenerativeModel:
    """The hopper-sized velocity model with the residual U-Net backbone (VPSDE, so that DPM-Solver applies too)."""
    torch.manual_seed(seed)
    return GenerativeModel(path, ResidualUNet(ACT, OBS), "velocity").to(device)
