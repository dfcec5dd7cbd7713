"""Dream4Drive's 3D-aware guidance maps from depth: surface normals and edges (and depth from LiDAR).

Conventions: images are (H, W) with pixel (row, col) covering u in [col, col+1),
v in [row, row+1), so its centre is (col + 0.5, row + 0.5); depth is the
camera-frame z in metres, 0 where nothing was seen; normals are unit vectors in
the camera frame (x right, y down, z forward) pointing towards the camera.
"""

from __future__ import annotations

import numpy as np

from dreamdrive.core.errors import DreamdriveError


def backproject(depth: np.ndarray, intrinsic: np.ndarray) -> np.ndarray:
    """Camera-frame points (H, W, 3) of every pixel centre at its depth."""
    height, width = depth.shape
    u = np.arange(width) + 0.5
    v = np.arange(height) + 0.5
    x = (u[None, :] - intrinsic[0, 2]) / intrinsic[0, 0] * depth
    y = (v[:, None] - intrinsic[1, 2]) / intrinsic[1, 1] * depth
    return np.stack([x, y, depth], axis=-1)


def normals_from_depth(depth: np.ndarray, intrinsic: np.ndarray, max_jump: float = 0.05) -> np.ndarray:
    """Unit normals (H, W, 3) from a depth map, 0 where there is no depth or no consistent neighbour.

    Tangents come from the one-sided difference (left or right, up or down) whose depth
    changes least, so that normals next to a depth edge are not smeared across it;
    differences that jump by more than `max_jump` of the depth count as edges.
    """
    depth = np.asarray(depth, dtype=np.float64)
    if depth.ndim != 2 or intrinsic.shape != (3, 3):
        raise DreamdriveError(f"normals need a (H, W) depth and a 3x3 intrinsic, got {depth.shape}, {intrinsic.shape}.")
    points = backproject(depth, intrinsic)
    valid = depth > 0

    def tangent(axis: int) -> tuple[np.ndarray, np.ndarray]:
        forward = np.roll(points, -1, axis=axis) - points
        backward = points - np.roll(points, 1, axis=axis)
        d_forward = np.abs(np.roll(depth, -1, axis=axis) - depth)
        d_backward = np.abs(depth - np.roll(depth, 1, axis=axis))
        ok_forward = valid & np.roll(valid, -1, axis=axis) & (d_forward <= max_jump * depth)
        ok_backward = valid & np.roll(valid, 1, axis=axis) & (d_backward <= max_jump * depth)
        if axis == 0:
            ok_forward[-1, :] = False
            ok_backward[0, :] = False
        else:
            ok_forward[:, -1] = False
            ok_backward[:, 0] = False
        use_forward = ok_forward & (~ok_backward | (d_forward <= d_backward))
        chosen = np.where(use_forward[..., None], forward, backward)
        return chosen, ok_forward | ok_backward

    du, ok_u = tangent(1)
    dv, ok_v = tangent(0)
    normal = np.cross(du, dv)
    norm = np.linalg.norm(normal, axis=-1, keepdims=True)
    good = ok_u & ok_v & (norm[..., 0] > 1e-12)
    normal = np.where(good[..., None], normal / np.maximum(norm, 1e-12), 0.0)
    facing_away = np.sum(normal * points, axis=-1) > 0  # normals point back towards the camera
    normal[facing_away] *= -1
    return normal.astype(np.float32)


def edges(rgb: np.ndarray, low: int = 100, high: int = 200) -> np.ndarray:
    """Canny edges (H, W) uint8 in {0, 255} of an RGB image."""
    import cv2

    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise DreamdriveError(f"edges need an (H, W, 3) RGB image, got {rgb.shape}.")
    if not 0 <= low <= high:
        raise DreamdriveError(f"Canny thresholds need 0 <= low <= high, got {low}, {high}.")
    gray = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY)
    return cv2.Canny(gray, low, high)


def angular_error_degrees(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Angle in degrees between unit normals a and b (..., 3)."""
    cosine = np.clip(np.sum(a * b, axis=-1), -1.0, 1.0)
    return np.degrees(np.arccos(cosine))
