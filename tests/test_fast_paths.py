"""Every fast path against the plain one on CPU: same samples for the same noise, same losses, gradients and
log-probabilities (to float rounding)."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from genrl_core.generative.fast_sampling import fast_sample, supported
from genrl_core.generative.model import GenerativeModel
from genrl_core.generative.networks import MLPBackbone, ResidualUNet
from genrl_core.run.training import build_agent

OBS, ACT = 11, 3


def _close(fast: torch.Tensor, plain: torch.Tensor) -> None:
    fast, plain = fast.detach(), plain.detach()
    scale = max(1.0, float(plain.abs().max()))
    torch.testing.assert_close(fast, plain, rtol=1e-4, atol=1e-5 * scale)


def _model(path: str, prediction: str, backbone: str = "resunet", cond_dim: int = OBS, seed: int = 0):
    torch.manual_seed(seed)
    net = ResidualUNet(ACT, cond_dim) if backbone == "resunet" else MLPBackbone(ACT, cond_dim, hidden=(64, 64))
    return GenerativeModel(path, net, prediction)


@pytest.fixture()
def reference_unet(monkeypatch):
    """Run ResidualUNet through its modules (the plain network) inside the test."""
    monkeypatch.setattr(ResidualUNet, "forward", ResidualUNet.forward_reference)


@pytest.mark.parametrize("backbone", ["resunet", "mlp"])
@pytest.mark.parametrize("path,prediction", [("icfm", "velocity"), ("vpsde", "eps"), ("gvp", "x0"),
                                             ("linear", "score")])
@pytest.mark.parametrize("steps", [1, 5, 32])
def test_fast_euler_sampler_matches_plain_for_the_same_noise(backbone, path, prediction, steps):
    model = _model(path, prediction, backbone)
    cond, noise = torch.randn(4, OBS), torch.randn(4, ACT)
    plain = model.sample(cond, solver="euler", steps=steps, noise=noise)
    _close(fast_sample(model, cond, solver="euler", steps=steps, noise=noise), plain)


@pytest.mark.parametrize("solver", ["midpoint", "rk4", "dpm2"])
@pytest.mark.parametrize("prediction", ["velocity", "eps"])
def test_fast_sampler_matches_plain_for_other_solvers(solver, prediction):
    model = _model("vpsde", prediction)
    cond, noise = torch.randn(3, OBS), torch.randn(3, ACT)
    plain = model.sample(cond, solver=solver, steps=6, noise=noise)
    _close(fast_sample(model, cond, solver=solver, steps=6, noise=noise), plain)


def test_fast_sampler_unconditional_batch_one_and_random_stream():
    model = _model("icfm", "velocity", cond_dim=0)
    torch.manual_seed(3)
    plain = model.sample(n=1, steps=8)
    torch.manual_seed(3)
    _close(fast_sample(model, n=1, steps=8), plain)


def test_fast_sampler_follows_parameter_updates():
    model = _model("icfm", "velocity")
    cond, noise = torch.randn(2, OBS), torch.randn(2, ACT)
    fast_sample(model, cond, steps=4, noise=noise)  # builds the cached weights
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.loss(torch.randn(8, ACT), torch.randn(8, OBS)).mean().backward()
    opt.step()
    _close(fast_sample(model, cond, steps=4, noise=noise), model.sample(cond, steps=4, noise=noise))
    other = _model("icfm", "velocity", seed=5)
    model.load_state_dict(other.state_dict())
    _close(fast_sample(model, cond, steps=4, noise=noise), other.sample(cond, steps=4, noise=noise))


def test_fast_sampler_follows_a_cast_and_replaced_parameters():
    """.double() and load_state_dict(assign=True) give the parameters new storage without a new version."""
    model = _model("icfm", "velocity")
    cond, noise = torch.randn(2, OBS), torch.randn(2, ACT)
    fast_sample(model, cond, steps=4, noise=noise)  # builds the cached float32 weights
    model.double()
    cond, noise = cond.double(), noise.double()
    fast = fast_sample(model, cond, steps=4, noise=noise)
    assert fast.dtype == torch.float64
    _close(fast, model.sample(cond, steps=4, noise=noise))
    other = _model("icfm", "velocity", seed=5).double()
    model.load_state_dict(other.state_dict(), assign=True)
    _close(fast_sample(model, cond, steps=4, noise=noise), other.sample(cond, steps=4, noise=noise))


def test_fast_sampler_keeps_a_low_precision_unconditional_model_in_its_dtype():
    model = _model("icfm", "velocity", cond_dim=0).to(torch.bfloat16)
    noise = torch.randn(3, ACT, dtype=torch.bfloat16)
    fast = fast_sample(model, n=3, steps=4, noise=noise)
    assert fast.dtype == torch.bfloat16
    torch.testing.assert_close(fast, model.sample(n=3, steps=4, noise=noise), rtol=0.05, atol=0.05)


def test_unsupported_solver_falls_back_to_plain():
    model = _model("icfm", "velocity")
    assert not supported(model, "dopri5")
    cond, noise = torch.randn(2, OBS), torch.randn(2, ACT)
    _close(fast_sample(model, cond, solver="dopri5", noise=noise), model.sample(cond, solver="dopri5", noise=noise))


def test_agent_act_uses_the_same_samples_as_the_plain_sampler():
    agent = build_agent("gmpo", OBS, ACT, {"sampling_steps": 5}).eval()
    obs = torch.randn(6, OBS)
    torch.manual_seed(11)
    fast = agent.act(obs)
    torch.manual_seed(11)
    _close(fast, agent.policy.sample(obs, solver="euler", steps=5))


@pytest.mark.parametrize("cond_dim", [OBS, 0])
def test_fused_unet_forward_and_gradients_match_the_module_path(cond_dim):
    torch.manual_seed(0)
    net = ResidualUNet(ACT, cond_dim)
    x, t = torch.randn(16, ACT), torch.rand(16)
    cond = torch.randn(16, cond_dim) if cond_dim else None
    fused, plain = net(x, t, cond), net.forward_reference(x, t, cond)
    _close(fused, plain)
    _close(net(x, t[0], cond), net.forward_reference(x, t[0], cond))
    g_fused = torch.autograd.grad(fused.pow(2).sum(), list(net.parameters()))
    g_plain = torch.autograd.grad(plain.pow(2).sum(), list(net.parameters()))
    for a, b in zip(g_fused, g_plain):
        _close(a, b)


def _update_losses(steps: int = 3) -> list[float]:
    torch.manual_seed(0)
    agent = build_agent("gmpo", OBS, ACT, {"critic_steps": 0})
    g = torch.Generator().manual_seed(0)
    batch = {"obs": torch.randn(64, OBS, generator=g), "action": torch.rand(64, ACT, generator=g) * 2 - 1,
             "reward": torch.randn(64, generator=g), "next_obs": torch.randn(64, OBS, generator=g),
             "terminal": torch.zeros(64)}
    torch.manual_seed(1)
    return [float(agent.update(batch, s)["policy_loss"]) for s in range(steps)]


def test_fused_update_gives_the_same_losses_as_the_plain_one(monkeypatch):
    fused = _update_losses()
    monkeypatch.setattr(ResidualUNet, "forward", ResidualUNet.forward_reference)
    plain = _update_losses()
    assert fused == pytest.approx(plain, rel=1e-4)


@pytest.mark.parametrize("trace", ["exact", "hutchinson"])
def test_log_prob_with_fused_network_matches_plain(trace, monkeypatch):
    model = _model("icfm", "velocity")
    x, cond = torch.randn(8, ACT), torch.randn(8, OBS)
    torch.manual_seed(2)
    fused = model.log_prob(x, cond, steps=6, trace=trace)
    monkeypatch.setattr(ResidualUNet, "forward", ResidualUNet.forward_reference)
    torch.manual_seed(2)
    _close(fused, model.log_prob(x, cond, steps=6, trace=trace))


def test_sample_with_log_prob_with_fused_network_matches_plain(monkeypatch):
    model = _model("icfm", "velocity")
    cond, noise = torch.randn(4, OBS), torch.randn(4, ACT)
    fused = model.sample_with_log_prob(cond, steps=5, noise=noise)
    monkeypatch.setattr(ResidualUNet, "forward", ResidualUNet.forward_reference)
    plain = model.sample_with_log_prob(cond, steps=5, noise=noise)
    for a, b in zip(fused, plain):
        _close(a, b)


def _solve_grads(model: GenerativeModel, kind: str, trace: str, checkpoint: bool) -> list[torch.Tensor]:
    """Gradients of one solve's output w.r.t. the parameters, the condition and (log_prob) the input."""
    model.grad_checkpoint = checkpoint
    gen = torch.Generator().manual_seed(1)
    cond = torch.randn(8, OBS, generator=gen).requires_grad_(True)
    x = torch.randn(8, ACT, generator=gen).requires_grad_(True)
    torch.manual_seed(2)  # the Hutchinson probe
    if kind == "sample":
        out = model.sample(cond, solver="midpoint", steps=6, noise=x, with_grad=True).square().sum()
    elif kind == "log_prob":
        out = model.log_prob(x, cond, steps=6, trace=trace, with_grad=True).sum()
    else:
        a, lp = model.sample_with_log_prob(cond, steps=6, trace=trace, noise=x, with_grad=True)
        out = lp.sum() + a.square().sum()
    return torch.autograd.grad(out, [*model.parameters(), cond, x], allow_unused=True)


