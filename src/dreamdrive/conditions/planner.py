"""Where an inserted asset goes: at a pose, along a scenario script's trajectory, or sampled automatically.

Every placement is a track over all frames of the clip (global x, y, yaw and
speed per frame, NaN where the object is absent) and is checked the way the
scenario validators check scripts: its box must stay on the drivable area,
keep `MARGIN` metres from every annotated agent, the ego and the other
insertions on every frame, and (when the scene's depth is known) be seen by at
least one camera past whatever stands in front of it.

Distances and sides are measured in the ego frame of the clip's first frame:
near 4-20 m, mid 20-35 m, far 35-50 m from the ego; left is ego +y, right -y.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import shapely
from shapely.geometry import Polygon
from shapely.ops import unary_union

from dreamdrive.core.boxes import Box3D
from dreamdrive.core.categories import TYPICAL_SIZE
from dreamdrive.core.clip import Clip
from dreamdrive.core.errors import DreamdriveError
from dreamdrive.core.geometry import Transform, wrap_angle
from dreamdrive.core.paths import Path2D, arc_length, footprints, footprints_apart
from dreamdrive.scenario.types import ScriptResult
from dreamdrive.world.assets import AssetInfo

DISTANCES = {"any": (4.0, 50.0), "near": (4.0, 20.0), "mid": (20.0, 35.0), "far": (35.0, 50.0)}
SIDES = ("any", "left", "right")
MARGIN = 0.5  # metres kept free around an inserted box
EGO_SIZE = TYPICAL_SIZE["car"]
# Speeds (m/s) an automatic placement may move at; classes not listed stand still.
MOVING_SPEED = {
    "car": (3.0, 10.0), "truck": (3.0, 8.0), "bus": (3.0, 8.0), "construction_vehicle": (1.0, 3.0),
    "motorcycle": (3.0, 10.0), "bicycle": (2.0, 5.0), "pedestrian": (0.8, 1.6),
}  # fmt: skip
VISIBLE_POINTS = 6  # of a box's 27 lattice points one camera must see on some key frame


@dataclass(frozen=True)
class Placement:
    """One inserted object: its asset and its track over the clip's frames.

    Args:
        track: (T, 4) global x, y, yaw, speed per frame of the clip; NaN rows where the object is absent.
        source: how it was placed ("at", "script:<actor id>", "auto").
    """

    asset: AssetInfo
    track: np.ndarray
    source: str

    @property
    def present(self) -> np.ndarray:
        return ~np.isnan(self.track[:, 0])

    def boxes(self, clip: Clip, instance_id: str) -> list[Box3D | None]:
        """A box on every frame where the object is present (its bottom on the ego's ground plane)."""
        width, length, height = self.asset.size
        ever_moves = bool(np.nanmax(self.track[:, 3]) > 0)
        out: list[Box3D | None] = []
        for frame, (x, y, yaw, speed) in zip(clip.frames, self.track):
            if np.isnan(x):
                out.append(None)
                continue
            ground = frame.global_T_ego.translation[2]
            out.append(
                Box3D(
                    np.array([x, y, ground + height / 2]),
                    np.array([width, length, height]),
                    float(yaw),
                    self.asset.category,
                    instance_id,
                    speed * np.array([np.cos(yaw), np.sin(yaw)]),
                    _attributes(self.asset, speed, ever_moves),
                )
            )
        return out

    def to_json(self) -> dict:
        return {
            "asset_id": self.asset.asset_id,
            "class": self.asset.detection_class,
            "source": self.source,
            "track": [None if np.isnan(row[0]) else [round(float(v), 4) for v in row] for row in self.track],
        }


def _attributes(asset: AssetInfo, speed: float, ever_moves: bool) -> tuple[str, ...]:
    kind = asset.detection_class
    if kind == "pedestrian":
        return ("pedestrian.moving",) if speed > 0.3 else ("pedestrian.standing",)
    if kind in ("bicycle", "motorcycle"):
        return ("cycle.with_rider",) if asset.rider else ("cycle.without_rider",)
    if kind in ("traffic_cone", "barrier"):
        return ()
    if speed > 0.3:
        return ("vehicle.moving",)
    return ("vehicle.stopped",) if ever_moves else ("vehicle.parked",)


def clip_seed(seed: int, scene: str) -> list[int]:
    """A random stream per (seed, scene), the same on every machine."""
    return [seed, zlib.crc32(scene.encode())]


class InsertionPlanner:
    """Placements for one clip, checked against its map, its agents and the ego.

    Args:
        depth: (frame index, camera channel) -> the scene's depth in that view; used to
            require that a placement is seen past what stands in front of it. None: only
            the cameras' fields of view are checked.
    """

    def __init__(self, clip: Clip, depth: Callable[[int, str], np.ndarray] | None = None, margin: float = MARGIN):
        if clip.hdmap is None or not clip.hdmap.drivable_areas:
            raise DreamdriveError(
                f"clip {clip.name!r} has no map with a drivable area, so placements cannot be checked against the "
                "road; give a dataset with map sidecars (procedural builds) or the nuScenes map expansion."
            )
        self.clip = clip
        self.depth = depth
        self.margin = margin
        self.road = unary_union([Polygon(p).buffer(0) for p in clip.hdmap.drivable_areas])
        shapely.prepare(self.road)
        times = np.array([frame.timestamp for frame in clip.frames], np.float64)
        self.times = (times - times[0]) / 1e6
        self.ego = np.array([[*f.global_T_ego.translation[:2], f.global_T_ego.yaw] for f in clip.frames])
        self.obstacles: dict[str, tuple[np.ndarray, np.ndarray]] = {
            "the ego": (self._shape(self.ego, EGO_SIZE), np.ones(len(clip.frames), bool))
        }
        for agent in clip.agents:
            present = np.array([box is not None for box in agent.boxes])
            poses = np.array([[*b.center[:2], b.yaw] if b is not None else [0.0, 0.0, 0.0] for b in agent.boxes])
            size = next(tuple(b.size) for b in agent.boxes if b is not None)
            self.obstacles[agent.instance_id] = (self._shape(poses, size), present)
        self._depth_cache: dict[tuple[int, str], np.ndarray] = {}

    def _shape(self, poses: np.ndarray, size, grow: float = 0.0) -> np.ndarray:
        width, length, height = size
        centres = np.column_stack([poses[:, :2], np.zeros(len(poses))])
        return footprints(centres, poses[:, 2], (width + 2 * grow, length + 2 * grow, height))

    # -- checks ----------------------------------------------------------------------------------

    def problems(self, placement: Placement, others: list[Placement] = ()) -> list[str]:
        """What is wrong with a placement: off the road, too close to an agent, the ego or another insertion."""
        present = placement.present
        if not present.any():
            return ["it is present on no frame of the clip"]
        found = []
        corners = self._shape(placement.track[present], placement.asset.size).reshape(-1, 2)
        if not shapely.contains_xy(self.road, corners[:, 0], corners[:, 1]).all():
            found.append("it leaves the drivable area")
        grown = np.zeros((len(present), 4, 2))
        grown[present] = self._shape(placement.track[present], placement.asset.size, self.margin)
        obstacles = dict(self.obstacles)
        for k, other in enumerate(others):
            obstacles[f"insertion {k + 1}"] = (self._shape(np.nan_to_num(other.track), other.asset.size), other.present)
        for name, (shape, there) in obstacles.items():
            both = present & there
            if both.any():
                apart = footprints_apart(grown[both], shape[both])
                if not apart.all():
                    when = self.times[np.flatnonzero(both)[np.argmin(apart)]]
                    found.append(f"it comes within {self.margin} m of {name} at {when:.2f} s")
        return found

    def visible(self, placement: Placement) -> bool:
        """Whether some camera sees enough of the box on some key frame (past the scene's depth when known)."""
        boxes = placement.boxes(self.clip, "candidate")
        for i in self.clip.key_indices:
            if boxes[i] is None:
                continue
            for camera in self.clip.rig:
                _, global_T_ego = self.clip.frames[i].camera_pose(camera.name)
                projection = camera.project_ego(global_T_ego.inverse().apply(boxes[i].sample_points(3)))
                seen = projection.in_image.copy()
                if seen.sum() >= VISIBLE_POINTS and self.depth is not None:
                    inside = np.flatnonzero(seen)
                    pixels = projection.pixels[inside].astype(int)
                    scene = self._scene_depth(i, camera.name)[pixels[:, 1], pixels[:, 0]]
                    seen[inside] = (scene <= 0) | (scene >= projection.depth[inside] - 0.3)  # nothing nearer
                if seen.sum() >= VISIBLE_POINTS:
                    return True
        return False

    def _scene_depth(self, index: int, channel: str) -> np.ndarray:
        if (index, channel) not in self._depth_cache:
            self._depth_cache[(index, channel)] = self.depth(index, channel)
        return self._depth_cache[(index, channel)]

    def _accept(self, placement: Placement, others: list[Placement], what: str) -> Placement:
        found = self.problems(placement, others)
        if not found and not self.visible(placement):
            found = ["no camera sees it on any key frame"]
        if found:
            raise DreamdriveError(f"cannot insert {what} into {self.clip.name!r}: {'; '.join(found)}.")
        return placement

    # -- placements ------------------------------------------------------------------------------

    def at(self, asset: AssetInfo, x: float, y: float, yaw: float) -> Placement:
        """A still object at (x, y, yaw) in the ego frame of the clip's first frame."""
        pose = self.clip.frames[0].global_T_ego @ Transform.from_pose2d(x, y, yaw)
        row = [*pose.translation[:2], wrap_angle(pose.yaw), 0.0]
        placement = Placement(asset, np.tile(np.array(row), (len(self.clip.frames), 1)), "at")
        return self._accept(placement, [], f"{asset.asset_id} at ({x}, {y}, {yaw}) in the first frame's ego frame")

    def from_script(self, result: ScriptResult, pick: Callable[[str], AssetInfo]) -> list[Placement]:
        """Every actor of a scenario script's result, its road frame laid on the ego's first pose.

        The script's ego start becomes the clip's ego pose on the first frame; actors follow
        their trajectories in time (linear interpolation at the clip's timestamps) and are
        absent after the script's duration. `pick` gives the asset for an actor's class.
        """
        ego_x, ego_y, ego_yaw, _ = result.ego.start
        global_T_road = self.clip.frames[0].global_T_ego @ Transform.from_pose2d(ego_x, ego_y, ego_yaw).inverse()
        placements: list[Placement] = []
        script_times = np.arange(result.frames) / result.hz
        for actor in result.actors:
            road = actor.trajectory.array()
            points = global_T_road.apply(np.column_stack([road[:, :2], np.zeros(len(road))]))
            yaw = np.unwrap(road[:, 2] + global_T_road.yaw)
            track = np.full((len(self.times), 4), np.nan)
            inside = self.times <= script_times[-1] + 1e-9
            for column, values in enumerate((points[:, 0], points[:, 1], yaw, road[:, 3])):
                track[inside, column] = np.interp(self.times[inside], script_times, values)
            track[inside, 2] = wrap_angle(track[inside, 2])
            placement = Placement(pick(actor.kind), track, f"script:{actor.actor_id}")
            placements.append(self._accept(placement, placements, f"the script's {actor.actor_id}"))
        if not placements:
            raise DreamdriveError("the script adds no actors; spawn at least one (e.g. vehicle(...)).")
        return placements

    def auto(
        self,
        count: int,
        pick: Callable[[np.random.Generator], AssetInfo],
        rng: np.random.Generator,
        distance: str = "any",
        side: str = "any",
        attempts: int = 400,
    ) -> tuple[list[Placement], list[str]]:
        """Up to `count` placements on lanes near the ego, each checked; returns them and notes on any shortfall."""
        if distance not in DISTANCES:
            raise DreamdriveError(f"distance {distance!r} must be one of {list(DISTANCES)}.")
        if side not in SIDES:
            raise DreamdriveError(f"side {side!r} must be one of {list(SIDES)}.")
        candidates = self._lane_samples(distance, side)
        if not len(candidates["xy"]):
            return [], [f"no lane of {self.clip.name!r} lies {distance} on the {side} side of the ego's start"]
        placements: list[Placement] = []
        notes = []
        for k in range(count):
            for _ in range(attempts):
                asset = pick(rng)
                placement = self._sample(asset, candidates, rng)
                if not self.problems(placement, placements) and self.visible(placement):
                    placements.append(placement)
                    break
            else:
                notes.append(f"placement {k + 1} of {count}: no free spot found in {attempts} tries")
        return placements, notes

    @cached_property
    def _paths(self) -> dict[str, np.ndarray]:
        """Every lane's centreline resampled every 2 m."""
        return {lane_id: resample(lane.centerline, 2.0) for lane_id, lane in self.clip.hdmap.lanes.items()}

    def _lane_samples(self, distance: str, side: str) -> dict[str, np.ndarray]:
        """Points every 2 m along the lanes, with their lane and index, that lie in the requested ring and side."""
        low, high = DISTANCES[distance]
        ego_T_global = self.clip.frames[0].global_T_ego.inverse()
        lanes, xy, index = [], [], []
        for lane_id, path in self._paths.items():
            lanes += [lane_id] * len(path)
            xy.append(path)
            index.append(np.arange(len(path)))
        if not lanes:
            return {"xy": np.zeros((0, 2))}
        xy, index, lanes = np.concatenate(xy), np.concatenate(index), np.array(lanes)
        ego = ego_T_global.apply(np.column_stack([xy, np.zeros(len(xy))]))
        reach = np.hypot(ego[:, 0], ego[:, 1])
        keep = (reach >= low) & (reach <= high)
        if side == "left":
            keep &= ego[:, 1] > 1.0
        elif side == "right":
            keep &= ego[:, 1] < -1.0
        return {"xy": xy[keep], "index": index[keep], "lane": lanes[keep]}

    def _sample(self, asset: AssetInfo, candidates: dict, rng: np.random.Generator) -> Placement:
        pick = int(rng.integers(len(candidates["xy"])))
        lane_id, start = str(candidates["lane"][pick]), int(candidates["index"][pick])
        lane = self.clip.hdmap.lanes[lane_id]
        width = asset.size[0]
        moving = asset.detection_class in MOVING_SPEED and rng.random() < 0.5
        speed = float(rng.uniform(*MOVING_SPEED[asset.detection_class])) if moving else 0.0
        path = self._paths[lane_id][start:]
        duration = self.times[-1]
        while arc_length(path)[-1] < speed * duration + 2.0:
            successors = [s for s in self.clip.hdmap.lanes[lane_id].successors if s in self._paths]
            if not successors:
                break
            lane_id = successors[int(rng.integers(len(successors)))]
            path = np.vstack([path, self._paths[lane_id][1:]])
        if len(path) < 2:
            path = self._paths[lane_id][max(start - 1, 0) : start + 1]
        slack = max(0.0, (lane.width - width) / 2 - 0.1)
        lateral = 0.0 if moving and asset.detection_class != "pedestrian" else float(rng.uniform(-slack, slack))
        track = follow(path, speed, self.times, lateral)
        return Placement(asset, track, "auto")


def resample(polyline: np.ndarray, step: float) -> np.ndarray:
    """Points every `step` metres along a polyline (its first point included)."""
    path = Path2D(polyline)
    return path.pose(np.arange(0.0, path.length + 1e-9, step))[0]


def follow(path: np.ndarray, speed: float, times: np.ndarray, lateral: float = 0.0) -> np.ndarray:
    """(T, 4) x, y, yaw, speed of a point moving along `path` at `speed` from its start, `lateral` m to its left.

    It stops at the path's end (speed 0 from then on).
    """
    along = Path2D(path)
    xy, yaw = along.pose(np.minimum(speed * times, along.length - 1e-6))
    xy = xy + lateral * np.column_stack([-np.sin(yaw), np.cos(yaw)])
    moving = (speed * times < along.length - 1e-6) & (speed > 0)
    return np.column_stack([xy, yaw, np.where(moving, speed, 0.0)])


def placements_json(placements: list[Placement], notes: list[str]) -> bytes:
    return json.dumps({"placements": [p.to_json() for p in placements], "notes": notes}, indent=1).encode()
