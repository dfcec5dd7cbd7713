import numpy as np
import pytest

from dreamdrive.conditions.layout import bev_layout
from dreamdrive.core.errors import DreamdriveError
from dreamdrive.core.geometry import Transform
from dreamdrive.core.hdmap import HDMap, Lane


def simple_map():
    return HDMap(
        name="m",
        lane_dividers=[np.array([[100.0, 52.0], [200.0, 52.0]])],
        road_boundaries=[np.array([[100.0, 40.0], [200.0, 40.0]])],
        ped_crossings=[np.array([[160.0, 40.0], [164.0, 40.0], [164.0, 60.0], [160.0, 60.0]])],
        lanes={
            "a": Lane("a", np.array([[100.0, 50.0], [200.0, 50.0]]), ("b",)),
            "b": Lane("b", np.array([[200.0, 50.0], [210.0, 60.0]])),
        },
    )


def test_raster_known_pixels():
    # ego at (150, 50) heading +x: the divider is 2 m to the left, the boundary 10 m to the right,
    # the crossing spans 10..14 m ahead.
    raster = bev_layout(
        simple_map(), Transform.from_pose2d(150.0, 50.0, 0.0), patch_size=102.4, resolution=0.2, thickness=1
    )
    assert raster.shape == (3, 512, 512)
    boundary, divider, crossing = raster
    assert np.nonzero(divider.any(axis=0))[0].tolist() == [246]  # col = 256 - 2 / 0.2
    assert np.nonzero(boundary.any(axis=0))[0].tolist() == [306]  # col = 256 + 10 / 0.2
    rows = np.nonzero(crossing.any(axis=1))[0]
    assert rows.min() == 256 - 70 and rows.max() == 256 - 50  # 14 m and 10 m ahead


def test_raster_turns_with_the_ego():
    # facing +y, the divider (y = 52) is 2 m ahead: a horizontal line 10 rows above the centre
    raster = bev_layout(simple_map(), Transform.from_pose2d(150.0, 50.0, np.pi / 2), thickness=1)
    assert np.nonzero(raster[1].any(axis=1))[0].tolist() == [246]


def test_json_round_trip():
    hdmap = simple_map()
    again = HDMap.from_json(hdmap.to_json())
    assert again.to_json() == hdmap.to_json()
    assert again.lanes["a"].successors == ("b",)


def test_bad_maps_rejected():
    with pytest.raises(DreamdriveError, match="unknown lanes"):
        HDMap("m", lanes={"a": Lane("a", np.zeros((2, 2)) + [[0, 0], [1, 0]], ("zz",))})
    with pytest.raises(DreamdriveError, match="at least 3"):
        HDMap("m", ped_crossings=[np.array([[0.0, 0.0], [1.0, 0.0]])])
    with pytest.raises(DreamdriveError, match="malformed vector map"):
        HDMap.from_json({"lanes": []})
