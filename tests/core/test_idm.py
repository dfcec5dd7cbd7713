"""The one IDM (Treiber, Hennecke and Helbing 2000): known answers, and the scenario's ego follows it."""

import pytest

from dreamdrive.core.idm import EGO_IDM, IDM_PARAMS, idm_acceleration
from dreamdrive.scenario import library


def test_known_answers():
    car = IDM_PARAMS["car"]  # a = 1.6, b = 2.5, T = 1.3 s, s0 = 2 m
    # free road at half the desired speed: a (1 - (1/2)^4)
    assert idm_acceleration(car, 5.5, 11.0, 1e9, 5.5) == pytest.approx(1.6 * (1 - 0.5**4))
    # at the desired gap s* = s0 + v T behind a leader at the same speed: the interaction cancels the free term's 1
    assert idm_acceleration(car, 5.5, 11.0, 2.0 + 5.5 * 1.3, 5.5) == pytest.approx(1.6 * (1 - 0.5**4 - 1.0))
    # closing fast on a stopped leader: braking bounded by max_brake; no gap at all: max_brake
    assert idm_acceleration(car, 15.0, 11.0, 5.0, 0.0) == -car.max_brake
    assert idm_acceleration(car, 3.0, 11.0, 0.05, 0.0) == -car.max_brake
    # never more than a, even far below the desired speed
    assert idm_acceleration(car, 0.0, 30.0, 1e9, 0.0) == pytest.approx(car.max_accel)
    assert EGO_IDM.max_accel == 1.5 and EGO_IDM.comfortable_brake == car.comfortable_brake


def test_the_scripted_ego_brakes_for_a_stopped_car_by_the_idm():
    """The library's reactive ego follows `core.idm` with the ego's parameters: its first step's acceleration
    behind a stopped car is the IDM's answer for that gap."""
    library._reset()
    try:
        library.ego(speed=10)
        library.vehicle("car", lane="ego", ahead=30, speed=0)
        library.set_duration(3)
        library.save()
        ego = library.result()["ego"]
    finally:
        library._reset()
    gap = 30.0 - library.SIZE["car"][1]  # bumper to bumper: the two cars' half lengths
    expected = idm_acceleration(EGO_IDM, 10.0, 10.0, gap, 0.0)
    assert expected < -1.0  # it does brake
    assert (ego[1][3] - ego[0][3]) * library.HZ == pytest.approx(expected, abs=1e-4)
    assert all(later[3] <= earlier[3] + 1e-9 for earlier, later in zip(ego, ego[1:]))  # and keeps braking or holds
