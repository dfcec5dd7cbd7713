"""Rectified flow: straight paths from data to noise, and the velocity the network learns.

x_t = (1 - t) x_0 + t eps with t in [0, 1] (t = 0 is data, t = 1 is noise); the
target is the velocity v = eps - x_0, so dx_t/dt = v along every path (Liu, Gong
and Liu, "Flow Straight and Fast", ICLR 2023; Esser et al., "Scaling Rectified Flow
Transformers", ICML 2024, for logit-normal timesteps and the resolution shift).

Given content (UniMVM's first frame or view, or anything a mask marks) stays clean:
it is put back at t = 0 and carries no loss.
"""

from __future__ import annotations

import math

import torch


def interpolate(x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """x_t = (1 - t) x_0 + t eps, with t (B,) broadcast over the other axes."""
    t = t.reshape(-1, *([1] * (x0.ndim - 1)))
    return (1 - t) * x0 + t * noise


def velocity_target(x0: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """The velocity dx_t/dt = eps - x_0 the network predicts."""
    return noise - x0


def shift_timesteps(t: torch.Tensor, shift: float) -> torch.Tensor:
    """Move timesteps towards noise by `shift` (> 1 for more tokens): t' = s t / (1 + (s - 1) t)."""
    return shift * t / (1 + (shift - 1) * t)


def resolution_shift(tokens: int, base_tokens: int = 256) -> float:
    """The timestep shift for a sample of `tokens` elements: sqrt(tokens / base_tokens), at least 1."""
    return max(1.0, math.sqrt(tokens / base_tokens))


def sample_timesteps(
    batch: int, generator: torch.Generator | None = None, mean: float = 0.0, std: float = 1.0, shift: float = 1.0
) -> torch.Tensor:
    """(B,) training timesteps: logit-normal (sigmoid of a normal draw), then shifted towards noise."""
    normal = torch.randn(batch, generator=generator) * std + mean
    return shift_timesteps(torch.sigmoid(normal), shift)


def flow_loss(
    prediction: torch.Tensor,
    x0: torch.Tensor,
    noise: torch.Tensor,
    given: torch.Tensor | None = None,
    weight: torch.Tensor | None = None,
) -> torch.Tensor:
    """Mean squared error of the predicted velocity, over the elements that are not given.

    Args:
        prediction, x0, noise: (B, ...) tensors of one shape.
        given: broadcastable to x0, 1 where content was given clean (no loss there), else 0.
        weight: broadcastable to x0, a per-element weight (for example more weight on thin lines).
    """
    error = (prediction - velocity_target(x0, noise)) ** 2
    mask = torch.ones_like(error)
    if given is not None:
        mask = mask * (1 - given.to(error.dtype))
    if weight is not None:
        mask = mask * weight.to(error.dtype)
    return (error * mask).sum() / mask.sum().clamp(min=1.0)
