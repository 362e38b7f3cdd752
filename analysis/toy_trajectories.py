"""Figure 3 of the GMPO/GMPG paper on the Swiss-roll bandit: generation trajectories of GMPO and GMPG.

Trains GMPO and GMPG on toy/swissroll-v0 with the bandit's exact value as critic (so the picture shows
policy extraction, not critic error), prints each model's mean value, distance of its samples to the
data and distance of its intermediate states to the equally-noised data, and draws the trajectories.

    python analysis/toy_trajectories.py --out out/figure3.png
"""
from __future__ import annotations

import argparse
from pathlib import Path

import torch

from genrl_core import bandits
from genrl_core.data import load
from genrl_core.metrics import mean_nearest_distance
from genrl_core.train import build_agent, train_steps

SMALL = {"backbone": "mlp", "widths": (128, 128, 128)}


def train_toy(algo: str, beta: float, steps: int, seed: int = 0, name: str = "swissroll", **extra) -> torch.nn.Module:
    """An agent trained on a toy bandit with the exact critic."""
    data = load(f"toy/{name}-v0")
    torch.manual_seed(seed)
    rl = {} if algo == "bc" else {"beta": beta, "critic_steps": 0}
    agent = build_agent(algo, 1, 2, {**SMALL, **rl, **extra})
    if algo != "bc":
        agent.critic = bandits.ExactCritic(name, float(data.reward.mean()))
    train_steps(agent, data, 0, steps, 256, torch.Generator().manual_seed(seed)).read()
    return agent


def trajectory_report(agent, data: torch.Tensor, n: int = 1000, steps: int = 32, name: str = "swissroll") -> dict:
    """Mean value and nearest-data distance of samples; mean distance of intermediate states x_t to noised data."""
    torch.manual_seed(1)
    model = agent.policy
    times, path = model.sample_path(torch.zeros(n, 1), steps=steps)
    noisy = []
    for i in range(1, steps):  # intermediate states against the data pushed to the same t by the path
        t = times[i].expand(data.shape[0])
        ref = model.path.alpha(t)[:, None] * data + model.path.sigma(t)[:, None] * torch.randn_like(data)
        noisy.append(mean_nearest_distance(path[i], ref))
    final = path[-1]
    return {"value": float(bandits.value(name, final).mean()), "near": mean_nearest_distance(final, data),
            "traj_near": sum(noisy) / len(noisy), "path": path, "times": times}


def draw(reports: dict[str, dict], data: torch.Tensor, out: Path) -> None:
    """One row per model: its states at five times of the trajectory over the data."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = [0, 8, 16, 24, 32]
    fig, axes = plt.subplots(len(reports), len(cols), figsize=(3 * len(cols), 3 * len(reports)), squeeze=False)
    for row, (label, rep) in enumerate(reports.items()):
        for col, i in enumerate(cols):
            ax = axes[row][col]
            ax.scatter(data[:, 0], data[:, 1], s=1, c="lightgray")
            pts = rep["path"][min(i, rep["path"].shape[0] - 1)]
            ax.scatter(pts[:, 0], pts[:, 1], s=2, c=bandits.value("swissroll", pts), cmap="viridis", vmin=-3.5, vmax=1.5)
            ax.set_xlim(-1.6, 1.6)
            ax.set_ylim(-1.6, 1.6)
            ax.set_title(f"{label} t={float(rep['times'][min(i, len(rep['times']) - 1)]):.2f}")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=90)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--beta", type=float, default=1.0)
    p.add_argument("--steps", type=int, default=1800, help="training steps of each model")
    p.add_argument("--out", default="out/figure3.png")
    args = p.parse_args()
    data = load("toy/swissroll-v0").action[:2000]
    agents = {"GMPO": train_toy("gmpo", args.beta, args.steps, lr=1e-3),
              "GMPG": train_toy("gmpg", args.beta, args.steps, lr=1e-4, behaviour_lr=1e-3,
                                behaviour_steps=args.steps * 2 // 3, train_steps=16)}
    reports = {k: trajectory_report(a, data) for k, a in agents.items()}
    print(f"data mean value {float(bandits.value('swissroll', data).mean()):.3f}")
    for k, r in reports.items():
        print(f"{k}: mean value {r['value']:.3f}, sample-to-data {r['near']:.3f}, "
              f"trajectory-to-noised-data {r['traj_near']:.3f}")
    draw(reports, data, Path(args.out))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
