"""GMPG's two policy losses on the multimodal bandit with its exact critic: what Q enters them, and how."""
import pytest
import torch

from genrl_core.data import bandits
from genrl_core.run.training import build_agent

SMALL = {"backbone": "mlp", "widths": (32, 32), "behaviour_steps": 0, "critic_steps": 0, "train_steps": 4,
         "trace": "exact", "beta": 2.0, "log_ratio_scale": "nats"}  # Eq. 42 as printed


class ShiftedCritic(bandits.ExactCritic):
    """The exact critic with Q and V both raised by the same constant: the same advantages."""

    def q_value(self, obs: torch.Tensor, act: torch.Tensor, target: bool = True) -> torch.Tensor:
        return super().q_value(obs, act, target) + 100.0


def agent_with(critic: torch.nn.Module, **extra):
    torch.manual_seed(0)
    agent = build_agent("gmpg", 1, 2, {**SMALL, **extra})
    agent.policy.load_state_dict(agent.behaviour.state_dict())  # pi = mu, as when policy training starts
    agent.critic = critic
    return agent


def test_importance_weighted_loss_depends_on_q_only_through_the_advantage():
    """Eq. 42 with V(s) as the baseline: shifting Q and V together leaves the loss unchanged, and at pi = mu it is
    mean(w * (-beta A) * log pi), with w = exp(beta A) clamped."""
    data = bandits.multimodal(128, seed=0)
    batch = data.sample(64, torch.Generator().manual_seed(0))
    v_mean = float(data.reward.mean())
    losses = [agent_with(c, static=True)._static_loss(batch)["policy_loss"]
              for c in (bandits.ExactCritic("multimodal", v_mean), ShiftedCritic("multimodal", v_mean + 100.0))]
    torch.testing.assert_close(losses[0], losses[1], rtol=1e-4, atol=1e-4)  # (not so with -beta Q)
    agent = agent_with(bandits.ExactCritic("multimodal", v_mean), static=True)
    adv = agent.critic.advantage(batch["obs"], batch["action"])
    log_pi = agent.policy.log_prob(batch["action"], batch["obs"], steps=4, trace="exact")
    expected = (torch.exp(2.0 * adv).clamp(max=100.0) * (-2.0 * adv) * log_pi).mean()
    torch.testing.assert_close(losses[0], expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("max_action", [0.0, 0.3])
def test_eq8_scores_q_at_the_clipped_action(max_action: float):
    """max_action > 0: the Q term of Eq. 8 is Q(s, clip(a)); 0: Q(s, a) as the paper writes it."""
    agent = agent_with(bandits.ExactCritic("multimodal", 0.0), max_action=max_action)
    obs = torch.zeros(256, 1)
    torch.manual_seed(1)
    q_policy = agent._kl_loss({"obs": obs})["q_policy"]
    torch.manual_seed(1)
    act, _ = agent.policy.sample_with_log_prob(obs, steps=4, trace="exact")
    assert float((act.abs() > 0.3).float().mean()) > 0.3  # the clip is active for these samples
    seen = act.clamp(-max_action, max_action) if max_action else act
    torch.testing.assert_close(q_policy, agent.critic.q_value(obs, seen).mean())


def test_negative_max_action_is_one_clear_error():
    with pytest.raises(ValueError, match="beta and max_action must be >= 0, got 2.0 and -1.0"):
        build_agent("gmpg", 1, 2, {**SMALL, "max_action": -1.0})
