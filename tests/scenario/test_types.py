"""Typed scenario contracts: the library's JSON round-trips, bad records are refused, the raster holds trajectories."""

import json

import numpy as np
import pytest

from dreamdrive.core.errors import DreamdriveError
from dreamdrive.scenario.sandbox import run_scenario_script
from dreamdrive.scenario.scene import trajectory_raster
from dreamdrive.scenario.types import ScriptResult, Trajectory

SCRIPT = (
    "ego(speed=10)\n"
    "car = vehicle('car', lane='left', ahead=12, speed=12, color='red')\n"
    "car.cut_in(at=1.0)\n"
    "walker = pedestrian(side='right', ahead=30)\n"
    "walker.cross(at=0.5)\n"
    "set_duration(4)\n"
    "save()\n"
)


@pytest.fixture(scope="module")
def result() -> ScriptResult:
    return run_scenario_script(SCRIPT)


def test_the_script_result_is_typed_and_round_trips_to_the_same_json(result):
    assert result.hz == 12 and result.frames == 49 and len(result.ego) == 49
    car, walker = result.actors
    assert (car.kind, car.color, walker.kind) == ("car", "red", "pedestrian")
    assert car.trajectory.array().shape == (49, 4)
    record = result.to_json()
    assert ScriptResult.from_json(json.loads(json.dumps(record))).to_json() == record
    assert list(record) == [
        "duration",
        "hz",
        "frames",
        "weather",
        "time_of_day",
        "lane_width",
        "junction",
        "ego",
        "actors",
    ]
    assert list(record["actors"][0]) == ["id", "class", "category", "size", "color", "state", "trajectory"]


def test_malformed_records_are_refused(result):
    record = result.to_json()
    with pytest.raises(DreamdriveError, match="scenario record is malformed"):
        ScriptResult.from_json({**record, "hz": None})
    broken = {**record, "actors": [{**record["actors"][0], "trajectory": [[1.0, 2.0]]}]}
    with pytest.raises(DreamdriveError, match="four values"):
        ScriptResult.from_json(broken)
    with pytest.raises(DreamdriveError, match="at least one row"):
        Trajectory([])


def test_the_trajectory_raster_holds_the_trajectories_only(result):
    """DriveDreamer-2's trajectory map: lit pixels lie on the drawn trajectories and nowhere else (no lane lines)."""
    size, resolution = 512, 0.2
    raster = trajectory_raster(result, size, resolution)
    lit = raster.max(axis=2) > 0
    x0, y0 = result.ego.start[:2]  # the ego starts facing +x, so the road frame is the ego frame shifted
    points = np.vstack([result.ego.array()] + [actor.trajectory.array() for actor in result.actors])
    rows = np.round(size / 2 - (points[:, 0] - x0) / resolution).astype(int)
    cols = np.round(size / 2 - (points[:, 1] - y0) / resolution).astype(int)
    near = np.zeros_like(lit)
    for r, c in zip(rows, cols):
        near[max(r - 4, 0) : r + 5, max(c - 4, 0) : c + 5] = True
    assert lit.sum() > 200
    assert not (lit & ~near).any()  # nothing drawn away from a trajectory
    assert (raster[rows[0], cols[0]] > 0).any()  # the ego's start is drawn (dark: the start of its time grade)
    assert tuple(raster[rows[48], cols[48]]) == (255, 255, 255)  # the ego's end: white, full brightness
