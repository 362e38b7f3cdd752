"""Compiled updates (genrl_core.run.compiled): a few updates of each registered algorithm, compiled and eager from
the same seed and batches, give the same losses and the same actions; calls that must stay eager do; bad input gets
one line. Tiny networks: a compile takes seconds per network kind on one core, so the per-algorithm checks beyond BC
and GMPO are `long`."""
from __future__ import annotations

import dataclasses
from typing import Any

import pytest
import torch

from genrl_core import algorithms
from genrl_core.common import seed_everything
from genrl_core.run.compiled import call_kind, compile_agent, compile_module, compiled_calls, networks
from genrl_core.run.training import build_agent

OBS, ACT, BATCH, STEPS = 5, 2, 32, 3
TINY: dict[str, Any] = {  # every algorithm's smallest networks and solves; phases switch at step 1 (steps 0-2 see both)
    "backbone": "mlp", "widths": (16, 16), "hidden": (16, 16), "critic_hidden": (16, 16), "actor_hidden": (16, 16),
    "energy_hidden": (16, 16), "sampling_steps": 2, "loglik_steps": 2, "train_steps": 2, "train_sampling_steps": 2,
    "candidates": 2, "target_candidates": 2, "energy_candidates": 2, "v_samples": 2, "critic_steps": 1,
    "behaviour_steps": 1, "schedule_steps": STEPS, "candidate_cache": False,
}
QUICK = ("bc", "gmpo")  # in `make test`; the rest under `make test-long`
RTOL = 1e-5


def tiny(algo: str) -> dict[str, Any]:
    """TINY's fields that the algorithm's config has."""
    fields = {f.name for f in dataclasses.fields(algorithms.get(algo)[0].config_class)}
    return {k: v for k, v in TINY.items() if k in fields}


def batches(device: str = "cpu") -> list[dict[str, torch.Tensor]]:
    """STEPS random transition batches, the same on every call."""
    g = torch.Generator().manual_seed(123)
    out = []
    for _ in range(STEPS):
        b = {"obs": torch.randn(BATCH, OBS, generator=g), "action": torch.rand(BATCH, ACT, generator=g) * 2 - 1,
             "reward": torch.randn(BATCH, generator=g), "next_obs": torch.randn(BATCH, OBS, generator=g),
             "terminal": (torch.rand(BATCH, generator=g) < 0.1).float()}
        out.append({k: v.to(device) for k, v in b.items()})
    return out


def run(algo: str, backend: str | None, device: str = "cpu") -> tuple[list[dict[str, float]], torch.Tensor, Any]:
    """(losses per step, actions of 8 states after training, the agent) from seed 0; backend None: eager."""
    seed_everything(0)
    agent = build_agent(algo, OBS, ACT, tiny(algo)).to(device)
    if backend:
        compile_agent(agent, backend=backend)
    losses = [{k: float(v) for k, v in agent.update(b, step).items()} for step, b in enumerate(batches(device))]
    torch.manual_seed(5)
    actions = agent.eval().act(torch.linspace(-1, 1, 8 * OBS, device=device).view(8, OBS)).cpu()
    return losses, actions, agent


def assert_same(eager: list[dict[str, float]], comp: list[dict[str, float]], rtol: float = RTOL) -> None:
    """Same keys per step and values equal within rtol (relative, at least 1e-6 absolute)."""
    assert [sorted(e) for e in eager] == [sorted(c) for c in comp]
    for step, (e, c) in enumerate(zip(eager, comp)):
        for k in e:
            assert c[k] == pytest.approx(e[k], rel=rtol, abs=1e-6), (step, k, e[k], c[k])


def check(algo: str, device: str = "cpu", backend: str = "inductor") -> None:
    """Losses and actions of the compiled run equal the eager run's; some network calls ran compiled."""
    torch.compiler.reset()  # each algorithm compiles afresh: no cache entries of earlier agents' networks
    eager, eager_act, _ = run(algo, None, device)
    comp, comp_act, agent = run(algo, backend, device)
    assert_same(eager, comp)
    torch.testing.assert_close(comp_act, eager_act, rtol=1e-4, atol=1e-5)
    calls = compiled_calls(agent)
    assert calls and sum(c for c, _ in calls.values()) > 0, calls  # something did run compiled


@pytest.mark.parametrize("algo", algorithms.names())
def test_traced_losses_equal_eager_every_algorithm(algo: str) -> None:
    """Every algorithm through dynamo and AOTAutograd (forward and backward graphs as inductor gets them, no code
    generated: seconds): no call differentiated twice reaches a compiled graph, the random streams match."""
    check(algo, backend="aot_eager")


@pytest.mark.parametrize("algo", QUICK)
def test_compiled_losses_equal_eager(algo: str) -> None:
    check(algo)


@pytest.mark.long
@pytest.mark.parametrize("algo", [a for a in algorithms.names() if a not in QUICK])
def test_compiled_losses_equal_eager_every_algorithm(algo: str) -> None:
    check(algo)


