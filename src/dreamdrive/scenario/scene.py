"""A scenario from a script: placed on a road, validated (and repaired), and written out.

The library's trajectories are in a road frame (x along the road from the
ego's start, y across it, lanes 3.5 m apart). `scenario_road` builds a
one-road `Town` that fits them, so the HD map, the renderer and the pictures
work on it unchanged; `to_clip` turns the scenario into a Clip in global
coordinates (the road frame shifted into positive coordinates).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from shapely import contains_xy
from shapely.geometry import Polygon
from shapely.ops import unary_union

from dreamdrive.core.boxes import Box3D
from dreamdrive.core.camera import CameraRig
from dreamdrive.core.clip import KEYFRAME_HZ, Agent, Clip, Frame
from dreamdrive.core.errors import DreamdriveError
from dreamdrive.core.geometry import Transform
from dreamdrive.core.hdmap import HDMap, Lane
from dreamdrive.scenario import library
from dreamdrive.world.town import SIDEWALK_WIDTH, Road, StaticObject, Town, offset
from dreamdrive.world.traffic import footprints, footprints_apart

FORMAT = 1
ORIGIN = np.array([100.0, 100.0])  # global position of the road frame's origin, less the road's start
MARGIN = 60.0  # metres of road beyond the scenario's extent at each end
CRASH_WORDS = ("crash", "collide", "collision", "hits", "rear-end", "rear ends", "accident")


@dataclass
class Scenario:
    """A scripted scenario: the script, its trajectories (the library's result) and the validation report."""

    prompt: str
    script: str
    translator: str
    seed: int
    data: dict
    report: list[str] = field(default_factory=list)
    crash_requested: bool = False
    frame: object | None = None  # where the road frame lies on a map other than its own road (`placement`)

    @property
    def name(self) -> str:
        digest = hashlib.sha256(f"{self.prompt}/{self.seed}/{self.script}".encode()).hexdigest()[:8]
        return f"scenario-{digest}"

    def description(self) -> str:
        """A nuScenes-style description: 'Night, rain, truck cuts in'."""
        parts = []
        if self.data["time_of_day"] != "day":
            parts.append(self.data["time_of_day"].capitalize())
        if self.data["weather"] != "clear":
            parts.append(self.data["weather"] if parts else self.data["weather"].capitalize())
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
            "scenario": self.data,
            "road_frame": (self.frame or _rigid(self.data)).to_json(),
            "map": town.hdmap.to_json(),
        }


def extent(data: dict) -> tuple[float, float]:
    xs = [p[0] for p in data["ego"]] + [p[0] for actor in data["actors"] for p in actor["trajectory"]]
    return min(xs), max(xs)


def global_T_road(data: dict) -> Transform:
    x_min, _ = extent(data)
    return Transform.from_pose2d(ORIGIN[0] + MARGIN - x_min, ORIGIN[1], 0.0)


def _rigid(data: dict):
    from dreamdrive.scenario.placement import RigidFrame

    return RigidFrame(global_T_road(data))


def scenario_road(data: dict, seed: int) -> Town:
    """A straight road with three lanes our way and two oncoming, sidewalks, lights, trees and buildings; or,
    when the script has a junction, that road crossed by a two-lane-each-way road at the junction."""
    lane = data["lane_width"]
    x_min, x_max = extent(data)
    to_global = global_T_road(data)
    if data.get("junction") is not None:
        from dreamdrive.scenario.junction import junction_town

        return junction_town(data["junction"], x_min - MARGIN, x_max + MARGIN, seed, to_global)
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


def _track(trajectory: list[list[float]]) -> tuple[np.ndarray, np.ndarray]:
    array = np.asarray(trajectory, dtype=np.float64)
    return np.column_stack([array[:, :2], np.zeros(len(array))]), array[:, 2]


