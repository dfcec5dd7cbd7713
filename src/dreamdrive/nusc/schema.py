"""The nuScenes table layout and deterministic tokens shared by reader and writer."""

from __future__ import annotations

import hashlib

import numpy as np

from dreamdrive.core.camera import CAMERA_NAMES
from dreamdrive.core.categories import ATTRIBUTES, CATEGORIES, VISIBILITY_LEVELS
from dreamdrive.core.geometry import Transform

TABLES: tuple[str, ...] = (
    "category",
    "attribute",
    "visibility",
    "instance",
    "sensor",
    "calibrated_sensor",
    "ego_pose",
    "log",
    "scene",
    "sample",
    "sample_data",
    "sample_annotation",
    "map",
)
# The tables whose rows each clip contributes (the others are static, or `map`, shared per location).
CLIP_TABLES: tuple[str, ...] = (
    "instance", "calibrated_sensor", "ego_pose", "log", "scene", "sample", "sample_data", "sample_annotation",
)  # fmt: skip
DEFAULT_VERSION = "v1.0-dreamdrive"
SIDECAR_DIR = "dreamdrive"
SIDECAR_INDEX = "index.json"
SIDECAR_FORMAT = 1
LIDAR_CHANNEL = "LIDAR_TOP"
LIDAR_COLUMNS = 5  # x, y, z, intensity, ring index, float32, as nuScenes .pcd.bin
# The nuScenes LiDAR mount: 1.84 m up, its x axis turned -90 degrees from the ego's.
DEFAULT_EGO_T_LIDAR = Transform.from_pose2d(0.943713, 0.0, -np.pi / 2, 1.84023)


def global_T_lidar(frame) -> Transform:
    """Where a frame's LiDAR sweep was taken: its own pose if known, else the default mounting."""
    return frame.lidar_pose if frame.lidar_pose is not None else frame.global_T_ego @ DEFAULT_EGO_T_LIDAR


# nuScenes maps are semantic masks at 0.1 m/pixel with the global origin at the bottom-left pixel.
MAP_MASK_RESOLUTION = 0.1

PREDEFINED_SPLITS = ("train", "val", "test", "mini_train", "mini_val", "train_detect", "train_track")


def make_token(*parts: object) -> str:
    """A 32-hex-digit token, a pure function of `parts` (so rewriting gives the same bytes)."""
    return hashlib.md5("/".join(str(p) for p in parts).encode()).hexdigest()


def static_tables() -> dict[str, list[dict]]:
    """The tables whose rows do not depend on the clips: category, attribute, visibility, sensor."""
    return {
        "category": [{"token": make_token("category", n), "name": n, "description": d} for n, d in CATEGORIES.items()],
        "attribute": [
            {"token": make_token("attribute", n), "name": n, "description": d} for n, d in ATTRIBUTES.items()
        ],
        "visibility": [
            {"token": token, "level": level, "description": description}
            for token, (level, description, _) in VISIBILITY_LEVELS.items()
        ],
        "sensor": [
            {"token": make_token("sensor", channel), "channel": channel, "modality": "camera"}
            for channel in CAMERA_NAMES
        ]
        + [{"token": make_token("sensor", LIDAR_CHANNEL), "channel": LIDAR_CHANNEL, "modality": "lidar"}],
    }


def pose_record(token: str, timestamp: int, transform: Transform) -> dict:
    return {
        "token": token,
        "timestamp": int(timestamp),
        "rotation": transform.quaternion.tolist(),
        "translation": transform.translation.tolist(),
    }
