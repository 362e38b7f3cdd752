"""GMPO, GMPG and BC on the toy bandits, where the best possible policy is known exactly.

The critic is the bandit's exact value (bandits.ExactCritic), so these tests check policy extraction:
pi* ~ mu exp(beta Q) has a mean value that rises with beta and puts its mass on the best mode.
"""
import sys
from pathlib import Path

import pytest
import torch

from genrl_core.data import bandits
from genrl_core.data.loading import load

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "analysis"))
from toy_trajectories import train_toy, trajectory_report  # noqa: E402


@pytest.fixture(scope="module")
def swiss():
    return load("toy/swissroll-v0").action[:2000]


def sample_value(agent, name, n=2000):
    torch.manual_seed(7)
    acts = agent.act(torch.zeros(n, 1))
    return float(bandits.value(name, acts).mean()), acts


def test_gmpo_value_rises_with_beta_and_beats_bc(swiss):
    data_value = float(bandits.value("swissroll", swiss).mean())  # about -1.0
    bc_value, _ = sample_value(train_toy("bc", 0.0, 1500, lr=1e-3), "swissroll")
    values = [sample_value(train_toy("gmpo", b, 1500, lr=5e-4, weight_norm="batch"), "swissroll")[0]
              for b in (1.0, 4.0, 16.0)]
    # pi* ~ mu exp(beta Q): mean values ~0.1, ~0.8, ~1.1 at beta 1, 4, 16; BC stays at the data's -1.0
    assert abs(bc_value - data_value) < 0.4, (bc_value, data_value)
    assert values[0] > data_value + 0.5 and values[0] > bc_value + 0.5, values
    assert values[0] + 0.2 < values[1] < values[2], values


def test_multimodal_gmpo_and_gmpg_find_the_best_mode_bc_does_not():
    bc = train_toy("bc", 0.0, 1200, name="multimodal", lr=1e-3)
    gmpo = train_toy("gmpo", 4.0, 1200, name="multimodal", lr=1e-3)
    gmpg = train_toy("gmpg", 4.0, 1300, name="multimodal", lr=1e-4, behaviour_lr=1e-3, behaviour_steps=900,
                     train_steps=16, sampling_steps=16, trace="exact", widths=(64, 64))
    frac = {k: bandits.fraction_near_best(sample_value(a, "multimodal")[1], 0.25)
            for k, a in {"bc": bc, "gmpo": gmpo, "gmpg": gmpg}.items()}
    # the data put 1/4 of its mass on each mode; pi* at beta 4 puts 0.87 on the best one
    assert frac["bc"] < 0.35 and frac["gmpo"] > 0.5 and frac["gmpg"] > 0.5, frac


def test_swissroll_gmpg_is_not_nearer_the_data_than_gmpo_but_covers_it_better(swiss):
    """Figure 3 setting at a small budget: same MLP, same flow-matching steps, lr 3e-3 with cosine decay, for GMPO
    and GMPG's mu; GMPO at beta 1.3 and GMPG at beta 2 (GMPG reaches pi*'s value slower, so these give similar
    values at the full budget of analysis/toy_trajectories.py).

    Pins the measured answer to "do GMPG's samples stay nearer the data than GMPO's at similar value?": no.
    GMPO regresses onto reweighted data points; GMPG's optimum is mu exp(beta Q) / Z for the *learned* mu, so
    its samples keep mu's own distance to the data. What GMPG does keep is coverage (the paper's "shape
    preserved" reading): the data are nearer to GMPG's samples than to GMPO's."""
    data_value = float(bandits.value("swissroll", swiss).mean())  # about -1.0
    gmpo = trajectory_report(train_toy("gmpo", 1.3, 4000, lr=3e-3, cosine=True, weight_norm="batch"), swiss)
    agent = train_toy("gmpg", 2.0, 4150, lr=3e-4, behaviour_lr=3e-3, behaviour_steps=4000, train_steps=16,
                      trace="exact", cosine=True)
    gmpg, mu = trajectory_report(agent, swiss), trajectory_report(agent.behaviour, swiss)
    # measured over seeds 0, 1, 2 (value / sample-to-data / coverage): GMPO 0.67-0.72 / 0.024 / 0.039-0.047;
    # GMPG 0.30-0.42 / 0.045-0.051 / 0.026-0.033; its mu -1.0 / 0.050-0.052 (data to data: 0.013).
    # At this budget GMPG's value is lower than GMPO's, which helps its coverage; at matched value (the full
    # budget of analysis/toy_trajectories.py) the coverage ordering still holds, by 7-15 %.
    assert gmpo["value"] > data_value + 1.0 and gmpg["value"] > data_value + 1.0, (gmpo["value"], gmpg["value"])
    assert gmpg["near"] > gmpo["near"] + 0.01, (gmpg["near"], gmpo["near"])  # measured gap 0.021-0.027
    assert gmpg["near"] > mu["near"] - 0.015, (gmpg["near"], mu["near"])
    assert gmpg["cov"] < gmpo["cov"] - 0.005, (gmpg["cov"], gmpo["cov"])  # measured gap 0.012-0.014
