import numpy as np
import pytest

from dreamdrive.core.boxes import Box3D, convex_hull, polygon_area
from dreamdrive.core.camera import CameraRig
from dreamdrive.core.errors import DreamdriveError
from dreamdrive.core.geometry import Transform


def car(x=15.0, y=0.0, yaw=0.3, **kw):
    return Box3D(np.array([x, y, 0.8]), np.array([1.9, 4.5, 1.6]), yaw, "vehicle.car", "c", **kw)


def test_corners_match_devkit_box():
    from nuscenes.utils.data_classes import Box
    from pyquaternion import Quaternion

    box = car()
    reference = Box(box.center, box.size, Quaternion(box.quaternion))
    assert np.allclose(box.corners(), reference.corners().T, atol=1e-12)


def test_projection_of_box_fully_in_front_is_hull_of_corners():
    camera = CameraRig.default()["CAM_FRONT"]
    box = car()
    outline = box.project(camera, camera.cam_T_ego)
    pixels = camera.project_ego(box.corners()).pixels
    assert polygon_area(outline) == pytest.approx(polygon_area(convex_hull(pixels)))
    assert set(map(tuple, np.round(outline, 6))) <= set(map(tuple, np.round(pixels, 6)))


def test_projection_clipped_to_image_and_near_plane():
    camera = CameraRig.default()["CAM_FRONT"]
    # a box that straddles the camera: it starts behind the lens and reaches 4 m ahead
    box = Box3D(np.array([2.0, 0.0, 1.5]), np.array([2.0, 6.0, 1.0]), 0.0, "vehicle.car", "c")
    outline = box.project(camera, camera.cam_T_ego)
    assert outline is not None
    assert outline[:, 0].min() >= 0 and outline[:, 0].max() <= camera.width
    assert outline[:, 1].min() >= 0 and outline[:, 1].max() <= camera.height
    # it fills the image completely: the near face is 0.1 m away and wider than the view
    assert polygon_area(outline) == pytest.approx(camera.width * camera.height, rel=1e-6)
    behind = car(x=-15.0)
    assert behind.project(camera, camera.cam_T_ego) is None


def test_contains_and_visible_fraction():
    box = car(yaw=0.0)
    points = np.array([[15.0, 0.0, 0.8], [17.2, 0.0, 0.8], [17.3, 0.0, 0.8], [15.0, 0.96, 0.8]])
    assert box.contains(points).tolist() == [True, True, False, False]
    rig = CameraRig.default()
    assert box.visible_fraction(rig, Transform.identity()) == 1.0
    high = Box3D(np.array([3.0, 0.0, 40.0]), np.array([2.0, 2.0, 2.0]), 0.0, "vehicle.car", "c")
    assert high.visible_fraction(rig, Transform.identity()) == 0.0  # straight above the car: no camera sees it


def test_transformed_box():
    box = car(yaw=0.0, velocity=np.array([2.0, 0.0]))
    moved = box.transformed(Transform.from_pose2d(10.0, 5.0, np.pi / 2))
    assert np.allclose(moved.center, [10.0, 20.0, 0.8])
    assert moved.yaw == pytest.approx(np.pi / 2)
    assert np.allclose(moved.velocity, [0.0, 2.0])


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(center=np.array([np.nan, 0, 0])), "NaN"),
        (dict(size=np.array([1.0, -2.0, 1.0])), "must be positive"),
        (dict(category="vehicle.spaceship"), "unknown category"),
        (dict(attributes=("pedestrian.moving",)), "does not apply"),
        (dict(attributes=("vehicle.moving", "vehicle.parked")), "at most one"),
        (dict(visibility="7"), "visibility"),
    ],
)
def test_bad_boxes_rejected(kwargs, message):
    args = dict(
        center=np.array([1.0, 2.0, 0.5]),
        size=np.array([2.0, 4.0, 1.5]),
        yaw=0.0,
        category="vehicle.car",
        instance_id="x",
    )
    args.update(kwargs)
    with pytest.raises(DreamdriveError, match=message):
        Box3D(**args)
