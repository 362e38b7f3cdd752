"""Algorithm registry: name -> (Agent class, config overrides). Imported lazily so that each file stays independent."""
from __future__ import annotations

import importlib
from typing import Any

# name: ("module:Class", overrides applied to the class's config dataclass)
_REGISTRY: dict[str, tuple[str, dict[str, Any]]] = {
    "bc": ("genrl_core.algorithms.bc:BC", {}),
    "gmpo": ("genrl_core.algorithms.gmpo:GMPO", {}),
    "gmpg": ("genrl_core.algorithms.gmpg:GMPG", {}),
    "gtp": ("genrl_core.algorithms.gtp:GTP", {}),
    "gtp_bc": ("genrl_core.algorithms.gtp:GTP", {"eta": 0.0}),
    "sfbc": ("genrl_core.algorithms.sfbc:SfBC", {}),
    "idql": ("genrl_core.algorithms.idql:IDQL", {}),
    "qgpo": ("genrl_core.algorithms.qgpo:QGPO", {}),
    "srpo": ("genrl_core.algorithms.srpo:SRPO", {}),
    "dql": ("genrl_core.algorithms.dql:DQL", {}),
}


def names() -> list[str]:
    """All registered algorithm names."""
    return sorted(_REGISTRY)


def get(name: str) -> tuple[type, dict[str, Any]]:
    """(Agent class, config overrides) for an algorithm name; a clear error for an unknown one."""
    if name not in _REGISTRY:
        raise ValueError(f"unknown algorithm {name!r}; valid: {names()}")
    target, overrides = _REGISTRY[name]
    module, cls = target.split(":")
    return getattr(importlib.import_module(module), cls), dict(overrides)
