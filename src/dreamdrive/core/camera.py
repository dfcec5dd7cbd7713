"""Pinhole cameras and the six-camera rig in the ring order of DESIGN.md."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace

import numpy as np

from dreamdrive.core.errors import DreamdriveError
from dreamdrive.core.geometry import Projection, Transform, check_finite, project_points

# Ring order: neighbours in a UniMVM wide frame are neighbours on the car.
CAMERA_NAMES: tuple[str, ...] = (
    "CAM_FRONT_LEFT",
    "CAM_FRONT",
    "CAM_FRONT_RIGHT",
    "CAM_BACK_RIGHT",
    "CAM_BACK",
    "CAM_BACK_LEFT",
)

NUSCENES_WIDTH, NUSCENES_HEIGHT = 1600, 900

# Default rig at 1600x900, close to the nuScenes Renault Zoe: (yaw about ego +z in degrees,
# mounting point in the ego frame in metres, focal length in pixels). Optical axes are level.
_DEFAULT_MOUNTS: dict[str, tuple[float, tuple[float, float, float], float]] = {
    "CAM_FRONT_LEFT": (55.0, (1.52, 0.49, 1.51), 1266.0),
    "CAM_FRONT": (0.0, (1.70, 0.00, 1.51), 1266.0),
    "CAM_FRONT_RIGHT": (-55.0, (1.55, -0.49, 1.50), 1266.0),
    "CAM_BACK_RIGHT": (-110.0, (1.01, -0.48, 1.56), 1266.0),
    "CAM_BACK": (180.0, (0.03, 0.00, 1.58), 809.0),
    "CAM_BACK_LEFT": (110.0, (1.04, 0.48, 1.59), 1266.0),
}


def level_camera_rotation(yaw: float) -> np.ndarray:
    """`ego_R_cam` of a level camera looking along `yaw` (camera x right, y down, z forward)."""
    forward = np.array([np.cos(yaw), np.sin(yaw), 0.0])
    right = np.array([np.sin(yaw), -np.cos(yaw), 0.0])
    down = np.array([0.0, 0.0, -1.0])
    return np.stack([right, down, forward], axis=1)  # columns are the camera axes in ego


@dataclass(frozen=True)
class Camera:
    """One pinhole camera.

    Args:
        name: channel name, e.g. "CAM_FRONT".
        intrinsic: (3, 3) matrix K in pixels for an image of `width` x `height`.
        ego_T_cam: camera-to-ego transform (extrinsics).
        width, height: image size in pixels.
    """

    name: str
    intrinsic: np.ndarray
    ego_T_cam: Transform
    width: int
    height: int

    def __post_init__(self) -> None:
        intrinsic = check_finite(self.intrinsic, f"intrinsic of {self.name}")
        if intrinsic.shape != (3, 3) or intrinsic[0, 0] <= 0 or intrinsic[1, 1] <= 0 or intrinsic[2, 2] != 1:
            raise DreamdriveError(
                f"camera {self.name}: intrinsic must be a 3x3 matrix [[fx,0,cx],[0,fy,cy],[0,0,1]] with "
                f"positive focal lengths, got {intrinsic.tolist()}."
            )
        if self.width <= 0 or self.height <= 0:
            raise DreamdriveError(f"camera {self.name}: image size {self.width}x{self.height} must be positive.")
        object.__setattr__(self, "intrinsic", intrinsic)

    @property
    def cam_T_ego(self) -> Transform:
        return self.ego_T_cam.inverse()

    def resized(self, width: int, height: int) -> Camera:
        """The same camera with the image scaled to `width` x `height` (intrinsics scale with it)."""
        scale = np.diag([width / self.width, height / self.height, 1.0])
        return replace(self, intrinsic=scale @ self.intrinsic, width=width, height=height)

    def cropped(self, left: int, top: int, width: int, height: int) -> Camera:
        """The camera seeing only the window [left, left+width) x [top, top+height) of its image."""
        if left < 0 or top < 0 or left + width > self.width or top + height > self.height:
            raise DreamdriveError(
                f"crop ({left}, {top}, {width}x{height}) does not fit in the {self.width}x{self.height} "
                f"image of {self.name}."
            )
        intrinsic = self.intrinsic.copy()
        intrinsic[0, 2] -= left
        intrinsic[1, 2] -= top
        return replace(self, intrinsic=intrinsic, width=width, height=height)

    def project_ego(self, points_ego: np.ndarray, near: float = 0.1) -> Projection:
        """Project ego-frame points (N, 3) into this camera's image."""
        points_cam = self.cam_T_ego.apply(points_ego)
        return project_points(points_cam, self.intrinsic, self.width, self.height, near)


