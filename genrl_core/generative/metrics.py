"""Sample-quality metrics used by tests, benchmarks and toy studies."""
from __future__ import annotations

import torch


def energy_distance(x: torch.Tensor, y: torch.Tensor) -> float:
    """Energy distance 2 E|X - Y| - E|X - X'| - E|Y - Y'| between two sample sets [n, d], [m, d] (V-statistic)."""
    xy = torch.cdist(x, y).mean()
    xx = torch.cdist(x, x).mean()
    yy = torch.cdist(y, y).mean()
    return float(2 * xy - xx - yy)


def mean_nearest_distance(samples: torch.Tensor, data: torch.Tensor) -> float:
    """Mean distance from each sample to its nearest data point (distance to the data manifold)."""
    return float(torch.cdist(samples, data).min(dim=1).values.mean())
