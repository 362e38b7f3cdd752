"""`make demo` (core part): train a small conditional flow on the 2-D Swiss roll, sample it with every
solver, print log-likelihoods and write a PNG of the samples."""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from genrl_core.data import bandits
from genrl_core.generative.model import GenerativeModel
from genrl_core.generative.metrics import energy_distance
from genrl_core.generative.networks import MLPBackbone


def conditional_rolls(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(x [n, 2], cond [n, 1]): cond 0 is the Swiss roll bandit's actions, cond 1 the roll mirrored."""
    x = bandits.swissroll(n, seed=seed).action
    c = torch.randint(0, 2, (n, 1), generator=torch.Generator().manual_seed(seed)).float()
    return x * (1 - 2 * c), c


def fit(model: GenerativeModel, steps: int, seed: int = 0, batch: int = 256, lr: float = 2e-3) -> None:
    """Adam on the model's matching loss over fresh conditional Swiss-roll batches."""
    x_all, c_all = conditional_rolls(20000, seed)
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    for _ in range(steps):
        idx = torch.randint(0, x_all.shape[0], (batch,), generator=g)
        loss = model.loss(x_all[idx], c_all[idx]).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--path", default="vpsde", choices=["vpsde", "gvp", "icfm", "linear"])
    p.add_argument("--steps", type=int, default=1500, help="training steps")
    p.add_argument("--out", default="out/demo", help="folder for the PNG")
    args = p.parse_args()
    torch.manual_seed(0)
    model = GenerativeModel(args.path, MLPBackbone(2, 1, hidden=(128, 128, 128)), "velocity")
    t0 = time.perf_counter()
    fit(model, args.steps)
    print(f"trained {args.path} velocity model for {args.steps} steps in {time.perf_counter() - t0:.1f}s")
    data, cond = conditional_rolls(1000, seed=1)
    solvers = ["euler", "midpoint", "rk4", "dopri5"] + (["dpm2"] if model.path.is_diffusion else [])
    samples = {}
    print(f"{'solver':>8} {'steps':>5} {'energy dist':>11} {'log p(data) nats':>16}")
    for s in solvers:
        samples[s] = model.sample(cond, solver=s, steps=16)
        ll = float(model.log_prob(data, cond, solver=s, steps=16).mean()) if s != "dpm2" else float("nan")
        print(f"{s:>8} {16:>5} {energy_distance(samples[s], data):>11.4f} {ll:>16.3f}")
    _plot(data, samples, Path(args.out) / "swissroll_samples.png")


def _plot(data: torch.Tensor, samples: dict[str, torch.Tensor], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(1, len(samples) + 1, figsize=(3 * (len(samples) + 1), 3), sharex=True, sharey=True)
    for ax, (name, pts) in zip(axes, [("data", data), *samples.items()]):
        ax.scatter(pts[:, 0], pts[:, 1], s=2)
        ax.set_title(name)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
