"""DriveDreamer-2's structured conditions per camera and frame: the HD map and the 3D boxes, in each view.

Map layout (3, H, W) in `core.hdmap.MAP_CHANNELS` order (road boundaries, lane dividers, pedestrian crossings) from
the 102.4 m patch around the ego, drawn as lines. Box layout (10, H, W): one
channel per detection class, each box's visible faces filled, boxes drawn far to
near so that a nearer box covers a farther one in every channel. A clip gives
(V, T, C, H, W) uint8 tensors in {0, 1}, views in ring order.
"""

from __future__ import annotations

import cv2
import numpy as np

from dreamdrive.core.boxes import BOX_FACES, Box3D
from dreamdrive.core.camera import Camera
from dreamdrive.core.categories import DETECTION_CLASSES, detection_class
from dreamdrive.core.clip import Clip
from dreamdrive.core.geometry import Transform, clip_polygon_near, project_points
from dreamdrive.core.hdmap import CLOSED_CHANNELS, MAP_CHANNELS, PATCH_SIZE_M, RESOLUTION_M, HDMap
from dreamdrive.viz.draw import CLASS_COLORS, EGO_TRAJECTORY_COLOR, draw_polyline_3d, draw_trajectories

NEAR = 0.1
_FIXED = 16.0


def bev_layout(
    hdmap: HDMap,
    global_T_ego: Transform,
    patch_size: float = PATCH_SIZE_M,
    resolution: float = RESOLUTION_M,
    thickness: int = 2,
) -> np.ndarray:
    """The map's BEV raster (3, H, W) float32 in {0, 1}, channels in `MAP_CHANNELS` order (road boundary, lane
    divider, pedestrian crossing), as DriveDreamer-2's HD-map condition.

    The patch is square, `patch_size` metres on a side, centred on the ego car and
    turned with it: ego forward (+x) points up (row 0) and ego left (+y) points left
    (column 0), so pixel (row, col) = (H/2 - x/res, W/2 - y/res) in ego metres.
    """
    pixels = int(round(patch_size / resolution))
    ego_T_global = global_T_ego.inverse()
    raster = np.zeros((len(MAP_CHANNELS), pixels, pixels), dtype=np.uint8)
    for channel, (name, polylines) in enumerate(hdmap.layers().items()):
        closed = name in CLOSED_CHANNELS
        canvas = np.zeros((pixels, pixels), dtype=np.uint8)
        for points in polylines:
            ego = ego_T_global.apply(np.column_stack([points, np.zeros(len(points))]))
            rows = pixels / 2 - ego[:, 0] / resolution
            cols = pixels / 2 - ego[:, 1] / resolution
            # cv2 takes fixed-point (x=col, y=row) with 4 fractional bits for sub-pixel accuracy.
            fixed = np.round(np.stack([cols, rows], axis=1) * 16).astype(np.int64)
            if np.abs(fixed).max() > 2**30:  # far beyond the patch: cannot touch it
                continue
            cv2.polylines(canvas, [fixed.astype(np.int32)], closed, 1, thickness, cv2.LINE_8, shift=4)
        raster[channel] = canvas
    return raster.astype(np.float32)


def trajectory_layout(
    ego: np.ndarray,
    agents: list[tuple[str, np.ndarray]],
    global_T_ego: Transform,
    size: int = 256,
    resolution: float = RESOLUTION_M,
    thickness: int = 1,
) -> np.ndarray:
    """DriveDreamer-2's BEV trajectory map (H, W, 3) uint8 around `global_T_ego` (forward up, left left): the
    ego's path (x, y rows, global) in white and every agent's in its class colour, graded in time (dark at the
    start). It holds the trajectories only, the HD-map generator's input.

    Args:
        ego: (T, >=2) the ego's global positions over the window.
        agents: (detection class, (N, >=2) global positions in time order) per agent.
    """
    ego_T_global = global_T_ego.inverse()

    def pixels(points: np.ndarray) -> np.ndarray:
        local = ego_T_global.apply(np.column_stack([points[:, :2], np.zeros(len(points))]))
        return np.stack([size / 2 - local[:, 1] / resolution, size / 2 - local[:, 0] / resolution], 1)

    tracks = [(EGO_TRAJECTORY_COLOR, pixels(np.asarray(ego, np.float64)))]
    tracks += [(CLASS_COLORS.get(kind, (200, 200, 200)), pixels(np.asarray(xy, np.float64))) for kind, xy in agents]
    return draw_trajectories(np.zeros((size, size, 3), np.uint8), [t for t in tracks if len(t[1]) >= 2], thickness)


