"""Insertion (Dream4Drive's baseline, naive): where assets go in a clip, and the clip with them pasted in.

The planner places assets (at a pose, along a script, or automatically); every
camera frame is composited with the assets' pixels where the scene does not hide
them (the asset renderer's depth against the scene's depth: the frame's dense
ground truth, else LiDAR); LiDAR rays that would hit an inserted box stop on it,
so `num_lidar_pts` is recounted for every box of the sweep; the new instances
get a box on every frame, and the dense ground truth (where the clip has it) is
updated with the pasted objects.

The assets are lit by a clear day (no relighting, no shadow on the scene):
that is what naive insertion means, and what the generative mode improves on.
These are pure functions of a Clip; the dataset job that reads, edits and
writes whole datasets is `pipelines.insert`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, replace

import cv2
import numpy as np

from dreamdrive.conditions.guidance import (
    asset_renderer,
    guidance_maps,
    normals_from_depth,
    scene_depth,
    visible_over,
)
from dreamdrive.conditions.planner import DISTANCES, SIDES, InsertionPlanner, Placement, clip_seed
from dreamdrive.core.categories import DETECTION_CLASSES
from dreamdrive.core.clip import Agent, Clip
from dreamdrive.core.errors import DreamdriveError
from dreamdrive.core.geometry import Transform
from dreamdrive.files import load_image
from dreamdrive.nusc.dense import (
    DenseView,
    dense_visibility,
    depth_of,
    encode_packed,
    pack_dense,
    read_packed,
    unpack_dense,
)
from dreamdrive.nusc.schema import global_T_lidar
from dreamdrive.nusc.writer import encode_jpeg, load_points
from dreamdrive.scenario.sandbox import run_scenario_script
from dreamdrive.world.assets import Asset, AssetInfo, AssetLibrary
from dreamdrive.world.render import Environment, RenderObject, render_frame


@dataclass(frozen=True)
class InsertRequest:
    """What to insert and where. Give one of `asset` / `classes` and one of `at` / `script` / `auto`.

    Args:
        asset: a library asset id; classes: detection classes to draw assets from (a variant at random).
        at: (x, y, yaw) in the ego frame of each clip's first frame; script: a scenario script's source;
            auto: placements per clip, sampled on lanes near the ego.
        distance, side: where automatic placements go (`planner.DISTANCES`, `planner.SIDES`).
        mode: how the assets are rendered into the scene (`pipelines.insert.MODES`).
        with_originals: also write the unedited clips.
    """

    asset: str | None = None
    classes: tuple[str, ...] = ()
    at: tuple[float, float, float] | None = None
    script: str | None = None
    auto: int | None = None
    distance: str = "any"
    side: str = "any"
    mode: str = "naive"
    seed: int = 0
    with_originals: bool = False

    def __post_init__(self) -> None:
        if (self.asset is None) == (not self.classes):
            raise DreamdriveError("name either an asset (--asset ID) or the classes to insert (--class NAME).")
        unknown = [c for c in self.classes if c not in DETECTION_CLASSES]
        if unknown:
            raise DreamdriveError(f"unknown classes {unknown}; use among {list(DETECTION_CLASSES)}.")
        if sum(x is not None for x in (self.at, self.script, self.auto)) != 1:
            raise DreamdriveError("say where to insert with exactly one of --at x,y,yaw, --script FILE or --auto N.")
        if self.auto is not None and not 1 <= self.auto <= 50:
            raise DreamdriveError(f"--auto takes 1 to 50 placements per clip, got {self.auto}.")
        if self.distance not in DISTANCES or self.side not in SIDES:
            raise DreamdriveError(f"distance must be one of {list(DISTANCES)} and side one of {list(SIDES)}.")


class AssetChooser:
    """The assets a request may use, drawn reproducibly, with their meshes loaded once."""

    def __init__(self, library: AssetLibrary, request: InsertRequest):
        self.library = library
        self.request = request
        infos = library.list()
        self.by_id = {info.asset_id: info for info in infos}
        if request.asset is not None and request.asset not in self.by_id:
            library.get(request.asset)  # raises, naming the library and how to list it
        self.by_class: dict[str, list[AssetInfo]] = {}
        for info in infos:
            self.by_class.setdefault(info.detection_class, []).append(info)
        for name in request.classes:
            if name not in self.by_class:
                raise DreamdriveError(f"the asset library {library.root} holds no {name}; add one with `assets add`.")
        self._meshes: dict[str, Asset] = {}

    def fingerprint(self) -> str:
        """A digest of the assets this request can draw from (their records and meshes)."""
        digest = hashlib.sha256()
        names = [self.request.asset] if self.request.asset else [i.asset_id for i in self.by_id.values()]
        for name in sorted(names):
            digest.update(json.dumps(asdict(self.by_id[name])).encode())
            digest.update(hashlib.sha256((self.library.root / f"{name}.glb").read_bytes()).digest())
        return digest.hexdigest()

    def for_auto(self, rng: np.random.Generator) -> AssetInfo:
        if self.request.asset is not None:
            return self.by_id[self.request.asset]
        kind = self.request.classes[int(rng.integers(len(self.request.classes)))]
        return self.by_class[kind][int(rng.integers(len(self.by_class[kind])))]

    def for_class(self, kind: str, rng: np.random.Generator) -> AssetInfo:
        if self.request.asset is not None and self.by_id[self.request.asset].detection_class == kind:
            return self.by_id[self.request.asset]
        if kind not in self.by_class:
            raise DreamdriveError(f"the script has a {kind} and the asset library {self.library.root} holds none.")
        return self.by_class[kind][int(rng.integers(len(self.by_class[kind])))]

    def asset(self, info: AssetInfo) -> Asset:
        if info.asset_id not in self._meshes:
            self._meshes[info.asset_id] = self.library.get(info.asset_id)
        return self._meshes[info.asset_id]


def plan(clip: Clip, request: InsertRequest, chooser: AssetChooser) -> tuple[list[Placement], list[str]]:
    """The request's placements in one clip (and notes on any it could not place)."""
    rng = np.random.default_rng(clip_seed(request.seed, clip.name))
    planner = InsertionPlanner(clip, lambda i, channel: scene_depth(clip, i, channel))
    if request.at is not None:
        info = chooser.for_auto(rng)
        return [planner.at(info, *request.at)], []
    if request.script is not None:
        result = run_scenario_script(request.script)
        return planner.from_script(result, lambda kind: chooser.for_class(kind, rng)), []
    return planner.auto(request.auto, chooser.for_auto, rng, request.distance, request.side)


