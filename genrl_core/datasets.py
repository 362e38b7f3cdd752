"""Command line for datasets: `python -m genrl_core.datasets make --env Pendulum-v1 --kinds medium,expert`.

Sub-commands:
  make   train a SAC behaviour policy and save D4RL-style Minari datasets (see genrl_core.data.making); for a
         gymnasium-robotics maze, a waypoint controller's or random data (genrl_core.data.mazes), e.g.
         `make --env PointMaze_UMaze-v3 --kinds waypoint --dataset-steps 200000` -> local/pointmaze/umaze-v0,
         `make --env AntMaze_UMaze-v4 --kinds random --dataset-steps 2000` -> local/antmaze/umaze-random-v0
  list   show the Minari datasets on this machine with their reference scores
Datasets live under $MINARI_DATASETS_PATH (default ~/.minari/datasets). Remote Minari sets are fetched
with `minari download ID` where there is a network.
"""
from __future__ import annotations

import argparse
import sys
import time

from genrl_core.data.making import KINDS, DatasetExistsError, make_datasets
from genrl_core.data.mazes import MAZE_KINDS, is_maze_env, make_maze_datasets
from genrl_core.data.sac import SACConfig


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in text.split(",") if x)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m genrl_core.datasets", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    make = sub.add_parser("make", help="make D4RL-style datasets locally",
                          formatter_class=argparse.ArgumentDefaultsHelpFormatter,
                          description="Train SAC on ENV and save the requested dataset kinds as Minari datasets "
                                      "local/<env>/<kind>-v0. For D4RL-scale MuJoCo data use --total-steps 1000000 "
                                      "--dataset-steps 1000000; Pendulum-v1 needs about --total-steps 10000.")
    make.add_argument("--env", required=True, help="Gymnasium id with Box spaces, e.g. Pendulum-v1, Hopper-v5")
    make.add_argument("--kinds", default=None,
                      help=f"comma-separated subset of {','.join(KINDS)} (default: all); mazes: {','.join(MAZE_KINDS)} "
                           f"(default: waypoint on PointMaze, random on AntMaze)")
    make.add_argument("--root-name", default=None, help="name in the id instead of the env's (local/NAME/kind-v0)")
    make.add_argument("--total-steps", type=int, default=20_000, help="online SAC training steps")
    make.add_argument("--dataset-steps", type=int, default=10_000, help="minimum steps per dataset (whole episodes)")
    make.add_argument("--start-steps", type=int, default=1000, help="random-action warm-up steps of SAC")
    make.add_argument("--checkpoints", type=int, default=20, help="evaluated checkpoints (medium is chosen among them)")
    make.add_argument("--eval-episodes", type=int, default=10, help="episodes per checkpoint evaluation")
    make.add_argument("--ref-episodes", type=int, default=20,
                      help="minimum episodes of the random and expert rollouts (their mean returns are the refs)")
    make.add_argument("--medium-fraction", type=float, default=1 / 3,
                      help="medium target, from random (0) to expert (1)")
    make.add_argument("--hidden", type=_ints, default=(256, 256), help="SAC hidden widths, e.g. 256,256")
    make.add_argument("--lr", type=float, default=3e-4, help="SAC learning rate")
    make.add_argument("--batch-size", type=int, default=256, help="SAC minibatch size")
    make.add_argument("--action-noise", type=float, default=0.3,
                      help="mazes: std of the waypoint controller's Gaussian action noise")
    make.add_argument("--seed", type=int, default=0)
    make.add_argument("--force", action="store_true", help="overwrite existing datasets")
    make.add_argument("--quiet", action="store_true",
                      help="no progress (bars on a terminal, plain lines every 30 s otherwise)")
    sub.add_parser("list", help="list local Minari datasets")
    return parser


def _summary(dataset_id: str) -> str:
    """One line on a local dataset: episodes, steps, mean return and reference scores."""
    import minari
    import numpy as np

    ds = minari.load_dataset(dataset_id)
    meta = ds.storage.metadata
    returns = [float(np.sum(ep.rewards)) for ep in ds.iterate_episodes()]
    return (f"{dataset_id}: {ds.total_episodes} episodes, {ds.total_steps} steps, mean return "
            f"{np.mean(returns):.1f}, ref_min_score {meta.get('ref_min_score')}, "
            f"ref_max_score {meta.get('ref_max_score')}")


def _maze_kinds(env_id: str, text: str | None) -> list[str]:
    """The requested maze kinds; by default waypoint data on PointMaze, random data elsewhere."""
    if text is None:
        return ["waypoint" if env_id.startswith("PointMaze") else "random"]
    return [k for k in text.split(",") if k]


def _make_maze(args: argparse.Namespace) -> dict[str, str]:
    """Maze data (genrl_core.data.mazes) with the command line's settings."""
    return make_maze_datasets(args.env, _maze_kinds(args.env, args.kinds), dataset_steps=args.dataset_steps,
                              noise=args.action_noise, ref_episodes=args.ref_episodes, seed=args.seed,
                              force=args.force)


def _make_sac(args: argparse.Namespace) -> dict[str, str]:
    """SAC-made D4RL-style data (genrl_core.data.making) with the command line's settings."""
    kinds = [k for k in (args.kinds or ",".join(KINDS)).split(",") if k]
    sac = SACConfig(hidden=args.hidden, lr=args.lr, batch_size=args.batch_size)
    return make_datasets(args.env, kinds, root_name=args.root_name, total_steps=args.total_steps,
                         dataset_steps=args.dataset_steps, seed=args.seed, force=args.force,
                         progress=not args.quiet, sac=sac, start_steps=args.start_steps,
                         n_checkpoints=args.checkpoints, eval_episodes=args.eval_episodes,
                         ref_episodes=args.ref_episodes, medium_fraction=args.medium_fraction)


def _make(args: argparse.Namespace) -> int:
    start = time.perf_counter()
    try:
        ids = _make_maze(args) if is_maze_env(args.env) else _make_sac(args)
    except (DatasetExistsError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for dataset_id in ids.values():
        print(_summary(dataset_id))
    print(f"made {len(ids)} datasets in {time.perf_counter() - start:.1f} s")
    return 0


def _list() -> int:
    import minari

    for dataset_id, meta in minari.list_local_datasets().items():
        print(f"{dataset_id}: {meta.get('total_episodes')} episodes, {meta.get('total_steps')} steps, "
              f"refs {meta.get('ref_min_score')} / {meta.get('ref_max_score')}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = _parser().parse_args(argv)
    return _make(args) if args.command == "make" else _list()


if __name__ == "__main__":
    sys.exit(main())
