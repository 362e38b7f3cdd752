"""Pendulum-v1 medium (made locally): each baseline (SfBC, IDQL, QGPO, SRPO, Diffusion-QL) scores above the
behaviour policy, 3 seeds.

Reduced budget. Every run starts from the IQL critic pretrained once by conftest's `critic_file` (a warm start:
IDQL and SRPO keep it as their IQL critic, frozen here; SfBC, QGPO and Diffusion-QL load its Q into their TD
critic and their own Q-learning continues from it), since a critic trained from zero needs ~10k steps on
Pendulum before its Q depends on the action at all. Behaviour models and policies are small MLPs; the
candidate counts and solver steps are cut well below the papers' (choices of this test, not the papers'):

* IDQL: 3000 behaviour steps; acts by the highest-Q of 4 behaviour candidates (select="argmax"; the implicit
  expectile weights |tau - 1(Q < V)| at tau 0.7 barely move the behaviour's score with this critic).
* SfBC: 3000 behaviour steps, then 200 in-support TD steps (Eq. 29 with N = 4 candidates of 4 solver steps);
  acts by the best of 4 candidates.
* SRPO: 3000 behaviour steps, then 500 steps of the deterministic tanh policy, scaled to Pendulum's bound
  (max_action 2). beta 10: Pendulum's Q is ~ -500 with an action effect of a few units, so after q_norm the
  Q term at beta 1 is too weak against the score regulariser.
* Diffusion-QL: eta 20 (same reason as SRPO's beta), actions clipped at Pendulum's bound (max_action 2), an ICFM
  velocity policy (5 Euler steps from an untrained VPSDE eps model act poorly at this budget; a choice), a
  slower critic (1e-4) and a faster EMA (0.05) so the early, untrained EMA policy does not wreck the warm start.
* QGPO: 3000 behaviour steps, then 500 steps of in-support TD (2 candidates of 4 solver steps, Table 7's critic
  rate 1e-4) and CEP (K = 8 behaviour samples of 4 solver steps, energy_lr 3e-3, beta 3); acts with guidance scale
  0.3 and 32 Euler steps. The full tilt mu exp(beta Q) exploits this critic in the tails of mu (exact softmax(3 Q)
  selection among 16 / 64 behaviour samples scores 47 / 34 on seed 0, the best of 4 scores 79): 3-seed means are 47.5
  at guidance 0.3 (seeds 45.8, 48.4, 48.3), 41.2 at 0.5, 32.1 at 0.7 (and 28 at 1 after 1000 CEP steps at critic
  rate 1e-3). 8 uniform Euler steps never query the energy below t = 0.125, where it is accurate (within-state
  correlation with Q 0.86 at t = 0.001, 0.56 at t = 0.1); they scored 43 vs 49 for 32 steps
  (guidance 0.5, 1000 CEP steps).

Measured (whole file, `-m long`, 2 shared CPU cores, other jobs running): IDQL 55 s (seeds 70.7, 52.6, 37.3),
SfBC 74 s (86.4, 45.5, 48.2), SRPO 73 s (84.5, 85.3, 54.6), Diffusion-QL 231 s (82.7, 68.9, 80.1), QGPO 201 s
(45.8, 48.4, 48.3); behaviour 30.2; plus 179 s for the session's Pendulum datasets and critic. Diffusion-QL and QGPO
are marked `long` (`make test-long`): each of their steps samples the policy with gradient, or K behaviour samples.
QGPO with 250 CEP steps instead of 500 measured 41.1, 52.1, 45.3 (mean 46.2) at about half the CEP cost.
"""
from __future__ import annotations

import time

import numpy as np
import pytest

from conftest import PENDULUM_CRITIC as CRITIC
from genrl_core.evaluation import dataset_score
from genrl_core.run.training import train

# The whole file runs in `make test-long` for now: IDQL, SfBC and SRPO (202 s for the three, measured; see above)
# could join the 20-minute suite.
pytestmark = pytest.mark.long

SEEDS = (0, 1, 2)
MARGIN = 10.0  # required mean score above the behaviour policy's
MLP = dict(backbone="mlp", widths=(256, 256, 256), lr=1e-3, sampling_steps=8, loglik_steps=8)
FROZEN_IQL = dict(critic_steps=0, critic_alongside=False)  # IDQL / SRPO: the pretrained IQL critic as it is