def map_layout(
    hdmap: HDMap, camera: Camera, global_T_ego: Transform, thickness: int = 2, patch: float = PATCH_SIZE_M
) -> np.ndarray:
    """(3, H, W) uint8 in `MAP_CHANNELS` order (road boundary, lane divider, pedestrian crossing): the map
    elements within the square patch around the ego, projected into `camera`."""
    ego_T_global = global_T_ego.inverse()
    cam_T_global = camera.cam_T_ego @ ego_T_global
    ego_xy = global_T_ego.translation[:2]
    half = patch / 2
    out = np.zeros((len(MAP_CHANNELS), camera.height, camera.width), np.uint8)
    for c, (name, lines) in enumerate(hdmap.layers().items()):
        for line in lines:
            line = np.vstack([line, line[:1]]) if name in CLOSED_CHANNELS else line
            ground = np.column_stack([line, np.zeros(len(line))])
            local = ego_T_global.apply(ground)[:, :2]
            if not (np.abs(local) <= half).all(axis=1).any() and np.linalg.norm(line - ego_xy, axis=1).min() > patch:
                continue
            draw_polyline_3d(out[c], ground, camera, cam_T_global, 1, thickness, near=NEAR, line_type=cv2.LINE_8)
    return out


def box_layout(boxes: list[Box3D], camera: Camera, cam_T_frame: Transform) -> np.ndarray:
    """(10, H, W) uint8: each box's faces filled in its class channel, nearer boxes over farther ones."""
    out = np.zeros((len(DETECTION_CLASSES), camera.height, camera.width), np.uint8)
    distance = [float(np.linalg.norm(cam_T_frame.apply(b.center[None])[0])) for b in boxes]
    for i in np.argsort(distance)[::-1]:  # far to near
        box = boxes[i]
        name = detection_class(box.category)
        if name is None:
            continue
        corners = cam_T_frame.apply(box.corners())
        silhouette = np.zeros((camera.height, camera.width), np.uint8)
        for face in BOX_FACES:
            polygon = clip_polygon_near(corners[list(face)], NEAR)
            if len(polygon) < 3:
                continue
            pixels = project_points(polygon, camera.intrinsic, camera.width, camera.height, NEAR).pixels
            cv2.fillPoly(silhouette, [np.round(np.clip(pixels, -1e5, 1e5) * _FIXED).astype(np.int32)], 1, cv2.LINE_8, 4)
        covered = silhouette.astype(bool)
        out[:, covered] = 0  # a nearer box hides whatever was drawn behind it
        out[DETECTION_CLASSES.index(name), covered] = 1
    return out


def clip_layouts(clip: Clip) -> tuple[np.ndarray, np.ndarray]:
    """Map and box layouts of a whole clip: (V, T, 3, H, W) and (V, T, 10, H, W) uint8, views in ring order."""
    views, frames = len(clip.rig), len(clip.frames)
    camera0 = clip.rig.cameras[0]
    maps = np.zeros((views, frames, len(MAP_CHANNELS), camera0.height, camera0.width), np.uint8)
    boxes = np.zeros((views, frames, len(DETECTION_CLASSES), camera0.height, camera0.width), np.uint8)
    for t, frame in enumerate(clip.frames):
        frame_boxes = clip.boxes_at(t)
        for v, camera in enumerate(clip.rig):
            _, global_T_ego = frame.camera_pose(camera.name)
            if clip.hdmap is not None:
                maps[v, t] = map_layout(clip.hdmap, camera, global_T_ego)
            boxes[v, t] = box_layout(frame_boxes, camera, camera.cam_T_ego @ global_T_ego.inverse())
    return maps, boxes
