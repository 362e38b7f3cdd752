"""Toy bandits: known values along the Swiss roll and a known best mode."""
from __future__ import annotations

import math

import pytest
import torch

from genrl_core.data import bandits


def test_swissroll_value_from_centre_to_outer_end() -> None:
    t = torch.linspace(bandits.T_START, bandits.T_END, 50, dtype=torch.float64)
    v = bandits.value("swissroll", bandits.spiral(t).float())
    assert v[0].item() == pytest.approx(-3.5, abs=1e-2) and v[-1].item() == pytest.approx(1.5, abs=1e-2)
    linear = -3.5 + 5 * (t - bandits.T_START) / (bandits.T_END - bandits.T_START)
    torch.testing.assert_close(v.double(), linear, atol=5e-3, rtol=0)  # linear in the spiral parameter
    best = torch.tensor([bandits.BEST_MODE["swissroll"]])
    assert bandits.value("swissroll", best).item() == pytest.approx(1.5, abs=1e-2)
    grid = torch.cartesian_prod(torch.linspace(-1.2, 1.2, 61), torch.linspace(-1.2, 1.2, 61))
    assert bandits.value("swissroll", grid).max().item() <= 1.5 + 1e-6


def test_swissroll_dataset() -> None:
    d = bandits.swissroll(n=3000, seed=1)
    assert d.obs.shape == (3000, 1) and d.obs.eq(0).all() and d.action.shape == (3000, 2)
    assert d.terminal.eq(1).all() and d.dataset_id == "toy/swissroll-v0" and d.env_id is None
    torch.testing.assert_close(d.reward, bandits.value("swissroll", d.action))  # reward = value
    assert d.reward.min() >= -3.5 - 1e-6 and d.reward.max() <= 1.5 + 1e-6
    assert d.reward.min() < -3.3 and d.reward.max() > 1.3  # covers the whole spiral
    assert d.action.norm(dim=1).max() < 1.2  # actions roughly within the unit disc
    assert torch.equal(bandits.swissroll(n=3000, seed=1).action, d.action)
    assert not torch.equal(bandits.swissroll(n=3000, seed=2).action, d.action)


def test_multimodal_best_mode_is_the_maximum() -> None:
    best = torch.tensor([bandits.BEST_MODE["multimodal"]])
    v_best = bandits.value("multimodal", best).item()
    assert v_best == pytest.approx(1.0)
    grid = torch.cartesian_prod(torch.linspace(-1.5, 1.5, 121), torch.linspace(-1.5, 1.5, 121))
    values = bandits.value("multimodal", grid)
    assert values.max().item() == pytest.approx(v_best)
    assert grid[values.argmax()].tolist() == pytest.approx(list(bandits.BEST_MODE["multimodal"]), abs=0.03)
    centres = bandits.value("multimodal", bandits.MODE_CENTRES)
    assert centres.tolist() == pytest.approx([1.0, 0.5, 0.0, -0.5])


def test_multimodal_dataset_and_fraction_near_best() -> None:
    d = bandits.multimodal(n=8000, seed=0)
    torch.testing.assert_close(d.reward, bandits.value("multimodal", d.action))
    assert bandits.fraction_near_best(d.action, radius=0.3) == pytest.approx(0.25, abs=0.03)  # equal weights
    at_best = torch.tensor(bandits.BEST_MODE["multimodal"]).repeat(10, 1)
    assert bandits.fraction_near_best(at_best) == 1.0
    assert bandits.fraction_near_best(-at_best) == 0.0
    # the mean reward of the data is far below the best mode's value: improvement is measurable
    assert d.reward.mean().item() < 0.4 < bandits.value("multimodal", at_best).mean().item()


def test_unknown_bandit() -> None:
    with pytest.raises(ValueError, match="unknown bandit 'ring'"):
        bandits.value("ring", torch.zeros(1, 2))
    assert math.isclose(bandits.BEST_MODE["swissroll"][1], 1.0)