# -- compositing --------------------------------------------------------------------------------------


def stop_rays_at_boxes(points: np.ndarray, lidar_T_boxes: list[Transform], sizes: list, inset: float = 0.05):
    """LiDAR points (N, >=3, sensor frame) with every ray that enters a box before its return cut short there.

    Each box is given by lidar_T_box and its (width, length, height). A cut ray returns
    `inset` metres inside the box's face it enters (never past the face it leaves).
    Returns the new points and the (N,) mask of the rays that were cut.
    """
    points = np.array(points, dtype=np.float32, copy=True)
    xyz = points[:, :3].astype(np.float64)
    best = np.full(len(points), np.inf)
    for lidar_T_box, (width, length, height) in zip(lidar_T_boxes, sizes):
        box_T_lidar = lidar_T_box.inverse()
        origin = box_T_lidar.translation
        direction = box_T_lidar.apply(xyz) - origin  # the ray from the sensor (t=0) to the return (t=1)
        half = np.array([length, width, height]) / 2
        with np.errstate(divide="ignore", invalid="ignore"):
            t1 = (-half - origin) / direction
            t2 = (half - origin) / direction
        t1 = np.where(np.abs(direction) < 1e-12, np.where(np.abs(origin) <= half, -np.inf, np.inf), t1)
        t2 = np.where(np.abs(direction) < 1e-12, np.where(np.abs(origin) <= half, np.inf, -np.inf), t2)
        enter = np.minimum(t1, t2).max(axis=1)
        leave = np.maximum(t1, t2).min(axis=1)
        hit = (enter <= leave) & (enter > 0) & (enter < 1)
        reach = np.linalg.norm(direction, axis=1)
        stop = np.minimum(enter + inset / np.maximum(reach, 1e-9), (enter + leave) / 2)
        best = np.where(hit & (stop < best), stop, best)
    cut = np.isfinite(best)
    points[cut, :3] = (xyz[cut] * best[cut, None]).astype(np.float32)
    return points, cut


