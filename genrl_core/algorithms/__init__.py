"""Algorithm registry: name -> Entry (the Agent class, its display name, fixed config values). Classes are imported
lazily so that each algorithm file stays independent. Registering a name is all it takes for an algorithm to appear
in the command line (`--algo`), in the sweeps' validation and in the tables (under its display name)."""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Entry", "display_name", "get", "in_order", "names", "register"]


@dataclass(frozen=True)
class Entry:
    """One registered algorithm."""

    target: str  # "module:Class" of its Agent subclass
    display: str  # its name in tables and captions
    fixed: dict[str, Any] = field(default_factory=dict)  # config values this name fixes (a user may not change them)


_REGISTRY: dict[str, Entry] = {  # in the order of the tables' columns
    "gmpo": Entry("genrl_core.algorithms.gmpo:GMPO", "GMPO"),
    "gmpg": Entry("genrl_core.algorithms.gmpg:GMPG", "GMPG"),
    "bc": Entry("genrl_core.algorithms.bc:BC", "BC"),
    "gtp": Entry("genrl_core.algorithms.gtp:GTP", "GTP"),
    "gtp_bc": Entry("genrl_core.algorithms.gtp:GTP", "GTP-BC", {"eta": 0.0}),
    "sfbc": Entry("genrl_core.algorithms.sfbc:SfBC", "SfBC"),
    "qgpo": Entry("genrl_core.algorithms.qgpo:QGPO", "QGPO"),
    "idql": Entry("genrl_core.algorithms.idql:IDQL", "IDQL"),
    "srpo": Entry("genrl_core.algorithms.srpo:SRPO", "SRPO"),
    "dql": Entry("genrl_core.algorithms.dql:DQL", "Diffusion-QL"),
}


def register(name: str, target: str, display: str, fixed: dict[str, Any] | None = None) -> None:
    """Add (or replace) an algorithm: `target` is "module:Class" of an Agent subclass with a config_class."""
    _REGISTRY[name] = Entry(target, display, dict(fixed or {}))


def names() -> list[str]:
    """All registered algorithm names."""
    return sorted(_REGISTRY)


def in_order() -> list[str]:
    """All registered names in registration order (the tables' order)."""
    return list(_REGISTRY)


def display_name(name: str) -> str:
    """The algorithm's name in tables (the name itself when it is not registered)."""
    return _REGISTRY[name].display if name in _REGISTRY else name


def get(name: str) -> tuple[type, dict[str, Any]]:
    """(Agent class, fixed config values) for an algorithm name; a clear error for an unknown one."""
    if name not in _REGISTRY:
        raise ValueError(f"unknown algorithm {name!r}; valid: {names()}")
    entry = _REGISTRY[name]
    module, cls = entry.target.split(":")
    return getattr(importlib.import_module(module), cls), dict(entry.fixed)
