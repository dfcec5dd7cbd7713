"""The insertion planner on a hand-made straight road: known poses, each kind of rejection, the auto controls."""

import numpy as np
import pytest
from shapely.geometry import Polygon

from dreamdrive.conditions.planner import InsertionPlanner, follow, resample
from dreamdrive.core.boxes import Box3D
from dreamdrive.core.camera import CameraRig
from dreamdrive.core.clip import Agent, Clip, Frame
from dreamdrive.core.errors import DreamdriveError
from dreamdrive.core.geometry import Transform
from dreamdrive.core.hdmap import HDMap, Lane
from dreamdrive.scenario.types import Actor, ScriptResult, Trajectory
from dreamdrive.world.assets import parametric_asset

FRAMES, HZ, EGO_SPEED = 24, 12, 5.0
CAR = parametric_asset("car", 0).info


def road_clip() -> Clip:
    """A 4-lane straight road along +x (y in [-7, 7]); the ego drives at 5 m/s in lane y=-1.75 from x=0;
    a parked car stands at (40, 1.75)."""
    rig = CameraRig.default(64, 36)
    blank = np.zeros((36, 64, 3), np.uint8)
    frames = [
        Frame(
            1_000_000 + round(i * 1e6 / HZ),
            Transform.from_pose2d(EGO_SPEED * i / HZ, -1.75, 0.0),
            {c: blank for c in rig.names},
            is_key=i % 6 == 0,
        )
        for i in range(FRAMES)
    ]
    parked = Box3D(np.array([40.0, 1.75, 0.8]), np.array([1.9, 4.5, 1.6]), 0.0, "vehicle.car", "parked")
    lanes = {
        f"lane{k}": Lane(
            f"lane{k}", np.array([[-100.0, y], [200.0, y]]) if y < 0 else np.array([[200.0, y], [-100.0, y]])
        )
        for k, y in enumerate((-5.25, -1.75, 1.75, 5.25))
    }
    hdmap = HDMap("road", drivable_areas=[np.array([[-100.0, -7], [200, -7], [200, 7], [-100, 7]])], lanes=lanes)
    return Clip("road", frames, [Agent("parked", "vehicle.car", [parked] * FRAMES)], rig, "road", hdmap)


def test_a_pose_in_the_first_ego_frame_lands_at_the_expected_global_pose():
    placement = InsertionPlanner(road_clip()).at(CAR, 20.0, 3.5, np.pi / 2)
    assert placement.track.shape == (FRAMES, 4)
    assert placement.track[0] == pytest.approx([20.0, 1.75, np.pi / 2, 0.0])
    assert (placement.track == placement.track[0]).all()
    box = placement.boxes(road_clip(), "new")[5]
    assert box.center == pytest.approx([20.0, 1.75, CAR.size[2] / 2])
    assert box.attributes == ("vehicle.parked",)


@pytest.mark.parametrize(
    "pose, reason",
    [
        ((20.0, 9.0, 0.0), "leaves the drivable area"),  # the far edge of the road is at ego y = +8.75
        ((40.0, 3.5, 0.0), "within 0.5 m of parked"),  # on top of the parked car
        ((10.0, 0.0, 0.0), "within 0.5 m of the ego"),  # the ego drives into it after about a second
    ],
)
def test_bad_poses_are_refused_with_the_reason(pose, reason):
    with pytest.raises(DreamdriveError, match=reason):
        InsertionPlanner(road_clip()).at(CAR, *pose)


def test_a_pose_out_of_every_camera_is_refused():
    planner = InsertionPlanner(road_clip(), depth=lambda i, channel: np.full((36, 64), 2.0, np.float32))
    with pytest.raises(DreamdriveError, match="no camera sees it"):  # a wall 2 m from every camera hides it
        planner.at(CAR, 25.0, 0.0, 0.0)


