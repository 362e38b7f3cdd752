"""One training run without Ray: `python -m genrl_core.train --algo gmpo --dataset ID ...`.

Trains in a plain loop, evaluates every --eval-every steps, appends each evaluation to
<out>/metrics.jsonl and saves <out>/checkpoint.pt; --resume continues from that checkpoint with the
same random streams, so a resumed run reproduces an uninterrupted one. Progress goes to stderr: a bar on
a terminal, plain lines otherwise; --tensorboard DIR also writes each evaluation's scalars for TensorBoard.
--precision bf16 on a CPU without native bfloat16 (AVX512-BF16 / AMX) stops with one line, unless
GENRL_ALLOW_SLOW_BF16=1.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys

import torch

from genrl_core import algorithms
from genrl_core.algorithms.config import field_docs
from genrl_core.common import DivergenceError
from genrl_core.generative.networks import PRECISIONS
from genrl_core.run.training import train


FLAG_ALIASES = {"path": ["--model"]}  # the papers call the probability path the "model type" (Table 10)


def _add_config_flags(parser: argparse.ArgumentParser, config_class: type) -> None:
    docs = field_docs(config_class)
    for f in dataclasses.fields(config_class):
        default, flags = f.default, ["--" + f.name.replace("_", "-")] + FLAG_ALIASES.get(f.name, [])
        text = docs[f.name].replace("%", "%%")  # the formatter appends the default
        if isinstance(default, bool):
            parser.add_argument(*flags, type=lambda s: s.lower() in ("1", "true", "yes"), default=default, help=text)
        elif isinstance(default, tuple):
            parser.add_argument(*flags, type=int, nargs="+", default=default, help=text)
        else:
            parser.add_argument(*flags, type=type(default), default=default, help=text)


def main(argv: list[str] | None = None) -> None:
    """Command line: run-level flags, then every field of the chosen algorithm's config dataclass."""
    argv = sys.argv[1:] if argv is None else argv
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--algo", choices=algorithms.names(), default="gmpo")
    algo = pre.parse_known_args(argv)[0].algo
    cls, fixed = algorithms.get(algo)
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--algo", choices=algorithms.names(), default="gmpo", help="algorithm (its config flags follow)")
    p.add_argument("--dataset", required=True, help="Minari id, local/<env>/<kind>-v0, or toy/swissroll-v0")
    p.add_argument("--steps", type=int, default=100_000, help="gradient steps in all")
    p.add_argument("--batch-size", type=int, default=256, help="minibatch size")
    p.add_argument("--eval-every", type=int, default=10_000, help="steps between evaluations")
    p.add_argument("--eval-episodes", type=int, default=10, help="episodes per evaluation")
    p.add_argument("--policy-eval-every", type=int, default=0,
                   help="> 0: also evaluate when the policy phase starts and every this many steps of it")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", help="torch device")
    p.add_argument("--out", default=None, help="directory for metrics.jsonl and checkpoint.pt")
    p.add_argument("--resume", action="store_true", help="continue from <out>/checkpoint.pt")
    p.add_argument("--reward-scaling", default="auto", choices=["auto", "locomotion", "antmaze", "none"])
    p.add_argument("--normalize-obs", action="store_true", help="normalise observations (stats saved with the run)")
    p.add_argument("--precision", choices=PRECISIONS, default="fp32",
                   help="fp32, or bf16: the generative backbones' matmuls in bfloat16 during updates (critics fp32)")
    p.add_argument("--tensorboard", default=None, metavar="DIR",
                   help="write each evaluation's numeric metrics as TensorBoard scalars to DIR "
                        "(view: tensorboard --logdir DIR)")
    p.add_argument("--no-progress", action="store_true",
                   help="no progress on stderr (default: a bar on a terminal, else a plain line every 30 s)")
    _add_config_flags(p.add_argument_group(f"{algo} config ({cls.config_class.__name__})"), cls.config_class)
    args = vars(p.parse_args(argv))
    given = {f.name: (tuple(args[f.name]) if isinstance(args[f.name], list) else args[f.name], f.default)
             for f in dataclasses.fields(cls.config_class)}
    cfg = {k: v for k, (v, default) in given.items() if v != default}  # only what the user changed
    try:
        train(algo, args["dataset"], steps=args["steps"], seed=args["seed"], batch_size=args["batch_size"],
              eval_every=args["eval_every"], eval_episodes=args["eval_episodes"], out=args["out"],
              resume=args["resume"], device=args["device"], overrides=cfg, reward_scaling=args["reward_scaling"],
              normalize_obs=args["normalize_obs"], precision=args["precision"],
              policy_eval_every=args["policy_eval_every"], progress=not args["no_progress"],
              tensorboard=args["tensorboard"])
    except (ValueError, DivergenceError) as err:
        sys.exit(f"error: {err}")


if __name__ == "__main__":
    main()
