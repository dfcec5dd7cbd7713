"""ODE samplers for rectified flow, as plain functions of a velocity model.

`model(x, t)` returns the velocity at x for timesteps t (B,); sampling integrates
dx/dt = v from t = 1 (noise) down to t = 0 (data). Classifier-free guidance
(Ho and Salimans, 2022) mixes a conditional and an unconditional velocity:
v = v_u + g (v_c - v_u).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from dreamdrive.diffusion.flow import shift_timesteps

Velocity = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def timesteps(steps: int, shift: float = 1.0) -> torch.Tensor:
    """steps + 1 times from 1 to 0, shifted towards noise by `shift` (more steps where it matters)."""
    if steps < 1:
        raise ValueError(f"a sampler needs at least one step, got {steps}.")
    return shift_timesteps(torch.linspace(1.0, 0.0, steps + 1), shift)


def guided(conditional: Velocity, unconditional: Velocity, scale: float) -> Velocity:
    """Classifier-free guidance: v_u + scale (v_c - v_u); scale 1 is the conditional model alone."""
    if scale == 1.0:
        return conditional

    def velocity(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        v_c, v_u = conditional(x, t), unconditional(x, t)
        return v_u + scale * (v_c - v_u)

    return velocity


@torch.no_grad()
def euler(
    model: Velocity,
    noise: torch.Tensor,
    steps: int = 30,
    shift: float = 1.0,
    keep: Callable[[torch.Tensor, float], torch.Tensor] | None = None,
    callback: Callable[[int, torch.Tensor], None] | None = None,
    start: float = 1.0,
) -> torch.Tensor:
    """Euler's method from noise (t = 1) to data (t = 0): x <- x + (t_next - t) v(x, t).

    `keep(x, t)` puts given content back after every step (UniMVM's masks); `callback(i, x)` sees each step.
    `start` < 1 starts from a partly noised sample x_start = (1 - start) x_0 + start eps (SDEdit), the schedule
    scaled to run from `start` to 0.
    """
    if not 0 < start <= 1:
        raise ValueError(f"a sampler starts at a time in (0, 1], got {start}.")
    x = noise
    times = (timesteps(steps, shift) * start).to(noise.device)
    for i in range(steps):
        t, t_next = float(times[i]), float(times[i + 1])
        x = x + (t_next - t) * model(x, torch.full((x.shape[0],), t, device=x.device, dtype=x.dtype))
        if keep is not None:
            x = keep(x, t_next)
        if callback is not None:
            callback(i, x)
    return x


@torch.no_grad()
def heun(
    model: Velocity,
    noise: torch.Tensor,
    steps: int = 15,
    shift: float = 1.0,
    keep: Callable[[torch.Tensor, float], torch.Tensor] | None = None,
    callback: Callable[[int, torch.Tensor], None] | None = None,
) -> torch.Tensor:
    """Heun's second-order method (Karras et al., "Elucidating the Design Space", 2022, algorithm 1): an Euler
    step, then the average of the velocities at both ends; the last step to t = 0 is plain Euler."""
    x = noise
    times = timesteps(steps, shift).to(noise.device)
    batch = x.shape[0]
    for i in range(steps):
        t, t_next = float(times[i]), float(times[i + 1])
        v = model(x, torch.full((batch,), t, device=x.device, dtype=x.dtype))
        proposal = x + (t_next - t) * v
        if t_next > 0:
            v_next = model(proposal, torch.full((batch,), t_next, device=x.device, dtype=x.dtype))
            proposal = x + (t_next - t) * (v + v_next) / 2
        x = proposal if keep is None else keep(proposal, t_next)
        if callback is not None:
            callback(i, x)
    return x
