"""The Intelligent Driver Model: one car-following law for the procedural traffic and the scenario's ego.

Treiber, Hennecke and Helbing, "Congested traffic states in empirical observations and
microscopic simulations", Phys. Rev. E 62, 1805 (2000):

    s* = s0 + max(0, v T + v (v - v_lead) / (2 sqrt(a b)))
    dv/dt = a (1 - (v / v0)^delta - (s* / s)^2)

clipped to [-max_brake, a]. A gap of 0.1 m or less brakes at `max_brake`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace


@dataclass(frozen=True)
class IDMParams:
    """One class's IDM parameters.

    Args:
        desired_speed: v0, m/s (the traffic draws each vehicle's own around it).
        max_accel: a, m/s^2.
        comfortable_brake: b, m/s^2.
        time_headway: T, seconds.
        min_gap: s0, metres (bumper to bumper, standing).
        max_brake: the hardest braking, m/s^2 (the clip's lower bound).
        delta: the acceleration exponent.
    """

    desired_speed: float
    max_accel: float
    comfortable_brake: float
    time_headway: float = 1.3
    min_gap: float = 2.0
    max_brake: float = 8.0
    delta: float = 4.0


# Lane vehicles of the procedural town (and the ego car, a "car").
IDM_PARAMS: dict[str, IDMParams] = {
    "car": IDMParams(11.0, 1.6, 2.5),
    "truck": IDMParams(9.0, 1.0, 2.0),
    "bus": IDMParams(8.5, 0.9, 1.8),
    "motorcycle": IDMParams(12.0, 2.2, 3.0),
    "bicycle": IDMParams(4.5, 0.9, 1.8),
}
# The ego: a car driven gently (1.5 m/s^2 at most), in the procedural traffic and in scripted scenarios.
EGO_IDM = replace(IDM_PARAMS["car"], max_accel=1.5)


def idm_acceleration(params: IDMParams, speed: float, desired_speed: float, gap: float, leader_speed: float) -> float:
    """dv/dt (m/s^2) of a vehicle at `speed` wanting `desired_speed`, `gap` metres behind a leader at
    `leader_speed` (no leader: a large gap and the vehicle's own speed)."""
    if gap <= 0.1:
        return -params.max_brake
    interaction = speed * params.time_headway + speed * (speed - leader_speed) / (
        2 * math.sqrt(params.max_accel * params.comfortable_brake)
    )
    s_star = params.min_gap + max(0.0, interaction)
    accel = params.max_accel * (1 - (speed / desired_speed) ** params.delta - (s_star / gap) ** 2)
    return float(min(max(accel, -params.max_brake), params.max_accel))
