"""Vectorising map rasters: known answers on hand-drawn rasters, and raster -> vector -> raster within a pixel."""

import cv2
import numpy as np
import pytest
from scipy import ndimage

from dreamdrive.conditions.layout import bev_layout
from dreamdrive.conditions.vectorize import trace_skeleton, vectorize
from dreamdrive.core.errors import DreamdriveError
from dreamdrive.core.geometry import Transform
from dreamdrive.core.hdmap import HDMap
from dreamdrive.world.town import make_town

SIZE, RES = 128, 0.8


def _blank():
    return np.zeros((3, SIZE, SIZE), np.uint8)


def test_a_straight_road_gives_two_boundaries_and_a_divider():
    raster = _blank()
    raster[0, :, 54] = raster[0, :, 74] = 1  # boundaries 8 m left and right of the ego
    raster[1, :, 64] = 1  # the divider through the ego
    hdmap = vectorize(raster, RES, trajectory_points=np.array([[0.0, -3.0], [30.0, -3.0]]))
    assert len(hdmap.road_boundaries) == 2 and len(hdmap.lane_dividers) == 1
    divider = hdmap.lane_dividers[0]
    assert len(divider) == 2  # simplified to its two ends
    assert np.abs(divider[:, 1]).max() == pytest.approx(0.0, abs=1e-6)  # column 64 is the ego's
    assert sorted(divider[:, 0]) == pytest.approx([-50.4, 51.2], abs=1e-6)  # the raster's bottom and top rows
    ys = sorted(float(np.mean(b[:, 1])) for b in hdmap.road_boundaries)
    assert ys == pytest.approx([-8.0, 8.0], abs=1e-6)
    # the drivable area is the strip between the boundaries, holding the trajectory
    [area] = hdmap.drivable_areas
    assert area[:, 1].min() == pytest.approx(-8.0, abs=1.0) and area[:, 1].max() == pytest.approx(8.0, abs=1.0)


def test_a_four_way_junction_traces_four_arms_from_one_junction():
    raster = _blank()
    raster[1, :, 64] = 1
    raster[1, 64, :] = 1
    paths = trace_skeleton(raster[1] > 0)
    assert len(paths) == 4
    ends = [sorted((p[0], p[-1]), key=lambda q: np.abs(q - 64).max()) for p in paths]  # (near, far) end
    assert sorted(tuple(far.astype(int)) for _, far in ends) == [(0, 64), (64, 0), (64, 127), (127, 64)]
    assert all(np.abs(near - 64).max() <= 1 for near, _ in ends)  # each arm starts at the junction
    hdmap = vectorize(raster, RES)
    assert len(hdmap.lane_dividers) == 4 and hdmap.drivable_areas == []


def test_a_crossing_outline_becomes_one_closed_polygon():
    raster = _blank()
    cv2.rectangle(raster[2], (50, 20), (78, 30), 1, 1)  # x = 50..78 columns, rows 20..30
    hdmap = vectorize(raster, RES)
    [crossing] = hdmap.ped_crossings
    assert 4 <= len(crossing) <= 6
    xs, ys = crossing[:, 0], crossing[:, 1]
    assert xs.min() == pytest.approx((64 - 30) * RES, abs=RES) and xs.max() == pytest.approx((64 - 20) * RES, abs=RES)
    assert ys.min() == pytest.approx((64 - 78) * RES, abs=RES) and ys.max() == pytest.approx((64 - 50) * RES, abs=RES)


def test_a_town_map_round_trips_within_one_pixel():
    town = make_town(3)
    centre = town.hdmap.lanes[sorted(town.hdmap.lanes)[5]].centerline[10]
    global_T_ego = Transform.from_pose2d(float(centre[0]), float(centre[1]), 0.3)
    raster = bev_layout(town.hdmap, global_T_ego, SIZE * RES, RES, thickness=1)
    again = bev_layout(vectorize(raster, RES, global_T_ego), global_T_ego, SIZE * RES, RES, thickness=1)
    for channel, (a, b) in enumerate(zip(raster > 0, again > 0)):
        if not a.any():
            continue
        # every pixel of either raster is within one pixel of the other
        near_a = ndimage.binary_dilation(a, np.ones((3, 3)))
        near_b = ndimage.binary_dilation(b, np.ones((3, 3)))
        assert (b & ~near_a).sum() <= 0.01 * b.sum(), channel
        assert (a & ~near_b).sum() <= 0.03 * a.sum(), channel  # skeleton stubs shorter than 3 m are dropped


def test_bad_rasters_are_refused():
    with pytest.raises(DreamdriveError, match="empty"):
        vectorize(_blank(), RES)
    with pytest.raises(DreamdriveError, match=r"\(3, H, H\)"):
        vectorize(np.zeros((2, 8, 8)), RES)
    assert isinstance(vectorize(np.pad(np.ones((3, 2, 2)), ((0, 0), (3, 3), (3, 3))), RES), HDMap)
