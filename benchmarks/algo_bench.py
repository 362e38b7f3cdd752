"""Update steps/s of IQL, BC, GMPO and GMPG (T = 32) at hopper size with the residual U-Net.

`--batch` (default 4096, the paper's) and `--json PATH`. Each figure is the mean over `--reps` updates
after one warm-up update; GMPG is measured in its policy-gradient phase (with gradient checkpointing above
batch 1024, so that its memory stays bounded).
"""
from __future__ import annotations

import argparse
import json
import time

import torch

from genrl_core.train import build_agent

OBS, ACT = 11, 3


def batch_of(n: int) -> dict[str, torch.Tensor]:
    return {"obs": torch.randn(n, OBS), "action": torch.rand(n, ACT) * 2 - 1, "reward": torch.randn(n),
            "next_obs": torch.randn(n, OBS), "terminal": torch.zeros(n)}


def rate(update, reps: int) -> float:
    """Updates per second after one warm-up call."""
    update()
    t0 = time.perf_counter()
    for _ in range(reps):
        update()
    return reps / (time.perf_counter() - t0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--batch", type=int, default=4096)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--json", default=None)
    args = p.parse_args()
    torch.manual_seed(0)
    b = batch_of(args.batch)
    res = {}
    print(f"batch {args.batch}, torch threads {torch.get_num_threads()}", flush=True)

    def report(name: str, update, reps: int) -> None:
        res[name] = rate(update, reps)
        print(f"{name:>10}: {res[name]:8.3f} updates/s  ({1e3 / res[name]:8.1f} ms/update)", flush=True)

    gmpo = build_agent("gmpo", OBS, ACT, {"critic_alongside": False, "critic_steps": 1})
    report("iql", lambda: gmpo.critic.update(b), args.reps)
    bc = build_agent("bc", OBS, ACT)
    report("bc", lambda: bc.update(b, 0), args.reps)
    report("gmpo", lambda: gmpo.update(b, 5), args.reps)
    # GMPG keeps T = 32 solver steps of activations for backward: checkpointed, it stays within a few GiB at 4096
    gmpg = build_agent("gmpg", OBS, ACT, {"behaviour_steps": 0, "critic_steps": 0, "critic_alongside": False,
                                         "train_steps": 32, "grad_checkpoint": args.batch > 1024})
    report("gmpg_T32", lambda: gmpg.update(b, 1), max(1, args.reps // 3))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"batch": args.batch, **res}, f, indent=1)


if __name__ == "__main__":
    main()
