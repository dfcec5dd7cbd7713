"""Turns and U-turns at the junction: the paths, their kinematic limits, the junction map and the translator."""

import math

import numpy as np
import pytest

from dreamdrive.core.errors import DreamdriveError
from dreamdrive.pipelines.scenario import from_prompt
from dreamdrive.scenario import library as lib
from dreamdrive.scenario.junction import CENTRE_Y, HALF, junction_town
from dreamdrive.scenario.offline import translate_offline
from dreamdrive.scenario.scene import Scenario, check, scenario_road
from dreamdrive.scenario.types import ScriptResult


@pytest.fixture(autouse=True)
def fresh_scene():
    lib._reset()
    yield
    lib._reset()


def turning(kind: str, lane: str, speed: float = 9.0) -> tuple[dict, np.ndarray]:
    lib.ego(speed=6)
    lib.junction(ahead=45)
    car = lib.vehicle("car", lane=lane, ahead=10, speed=speed)
    getattr(car, kind)()
    lib.set_duration(14)
    lib.save()
    result = lib.result()
    return result, np.array(result["actors"][0]["trajectory"])


@pytest.mark.parametrize(
    "kind, lane, heading, where",
    [("turn_left", "left", math.pi / 2, "north"), ("turn_right", "right", -math.pi / 2, "south"),
     ("u_turn", "ego", math.pi, "back")],
)  # fmt: skip
def test_turns_end_on_the_exit_road_within_the_kinematic_limits(kind, lane, heading, where):
    result, track = turning(kind, lane)
    end = track[-1]
    assert math.cos(end[2] - heading) > 0.99  # facing the exit road's direction
    if where == "north":
        assert end[1] > CENTRE_Y + HALF and abs(end[0] - 45) < 7
    elif where == "south":
        assert end[1] < CENTRE_Y - HALF and abs(end[0] - 45) < 7
    else:
        assert end[0] < 45 - HALF and end[1] == pytest.approx(10.5, abs=0.05)  # in the far oncoming lane
    dt = 1 / 12
    speed = track[:, 3]
    assert (np.diff(speed) / dt).max() <= lib.ACCEL["car"] + 1e-6
    assert (-np.diff(speed) / dt).max() <= lib.BRAKE["car"] + 1e-6
    # lateral acceleration v * yaw rate stays within the library's limit (with the headings' finite differences)
    yaw_rate = np.abs(np.diff(np.unwrap(track[:, 2]))) / dt
    assert (speed[1:] * yaw_rate).max() <= lib.LATERAL * 1.25
    assert speed.min() < 9.0 - 1.0  # it slowed down for the bend
    data = ScriptResult.from_json(result)
    town = scenario_road(data, 0)
    assert check(data, town) == []  # on the junction's drivable area, clear of the ego


def test_the_junction_map_connects_every_approach():
    town = junction_town(40.0, -20.0, 120.0, 0)
    lanes = town.hdmap.lanes
    assert {"rw:f0", "rw:f2", "rn:f0", "rs:b1", "re:f1"} <= set(lanes)
    reachable = {lane for successor in lanes["rw:f0"].successors for lane in lanes[successor].successors}
    assert "rn:f0" in reachable and "re:f0" in reachable  # left and straight from the innermost lane
    assert list(town.ends) == ["c"] and len(town.ends["c"]) == 4
    assert len(town.hdmap.ped_crossings) == 4


def test_turns_that_cannot_happen_are_refused_with_the_reason():
    lib.ego(speed=8)
    lib.junction(ahead=40)
    with pytest.raises(DreamdriveError, match="only vehicles driving our way"):
        lib.vehicle("car", lane="oncoming", ahead=60).turn_left()
    with pytest.raises(DreamdriveError, match="past the junction's entry"):
        lib.vehicle("car", lane="left", ahead=35).turn_left()
    car = lib.vehicle("car", lane="left", ahead=5)
    car.turn_left()
    with pytest.raises(DreamdriveError, match="one turn per actor"):
        car.turn_right()
    with pytest.raises(DreamdriveError, match="too long to turn round"):
        lib.vehicle("bus", lane="ego", ahead=-20).u_turn()
    lib.vehicle("truck", lane="ego", ahead=-30).u_turn()
    with pytest.raises(DreamdriveError, match="already has a junction"):
        lib.junction(ahead=60)
    with pytest.raises(DreamdriveError, match="start its U-turn from lane 'right'"):
        lib.save()
    lib._scene.actors.pop()
    late = lib.vehicle("car", lane="ego", ahead=-5, speed=9)
    late.change_lane("right", at=1.0)
    late.turn_right()
    late.change_lane("left", at=3.5)
    with pytest.raises(DreamdriveError, match="still changing lanes"):
        lib.save()


@pytest.mark.parametrize(
    "prompt, method",
    [
        ("the white car ahead turns left at the intersection", "car1_1.turn_left()"),
        ("a lorry turns right at the junction in the fog", "truck1_1.turn_right()"),
        ("the van in front makes a u-turn", "car1_1.u_turn()"),
        ("we turn right at the crossroads, and a cyclist on the right", "me.turn_right()"),
        ("a red car merges from the side road on the right", "car1_1.merge()"),
    ],
)
def test_the_offline_translator_turns_at_the_junction(prompt, method):
    script = translate_offline(prompt, retrieve=False)
    assert method in script and "junction(ahead=" in script
    scenario, town = from_prompt(prompt)
    assert isinstance(scenario, Scenario) and town.name.startswith("scenario-junction")
    assert check(scenario.result, town) == [], scenario.report  # clear and on the road, repaired if need be


@pytest.mark.parametrize("side, lane_y", [("right", -3.5), ("left", 3.5)])
def test_a_side_road_vehicle_merges_into_our_direction(side, lane_y):
    lib.ego(speed=5)
    lib.junction(ahead=45)
    car = lib.side_road_vehicle("car", side=side, distance=20, speed=7)
    car.merge()
    waiting = lib.side_road_vehicle("car", side="left" if side == "right" else "right", distance=10, speed=6)
    lib.set_duration(14)
    lib.save()
    result = lib.result()
    track = np.array(result["actors"][0]["trajectory"])
    start_y = CENTRE_Y - HALF - 20 if side == "right" else CENTRE_Y + HALF + 20
    assert track[0, 1] == pytest.approx(start_y, abs=0.1)
    assert track[-1, 0] > 45 + HALF and track[-1, 1] == pytest.approx(lane_y, abs=0.05)  # joined our lane
    assert math.cos(track[-1, 2]) > 0.99
    stopped = np.array(result["actors"][1]["trajectory"])
    assert stopped[-1, 3] == 0.0 and abs(stopped[-1, 1] - CENTRE_Y) == pytest.approx(HALF, abs=0.5)  # at the edge
    typed = ScriptResult.from_json(result)
    assert check(typed, scenario_road(typed, 0)) == []
    with pytest.raises(DreamdriveError, match="can only merge"):
        waiting.turn_left()
    with pytest.raises(DreamdriveError, match="cannot change lanes"):
        waiting.change_lane("left")
    with pytest.raises(DreamdriveError, match="not on a side road"):
        lib.vehicle("car", lane="ego", ahead=-10).merge()
