"""Update steps/s and actions/s of the baselines (SfBC, IDQL, QGPO, SRPO, Diffusion-QL) beside GMPO's, at hopper
size (obs 11, action 3) with the default residual U-Net backbone and each algorithm's default config.

Updates are timed on a `--batch` (default 4096, the paper's) in each algorithm's main phase (after behaviour
pretraining); actions/s on `--act-batch` states (default 256, as the sweeps report). Each figure is the mean over
`--reps` calls after one warm-up call. `--json PATH` writes the table.

SfBC and QGPO draw their behaviour candidates once per dataset state (candidate_cache): here the timed batch is
their bound dataset, whose candidates are drawn before the timed calls and timed apart ("cache s": the cost of
drawing them for the batch's states once; a dataset of N states costs N / batch times that, once per run).
`--no-cache` times the per-update sampling instead.
"""
from __future__ import annotations

import argparse
import json
import time

import torch

from genrl_core.algorithms.behaviour import InSupportAgent
from genrl_core.data import OfflineData
from genrl_core.train import build_agent
from gtp_bench import ACT, OBS, batch_of, per_second  # same hopper-sized batch and timer (benchmarks/ is on sys.path)

ALGOS = ("gmpo", "sfbc", "idql", "qgpo", "srpo", "dql")
MAIN_PHASE = {"gmpo": 0, "sfbc": 10**9, "idql": 0, "qgpo": 10**9, "srpo": 10**9, "dql": 0}  # step of the timed update


def as_dataset(batch: dict[str, torch.Tensor]) -> OfflineData:
    """The batch's transitions as a dataset (the batch is then its rows 0..B-1)."""
    return OfflineData(obs=batch["obs"], action=batch["action"], reward=batch["reward"], next_obs=batch["next_obs"],
                       terminal=batch["terminal"], dataset_id="bench", env_id=None, ref_min_score=None,
                       ref_max_score=None, obs_mean=None, obs_std=None)


def with_cache(agent: torch.nn.Module, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """SfBC / QGPO: the batch bound as their dataset and its candidates drawn (once); the batch with its indices.
    Other agents: the batch as it is."""
    if not isinstance(agent, InSupportAgent):
        return batch
    agent.bind_data(as_dataset(batch), seed=0)
    batch = {**batch, "index": torch.arange(batch["obs"].shape[0], device=batch["obs"].device)}
    agent.cached(batch, "next_obs")
    return batch


def measure(algo: str, batch: dict[str, torch.Tensor], obs: torch.Tensor, reps: int, device: str,
            cache: bool) -> dict[str, float]:
    """Update steps/s and actions/s of one algorithm with its default config (and its candidate cache's build time)."""
    agent = build_agent(algo, OBS, ACT).to(device)
    step, out = MAIN_PHASE[algo], {}
    if cache and isinstance(agent, InSupportAgent):  # unbound, they sample fresh candidates in every update
        t0 = time.perf_counter()
        batch = with_cache(agent, batch)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        out["cache_s"] = time.perf_counter() - t0
    with torch.no_grad():
        acts = per_second(lambda: agent.act(obs), reps, device, warmup=1) * obs.shape[0]
    return {"updates_per_s": per_second(lambda: agent.update(batch, step), reps, device, warmup=1),
            "actions_per_s": acts, **out}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch", type=int, default=4096, help="transitions per update")
    p.add_argument("--act-batch", type=int, default=256, help="states per act() call")
    p.add_argument("--reps", type=int, default=3, help="timed calls per figure")
    p.add_argument("--algos", nargs="+", default=list(ALGOS), choices=ALGOS)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    p.add_argument("--json", default=None, help="write the figures here")
    p.add_argument("--no-cache", action="store_true", help="SfBC / QGPO: fresh candidates in every update")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    batch, obs = batch_of(args.batch, args.device), torch.randn(args.act_batch, OBS, device=args.device)
    res = {a: measure(a, batch, obs, args.reps, args.device, not args.no_cache) for a in args.algos}
    print(f"device {args.device}, batch {args.batch}, act batch {args.act_batch}, torch threads "
          f"{torch.get_num_threads()}, reps {args.reps}")
    print(f"{'algorithm':>10} {'updates/s':>10} {'ms/update':>10} {'actions/s':>10} {'cache s':>10}")
    for algo, r in res.items():
        print(f"{algo:>10} {r['updates_per_s']:10.3f} {1e3 / r['updates_per_s']:10.1f} {r['actions_per_s']:10.1f} "
              f"{r.get('cache_s', float('nan')):10.1f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"device": args.device, "batch": args.batch, "act_batch": args.act_batch, **res}, f, indent=1)


if __name__ == "__main__":
    main()
