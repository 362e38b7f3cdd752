"""Figure 3 of the GMPO/GMPG paper on the Swiss-roll bandit: generation trajectories of GMPO and GMPG.

Trains BC, GMPO and GMPG on toy/swissroll-v0 with the bandit's exact value as critic (so the picture shows
policy extraction, not critic error), prints each model's mean value and two readings of "stays on the data
manifold" (Appendix C.8), and draws the trajectories as a PNG:

- sample-to-data: mean distance of a sample to its nearest data point (the issue's metric; precision);
- coverage: mean distance of a data point to its nearest sample, over all data and over the top-value half
  (the paper's "the Swiss Roll shape is largely preserved"; recall);
- the same two along the trajectory: intermediate states x_t against the data pushed to time t by the path.

Settings (same MLP, same flow-matching budget for BC, GMPO and GMPG's mu): `--steps` flow-matching steps at
`--lr` with a cosine decay to 5 %; GMPG then trains pi = copy(mu) for `--policy-steps` steps of the reverse-KL
policy gradient (lr 3e-4, exact trace, T = 32). Reference rows: held-out data and the exact target
pi* ~ data exp(beta Q) (held-out data resampled), so that model error and the tilt itself are told apart.
Compare models at similar mean value (pick betas so), not at one beta.

Measured (defaults: MLP 128x3, 10000 steps, lr 3e-3 cosine, GMPG 300 policy steps; seed 0 unless noted;
n = 2000 samples against 2000 data points):

    model  beta  value  sample-to-data  coverage  coverage-top
    data    -    -0.96      0.013         0.012      0.013      (held-out data)
    pi*     1     0.54      0.014         0.022      0.014      (held-out data resampled by exp(beta Q))
    pi*     2     1.00      0.015         0.078      0.028
    BC/mu   -    -1.00      0.022         0.014      0.015
    GMPO    1     0.57      0.021         0.031      0.013
    GMPO   1.3    0.73-0.75 0.018         0.049-0.052 0.016     (seeds 0, 1, 2)
    GMPG    2     0.76      0.023         0.044      0.014      (seed 1: 0.59, 0.025, 0.029, 0.014)
    GMPO    4     1.24      0.015         0.187      0.130
    GMPG    4     1.21      0.025         0.148      0.120

At similar mean value GMPG's samples are NOT nearer the data than GMPO's (0.023-0.025 against 0.018-0.021):
GMPG's optimum is mu exp(beta Q) / Z for the *learned* mu, so its samples keep mu's own distance, while GMPO
regresses onto the reweighted data points themselves. GMPG does cover the data better at similar value
(coverage 0.044 against GMPO's 0.049-0.052; 0.029 against 0.031; 0.148 against 0.187 at a slightly lower
value): the "shape preserved" reading of Appendix C.8 holds, by 7-20 %. GMPO at beta 1.3 sits on the exact
target's curve (pi* at beta 1.3: value 0.76, coverage 0.051); GMPG's extra coverage comes from not having
reached its own target pi* at beta 2 (value 1.00) in 300 policy steps: a partial tilt of mu keeps more of mu's mass.

    python analysis/toy_trajectories.py --out out/figure3.png
"""
from __future__ import annotations

import argparse
import math
from pathlib import Path

import torch

from genrl_core.data import bandits
from genrl_core.data.loading import load
from genrl_core.generative.metrics import mean_nearest_distance
from genrl_core.run.training import build_agent

SMALL = {"backbone": "mlp", "widths": (128, 128, 128), "icfm_sigma": 0.01}  # the toy studies were measured at 0.01
LR_FLOOR = 0.05  # the cosine schedule ends at this fraction of the initial learning rate


def train_toy(algo: str, beta: float, steps: int, seed: int = 0, name: str = "swissroll", cosine: bool = False,
              **extra) -> torch.nn.Module:
    """An agent trained on a toy bandit with the exact critic for `steps` steps (GMPG: mu's and pi's together).

    cosine=True decays the flow-matching learning rate (BC's and GMPO's policy, GMPG's behaviour model over its
    behaviour_steps) from its initial value to LR_FLOOR of it; GMPG's policy-gradient rate stays constant."""
    data = load(f"toy/{name}-v0")
    torch.manual_seed(seed)
    rl = {} if algo == "bc" else {"beta": beta, "critic_steps": 0}  # the exact critic: no critic phase
    if algo == "gmpg":
        rl["log_ratio_scale"] = "nats"  # these toy studies' betas are on Eq. 8's printed (nats) scale
    agent = build_agent(algo, 1, 2, {**SMALL, **rl, **extra})
    if algo != "bc":
        agent.critic = bandits.ExactCritic(name, float(data.reward.mean()))
    opt, fm_steps = (agent.behaviour_opt, agent.cfg.behaviour_steps) if algo == "gmpg" else (agent.opt, steps)
    lr0 = opt.param_groups[0]["lr"]
    gen = torch.Generator().manual_seed(seed)
    for step in range(steps):
        if cosine and step < fm_steps:
            frac = LR_FLOOR + (1 - LR_FLOOR) * 0.5 * (1 + math.cos(math.pi * step / fm_steps))
            for group in opt.param_groups:
                group["lr"] = lr0 * frac
        agent.update(data.sample(256, gen), step)
    return agent