# algo: (gradient steps, overrides)
RUNS = {
    "idql": (3000, dict(**FROZEN_IQL, select="argmax", candidates=4)),
    "sfbc": (3200, dict(behaviour_steps=3000, target_candidates=4, train_sampling_steps=4, candidates=4,
                        select="argmax")),
    "srpo": (3500, dict(**FROZEN_IQL, behaviour_steps=3000, beta=10.0, max_action=2.0)),
    # as measured: the ODE policy, one sample, the EMA policy acting (the DQL defaults follow Diffusion-QL's code
    # instead: a 5-level DDPM, one of 50 samples drawn by softmax(Q), the online policy acting)
    "dql": (1500, dict(diffusion="ode", path="icfm", prediction="velocity", eta=20.0, max_action=2.0, critic_lr=1e-4,
                       ema_tau=0.05, sampling_steps=5, candidates=1, act_with_ema=True)),
    "qgpo": (3500, dict(behaviour_steps=3000, target_candidates=2, train_sampling_steps=4, energy_candidates=8,
                        energy_lr=3e-3, critic_lr=1e-4, guidance_scale=0.3, sampling_steps=32)),
}
LONG = ("dql", "qgpo")
XFAIL: dict[str, str] = {}  # algo -> reason, for a case expected to fail


def _param(algo: str):
    marks = [pytest.mark.long] if algo in LONG else []
    if algo in XFAIL:
        marks.append(pytest.mark.xfail(reason=XFAIL[algo], strict=False))
    return pytest.param(algo, marks=marks)


@pytest.fixture(scope="module")
def behaviour_score(pendulum_datasets: dict) -> float:
    return dataset_score(pendulum_datasets["medium"])


def seed_scores(algo: str, dataset_id: str, critic_file: str, precision: str = "fp32") -> list[float]:
    """Final evaluation score (10 episodes) of one run per seed, trained at `precision`."""
    steps, overrides = RUNS[algo]
    overrides = {**MLP, **CRITIC, **overrides, "critic_init": critic_file}
    return [train(algo, dataset_id, steps=steps, seed=s, eval_episodes=10, overrides=overrides, precision=precision,
                  log=None)[-1]["score_mean"] for s in SEEDS]


@pytest.mark.parametrize("algo", [_param(a) for a in RUNS])
def test_baseline_beats_the_behaviour_policy(algo: str, pendulum_datasets: dict, critic_file: str,
                                             behaviour_score: float) -> None:
    start = time.perf_counter()
    scores = seed_scores(algo, pendulum_datasets["medium"], critic_file)
    print(f"Pendulum medium {algo}: behaviour {behaviour_score:.1f}, seeds {[round(x, 1) for x in scores]}, "
          f"mean {np.mean(scores):.1f} ({time.perf_counter() - start:.0f}s)")
    assert np.mean(scores) > behaviour_score + MARGIN, (algo, scores, behaviour_score)


# bf16 backbones (critics stay float32) for the three whose updates bf16 speeds up most and whose losses differ:
# matching (IDQL), score distillation (SRPO), a policy gradient through the sampler (Diffusion-QL). Measured (seeds
# 0, 1, 2; fp32 in the module docstring): IDQL 70.6, 55.5, 37.1 (37 s); SRPO 84.8, 85.3, 54.5 (43 s); Diffusion-QL
# 84.2, 68.3, 76.1 (135 s)
@pytest.mark.parametrize("algo", ["idql", "srpo", "dql"])
def test_baseline_in_bf16_beats_the_behaviour_policy(algo: str, pendulum_datasets: dict, critic_file: str,
                                                     behaviour_score: float) -> None:
    start = time.perf_counter()
    scores = seed_scores(algo, pendulum_datasets["medium"], critic_file, "bf16")
    print(f"Pendulum medium {algo} bf16: behaviour {behaviour_score:.1f}, seeds {[round(x, 1) for x in scores]}, "
          f"mean {np.mean(scores):.1f} ({time.perf_counter() - start:.0f}s)")
    assert np.mean(scores) > behaviour_score + MARGIN, (algo, scores, behaviour_score)
