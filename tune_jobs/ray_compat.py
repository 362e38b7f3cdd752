"""Every private Ray API the sweep platform uses, behind plain functions; checked against Ray 2.60.0.

The rest of tune_jobs/ and sweeps/ reaches Ray's internals only through this module: the embedded local Ray is
started with ray.init's private arguments `_node_ip_address` and `_temp_dir`, while
`ray._private.services.resolve_ip_for_localhost` is patched and RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER (read by
`ray._private.ray_constants`) is set to 0, so that GCS, raylet, workers and agents listen on 127.0.0.1 only.
tests/test_ray_compat.py checks, without starting Ray, that each symbol named in PRIVATE_SYMBOLS and
INIT_PRIVATE_KWARGS still exists in the installed Ray, so that an upgrade fails there first.
"""
from __future__ import annotations

import contextlib
import os
from typing import Iterator

RAY_VERSION_CHECKED = "2.60.0"  # the Ray release this module was written and tested against
LOOPBACK = "127.0.0.1"
SINGLE_MACHINE = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"  # "0": Ray processes take 127.0.0.1 as their node IP
# (module, attribute) of each private Ray symbol relied on: the patched resolver, and the constant that the
# environment variable SINGLE_MACHINE sets (its name is ray_constants.ENABLE_RAY_CLUSTERS_ENV_VAR)
PRIVATE_SYMBOLS: tuple[tuple[str, str], ...] = (
    ("ray._private.services", "resolve_ip_for_localhost"),
    ("ray._private.ray_constants", "ENABLE_RAY_CLUSTERS_ENV_VAR"),
    ("ray._private.ray_constants", "ENABLE_RAY_CLUSTER"),
)
INIT_PRIVATE_KWARGS = ("_node_ip_address", "_temp_dir")  # private keyword arguments of ray.init used below


@contextlib.contextmanager
def loopback_node_ip() -> Iterator[None]:
    """Keep 127.0.0.1 as the node IP, so that GCS, raylet, workers and agents listen on the loopback interface
    only: Ray swaps a loopback address for the external one in this process (patched here) and in the processes it
    starts (RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0, which they inherit, makes them use 127.0.0.1)."""
    from ray._private import services

    original, env = services.resolve_ip_for_localhost, os.environ.get(SINGLE_MACHINE)
    services.resolve_ip_for_localhost = lambda host: host if host == LOOPBACK else original(host)
    os.environ[SINGLE_MACHINE] = "0"
    try:
        yield
    finally:
        services.resolve_ip_for_localhost = original
        if env is None:
            os.environ.pop(SINGLE_MACHINE, None)
        else:
            os.environ[SINGLE_MACHINE] = env


def init_local(num_cpus: int | None, temp_dir: str | None) -> str:
    """Start an embedded local Ray bound to 127.0.0.1 (temp_dir: Ray's temp dir, None for Ray's default); the
    address it listens on."""
    import ray

    with loopback_node_ip():
        ray.init(num_cpus=num_cpus, include_dashboard=False, _node_ip_address=LOOPBACK, _temp_dir=temp_dir,
                 log_to_driver=True)
    return LOOPBACK


def allow_multi_node_cli() -> None:
    """Let the `ray` command line of this process add nodes to a cluster (its check reads ENABLE_RAY_CLUSTER, which
    RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 turned off at import)."""
    from ray._private import ray_constants

    ray_constants.ENABLE_RAY_CLUSTER = True