def top_half(data: torch.Tensor, name: str = "swissroll") -> torch.Tensor:
    """The data points whose value is above the median (the part a policy improvement should keep covering)."""
    v = bandits.value(name, data)
    return data[v > v.median()]


def sample_report(x: torch.Tensor, data: torch.Tensor, name: str = "swissroll") -> dict:
    """Mean value, sample-to-data distance and coverage (data-to-sample distance, all and top half) of samples x."""
    return {"value": float(bandits.value(name, x).mean()), "near": mean_nearest_distance(x, data),
            "cov": mean_nearest_distance(data, x), "cov_top": mean_nearest_distance(top_half(data, name), x)}


def trajectory_report(agent, data: torch.Tensor, n: int = 2000, steps: int = 32, name: str = "swissroll") -> dict:
    """sample_report of the final samples, plus the mean over intermediate times of the distances between the
    states x_t and the data noised to the same t (traj_near: state to noised data; traj_cov: noised data to state).

    `agent` is an agent (its policy is used) or a GenerativeModel (e.g. GMPG's behaviour model)."""
    torch.manual_seed(1)
    model = getattr(agent, "policy", agent)
    with torch.no_grad():
        times, path = model.sample_path(torch.zeros(n, 1), steps=steps)
    near, cov = [], []
    for i in range(1, steps):  # intermediate states against the data pushed to the same t by the path
        t = times[i].expand(data.shape[0])
        ref = model.path.alpha(t)[:, None] * data + model.path.sigma(t)[:, None] * torch.randn_like(data)
        near.append(mean_nearest_distance(path[i], ref))
        cov.append(mean_nearest_distance(ref, path[i]))
    return {**sample_report(path[-1], data, name), "traj_near": sum(near) / len(near),
            "traj_cov": sum(cov) / len(cov), "path": path, "times": times}


def tilted_data(pool: torch.Tensor, beta: float, n: int = 2000, name: str = "swissroll") -> torch.Tensor:
    """The exact target pi* ~ mu exp(beta Q) with mu the data: `pool` (held-out data) resampled by exp(beta Q)."""
    w = torch.softmax(beta * bandits.value(name, pool), 0)
    return pool[torch.multinomial(w, n, replacement=True, generator=torch.Generator().manual_seed(0))]


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


def train_model(model: str, beta: float, steps: int, policy_steps: int, lr: float, seed: int = 0) -> torch.nn.Module:
    """BC, GMPO or GMPG with the same backbone and the same flow-matching budget (see the docstring)."""
    if model == "bc":
        return train_toy("bc", 0.0, steps, seed, lr=lr, cosine=True)
    if model == "gmpo":
        return train_toy("gmpo", beta, steps, seed, lr=lr, cosine=True, weight_norm="batch")
    return train_toy("gmpg", beta, steps + policy_steps, seed, lr=3e-4, behaviour_lr=lr, behaviour_steps=steps,
                     train_steps=32, trace="exact", cosine=True)


ROW = "{:10s} {:5s}  {:10.3f}  {:14.4f}  {:8.4f}  {:12.4f}  {:9.4f}  {:8.4f}"


def print_row(label: str, beta: str, r: dict) -> None:
    print(ROW.format(label, beta, r["value"], r["near"], r["cov"], r["cov_top"], r.get("traj_near", float("nan")),
                     r.get("traj_cov", float("nan"))), flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--gmpo-betas", default="1,1.3", help="comma-separated betas of GMPO")
    p.add_argument("--gmpg-betas", default="2", help="comma-separated betas of GMPG (reaches pi*'s value slower)")
    p.add_argument("--steps", type=int, default=10000, help="flow-matching steps of BC, GMPO and GMPG's mu")
    p.add_argument("--lr", type=float, default=3e-3, help="initial flow-matching learning rate (cosine decay)")
    p.add_argument("--policy-steps", type=int, default=300, help="GMPG's policy-gradient steps after mu")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="out/figure3.png")
    args = p.parse_args()
    full = load("toy/swissroll-v0").action
    data, pool = full[:2000], full[2000:]
    print("model      beta   mean value  sample-to-data  coverage  coverage-top  traj-near  traj-cov")
    print_row("data", "-", sample_report(pool[:2000], data))
    gmpo_betas = [float(b) for b in args.gmpo_betas.split(",") if b]
    gmpg_betas = [float(b) for b in args.gmpg_betas.split(",") if b]
    for beta in sorted(set(gmpo_betas + gmpg_betas)):
        print_row("pi*", f"{beta:g}", sample_report(tilted_data(pool, beta), data))
    pictures = {}
    bc = train_model("bc", 0.0, args.steps, 0, args.lr, args.seed)
    print_row("BC", "-", trajectory_report(bc, data))
    runs = [("GMPO", "gmpo", b) for b in gmpo_betas] + [("GMPG", "gmpg", b) for b in gmpg_betas]
    for label, model, beta in runs:
        agent = train_model(model, beta, args.steps, args.policy_steps, args.lr, args.seed)
        rep = trajectory_report(agent, data)
        print_row(label, f"{beta:g}", rep)
        pictures.setdefault(label, rep)  # the picture: each model at its first beta
        if model == "gmpg":
            mu = trajectory_report(agent.behaviour, data)
            print_row("GMPG's mu", f"{beta:g}", mu)
            pictures.setdefault("GMPG's mu", mu)
    draw(pictures, data, Path(args.out))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
