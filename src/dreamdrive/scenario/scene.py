"""A scenario from a script: its own road, validation (and repair), the Clip and the trajectory raster.

The library's trajectories are in a road frame (x along the road from the
ego's start, y across it, lanes 3.5 m apart). `scenario_road` builds a
one-road `Town` that fits them, so the HD map, the renderer and the pictures
work on it unchanged; `to_clip` turns the scenario into a Clip in global
coordinates (the road frame shifted into positive coordinates). The job that
translates a prompt, renders it and writes it out is `pipelines.scenario`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np
import shapely
from shapely import contains_xy
from shapely.geometry import Polygon
from shapely.ops import unary_union

from dreamdrive.core.boxes import Box3D
from dreamdrive.core.camera import CameraRig
from dreamdrive.core.clip import Agent, Clip, Frame
from dreamdrive.core.conventions import KEYFRAME_HZ
from dreamdrive.core.geometry import Transform
from dreamdrive.core.hdmap import HDMap, Lane
from dreamdrive.core.paths import footprints, footprints_apart
from dreamdrive.scenario import library
from dreamdrive.scenario.junction import junction_town
from dreamdrive.scenario.translate import TranslationError
from dreamdrive.scenario.types import Actor, Problem, RigidFrame, RoadFrame, ScriptResult, Trajectory
from dreamdrive.scenario.verify import disagreements
from dreamdrive.viz.draw import CLASS_COLORS, EGO_TRAJECTORY_COLOR, draw_trajectories
from dreamdrive.world.town import SIDEWALK_WIDTH, Road, StaticObject, Town, offset

FORMAT = 1
ORIGIN = np.array([100.0, 100.0])  # global position of the road frame's origin, less the road's start
MARGIN = 60.0  # metres of road beyond the scenario's extent at each end
CRASH_WORDS = ("crash", "collide", "collision", "hits", "rear-end", "rear ends", "accident")


@dataclass
class Scenario:
    """A scripted scenario: the script, its typed trajectories and the validation report.

    Args:
        prompt: what the user asked for; script: the script over the function library that answers it.
        translator: which translator wrote the script ("offline", "openai", "llama").
        seed: of the roadside scenery and asset choice.
        result: the script's ego and actor trajectories and the scene's settings.
        report: what validation changed or found, one line each.
        crash_requested: the prompt asks for a collision, which validation then keeps.
        frame: where the road frame lies on a map other than the scenario's own road (`placement`).
    """

    prompt: str
    script: str
    translator: str
    seed: int
    result: ScriptResult
    report: list[str] = field(default_factory=list)
    crash_requested: bool = False
    frame: RoadFrame | None = None

    @property
    def name(self) -> str:
        digest = hashlib.sha256(f"{self.prompt}/{self.seed}/{self.script}".encode()).hexdigest()[:8]
        return f"scenario-{digest}"

    def description(self) -> str:
        """A nuScenes-style description: 'Night, rain, truck cuts in'."""
        parts = []
        if self.result.time_of_day != "day":
            parts.append(self.result.time_of_day.capitalize())
        if self.result.weather != "clear":
            parts.append(self.result.weather if parts else self.result.weather.capitalize())
        text = self.prompt.strip().rstrip(".")
        parts.append(text[0].lower() + text[1:] if parts and text else text)
        return ", ".join(parts)

    def to_json(self, town: Town) -> dict:
        return {
            "format": FORMAT,
            "name": self.name,
            "prompt": self.prompt,
            "translator": self.translator,
            "seed": self.seed,
            "script": self.script,
            "description": self.description(),
            "crash_requested": self.crash_requested,
            "validation": self.report,
            "scenario": self.result.to_json(),
            "road_frame": self.road_frame().to_json(),
            "map": town.hdmap.to_json(),
        }

    def road_frame(self) -> RoadFrame:
        """Where the road frame lies: on a map (`placement`), else on the scenario's own road."""
        return self.frame or RigidFrame(global_T_road(self.result))


def global_T_road(result: ScriptResult) -> Transform:
    """Where the scenario's own road puts the road frame (its start shifted into positive coordinates)."""
    x_min, _ = result.extent()
    return Transform.from_pose2d(ORIGIN[0] + MARGIN - x_min, ORIGIN[1], 0.0)