def check(data: dict, town: Town, frame=None) -> list[str]:
    """Problems of a scenario: overlapping actors (or actor and ego), vehicles off the road, limits broken.

    `frame` lays the road frame on the town's map (`placement`); default: the scenario's own road.
    """
    from dreamdrive.scenario.placement import RigidFrame

    problems = []
    ego_centres, ego_yaw = _track(data["ego"])
    frame = frame or RigidFrame(global_T_road(data))
    road = _drivable(town)
    shapes = {"ego": footprints(ego_centres, ego_yaw, library.SIZE["car"])}
    for actor in data["actors"]:
        centres, yaw = _track(actor["trajectory"])
        shapes[actor["id"]] = footprints(centres, yaw, tuple(actor["size"]))
        if actor["class"] not in ("pedestrian",):
            corners = frame.points(shapes[actor["id"]].reshape(-1, 2))
            if not contains_xy(road, corners[:, 0], corners[:, 1]).all():
                problems.append(f"{actor['id']} leaves the drivable area")
        speeds = np.asarray(actor["trajectory"])[:, 3]
        if actor["class"] in library.TOP_SPEED and speeds.max() > library.TOP_SPEED[actor["class"]] + 1e-6:
            problems.append(f"{actor['id']} is faster than a {actor['class']} can go")
    names = list(shapes)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            apart = footprints_apart(shapes[a], shapes[b])
            if not apart.all():
                first = int(np.argmin(apart))
                problems.append(f"{a} and {b} overlap at {first / data['hz']:.2f} s")
    return problems


_DRIVABLE: dict[int, tuple[HDMap, object]] = {}


def _drivable(town: Town):
    """The town's drivable area as one prepared shapely geometry, 0.3 m wider (kept per map)."""
    import shapely

    key = id(town.hdmap)
    if key not in _DRIVABLE or _DRIVABLE[key][0] is not town.hdmap:
        road = unary_union([Polygon(p).buffer(0) for p in town.hdmap.drivable_areas]).buffer(0.3)
        shapely.prepare(road)
        _DRIVABLE[key] = (town.hdmap, road)
    return _DRIVABLE[key][1]


def validate_and_repair(scenario: Scenario, town: Town) -> Scenario:
    """Move actors that collide further along their road (5 m at a time), or drop them; report what changed.

    A prompt that asks for a crash keeps its collisions, and the report says so.
    """
    scenario.crash_requested = any(word in scenario.prompt.lower() for word in CRASH_WORDS)
    problems = check(scenario.data, town, scenario.frame)
    if scenario.crash_requested:
        scenario.report = [f"the prompt asks for a crash: kept {p}" for p in problems if "overlap" in p] + [
            p for p in problems if "overlap" not in p
        ]
        return scenario
    report = []
    for _ in range(12):
        overlapping = [p for p in problems if "overlap" in p]
        if not overlapping:
            break
        first = overlapping[0]
        a, b = first.split(" overlap")[0].split(" and ")
        mover = b if a == "ego" else a  # the ego never moves; of two actors, the first named yields
        actor = next(x for x in scenario.data["actors"] if x["id"] == mover)
        ego_speed = scenario.data["ego"][0][3]
        behind = actor["trajectory"][0][0] < scenario.data["ego"][0][0]
        if a == "ego" and behind and max(p[3] for p in actor["trajectory"]) > ego_speed and not actor.get("slowed"):
            _cap_speed(actor, ego_speed, 1.0 / scenario.data["hz"])
            actor["slowed"] = True
            report.append(f"lowered {mover}'s speed to the ego's {ego_speed:.1f} m/s: {first}")
        elif actor.get("shifted", 0) >= 30 or actor["class"] in ("traffic_cone", "barrier"):
            scenario.data["actors"] = [x for x in scenario.data["actors"] if x["id"] != mover]
            report.append(f"removed {mover}: it overlapped {a if mover == b else b} wherever it was placed")
        else:
            direction = 1.0 if actor["trajectory"][0][0] >= 0 else -1.0
            for point in actor["trajectory"]:
                point[0] = round(point[0] + 5.0 * direction, 6)
            actor["shifted"] = actor.get("shifted", 0) + 5
            report.append(f"moved {mover} 5 m {'further ahead' if direction > 0 else 'further back'}: {first}")
        problems = check(scenario.data, town, scenario.frame)
    scenario.report = report + problems
    return scenario


