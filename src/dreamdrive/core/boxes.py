"""3D boxes: corners, projection into cameras as clipped polygons, visibility, points inside."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from dreamdrive.core.camera import Camera, CameraRig
from dreamdrive.core.categories import ATTRIBUTES, attribute_applies, check_category, detection_class
from dreamdrive.core.errors import DreamdriveError
from dreamdrive.core.geometry import Transform, check_finite, clip_polygon_near, project_points, yaw_to_quat

# The 6 faces of a box as indices into `Box3D.corners()`, each wound consistently.
BOX_FACES: tuple[tuple[int, int, int, int], ...] = (
    (0, 1, 2, 3),  # front
    (4, 5, 6, 7),  # back
    (0, 1, 5, 4),  # top
    (3, 2, 6, 7),  # bottom
    (0, 3, 7, 4),  # left
    (1, 2, 6, 5),  # right
)
BOX_EDGES: tuple[tuple[int, int], ...] = (
    (0, 1),
    (1, 2),
    (2, 3),
    (3, 0),
    (4, 5),
    (5, 6),
    (6, 7),
    (7, 4),
    (0, 4),
    (1, 5),
    (2, 6),
    (3, 7),
)


@dataclass(frozen=True)
class Box3D:
    """An oriented 3D box in some frame (a Clip keeps boxes in the global frame).

    Args:
        center: (3,) x, y, z of the box centre in metres.
        size: (3,) width, length, height in metres, as nuScenes orders them.
        yaw: heading of the box's length axis about +z, radians.
        category: full nuScenes category name, e.g. "vehicle.car".
        instance_id: identifier shared by the boxes of one object across frames.
        velocity: (2,) vx, vy in m/s in the same frame as `center`.
        attributes: at most one nuScenes attribute name that applies to the category.
        num_lidar_pts: LiDAR points inside the box; None lets the dataset writer count them.
        num_radar_pts: radar points inside the box.
        visibility: nuScenes visibility token '1'..'4'; None lets the writer compute it.
    """

    center: np.ndarray
    size: np.ndarray
    yaw: float
    category: str
    instance_id: str
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(2))
    attributes: tuple[str, ...] = ()
    num_lidar_pts: int | None = None
    num_radar_pts: int = 0
    visibility: str | None = None

    def __post_init__(self) -> None:
        what = f"box of {self.instance_id!r} ({self.category})"
        center = check_finite(self.center, f"centre of {what}")
        size = check_finite(self.size, f"size of {what}")
        velocity = check_finite(self.velocity, f"velocity of {what}")
        yaw = float(check_finite(self.yaw, f"yaw of {what}"))
        if center.shape != (3,) or size.shape != (3,) or velocity.shape != (2,):
            raise DreamdriveError(f"{what}: centre and size need 3 values and velocity 2.")
        if np.any(size <= 0):
            raise DreamdriveError(f"{what}: size {size.tolist()} (width, length, height) must be positive.")
        check_category(self.category)
        attributes = tuple(self.attributes)
        if len(attributes) > 1:
            raise DreamdriveError(
                f"{what}: give at most one attribute (nuScenes evaluation needs one), got {attributes}."
            )
        for attribute in attributes:
            if attribute not in ATTRIBUTES or not attribute_applies(attribute, self.category):
                raise DreamdriveError(f"{what}: attribute {attribute!r} does not apply to {self.category}.")
        if self.visibility is not None and self.visibility not in ("1", "2", "3", "4"):
            raise DreamdriveError(f"{what}: visibility must be a token '1'..'4', got {self.visibility!r}.")
        object.__setattr__(self, "center", center)
        object.__setattr__(self, "size", size)
        object.__setattr__(self, "velocity", velocity)
        object.__setattr__(self, "yaw", yaw)
        object.__setattr__(self, "attributes", attributes)

    @property
    def detection_class(self) -> str | None:
        return detection_class(self.category)

    @property
    def quaternion(self) -> np.ndarray:
        return yaw_to_quat(self.yaw)

    @property
    def frame_T_box(self) -> Transform:
        return Transform.from_pose2d(self.center[0], self.center[1], self.yaw, self.center[2])

    def corners(self) -> np.ndarray:
        """(8, 3) corners; the first four face forward (+length), as the devkit orders them."""
        width, length, height = self.size
        x = length / 2 * np.array([1, 1, 1, 1, -1, -1, -1, -1])
        y = width / 2 * np.array([1, -1, -1, 1, 1, -1, -1, 1])
        z = height / 2 * np.array([1, 1, -1, -1, 1, 1, -1, -1])
        return self.frame_T_box.apply(np.stack([x, y, z], axis=1))

    def transformed(self, a_T_frame: Transform) -> Box3D:
        """This box expressed in frame a (velocity is rotated, not translated)."""
        center = a_T_frame.apply(self.center[None])[0]
        velocity = a_T_frame.apply_vectors(np.array([[self.velocity[0], self.velocity[1], 0.0]]))[0, :2]
        return replace(self, center=center, yaw=self.yaw + a_T_frame.yaw, velocity=velocity)

    def contains(self, points: np.ndarray) -> np.ndarray:
        """(N,) mask of the points (N, 3), in the box's frame, that lie inside the box."""
        local = self.frame_T_box.inverse().apply(np.asarray(points, dtype=np.float64).reshape(-1, 3))
        half = np.array([self.size[1], self.size[0], self.size[2]]) / 2  # (length, width, height) on (x, y, z)
        return np.all(np.abs(local) <= half, axis=1)

    def project(self, camera: Camera, cam_T_frame: Transform, near: float = 0.1) -> np.ndarray | None:
        """The box's image outline in `camera`: a convex polygon (K, 2) clipped to the image, or None.

        `cam_T_frame` maps the box's frame into the camera (for a global box:
        `camera.cam_T_ego @ global_T_ego.inverse()`). The box is clipped by the near plane
        before projection, so boxes that straddle the camera still give a correct outline.
        """
        corners_cam = cam_T_frame.apply(self.corners())
        faces = [clip_polygon_near(corners_cam[list(face)], near) for face in BOX_FACES]
        faces = [face for face in faces if len(face)]
        if not faces:  # wholly behind the near plane
            return None
        points = np.concatenate(faces, axis=0)
        pixels = project_points(points, camera.intrinsic, camera.width, camera.height, near).pixels
        hull = convex_hull(pixels)
        outline = clip_polygon_rect(hull, camera.width, camera.height)
        return outline if len(outline) >= 3 and polygon_area(outline) > 0 else None

    def sample_points(self, steps: int = 5) -> np.ndarray:
        """(steps**3, 3) points on a regular lattice filling the box, in the box's frame."""
        axis = (np.arange(steps) + 0.5) / steps - 0.5
        grid = np.stack(np.meshgrid(axis, axis, axis, indexing="ij"), axis=-1).reshape(-1, 3)
        local = grid * np.array([self.size[1], self.size[0], self.size[2]])
        return self.frame_T_box.apply(local)

    def visible_fraction(self, rig: CameraRig, ego_T_frame: Transform, steps: int = 5) -> float:
        """Fraction of the box's volume that falls inside at least one camera's field of view."""
        points_ego = ego_T_frame.apply(self.sample_points(steps))
        seen = np.zeros(len(points_ego), dtype=bool)
        for camera in rig:
            seen |= camera.project_ego(points_ego).in_image
        return float(seen.mean())


