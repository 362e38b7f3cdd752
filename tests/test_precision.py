"""Training precision bf16: the generative backbones run under bfloat16 autocast, everything else stays float32."""
from __future__ import annotations

import pytest
import torch

from genrl_core.common import seed_everything
from genrl_core.algorithms.critics import CriticConfig, IQLCritic
from genrl_core.data.loading import load
from genrl_core.generative.networks import MLPBackbone, ResidualUNet, precision_context
from genrl_core.run.packing import build_pack
from genrl_core.run.training import build_agent, train, train_steps
from tune_jobs import config as C

GMPO = {"backbone": "mlp", "widths": (64, 64), "critic_hidden": (32, 32), "beta": 2.0, "sampling_steps": 4,
        "loglik_steps": 4, "critic_steps": 0, "critic_alongside": True}  # critic and policy from step 0


@pytest.fixture(scope="module")
def swissroll():
    return load("toy/swissroll-v0", "cpu")


@pytest.mark.parametrize("backbone", [ResidualUNet, MLPBackbone])
def test_backbones_run_in_bf16_and_return_float32(backbone) -> None:
    torch.manual_seed(0)
    net = backbone(3, 11)
    x, t, s = torch.randn(512, 3), torch.rand(512), torch.randn(512, 11)
    want = net(x, t, s)
    with precision_context("bf16"):
        got = net(x, t, s)
    assert got.dtype == torch.float32
    err = ((got - want).norm() / want.norm()).item()
    assert 1e-5 < err < 2e-2, err  # rounded as bfloat16 matmuls round (8-bit mantissa), not float32's
    assert torch.equal(net(x, t, s), want)  # leaving the context restores float32


def test_critics_stay_float32_inside(swissroll) -> None:
    torch.manual_seed(0)
    critic = IQLCritic(swissroll.obs_dim, swissroll.act_dim, CriticConfig(critic_hidden=(64, 64)))
    batch = swissroll.sample(128, torch.Generator().manual_seed(0))
    want = critic.advantage(batch["obs"], batch["action"])
    with precision_context("bf16"):
        assert torch.equal(critic.advantage(batch["obs"], batch["action"]), want)


def _losses(swissroll, precision: str, steps: int = 12) -> tuple[list[dict[str, float]], torch.nn.Module]:
    gen = seed_everything(0)
    agent = build_agent("gmpo", swissroll.obs_dim, swissroll.act_dim, GMPO)
    out = []
    for step in range(steps):
        acc = train_steps(agent, swissroll, step, step + 1, 64, gen, precision=precision)
        out.append(acc.read())
    return out, agent


def test_bf16_training_tracks_float32(swissroll) -> None:
    fp32, a = _losses(swissroll, "fp32")
    bf16, b = _losses(swissroll, "bf16")
    for want, got in zip(fp32, bf16):
        assert got["q_loss"] == want["q_loss"] and got["v_loss"] == want["v_loss"]  # the critic: float32, bit for bit
        assert got["policy_loss"] == pytest.approx(want["policy_loss"], rel=2e-2)
    assert any(g["policy_loss"] != w["policy_loss"] for w, g in zip(fp32, bf16))  # the policy really ran in bf16
    drift = max(((p - q).norm() / p.norm()).item() for p, q in zip(a.policy.parameters(), b.policy.parameters()))
    assert drift < 1e-2, drift


def test_packed_bf16_matches_unpacked_bf16(swissroll) -> None:
    pack = build_pack("gmpo", [0, 1], swissroll.obs_dim, swissroll.act_dim, "cpu", GMPO, "vmap")
    packed = pack.train(swissroll, 0, 6, 64, precision="bf16")
    for i, seed in enumerate((0, 1)):
        gen = seed_everything(seed)
        agent = build_agent("gmpo", swissroll.obs_dim, swissroll.act_dim, GMPO)
        want = train_steps(agent, swissroll, 0, 6, 64, gen, precision="bf16").read()
        for k in want:
            assert packed[i][k] == pytest.approx(want[k], rel=1e-3, abs=1e-5), (seed, k)


def test_unknown_precision_is_one_clear_error() -> None:
    with pytest.raises(ValueError, match="unknown precision 'fp16'; valid: fp32, bf16"):
        train("gmpo", "toy/swissroll-v0", steps=1, precision="fp16", log=None)
    base = {**C.RUN_DEFAULTS, "dataset": "toy/swissroll-v0"}
    with pytest.raises(C.SweepConfigError, match="unknown precision 'half'; valid: fp32, bf16"):
        C.validate_configs([{**base, "precision": "half"}])


def test_checkpointed_gmpg_step_in_bf16_equals_plain_bf16(swissroll) -> None:
    """Gradient checkpointing recomputes the backbone in backward: under bf16 it must recompute in bf16 too."""
    cfg = {"backbone": "mlp", "widths": (32, 32), "critic_hidden": (32, 32), "behaviour_steps": 0, "critic_steps": 0,
           "train_steps": 4, "trace": "hutchinson"}
    grads = []
    for ckpt in (False, True):
        torch.manual_seed(0)
        agent = build_agent("gmpg", swissroll.obs_dim, swissroll.act_dim, {**cfg, "grad_checkpoint": ckpt})
        batch = swissroll.sample(64, torch.Generator().manual_seed(0))
        with precision_context("bf16"):
            agent._kl_loss(batch)["policy_loss"].backward()
        grads.append(torch.cat([p.grad.flatten() for p in agent.policy.parameters()]))
    assert torch.allclose(grads[0], grads[1], rtol=1e-4, atol=1e-6)
