"""Seed packing: total gradient updates/s of N packed seeds against one unpacked seed.

    .venv/bin/python benchmarks/packing_bench.py                      # bc and gmpo, MLP (256, 256) and the U-Net
    .venv/bin/python benchmarks/packing_bench.py --json --packs 1 4 8 --device cuda

Data are random tensors of Hopper's sizes (obs 11, action 3), so only the update itself is timed. "single" is
the plain loop of genrl_core.train (one agent); "packed N" is genrl_core.packing with N seeds; the speed-up is
(N x packed steps/s) / single steps/s.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import time

import torch

from genrl_core import algorithms
from genrl_core.data import OfflineData
from genrl_core.packing import build_pack
from genrl_core.train import build_agent, train_steps

MODELS = {
    "mlp64": {"backbone": "mlp", "widths": (64, 64), "critic_hidden": (64, 64)},
    "mlp256": {"backbone": "mlp", "widths": (256, 256), "critic_hidden": (256, 256)},
    "resunet": {"backbone": "resunet", "widths": (512, 256, 128), "critic_hidden": (256, 256)},
}


REPEATS = 5  # best of


def fake_data(n: int, obs_dim: int, act_dim: int, device: str) -> OfflineData:
    """Random transitions of the given sizes on `device` (speed only)."""
    g = torch.Generator().manual_seed(0)
    obs, nxt = torch.randn(n, obs_dim, generator=g), torch.randn(n, obs_dim, generator=g)
    act = torch.rand(n, act_dim, generator=g) * 2 - 1
    t = {k: v.to(device) for k, v in dict(obs=obs, next_obs=nxt, action=act, reward=torch.randn(n, generator=g),
                                          terminal=torch.zeros(n)).items()}
    return OfflineData(t["obs"], t["action"], t["reward"], t["next_obs"], t["terminal"], "bench/fake-v0", None,
                       None, None, None, None)


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _overrides(algo: str, model: str) -> dict:
    """The model's fields that the algorithm's config has."""
    fields = {f.name for f in dataclasses.fields(algorithms.get(algo)[0].config_class)}
    return {k: v for k, v in MODELS[model].items() if k in fields}


def single_rate(algo: str, overrides: dict, data: OfflineData, batch: int, steps: int, device: str) -> float:
    """Updates/s of one unpacked agent."""
    agent = build_agent(algo, data.obs_dim, data.act_dim, overrides).to(device)
    gen = torch.Generator(device=device).manual_seed(0)
    train_steps(agent, data, 0, 3, batch, gen)  # warm-up
    best = float("inf")
    for r in range(REPEATS):
        _sync(device)
        t0 = time.perf_counter()
        train_steps(agent, data, 3, 3 + steps, batch, gen).read()
        _sync(device)
        best = min(best, time.perf_counter() - t0)
    return steps / best


def packed_rate(algo: str, overrides: dict, data: OfflineData, batch: int, steps: int, device: str, n: int,
                engine: str) -> float:
    """Total updates/s (n seeds x steps/s) of a pack of n seeds."""
    pack = build_pack(algo, list(range(n)), data.obs_dim, data.act_dim, device, overrides, engine)
    pack.train(data, 0, 3, batch)  # warm-up
    best = float("inf")
    for r in range(REPEATS):
        _sync(device)
        t0 = time.perf_counter()
        pack.train(data, 3, steps, batch)
        _sync(device)
        best = min(best, time.perf_counter() - t0)
    return n * steps / best


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--algos", nargs="+", default=["bc", "gmpo"])
    p.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    p.add_argument("--packs", type=int, nargs="+", default=[1, 4, 8])
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--steps", type=int, default=30, help="timed updates per measurement")
    p.add_argument("--engine", default="vmap", choices=["vmap", "loop"])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", action="store_true", help="print one JSON document instead of a table")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    data = fake_data(100_000, 11, 3, args.device)
    rows = []
    for algo in args.algos:
        for model in args.models:
            single = single_rate(algo, _overrides(algo, model), data, args.batch, args.steps, args.device)
            for n in args.packs:
                total = packed_rate(algo, _overrides(algo, model), data, args.batch, args.steps, args.device, n, args.engine)
                rows.append({"algo": algo, "model": model, "n": n, "single_steps_per_s": single,
                             "packed_total_steps_per_s": total, "speedup": total / single})
                if not args.json:
                    print(f"{algo:5s} {model:8s} N={n:<2d} single {single:8.1f}/s  packed total {total:8.1f}/s  "
                          f"x{total / single:.2f}", flush=True)
    if args.json:
        print(json.dumps({"device": args.device, "batch": args.batch, "threads": args.threads,
                          "engine": args.engine, "loadavg": _loadavg(), "results": rows}, indent=1))


def _loadavg() -> str:
    try:
        with open("/proc/loadavg") as f:
            return f.read().strip()
    except OSError:
        return "n/a" if os.name != "posix" else ""


if __name__ == "__main__":
    main()
