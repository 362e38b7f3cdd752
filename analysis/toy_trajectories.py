"""Figure 3 of the GMPO/GMPG paper on the Swiss-roll bandit: generation trajectories of GMPO and GMPG.

Trains GMPO and GMPG on toy/swissroll-v0 with the bandit's exact value as critic (so the picture shows
policy extraction, not critic error), prints each model's mean value, distance of its samples to the
data and distance of its intermediate states to the equally-noised data, and draws the trajectories.

Settings (same MLP, same flow-matching budget): GMPO trains `--steps` steps at lr 1e-3; GMPG pretrains its
behaviour model mu for the same `--steps` at lr 1e-3, then trains pi = copy(mu) for `--policy-steps` steps of
the reverse-KL policy gradient (exact trace, T = 32). Each model runs at every beta of `--betas`, so that the
mean-value / distance pairs can be compared at similar mean value rather than at one beta.

What it shows: GMPO's samples are NOT farther from the data than GMPG's. GMPO regresses onto the
(reweighted) data points themselves; GMPG's optimum is mu * exp(beta Q) / Z for the *learned* mu, so its
samples inherit mu's own distance to the data (printed as "GMPG's optimum"), which a small flow model trained
equally long does not get below GMPO's.

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
    """Mean value and nearest-data distance of samples; mean distance of intermediate states x_t to noised data.

    `agent` is an agent (its policy is used) or a GenerativeModel (e.g. GMPG's behaviour model)."""
    torch.manual_seed(1)
    model = getattr(agent, "policy", agent)
    times, path = model.sample_path(torch.zeros(n, 1), steps=steps)
    noisy = []
    for i in range(1, steps):  # intermediate states against the data pushed to the same t by the path
        t = times[i].expand(data.shape[0])
        ref = model.path.alpha(t)[:, None] * data + model.path.sigma(t)[:, None] * torch.randn_like(data)
        noisy.append(mean_nearest_distance(path[i], ref))
    final = path[-1]
    return {"value": float(bandits.value(name, final).mean()), "near": mean_nearest_distance(final, data),
            "traj_near": sum(noisy) / len(noisy), "path": path, "times": times}


def tilted_behaviour(agent, data: torch.Tensor, beta: float, n: int = 1000, pool: int = 8000,
                     name: str = "swissroll") -> dict:
    """GMPG's optimum mu exp(beta Q) / Z for its learned mu, by importance resampling of mu's samples."""
    torch.manual_seed(2)
    with torch.no_grad():
        acts = agent.behaviour.sample(torch.zeros(pool, 1), steps=32)
    values = bandits.value(name, acts)
    idx = torch.multinomial(torch.softmax(beta * values, 0), n, replacement=True,
                            generator=torch.Generator().manual_seed(0))
    return {"value": float(values[idx].mean()), "near": mean_nearest_distance(acts[idx], data)}


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
            ax.set_title(f"{label} t={float(rep['times'][min(i, len(rep['times']) - 1)]):.2f}", fontsize=9)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=90)


def train_pair(beta: float, steps: int, policy_steps: int) -> dict[str, torch.nn.Module]:
    """GMPO and GMPG at one beta with the same backbone and the same flow-matching budget (see the docstring)."""
    return {"GMPO": train_toy("gmpo", beta, steps, lr=1e-3, weight_norm="batch"),
            "GMPG": train_toy("gmpg", beta, steps + policy_steps, lr=3e-4, behaviour_lr=1e-3, behaviour_steps=steps,
                              train_steps=32, trace="exact")}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--betas", default="1,2", help="comma-separated betas; both models run at each")
    p.add_argument("--steps", type=int, default=3000, help="flow-matching steps of GMPO and of GMPG's mu")
    p.add_argument("--policy-steps", type=int, default=300, help="GMPG's policy-gradient steps after mu")
    p.add_argument("--out", default="out/figure3.png")
    args = p.parse_args()
    full = load("toy/swissroll-v0").action
    data, held_out = full[:2000], full[2000:3000]
    print(f"data: mean value {float(bandits.value('swissroll', data).mean()):.3f}, "
          f"held-out data point to data {mean_nearest_distance(held_out, data):.3f}")
    print("model  beta  mean value  sample-to-data  trajectory-to-noised-data")
    pictures = {}
    for beta in (float(b) for b in args.betas.split(",")):
        agents = train_pair(beta, args.steps, args.policy_steps)
        reports = {k: trajectory_report(a, data) for k, a in agents.items()}
        reports["GMPG's mu"] = trajectory_report(agents["GMPG"].behaviour, data)
        for k, r in reports.items():
            print(f"{k:9s} {beta:4.1f}  {r['value']:10.3f}  {r['near']:14.3f}  {r['traj_near']:25.3f}")
        opt = tilted_behaviour(agents["GMPG"], data, beta)
        print(f"GMPG's optimum mu exp(beta Q) at beta {beta}: mean value {opt['value']:.3f}, "
              f"sample-to-data {opt['near']:.3f}")
        if not pictures:  # the picture: both models and mu at the first beta
            pictures = {f"{k} beta {beta:g}": r for k, r in reports.items()}
    draw(pictures, data, Path(args.out))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