def naive_insert(
    clip: Clip, placements: list[Placement], chooser: AssetChooser, name: str, quality: int
) -> tuple[Clip, InsertionReport]:
    """The clip with the placements pasted in, named `name`, and a report of what was inserted where.

    Images are re-encoded as JPEG at `quality` where an object shows. Where the clip has dense
    ground truth, the edited clip's frames carry it with the objects pasted in (as sidecar bytes).
    """
    has_dense = any(frame.dense for frame in clip.frames)
    instances = dict(clip.dense_instances)
    base = max(instances, default=0)
    new_ids = [f"{name}-ins{k + 1}" for k in range(len(placements))]
    instances.update({base + k + 1: new_ids[k] for k in range(len(placements))})
    index_of = {v: k for k, v in instances.items()}
    new_boxes = [p.boxes(clip, new_ids[k]) for k, p in enumerate(placements)]
    assets = {p.asset.asset_id: chooser.asset(p.asset) for p in placements}
    camera = clip.rig.cameras[0]
    renderer = asset_renderer(list(assets.values()), camera.width, camera.height)
    visible_pixels = np.zeros((len(placements), len(clip.frames), len(clip.rig)), np.int64)
    frames = []
    agents = [Agent(a.instance_id, a.category, list(a.boxes)) for a in clip.agents]
    try:
        for i, frame in enumerate(clip.frames):
            present = [k for k in range(len(placements)) if new_boxes[k][i] is not None]
            objects = [RenderObject(placements[k].asset.asset_id, new_boxes[k][i].frame_T_box, k + 1) for k in present]
            views = {}
            if objects:
                poses = {channel: pose for channel, (_, pose) in frame.camera_poses.items()}
                views = render_frame(renderer, clip.rig, frame.global_T_ego, objects, Environment(), camera_poses=poses)
            images, dense = dict(frame.images), dict(frame.dense)
            dense_views = {}
            for v, cam in enumerate(clip.rig):
                what = f"dense ground truth of {clip.name} {cam.name} frame {i}"
                packed = read_packed(frame.dense[cam.name], what) if has_dense else None
                if objects:
                    depth = depth_of(packed) if packed is not None else scene_depth(clip, i, cam.name)
                    rendered = views[cam.name]
                    visible = visible_over(rendered, depth)
                    if visible.any():
                        rgb = load_image(frame.images[cam.name]).copy()
                        rgb[visible] = rendered.rgb[visible]
                        images[cam.name] = encode_jpeg(rgb, quality, f"{name} {cam.name}")
                        for k in present:
                            visible_pixels[k, i, v] = int((visible & (rendered.instance == k + 1)).sum())
                        if packed is not None:
                            pasted = pack_dense(rendered.depth, rendered.normal, rendered.instance, rendered.semantic)
                            pasted[1] = np.where(rendered.instance > 0, rendered.instance + base, 0)
                            packed = packed.copy()
                            packed[:, visible] = pasted[:, visible]
                            dense[cam.name] = encode_packed(packed)
                if packed is not None:
                    dense_views[cam.name] = DenseView(depth_of(packed), packed[1].astype(np.int32))
            lidar = frame.lidar
            recount = False
            if frame.lidar is not None and objects:
                points = load_points(frame.lidar, f"LiDAR of {clip.name} frame {i}")
                lidar_T_global = global_T_lidar(frame).inverse()
                lidar, cut = stop_rays_at_boxes(
                    points,
                    [lidar_T_global @ new_boxes[k][i].frame_T_box for k in present],
                    [placements[k].asset.size for k in present],
                )
                recount = bool(cut.any())
            for agent in agents:
                box = agent.boxes[i]
                if box is None:
                    continue
                if recount:
                    box = replace(box, num_lidar_pts=None)
                if frame.is_key and dense_views and agent.instance_id in index_of and objects:
                    index = index_of[agent.instance_id]
                    box = replace(
                        box, visibility=dense_visibility(box, index, clip.rig, frame.global_T_ego, dense_views)
                    )
                agent.boxes[i] = box
            for k in present:
                box = new_boxes[k][i]
                if frame.is_key and dense_views:
                    box = replace(
                        box, visibility=dense_visibility(box, base + k + 1, clip.rig, frame.global_T_ego, dense_views)
                    )
                new_boxes[k][i] = box
            frames.append(replace(frame, images=images, lidar=lidar, dense=dense))
    finally:
        renderer.release()
    for k, placement in enumerate(placements):
        agents.append(Agent(new_ids[k], placement.asset.category, new_boxes[k]))
    edited = replace(
        clip,
        name=name,
        frames=frames,
        agents=agents,
        description=f"{clip.description}; naive insertion of {', '.join(p.asset.asset_id for p in placements)}",
        log_name=f"{clip.log_name}-{name}",
        dense_instances=instances if has_dense else {},
    )
    instances = [
        InsertedInstance.from_placement(new_ids[k], placement, visible_pixels[k], clip)
        for k, placement in enumerate(placements)
    ]
    return edited, InsertionReport(name, clip.name, "naive", instances)


