"""Every private torch API the core relies on, behind one door. Checked against torch 2.13.0 (the pinned CPU wheel;
tests/test_torch_compat.py fails on an upgrade that removes one).

- Seed packing (run/packing.py) drives functorch's batched tensors by hand, as torch.func.vmap does internally, so
  that N seeds run as one batched model with per-seed generators: the batch-dim and vmap-level primitives of
  torch._C._functorch, _DisableFuncTorch, and torch.nn.utils.stateless's _reparametrize_module.
- Fast sampling (generative/fast_sampling.py) notices changed weights from each parameter's version counter.
- EMA (common.py) uses the fused foreach lerp.
- Compiled networks (run/compiled.py) keep AOTAutograd's backward re-runnable (no donated buffers): an input gradient
  may be taken several times on one graph (the exact trace's d backward passes).
"""
from __future__ import annotations

from typing import Any, ContextManager, Sequence

import torch
import torch._functorch.config as functorch_config
from torch import nn
from torch._C._functorch import _add_batch_dim as add_batch_dim
from torch._C._functorch import _remove_batch_dim as remove_batch_dim
from torch._C._functorch import _vmap_decrement_nesting as vmap_decrement_nesting
from torch._C._functorch import _vmap_increment_nesting as vmap_increment_nesting
from torch._C._functorch import get_unwrapped, is_batchedtensor, maybe_get_bdim, maybe_get_level
from torch.nn.utils.stateless import _reparametrize_module as reparametrize_module
from torch.utils._pytree import tree_map

CHECKED_WITH = "2.13.0"
__all__ = ["CHECKED_WITH", "add_batch_dim", "disable_functorch", "foreach_lerp_", "get_unwrapped", "is_batchedtensor",
           "keep_compiled_backward", "maybe_get_bdim", "maybe_get_level", "own_parameters", "parameter_version",
           "remove_batch_dim", "reparametrize_module", "tree_map", "vmap_decrement_nesting", "vmap_increment_nesting"]


def disable_functorch() -> ContextManager[Any]:
    """A context in which functorch's batching is off (plain tensors, e.g. per-seed random draws)."""
    return torch._C._DisableFuncTorch()


def parameter_version(p: torch.Tensor) -> int:
    """The tensor's in-place modification counter (it rises with every in-place update)."""
    return p._version


def own_parameters(module: nn.Module) -> dict[str, nn.Parameter | None]:
    """The parameters a module holds itself (not its children's)."""
    return module._parameters


def foreach_lerp_(targets: Sequence[torch.Tensor], sources: Sequence[torch.Tensor], weight: float) -> None:
    """targets[i] += weight * (sources[i] - targets[i]) for every i, in place, fused."""
    torch._foreach_lerp_(targets, sources, weight)


def keep_compiled_backward() -> None:
    """Let the backward of graphs AOTAutograd compiles from now on run more than once (retain_graph=True): no donated
    buffers (a memory saving of the saved activations)."""
    functorch_config.donated_buffer = False
