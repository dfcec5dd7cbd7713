import numpy as np
import pytest
from shapely.geometry import Point, Polygon
from shapely.ops import unary_union

from dreamdrive.core.errors import DreamdriveError
from dreamdrive.world.town import make_town


@pytest.fixture(scope="module")
def town():
    return make_town(seed=3)


def test_lane_graph_is_connected_and_continuous(town):
    lanes = town.hdmap.lanes
    for lane in lanes.values():
        assert lane.successors, f"lane {lane.lane_id} leads nowhere (a closed grid has no dead ends)"
        for successor in lane.successors:
            # successors start where their predecessor ends
            assert np.linalg.norm(lanes[successor].centerline[0] - lane.centerline[-1]) < 1e-6
        for side in town.side_lanes(lane.lane_id):
            if side is not None:  # a lane-change neighbour runs beside the lane, one lane width away
                gap = np.linalg.norm(lanes[side].centerline[len(lanes[side].centerline) // 2] - lane.centerline, axis=1)
                assert gap.min() == pytest.approx(3.5, abs=0.1)
    # every lane can reach every other, following lanes and changing lanes: vehicles can drive forever
    start = next(iter(lanes))
    seen, stack = {start}, [start]
    while stack:
        current = stack.pop()
        for successor in (*lanes[current].successors, *filter(None, town.side_lanes(current))):
            if successor not in seen:
                seen.add(successor)
                stack.append(successor)
    assert seen == set(lanes)


def turn_angle(centerline):
    d0, d1 = centerline[1] - centerline[0], centerline[-1] - centerline[-2]
    return np.degrees(np.arctan2(d0[0] * d1[1] - d0[1] * d1[0], np.dot(d0, d1)))


def test_turns_have_the_right_lanes(town):
    """Where a lane can go straight on, it turns left only from the inside and right only from the outside."""
    lanes = town.hdmap.lanes
    checked = 0
    for lane_id, lane in lanes.items():
        if ">" in lane_id:
            continue
        turns = [turn_angle(lanes[c].centerline) for c in lane.successors]
        if not any(abs(t) < 45 for t in turns):
            continue  # a corner: every lane must be able to leave somewhere
        left, right = town.side_lanes(lane_id)
        for t in turns:
            if t > 45:
                assert left is None, f"{lane_id} turns left but has a lane on its left"
            elif t < -45:
                assert right is None, f"{lane_id} turns right but has a lane on its right"
        checked += 1
    assert checked > 10


def test_lanes_on_drivable_area_and_off_sidewalks(town):
    drivable = unary_union([Polygon(p).buffer(0.01) for p in town.hdmap.drivable_areas])
    for lane in town.hdmap.lanes.values():
        for point in lane.centerline[:: max(1, len(lane.centerline) // 10)]:
            assert drivable.contains(Point(point)), lane.lane_id
    road = unary_union([Polygon(p) for p in town.hdmap.drivable_areas]).buffer(-0.3)
    for obj in town.statics:
        if obj.kind == "building":
            assert not road.contains(Point(obj.center))


def test_junction_kinds_and_determinism(town):
    degrees = sorted(len(ends) for ends in town.ends.values())
    assert 2 in degrees and 3 in degrees  # corners and T junctions
    again = make_town(seed=3)
    assert again.hdmap.to_json() == town.hdmap.to_json()
    assert again.statics == town.statics
    assert make_town(seed=4).hdmap.to_json() != town.hdmap.to_json()


def test_pedestrian_graph_paths_join(town):
    for node, links in town.ped_graph.items():
        for _, path, _ in links:
            assert np.linalg.norm(path[0] - town.ped_points[node]) < 1e-6


def test_bad_town_size():
    with pytest.raises(DreamdriveError, match="at least 2x2"):
        make_town(blocks=(1, 3))
