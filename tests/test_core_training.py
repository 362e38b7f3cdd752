"""The generative model learns, gradients flow where asked, bad input gets a clear error."""
import pytest
import torch

from genrl_core.generative.model import GenerativeModel
from genrl_core.generative.metrics import energy_distance
from genrl_core.generative.networks import MLPBackbone, ResidualUNet
from genrl_core.demo import conditional_rolls, fit


def make_model(path, prediction, seed=0, **kw):
    torch.manual_seed(seed)
    return GenerativeModel(path, MLPBackbone(2, 1, hidden=(128, 128, 128)), prediction, **kw)


def train(model, steps=600):
    fit(model, steps)
    return model


@pytest.mark.parametrize("path,prediction", [("vpsde", "eps"), ("vpsde", "velocity"), ("gvp", "velocity"),
                                             ("icfm", "velocity")])
def test_training_brings_samples_to_the_data(path, prediction):
    data, cond = conditional_rolls(1000, seed=123)
    other, _ = conditional_rolls(1000, seed=124)
    floor = energy_distance(data[cond[:, 0] == 0], other[: int((cond == 0).sum())])  # two draws of the data itself
    model = make_model(path, prediction)
    untrained = energy_distance(model.sample(cond, steps=32), data)
    train(model)
    torch.manual_seed(1)
    trained = energy_distance(model.sample(cond, steps=32), data)
    # Untrained samples are N(0, I) blobs (energy distance ~0.3); the data-vs-data floor is ~0.002.
    # A model that learned both conditional rolls lands within a small multiple of that floor.
    assert trained < 0.1 * untrained, (trained, untrained)
    assert trained < 0.03, (trained, floor)
    # the condition matters: samples for cond=1 are the mirrored roll, far from the cond=0 roll
    c0 = torch.zeros(500, 1)
    wrong = energy_distance(model.sample(c0 + 1, steps=32), data[cond[:, 0] == 0])
    right = energy_distance(model.sample(c0, steps=32), data[cond[:, 0] == 0])
    assert right < 0.5 * wrong


@pytest.mark.parametrize("solver", ["euler", "rk4", "dopri5_adjoint"])
def test_gradients_reach_parameters_through_sample_only_when_asked(solver):
    model = make_model("icfm", "velocity")
    cond = torch.zeros(8, 1)
    x = model.sample(cond, solver=solver, steps=4, with_grad=True)
    x.pow(2).sum().backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert sum(float(g.abs().sum()) for g in grads) > 0
    assert not model.sample(cond, solver=solver, steps=4, with_grad=False).requires_grad


@pytest.mark.parametrize("trace", ["exact", "hutchinson"])
def test_gradients_through_log_prob_to_parameters_and_x(trace):
    model = make_model("vpsde", "velocity")
    cond = torch.zeros(8, 1)
    x = torch.randn(8, 2, requires_grad=True)
    lp = model.log_prob(x, cond, steps=4, trace=trace, with_grad=True)
    lp.sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
    assert not model.log_prob(x, cond, steps=4, trace=trace).requires_grad
    a, lp2 = model.sample_with_log_prob(cond, steps=4, trace=trace, with_grad=True)
    assert a.requires_grad and lp2.requires_grad


def test_log_prob_of_dataset_actions_rises_with_training():
    x, c = conditional_rolls(256, seed=5)
    model = make_model("icfm", "velocity")
    before = float(model.log_prob(x, c, solver="rk4", steps=16).mean())
    train(model, steps=800)
    after = float(model.log_prob(x, c, solver="rk4", steps=16).mean())
    # an untrained net has v ~ 0, so its density is about the N(0, I) source's (~ -2.1 nats here);
    # 800 steps gain ~0.8 nats on this thin roll
    assert after > before + 0.5, (before, after)


def test_residual_unet_shapes_and_size():
    net = ResidualUNet(3, 11)
    out = net(torch.randn(5, 3), torch.rand(5), torch.randn(5, 11))
    assert out.shape == (5, 3)
    n_params = sum(p.numel() for p in net.parameters())
    assert 1.0e6 < n_params < 2.5e6, n_params  # hopper-sized backbone of this field: ~1.6M parameters


def test_bad_input_gets_one_clear_error():
    with pytest.raises(ValueError, match=r"unknown path 'vp'; valid: \['gvp', 'icfm', 'linear', 'vpsde'\]"):
        GenerativeModel("vp", MLPBackbone(2, 1))
    with pytest.raises(ValueError, match="unknown prediction type 'noise'; valid"):
        make_model("vpsde", "noise")
    model = make_model("icfm", "velocity")
    cond = torch.zeros(4, 1)
    with pytest.raises(ValueError, match="unknown solver 'heun'; valid"):
        model.sample(cond, solver="heun")
    with pytest.raises(ValueError, match="sampling steps must be >= 1, got 0"):
        model.sample(cond, steps=0)
    with pytest.raises(ValueError, match="DPM-Solver needs a diffusion path"):
        model.sample(cond, solver="dpm2")
    with pytest.raises(ValueError, match=r"x must have shape \[batch, 2\], got \[4, 3\]"):
        model.loss(torch.zeros(4, 3), cond)
    with pytest.raises(ValueError, match=r"condition must have shape \[batch, 1\]"):
        model.loss(torch.zeros(4, 2), torch.zeros(4, 2))
    with pytest.raises(ValueError, match="batch sizes differ"):
        model.loss(torch.zeros(4, 2), torch.zeros(3, 1))
    with pytest.raises(ValueError, match="unknown trace estimator 'diag'"):
        model.log_prob(torch.zeros(4, 2), cond, trace="diag")
