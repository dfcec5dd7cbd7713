"""Pictures of detections: the BEV with ground truth filled and predictions outlined, beside the front camera."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from dreamdrive.core.boxes import Box3D
from dreamdrive.core.categories import DEFAULT_CATEGORY
from dreamdrive.core.clip import Clip
from dreamdrive.core.geometry import quat_to_yaw
from dreamdrive.files import load_image
from dreamdrive.viz.draw import draw_box_wireframe
from dreamdrive.viz.pictures import bev_canvas, save_png

PREDICTION_COLOR = (220, 20, 60)


def result_box(item: dict) -> Box3D:
    """A nuScenes result box as a global Box3D."""
    category = DEFAULT_CATEGORY[item["detection_name"]]
    return Box3D(np.array(item["translation"]), np.array(item["size"]), quat_to_yaw(item["rotation"]), category,
                 "prediction", np.array(item["velocity"][:2]))  # fmt: skip


def detection_picture(clip: Clip, index: int, results: list[dict], out: str | Path, min_score: float = 0.3,
                      size: int = 512, radius: float = 51.2) -> Path:  # fmt: skip
    """BEV (ground truth filled by class, predictions above `min_score` outlined in red) and CAM_FRONT with the
    predictions drawn, side by side."""
    canvas = bev_canvas(clip, index, size, radius)
    ego_T_global = clip.frames[index].global_T_ego.inverse()
    scale = size / (2 * radius)
    boxes = [result_box(item) for item in results if item["detection_score"] >= min_score]
    for box in boxes:
        corners = ego_T_global.apply(box.corners()[[0, 1, 5, 4]])
        pixels = np.stack([size / 2 - corners[:, 1] * scale, size / 2 - corners[:, 0] * scale], 1)
        cv2.polylines(canvas, [np.round(pixels * 16).astype(np.int32)], True, PREDICTION_COLOR, 2, cv2.LINE_AA, 4)
    camera = clip.rig["CAM_FRONT"]
    image = load_image(clip.frames[index].images["CAM_FRONT"]).copy()
    _, global_T_ego = clip.frames[index].camera_pose("CAM_FRONT")
    for box in boxes:
        draw_box_wireframe(image, box, camera, camera.cam_T_ego @ global_T_ego.inverse(), PREDICTION_COLOR, 1)
    image = cv2.resize(image, (round(image.shape[1] * size / image.shape[0]), size))
    picture = np.concatenate([canvas, image], axis=1)
    cv2.putText(picture, f"predictions >= {min_score} (red), ground truth (filled)", (8, size - 10),
                cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)  # fmt: skip
    return save_png(picture, out)