def scenario_road(result: ScriptResult, seed: int) -> Town:
    """A straight road with three lanes our way and two oncoming, sidewalks, lights, trees and buildings; or,
    when the script has a junction, that road crossed by a two-lane-each-way road at the junction."""
    lane = result.lane_width
    x_min, x_max = result.extent()
    to_global = global_T_road(result)
    if result.junction is not None:
        return junction_town(result.junction, x_min - MARGIN, x_max + MARGIN, seed, to_global)
    start, end = to_global.apply(np.array([[x_min - MARGIN, 1.5 * lane, 0], [x_max + MARGIN, 1.5 * lane, 0]]))
    centreline = np.linspace(start[:2], end[:2], max(2, int((end[0] - start[0]) / 2)))
    road = Road("r0", "start", "end", centreline, forward_lanes=3, backward_lanes=2)
    left, right = offset(centreline, road.left_edge), offset(centreline, -road.right_edge)
    lanes = {}
    for forward, count in ((True, 3), (False, 2)):
        for k in range(count):
            lane_id = road.lane_id(forward, k)
            lanes[lane_id] = Lane(lane_id, road.lane_line(forward, k))
    dividers = [centreline] + [offset(centreline, -k * lane) for k in (1, 2)] + [offset(centreline, lane)]
    hdmap = HDMap(
        f"scenario-road-{len(centreline)}",
        lane_dividers=dividers,
        road_boundaries=[left, right],
        drivable_areas=[np.vstack([left, right[::-1]])],
        lanes=lanes,
    )
    sidewalks = [
        np.vstack([left, offset(centreline, road.left_edge + SIDEWALK_WIDTH)[::-1]]),
        np.vstack([offset(centreline, -road.right_edge - SIDEWALK_WIDTH), right[::-1]]),
    ]
    town = Town(hdmap.name, hdmap, {}, {"r0": road}, {}, sidewalks, {}, {}, {})
    rng = np.random.default_rng(seed)
    statics = []
    palette = [(0.62, 0.58, 0.52), (0.55, 0.48, 0.42), (0.7, 0.7, 0.68), (0.5, 0.52, 0.58)]
    for side, edge in ((1.0, road.left_edge), (-1.0, road.right_edge)):
        y = centreline[0, 1] + side * (edge + 0.6)
        for x in np.arange(centreline[0, 0] + 5, centreline[-1, 0], 30.0):
            statics.append(
                StaticObject(
                    "streetlight", (float(x), float(y)), (0.3, 0.3, 7.0), 0.0 if side < 0 else np.pi, (0.3, 0.3, 0.32)
                )
            )
        x = centreline[0, 0] + float(rng.uniform(0, 10))
        while x < centreline[-1, 0]:
            width, depth = float(rng.uniform(10, 22)), float(rng.uniform(8, 16))
            y = centreline[0, 1] + side * (edge + SIDEWALK_WIDTH + 2.0 + depth / 2)
            statics.append(
                StaticObject(
                    "building",
                    (float(x + width / 2), float(y)),
                    (depth, width, float(rng.uniform(6, 20))),
                    0.0,
                    palette[int(rng.integers(len(palette)))],
                )
            )
            x += width + float(rng.uniform(2, 8))
    town.statics = statics
    return town


# -- validation ---------------------------------------------------------------------------------


def _track(trajectory: Trajectory) -> tuple[np.ndarray, np.ndarray]:
    array = trajectory.array()
    return np.column_stack([array[:, :2], np.zeros(len(array))]), array[:, 2]


