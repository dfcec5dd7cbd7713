"""Rigid transforms, quaternions and pinhole projection (numpy only).

Conventions (DESIGN.md): quaternions are (w, x, y, z); a transform is named by
the frames it maps, so `ego_T_cam` maps camera coordinates into the ego frame
and `global_T_cam = global_T_ego @ ego_T_cam`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dreamdrive.core.errors import DreamdriveError

UNIT_TOLERANCE = 1e-3  # |q| may deviate this much from 1 (nuScenes stores ~1e-8 deviations)


def check_finite(values: np.ndarray | list | tuple, what: str) -> np.ndarray:
    """Return `values` as a float64 array, raising if any entry is NaN or infinite."""
    array = np.asarray(values, dtype=np.float64)
    if not np.all(np.isfinite(array)):
        raise DreamdriveError(f"{what} contains NaN or infinity: {array.tolist()}; fix the value at its source.")
    return array


def normalize_quaternion(q: np.ndarray | list | tuple, what: str = "quaternion") -> np.ndarray:
    """Check that `q` (w, x, y, z) is a unit quaternion and return it renormalised, w >= 0."""
    q = check_finite(q, what)
    if q.shape != (4,):
        raise DreamdriveError(f"{what} must have 4 entries (w, x, y, z), got shape {q.shape}.")
    norm = float(np.linalg.norm(q))
    if abs(norm - 1.0) > UNIT_TOLERANCE:
        raise DreamdriveError(
            f"{what} {q.tolist()} is not a unit quaternion (norm {norm:.6f}); "
            "rotations are stored as unit quaternions (w, x, y, z)."
        )
    q = q / norm
    return -q if q[0] < 0 else q


def quat_to_rotmat(q: np.ndarray | list | tuple) -> np.ndarray:
    """Rotation matrix (3, 3) of the unit quaternion q = (w, x, y, z)."""
    w, x, y, z = normalize_quaternion(q)
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
            [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
            [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
        ]
    )


def rotmat_to_quat(rotation: np.ndarray) -> np.ndarray:
    """Unit quaternion (w, x, y, z), w >= 0, of a rotation matrix (3, 3) (Shepperd's method)."""
    m = check_finite(rotation, "rotation matrix")
    trace = np.trace(m)
    if trace > 0:
        s = 2.0 * np.sqrt(trace + 1.0)
        q = [0.25 * s, (m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s]
    elif m[0, 0] > m[1, 1] and m[0, 0] > m[2, 2]:
        s = 2.0 * np.sqrt(1.0 + m[0, 0] - m[1, 1] - m[2, 2])
        q = [(m[2, 1] - m[1, 2]) / s, 0.25 * s, (m[0, 1] + m[1, 0]) / s, (m[0, 2] + m[2, 0]) / s]
    elif m[1, 1] > m[2, 2]:
        s = 2.0 * np.sqrt(1.0 + m[1, 1] - m[0, 0] - m[2, 2])
        q = [(m[0, 2] - m[2, 0]) / s, (m[0, 1] + m[1, 0]) / s, 0.25 * s, (m[1, 2] + m[2, 1]) / s]
    else:
        s = 2.0 * np.sqrt(1.0 + m[2, 2] - m[0, 0] - m[1, 1])
        q = [(m[1, 0] - m[0, 1]) / s, (m[0, 2] + m[2, 0]) / s, (m[1, 2] + m[2, 1]) / s, 0.25 * s]
    q = np.asarray(q)
    q /= np.linalg.norm(q)
    return -q if q[0] < 0 else q


def yaw_to_quat(yaw: float) -> np.ndarray:
    """Quaternion (w, x, y, z) of a rotation by `yaw` radians about +z."""
    return np.array([np.cos(yaw / 2.0), 0.0, 0.0, np.sin(yaw / 2.0)])


def quat_to_yaw(q: np.ndarray | list | tuple) -> float:
    """Heading about +z of the rotated x axis, in (-pi, pi]."""
    rotation = quat_to_rotmat(q)
    return float(np.arctan2(rotation[1, 0], rotation[0, 0]))


def wrap_angle(angle: float | np.ndarray) -> float | np.ndarray:
    """Wrap radians into [-pi, pi)."""
    return (np.asarray(angle) + np.pi) % (2.0 * np.pi) - np.pi


def slerp(q0: np.ndarray, q1: np.ndarray, t: float) -> np.ndarray:
    """Spherical linear interpolation between unit quaternions, shortest arc, t in [0, 1]."""
    q0, q1 = normalize_quaternion(q0), normalize_quaternion(q1)
    dot = float(np.dot(q0, q1))
    if dot < 0.0:
        q1, dot = -q1, -dot
    if dot > 0.9995:  # nearly parallel: lerp is exact to float precision and avoids 0/0
        q = q0 + t * (q1 - q0)
    else:
        theta = np.arccos(dot)
        q = (np.sin((1 - t) * theta) * q0 + np.sin(t * theta) * q1) / np.sin(theta)
    q = q / np.linalg.norm(q)
    return -q if q[0] < 0 else q


@dataclass(frozen=True)
class Transform:
    """A rigid transform `a_T_b` mapping points in frame b to frame a.

    Args:
        rotation: (3, 3) rotation matrix.
        translation: (3,) translation in metres (the origin of b expressed in a).
    """

    rotation: np.ndarray
    translation: np.ndarray

    def __post_init__(self) -> None:
        rotation = check_finite(self.rotation, "rotation")
        translation = check_finite(self.translation, "translation")
        if rotation.shape != (3, 3) or translation.shape != (3,):
            raise DreamdriveError(
                f"a transform needs a (3, 3) rotation and a (3,) translation, got {rotation.shape} "
                f"and {translation.shape}."
            )
        if not np.allclose(rotation @ rotation.T, np.eye(3), atol=1e-6) or np.linalg.det(rotation) < 0:
            raise DreamdriveError(f"rotation {rotation.tolist()} is not a proper rotation matrix.")
        object.__setattr__(self, "rotation", rotation)
        object.__setattr__(self, "translation", translation)

    @staticmethod
    def _trusted(rotation: np.ndarray, translation: np.ndarray) -> Transform:
        """A transform from parts that are valid by construction (composition, inversion): no checks."""
        out = object.__new__(Transform)
        object.__setattr__(out, "rotation", rotation)
        object.__setattr__(out, "translation", translation)
        return out

    @staticmethod
    def identity() -> Transform:
        return Transform(np.eye(3), np.zeros(3))

    @staticmethod
    def from_quat(quaternion: np.ndarray | list | tuple, translation: np.ndarray | list | tuple) -> Transform:
        return Transform(quat_to_rotmat(quaternion), np.asarray(translation, dtype=np.float64))

    @staticmethod
    def from_pose2d(x: float, y: float, yaw: float, z: float = 0.0) -> Transform:
        """A transform whose x axis points along `yaw` from the point (x, y, z)."""
        c, s = np.cos(yaw), np.sin(yaw)
        translation = check_finite([x, y, z], "pose")
        return Transform._trusted(np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]]), translation)

    @staticmethod
    def from_matrix(matrix: np.ndarray) -> Transform:
        matrix = np.asarray(matrix, dtype=np.float64)
        return Transform(matrix[:3, :3], matrix[:3, 3])

    @property
    def quaternion(self) -> np.ndarray:
        return rotmat_to_quat(self.rotation)

    @property
    def yaw(self) -> float:
        return float(np.arctan2(self.rotation[1, 0], self.rotation[0, 0]))

    @property
    def matrix(self) -> np.ndarray:
        out = np.eye(4)
        out[:3, :3] = self.rotation
        out[:3, 3] = self.translation
        return out

    def inverse(self) -> Transform:
        return Transform._trusted(self.rotation.T, -self.rotation.T @ self.translation)

    def __matmul__(self, other: Transform) -> Transform:
        # a_T_b @ b_T_c = a_T_c
        return Transform._trusted(self.rotation @ other.rotation, self.rotation @ other.translation + self.translation)

    def apply(self, points: np.ndarray) -> np.ndarray:
        """Map points (N, 3) from frame b to frame a."""
        points = np.asarray(points, dtype=np.float64)
        return points @ self.rotation.T + self.translation

    def apply_vectors(self, vectors: np.ndarray) -> np.ndarray:
        """Rotate direction vectors (N, 3) from frame b to frame a (no translation)."""
        return np.asarray(vectors, dtype=np.float64) @ self.rotation.T


