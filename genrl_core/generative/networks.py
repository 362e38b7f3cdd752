"""Networks: time embeddings, generative backbones taking (x, t, condition), and Q / V nets."""
from __future__ import annotations

import contextlib
import functools
import math
import os
import platform
import re
from pathlib import Path
from typing import Callable, Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import nn


PRECISIONS = ("fp32", "bf16")  # precision of the generative backbones in training updates (precision_context)
# The autocast dtype of the backbones, set by precision_context. A module global rather than a ContextVar: gradient
# checkpointing recomputes backbone calls inside backward, which on a GPU runs in the autograd engine's own thread.
_backbone_dtype: torch.dtype | None = None


SLOW_BF16_ENV = "GENRL_ALLOW_SLOW_BF16"  # =1: run bf16 on a CPU without native bfloat16 matmuls anyway
_BF16_FLAGS = ("avx512_bf16", "amx_bf16", "bf16", "sve_bf16")  # x86 AVX512-BF16 / AMX, ARM BF16 / SVE-BF16


def cpu_bf16_support() -> tuple[list[str], str]:
    """(this CPU's native bfloat16 matmul features among _BF16_FLAGS, empty when it has none; the CPU's name), from
    torch.cpu.get_capabilities where torch has it, else /proc/cpuinfo."""
    caps = dict(torch.cpu.get_capabilities()) if hasattr(torch.cpu, "get_capabilities") else {}
    name = str(caps.get("cpu_name") or platform.processor() or "unknown CPU")
    if not caps:
        try:
            info = Path("/proc/cpuinfo").read_text()
        except OSError:
            info = ""
        names = re.findall(r"^model name\s*:\s*(.+)$", info, re.M)
        name = names[0].strip() if names else name
        caps = {flag: True for line in re.findall(r"^(?:flags|Features)\s*:(.*)$", info, re.M) for flag in line.split()}
    return [f for f in _BF16_FLAGS if caps.get(f)], name


def bf16_note(device: str | torch.device) -> str:
    """In words, how bf16 runs on `device`: natively (which feature), or emulated and slow on this CPU."""
    if torch.device(device).type != "cpu":
        return f"bf16 on {torch.device(device).type}: not checked (allowed)"
    flags, name = cpu_bf16_support()
    if flags:
        return f"bf16 native on this CPU ({name}: {', '.join(flags)})"
    return f"bf16 emulated on this CPU ({name}, no avx512_bf16/amx_bf16): slow, figures not representative"


def check_precision(name: str, device: str | torch.device | None = None) -> None:
    """One clear error for a precision that is not one of PRECISIONS; with a CPU `device`, also for bf16 on a CPU
    without native bfloat16 matmuls (emulated: 1.3x slower than fp32 with AVX-512, ~17x with AVX2 only), unless
    GENRL_ALLOW_SLOW_BF16=1. GPUs (any device but the CPU) are not checked."""
    if name not in PRECISIONS:
        raise ValueError(f"unknown precision {name!r}; valid: {', '.join(PRECISIONS)}")
    if name != "bf16" or device is None or torch.device(device).type != "cpu" or os.environ.get(SLOW_BF16_ENV) == "1":
        return
    flags, cpu = cpu_bf16_support()
    if not flags:
        raise ValueError(f"bf16 on this CPU ({cpu}, no avx512_bf16/amx_bf16) runs up to ~17x slower than fp32; use "
                         f"--precision fp32, or a CPU with AMX/AVX512-BF16 or a GPU ({SLOW_BF16_ENV}=1 runs it anyway)")


@contextlib.contextmanager
def precision_context(name: str) -> Iterator[None]:
    """Inside, the generative backbones run at `name`: fp32 as everywhere else, or bf16 = torch.autocast of their
    matmuls to bfloat16 (AMX on recent Xeons, tensor cores on GPUs), float32 weights, float32 output. Critics,
    energies and everything outside the backbones stay float32: a Q of size ~500 has a bfloat16 resolution of ~2,
    more than the advantages that weight the policy."""
    global _backbone_dtype
    check_precision(name)
    before, _backbone_dtype = _backbone_dtype, (torch.bfloat16 if name == "bf16" else None)
    try:
        yield
    finally:
        _backbone_dtype = before


