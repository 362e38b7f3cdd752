"""Issue 20's check of the faithful defaults: BC, GMPO, GMPG and GTP on one D4RL-style Hopper-v5 medium dataset at
one fixed budget of gradient steps, several seeds, D4RL-normalised scores (mean +- std over seeds, final and best).

    python -m genrl_core.datasets make --env Hopper-v5 --kinds medium --total-steps 200000 --dataset-steps 100000
    python benchmarks/fidelity_hopper.py run gmpo:0 gmpo:1 bc:0 ...   # runs in turn, each resumable (--out)
    python benchmarks/fidelity_hopper.py table                         # the table of what has been run

Every run trains `--steps` gradient steps at batch 256 with a 256x3 MLP backbone (the paper's residual U-Net and
batch 4096 do not fit a CPU budget) and evaluates every `--eval-every` steps over 10 episodes. GMPO and GMPG follow
Algorithms 1 and 3 (critic, and mu for GMPG, first; then the policy with them fixed), with the authors' hopper-medium
beta, clamp and policy learning rate; their phase lengths split the same budget.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

DATASET = "local/hopper/medium-v0"
_NET = {"backbone": "mlp", "widths": (256, 256, 256), "sampling_steps": 31, "loglik_steps": 8}


def variants(steps: int) -> dict[str, tuple[str, dict]]:
    """name -> (algorithm, overrides) at a budget of `steps` gradient steps."""
    half = steps // 2
    return {
        "bc": ("bc", {**_NET, "path": "gvp"}),
        # hopper-medium in the authors' config: GVP, beta 16, clamp 1000, critic lr 3e-4; critic phase = half the budget
        "gmpo": ("gmpo", {**_NET, "path": "gvp", "beta": 16.0, "max_weight": 1000.0, "critic_lr": 3e-4,
                          "critic_steps": half}),
        # the same with IQL's own hopper temperature and clamp (beta 3, 100): a choice, for comparison
        "gmpo_b3": ("gmpo", {**_NET, "path": "gvp", "beta": 3.0, "max_weight": 100.0, "critic_lr": 3e-4,
                             "critic_steps": half}),
        # GMPG-VPSDE, hopper-medium: beta 20 (bits), policy lr 3e-5, T 1000 -> 16 Hutchinson steps here; mu and the
        # critic take all but the last 3% of the budget
        "gmpg": ("gmpg", {**_NET, "path": "vpsde", "beta": 20.0, "lr": 3e-5, "critic_lr": 3e-4,
                          "behaviour_steps": steps - steps * 3 // 100, "critic_steps": steps - steps * 3 // 100,
                          "train_steps": 16}),
        "gtp": ("gtp", {}),  # GTP's defaults (K = 5, its own TD critic trained alongside)
    }


def run(jobs: list[str], out: Path, steps: int, eval_every: int, episodes: int) -> None:
    from genrl_core.train import train

    table = variants(steps)
    for job in jobs:
        name, seed = job.split(":")
        algo, overrides = table[name]
        policy_eval = steps * 3 // 100 // 3 if algo == "gmpg" else 0  # GMPG: 3 evaluations of its policy phase
        train(algo, DATASET, steps=steps, seed=int(seed), batch_size=256, eval_every=eval_every,
              eval_episodes=episodes, out=str(out / f"{name}-s{seed}"), resume=True, overrides=overrides,
              policy_eval_every=policy_eval)


def summary(out: Path) -> str:
    """Markdown: per variant, the final and best D4RL-normalised score over seeds (mean +- std), and the seeds."""
    lines = ["| variant | seeds | final score | best score | final per seed | steps | dataset score (D4RL) |",
             "|---|---|---|---|---|---|---|"]
    for name in variants(1):
        runs = sorted(out.glob(f"{name}-s*/metrics.jsonl"))
        rows = [[json.loads(x) for x in open(r)] for r in runs]
        rows = [r for r in rows if r]
        if not rows:
            continue
        final = np.array([r[-1]["score_mean"] for r in rows])
        best = np.array([max(x["score_mean"] for x in r) for r in rows])
        lines.append(f"| {name} | {len(rows)} | {final.mean():.1f} +- {final.std():.1f} | {best.mean():.1f} +- "
                     f"{best.std():.1f} | {' / '.join(f'{v:.1f}' for v in final)} | "
                     f"{'/'.join(str(r[-1]['step']) for r in rows)} | |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("command", choices=["run", "table"])
    p.add_argument("jobs", nargs="*", help="name:seed, name one of " + ", ".join(variants(1)))
    p.add_argument("--out", type=Path, default=Path("out/fidelity_hopper"))
    p.add_argument("--steps", type=int, default=50_000)
    p.add_argument("--eval-every", type=int, default=10_000)
    p.add_argument("--episodes", type=int, default=10)
    args = p.parse_args(argv)
    if args.command == "run":
        run(args.jobs, args.out, args.steps, args.eval_every, args.episodes)
    print(summary(args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