def check(result: ScriptResult, town: Town, frame: RoadFrame | None = None) -> list[Problem]:
    """Problems of a scenario: overlapping actors (or actor and ego), vehicles off the road, limits broken.

    `frame` lays the road frame on the town's map (`placement`); default: the scenario's own road.
    """
    problems = []
    ego_centres, ego_yaw = _track(result.ego)
    frame = frame or RigidFrame(global_T_road(result))
    road = _drivable(town)
    shapes = {"ego": footprints(ego_centres, ego_yaw, library.SIZE["car"])}
    for actor in result.actors:
        centres, yaw = _track(actor.trajectory)
        shapes[actor.actor_id] = footprints(centres, yaw, tuple(actor.size))
        if actor.kind not in ("pedestrian",):
            corners = frame.points(shapes[actor.actor_id].reshape(-1, 2))
            if not contains_xy(road, corners[:, 0], corners[:, 1]).all():
                problems.append(Problem("off_road", (actor.actor_id,)))
        speeds = actor.trajectory.array()[:, 3]
        if actor.kind in library.TOP_SPEED and speeds.max() > library.TOP_SPEED[actor.kind] + 1e-6:
            problems.append(Problem("too_fast", (actor.actor_id,), detail=actor.kind))
    names = list(shapes)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            apart = footprints_apart(shapes[a], shapes[b])
            if not apart.all():
                first = int(np.argmin(apart))
                problems.append(Problem("overlap", (a, b), first / result.hz))
    return problems


_DRIVABLE: dict[int, tuple[HDMap, object]] = {}


def _drivable(town: Town):
    """The town's drivable area as one prepared shapely geometry, 0.3 m wider (kept per map)."""
    key = id(town.hdmap)
    if key not in _DRIVABLE or _DRIVABLE[key][0] is not town.hdmap:
        road = unary_union([Polygon(p).buffer(0) for p in town.hdmap.drivable_areas]).buffer(0.3)
        shapely.prepare(road)
        _DRIVABLE[key] = (town.hdmap, road)
    return _DRIVABLE[key][1]


def validate_and_repair(scenario: Scenario, town: Town) -> Scenario:
    """Move actors that collide further along their road (5 m at a time), or drop them; report what changed.

    A prompt that asks for a crash keeps its collisions, and the report says so. A repair that leaves the scenario
    no longer showing what the prompt asks (`verify.disagreements`: a cut-in moved out of reach, a crossing actor
    removed) is refused with what it broke, rather than returned as a scenario that is not what was asked.
    """
    result = scenario.result
    scenario.crash_requested = any(word in scenario.prompt.lower() for word in CRASH_WORDS)
    problems = check(result, town, scenario.frame)
    if scenario.crash_requested:
        scenario.report = [f"the prompt asks for a crash: kept {p}" for p in problems if p.kind == "overlap"] + [
            str(p) for p in problems if p.kind != "overlap"
        ]
        return scenario
    report = []
    before = set(disagreements(scenario.prompt, result)) if any(p.kind == "overlap" for p in problems) else set()
    for _ in range(12):
        overlapping = [p for p in problems if p.kind == "overlap"]
        if not overlapping:
            break
        first = overlapping[0]
        a, b = first.actors
        mover = b if a == "ego" else a  # the ego never moves; of two actors, the first named yields
        actor = result.actor(mover)
        ego_speed = result.ego.start[3]
        behind = actor.trajectory.start[0] < result.ego.start[0]
        if a == "ego" and behind and max(p[3] for p in actor.trajectory.rows) > ego_speed and not actor.slowed:
            _cap_speed(actor, ego_speed, 1.0 / result.hz)
            actor.slowed = True
            report.append(f"lowered {mover}'s speed to the ego's {ego_speed:.1f} m/s: {first}")
        elif actor.shifted >= 30 or actor.kind in ("traffic_cone", "barrier"):
            result.actors = [x for x in result.actors if x.actor_id != mover]
            report.append(f"removed {mover}: it overlapped {a if mover == b else b} wherever it was placed")
        else:
            direction = 1.0 if actor.trajectory.start[0] >= 0 else -1.0
            for point in actor.trajectory.rows:
                point[0] = round(point[0] + 5.0 * direction, 6)
            actor.shifted += 5
            report.append(f"moved {mover} 5 m {'further ahead' if direction > 0 else 'further back'}: {first}")
        problems = check(result, town, scenario.frame)
    scenario.report = report + [str(p) for p in problems]
    broken = [p for p in disagreements(scenario.prompt, result) if p not in before] if report else []
    if broken:
        raise TranslationError(
            f"the actors collide, and the repair ({'; '.join(report)}) leaves the scenario not what the prompt asks "
            f"({'; '.join(broken)}); ask for fewer actors at once, or give their distances."
        )
    return scenario


