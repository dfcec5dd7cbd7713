"""Trajectories from the function library: behaviours, kinematic limits, determinism."""

import math

import numpy as np
import pytest

from dreamdrive.scenario import library as lib


@pytest.fixture(autouse=True)
def fresh_scene():
    lib._reset()
    yield
    lib._reset()


def run(script) -> dict:
    script()
    return lib.result()


def actor(result, actor_id):
    return np.array(next(a for a in result["actors"] if a["id"] == actor_id)["trajectory"])


def test_cut_in_ends_in_the_ego_lane_ahead_of_the_ego():
    def script():
        lib.ego(speed=10)
        car = lib.vehicle("car", lane="left", ahead=6, speed=12)
        car.cut_in(at=1.0)
        lib.save()

    result = run(script)
    car, ego = actor(result, "car-1"), np.array(result["ego"])
    assert car[0, 1] == pytest.approx(3.5)  # starts one lane to the left
    after = int(5.0 * 12)
    assert abs(car[after, 1]) < 0.05  # in the ego's lane within 5 s
    assert (car[after:, 0] > ego[after:, 0]).all()  # and ahead of it


def test_kinematic_limits_hold():
    def script():
        lib.ego(speed=15)
        car = lib.vehicle("car", lane="right", ahead=30, speed=20)
        car.hard_brake(at=1.0)
        truck = lib.vehicle("truck", lane="left", ahead=-20, speed=8)
        truck.accelerate(to=20, at=0.5)
        truck.change_lane("right", at=2.0)
        lib.save()

    result = run(script)
    dt = 1 / 12
    for actor_id, kind in (("car-1", "car"), ("truck-2", "truck")):
        trajectory = actor(result, actor_id)
        accel = np.diff(trajectory[:, 3]) / dt
        assert accel.max() <= lib.ACCEL[kind] * 1.05 and -accel.min() <= lib.BRAKE[kind] * 1.05
        lateral_accel = np.diff(trajectory[:, 1], 2) / dt**2
        assert np.abs(lateral_accel).max() <= lib.LATERAL * 1.1
    car = actor(result, "car-1")
    assert car[-1, 3] == 0.0  # the hard brake comes to a stop
    # a cosine ramp from v with peak deceleration a lasts T = pi v / (2 a) and covers v T / 2
    stopping = 20 * (math.pi * 20 / (2 * lib.BRAKE["car"])) / 2
    assert car[-1, 0] - car[12, 0] == pytest.approx(stopping, rel=0.03)


def test_pedestrian_dash_out_enters_the_ego_lane_ahead():
    def script():
        lib.ego(speed=8)
        lib.parked_vehicle("car", side="right", ahead=25)
        person = lib.pedestrian(side="right", ahead=28)
        person.dash_out(at=1.0)
        lib.save()

    result = run(script)
    person = actor(result, "pedestrian-2")
    assert person[0, 1] < -5  # on the right sidewalk
    in_lane = np.flatnonzero(np.abs(person[:, 1]) < 1.75)
    assert len(in_lane) and in_lane[0] / 12 < 4.0  # in the ego's lane within 4 s
    speed = np.linalg.norm(np.diff(person[:, :2], axis=0), axis=1) * 12
    assert speed.max() == pytest.approx(3.0, rel=0.05)


def test_oncoming_vehicles_drive_the_other_way_and_scene_settings_stick():
    def script():
        lib.ego()
        bus = lib.vehicle("bus", lane="oncoming", ahead=80, speed=10)
        bus.keep_speed()
        lib.set_weather("fog")
        lib.set_time_of_day("dusk")
        lib.set_duration(5)
        lib.save()

    result = run(script)
    bus = actor(result, "bus-1")
    assert bus[-1, 0] < bus[0, 0] and bus[0, 2] == pytest.approx(math.pi)
    assert (result["weather"], result["time_of_day"], result["frames"]) == ("fog", "dusk", 61)


def test_same_script_same_result():
    def script():
        lib.ego(speed=12)
        car = lib.vehicle("motorcycle", lane="left", ahead=-10, speed=18)
        car.overtake(at=0.5)
        lib.work_zone(ahead=60, lane="right")
        lib.save()

    first = run(script)
    lib._reset()
    assert run(script) == first


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: lib.vehicle("spaceship"), "vehicle kind"),
        (lambda: lib.vehicle(lane="middle"), "lane 'middle'"),
        (lambda: lib.vehicle(ahead=1e4), "ahead must be between"),
        (lambda: lib.vehicle(color="plaid"), "colour 'plaid'"),
        (lambda: lib.vehicle(lane="ego").cut_in(), "already in the ego's lane"),
        (
            lambda: lib.vehicle(lane=1).change_lane("left").change_lane("left").change_lane("left"),
            "no lane to its left",
        ),
        (lambda: lib.set_duration(600), "duration must be between"),
        (lambda: lib.vehicle(speed=float("nan")), "must be a number"),
    ],
)
def test_bad_requests_say_what_is_wrong(call, message):
    with pytest.raises(lib.ScenarioError, match=message):
        call()