def convex_hull(points: np.ndarray) -> np.ndarray:
    """Counter-clockwise convex hull (K, 2) of 2D points (Andrew's monotone chain)."""
    pts = np.unique(np.asarray(points, dtype=np.float64), axis=0)
    if len(pts) < 3:
        return pts

    def cross(o: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
        return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])

    lower: list[np.ndarray] = []
    for p in pts:
        while len(lower) >= 2 and cross(lower[-2], lower[-1], p) <= 0:
            lower.pop()
        lower.append(p)
    upper: list[np.ndarray] = []
    for p in pts[::-1]:
        while len(upper) >= 2 and cross(upper[-2], upper[-1], p) <= 0:
            upper.pop()
        upper.append(p)
    return np.asarray(lower[:-1] + upper[:-1])


def clip_polygon_rect(polygon: np.ndarray, width: float, height: float) -> np.ndarray:
    """Clip a convex polygon (K, 2) to the rectangle [0, width] x [0, height] (Sutherland-Hodgman)."""
    # Each boundary as (axis, limit, keep_greater).
    for axis, limit, keep_greater in ((0, 0.0, True), (0, width, False), (1, 0.0, True), (1, height, False)):
        out = []
        n = len(polygon)
        for i in range(n):
            current, following = polygon[i], polygon[(i + 1) % n]
            current_in = current[axis] >= limit if keep_greater else current[axis] <= limit
            following_in = following[axis] >= limit if keep_greater else following[axis] <= limit
            if current_in:
                out.append(current)
            if current_in != following_in:
                t = (limit - current[axis]) / (following[axis] - current[axis])
                out.append(current + t * (following - current))
        polygon = np.asarray(out).reshape(-1, 2)
        if len(polygon) == 0:
            break
    return polygon


def polygon_area(polygon: np.ndarray) -> float:
    """Unsigned area of a simple polygon (K, 2) (shoelace formula)."""
    x, y = polygon[:, 0], polygon[:, 1]
    return float(abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))) / 2.0)
