"""Seed packing: N seeds of one configuration trained in one process, as one batched model.

    pack = build_pack("gmpo", [0, 1, 2, 3], data.obs_dim, data.act_dim, "cpu", overrides)
    per_seed = pack.train(data, start=0, n=1000, batch_size=256)   # [{"policy_loss": ...} or "error text", ...]
    with pack.seed_rng(i):                                          # seed i's own random stream for evaluation
        evaluate(pack.agents[i])

Each seed is exactly the unpacked run with that seed (genrl_core.run.training): it is built right after
seed_everything(seed), draws its minibatches from its own generator seeded like the unpacked run's, and
every random draw inside the model (flow times, noise, probes) comes from its own copy of the global torch
random state, captured right after it was built. So packed and unpacked runs with the same seeds give the
same losses, up to the float rounding of batched versus single matrix products.

Engines:
- "vmap" (the fast one): the agent's own `update` runs once per step with a hidden seed dimension
  (functorch's batched tensors, levels driven by hand as torch.func.vmap does). Parameters, buffers and
  optimiser states are stacked into [N, ...] leaves; each nn.Linear becomes one batched matmul over the seeds.
  A TorchFunctionMode does what vmap cannot: `loss.backward()` and `torch.autograd.grad` step outside the vmap
  level and run on the physical [N] losses (seeds share no parameters, so each gets exactly its own gradient),
  `_foreach_*` ops (EMA) run on the stacked leaves, and random draws are made seed by seed from each seed's
  generator (any random op it does not know stops with an error instead of drawing wrongly). Optimisers must
  be elementwise (Adam, AdamW, SGD), which stacked leaves keep exact. Algorithm code needs no change; code
  that branches in Python on tensor values, or clips gradients by a global norm, cannot be packed this way.
- "loop": the seeds train one after another in the same process, each with its own random state swapped in.
  Works for any agent, bitwise equal to unpacked runs, no speed-up (one Ray trial still carries N seeds).
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from genrl_core.algorithms.base import Agent
from genrl_core.common import seed_everything
from genrl_core.torch_compat import (add_batch_dim, disable_functorch, get_unwrapped, is_batchedtensor, maybe_get_bdim,
                                     maybe_get_level, remove_batch_dim, reparametrize_module, tree_map,
                                     vmap_decrement_nesting, vmap_increment_nesting)
from genrl_core.data.offline import OfflineData
from genrl_core.generative.networks import precision_context
from genrl_core.run.compiled import compile_agent
from genrl_core.run.training import Accumulator, build_agent

ENGINES = ("vmap", "loop")
COMPILE_PACKED = ("compile needs seeds trained one by one (torch.compile does not take the vmap engine's batched "
                  "tensors): set seeds_per_trial=1 or pack_engine=loop")


# --- per-seed random streams -------------------------------------------------------------------------------------

class SeedRNG:
    """One seed's copy of the global torch random state: the CPU generator and, on CUDA, the device's."""

    def __init__(self, device: str | torch.device):
        self.device = torch.device(device)
        self.cpu = torch.Generator()
        self.dev = torch.Generator(device=self.device) if self.device.type == "cuda" else None

    def capture(self) -> None:
        """Copy the current global state into this stream."""
        self.cpu.set_state(torch.get_rng_state())
        if self.dev is not None:
            self.dev.set_state(torch.cuda.get_rng_state(self.device))

    def generator(self, device: torch.device | None) -> torch.Generator:
        """The generator a draw on `device` uses (CPU unless it is this stream's CUDA device)."""
        return self.dev if self.dev is not None and device is not None and device.type == "cuda" else self.cpu

    @contextlib.contextmanager
    def active(self) -> Iterator[None]:
        """Make this stream the global torch random state for the block; keep what the block consumed."""
        saved_cpu = torch.get_rng_state()
        saved_dev = torch.cuda.get_rng_state(self.device) if self.dev is not None else None
        torch.set_rng_state(self.cpu.get_state())
        if self.dev is not None:
            torch.cuda.set_rng_state(self.dev.get_state(), self.device)
        try:
            yield
        finally:
            self.capture()
            torch.set_rng_state(saved_cpu)
            if saved_dev is not None:
                torch.cuda.set_rng_state(saved_dev, self.device)

    def state(self) -> dict[str, torch.Tensor]:
        """The stream as tensors (torch.load(weights_only=True) safe)."""
        out = {"cpu": self.cpu.get_state()}
        if self.dev is not None:
            out["cuda"] = self.dev.get_state()
        return out

    def load_state(self, state: dict[str, torch.Tensor]) -> None:
        """Restore what state() returned."""
        self.cpu.set_state(state["cpu"])
        if self.dev is not None and "cuda" in state:
            self.dev.set_state(state["cuda"])


# --- the vmap engine's helpers -----------------------------------------------------------------------------------

_RANDOM_FUNCS = {torch.rand, torch.randn, torch.randint, torch.rand_like, torch.randn_like, torch.randint_like,
                 torch.randperm, torch.multinomial, torch.bernoulli, torch.normal, torch.poisson,
                 torch.Tensor.multinomial, torch.Tensor.bernoulli}
_RANDOM_INPLACE = {torch.Tensor.normal_, torch.Tensor.uniform_, torch.Tensor.bernoulli_, torch.Tensor.random_,
                   torch.Tensor.exponential_, torch.Tensor.geometric_, torch.Tensor.cauchy_,
                   torch.Tensor.log_normal_}
_LIKE = {torch.rand_like: torch.rand, torch.randn_like: torch.randn}


class PackingError(RuntimeError):
    """Something an agent does in update() that the vmap engine cannot pack."""


class _SeedMode(TorchFunctionMode):
    """Inside one vmap level over the seeds: backward/grad on the physical tensors, per-seed random draws."""

    def __init__(self, level: int, rngs: list[SeedRNG]):
        super().__init__()
        self.level, self.rngs, self.n = level, rngs, len(rngs)
        self.special: dict[Any, Callable] = {torch.Tensor.backward: self._backward,
                                             torch.autograd.backward: self._backward,
                                             torch.autograd.grad: self._grad,
                                             torch.Tensor.requires_grad_: self._requires_grad}

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        handler = self.special.get(func)
        if handler is not None:
            return handler(*args, **kwargs)
        if func in _RANDOM_FUNCS:
            return self._draw(func, args, kwargs)
        if func in _RANDOM_INPLACE:
            return self._fill(func, args, kwargs)
        if getattr(func, "__name__", "").startswith("_foreach_"):
            return self._foreach(func, args, kwargs)
        return func(*args, **kwargs)

    # physical <-> batched
    def _ours(self, t: Any) -> bool:
        return isinstance(t, torch.Tensor) and is_batchedtensor(t) and maybe_get_level(t) == self.level

    def _phys(self, t: Any) -> Any:
        """A batched tensor of this level as its physical [N, ...] tensor; anything else unchanged."""
        return remove_batch_dim(t, self.level, self.n, 0) if self._ours(t) else t

    def _wrap(self, t: Any) -> Any:
        return add_batch_dim(t, 0, self.level) if isinstance(t, torch.Tensor) else t

    @contextlib.contextmanager
    def _outside(self) -> Iterator[None]:
        """Leave the vmap level for a moment (levels are numbered by depth, so re-entering gives the same one)."""
        vmap_decrement_nesting()
        try:
            yield
        finally:
            if vmap_increment_nesting(self.n, "error") != self.level:
                raise PackingError("vmap level changed while packing")

    # autograd
    def _backward(self, tensors, grad_tensors=None, retain_graph=None, create_graph=False, inputs=None, **kw):
        grad_tensors = kw.pop("gradient", grad_tensors)
        outs = [tensors] if isinstance(tensors, torch.Tensor) else list(tensors)
        phys = [self._phys(t) for t in outs]
        grads = [torch.ones_like(p) for p in phys] if grad_tensors is None else \
            [self._phys(g) for g in ([grad_tensors] if isinstance(grad_tensors, torch.Tensor) else grad_tensors)]
        if inputs is not None:
            inputs = [_unwrap_level(t, self.level)[0] for t in
                      ([inputs] if isinstance(inputs, torch.Tensor) else inputs)]
        with self._outside():
            torch.autograd.backward(phys, grads, retain_graph=retain_graph, create_graph=create_graph,
                                    inputs=inputs, **kw)

    def _requires_grad(self, t: torch.Tensor, requires_grad: bool = True) -> torch.Tensor:
        """On the tensor autograd sees (a stacked leaf, or the physical tensor of a detached batched one)."""
        with self._outside():
            _unwrap_level(t, self.level)[0].requires_grad_(requires_grad)
        return t

    def _grad(self, outputs, inputs, grad_outputs=None, **kw):
        single_out, single_in = isinstance(outputs, torch.Tensor), isinstance(inputs, torch.Tensor)
        outs = [outputs] if single_out else list(outputs)
        ins = [inputs] if single_in else list(inputs)
        if grad_outputs is None:
            gos = [None] * len(outs)
        else:
            gos = [grad_outputs] if isinstance(grad_outputs, torch.Tensor) else list(grad_outputs)
        phys_out = [self._phys(o) for o in outs]
        gos = [torch.ones_like(p) if g is None else self._phys(g) for g, p in zip(gos, phys_out)]
        raw_in = [_unwrap_level(t, self.level) for t in ins]
        if any(bdim is None for _, bdim in raw_in):
            raise PackingError("torch.autograd.grad with respect to a tensor without the seed dimension")
        with self._outside():
            grads = torch.autograd.grad(phys_out, [r for r, _ in raw_in], gos, **kw)
        return tuple(g if g is None or bdim is None else add_batch_dim(g, bdim, self.level)
                     for g, (_, bdim) in zip(grads, raw_in))

    # randomness
    def _draw(self, func, args, kwargs) -> torch.Tensor:
        if kwargs.get("generator") is not None:
            raise PackingError(f"{func.__name__} with an explicit generator inside update() cannot be packed")
        kw = {k: v for k, v in kwargs.items() if k != "generator"}
        like = args[0] if func in _LIKE or func is torch.randint_like else None
        if like is not None:  # *_like: draw with the logical shape and the tensor's options, as the unpacked run
            device = like.device
            kw = {"dtype": kw.get("dtype") or like.dtype, "device": like.device}
            shape = tuple(like.shape)
            args = (*args[1:], shape) if func is torch.randint_like else (shape,)
            func = torch.randint if func is torch.randint_like else _LIKE[func]
        else:
            device = torch.device(kw["device"]) if kw.get("device") is not None else self._device(args)
        per_seed = []
        for i, rng in enumerate(self.rngs):
            seed_args = tree_map(lambda t: self._phys(t)[i] if self._ours(t) else t, args)
            with self._outside():
                per_seed.append(func(*seed_args, **kw, generator=rng.generator(device)))
        return self._wrap(torch.stack(per_seed))

    def _fill(self, func, args, kwargs) -> torch.Tensor:
        target = args[0]
        if not self._ours(target):
            raise PackingError(f"in-place {func.__name__} on a tensor without the seed dimension cannot be packed")
        phys = self._phys(target)
        for i, rng in enumerate(self.rngs):
            with self._outside():
                func(phys[i], *args[1:], **kwargs, generator=rng.generator(phys.device))
        return target

    def _device(self, args) -> torch.device | None:
        found = [a.device for a in args if isinstance(a, torch.Tensor)]
        return found[0] if found else None

    def _foreach(self, func, args, kwargs):
        leaves = [t for t in _flat(args) if isinstance(t, torch.Tensor)]
        if not any(self._ours(t) for t in leaves):
            return func(*args, **kwargs)
        if not all(self._ours(t) for t in leaves):
            raise PackingError(f"{func.__name__} mixes tensors with and without the seed dimension")
        phys = tree_map(self._phys, args)
        with self._outside():
            out = func(*phys, **kwargs)
        return None if out is None else tree_map(self._wrap, out)


def _flat(args: Any) -> list:
    out: list = []
    tree_map(out.append, args)
    return out


def _unwrap_level(t: torch.Tensor, level: int) -> tuple[torch.Tensor, int | None]:
    """(the tensor autograd sees, its batch dim) of a batched tensor of `level`; (t, None) otherwise."""
    if is_batchedtensor(t) and maybe_get_level(t) == level:
        return get_unwrapped(t), maybe_get_bdim(t)
    return t, None


# --- stacking agents ---------------------------------------------------------------------------------------------

def _stack_tensors(agents: list[Agent]) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """(parameters, buffers) of all agents stacked into [N, ...] leaves (parameters keep requires_grad)."""
    named = [dict(a.named_parameters()) for a in agents]
    params = {k: torch.stack([n[k].detach() for n in named]).requires_grad_(p.requires_grad)
              for k, p in named[0].items()}
    bufs = [dict(a.named_buffers()) for a in agents]
    buffers = {k: torch.stack([b[k] for b in bufs]) for k in bufs[0]}
    return params, buffers


@torch.no_grad()
def _unstack_tensors(agents: list[Agent], params: dict[str, torch.Tensor], buffers: dict[str, torch.Tensor]) -> None:
    for i, agent in enumerate(agents):
        for k, p in agent.named_parameters():
            p.copy_(params[k][i])
        for k, b in agent.named_buffers():
            b.copy_(buffers[k][i])


def _stack_optimizer(opts: list[torch.optim.Optimizer], leaf_of: dict[int, torch.Tensor]) -> torch.optim.Optimizer:
    """One optimiser of the first one's class and settings over the stacked leaves, its state stacked."""
    first = opts[0]
    groups = [{**{k: v for k, v in g.items() if k != "params"}, "params": [leaf_of[id(p)] for p in g["params"]]}
              for g in first.param_groups]
    stacked = type(first)(groups)
    sds = [o.state_dict() for o in opts]
    state = {idx: {k: (torch.stack([sd["state"][idx][k] for sd in sds])
                       if isinstance(v, torch.Tensor) and k != "step" else v) for k, v in entry.items()}
             for idx, entry in sds[0]["state"].items()}
    stacked.load_state_dict({"state": state, "param_groups": sds[0]["param_groups"]})
    return stacked


def _unstack_optimizer(stacked: torch.optim.Optimizer, opts: list[torch.optim.Optimizer]) -> None:
    sd = stacked.state_dict()
    for i, opt in enumerate(opts):
        state = {idx: {k: (v[i].clone() if isinstance(v, torch.Tensor) and k != "step" else v)
                       for k, v in entry.items()} for idx, entry in sd["state"].items()}
        opt.load_state_dict({"state": state, "param_groups": opt.state_dict()["param_groups"]})


def _optimizer_slots(agent: Agent) -> dict[str, tuple[nn.Module, str]]:
    """name -> (module, attribute) of every optimiser the agent holds (as Agent._optimizers names them)."""
    modules = dict(agent.named_modules())
    out = {}
    for name in agent._optimizers():
        mod_name, _, attr = name.rpartition(".")
        out[name] = (modules[mod_name], attr)
    return out


@contextlib.contextmanager
def _stacked_optimizers(agents: list[Agent], params: dict[str, torch.Tensor]) -> Iterator[None]:
    """Swap the first agent's optimisers for stacked ones over `params`; unstack their states afterwards."""
    first = agents[0]
    leaf_of = {id(p): params[k] for k, p in first.named_parameters()}
    slots = _optimizer_slots(first)
    per_agent = [a._optimizers() for a in agents]
    stacked = {k: _stack_optimizer([opts[k] for opts in per_agent], leaf_of) for k in slots}
    for k, (mod, attr) in slots.items():
        setattr(mod, attr, stacked[k])
    try:
        yield
    finally:
        for k, (mod, attr) in slots.items():
            setattr(mod, attr, per_agent[0][k])
            _unstack_optimizer(stacked[k], [opts[k] for opts in per_agent])


# --- the pack ----------------------------------------------------------------------------------------------------

def read_seeds(acc: Accumulator) -> list[dict[str, float] | str]:
    """Per seed: the mean losses since the last read, or the divergence message (losses held as [N] tensors)."""
    n = next(iter(acc.sums.values())).shape[0] if acc.sums else 0
    bad = {k: v.tolist() for k, v in acc.first_bad.items()}
    sums = {k: (v / acc.counts[k]).tolist() for k, v in acc.sums.items()}
    out: list[dict[str, float] | str] = []
    for i in range(n):
        diverged = [(int(b[i]), k) for k, b in bad.items() if b[i] >= 0]
        out.append(f"training diverged at step {min(diverged)[0]}: loss {min(diverged)[1]!r} became non-finite"
                   if diverged else {k: s[i] for k, s in sums.items()})
    acc.sums, acc.first_bad, acc.counts = {}, {}, {}
    return out


@dataclass
class Pack:
    """N agents of one configuration, each with its batch generator and model random stream."""

    seeds: list[int]
    agents: list[Agent]
    gens: list[torch.Generator]  # minibatch draws (as the unpacked run's generator)
    rngs: list[SeedRNG]  # everything else the unpacked run draws from the global torch state
    engine: str = "vmap"

    def train(self, data: OfflineData, start: int, n: int, batch_size: int,
              precision: str = "fp32") -> list[dict[str, float] | str]:
        """Steps start..start+n-1 for every seed at `precision` (networks.PRECISIONS); per seed its mean losses or its
        divergence message."""
        acc = Accumulator()
        with precision_context(precision):
            if self.one_by_one:
                self._train_loop(data, start, n, batch_size, acc)
            else:
                self._train_vmap(data, start, n, batch_size, acc)
        return read_seeds(acc)

    @property
    def one_by_one(self) -> bool:
        """Whether the seeds train one after another (loop engine, or a single seed) rather than batched by vmap."""
        return self.engine == "loop" or len(self.agents) == 1

    def bind_data(self, data: OfflineData) -> None:
        """Agent.bind_data for each seed when they train one by one (loop engine, or a single seed); the vmap engine's
        batched update samples SfBC / QGPO candidates fresh, since a per-seed cache cannot be built inside it."""
        if self.one_by_one:
            for agent, seed in zip(self.agents, self.seeds):
                agent.bind_data(data, seed)

    @contextlib.contextmanager
    def seed_rng(self, i: int) -> Iterator[None]:
        """Seed i's random stream as the global torch state (for evaluation and anything else outside train)."""
        with self.rngs[i].active():
            yield

    def _train_loop(self, data: OfflineData, start: int, n: int, batch_size: int, acc: Accumulator) -> None:
        per_seed: list[list[dict[str, torch.Tensor]]] = []
        for agent, gen, rng in zip(self.agents, self.gens, self.rngs):
            with rng.active():
                per_seed.append([agent.update(data.sample(agent.batch_size(s, batch_size), gen), s)
                                 for s in range(start, start + n)])
        for j, step in enumerate(range(start, start + n)):
            acc.add({k: torch.stack([out[j][k] for out in per_seed]) for k in per_seed[0][j]}, step)

    def _train_vmap(self, data: OfflineData, start: int, n: int, batch_size: int, acc: Accumulator) -> None:
        first, size = self.agents[0], len(self.agents)
        params, buffers = _stack_tensors(self.agents)
        level = vmap_increment_nesting(size, "error")
        try:
            views = {k: add_batch_dim(v, 0, level) for k, v in {**params, **buffers}.items()}
            mode = _SeedMode(level, self.rngs)
            with _stacked_optimizers(self.agents, params), reparametrize_module(first, views):
                for step in range(start, start + n):
                    batch = self._batch(data, first.batch_size(step, batch_size), level)
                    with mode:
                        out = first.update(batch, step)
                    acc.add({k: remove_batch_dim(v, level, size, 0) if is_batchedtensor(v) else v.expand(size)
                             for k, v in out.items()}, step)
        except PackingError:
            raise
        except RuntimeError as err:
            line = " ".join(str(err).split())[:300]
            raise PackingError(f"{type(first).__name__} cannot be packed by the vmap engine ({line}); "
                               "use pack_engine=loop") from err
        finally:
            vmap_decrement_nesting()
        _unstack_tensors(self.agents, params, buffers)

    def _batch(self, data: OfflineData, batch_size: int, level: int) -> dict[str, torch.Tensor]:
        with disable_functorch():  # plain draws from each seed's own generator
            parts = [data.sample(batch_size, g) for g in self.gens]
            stacked = {k: torch.stack([p[k] for p in parts]) for k in parts[0]}
        return {k: add_batch_dim(v, 0, level) for k, v in stacked.items()}

    def state(self) -> list[dict[str, Any]]:
        """Per seed: agent, batch generator and random stream (torch.load(weights_only=True) safe)."""
        return [{"seed": s, "agent": a.full_state(), "gen": g.get_state(), "rng": r.state()}
                for s, a, g, r in zip(self.seeds, self.agents, self.gens, self.rngs)]

    def load_state(self, state: list[dict[str, Any]]) -> None:
        """Restore what state() returned (the seeds must match)."""
        if [s["seed"] for s in state] != self.seeds:
            raise ValueError(f"checkpoint holds seeds {[s['seed'] for s in state]}, this pack {self.seeds}")
        for s, agent, gen, rng in zip(state, self.agents, self.gens, self.rngs):
            agent.load_full_state(s["agent"])
            gen.set_state(s["gen"])
            rng.load_state(s["rng"])


def build_pack(algo: str, seeds: list[int], obs_dim: int, act_dim: int, device: str,
               overrides: dict[str, Any] | None = None, engine: str = "vmap", compiled: bool = False) -> Pack:
    """N agents of one config, seed i built right after seed_everything(seeds[i]) as an unpacked run is; compiled:
    each agent's networks through torch.compile (run.compiled), for seeds trained one by one (loop engine, or one
    seed): the vmap engine's batched calls would run eager."""
    if engine not in ENGINES:
        raise ValueError(f"unknown packing engine {engine!r}; valid: {', '.join(ENGINES)}")
    if len(set(seeds)) != len(seeds) or not seeds:
        raise ValueError(f"pack seeds must be distinct and at least one, got {seeds}")
    if compiled and engine == "vmap" and len(seeds) > 1:
        raise ValueError(COMPILE_PACKED)
    agents, gens, rngs = [], [], []
    saved = torch.get_rng_state()
    for seed in seeds:
        gen = seed_everything(seed)
        if torch.device(device).type == "cuda":
            gen = torch.Generator(device=device).manual_seed(seed)
        agents.append(build_agent(algo, obs_dim, act_dim, overrides).to(device))
        if compiled:
            compile_agent(agents[-1])
        rng = SeedRNG(device)
        rng.capture()
        gens.append(gen)
        rngs.append(rng)
    torch.set_rng_state(saved)
    return Pack(list(seeds), agents, gens, rngs, engine)
