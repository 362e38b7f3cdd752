"""Where a sweep's trials run: joining a Ray cluster or starting an embedded local Ray, and what it offers.

connect() joins the cluster named by --address or RAY_ADDRESS; the paper preset also joins a cluster already
running on this machine (as under `ray submit`); otherwise it starts an embedded local Ray bound to 127.0.0.1
(through tune_jobs.ray_compat, the one module that touches Ray's private API). The other functions read the
connected cluster: the GPU share a trial gets by default, and whether it spans several hosts.
"""
from __future__ import annotations

import argparse
import os

from tune_jobs import ray_compat


def connect(args: argparse.Namespace) -> str:
    """Join the cluster (--address, RAY_ADDRESS, or a running one for the paper preset) or start local Ray; where
    the trials run, in words."""
    import ray

    address = args.address or os.environ.get("RAY_ADDRESS")
    if address:
        ray.init(address=address, log_to_driver=True)
        return f"cluster at {address}"
    if args.preset == "paper":
        try:
            ray.init(address="auto", log_to_driver=True)
            return "the cluster running on this machine"
        except ConnectionError:
            pass
    host = ray_compat.init_local(args.num_cpus or os.cpu_count(), args.temp_dir)
    return f"embedded local Ray on {host}"


def gpus_per_trial(args: argparse.Namespace) -> float:
    """--gpus-per-trial, else a quarter GPU when the connected cluster has GPUs, else none."""
    import ray

    if args.gpus_per_trial is not None:
        return args.gpus_per_trial
    return 0.25 if ray.cluster_resources().get("GPU", 0) > 0 else 0.0


def host_count() -> int:
    """Hosts with a live node in the connected cluster."""
    import ray

    return len({n["NodeManagerHostname"] for n in ray.nodes() if n["Alive"]})


def shutdown() -> None:
    """Disconnect from the cluster (and stop the embedded local Ray)."""
    import ray

    ray.shutdown()