def _cap_speed(actor: dict, limit: float, dt: float) -> None:
    """Lower an actor's speed to at most `limit` along its path (its lateral motion is kept)."""
    trajectory = actor["trajectory"]
    x = trajectory[0][0]
    direction = 1.0 if abs(trajectory[0][2]) < np.pi / 2 else -1.0
    for point in trajectory:
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
    data = scenario.data
    frame = scenario.frame or _rigid(data)
    frames_count = data["frames"]
    step = data["hz"] // KEYFRAME_HZ
    blank = np.full((rig.cameras[0].height, rig.cameras[0].width, 3), 110, np.uint8)
    frames = []
    ego_poses = frame.poses(np.asarray(data["ego"]))
    for i in range(frames_count):
        global_T_ego = Transform.from_pose2d(*ego_poses[i])
        frame_images = images[i] if images is not None else {c: blank for c in rig.names}
        frames.append(Frame(start_us + round(i * 1e6 / data["hz"]), global_T_ego, frame_images, is_key=i % step == 0))
    agents = []
    for actor in data["actors"]:
        width, length, height = actor["size"]
        boxes = []
        trajectory = np.asarray(actor["trajectory"])
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
                    actor["category"],
                    f"{scenario.name}-{actor['id']}",
                    velocity,
                    _attribute(actor, speed),
                    num_lidar_pts=None,
                )
            )
        agents.append(Agent(f"{scenario.name}-{actor['id']}", actor["category"], boxes))
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


def _attribute(actor: dict, speed: float) -> tuple[str, ...]:
    kind = actor["class"]
    if kind == "pedestrian":
        return ("pedestrian.moving",) if speed > 0.3 else ("pedestrian.standing",)
    if kind in ("bicycle", "motorcycle"):
        return ("cycle.with_rider",)
    if kind in ("traffic_cone", "barrier"):
        return ()
    if actor.get("state") == "parked":
        return ("vehicle.parked",)
    return ("vehicle.moving",) if speed > 0.3 else ("vehicle.stopped",)


def trajectory_raster(scenario: Scenario, size: int = 512, resolution: float = 0.2) -> np.ndarray:
    """DriveDreamer-2's BEV trajectory map (H, W, 3) uint8: every trajectory in its class colour, dark at the
    start and bright at the end, around the ego's first pose (forward up), over the map's lane lines in grey."""
    import cv2

    from dreamdrive.viz.draw import CLASS_COLORS

    canvas = np.zeros((size, size, 3), np.uint8)
    data = scenario.data
    x0, y0, yaw0, _ = data["ego"][0]
    road_T_ego = Transform.from_pose2d(x0, y0, yaw0)
    ego_T_road = road_T_ego.inverse()

    def pixels(points_road: np.ndarray) -> np.ndarray:
        ego = ego_T_road.apply(np.column_stack([points_road[:, :2], np.zeros(len(points_road))]))
        return np.stack([size / 2 - ego[:, 1] / resolution, size / 2 - ego[:, 0] / resolution], 1)

    lane = data["lane_width"]
    xs = np.linspace(-size * resolution, size * resolution, 50) + x0
    for y in (-1.5 * lane, 1.5 * lane, 3.5 * lane):  # road edges and the centre line
        line = pixels(np.column_stack([xs, np.full_like(xs, y)]))
        cv2.polylines(canvas, [np.round(line).astype(np.int32)], False, (70, 70, 70), 1, cv2.LINE_AA)
    tracks = [("car", np.asarray(data["ego"]))] + [(a["class"], np.asarray(a["trajectory"])) for a in data["actors"]]
    for kind, trajectory in tracks:
        colour = np.array(
            (255, 255, 255)
            if kind == "car" and trajectory is tracks[0][1]
            else CLASS_COLORS.get(kind, (200, 200, 200)),
            np.float64,
        )
        points = pixels(trajectory)
        n = len(points)
        for i in range(n - 1):
            shade = 0.25 + 0.75 * i / max(n - 2, 1)  # graded in time: start dark, end bright
            a, b = np.round(points[i]).astype(int), np.round(points[i + 1]).astype(int)
            cv2.line(canvas, tuple(a), tuple(b), tuple(int(c * shade) for c in colour), 2, cv2.LINE_AA)
    return canvas