# -- the report -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BestView:
    """Where an inserted object shows most: a key frame index, a camera, and its visible pixels there."""

    frame: int
    camera: str
    pixels: int


@dataclass(frozen=True)
class InsertedInstance:
    """One inserted object.

    Args:
        instance_id: its instance in the edited scene.
        asset_id, kind: the library asset and its detection class.
        source: how it was placed ("at", "auto:...", "script:<actor>").
        track: per clip frame (x m, y m, yaw rad, speed m/s) in the global frame, None where absent.
        visible_pixels_max: the most pixels of it any camera showed on any frame.
        best_view: where it shows most on a key frame.
    """

    instance_id: str
    asset_id: str
    kind: str
    source: str
    track: list[list[float] | None]
    visible_pixels_max: int
    best_view: BestView

    @classmethod
    def from_placement(cls, instance_id: str, placement: Placement, pixels: np.ndarray, clip: Clip):
        """From a placement and its visible pixels (frames, views) in `clip`."""
        keys = clip.key_indices
        frame, view = np.unravel_index(np.argmax(pixels[keys]), pixels[keys].shape)
        best = BestView(int(keys[frame]), clip.rig.names[int(view)], int(pixels[keys][frame, view]))
        record = placement.to_json()
        return cls(
            instance_id, record["asset_id"], record["class"], record["source"], record["track"], int(pixels.max()), best
        )

    def to_json(self) -> dict:
        return {("class" if name == "kind" else name): value for name, value in asdict(self).items()}

    @classmethod
    def from_json(cls, record: dict) -> InsertedInstance:
        return cls(
            record["instance_id"],
            record["asset_id"],
            record["class"],
            record["source"],
            record["track"],
            record["visible_pixels_max"],
            BestView(**record["best_view"]),
        )


@dataclass
class InsertionReport:
    """What an insertion put into one scene (written as `dreamdrive/insertions/<scene>.json`).

    Args:
        scene: the edited scene's name; source_scene: the scene it was made from.
        mode: the insertion mode ("naive").
        instances: the inserted objects.
        notes: placements that could not be made, and why.
    """

    scene: str
    source_scene: str
    mode: str
    instances: list[InsertedInstance]
    notes: list[str] = field(default_factory=list)

    def best_view(self) -> BestView:
        """Where the most visible of its objects shows most."""
        return max((item.best_view for item in self.instances), key=lambda view: view.pixels)

    def to_json(self) -> dict:
        return {
            "scene": self.scene,
            "source_scene": self.source_scene,
            "mode": self.mode,
            "instances": [item.to_json() for item in self.instances],
            "notes": self.notes,
        }

    @classmethod
    def from_json(cls, record: dict) -> InsertionReport:
        try:
            instances = [InsertedInstance.from_json(item) for item in record["instances"]]
            notes = list(record.get("notes", []))
            return cls(record["scene"], record["source_scene"], record["mode"], instances, notes)
        except (KeyError, TypeError) as error:
            raise DreamdriveError(f"an insertion report is malformed ({error!r}); run the insertion again.") from error


