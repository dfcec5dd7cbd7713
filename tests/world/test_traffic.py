"""Traffic: plausible motion, nothing overlaps, everyone where they belong, every class present."""

from collections import defaultdict

import numpy as np
import pytest
from shapely import contains_xy
from shapely.geometry import Polygon
from shapely.ops import unary_union

from dreamdrive.core.categories import DETECTION_CLASSES, detection_class
from dreamdrive.core.paths import footprints, footprints_apart
from dreamdrive.world.assets import builtin_assets
from dreamdrive.world.town import make_town
from dreamdrive.world.traffic import simulate


@pytest.fixture(scope="module")
def scenes():
    town = make_town(seed=1)
    assets = defaultdict(list)
    for asset in builtin_assets():
        assets[asset.info.detection_class].append(asset)
    return town, [simulate(town, assets, seed, seconds=6.0) for seed in (11, 12)]


def test_no_two_boxes_overlap(scenes):
    _, traffic_list = scenes
    for traffic in traffic_list:
        shapes = [footprints(t.centers, t.yaws, t.size) for t in traffic.tracks]
        ego = footprints(
            np.column_stack([traffic.ego[:, :2], np.zeros(len(traffic.ego))]), traffic.ego[:, 2], (1.9, 4.6, 1.7)
        )
        for i, a in enumerate(shapes):
            assert footprints_apart(a, ego).all()
            for b in shapes[i + 1 :]:
                assert footprints_apart(a, b).all()


def test_motion_is_plausible(scenes):
    _, traffic_list = scenes
    for traffic in traffic_list:
        ego_speed = np.linalg.norm(np.diff(traffic.ego[:, :2], axis=0), axis=1) * 12
        assert ego_speed.max() < 16 and ego_speed.mean() > 0.5
        for track in traffic.tracks:
            speed = np.linalg.norm(np.diff(track.centers[:, :2], axis=0), axis=1) * 12
            limit = 3.0 if detection_class(track.category) == "pedestrian" else 17.0
            assert speed.max() < limit, track.category
            if detection_class(track.category) not in ("pedestrian",) and speed.max() > 0:
                accel = np.abs(np.diff(speed)) * 12
                assert np.percentile(accel, 99) < 9.0, track.category


def test_agents_where_they_belong(scenes):
    town, traffic_list = scenes
    road = unary_union([Polygon(p) for p in town.hdmap.drivable_areas]).buffer(0.5)
    walk = unary_union([Polygon(p) for p in town.sidewalks + town.hdmap.ped_crossings]).buffer(0.5)
    for traffic in traffic_list:
        for track in traffic.tracks:
            x, y = track.centers[:, 0], track.centers[:, 1]
            name = detection_class(track.category)
            if track.category == "human.pedestrian.construction_worker":
                assert contains_xy(road, x, y).all()  # in the closed lane of the work zone
            elif name == "pedestrian":
                assert contains_xy(walk, x, y).all()
            elif name == "bicycle" and "without_rider" in track.attributes[0]:
                assert contains_xy(walk, x, y).all()  # parked on the sidewalk
            else:
                assert contains_xy(road, x, y).all(), track.category


def test_attributes_follow_motion(scenes):
    _, traffic_list = scenes
    for traffic in traffic_list:
        for track in traffic.tracks:
            speed = np.linalg.norm(np.gradient(track.centers[:, :2], axis=0), axis=1) * 12
            for attribute, v in zip(track.attributes, speed):
                if attribute == "vehicle.parked":
                    assert v == 0
                elif attribute == "pedestrian.standing" and track.category != "human.pedestrian.construction_worker":
                    assert v < 1.0


def test_every_class_annotated(scenes):
    _, traffic_list = scenes
    for traffic in traffic_list:
        annotated = {detection_class(t.category) for t in traffic.tracks if t.annotated.any()}
        assert annotated == set(DETECTION_CLASSES)


def test_idm_known_answers():
    """The traffic's IDM is `core.idm` (Treiber et al. 2000) with its vehicle's parameters."""
    from dreamdrive.core.idm import IDMParams
    from dreamdrive.world.traffic import Simulation, _Vehicle

    params = IDMParams(desired_speed=20.0, max_accel=1.5, comfortable_brake=2.0)
    car = _Vehicle("v", "car", None, "l", 0.0, v=10.0, v0=20.0, idm=params)
    # free road: a = a_max (1 - (v / v0)^4)
    assert Simulation._idm(car, gap=1e9, leader_v=20.0) == pytest.approx(1.5 * (1 - 0.5**4))
    # same speed as the leader at the desired gap s* = s0 + v T: the interaction term cancels the free term's 1
    s_star = 2.0 + 10.0 * 1.3
    assert Simulation._idm(car, gap=s_star, leader_v=10.0) == pytest.approx(1.5 * (1 - 0.5**4 - 1.0))
    # closing in fast on a stopped leader: hard braking, bounded
    assert Simulation._idm(car, gap=5.0, leader_v=0.0) == -8.0
    stopped = _Vehicle("v", "car", None, "l", 0.0, v=0.0, v0=20.0, idm=params)
    assert Simulation._idm(stopped, gap=2.0, leader_v=0.0) == 0.0  # at the minimum gap s0: at rest, no creeping
    assert Simulation._idm(stopped, gap=1.5, leader_v=0.0) < 0  # nearer than s0: it would back off (speed floors at 0)
