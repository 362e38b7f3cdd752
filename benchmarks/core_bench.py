"""Core speed at hopper size (state 11, action 3) with the residual U-Net backbone.

Prints samples/s per solver (32 steps, batch 1 and 4096), loss + backward + Adam steps/s at batch 4096,
and log_prob time at batch 256 with 32 steps (exact trace and Hutchinson). `--json PATH` saves the figures.
"""
from __future__ import annotations

import argparse
import json
import time

import torch

from genrl_core.generative import GenerativeModel
from genrl_core.networks import ResidualUNet

OBS, ACT = 11, 3


def timed(fn, reps: int) -> float:
    """Seconds per call, after one warm-up call."""
    fn()
    t0 = time.perf_counter()
    for _ in range(reps):
        fn()
    return (time.perf_counter() - t0) / reps


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--path", default="vpsde")
    p.add_argument("--big-batch", type=int, default=4096)
    p.add_argument("--json", default=None)
    args = p.parse_args()
    torch.manual_seed(0)
    model = GenerativeModel(args.path, ResidualUNet(ACT, OBS), "velocity")
    n_params = sum(q.numel() for q in model.parameters())
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, backbone params {n_params / 1e6:.2f}M")
    res: dict[str, float] = {}
    for batch in (1, args.big_batch):
        s = torch.randn(batch, OBS)
        for solver in ("euler", "midpoint", "rk4", "dpm2"):
            sec = timed(lambda: model.sample(s, solver=solver, steps=32), 1 if batch > 1 else 20)
            res[f"sample_{solver}_b{batch}_samples_per_s"] = batch / sec
            print(f"sample {solver:>8} 32 steps batch {batch:>5}: {batch / sec:12.1f} samples/s ({sec * 1e3:.2f} ms)")
    s, a = torch.randn(args.big_batch, OBS), torch.randn(args.big_batch, ACT)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)

    def step():
        loss = model.loss(a, s).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()

    sec = timed(step, 5)
    res["train_steps_per_s_b4096"] = 1 / sec
    print(f"loss+backward+Adam batch {args.big_batch}: {1 / sec:.2f} steps/s ({sec * 1e3:.0f} ms)")
    s, a = torch.randn(256, OBS), torch.randn(256, ACT)
    for trace in ("exact", "hutchinson"):
        sec = timed(lambda: model.log_prob(a, s, steps=32, trace=trace), 2)
        res[f"log_prob_{trace}_b256_s"] = sec
        print(f"log_prob {trace:>10} batch 256, 32 Euler steps: {sec * 1e3:.0f} ms")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