# -- guidance of an edited clip (for generative insertion) ------------------------------------------------


@dataclass
class EditGuidance:
    """An edited clip's inputs to generative insertion on chosen frames, at one image size (T frames, V views).

    source: (T, V, H, W, 3) uint8, the clip's images; guidance: (T, V, 9, H, W) float16
    (`conditions.guidance.guidance_maps`: the scene's depth, normals and edges blanked under the objects, their
    object image and mask); mask: (T, V, H, W) bool, where an inserted object shows; naive: (T, V, H, W, 3)
    uint8, the source with the objects pasted where they show (naive insertion at this size).
    """

    source: np.ndarray
    guidance: np.ndarray
    mask: np.ndarray
    naive: np.ndarray


def scene_maps(clip: Clip, index: int, camera) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """One camera frame at `camera`'s size (a camera of `clip.rig`, possibly resized): its image (by area), the
    scene's depth and normals, and its dense instance map (None without dense ground truth). Depth and normals
    come from the dense ground truth where the clip has it (exact in the procedural world), else from LiDAR
    (`scene_depth`) with normals from that depth; maps are resized by nearest neighbour."""
    frame, size = clip.frames[index], (camera.width, camera.height)
    rgb = load_image(frame.images[camera.name])
    if rgb.shape[:2] != size[::-1]:
        rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
    if camera.name in frame.dense:
        dense = unpack_dense(read_packed(frame.dense[camera.name], f"dense of {clip.name} {camera.name}"))
        maps = [dense["depth"], dense["normal"], dense["instance"]]
        if maps[0].shape != size[::-1]:
            maps = [cv2.resize(m, size, interpolation=cv2.INTER_NEAREST) for m in maps]
        return rgb, *maps
    depth = scene_depth(clip, index, camera.name)
    if depth.shape != size[::-1]:
        depth = cv2.resize(depth, size, interpolation=cv2.INTER_NEAREST)
    return rgb, depth, normals_from_depth(depth, camera.intrinsic), None


def edit_guidance(
    clip: Clip, placements: list[Placement], chooser: AssetChooser, indices: list[int], size: tuple[int, int]
) -> EditGuidance:
    """Guidance maps of `clip` with `placements` inserted, on frames `indices`, at `size` (height, width).

    The scene's maps are `scene_maps`'; the assets are rendered at `size` with the scene's occlusion.
    """
    height, width = size
    rig = clip.rig.resized(width, height)
    boxes = [p.boxes(clip, f"guidance-{k}") for k, p in enumerate(placements)]
    assets = {p.asset.asset_id: chooser.asset(p.asset) for p in placements}
    shape = (len(indices), len(rig))
    source = np.zeros((*shape, height, width, 3), np.uint8)
    guidance = np.zeros((*shape, 9, height, width), np.float16)
    mask = np.zeros((*shape, height, width), bool)
    naive = np.zeros_like(source)
    renderer = asset_renderer(list(assets.values()), width, height)
    try:
        for t, i in enumerate(indices):
            frame = clip.frames[i]
            objects = [RenderObject(p.asset.asset_id, boxes[k][i].frame_T_box, k + 1)
                       for k, p in enumerate(placements) if boxes[k][i] is not None]  # fmt: skip
            views = {}
            if objects:
                poses = {channel: pose for channel, (_, pose) in frame.camera_poses.items()}
                views = render_frame(renderer, rig, frame.global_T_ego, objects, Environment(), camera_poses=poses)
            for v, camera in enumerate(rig):
                rgb, depth, normal, _ = scene_maps(clip, i, camera)
                if camera.name in views:
                    rendered = views[camera.name]
                    visible = visible_over(rendered, depth)
                    obj = rendered.rgb
                else:
                    visible, obj = np.zeros((height, width), bool), np.zeros((height, width, 3), np.uint8)
                source[t, v], mask[t, v] = rgb, visible
                naive[t, v] = np.where(visible[..., None], obj, rgb)
                guidance[t, v] = guidance_maps(rgb, depth, normal, obj, visible)
    finally:
        renderer.release()
    return EditGuidance(source, guidance, mask, naive)
