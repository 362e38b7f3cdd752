"""A discrete-time DDPM (Ho et al. 2020) in the form Diffusion-QL (Wang et al. 2023) samples and trains its policy.

    model = DDPM(backbone, steps=5, schedule="vp", prediction="eps", clip=1.0)
    model.loss(actions, states)             # per-sample eps (or x0) regression at a uniform level i [B]
    model.sample(states, with_grad=True)    # N ancestral steps, differentiable (Diffusion-QL's Q term)

N noise levels i = 0..N-1 with x_i = sqrt(abar_i) x_0 + sqrt(1 - abar_i) eps. Sampling starts from N(0, I) and
takes N ancestral steps: the network's x_0 prediction (from eps when it predicts eps) clipped to [-clip, clip],
then the Gaussian posterior q(x_{i-1} | x_i, x_0) (mean and variance in closed form), with no noise at the last
step; the result is clipped once more. Training regresses eps (or x_0) at a uniformly drawn level.

Facts of the "vp" schedule (Diffusion-QL's vp_beta_schedule): the VP-SDE with beta(tau) = b_min + (b_max - b_min)
tau, b_min = 0.1, b_max = 10, integrated over N equal pieces of tau in [0, 1]: alpha_i = exp(-b_min / N -
(b_max - b_min) (2 (i + 1) - 1) / (2 N^2)), so abar_i = exp(-(b_min tau + (b_max - b_min) tau^2 / 2)) at tau =
(i + 1) / N. At N = 5: abar = 0.804, 0.435, 0.159, 0.039, 0.0064. Few levels sample a law narrower than the data's,
even with the exact prediction: the first level is far from clean (noise std 0.44), so the deterministic last step
returns E[x_0 | x at level 0], and each step's posterior variance leaves out Var(x_0 | x_i). For data N(0.4, 0.3^2)
the output std is 0.14 at N = 5, 0.29 at N = 200, 0.297 at N = 1000 (tests/test_baselines.py: the law in closed
form).

The backbones here embed a continuous time in [0, 1] (random Fourier features tuned for that range); level i is fed
as t = (i + 1) / N, the VP time at which abar_i holds. Diffusion-QL feeds the integer i to a sinusoidal embedding
instead: the same information (a bijection of the level), scaled to what these embeddings expect.

No Python branching on tensor values and every draw from torch's global stream, so the seed packing's vmap engine
runs it unchanged.
"""
from __future__ import annotations

import contextlib

import torch
from torch import nn

BETA_SCHEDULES = ("vp", "linear")
DDPM_PREDICTIONS = ("eps", "x0")
VP_BETA_MIN, VP_BETA_MAX = 0.1, 10.0  # Diffusion-QL's vp_beta_schedule
LINEAR_BETA_START, LINEAR_BETA_END = 1e-4, 2e-2  # Diffusion-QL's linear_beta_schedule (Ho et al.'s at T = 1000)


def beta_schedule(name: str, steps: int) -> torch.Tensor:
    """betas [steps] in float64: "vp" (the VP-SDE integrated over equal pieces) or "linear" (evenly spaced)."""
    if name not in BETA_SCHEDULES:
        raise ValueError(f"unknown beta schedule {name!r}; valid: {list(BETA_SCHEDULES)}")
    if steps < 1:
        raise ValueError(f"a DDPM needs at least one step, got {steps}")
    if name == "linear":
        return torch.linspace(LINEAR_BETA_START, LINEAR_BETA_END, steps, dtype=torch.float64)
    k = torch.arange(1, steps + 1, dtype=torch.float64)
    log_alpha = -VP_BETA_MIN / steps - 0.5 * (VP_BETA_MAX - VP_BETA_MIN) * (2 * k - 1) / steps ** 2
    return -torch.expm1(log_alpha)


