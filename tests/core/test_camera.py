import numpy as np
import pytest

from dreamdrive.core.camera import CAMERA_NAMES, CameraRig
from dreamdrive.core.errors import DreamdriveError

# The default rig at 1600x900: (yaw degrees, mount x, y, z, focal length), principal point at (800, 450).
MOUNTS = {
    "CAM_FRONT_LEFT": (55.0, 1.52, 0.49, 1.51, 1266.0),
    "CAM_FRONT": (0.0, 1.70, 0.00, 1.51, 1266.0),
    "CAM_FRONT_RIGHT": (-55.0, 1.55, -0.49, 1.50, 1266.0),
    "CAM_BACK_RIGHT": (-110.0, 1.01, -0.48, 1.56, 1266.0),
    "CAM_BACK": (180.0, 0.03, 0.00, 1.58, 809.0),
    "CAM_BACK_LEFT": (110.0, 1.04, 0.48, 1.59, 1266.0),
}


def hand_projection(channel, point):
    """Pinhole by hand: camera z along the yaw, x to its right, y down."""
    yaw_deg, mx, my, mz, f = MOUNTS[channel]
    yaw = np.deg2rad(yaw_deg)
    dx, dy, dz = point[0] - mx, point[1] - my, point[2] - mz
    forward = np.cos(yaw) * dx + np.sin(yaw) * dy
    right = np.sin(yaw) * dx - np.cos(yaw) * dy
    down = -dz
    return 800 + f * right / forward, 450 + f * down / forward


def test_ring_order():
    assert CameraRig.default().names == CAMERA_NAMES
    assert CAMERA_NAMES == (
        "CAM_FRONT_LEFT",
        "CAM_FRONT",
        "CAM_FRONT_RIGHT",
        "CAM_BACK_RIGHT",
        "CAM_BACK",
        "CAM_BACK_LEFT",
    )


def test_literal_known_answers_front_camera():
    camera = CameraRig.default()["CAM_FRONT"]
    proj = camera.project_ego(np.array([[10.0, 0.0, 1.51], [10.0, 2.0, 0.51]]))
    # (10, 0, 1.51) lies on the optical axis; (10, 2, 0.51) is 2 m left and 1 m down at 8.3 m depth.
    assert np.allclose(proj.pixels[0], [800.0, 450.0])
    assert np.allclose(proj.pixels[1], [800 - 1266 * 2 / 8.3, 450 + 1266 * 1 / 8.3])
    assert np.allclose(proj.pixels[1], [494.939759, 602.530120], atol=1e-5)


@pytest.mark.parametrize("channel", CAMERA_NAMES)
def test_each_camera_against_hand_projection(channel):
    rig = CameraRig.default()
    camera = rig[channel]
    yaw_deg, mx, my, mz, _ = MOUNTS[channel]
    yaw = np.deg2rad(yaw_deg)
    # a point 12 m along the optical axis, then shifted 1.5 m to the camera's left and 0.7 m up
    axis = np.array([np.cos(yaw), np.sin(yaw), 0.0])
    left = np.array([-np.sin(yaw), np.cos(yaw), 0.0])
    point = np.array([mx, my, mz]) + 12 * axis + 1.5 * left + np.array([0, 0, 0.7])
    proj = camera.project_ego(point[None])
    assert np.allclose(proj.pixels[0], hand_projection(channel, point), atol=1e-9)
    assert proj.in_image[0]
    # the only camera that sees it is this one or a neighbour in the ring with overlapping view
    behind = np.array([mx, my, mz]) - 5 * axis
    assert not camera.project_ego(behind[None]).in_front[0]


def test_box_corners_in_each_camera():
    from dreamdrive.core.boxes import Box3D

    rig = CameraRig.default()
    box = Box3D(np.array([15.0, 3.0, 0.8]), np.array([2.0, 4.0, 1.6]), 0.0, "vehicle.car", "b")
    corners = box.corners()
    # corners by hand: x = 15 +- 2, y = 3 +- 1, z = 0.8 +- 0.8
    assert {tuple(c) for c in np.round(corners, 9)} == {(x, y, z) for x in (13, 17) for y in (2, 4) for z in (0, 1.6)}
    for channel in CAMERA_NAMES:
        proj = rig[channel].project_ego(corners)
        for corner, pixel, front in zip(corners, proj.pixels, proj.in_front):
            if front:
                assert np.allclose(pixel, hand_projection(channel, corner), atol=1e-9)
    front = rig["CAM_FRONT"].project_ego(corners)
    assert front.in_image.all()
    assert not rig["CAM_BACK"].project_ego(corners).in_front.any()


def test_resize_and_crop_update_intrinsics():
    camera = CameraRig.default()["CAM_FRONT"]
    point = np.array([[20.0, -3.0, 1.0]])
    full = camera.project_ego(point).pixels[0]
    half = camera.resized(800, 450).project_ego(point).pixels[0]
    assert np.allclose(half, full / 2)
    small = CameraRig.default(400, 225)["CAM_FRONT"]
    assert np.allclose(small.intrinsic, camera.resized(400, 225).intrinsic)
    crop = camera.cropped(100, 50, 1200, 800)
    assert np.allclose(crop.project_ego(point).pixels[0], full - [100, 50])
    with pytest.raises(DreamdriveError, match="does not fit"):
        camera.cropped(500, 0, 1200, 900)


def test_rig_from_calibrated_sensor_records():
    rig = CameraRig.default(320, 180)
    records = {
        c.name: {
            "token": c.name,
            "translation": c.ego_T_cam.translation.tolist(),
            "rotation": c.ego_T_cam.quaternion.tolist(),
            "camera_intrinsic": c.intrinsic.tolist(),
        }
        for c in rig
    }
    loaded = CameraRig.from_calibrated_sensors(records, {c.name: (320, 180) for c in rig})
    for a, b in zip(rig, loaded):
        assert a.name == b.name
        assert np.allclose(a.ego_T_cam.matrix, b.ego_T_cam.matrix, atol=1e-12)
        assert np.allclose(a.intrinsic, b.intrinsic)


def test_bad_calibration_rejected():
    rig = CameraRig.default()
    record = {
        "token": "t",
        "translation": [0, 0, 1],
        "rotation": [0.9, 0.1, 0.0, 0.0],
        "camera_intrinsic": rig["CAM_FRONT"].intrinsic.tolist(),
    }
    with pytest.raises(DreamdriveError, match="not a unit quaternion"):
        CameraRig.from_calibrated_sensors({"CAM_FRONT": record}, {"CAM_FRONT": (1600, 900)})
    with pytest.raises(DreamdriveError, match="distinct cameras"):
        CameraRig((rig["CAM_FRONT"], rig["CAM_FRONT"]))