@dataclass(frozen=True)
class CameraRig:
    """The cameras of a car, kept in the ring order of `CAMERA_NAMES`.

    Args:
        cameras: one `Camera` per channel; any subset of `CAMERA_NAMES`, sorted into ring order.
    """

    cameras: tuple[Camera, ...]

    def __post_init__(self) -> None:
        names = [camera.name for camera in self.cameras]
        unknown = [name for name in names if name not in CAMERA_NAMES]
        if unknown or len(set(names)) != len(names) or not names:
            raise DreamdriveError(f"a rig holds distinct cameras named from {list(CAMERA_NAMES)}, got {names}.")
        ordered = tuple(sorted(self.cameras, key=lambda camera: CAMERA_NAMES.index(camera.name)))
        object.__setattr__(self, "cameras", ordered)

    @staticmethod
    def default(width: int = NUSCENES_WIDTH, height: int = NUSCENES_HEIGHT) -> CameraRig:
        """A nuScenes-like rig: six level cameras, 1600x900 intrinsics scaled to `width` x `height`."""
        cameras = []
        for name in CAMERA_NAMES:
            yaw_deg, mount, focal = _DEFAULT_MOUNTS[name]
            intrinsic = np.array([[focal, 0.0, NUSCENES_WIDTH / 2], [0.0, focal, NUSCENES_HEIGHT / 2], [0.0, 0.0, 1.0]])
            ego_T_cam = Transform(level_camera_rotation(np.deg2rad(yaw_deg)), np.array(mount))
            camera = Camera(name, intrinsic, ego_T_cam, NUSCENES_WIDTH, NUSCENES_HEIGHT)
            cameras.append(camera.resized(width, height))
        return CameraRig(tuple(cameras))

    @staticmethod
    def from_calibrated_sensors(records: Mapping[str, Mapping], sizes: Mapping[str, tuple[int, int]]) -> CameraRig:
        """A rig from nuScenes `calibrated_sensor` records keyed by channel, and (width, height) per channel."""
        cameras = []
        for name, record in records.items():
            intrinsic = record.get("camera_intrinsic")
            if not intrinsic:
                raise DreamdriveError(f"calibrated_sensor {record.get('token')} of {name} has no camera_intrinsic.")
            ego_T_cam = Transform.from_quat(record["rotation"], record["translation"])
            width, height = sizes[name]
            cameras.append(Camera(name, np.asarray(intrinsic, dtype=np.float64), ego_T_cam, width, height))
        return CameraRig(tuple(cameras))

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(camera.name for camera in self.cameras)

    def __getitem__(self, name: str) -> Camera:
        for camera in self.cameras:
            if camera.name == name:
                return camera
        raise DreamdriveError(f"the rig has no camera {name!r}; it has {list(self.names)}.")

    def __iter__(self) -> Iterator[Camera]:
        return iter(self.cameras)

    def __len__(self) -> int:
        return len(self.cameras)

    def resized(self, width: int, height: int) -> CameraRig:
        return CameraRig(tuple(camera.resized(width, height) for camera in self.cameras))

    def cropped(self, left: int, top: int, width: int, height: int) -> CameraRig:
        return CameraRig(tuple(camera.cropped(left, top, width, height) for camera in self.cameras))