class DDPM(nn.Module):
    """A backbone net(x, t, cond) as a discrete DDPM of `steps` levels; sample() takes one ancestral step per level."""

    def __init__(self, net: nn.Module, steps: int = 5, schedule: str = "vp", prediction: str = "eps",
                 clip: float = 1.0):
        super().__init__()
        if prediction not in DDPM_PREDICTIONS:
            raise ValueError(f"a DDPM predicts {' or '.join(DDPM_PREDICTIONS)}, got {prediction!r}")
        self.net, self.steps, self.prediction, self.clip = net, steps, prediction, clip
        self.x_dim, self.cond_dim = net.x_dim, net.cond_dim
        betas = beta_schedule(schedule, steps)
        abar = torch.cumprod(1.0 - betas, 0)
        abar_prev = torch.cat([torch.ones(1, dtype=torch.float64), abar[:-1]])
        post_var = betas * (1.0 - abar_prev) / (1.0 - abar)  # 0 at the last step (i = 0)
        derived = {
            "betas": betas, "alphas_cumprod": abar,
            "sqrt_abar": abar.sqrt(), "sqrt_one_minus_abar": (1.0 - abar).sqrt(),
            "recip_sqrt_abar": abar.rsqrt(), "sqrt_recip_m1_abar": (1.0 / abar - 1.0).sqrt(),
            "post_coef_x0": betas * abar_prev.sqrt() / (1.0 - abar),  # q(x_{i-1} | x_i, x_0) mean = c0 x_0 + ct x_i
            "post_coef_xt": (1.0 - abar_prev) * (1.0 - betas).sqrt() / (1.0 - abar),
            "post_std": post_var.clamp_min(1e-20).sqrt(),
        }
        for name, value in derived.items():  # derived from the config: not saved, rebuilt identically on load
            self.register_buffer(name, value.float(), persistent=False)

    def time(self, i: torch.Tensor | int, like: torch.Tensor) -> torch.Tensor:
        """The backbone's time input of level i: (i + 1) / N (the VP time at which abar_i holds)."""
        if isinstance(i, int):
            return torch.full((), (i + 1) / self.steps, device=like.device, dtype=like.dtype)
        return (i + 1).to(like.dtype) / self.steps

    def loss(self, x0: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """Per-sample [B] mean squared error of the eps (or x_0) prediction at a uniformly drawn level."""
        i = torch.randint(0, self.steps, (x0.shape[0],), device=x0.device)
        eps = torch.randn_like(x0)
        x_t = self.sqrt_abar[i].unsqueeze(-1) * x0 + self.sqrt_one_minus_abar[i].unsqueeze(-1) * eps
        pred = self.net(x_t, self.time(i, x0), cond)
        return (pred - (eps if self.prediction == "eps" else x0)).pow(2).mean(-1)

    def predict_x0(self, x: torch.Tensor, i: int, cond: torch.Tensor | None) -> torch.Tensor:
        """The network's x_0 at level i, clipped to [-clip, clip] (Diffusion-QL's clip_denoised)."""
        out = self.net(x, self.time(i, x), cond)
        if self.prediction == "eps":
            out = self.recip_sqrt_abar[i] * x - self.sqrt_recip_m1_abar[i] * out
        return out.clamp(-self.clip, self.clip)

    def sample(self, cond: torch.Tensor | None = None, *, n: int | None = None, with_grad: bool = False,
               noise: torch.Tensor | None = None) -> torch.Tensor:
        """x [B, d] by N ancestral steps from x_{N-1} ~ N(0, I) (or the given noise); differentiable with_grad."""
        if noise is None:
            if cond is None and n is None:
                raise ValueError("sample needs a condition batch or n (the number of samples)")
            batch = cond.shape[0] if cond is not None else n
            p = next(self.parameters())
            noise = torch.randn(batch, self.x_dim, device=p.device, dtype=p.dtype)
        x = noise
        with contextlib.nullcontext() if with_grad else torch.no_grad():
            for i in reversed(range(self.steps)):
                mean = self.post_coef_x0[i] * self.predict_x0(x, i, cond) + self.post_coef_xt[i] * x
                x = mean + self.post_std[i] * torch.randn_like(x) if i > 0 else mean
            return x.clamp(-self.clip, self.clip)