def test_a_clip_without_a_map_is_refused():
    clip = road_clip()
    clip.hdmap = None
    with pytest.raises(DreamdriveError, match="no map"):
        InsertionPlanner(clip)


def test_script_trajectories_are_laid_on_the_first_ego_pose_and_interpolated_in_time():
    # the script's road frame has its ego at (0, 0); a car starts 20 m ahead at 6 m/s, sampled at 10 Hz for 1.5 s
    data = ScriptResult(
        duration=1.5,
        hz=10,
        frames=16,
        weather="clear",
        time_of_day="day",
        lane_width=3.5,
        junction=None,
        ego=Trajectory([[0.5 * k, 0.0, 0.0, 5.0] for k in range(16)]),
        actors=[
            Actor(
                "car-1",
                "car",
                "vehicle.car",
                (1.9, 4.6, 1.6),
                Trajectory([[20 + 0.6 * k, 0.0, 0.0, 6.0] for k in range(16)]),
            )
        ],
    )
    clip = road_clip()
    [placement] = InsertionPlanner(clip).from_script(data, lambda kind: CAR)
    times = np.arange(FRAMES) / HZ
    inside = times <= 1.5 + 1e-9
    assert placement.track[inside, 0] == pytest.approx(20 + 6 * times[inside])
    assert placement.track[inside, 1] == pytest.approx(-1.75)
    assert np.isnan(placement.track[~inside]).all()  # absent once the script ends
    assert placement.source == "script:car-1"


@pytest.mark.parametrize("distance, low, high", [("near", 4, 20), ("mid", 20, 35), ("far", 35, 50)])
@pytest.mark.parametrize("side", ["left", "right"])
def test_auto_placements_respect_distance_and_side_and_keep_clear(distance, low, high, side):
    clip = road_clip()
    planner = InsertionPlanner(clip)
    rng = np.random.default_rng(0)
    placements, notes = planner.auto(4, lambda r: CAR, rng, distance, side)
    assert len(placements) == 4 and not notes
    road = Polygon(clip.hdmap.drivable_areas[0])
    ego_T_global = clip.frames[0].global_T_ego.inverse()
    for k, placement in enumerate(placements):
        boxes = placement.boxes(clip, f"new{k}")
        first = ego_T_global.apply(boxes[0].center[None])[0]
        assert low - 1e-6 <= np.hypot(first[0], first[1]) <= high + 1e-6
        assert first[1] > 1.0 if side == "left" else first[1] < -1.0
        for i, box in enumerate(boxes):  # independent checks with shapely polygons of the box corners
            shape = Polygon(box.corners()[[0, 1, 5, 4], :2])
            assert road.contains(shape)
            others = [a.boxes[i] for a in clip.agents] + [p.boxes(clip, "o")[i] for p in placements[:k]]
            for other in others:
                assert not shape.intersects(Polygon(other.corners()[[0, 1, 5, 4], :2]))
            ego = Box3D(np.array([*clip.frames[i].global_T_ego.translation[:2], 0.8]), np.array([1.95, 4.62, 1.7]),
                        0.0, "vehicle.car", "ego")  # fmt: skip
            assert not shape.intersects(Polygon(ego.corners()[[0, 1, 5, 4], :2]))


def test_follow_moves_along_a_path_at_speed_and_stops_at_its_end():
    path = resample(np.array([[0.0, 0.0], [10.0, 0.0], [10.0, 10.0]]), 1.0)
    track = follow(path, 4.0, np.array([0.0, 1.0, 3.0, 10.0]), lateral=0.5)
    assert track[0] == pytest.approx([0.0, 0.5, 0.0, 4.0])
    assert track[1] == pytest.approx([4.0, 0.5, 0.0, 4.0])
    assert track[2] == pytest.approx([10.0 - 0.5, 2.0, np.pi / 2, 4.0])  # 12 m along: 2 m up the second leg
    assert track[3][:2] == pytest.approx([9.5, 10.0], abs=1e-5) and track[3][3] == 0.0
