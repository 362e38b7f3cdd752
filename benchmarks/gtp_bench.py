"""GTP speed at hopper size (obs 11, action 3): actions/s at K = 1, 2, 5 (batch 1 and 256), and update steps/s
with the surrogate teacher against the ODE-solver teacher (batch 256 by default).

`--device`, `--reps`, `--update-batch` and `--json PATH`. Default GTPConfig otherwise (MLP 256x3 actor, critic
256x2, expectile V). Each figure is a mean over timed calls after warm-up calls; CUDA is synchronised around them.
"""
from __future__ import annotations

import argparse
import json
import time
from typing import Callable

import torch

from genrl_core.algorithms.gtp import GTP, GTPConfig

OBS, ACT = 11, 3


def batch_of(n: int, device: str) -> dict[str, torch.Tensor]:
    """A random hopper-sized transition batch."""
    return {"obs": torch.randn(n, OBS, device=device), "action": torch.rand(n, ACT, device=device) * 2 - 1,
            "reward": torch.randn(n, device=device), "next_obs": torch.randn(n, OBS, device=device),
            "terminal": torch.zeros(n, device=device)}


def per_second(fn: Callable[[], object], reps: int, device: str, warmup: int = 3) -> float:
    """Calls per second of fn after warm-up."""
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    for _ in range(warmup):
        fn()
    sync()
    t0 = time.perf_counter()
    for _ in range(reps):
        fn()
    sync()
    return reps / (time.perf_counter() - t0)


def action_rates(device: str, reps: int) -> dict[str, float]:
    """Actions/s of act() at K = 1, 2, 5 for batch 1 and 256."""
    out = {}
    for k in (1, 2, 5):
        agent = GTP(GTPConfig(sampling_steps=k), OBS, ACT).to(device).eval()
        for batch in (1, 256):
            obs = torch.randn(batch, OBS, device=device)
            out[f"actions_per_s_K{k}_b{batch}"] = batch * per_second(lambda: agent.act(obs), reps, device)
    return out


def update_rates(device: str, reps: int, batch: int) -> dict[str, float]:
    """GTP update steps/s with the surrogate teacher and the ODE teacher (GTPConfig.ode_steps Euler steps)."""
    out = {}
    data = batch_of(batch, device)
    for teacher in ("surrogate", "ode"):
        agent = GTP(GTPConfig(teacher=teacher), OBS, ACT).to(device)
        step = iter(range(10**9))
        out[f"updates_per_s_{teacher}"] = per_second(lambda: agent.update(data, next(step)), reps, device)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--reps", type=int, default=50, help="timed calls per figure")
    p.add_argument("--update-batch", type=int, default=256, help="minibatch of the update timings")
    p.add_argument("--json", default=None, help="write the figures to this JSON file")
    args = p.parse_args()
    torch.manual_seed(0)
    res = {**action_rates(args.device, args.reps), **update_rates(args.device, args.reps, args.update_batch)}
    print(f"GTP at hopper size (obs {OBS}, act {ACT}), device {args.device}, torch threads {torch.get_num_threads()}")
    print(f"{'K':>3} {'batch':>6} {'actions/s':>12} {'ms/call':>9}")
    for k in (1, 2, 5):
        for b in (1, 256):
            v = res[f"actions_per_s_K{k}_b{b}"]
            print(f"{k:>3} {b:>6} {v:12.1f} {1e3 * b / v:9.3f}")
    for teacher in ("surrogate", "ode"):
        v = res[f"updates_per_s_{teacher}"]
        print(f"update ({teacher} teacher, batch {args.update_batch}): {v:8.2f} steps/s ({1e3 / v:7.2f} ms/step)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"device": args.device, "update_batch": args.update_batch, "obs_dim": OBS, "act_dim": ACT, **res},
                      f, indent=1)


if __name__ == "__main__":
    main()
