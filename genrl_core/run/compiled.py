"""Compiled updates and sampling: an agent's networks run through torch.compile (inductor), the same losses as eager.

    agent = compile_agent(build_agent("gmpo", obs_dim, act_dim).to(device))   # in place; returns the agent

What is compiled is each network's forward, not a whole update(): updates branch in Python on the step, step
optimisers and call .backward(), which a compiled region would split into many graphs; a network's forward (and
its backward, by AOTAutograd) is one graph that every algorithm reaches the same way. The networks are the outermost
generative backbones (ResidualUNet, MLPBackbone), Q / V nets and plain MLPs (nn.Sequential) of the agent, wherever
they sit (policy, behaviour model, critic, targets, EMA copies, GTP's flow map, QGPO's energy, SRPO's actor).

Each network call picks its path at the call:
- compiled when its tensor inputs need no gradient: the matching losses, the critics' TD / expectile steps, the
  targets and everything under no_grad (acting, candidate sampling);
- compiled through a recomputing Function when an input needs a gradient (DQL's actions sampled with their gradient,
  Q at the policy's action, an energy's gradient): AOTAutograd's backward cannot be differentiated again, so a
  backward taken with create_graph (a divergence, the Hutchinson trace: GMPG's log-likelihoods) recomputes that call
  eager and differentiates the recomputation; from then on that network's input-gradient calls run eager (CUDA
  graphs: eager from the start);
- eager for seed-packed (vmap) calls, whose batched tensors torch.compile does not take.
The compiled regions draw no random numbers, so the agent's random streams are those of the eager run.

The sampler: on CPU (inductor's default mode) the network step of each generative model's fast sampler
(fast_sampling.FastNet.pred, which act() and the candidate draws use) is compiled too, one graph for all solver
steps; act() of other agents runs the compiled networks where it calls them. On CUDA the mode is "reduce-overhead"
(CUDA graphs; outputs cloned out of the graphs' memory), and act() of agents whose policy is sampled by fast_sample
replays the whole solve as one CUDA graph (CudaGraphSampler, the same samples).
"""
from __future__ import annotations

import os
import shutil
import weakref
from typing import Any, Callable

import torch
from torch import nn

from genrl_core.algorithms.base import Agent, GenerativeAgent
from genrl_core.generative.fast_sampling import CudaGraphSampler, fast_net, supported
from genrl_core.generative.model import GenerativeModel
from genrl_core.generative.networks import DoubleQNet, MLPBackbone, QNet, ResidualUNet, VNet
from genrl_core.torch_compat import is_batchedtensor, keep_compiled_backward

NETWORKS = (ResidualUNet, MLPBackbone, DoubleQNet, QNet, VNet, nn.Sequential)  # what compile_agent compiles
MODES = ("default", "reduce-overhead", "max-autotune")
_SAMPLERS: "weakref.WeakKeyDictionary[GenerativeModel, CompiledForward]" = weakref.WeakKeyDictionary()  # compiled


def default_mode(device: str | torch.device) -> str:
    """The compile mode used on `device`: CUDA graphs (reduce-overhead) on CUDA, inductor's default elsewhere."""
    return "reduce-overhead" if torch.device(device).type == "cuda" else "default"


def networks(root: nn.Module) -> list[tuple[str, nn.Module]]:
    """(name, module) of the outermost NETWORKS inside `root` (not descending into one once found)."""
    found: list[tuple[str, nn.Module]] = []

    def walk(prefix: str, module: nn.Module) -> None:
        for name, child in module.named_children():
            full = f"{prefix}.{name}" if prefix else name
            if isinstance(child, NETWORKS):
                found.append((full, child))
            else:
                walk(full, child)

    walk("", root)
    return found


def _leaves(args: tuple[Any, ...], kwargs: dict[str, Any]) -> list[torch.Tensor]:
    return [a for a in (*args, *kwargs.values()) if isinstance(a, torch.Tensor)]


