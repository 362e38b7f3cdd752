"""Fast sampling: the same samples as GenerativeModel.sample, with less per-step overhead than the network.

    x = fast_sample(model, cond, solver="euler", steps=32, noise=z)   # == model.sample(..., noise=z) to rounding

What it removes from each solver step (the arithmetic is unchanged):
- the time embedding and every block's embedding projection: computed for all the solver's stage times, and
  the condition's projection once per call, before the loop (one [n_times, 32] x [32, sum widths] matmul);
- nn.Module calls: the backbone runs as a plain sequence of addmm / silu on weights kept transposed and
  contiguous (the faster layout for small batches), refreshed in place whenever a parameter changes;
- the skip concatenations' activations, which reuse the down path's SiLU outputs;
- the prediction -> velocity (or eps) conversion, reduced to two per-time scalars c_x, c_p (v = c_x x + c_p pred).
The solver steps themselves are solvers.py's own (euler, midpoint, rk4, dpm2), fed by a field that walks the
precomputed stage times in call order. On CUDA, `CudaGraphSampler` captures a whole K-step solve in one graph.
Backbones other than ResidualUNet / MLPBackbone, adaptive solvers and gradients fall back to the plain sampler.
"""
from __future__ import annotations

import weakref
from typing import Callable

import torch
import torch.nn.functional as F

from genrl_core.generative import solvers
from genrl_core.torch_compat import own_parameters, parameter_version
from genrl_core.generative.model import GenerativeModel
from genrl_core.generative.networks import MLPBackbone, ResidualUNet

FAST_SOLVERS = ("euler", "midpoint", "rk4", "dpm2")
_CACHE: "weakref.WeakKeyDictionary[GenerativeModel, FastNet]" = weakref.WeakKeyDictionary()


def supported(model: GenerativeModel, solver: str) -> bool:
    """Whether fast_sample covers this model's backbone and this solver."""
    return solver in FAST_SOLVERS and isinstance(model.net, (ResidualUNet, MLPBackbone))


# --- the backbone as plain ops -------------------------------------------------------------------------------

def _linears(net: torch.nn.Module) -> list[torch.nn.Linear]:
    return [m for m in net.modules() if isinstance(m, torch.nn.Linear)]


