"""Drawing 3D geometry into camera images with OpenCV (projection from core, pixels here)."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from dreamdrive.core.boxes import BOX_EDGES, BOX_FACES, Box3D
from dreamdrive.core.camera import Camera
from dreamdrive.core.geometry import Transform, clip_polygon_near, project_points

# RGB colours per detection class (and None for categories outside the 10).
CLASS_COLORS: dict[str | None, tuple[int, int, int]] = {
    "car": (255, 158, 0),
    "truck": (255, 99, 71),
    "bus": (255, 69, 0),
    "trailer": (255, 140, 0),
    "construction_vehicle": (233, 150, 70),
    "pedestrian": (0, 0, 230),
    "motorcycle": (255, 61, 99),
    "bicycle": (220, 20, 60),
    "traffic_cone": (47, 79, 79),
    "barrier": (112, 128, 144),
    None: (200, 200, 200),
}
MAP_COLORS: dict[str, tuple[int, int, int]] = {
    "road_boundary": (255, 60, 60),
    "lane_divider": (255, 255, 255),
    "ped_crossing": (60, 200, 255),
}
_FIXED = 16.0  # cv2 fixed-point scale (shift=4)


def _fixed(pixels: np.ndarray) -> np.ndarray:
    return np.round(np.clip(pixels, -1e5, 1e5) * _FIXED).astype(np.int32)


def densify(polyline: np.ndarray, step: float) -> np.ndarray:
    """Insert points so no segment of `polyline` (N, D) is longer than `step` (each segment cut into equal
    parts)."""
    polyline = np.asarray(polyline, dtype=np.float64)
    if len(polyline) < 2:
        return polyline.copy()
    starts, deltas = polyline[:-1], np.diff(polyline, axis=0)  # (S, D) each
    parts = np.maximum(1, np.ceil(np.linalg.norm(deltas, axis=1) / step).astype(int))  # (S,)
    segment = np.repeat(np.arange(len(parts)), parts)  # (P,) the segment of each new point
    within = np.arange(len(segment)) - np.repeat(np.cumsum(parts) - parts, parts) + 1  # 1..parts per segment
    t = (within / parts[segment])[:, None]
    return np.concatenate([polyline[:1], starts[segment] + t * deltas[segment]], axis=0)


def draw_polyline_3d(
    image: np.ndarray,
    points_frame: np.ndarray,
    camera: Camera,
    cam_T_frame: Transform,
    color: tuple[int, int, int],
    thickness: int = 1,
    near: float = 0.5,
    step: float = 1.0,
    line_type: int = cv2.LINE_AA,
) -> None:
    """Draw a 3D polyline (N, 3) into `image`, split where it passes behind the near plane.

    `line_type` cv2.LINE_8 keeps a single-channel mask binary (for layout maps).
    """
    dense = densify(np.asarray(points_frame, dtype=np.float64), step)
    points_cam = cam_T_frame.apply(dense)
    projection = project_points(points_cam, camera.intrinsic, camera.width, camera.height, near)
    # Draw runs of consecutive points in front of the camera.
    front = np.r_[False, projection.in_front, False].astype(np.int8)
    edges = np.flatnonzero(np.diff(front))  # starts and ends of the runs, alternating
    for start, end in zip(edges[::2], edges[1::2]):
        if end - start >= 2:
            cv2.polylines(image, [_fixed(projection.pixels[start:end])], False, color, thickness, line_type, 4)


def draw_box_faces(
    image: np.ndarray,
    boxes: Sequence[Box3D],
    camera: Camera,
    cam_T_frame: Transform,
    colors: Sequence[tuple[int, int, int]],
    shade: bool = True,
    near: float = 0.1,
) -> None:
    """Paint boxes as filled faces, farthest box first so nearer boxes cover farther ones."""
    order = sorted(range(len(boxes)), key=lambda i: -np.linalg.norm(cam_T_frame.apply(boxes[i].center[None])[0]))
    light = np.array([0.3, -0.8, 0.5]) / np.linalg.norm([0.3, -0.8, 0.5])  # in camera axes: from above-front
    for i in order:
        corners_cam = cam_T_frame.apply(boxes[i].corners())
        centre_cam = corners_cam.mean(axis=0)
        faces = []
        for face in BOX_FACES:
            polygon = corners_cam[list(face)]
            normal = np.cross(polygon[1] - polygon[0], polygon[3] - polygon[0])
            if np.dot(normal, polygon.mean(axis=0) - centre_cam) < 0:
                normal = -normal  # point outwards
            if np.dot(normal, polygon.mean(axis=0)) >= 0:
                continue  # back face
            clipped = clip_polygon_near(polygon, near)
            if len(clipped) < 3:
                continue
            pixels = project_points(clipped, camera.intrinsic, camera.width, camera.height, near).pixels
            brightness = 0.55 + 0.45 * abs(float(np.dot(normal / np.linalg.norm(normal), -light))) if shade else 1.0
            faces.append((pixels, tuple(int(c * brightness) for c in colors[i])))
        for pixels, color in faces:
            cv2.fillPoly(image, [_fixed(pixels)], color, cv2.LINE_AA, 4)


def draw_box_wireframe(
    image: np.ndarray,
    box: Box3D,
    camera: Camera,
    cam_T_frame: Transform,
    color: tuple[int, int, int],
    thickness: int = 1,
    near: float = 0.1,
) -> None:
    """Draw a box's 12 edges (clipped at the near plane) and a cross on its front face."""
    corners_cam = cam_T_frame.apply(box.corners())
    edges = list(BOX_EDGES) + [(0, 2), (1, 3)]  # the cross marks the front
    for a, b in edges:
        segment = clip_polygon_near(corners_cam[[a, b]], near)
        if len(segment) < 2:
            continue
        pixels = project_points(segment[:2], camera.intrinsic, camera.width, camera.height, near).pixels
        cv2.polylines(image, [_fixed(pixels)], False, color, thickness, cv2.LINE_AA, 4)


EGO_TRAJECTORY_COLOR = (255, 255, 255)


def draw_trajectories(
    canvas: np.ndarray, tracks: list[tuple[tuple[int, int, int], np.ndarray]], thickness: int = 2
) -> np.ndarray:
    """DriveDreamer-2's trajectory drawing, in place on an (H, W, 3) uint8 canvas: each track (colour, (N, 2)
    pixel coordinates (column, row)) as a polyline graded in time, dark (a quarter of its colour) at its first
    point and full at its last."""
    for colour, points in tracks:
        rgb = np.asarray(colour, np.float64)
        n = len(points)
        for i in range(n - 1):
            shade = 0.25 + 0.75 * i / max(n - 2, 1)
            a, b = np.round(points[i]).astype(int), np.round(points[i + 1]).astype(int)
            cv2.line(canvas, tuple(a), tuple(b), tuple(int(c * shade) for c in rgb), thickness, cv2.LINE_AA)
    return canvas