@dataclass(frozen=True)
class Projection:
    """Points projected into one image.

    Attributes:
        pixels: (N, 2) pixel coordinates (u right, v down); meaningless where `in_front` is False.
        depth: (N,) z in the camera frame, metres.
        in_front: (N,) depth >= near plane.
        in_image: (N,) in front and inside [0, width) x [0, height).
    """

    pixels: np.ndarray
    depth: np.ndarray
    in_front: np.ndarray
    in_image: np.ndarray


def project_points(
    points_cam: np.ndarray, intrinsic: np.ndarray, width: int, height: int, near: float = 0.1
) -> Projection:
    """Pinhole projection of camera-frame points (N, 3) with a near plane at `near` metres."""
    points_cam = np.asarray(points_cam, dtype=np.float64).reshape(-1, 3)
    depth = points_cam[:, 2]
    in_front = depth >= near
    safe_depth = np.where(in_front, depth, 1.0)  # avoid dividing by ~0 behind the camera
    uvw = points_cam @ np.asarray(intrinsic, dtype=np.float64).T  # (N, 3)
    pixels = uvw[:, :2] / safe_depth[:, None]
    in_image = in_front & (pixels[:, 0] >= 0) & (pixels[:, 0] < width) & (pixels[:, 1] >= 0) & (pixels[:, 1] < height)
    return Projection(pixels=pixels, depth=depth, in_front=in_front, in_image=in_image)


def clip_polygon_near(points_cam: np.ndarray, near: float = 0.1) -> np.ndarray:
    """Clip a planar polygon (N, 3) in camera frame against the plane z = near (Sutherland-Hodgman)."""
    out = []
    n = len(points_cam)
    for i in range(n):
        current, following = points_cam[i], points_cam[(i + 1) % n]
        current_in, following_in = current[2] >= near, following[2] >= near
        if current_in:
            out.append(current)
        if current_in != following_in:
            t = (near - current[2]) / (following[2] - current[2])
            crossing = current + t * (following - current)
            crossing[2] = near  # exactly on the plane, so later `depth >= near` tests keep it
            out.append(crossing)
    return np.asarray(out).reshape(-1, 3)