class FastNet:
    """An inference-only, functional copy of a ResidualUNet or MLPBackbone (transposed contiguous weights).

    `refresh()` copies the module's current parameters in place (cheap; done when any parameter changed), so
    captured CUDA graphs stay valid. `prepare(times, cond)` precomputes everything that depends on time or the
    condition only; `pred(x, j)` is then the network output at x and time times[j].
    """

    def __init__(self, net: torch.nn.Module):
        self.net, self.unet = net, isinstance(net, ResidualUNet)
        self._modules = [m for m in net.modules() if own_parameters(m)]  # parameters looked up at each refresh
        self._weights_seen: tuple[tuple[int, int], ...] = ()
        self.w: dict[str, torch.Tensor] = {}
        self.fields: dict[tuple, "FastField"] = {}
        self.refresh()

    # weights -----------------------------------------------------------------------------------------------
    def _fresh_weights(self) -> dict[str, torch.Tensor]:
        """The derived weight tensors of the current parameters (transposed, concatenated, biases folded)."""
        net, w = self.net, {}
        if not self.unet:
            first = net.net[0]
            d_x, d_t = net.x_dim, net.t_embed.w.numel() * 2
            w["x0"], w["t0"] = first.weight[:, :d_x].t(), first.weight[:, d_x:d_x + d_t].t()
            w["c0"], w["b0"] = first.weight[:, d_x + d_t:].t(), first.bias
            for i, lin in enumerate(_linears(net.net)[1:]):
                w[f"L{i}"], w[f"lb{i}"] = lin.weight.t(), lin.bias
            return {k: v.detach().contiguous() for k, v in w.items()}
        blocks = [*net.down, *net.up]
        d_t = net.t_embed[1].in_features
        emb_w = torch.cat([b.emb.weight for b in blocks])  # [sum widths, d_emb]
        w["emb_t"], w["emb_c"] = emb_w[:, :d_t].t(), emb_w[:, d_t:].t()
        w["emb_b"] = torch.cat([b.emb.bias + b.fc1.bias for b in blocks])
        w["in_W"], w["in_b"] = net.inp.weight.t(), net.inp.bias
        for i, b in enumerate(blocks):
            w[f"W1_{i}"], w[f"W2_{i}"] = b.fc1.weight.t(), b.fc2.weight.t()
            if isinstance(b.skip, torch.nn.Linear):
                w[f"Ws_{i}"], w[f"b2_{i}"] = b.skip.weight.t(), b.fc2.bias + b.skip.bias
            else:
                w[f"b2_{i}"] = b.fc2.bias
        w["out_W"], w["out_b"] = net.out[1].weight.t(), net.out[1].bias
        return {k: v.detach().contiguous() for k, v in w.items()}

    @torch.no_grad()
    def refresh(self) -> None:
        """Copy the parameters into the derived weights if any parameter changed since the last copy: in place, or
        new buffers when their device or dtype changed (`.to()`, `.double()`, `load_state_dict(assign=True)` give
        parameters new storage without a new version)."""
        versions = tuple((parameter_version(p), p.data_ptr()) for m in self._modules
                         for p in own_parameters(m).values() if p is not None)
        if versions == self._weights_seen:
            return
        fresh = self._fresh_weights()
        if self.w and all(self.w[k].shape == v.shape and self.w[k].device == v.device and self.w[k].dtype == v.dtype
                          for k, v in fresh.items()):
            for k, v in fresh.items():
                self.w[k].copy_(v)  # in place: CUDA graphs captured on these buffers stay valid
        else:
            self.w = fresh
        self._weights_seen = versions

    # per call -------------------------------------------------------------------------------------------------
    @torch.no_grad()
    def prepare(self, times: torch.Tensor, cond: torch.Tensor | None, batch: int) -> None:
        """Precompute the time and condition terms for the stage times `times` [n] and condition [B, c]."""
        net, w = self.net, self.w
        if not self.unet:
            self.t_proj = net.t_embed(times) @ w["t0"]  # [n, h0]
            self.c_proj = (cond @ w["c0"] if net.cond_dim else torch.zeros_like(w["b0"]).expand(batch, -1)) + w["b0"]
            return
        self.t_proj = net.t_embed(times) @ w["emb_t"]  # [n, sum widths]
        if net.c_embed is not None:
            c = net.c_embed(cond) @ w["emb_c"]
        else:
            c = torch.zeros(batch, 1, device=times.device, dtype=w["emb_b"].dtype)
        self.c_proj = c + w["emb_b"]
        self.splits = [b.fc1.out_features for b in [*net.down, *net.up]]

    def pred(self, x: torch.Tensor, j: int) -> torch.Tensor:
        """Network output at x [B, d] and the j-th prepared time."""
        return self._unet(x, j) if self.unet else self._mlp(x, j)

    def _mlp(self, x: torch.Tensor, j: int) -> torch.Tensor:
        w, n = self.w, len([k for k in self.w if k.startswith("L")])
        h = torch.addmm(self.c_proj + self.t_proj[j], x, w["x0"])
        for i in range(n):
            h = torch.addmm(w[f"lb{i}"], F.silu(h), w[f"L{i}"])
        return h

    def _block(self, i: int, a: torch.Tensor, h: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        """One residual block: a = SiLU(h) given, h its pre-activation input, e the block's embedding term."""
        w = self.w
        z = torch.addmm(e, a, w[f"W1_{i}"])
        skip = torch.addmm(w[f"b2_{i}"], h, w[f"Ws_{i}"]) if f"Ws_{i}" in w else h + w[f"b2_{i}"]
        return torch.addmm(skip, F.silu(z), w[f"W2_{i}"])

    def _unet(self, x: torch.Tensor, j: int) -> torch.Tensor:
        w = self.w
        emb = torch.split(self.c_proj + self.t_proj[j], self.splits, dim=-1)
        h = torch.addmm(w["in_b"], x, w["in_W"])
        a = F.silu(h)
        n_down = len(self.net.down)
        skips = []
        for i in range(n_down):
            h = self._block(i, a, h, emb[i])
            a = F.silu(h)
            skips.append((h, a))
        for i in range(n_down, len(self.splits)):
            s, sa = skips.pop()
            h = self._block(i, torch.cat([a, sa], -1), torch.cat([h, s], -1), emb[i])
            a = F.silu(h)
        s, sa = skips.pop()
        return torch.addmm(w["out_b"], torch.cat([a, sa], -1), w["out_W"])


def fast_net(model: GenerativeModel) -> FastNet:
    """The model's FastNet (made once per model, refreshed when its parameters change)."""
    fast = _CACHE.get(model)
    if fast is None:
        fast = _CACHE[model] = FastNet(model.net)
    fast.refresh()
    return fast


# --- the field a solver sees -----------------------------------------------------------------------------------

def stage_times(solver: str, grid: torch.Tensor, path) -> list[torch.Tensor]:
    """The times at which the solver evaluates its field, in call order (recorded from the solver itself)."""
    seen: list[torch.Tensor] = []
    x = torch.zeros(1, 1, device=grid.device, dtype=grid.dtype)

    def record(t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        seen.append(t.reshape(()))
        return torch.zeros_like(y)

    if solver == "dpm2":
        solvers.dpm_solver_2(record, x, grid, path)
    else:
        solvers.integrate(record, x, grid, solver)
    return seen


def conversion_coefficients(model: GenerativeModel, times: torch.Tensor, kind: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(c_x, c_p) [n] with convert(pred, x, t) = c_x x + c_p pred (every conversion is linear in x and pred)."""
    one, zero = torch.ones_like(times)[:, None], torch.zeros_like(times)[:, None]
    c_x = model.path.convert(zero, one, times, model.prediction, kind)[:, 0]
    c_p = model.path.convert(one, zero, times, model.prediction, kind)[:, 0]
    return c_x, c_p


class FastField:
    """A solver field f(t, x) that ignores t and walks precomputed stage times in call order."""

    def __init__(self, model: GenerativeModel, solver: str, steps: int, device, dtype):
        kind = "eps" if solver == "dpm2" else "velocity"
        self.grid = solvers.time_grid(model.t_max, model.t_min, steps, device, dtype)
        times = stage_times(solver, self.grid, model.path)
        self.times = torch.stack(times)
        c_x, c_p = conversion_coefficients(model, self.times, kind)
        self.c_x, self.c_p = c_x.tolist(), c_p.tolist()  # python scalars: no per-step tensor ops, graph-safe
        self.identity = model.prediction == kind
        self.j = 0

    def bind(self, fast: FastNet) -> "FastField":
        self.fast, self.j = fast, 0
        return self

    def __call__(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        j, self.j = self.j, self.j + 1
        pred = self.fast.pred(x, j)
        if self.identity:
            return pred
        return torch.add(pred * self.c_p[j], x, alpha=self.c_x[j])


def _run(model: GenerativeModel, field: FastField, x: torch.Tensor, solver: str) -> torch.Tensor:
    if solver == "dpm2":
        return solvers.dpm_solver_2(field, x, field.grid, model.path)
    return solvers.integrate(field, x, field.grid, solver)


def _field(model: GenerativeModel, fast: FastNet, solver: str, steps: int, device, dtype) -> FastField:
    """The model's FastField for this solver and grid (made once, kept on its FastNet)."""
    key = (model.prediction, model.t_min, model.t_max, solver, steps, str(device), dtype)
    if key not in fast.fields:
        fast.fields[key] = FastField(model, solver, steps, device, dtype)
    return fast.fields[key]


@torch.no_grad()
def fast_sample(model: GenerativeModel, cond: torch.Tensor | None = None, *, n: int | None = None,
                solver: str = "euler", steps: int = 32, noise: torch.Tensor | None = None) -> torch.Tensor:
    """model.sample(cond, solver=..., steps=..., noise=...) without gradients, by the fast path where supported."""
    if not supported(model, solver):
        return model.sample(cond, n=n, solver=solver, steps=steps, noise=noise)
    solvers.check_solver(solver, steps)
    x = model._prior_noise(cond, n, noise)
    fast = fast_net(model)
    field = _field(model, fast, solver, steps, x.device, x.dtype)
    fast.prepare(field.times, cond, x.shape[0])
    return _run(model, field.bind(fast), x, solver)


# --- CUDA graphs ------------------------------------------------------------------------------------------------

class CudaGraphSampler:
    """One CUDA graph per (batch, solver, steps): a whole solve replayed with a single launch.

        sampler = CudaGraphSampler(model)
        a = sampler(cond, solver="euler", steps=5)   # same as fast_sample(model, cond, ...)

    Noise is drawn outside the graph into a static buffer (so the random stream matches the plain sampler);
    parameter changes are copied into the graph's weight buffers before each replay.
    """

    def __init__(self, model: GenerativeModel):
        self.model = model
        # (batch, solver, steps) -> (graph, noise buffer, condition buffer, output, addresses the graph reads)
        self.graphs: dict[tuple, tuple[torch.cuda.CUDAGraph, torch.Tensor, torch.Tensor | None, torch.Tensor,
                                       tuple[int, ...]]] = {}

    def _capture(self, cond: torch.Tensor | None, batch: int, solver: str, steps: int):
        model, p = self.model, next(self.model.parameters())
        noise = torch.zeros(batch, model.x_dim, device=p.device, dtype=p.dtype)
        cond_buf = cond.clone() if cond is not None else None
        fn: Callable[[], torch.Tensor] = lambda: fast_sample(model, cond_buf, n=batch, solver=solver, steps=steps,
                                                              noise=noise)
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            for _ in range(2):  # warm-up: allocations and lazy inits outside the capture
                fn()
        torch.cuda.current_stream().wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            out = fn()
        return graph, noise, cond_buf, out, self._addresses()

    def _addresses(self) -> tuple[int, ...]:
        """Where the graph's inputs live: the fast weights and the module's own tensors (the time and condition
        embeddings are read from the module)."""
        tensors = (*fast_net(self.model).w.values(), *self.model.parameters(), *self.model.buffers())
        return tuple(t.data_ptr() for t in tensors)

    @torch.no_grad()
    def __call__(self, cond: torch.Tensor | None = None, *, n: int | None = None, solver: str = "euler",
                 steps: int = 32, noise: torch.Tensor | None = None) -> torch.Tensor:
        model = self.model
        batch = cond.shape[0] if cond is not None else n
        key = (batch, solver, steps)
        # fast_net copies changed parameters into the captured weight buffers; storage that moved (a cast, .to(),
        # load_state_dict(assign=True)) needs a new capture
        if key not in self.graphs or self.graphs[key][4] != self._addresses():
            self.graphs[key] = self._capture(cond, batch, solver, steps)
        graph, noise_buf, cond_buf, out, _ = self.graphs[key]
        z = noise if noise is not None else torch.randn(batch, model.x_dim, device=noise_buf.device,
                                                        dtype=noise_buf.dtype)
        noise_buf.copy_(z)
        if cond_buf is not None:
            cond_buf.copy_(cond)
        graph.replay()
        return out.clone()