def _cap_speed(actor: Actor, limit: float, dt: float) -> None:
    """Lower an actor's speed to at most `limit` along its path (its lateral motion is kept)."""
    rows = actor.trajectory.rows
    x = rows[0][0]
    direction = 1.0 if abs(rows[0][2]) < np.pi / 2 else -1.0
    for point in rows:
        point[0] = round(x, 6)
        point[3] = round(min(point[3], limit), 6)
        x += direction * point[3] * dt


# -- outputs ----------------------------------------------------------------------------------------


def to_clip(
    scenario: Scenario,
    town: Town,
    rig: CameraRig,
    images: list[dict] | None = None,
    start_us: int = 1_700_000_000_000_000,
) -> Clip:
    """The scenario as a Clip in global coordinates (images: per frame, per camera; default grey frames)."""
    result = scenario.result
    frame = scenario.road_frame()
    frames_count = result.frames
    step = result.hz // KEYFRAME_HZ
    blank = np.full((rig.cameras[0].height, rig.cameras[0].width, 3), 110, np.uint8)
    frames = []
    ego_poses = frame.poses(result.ego.array())
    for i in range(frames_count):
        global_T_ego = Transform.from_pose2d(*ego_poses[i])
        frame_images = images[i] if images is not None else {c: blank for c in rig.names}
        frames.append(Frame(start_us + round(i * 1e6 / result.hz), global_T_ego, frame_images, is_key=i % step == 0))
    agents = []
    for actor in result.actors:
        width, length, height = actor.size
        boxes = []
        trajectory = actor.trajectory.array()
        poses = frame.poses(trajectory)
        for i in range(frames_count):
            speed = trajectory[i, 3]
            gx, gy, gyaw = poses[i]
            centre = np.array([gx, gy, height / 2])
            velocity = speed * np.array([np.cos(gyaw), np.sin(gyaw)])
            boxes.append(
                Box3D(
                    centre,
                    np.array([width, length, height]),
                    float(gyaw),
                    actor.category,
                    f"{scenario.name}-{actor.actor_id}",
                    velocity,
                    _attribute(actor, speed),
                    num_lidar_pts=None,
                )
            )
        agents.append(Agent(f"{scenario.name}-{actor.actor_id}", actor.category, boxes))
    return Clip(
        scenario.name,
        frames,
        agents,
        rig,
        location=town.name,
        hdmap=town.hdmap,
        description=scenario.description(),
        log_name=scenario.name,
    )


def _attribute(actor: Actor, speed: float) -> tuple[str, ...]:
    kind = actor.kind
    if kind == "pedestrian":
        return ("pedestrian.moving",) if speed > 0.3 else ("pedestrian.standing",)
    if kind in ("bicycle", "motorcycle"):
        return ("cycle.with_rider",)
    if kind in ("traffic_cone", "barrier"):
        return ()
    if actor.state == "parked":
        return ("vehicle.parked",)
    return ("vehicle.moving",) if speed > 0.3 else ("vehicle.stopped",)


def trajectory_raster(result: ScriptResult, size: int = 512, resolution: float = 0.2) -> np.ndarray:
    """DriveDreamer-2's BEV trajectory map (H, W, 3) uint8, around the ego's first pose (forward up): every
    actor's trajectory in its class colour and the ego's in white, dark at the start and bright at the end.

    It holds the trajectories only, as the paper defines it: no road or lane line, so that the HD-map
    generator that reads it has to produce the map rather than copy it.
    """
    canvas = np.zeros((size, size, 3), np.uint8)
    x0, y0, yaw0, _ = result.ego.start
    ego_T_road = Transform.from_pose2d(x0, y0, yaw0).inverse()

    def pixels(points_road: np.ndarray) -> np.ndarray:
        ego = ego_T_road.apply(np.column_stack([points_road[:, :2], np.zeros(len(points_road))]))
        return np.stack([size / 2 - ego[:, 1] / resolution, size / 2 - ego[:, 0] / resolution], 1)

    tracks = [(EGO_TRAJECTORY_COLOR, pixels(result.ego.array()))] + [
        (CLASS_COLORS.get(actor.kind, (200, 200, 200)), pixels(actor.trajectory.array())) for actor in result.actors
    ]
    draw_trajectories(canvas, tracks)
    return canvas