def test_networks_found_in_every_algorithm() -> None:
    """The critics, targets and generative backbones are what compile_agent compiles (no parameters left over
    outside them except in modules that hold no network, e.g. GTP's time embedding)."""
    for algo in algorithms.names():
        agent = build_agent(algo, OBS, ACT, tiny(algo))
        found = networks(agent)
        covered = {id(p) for _, m in found for p in m.parameters()}
        left = [n for n, p in agent.named_parameters() if id(p) not in covered]
        assert found and left == [], (algo, left)


def test_call_kinds() -> None:
    x = torch.randn(2, 3)
    assert call_kind((x,), {}) == "plain"
    assert call_kind((x.clone().requires_grad_(True),), {}) == "input_grad"
    with torch.no_grad():
        assert call_kind((x.clone().requires_grad_(True),), {}) == "plain"
    assert torch.func.vmap(lambda b: torch.tensor(["plain", "input_grad", "packed"].index(call_kind((b,), {}))))(
        torch.randn(4, 3)).tolist() == [2] * 4


@pytest.mark.parametrize("backend", ["aot_eager", pytest.param("inductor", marks=pytest.mark.long)])
def test_input_gradients_differentiated_twice_are_exact(backend: str) -> None:
    """A divergence-like double backward through a compiled network (first through the recomputing path, then eager
    once seen) equals eager's; a first-order input gradient stays compiled; seed-packed calls run eager."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.SiLU(), torch.nn.Linear(8, 3))
    twin = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.SiLU(), torch.nn.Linear(8, 3))
    twin.load_state_dict(net.state_dict())
    fwd = compile_module(net, backend=backend)
    assert compile_module(net) is fwd  # once

    def hutchinson_loss(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
        x = x.clone().requires_grad_(True)
        out = model(x)
        (vjp,) = torch.autograd.grad(out, x, torch.ones_like(out), create_graph=True)
        return (vjp * x).sum() + out.pow(2).sum()

    x = torch.randn(5, 3)
    for _ in range(2):  # the first call runs compiled and recomputes for the double backward; the second eager
        hutchinson_loss(net, x).backward()
        hutchinson_loss(twin, x).backward()
        for p, q in zip(net.parameters(), twin.parameters()):
            torch.testing.assert_close(p.grad, q.grad, rtol=1e-5, atol=1e-6)
    assert fwd.calls == [1, 1] and fwd.differentiated_twice
    exact = compile_module(twin, backend=backend)  # the exact trace: one backward per dimension on one graph
    x = torch.randn(5, 3, requires_grad=True)
    out, ref = twin(x), net.forward.eager(x)
    for i in range(3):
        torch.testing.assert_close(torch.autograd.grad(out[:, i].sum(), x, retain_graph=True)[0],
                                   torch.autograd.grad(ref[:, i].sum(), x, retain_graph=True)[0])
    assert exact.calls == [1, 0]
    lin = torch.nn.Sequential(torch.nn.Linear(3, 2))
    first_order = compile_module(lin, backend=backend)
    y = torch.randn(4, 3, requires_grad=True)
    lin(y).sum().backward()
    torch.testing.assert_close(y.grad, torch.ones(4, 2) @ lin[0].weight.detach())
    assert torch.func.vmap(lin)(torch.randn(2, 4, 3)).shape == (2, 4, 2)
    assert first_order.calls == [1, 1] and not first_order.differentiated_twice


def test_unknown_mode_is_one_line() -> None:
    with pytest.raises(ValueError, match=r"^unknown compile mode 'fast'; valid: default, reduce-overhead, max-autotune$"):
        compile_module(torch.nn.Sequential(torch.nn.Linear(1, 1)), "fast")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("algo", QUICK)
def test_compiled_losses_equal_eager_cuda(algo: str) -> None:
    """On CUDA: reduce-overhead (CUDA graphs) for the networks, the graph sampler for act()."""
    check(algo, "cuda")


def test_sweep_configs_refuse_compile_with_vmap_packed_seeds() -> None:
    from genrl_core.run.packing import COMPILE_PACKED, build_pack
    from tune_jobs import config as C

    base = {**C.RUN_DEFAULTS, "algorithm": "bc", "dataset": "toy/swissroll-v0", "device": "cpu", **tiny("bc")}
    assert C.trial_problems({**base, "compile": True}) == []
    assert C.trial_problems({**base, "compile": True, "seeds_per_trial": 2, "pack_engine": "loop"}) == []
    assert C.trial_problems({**base, "compile": True, "seeds_per_trial": 2}) == [COMPILE_PACKED]
    assert C.trial_problems({**base, "compile": "yes"}) == ["compile must be true or false, got 'yes'"]
    with pytest.raises(ValueError, match="^compile needs seeds trained one by one"):
        build_pack("bc", [0, 1], OBS, ACT, "cpu", tiny("bc"), compiled=True)
    pack = build_pack("bc", [0, 1], OBS, ACT, "cpu", tiny("bc"), engine="loop", compiled=True)
    assert all(compiled_calls(a) for a in pack.agents)


def test_no_cpu_compiler_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.delenv("CXX", raising=False)
    with pytest.raises(RuntimeError, match=r"^compile on CPU needs a C\+\+ compiler for inductor"):
        compile_agent(build_agent("bc", OBS, ACT, tiny("bc")))