def _at_precision(forward: Callable[..., torch.Tensor]) -> Callable[..., torch.Tensor]:
    """A backbone forward(x, t, cond) run under the precision_context in force (output float32 either way)."""
    @functools.wraps(forward)
    def run(self: nn.Module, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        if _backbone_dtype is None:
            return forward(self, x, t, cond)
        with torch.autocast(x.device.type, dtype=_backbone_dtype):
            return forward(self, x, t, cond).float()
    return run


class GaussianFourierEmbedding(nn.Module):
    """Random Fourier features of a scalar time: [sin(2 pi w t), cos(2 pi w t)], w ~ N(0, scale^2), fixed."""

    def __init__(self, dim: int = 32, scale: float = 30.0):
        super().__init__()
        if dim % 2:
            raise ValueError(f"time embedding dim must be even, got {dim}")
        self.register_buffer("w", torch.randn(dim // 2) * scale)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        proj = 2 * math.pi * t.reshape(-1, 1) * self.w
        return torch.cat([proj.sin(), proj.cos()], dim=-1)


def mlp(sizes: Sequence[int], act: type[nn.Module] = nn.SiLU, out_act: bool = False) -> nn.Sequential:
    """A plain MLP through the given layer sizes."""
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2 or out_act:
            layers.append(act())
    return nn.Sequential(*layers)


class _ResBlock(nn.Module):
    """SiLU-Linear, plus a projection of the (time, state) embedding, SiLU-Linear, residual skip."""

    def __init__(self, d_in: int, d_out: int, d_emb: int):
        super().__init__()
        self.fc1 = nn.Linear(d_in, d_out)
        self.emb = nn.Linear(d_emb, d_out)
        self.fc2 = nn.Linear(d_out, d_out)
        self.skip = nn.Identity() if d_in == d_out else nn.Linear(d_in, d_out)
        self.act = nn.SiLU()

    def forward(self, h: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        z = self.fc1(self.act(h)) + self.emb(emb)
        return self.fc2(self.act(z)) + self.skip(h)

    def fused(self, a: torch.Tensor, h: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        """forward(h, emb) given a = SiLU(h) and e = emb(emb) + fc1.bias (see ResidualUNet.forward)."""
        z = torch.addmm(e, a, self.fc1.weight.t())
        if isinstance(self.skip, nn.Identity):
            skip = h + self.fc2.bias
        else:
            skip = F.linear(h, self.skip.weight, self.skip.bias + self.fc2.bias)
        return torch.addmm(skip, F.silu(z), self.fc2.weight.t())


class ResidualUNet(nn.Module):
    """Residual MLP "U-Net" for generative policies: down widths (512, 256, 128), up path back with skips.

    Inputs x [B, x_dim], t [B] or scalar, cond [B, cond_dim] (cond_dim = 0 for unconditional).
    """

    def __init__(self, x_dim: int, cond_dim: int = 0, widths: Sequence[int] = (512, 256, 128),
                 t_dim: int = 32, cond_emb_dim: int = 64):
        super().__init__()
        self.x_dim, self.cond_dim = x_dim, cond_dim
        self.t_embed = nn.Sequential(GaussianFourierEmbedding(t_dim), nn.Linear(t_dim, t_dim), nn.SiLU(),
                                     nn.Linear(t_dim, t_dim))
        self.c_embed = mlp([cond_dim, cond_emb_dim, cond_emb_dim]) if cond_dim else None
        d_emb = t_dim + (cond_emb_dim if cond_dim else 0)
        self.inp = nn.Linear(x_dim, widths[0])
        dims = [widths[0], *widths]
        self.down = nn.ModuleList(_ResBlock(dims[i], dims[i + 1], d_emb) for i in range(len(widths)))
        rev = list(reversed(widths))  # up path: concat with the matching down output, back to widths[0]
        self.up = nn.ModuleList(_ResBlock(2 * rev[i], rev[i + 1], d_emb) for i in range(len(widths) - 1))
        self.out = nn.Sequential(nn.SiLU(), nn.Linear(2 * widths[0], x_dim))

    def _embedding(self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        emb = self.t_embed(t.expand(x.shape[0]) if t.dim() == 0 else t)
        if self.c_embed is not None:
            emb = torch.cat([emb, self.c_embed(cond)], dim=-1)
        return emb

    @_at_precision
    def forward(self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """The same function as forward_reference with fewer passes over the activations: all blocks' embedding
        projections in one matmul (fc1's bias folded in), each SiLU computed once and reused by the skip
        concatenations, biases and residuals added inside addmm."""
        blocks = [*self.down, *self.up]
        w = torch.cat([b.emb.weight for b in blocks])
        bias = torch.cat([b.emb.bias + b.fc1.bias for b in blocks])
        emb = torch.addmm(bias, self._embedding(x, t, cond), w.t()).split([b.fc1.out_features for b in blocks], -1)
        h = self.inp(x)
        a, skips = F.silu(h), []
        for i, block in enumerate(self.down):
            h = block.fused(a, h, emb[i])
            a = F.silu(h)
            skips.append((h, a))
        for i, block in enumerate(self.up):
            s, sa = skips.pop()
            h = block.fused(torch.cat([a, sa], -1), torch.cat([h, s], -1), emb[len(self.down) + i])
            a = F.silu(h)
        s, sa = skips.pop()
        return self.out[1](torch.cat([a, sa], -1))

    def forward_reference(self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """The network as its modules spell it (what forward computes, kept to test it against)."""
        emb = self._embedding(x, t, cond)
        h = self.inp(x)
        skips = []
        for block in self.down:
            h = block(h, emb)
            skips.append(h)
        for block in self.up:
            h = block(torch.cat([h, skips.pop()], dim=-1), emb)
        return self.out(torch.cat([h, skips.pop()], dim=-1))


class MLPBackbone(nn.Module):
    """Plain MLP backbone: concat(x, time embedding, cond) -> hidden layers -> x_dim."""

    def __init__(self, x_dim: int, cond_dim: int = 0, hidden: Sequence[int] = (256, 256, 256), t_dim: int = 32):
        super().__init__()
        self.x_dim, self.cond_dim = x_dim, cond_dim
        self.t_embed = GaussianFourierEmbedding(t_dim)
        self.net = mlp([x_dim + t_dim + cond_dim, *hidden, x_dim])

    @_at_precision
    def forward(self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        parts = [x, self.t_embed(t.expand(x.shape[0]) if t.dim() == 0 else t)]
        if self.cond_dim:
            parts.append(cond)
        return self.net(torch.cat(parts, dim=-1))


BACKBONES = {"resunet": ResidualUNet, "mlp": MLPBackbone}


def make_backbone(name: str, x_dim: int, cond_dim: int = 0, **kwargs) -> nn.Module:
    """Build a backbone by name ('resunet' or 'mlp')."""
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; valid: {sorted(BACKBONES)}")
    return BACKBONES[name](x_dim, cond_dim, **kwargs)


class QNet(nn.Module):
    """Q(s, a): an MLP on concat(s, a) returning [B]."""

    def __init__(self, obs_dim: int, act_dim: int, hidden: Sequence[int] = (256, 256)):
        super().__init__()
        self.net = mlp([obs_dim + act_dim, *hidden, 1])

    def forward(self, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([obs, act], dim=-1)).squeeze(-1)


class DoubleQNet(nn.Module):
    """Two independent Q nets; forward returns both as a [2, B] tensor."""

    def __init__(self, obs_dim: int, act_dim: int, hidden: Sequence[int] = (256, 256)):
        super().__init__()
        self.q1, self.q2 = QNet(obs_dim, act_dim, hidden), QNet(obs_dim, act_dim, hidden)

    def forward(self, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        return torch.stack([self.q1(obs, act), self.q2(obs, act)])


class VNet(nn.Module):
    """V(s): an MLP returning [B]."""

    def __init__(self, obs_dim: int, hidden: Sequence[int] = (256, 256)):
        super().__init__()
        self.net = mlp([obs_dim, *hidden, 1])

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.net(obs).squeeze(-1)
