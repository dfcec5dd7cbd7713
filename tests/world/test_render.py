"""The renderer's speed-ups change nothing that is seen: culled faces face away, geometry views lose only the sky."""

import numpy as np
import pytest
import shapely
from shapely.geometry import Polygon
from shapely.ops import unary_union

from dreamdrive.core.camera import CameraRig
from dreamdrive.core.geometry import Transform
from dreamdrive.world.geometry import SEMANTIC, town_soup
from dreamdrive.world.render import Environment, make_renderer
from dreamdrive.world.town import make_town


@pytest.fixture(scope="module")
def town():
    return make_town(3, (2, 2))


def _triangles(rows: np.ndarray):
    tri = rows[:, :3].reshape(-1, 3, 3).astype(np.float64)
    normal = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    normal /= np.linalg.norm(normal, axis=1, keepdims=True)
    return tri, normal, rows[::3, 10].round().astype(int)


def test_town_surfaces_face_where_they_are_seen_from(town):
    """Back faces are culled, so every triangle must face its viewers: flat ones up, curbs the road,
    solids (buildings, poles, trees) outwards."""
    tri, normal, semantic = _triangles(town_soup(town))
    flat = np.abs(normal[:, 2]) > 0.5
    ground_level = np.isin(semantic, [SEMANTIC[n] for n in ("terrain", "road", "lane_marking", "crossing")])
    assert np.all(normal[ground_level, 2] > 0.99)
    curbs = (semantic == SEMANTIC["sidewalk"]) & ~flat
    assert curbs.sum() > 100
    assert np.all(normal[(semantic == SEMANTIC["sidewalk"]) & flat, 2] > 0.99)
    road = unary_union([Polygon(p).buffer(0) for p in town.hdmap.drivable_areas])
    middle = tri[curbs].mean(axis=1)[:, :2]
    ahead = shapely.contains_xy(road, *(middle + 0.3 * normal[curbs, :2]).T)
    behind = shapely.contains_xy(road, *(middle - 0.3 * normal[curbs, :2]).T)
    assert ahead.mean() > 0.97 and behind.mean() < 0.03
    # every building is a closed box: each face's normal points away from its box's centre
    building = semantic == SEMANTIC["building"]
    faces, normals = tri[building].reshape(-1, 12, 3, 3), normal[building].reshape(-1, 12, 3)
    centres = faces.reshape(len(faces), -1, 3).mean(axis=1)
    outward = np.einsum("bfk,bfk->bf", faces.mean(axis=2) - centres[:, None], normals)
    assert np.all(outward > 0)


def test_geometry_views_skip_only_the_sky(town):
    """LiDAR-style geometry views skip the sky and the lighting: their depth, normals and ids are those of the
    lit render, with the sky's pixels left as cleared (depth 0, class 0)."""
    rig = CameraRig.default(224, 128)
    renderer = make_renderer(town, {}, 224, 128)
    try:
        lane = next(iter(town.hdmap.lanes.values()))
        x, y = lane.centerline[len(lane.centerline) // 2]
        heading = lane.centerline[-1] - lane.centerline[0]
        global_T_ego = Transform.from_pose2d(float(x), float(y), float(np.arctan2(heading[1], heading[0])))
        renderer.prepare(global_T_ego.translation, [], Environment("dusk", "rain"))
        sky = []
        for camera in rig:
            global_T_cam = global_T_ego @ camera.ego_T_cam
            lit = renderer.render(camera, global_T_cam, [])
            semantic, depth, normal = lit.semantic.copy(), lit.depth.copy(), lit.normal.copy()
            geometry = renderer.render(camera, global_T_cam, [], geometry_only=True)
            np.testing.assert_array_equal(geometry.semantic, semantic)
            np.testing.assert_array_equal(geometry.depth, depth)
            np.testing.assert_array_equal(geometry.normal, normal)
            assert np.all(depth[semantic == 0] == 0) and np.all(depth[semantic > 0] > 0)
            sky.append((semantic == 0).mean())
        assert 0.1 < np.mean(sky) < 0.6  # sky and ground both in view
    finally:
        renderer.release()
