import numpy as np
import pytest

from dreamdrive.core.errors import DreamdriveError
from dreamdrive.core.geometry import (
    Transform,
    clip_polygon_near,
    normalize_quaternion,
    project_points,
    quat_to_rotmat,
    quat_to_yaw,
    rotmat_to_quat,
    slerp,
    wrap_angle,
    yaw_to_quat,
)


def random_quaternion(rng):
    q = rng.normal(size=4)
    return q / np.linalg.norm(q)


def test_quaternion_rotation_round_trip():
    rng = np.random.default_rng(0)
    for _ in range(100):
        q = random_quaternion(rng)
        q = -q if q[0] < 0 else q
        rotation = quat_to_rotmat(q)
        assert np.allclose(rotation @ rotation.T, np.eye(3), atol=1e-12)
        assert np.allclose(rotmat_to_quat(rotation), q, atol=1e-12)


def test_quaternion_matches_pyquaternion():
    from pyquaternion import Quaternion

    rng = np.random.default_rng(1)
    for _ in range(20):
        q = random_quaternion(rng)
        assert np.allclose(quat_to_rotmat(q), Quaternion(q).rotation_matrix, atol=1e-12)


def test_yaw_known_answers():
    assert np.allclose(yaw_to_quat(np.pi / 2), [np.sqrt(0.5), 0, 0, np.sqrt(0.5)])
    assert quat_to_yaw(yaw_to_quat(0.3)) == pytest.approx(0.3)
    # 90 degrees about z maps x to y
    assert np.allclose(quat_to_rotmat(yaw_to_quat(np.pi / 2)) @ [1, 0, 0], [0, 1, 0])
    assert wrap_angle(3 * np.pi / 2) == pytest.approx(-np.pi / 2)


def test_slerp_midpoint_of_yaws_is_mean_yaw():
    q = slerp(yaw_to_quat(0.2), yaw_to_quat(1.0), 0.25)
    assert quat_to_yaw(q) == pytest.approx(0.4)
    # across the +-pi seam, the short way round
    assert quat_to_yaw(slerp(yaw_to_quat(3.0), yaw_to_quat(-3.0), 0.5)) == pytest.approx(
        np.pi, abs=1e-9
    ) or quat_to_yaw(slerp(yaw_to_quat(3.0), yaw_to_quat(-3.0), 0.5)) == pytest.approx(-np.pi, abs=1e-9)


def test_non_unit_quaternion_is_rejected():
    with pytest.raises(DreamdriveError, match="not a unit quaternion"):
        normalize_quaternion([1.0, 0.2, 0.0, 0.0])
    with pytest.raises(DreamdriveError, match="NaN"):
        normalize_quaternion([np.nan, 0, 0, 1])


def test_transform_compose_and_inverse():
    a_T_b = Transform.from_pose2d(1.0, 2.0, 0.5, 0.3)
    b_T_c = Transform.from_quat(yaw_to_quat(-1.1), [0.5, -0.2, 1.0])
    point_c = np.array([[3.0, -1.0, 2.0]])
    assert np.allclose((a_T_b @ b_T_c).apply(point_c), a_T_b.apply(b_T_c.apply(point_c)))
    assert np.allclose((a_T_b.inverse() @ a_T_b).matrix, np.eye(4))
    # a point at the origin of b sits at b's translation in a
    assert np.allclose(a_T_b.apply(np.zeros((1, 3)))[0], [1.0, 2.0, 0.3])


def test_project_points_hand_computed():
    intrinsic = np.array([[100.0, 0, 50], [0, 100.0, 40], [0, 0, 1]])
    points = np.array([[0, 0, 10], [1, -1, 4], [0, 0, -5], [6, 0, 10]], dtype=float)
    proj = project_points(points, intrinsic, width=100, height=80, near=0.1)
    assert np.allclose(proj.pixels[0], [50, 40])
    assert np.allclose(proj.pixels[1], [50 + 100 * 1 / 4, 40 - 100 * 1 / 4])
    assert proj.in_front.tolist() == [True, True, False, True]
    assert proj.in_image.tolist() == [True, True, False, False]  # u = 110 is past the right edge


def test_clip_polygon_near():
    square = np.array([[0, 0, -1], [1, 0, -1], [1, 0, 1], [0, 0, 1]], dtype=float)
    clipped = clip_polygon_near(square, near=0.0)
    assert clipped[:, 2].min() == pytest.approx(0.0)
    assert len(clipped) == 4
