"""The private Ray API that tune_jobs/ray_compat.py relies on still exists in the installed Ray (no cluster started).

A Ray upgrade that renames or drops one of them fails here, in seconds, instead of in a sweep's first minutes.
"""
from __future__ import annotations

import importlib
import inspect
import os

import pytest
import ray

from tune_jobs import ray_compat


def test_the_checked_ray_version_is_named():
    """A different Ray passes only when the symbols below still hold; the version says what they were read from."""
    assert ray_compat.RAY_VERSION_CHECKED.count(".") == 2
    assert ray_compat.RAY_VERSION_CHECKED in (ray_compat.__doc__ or "")
    assert ray.__version__


@pytest.mark.parametrize("module, name", ray_compat.PRIVATE_SYMBOLS)
def test_each_private_symbol_exists(module, name):
    assert hasattr(importlib.import_module(module), name), f"Ray {ray.__version__} has no {module}.{name}"


def test_the_environment_variable_is_the_one_ray_reads():
    from ray._private import ray_constants

    assert ray_constants.ENABLE_RAY_CLUSTERS_ENV_VAR == ray_compat.SINGLE_MACHINE


@pytest.mark.parametrize("kwarg", ray_compat.INIT_PRIVATE_KWARGS)
def test_ray_init_still_takes_the_private_argument(kwarg):
    """ray.init takes its private arguments through **kwargs: each must still be popped by name."""
    source = inspect.getsource(inspect.unwrap(ray.init))
    assert f'kwargs.pop("{kwarg}"' in source or f"kwargs.pop('{kwarg}'" in source, \
        f"ray.init of Ray {ray.__version__} no longer reads {kwarg}"


def test_the_resolver_takes_a_host_and_is_restored():
    from ray._private import services

    original = services.resolve_ip_for_localhost
    assert list(inspect.signature(original).parameters) == ["host"]
    before = os.environ.get(ray_compat.SINGLE_MACHINE)
    with ray_compat.loopback_node_ip():
        assert services.resolve_ip_for_localhost(ray_compat.LOOPBACK) == ray_compat.LOOPBACK
        assert services.resolve_ip_for_localhost("10.1.2.3") == "10.1.2.3"
        assert os.environ[ray_compat.SINGLE_MACHINE] == "0"
    assert services.resolve_ip_for_localhost is original and os.environ.get(ray_compat.SINGLE_MACHINE) == before
    assert not ray.is_initialized()
