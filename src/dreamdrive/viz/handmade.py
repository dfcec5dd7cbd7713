"""A small hand-made dataset: straight-road clips with all 10 classes, painted by projection.

It exercises the whole data path (Clip -> nuScenes tables -> devkit -> pictures)
without the procedural world's renderer: images are painted from the same
geometry the annotations describe (sky, asphalt, projected lane markings and
shaded boxes), so annotations and pixels agree by construction.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dreamdrive.core.boxes import Box3D
from dreamdrive.core.camera import CameraRig
from dreamdrive.core.categories import DEFAULT_CATEGORY, TYPICAL_SIZE, detection_class
from dreamdrive.core.clip import Agent, Clip, Frame
from dreamdrive.core.conventions import CAMERA_HZ, KEYFRAME_HZ, LANE_WIDTH
from dreamdrive.core.geometry import Transform
from dreamdrive.core.hdmap import HDMap, Lane
from dreamdrive.viz.draw import CLASS_COLORS, MAP_COLORS, draw_box_faces, draw_polyline_3d

ROAD_X = (10.0, 410.0)
ROAD_Y0 = 43.0  # right road edge; four 3.5 m lanes up to y = 57
START_US = 1_700_000_000_000_000


def straight_road_map(name: str = "handmade-straight") -> HDMap:
    """Four lanes along +x (two each way, driving on the right) with one pedestrian crossing."""
    x0, x1 = ROAD_X
    ys = [ROAD_Y0 + k * LANE_WIDTH for k in range(5)]  # boundary, divider, centre, divider, boundary
    lanes = {}
    for k in range(4):
        y = ROAD_Y0 + (k + 0.5) * LANE_WIDTH
        forward = k < 2  # the two lanes nearest y0 drive towards +x
        line = np.array([[x0, y], [x1, y]]) if forward else np.array([[x1, y], [x0, y]])
        lanes[f"lane{k}"] = Lane(f"lane{k}", line, (), LANE_WIDTH)
    return HDMap(
        name=name,
        road_boundaries=[np.array([[x0, ys[0]], [x1, ys[0]]]), np.array([[x0, ys[4]], [x1, ys[4]]])],
        lane_dividers=[np.array([[x0, y], [x1, y]]) for y in ys[1:4]],
        ped_crossings=[np.array([[150.0, ys[0]], [154.0, ys[0]], [154.0, ys[4]], [150.0, ys[4]]])],
        drivable_areas=[np.array([[x0, ys[0]], [x1, ys[0]], [x1, ys[4]], [x0, ys[4]]])],
        lanes=lanes,
    )


@dataclass(frozen=True)
class _Track:
    """A box moving at constant velocity along x (or y for crossing pedestrians)."""

    detection: str
    x: float
    y: float
    yaw: float
    speed: float
    attribute: str

    def box(self, t: float, instance_id: str) -> Box3D:
        width, length, height = TYPICAL_SIZE[self.detection]
        direction = np.array([np.cos(self.yaw), np.sin(self.yaw)])
        xy = np.array([self.x, self.y]) + self.speed * t * direction
        return Box3D(
            center=np.array([xy[0], xy[1], height / 2]),
            size=np.array([width, length, height]),
            yaw=self.yaw,
            category=DEFAULT_CATEGORY[self.detection],
            instance_id=instance_id,
            velocity=self.speed * direction,
            attributes=(self.attribute,) if self.attribute else (),
            num_lidar_pts=max(1, int(400 / max(1.0, abs(self.x - 30)))),
        )


def _tracks(rng: np.random.Generator, ego_x: float) -> list[_Track]:
    lane = [ROAD_Y0 + (k + 0.5) * LANE_WIDTH for k in range(4)]
    jitter = lambda: float(rng.uniform(-3, 3))  # noqa: E731
    return [
        _Track("car", ego_x + 18 + jitter(), lane[1], 0.0, 7.0, "vehicle.moving"),
        _Track("truck", ego_x + 30 + jitter(), lane[0], 0.0, 6.5, "vehicle.moving"),
        _Track("bus", ego_x + 60 + jitter(), lane[2], np.pi, 8.0, "vehicle.moving"),
        _Track("car", ego_x - 14 + jitter(), lane[1], 0.0, 8.0, "vehicle.moving"),
        _Track("trailer", ego_x + 45 + jitter(), lane[3], np.pi, 0.0, "vehicle.parked"),
        _Track("construction_vehicle", ego_x + 25 + jitter(), lane[3], np.pi, 0.0, "vehicle.parked"),
        _Track("motorcycle", ego_x + 8 + jitter(), lane[2], np.pi, 9.0, "cycle.with_rider"),
        _Track("bicycle", ego_x + 12 + jitter(), ROAD_Y0 - 0.8, 0.0, 4.0, "cycle.with_rider"),
        _Track("pedestrian", ego_x + 20 + jitter(), ROAD_Y0 - 2.0, 0.0, 1.3, "pedestrian.moving"),
        _Track("pedestrian", ego_x + 9 + jitter(), ROAD_Y0 + 4 * LANE_WIDTH + 1.5, 0.0, 0.0, "pedestrian.standing"),
        _Track("traffic_cone", ego_x + 15 + jitter(), ROAD_Y0 + 4 * LANE_WIDTH - 0.4, 0.0, 0.0, ""),
        _Track("traffic_cone", ego_x + 18 + jitter(), ROAD_Y0 + 4 * LANE_WIDTH - 0.4, 0.0, 0.0, ""),
        _Track("barrier", ego_x + 22 + jitter(), ROAD_Y0 + 4 * LANE_WIDTH - 0.5, 0.0, 0.0, ""),
    ]


def paint_frame(rig: CameraRig, global_T_ego: Transform, hdmap: HDMap, boxes: list[Box3D]) -> dict[str, np.ndarray]:
    """Paint each camera's image: sky, asphalt, projected map lines, shaded boxes (RGB uint8)."""
    images = {}
    ego_T_global = global_T_ego.inverse()
    for camera in rig:
        cam_T_global = camera.cam_T_ego @ ego_T_global
        image = np.empty((camera.height, camera.width, 3), dtype=np.uint8)
        horizon = int(round(camera.intrinsic[1, 2]))
        rows = np.arange(camera.height)[:, None]
        sky = np.array([150, 190, 235]) - 40 * rows[:horizon] / max(1, horizon)
        image[:horizon] = sky[:, None, :].astype(np.uint8)
        image[horizon:] = (90, 92, 95)
        for name, lines in (
            ("road_boundary", hdmap.road_boundaries),
            ("lane_divider", hdmap.lane_dividers),
            ("ped_crossing", [np.vstack([p, p[:1]]) for p in hdmap.ped_crossings]),
        ):
            for line in lines:
                points = np.column_stack([line, np.zeros(len(line))])
                draw_polyline_3d(image, points, camera, cam_T_global, MAP_COLORS[name], thickness=2)
        colors = [CLASS_COLORS[detection_class(box.category)] for box in boxes]
        draw_box_faces(image, boxes, camera, cam_T_global, colors)
        images[camera.name] = image
    return images


