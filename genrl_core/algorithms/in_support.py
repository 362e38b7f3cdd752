"""Pieces the baselines share (paper Appendix C): a behaviour model's matching step, behaviour candidates per
state, choosing among candidates, and the in-support Q-learning of SfBC and QGPO (Eq. 29).

As the original SfBC and QGPO do, the candidates of every dataset state are drawn once, when behaviour training
ends (the behaviour model is frozen from then on), and looked up by the batch's dataset indices in each update
(candidate_cache; needs bind_data). The cache is derived state: rebuilt, identically, after a resume."""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, TYPE_CHECKING

import torch

from genrl_core.algorithms.base import Agent, PolicyConfig, make_policy
from genrl_core.algorithms.config import check_choice, check_min, doc, with_defaults
from genrl_core.algorithms.critics import CriticConfig, TDCritic, warm_start
from genrl_core.generative.model import GenerativeModel

if TYPE_CHECKING:
    from genrl_core.data.offline import OfflineData

CACHE_CHUNK = 65536  # behaviour samples drawn per chunk while the candidate cache is built (bounds its memory)
CACHE_SEED_OFFSET = 1_000_003  # the cache's noise generator is seeded with seed + this (apart from the run's streams)
SELECTS = ("argmax", "softmax")  # how an action is chosen among candidates scored by Q
TARGETS = ("softmax", "max")  # the next-state value of Eq. 29 over behaviour candidates