def write_outputs(
    scenario: Scenario, out: Path, render: bool = True, width: int = 448, height: int = 256, town: Town | None = None
) -> Path:
    """scenario.json, script.py, bev.png, trajectory_map.png and dataset/ (rendered when `render`; a map without
    the procedural world's roads, such as a nuScenes location, is not rendered: its frames stay grey)."""
    from dreamdrive.nusc.schema import atomic_write
    from dreamdrive.nusc.writer import write_dataset
    from dreamdrive.viz.pictures import bev_plot, save_png, write_video

    out = Path(out)
    town = town or scenario_road(scenario.data, scenario.seed)
    render = render and bool(town.roads)
    atomic_write(out / "scenario.json", json.dumps(scenario.to_json(town), indent=1).encode())
    atomic_write(out / "script.py", scenario.script.encode())
    rig = CameraRig.default(width, height)
    images = render_scenario(scenario, town, rig) if render else None
    clip = to_clip(scenario, town, rig, images)
    bev_plot(clip, len(clip.frames) // 2, out / "bev.png", radius=60.0)
    save_png(trajectory_raster(scenario), out / "trajectory_map.png")
    write_dataset([clip], out / "dataset", splits={"scenario": [clip.name]}, overwrite=True)
    if render:
        write_video(clip, out / "scenario.mp4")
    return out


def render_scenario(scenario: Scenario, town: Town, rig: CameraRig) -> list[dict]:
    """Six-camera JPEG frames of the scenario with the procedural renderer (the builder's assets and lights)."""
    from dreamdrive.nusc.writer import encode_jpeg
    from dreamdrive.world.assets import builtin_assets
    from dreamdrive.world.geometry import SEMANTIC, mesh_soup
    from dreamdrive.world.render import Environment, RenderObject, make_renderer

    assets = {a.info.asset_id: a for a in builtin_assets(scenario.seed)}
    chosen = {actor["id"]: _pick_asset(actor, assets) for actor in scenario.data["actors"]}
    meshes = {
        key: mesh_soup(assets[key].mesh, SEMANTIC[assets[key].info.detection_class]) for key in set(chosen.values())
    }
    if not meshes:
        meshes = {"car-00": mesh_soup(assets["car-00"].mesh, SEMANTIC["car"])}
    renderer = make_renderer(town, meshes, rig.cameras[0].width, rig.cameras[0].height)
    environment = Environment(scenario.data["time_of_day"], scenario.data["weather"], sun_azimuth=2.0)
    frame = scenario.frame or _rigid(scenario.data)
    ego_poses = frame.poses(np.asarray(scenario.data["ego"]))
    actor_poses = [frame.poses(np.asarray(actor["trajectory"])) for actor in scenario.data["actors"]]
    frames = []
    try:
        for i in range(scenario.data["frames"]):
            global_T_ego = Transform.from_pose2d(*ego_poses[i])
            objects = []
            for k, actor in enumerate(scenario.data["actors"]):
                height = assets[chosen[actor["id"]]].info.size[2]
                pose = Transform.from_pose2d(*actor_poses[k][i], height / 2)
                objects.append(RenderObject(chosen[actor["id"]], pose, k + 1, lights=True))
            renderer.prepare(global_T_ego.translation, objects, environment)
            views = {}
            for camera in rig:
                rgb = renderer.render(camera, global_T_ego @ camera.ego_T_cam, objects).rgb
                views[camera.name] = encode_jpeg(rgb, 92)
            frames.append(views)
    finally:
        renderer.release()
    return frames


def _pick_asset(actor: dict, assets: dict) -> str:
    """The variant of the actor's class whose body colour is nearest the requested one (else the first)."""
    from dreamdrive.world.assets import PAINT

    kind = actor["class"]
    options = sorted(key for key, asset in assets.items() if asset.info.detection_class == kind)
    if not options:
        raise DreamdriveError(f"no asset for class {kind!r}.")
    if not actor.get("color"):
        return options[0]
    wanted = np.array(COLOR_RGB[actor["color"]])

    def distance(key: str) -> float:
        colors = assets[key].mesh.colors
        paint = colors[colors[:, 3] == PAINT][:, :3]
        return float(np.linalg.norm(paint.mean(axis=0) / 255 - wanted)) if len(paint) else 9.0

    return min(options, key=distance)


COLOR_RGB = {
    "white": (0.9, 0.9, 0.9),
    "black": (0.1, 0.1, 0.12),
    "grey": (0.55, 0.56, 0.6),
    "silver": (0.75, 0.75, 0.78),
    "red": (0.6, 0.08, 0.08),
    "blue": (0.1, 0.2, 0.5),
    "green": (0.25, 0.3, 0.25),
    "yellow": (0.9, 0.75, 0.1),
    "orange": (0.75, 0.55, 0.2),
    "brown": (0.45, 0.3, 0.2),
}


def load_map(spec: str, seed: int) -> Town | None:
    """The map named by `spec`: "road" (None: the scenario's own road or junction), "town" or "town:SEED" (a
    procedural town), or "nuscenes:DATAROOT:LOCATION" (a nuScenes map expansion)."""
    kind, _, rest = spec.partition(":")
    if kind == "road" and not rest:
        return None
    if kind == "town":
        from dreamdrive.world.town import make_town

        try:
            return make_town(int(rest) if rest else seed)
        except ValueError as error:
            raise DreamdriveError(f"--map town takes a seed, as in town:3, got {spec!r}.") from error
    if kind == "nuscenes":
        from dreamdrive.nusc.mapexp import hdmap_from_expansion

        dataroot, _, location = rest.rpartition(":")
        if not dataroot or not location:
            raise DreamdriveError(f"--map nuscenes takes nuscenes:DATAROOT:LOCATION, got {spec!r}.")
        hdmap = hdmap_from_expansion(dataroot, location)
        return Town(location, hdmap, {}, {}, {}, [], {}, {}, {})
    raise DreamdriveError(f"--map {spec!r} must be road, town, town:SEED or nuscenes:DATAROOT:LOCATION.")


def from_prompt(
    prompt: str, translator: str = "offline", seed: int = 0, map_spec: str = "road"
) -> tuple[Scenario, Town]:
    """Translate `prompt`, run its script in the sandbox, place it on a road (or on the map `map_spec` names, see
    `load_map`) and validate it."""
    from dreamdrive.scenario.sandbox import run_script
    from dreamdrive.scenario.translate import translate_offline

    town = load_map(map_spec, seed)
    if translator == "offline":
        script = translate_offline(prompt)
    elif translator == "openai":
        from dreamdrive.scenario.llm import OpenAITranslator

        script = OpenAITranslator().translate(prompt)
    elif translator == "llama":
        from dreamdrive.scenario.llm import LlamaTranslator

        script = LlamaTranslator().translate(prompt)
    else:
        raise DreamdriveError(f"translator {translator!r} must be 'offline', 'openai' or 'llama'.")
    data = run_script(script, "dreamdrive.scenario.library", set(library.FUNCTIONS), set(library.METHODS))
    scenario = Scenario(prompt, script, translator, seed, data)
    if town is not None:
        from dreamdrive.scenario.placement import place_on_map

        scenario.frame = place_on_map(data, town, seed)
        validate_and_repair(scenario, town)
        return scenario, town
    validate_and_repair(scenario, scenario_road(data, seed))
    return scenario, scenario_road(scenario.data, seed)