def call_kind(args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    """How a network call with these arguments runs: "packed" (a functorch-batched input: eager), "input_grad" (an
    input that needs a gradient, with grad mode on) or "plain" (gradients, if any, reach the parameters only)."""
    tensors = _leaves(args, kwargs)
    if any(is_batchedtensor(t) for t in tensors):
        return "packed"
    return "input_grad" if torch.is_grad_enabled() and any(t.requires_grad for t in tensors) else "plain"


def eager_call(args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
    """Whether a network call with these arguments must run eager on a network whose backward has been
    differentiated (see CompiledForward): a seed-packed input, or an input that needs a gradient."""
    return call_kind(args, kwargs) != "plain"


class _Recomputed(torch.autograd.Function):
    """A compiled call whose input gradient may be differentiated again: forward and first-order backward by the
    compiled graph; a backward run with create_graph recomputes the call eager and differentiates that instead
    (AOTAutograd's backward cannot be differentiated). Inputs: the CompiledForward, the call's arguments with the
    tensors taken out, their positions, the number of tensors, then the tensors and the parameters needing grad."""

    @staticmethod
    def forward(ctx, call: "CompiledForward", args: list[Any], where: list[int], n: int,
                *tensors: torch.Tensor) -> torch.Tensor:
        inputs, params = tensors[:n], tensors[n:]
        with torch.enable_grad():
            leaves = [t.detach().requires_grad_(t.requires_grad) for t in inputs]
            out = call.compiled(*_put(args, where, leaves))
        ctx.call, ctx.args, ctx.where, ctx.leaves, ctx.out, ctx.params = call, args, where, leaves, out, params
        ctx.save_for_backward(*inputs)
        return out.detach()

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        inputs = ctx.saved_tensors
        if torch.is_grad_enabled():  # create_graph: this gradient will be differentiated again
            ctx.call.differentiated_twice = True
            with torch.enable_grad():
                out = ctx.call.eager(*_put(ctx.args, ctx.where, inputs))
            wrt, kw = list(inputs), {"create_graph": True}
        else:
            out, wrt, kw = ctx.out, list(ctx.leaves), {}
        need = [t.requires_grad for t in wrt] + [True] * len(ctx.params)
        found = torch.autograd.grad(out, [t for t, k in zip(wrt, need) if k] + list(ctx.params), grad,
                                    allow_unused=True, retain_graph=True, **kw)
        grads = iter(found)
        return (None, None, None, None, *(next(grads) if k else None for k in need))


def _put(args: list[Any], where: list[int], tensors: Any) -> list[Any]:
    """args with the tensors put back at their positions."""
    out = list(args)
    for i, t in zip(where, tensors):
        out[i] = t
    return out


class CompiledForward:
    """A function (a module's forward, a fast sampler's network) that runs compiled, or eager where it must;
    installed in its place (a module's parameters, state_dict and hooks are untouched).

    Calls whose inputs need a gradient (call_kind "input_grad") run compiled through _Recomputed, so that a gradient
    of the input that is differentiated again (a divergence, the Hutchinson trace) is still exact; once that has
    happened on this network, its input-gradient calls run eager (they would pay a recompute each time). Without
    `params` (the parameters a call may differentiate) and under CUDA graphs, they run eager from the start.
    `calls` counts (compiled, eager) calls."""

    def __init__(self, fn: Callable[..., Any], mode: str, backend: str = "inductor",
                 params: Callable[[], Any] | None = None):
        self.eager, self.params = fn, params
        keep_compiled_backward()  # input-gradient calls may take one graph's backward several times
        self.compiled = torch.compile(self.eager, backend=backend, mode=mode if backend == "inductor" else None)
        self.clone = mode == "reduce-overhead"  # CUDA graphs reuse their output memory at the next replay
        self.differentiated_twice = self.clone or params is None
        self.calls = [0, 0]

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        kind = call_kind(args, kwargs)
        if kind == "packed" or (kind == "input_grad" and (self.differentiated_twice or kwargs)):
            self.calls[1] += 1
            return self.eager(*args, **kwargs)
        self.calls[0] += 1
        if kind == "input_grad":
            where = [i for i, a in enumerate(args) if isinstance(a, torch.Tensor)]
            params = [p for p in self.params() if p.requires_grad]
            return _Recomputed.apply(self, list(args), where, len(where), *(args[i] for i in where), *params)
        out = self.compiled(*args, **kwargs)
        return out.clone() if self.clone and isinstance(out, torch.Tensor) else out


def compile_module(module: nn.Module, mode: str = "default", backend: str = "inductor") -> CompiledForward:
    """Install a CompiledForward on `module` (once: a compiled module is left as it is); returns it. backend:
    torch.compile's; "aot_eager" traces forward and backward as inductor gets them but generates no code (a check
    in seconds rather than a compile)."""
    _check_mode(mode)
    current = module.__dict__.get("forward")
    if isinstance(current, CompiledForward):
        return current
    module.forward = CompiledForward(module.forward, mode, backend, module.parameters)
    return module.forward


def _check_mode(mode: str) -> None:
    if mode not in MODES:
        raise ValueError(f"unknown compile mode {mode!r}; valid: {', '.join(MODES)}")


def compile_sampler(model: GenerativeModel, mode: str = "default", backend: str = "inductor") -> bool:
    """Compile the network step of the model's fast sampler (fast_sampling.FastNet.pred: one graph for every solver
    step, the weights read where the sampler keeps them); False where fast_sample does not cover the backbone."""
    _check_mode(mode)
    if not isinstance(model.net, (ResidualUNet, MLPBackbone)):
        return False
    if model not in _SAMPLERS:
        fast = fast_net(model)
        fast.pred = _SAMPLERS[model] = CompiledForward(fast.pred, mode, backend)
    return True


def _graph_act(agent: GenerativeAgent) -> Callable[[torch.Tensor], torch.Tensor]:
    """act() of a GenerativeAgent by one CUDA graph per (batch, model) where fast_sample applies (same samples),
    else its own act()."""
    samplers: dict[int, CudaGraphSampler] = {}
    plain = agent.act

    @torch.no_grad()
    def act(obs: torch.Tensor) -> torch.Tensor:
        model = agent.acting_model()
        if obs.device.type != "cuda" or not supported(model, agent.cfg.solver):
            return plain(obs)
        sampler = samplers.setdefault(id(model), CudaGraphSampler(model))
        return sampler(obs, solver=agent.cfg.solver, steps=agent.cfg.sampling_steps)

    return act


CXX_NAMES = ("g++", "clang++", "c++")  # inductor's CPU code generation needs one of these (or $CXX)


def check_cpu_compiler() -> None:
    """One clear error when no C++ compiler is on PATH: inductor compiles CPU kernels with one."""
    names = (os.environ.get("CXX", ""), *CXX_NAMES)
    if not any(shutil.which(n) for n in names if n):
        raise RuntimeError(f"compile on CPU needs a C++ compiler for inductor ({', '.join(CXX_NAMES)} or $CXX); none "
                           "found on PATH: install one (e.g. apt-get install g++) or train without compile")


def compile_agent(agent: Agent, mode: str | None = None, backend: str = "inductor") -> Agent:
    """Compile the agent's networks in place (see the module docstring); mode None: default_mode of the agent's
    device; backend as compile_module's. Returns the agent."""
    device = next(agent.parameters()).device
    mode = mode or default_mode(device)
    if backend == "inductor" and device.type == "cpu":
        check_cpu_compiler()
    for _, module in networks(agent):
        compile_module(module, mode, backend)
    if device.type == "cuda" and type(agent).act is GenerativeAgent.act:
        agent.act = _graph_act(agent)
    elif device.type != "cuda":
        for model in agent.modules():
            if isinstance(model, GenerativeModel):
                compile_sampler(model, mode, backend)
    return agent


def compiled_calls(agent: Agent) -> dict[str, tuple[int, int]]:
    """Per compiled network of the agent: (compiled calls, eager calls) so far; a fast sampler's network as
    '<model>.sampler'."""
    out = {}
    for name, module in networks(agent):
        fwd = module.__dict__.get("forward")
        if isinstance(fwd, CompiledForward):
            out[name] = (fwd.calls[0], fwd.calls[1])
    for name, model in agent.named_modules():
        if isinstance(model, GenerativeModel) and model in _SAMPLERS:
            out[f"{name}.sampler"] = tuple(_SAMPLERS[model].calls)
    return out