def matching_step(model: GenerativeModel, opt: torch.optim.Optimizer, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """One step of the model's matching loss on dataset (state, action) pairs (paper Eq. 2); the detached loss."""
    loss = model.loss(batch["action"], batch["obs"]).mean()
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return loss.detach()


def sample_candidates(model: GenerativeModel, obs: torch.Tensor, n: int, solver: str,
                      steps: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(states [B*n, o], actions [B*n, d]): n samples of the model per state, grouped state by state, no gradient."""
    obs_n = obs.repeat_interleave(n, dim=0)
    with torch.no_grad():
        return obs_n, model.sample(obs_n, solver=solver, steps=steps)


@torch.no_grad()
def draw_candidates(model: GenerativeModel, states: torch.Tensor, n: int, solver: str, steps: int,
                    generator: torch.Generator) -> torch.Tensor:
    """[S, n, d]: n samples of the model per state, in chunks of CACHE_CHUNK samples, the noise from `generator`."""
    out = torch.empty(states.shape[0], n, model.x_dim, device=states.device, dtype=states.dtype)
    for chunk, rows in zip(states.split(max(1, CACHE_CHUNK // n)), out.split(max(1, CACHE_CHUNK // n))):
        noise = torch.randn(chunk.shape[0] * n, model.x_dim, generator=generator, device=states.device,
                            dtype=states.dtype)
        rows.copy_(model.sample(chunk.repeat_interleave(n, dim=0), solver=solver, steps=steps, noise=noise)
                   .view(-1, n, model.x_dim))
    return out


def pick(actions: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Row index[b] of each state's group of candidates: actions [B*n, d], index [B] -> [B, d]."""
    grouped = actions.view(index.shape[0], -1, actions.shape[-1])
    return grouped[torch.arange(index.shape[0], device=index.device), index]


def select(actions: torch.Tensor, scores: torch.Tensor, n: int, how: str, beta: float) -> torch.Tensor:
    """One action per state among n candidates: the highest score (argmax) or a draw from softmax(beta * score)."""
    scores = scores.view(-1, n)
    if how == "argmax":
        return pick(actions, scores.argmax(dim=1))
    # the draw torch.multinomial(p, 1) makes (the same exponential variates), without its two host-side checks
    p = torch.softmax(beta * scores, dim=1)
    return pick(actions, (p / torch.empty_like(p).exponential_()).argmax(dim=1))


@dataclass
@with_defaults(path=doc("vpsde", "behaviour model's path: SfBC and QGPO use VPSDE (paper Table 3)"),
               prediction=doc("eps", "behaviour network's output (SfBC / QGPO: a noise-prediction score model)"))
class InSupportConfig(CriticConfig, PolicyConfig):
    """A behaviour model and a double-Q critic trained by in-support Q-learning (paper Eq. 29): SfBC and QGPO."""

    behaviour_steps: int = doc(1000, "matching steps of the behaviour model; then it is frozen and the critic trains")
    target_candidates: int = doc(16, "N behaviour samples per next state in Eq. 29's target (a choice)")
    target: str = doc("softmax", "next-state value over the N: softmax (Eq. 29, one draw from softmax(beta Q)) or max")
    target_beta: float = doc(1.0, "temperature of the target softmax (Eq. 29: 1)")
    train_sampling_steps: int = doc(16, "solver steps of the behaviour samples drawn in training (a choice)")
    candidate_cache: bool = doc(True, "draw each dataset state's behaviour candidates once, when behaviour training "
                                      "ends, and look them up by index (as SfBC / QGPO do; ~190 MB per 16 candidates "
                                      "of 3-d actions per 1M states); False: fresh samples in every update")

    algo: ClassVar[str] = "in-support"  # the algorithm's name in error messages

    def __post_init__(self) -> None:
        check_choice(self.algo, "target", self.target, TARGETS)
        for name in ("target_candidates", "train_sampling_steps", "sampling_steps"):
            check_min(self.algo, name, getattr(self, name), 1)

class InSupportAgent(Agent):
    """Behaviour pretraining, then TD learning whose next action is chosen among the frozen behaviour's samples."""

    cfg: InSupportConfig
    name = "in-support"

    def __init__(self, cfg: InSupportConfig, obs_dim: int, act_dim: int):
        super().__init__()
        self.cfg = cfg
        self.behaviour = make_policy(cfg, obs_dim, act_dim)
        self.behaviour_opt = torch.optim.Adam(self.behaviour.parameters(), lr=cfg.lr)
        self.critic = TDCritic(obs_dim, act_dim, cfg)
        if cfg.critic_init:  # a warm start: the in-support Q-learning of Eq. 29 continues from it
            warm_start(cfg.critic_init, self.critic)
        self.data: OfflineData | None = None  # the bound dataset (bind_data); plain attributes, not saved
        self.cache_seed = 0
        self.cache: dict[str, torch.Tensor] | None = None  # dataset field -> its states' candidates [N, n, d]

    def bind_data(self, data: OfflineData, seed: int) -> None:
        """The dataset whose batches ("index" key) this agent trains on, and the run's seed: with candidate_cache,
        its candidates are drawn once, at the first update after behaviour training, from a generator seeded by
        seed + CACHE_SEED_OFFSET."""
        self.data, self.cache_seed, self.cache = data, seed, None

    def cache_sizes(self) -> dict[str, int]:
        """Dataset field -> candidates per state of that field's cache (Eq. 29: N per next state)."""
        return {"next_obs": self.cfg.target_candidates}

    def build_cache(self) -> dict[str, torch.Tensor]:
        """Every bound dataset state's candidates, drawn from the frozen behaviour model."""
        c, data = self.cfg, self.data
        g = torch.Generator(device=data.device).manual_seed(self.cache_seed + CACHE_SEED_OFFSET)
        return {key: draw_candidates(self.behaviour, getattr(data, key), n, c.solver, c.train_sampling_steps, g)
                for key, n in self.cache_sizes().items()}

    def cached(self, batch: dict[str, torch.Tensor], key: str) -> torch.Tensor | None:
        """The cached candidates [B*n, d] of batch[key]'s states (grouped state by state), or None when they are
        to be sampled fresh (candidate_cache off, no bound dataset, or a batch without "index")."""
        if not self.cfg.candidate_cache or self.data is None or "index" not in batch:
            return None
        if self.cache is None:
            self.cache = self.build_cache()
        return self.cache[key][batch["index"]].flatten(0, 1)

    def candidates(self, states: torch.Tensor, n: int,
                   cand: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(states [B*n, o], actions [B*n, d]) grouped state by state: the given cached candidates, or n fresh
        behaviour samples per state."""
        if cand is None:
            return sample_candidates(self.behaviour, states, n, self.cfg.solver, self.cfg.train_sampling_steps)
        return states.repeat_interleave(n, dim=0), cand

    def load_full_state(self, state: dict) -> None:
        super().load_full_state(state)
        self.cache = None  # drawn again from the loaded behaviour model

    def update(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, torch.Tensor]:
        """Behaviour matching before behaviour_steps, in-support TD learning after."""
        if step < self.cfg.behaviour_steps:
            return {"behaviour_loss": matching_step(self.behaviour, self.behaviour_opt, batch)}
        cand = self.cached(batch, "next_obs")
        return self.critic.update(batch, lambda next_obs: self.next_action(next_obs, cand))

    @torch.no_grad()
    def next_action(self, next_obs: torch.Tensor, cand: torch.Tensor | None = None) -> torch.Tensor:
        """a' for Eq. 29: the max-Q one of N behaviour samples (cand [B*N, d] if given, else fresh ones), or one
        drawn from softmax(beta Q) over them (E over that draw of Q(s', a') is exactly Eq. 29's softmax value)."""
        c = self.cfg
        obs_n, cand = self.candidates(next_obs, c.target_candidates, cand)
        how = "argmax" if c.target == "max" else "softmax"
        return select(cand, self.critic.q_value(obs_n, cand, target=True), c.target_candidates, how, c.target_beta)
