"""Scripts placed on other maps: a route along a procedural town's lanes, and a bent road frame."""

import numpy as np
import pytest

from dreamdrive.core.errors import DreamdriveError
from dreamdrive.pipelines.scenario import from_prompt
from dreamdrive.scenario.placement import RouteFrame, follow_route
from dreamdrive.scenario.scene import check, to_clip
from dreamdrive.world.town import make_town


def test_a_route_frame_bends_the_road_frame_along_its_route():
    # a quarter circle of radius 20 m turning left, starting at the origin heading +x
    angles = np.linspace(0, np.pi / 2, 2000)
    route = np.column_stack([20 * np.sin(angles), 20 - 20 * np.cos(angles)])
    frame = RouteFrame(route, x_start=-5.0)
    quarter = np.pi / 2 * 20
    poses = frame.poses(np.array([[-5.0, 0.0, 0.0], [-5.0 + quarter, 2.0, 0.1], [-15.0, 1.0, 0.0]]))
    assert poses[0] == pytest.approx([0.0, 0.0, 0.0], abs=5e-3)  # the yaw: half the first chord's turn
    # at the end of the arc: heading +y, 2 m to its left is -x
    assert poses[1] == pytest.approx([20.0 - 2.0, 20.0, np.pi / 2 + 0.1], abs=5e-3)
    # 10 m before the route's start: straight back along its first heading, 1 m to the left
    assert poses[2] == pytest.approx([-10.0, 1.0, 0.0], abs=5e-3)


def test_follow_route_takes_the_straightest_successor():
    town = make_town(0)
    start = next(lane for lane in sorted(town.hdmap.lanes) if ">" not in lane)
    route, chain = follow_route(town.hdmap, start, 250.0)
    assert chain[0] == start and len(chain) >= 2
    headings = np.arctan2(*np.diff(route, axis=0).T[::-1])
    steps = np.abs(np.angle(np.exp(1j * np.diff(headings))))
    assert steps.max() < 0.6  # no hairpins: straight on where it can


def test_a_prompt_placed_on_a_procedural_town_stays_on_its_drivable_area():
    scenario, town = from_prompt("a car cuts in from the left", map_spec="town:1")
    assert town.name == "proc-town-1" and scenario.frame is not None
    assert check(scenario.result, town, scenario.frame) == []
    from dreamdrive.core.camera import CameraRig

    clip = to_clip(scenario, town, CameraRig.default(64, 36))
    ego = np.array([f.global_T_ego.translation[:2] for f in clip.frames])
    lanes = np.vstack([town.hdmap.lanes[lane].centerline for lane in scenario.frame.lanes])
    nearest = np.min(np.linalg.norm(ego[:, None] - lanes[None], axis=2), axis=1)
    assert nearest.max() < 0.5  # the ego drives along the route's lanes
    assert scenario.to_json(town)["road_frame"]["kind"] == "route"


def test_bad_map_specs_and_misfits_are_refused():
    with pytest.raises(DreamdriveError, match="must be road, town"):
        from_prompt("a car cuts in from the left", map_spec="moon")
    with pytest.raises(DreamdriveError, match="own junction"):
        from_prompt("the car ahead turns left at the intersection", map_spec="town")


def test_a_prompt_placed_on_a_hand_built_map_follows_its_lanes(tmp_path):
    """Any HDMap with lanes takes a scenario (a nuScenes location is read into one by the map expansion reader)."""
    from dreamdrive.core.hdmap import HDMap, Lane
    from dreamdrive.pipelines.scenario import load_map
    from dreamdrive.scenario.placement import place_on_map
    from dreamdrive.scenario.sandbox import run_scenario_script
    from dreamdrive.scenario.scene import Scenario
    from dreamdrive.world.town import Town

    # a gently curving six-lane road, 400 m long: lanes every 3.5 m from y = -7 to y = 10.5
    xs = np.linspace(0.0, 400.0, 401)
    bend = 0.0004 * (xs - 200.0) ** 2
    lanes = {f"l{k}": Lane(f"l{k}", np.column_stack([xs, bend + y])) for k, y in enumerate(np.arange(-7.0, 10.6, 3.5))}
    outline = np.vstack([np.column_stack([xs, bend - 9.0]), np.column_stack([xs, bend + 12.5])[::-1]])
    town = Town("hand-built", HDMap("hand-built", drivable_areas=[outline], lanes=lanes), {}, {}, {}, [], {}, {}, {})
    script = "ego(speed=10)\ncar = vehicle('car', lane='left', ahead=6, speed=12)\ncar.cut_in(at=1.0)\nsave()\n"
    data = run_scenario_script(script)
    frame = place_on_map(data, town, seed=0)
    assert check(data, town, frame) == []
    start_y = -7.0 + 3.5 * int(frame.lanes[0][1:])
    assert start_y + 3.5 + 1.0 <= 12.5  # the cut-in car's lane (+1) lies on the road
    scenario = Scenario("a car cuts in", script, "offline", 0, data, frame=frame)
    assert scenario.to_json(town)["road_frame"]["lanes"] == frame.lanes
    with pytest.raises(DreamdriveError, match="cannot load the map expansion"):
        load_map(f"nuscenes:{tmp_path}:boston-seaport", 0)
