"""The interface every algorithm implements, and the checkpoint plumbing they share."""
from __future__ import annotations

from typing import Any

import torch
from torch import nn


class Agent(nn.Module):
    """An offline-RL algorithm: `update(batch, step)` trains, `act(obs)` picks actions.

    Subclasses keep their optimisers as attributes (any torch.optim.Optimizer attribute, also inside
    sub-modules such as a critic, is checkpointed). `update` returns detached loss tensors and
    never reads values back to the host.
    """

    def update(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    @torch.no_grad()
    def act(self, obs: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _optimizers(self) -> dict[str, torch.optim.Optimizer]:
        found = {}
        for mod_name, mod in self.named_modules():
            for attr, value in vars(mod).items():
                if isinstance(value, torch.optim.Optimizer):
                    found[f"{mod_name}.{attr}" if mod_name else attr] = value
        return found

    def full_state(self) -> dict[str, Any]:
        """Parameters, buffers and optimiser states, loadable with torch.load(weights_only=True)."""
        return {"model": self.state_dict(),
                "optim": {k: opt.state_dict() for k, opt in self._optimizers().items()}}

    def load_full_state(self, state: dict[str, Any]) -> None:
        """Restore what full_state() returned."""
        self.load_state_dict(state["model"])
        for k, opt in self._optimizers().items():
            opt.load_state_dict(state["optim"][k])