def handmade_clip(
    name: str, seed: int, seconds: float = 2.0, width: int = 320, height: int = 180, paint: bool = True
) -> Clip:
    """One clip on the straight road: ego at 8 m/s in the right lane, 13 agents of all 10 classes.

    With `paint=False` every image is one shared grey frame (for I/O benchmarks).
    """
    rng = np.random.default_rng(seed)
    hdmap = straight_road_map()
    rig = CameraRig.default(width, height)
    ego_x0, ego_y, ego_speed = 40.0 + float(rng.uniform(0, 20)), ROAD_Y0 + 0.5 * LANE_WIDTH, 8.0
    tracks = _tracks(rng, ego_x0)
    n_frames = int(round(seconds * CAMERA_HZ)) + 1
    step = CAMERA_HZ // KEYFRAME_HZ
    frames, per_frame_boxes = [], []
    blank = np.full((height, width, 3), 110, np.uint8)
    for i in range(n_frames):
        t = i / CAMERA_HZ
        global_T_ego = Transform.from_pose2d(ego_x0 + ego_speed * t, ego_y, 0.0)
        boxes = [track.box(t, f"{name}-{k}") for k, track in enumerate(tracks)]
        frames.append(
            Frame(
                timestamp=START_US + seed * 10**9 + int(round(t * 1e6)),
                global_T_ego=global_T_ego,
                images=paint_frame(rig, global_T_ego, hdmap, boxes) if paint else {c: blank for c in rig.names},
                is_key=(i % step == 0),
            )
        )
        per_frame_boxes.append(boxes)
    agents = [
        Agent(f"{name}-{k}", DEFAULT_CATEGORY[track.detection], [boxes[k] for boxes in per_frame_boxes])
        for k, track in enumerate(tracks)
    ]
    return Clip(
        name=name,
        frames=frames,
        agents=agents,
        rig=rig,
        location=hdmap.name,
        hdmap=hdmap,
        description=f"hand-made straight road, seed {seed}",
    )


def handmade_clips(
    scenes: int = 2, seconds: float = 2.0, width: int = 320, height: int = 180, seed: int = 0, paint: bool = True
) -> list[Clip]:
    """`scenes` hand-made clips named handmade-0000, handmade-0001, ..."""
    return [handmade_clip(f"handmade-{k:04d}", seed + k, seconds, width, height, paint) for k in range(scenes)]