@pytest.mark.parametrize("kind,trace", [("sample", "exact"), ("log_prob", "exact"), ("log_prob", "hutchinson"),
                                        ("sample_with_log_prob", "hutchinson")])
def test_checkpointed_solve_gives_the_plain_gradients(kind, trace):
    model = _model("icfm", "velocity")
    plain = _solve_grads(model, kind, trace, checkpoint=False)
    for got, want in zip(_solve_grads(model, kind, trace, checkpoint=True), plain):
        assert (got is None) == (want is None)
        if want is not None:
            _close(got, want)


PEAK_CHILD = """
import sys, torch
from pathlib import Path
from genrl_core.generative.model import GenerativeModel
from genrl_core.generative.networks import ResidualUNet
torch.manual_seed(0)
model = GenerativeModel("icfm", ResidualUNet(3, 11), "velocity")
model.grad_checkpoint = True
def status(key):
    return int(next(s for s in Path("/proc/self/status").read_text().splitlines() if s.startswith(key)).split()[1])
Path("/proc/self/clear_refs").write_text("5")  # peak RSS := current RSS
base = status("VmRSS")
a, lp = model.sample_with_log_prob(torch.randn(64, 11), steps=int(sys.argv[1]), trace="hutchinson", with_grad=True)
(lp.sum() + a.sum()).backward()
print((status("VmHWM") - base) / 1024)
"""


def _peak_mib(steps: int) -> float:
    """Peak resident memory growth (MiB) of one checkpointed sample_with_log_prob solve + backward, own process."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    res = subprocess.run([sys.executable, "-c", PEAK_CHILD, str(steps)], capture_output=True, text=True, env=env,
                         check=True)
    return float(res.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not os.access("/proc/self/clear_refs", os.W_OK), reason="needs Linux /proc/self/clear_refs")
def test_checkpointed_solve_memory_stays_bounded_in_the_step_count():
    """With the field's divergence inside each step, torch.utils.checkpoint kept every step's recomputed activations
    (+300 MiB from 20 to 220 steps at batch 64); the recomputed steps keep one state each (measured +28 MiB, which
    is the allocator's fragmentation: +2 MiB with MALLOC_MMAP_THRESHOLD_=65536)."""
    assert _peak_mib(220) - _peak_mib(20) < 100
