"""The offline dataset as tensors (OfflineData) and the errors a dataset id can raise."""
from __future__ import annotations

from dataclasses import dataclass, fields, replace

import torch
from gymnasium.envs.registration import EnvSpec
from torch import Tensor

__all__ = ["DatasetCorruptError", "DatasetNotFoundError", "ObservationFormatError", "OfflineData"]


class DatasetNotFoundError(ValueError):
    """A dataset id that is neither on this machine nor downloadable."""


class DatasetCorruptError(ValueError):
    """A dataset whose files exist but cannot be read."""


class ObservationFormatError(ValueError):
    """Observations the loader cannot turn into flat vectors (e.g. a dict without desired_goal)."""


@dataclass
class OfflineData:
    """Transitions as float32 tensors on one device; reward and terminal have shape [N]."""

    obs: Tensor
    action: Tensor
    reward: Tensor
    next_obs: Tensor
    terminal: Tensor
    dataset_id: str
    env_id: str | None  # gymnasium id to evaluate on (None for bandits)
    ref_min_score: float | None
    ref_max_score: float | None
    obs_mean: Tensor | None  # set when observations were normalised (obs/next_obs already are)
    obs_std: Tensor | None
    env_spec: EnvSpec | None = None  # the full evaluation spec (kwargs included) when the dataset has one
    ref_source: str = "none"  # where ref_min/max_score come from: "d4rl" (D4RL's table), "dataset" or "none"
    dataset_ref_min_score: float | None = None  # the dataset's own references (metadata), None when it has none
    dataset_ref_max_score: float | None = None
    content_hash: str = ""  # 16 hex digits of sha256 over the transitions as read (see content_hash)

    @property
    def obs_dim(self) -> int:
        return self.obs.shape[1]

    @property
    def act_dim(self) -> int:
        return self.action.shape[1]

    @property
    def device(self) -> torch.device:
        return self.obs.device

    def __len__(self) -> int:
        return self.obs.shape[0]

    def sample(self, batch_size: int, generator: torch.Generator | None = None) -> dict[str, Tensor]:
        """A uniform minibatch drawn on the data's device (the generator must live on that device); "index" holds
        the transitions' dataset indices (LongTensor [B])."""
        idx = torch.randint(0, len(self), (batch_size,), device=self.obs.device, generator=generator)
        return {"obs": self.obs[idx], "action": self.action[idx], "reward": self.reward[idx],
                "next_obs": self.next_obs[idx], "terminal": self.terminal[idx], "index": idx}

    def normalize(self, obs: Tensor) -> Tensor:
        """Apply the saved observation statistics (identity when there are none)."""
        if self.obs_mean is None or self.obs_std is None:
            return obs
        return (obs - self.obs_mean.to(obs.device)) / self.obs_std.to(obs.device)

    def to(self, device: str | torch.device) -> OfflineData:
        """A copy with every tensor on `device`."""
        moved = {f.name: getattr(self, f.name).to(device) for f in fields(self)
                 if isinstance(getattr(self, f.name), Tensor)}
        return replace(self, **moved)
