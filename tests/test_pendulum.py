"""Pendulum-v1 medium (made locally): GMPO and GMPG score above BC and above the behaviour policy, 3 seeds.

Reduced budget: the IQL critic is pretrained once (Algorithm 1's first loop, seed 0) and shared by every
policy run here through `critic_init`; each algorithm then trains its own policy for a few thousand steps
with seeds 0, 1, 2. The critic needs ~10k steps before its Q depends on the action at all (measured against
Monte-Carlo Q of the behaviour policy: the centred correlation stays ~0 until the value's magnitude has
propagated over the 1 / (1 - gamma) horizon), hence value_init and a faster target.
"""
from __future__ import annotations

import numpy as np
import pytest

from conftest import PENDULUM_CRITIC as CRITIC
from genrl_core.evaluation import dataset_score
from genrl_core.train import train

SEEDS = (0, 1, 2)
POLICY = dict(backbone="mlp", widths=(256, 256, 256), lr=1e-3, sampling_steps=16, critic_steps=0,
              critic_alongside=False, loglik_steps=8)
STEPS = {"bc": 3000, "gmpo": 3000, "gmpg": 3600}  # GMPG: 3000 behaviour-cloning steps of mu, then 600 of Eq. 8
GMPG = dict(beta=1.0, behaviour_steps=3000, behaviour_lr=1e-3, lr=1e-4, train_steps=16, trace="exact")


@pytest.fixture(scope="module")
def baseline(pendulum_datasets: dict) -> dict[str, float]:
    """The behaviour policy's score and BC's mean score over the seeds (one BC run per seed, shared by the tests)."""
    dataset_id = pendulum_datasets["medium"]
    bc = scores("bc", dataset_id, {k: v for k, v in POLICY.items() if not k.startswith("critic")})
    return {"behaviour": dataset_score(dataset_id), "bc": float(np.mean(bc))}


def scores(algo: str, dataset_id: str, overrides: dict) -> list[float]:
    """Final evaluation score (10 episodes) of one run per seed."""
    return [train(algo, dataset_id, steps=STEPS[algo], seed=s, eval_episodes=10, overrides=overrides,
                  log=None)[-1]["score_mean"] for s in SEEDS]


def test_gmpo_beats_bc_and_the_behaviour_policy(pendulum_datasets: dict, critic_file: str, baseline: dict) -> None:
    gmpo = scores("gmpo", pendulum_datasets["medium"], {**POLICY, **CRITIC, "beta": 1.0, "critic_init": critic_file})
    print(f"Pendulum medium: {baseline}, GMPO {gmpo}")
    # measured: behaviour ~30, BC ~30, GMPO (beta 1) ~85-90 on seed 0
    assert np.mean(gmpo) > baseline["bc"] + 15 and np.mean(gmpo) > baseline["behaviour"] + 15, (gmpo, baseline)


def test_gmpg_beats_bc_and_the_behaviour_policy(pendulum_datasets: dict, critic_file: str, baseline: dict) -> None:
    gmpg = scores("gmpg", pendulum_datasets["medium"], {**POLICY, **CRITIC, **GMPG, "critic_init": critic_file})
    print(f"Pendulum medium: {baseline}, GMPG {gmpg}")
    # measured: GMPG (beta 1, T = 16, exact trace) 93.8 on seed 0 after 600 policy-gradient steps
    assert np.mean(gmpg) > baseline["bc"] + 15 and np.mean(gmpg) > baseline["behaviour"] + 15, (gmpg, baseline)
