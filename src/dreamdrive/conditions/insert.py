"""Naive insertion (Dream4Drive's baseline): paste rendered assets into clips and write them as a dataset.

For each chosen scene of a nuScenes-format dataset, the planner places assets
(at a pose, along a script, or automatically); every camera frame is composited
with the assets' pixels where the scene does not hide them (the asset renderer's
depth against the scene's depth: the dense sidecar, else LiDAR); LiDAR rays
that would hit an inserted box stop on it, so `num_lidar_pts` is recounted for
every box of the sweep; the new instances get a box on every frame. The edited
clip is written as `<scene>-naive` (plus the original with `with_originals`),
with updated dense sidecars where the source has them and an insertion report
at `dreamdrive/insertions/<scene>-naive.json`.

The assets are lit by a clear day (no relighting, no shadow on the scene):
that is what naive insertion means, and what the generative mode improves on.

The job is resumable like every dataset writer here: a finished scene is
skipped, a killed run continues, and rerunning a finished job does nothing.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from dreamdrive.conditions.guidance import asset_renderer, render_inserted, scene_depth
from dreamdrive.conditions.planner import DISTANCES, SIDES, InsertionPlanner, Placement, clip_seed
from dreamdrive.core.categories import DETECTION_CLASSES
from dreamdrive.core.clip import Agent, Clip
from dreamdrive.core.errors import DreamdriveError
from dreamdrive.core.geometry import Transform
from dreamdrive.nusc.schema import PREDEFINED_SPLITS, SIDECAR_DIR, atomic_write, dumps, global_T_lidar
from dreamdrive.nusc.writer import encode_jpeg, load_points
from dreamdrive.viz.pictures import load_image
from dreamdrive.world.assets import Asset, AssetInfo, AssetLibrary
from dreamdrive.world.builder import (
    DEPTH_SCALE,
    dense_folder,
    dense_path,
    load_packed,
    pack_dense,
    render_visibility,
    write_packed,
)
from dreamdrive.world.render import CameraImages, Environment, RenderObject

INSERT_FORMAT = 1
MODES = ("naive",)


@dataclass(frozen=True)
class InsertRequest:
    """What to insert and where. Give one of `asset` / `classes` and one of `at` / `script` / `auto`.

    Args:
        asset: a library asset id; classes: detection classes to draw assets from (a variant at random).
        at: (x, y, yaw) in the ego frame of each clip's first frame; script: a scenario script's source;
            auto: placements per clip, sampled on lanes near the ego.
        distance, side: where automatic placements go (`planner.DISTANCES`, `planner.SIDES`).
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
        if self.mode not in MODES:
            raise DreamdriveError(f"mode {self.mode!r} must be one of {list(MODES)}.")
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


def plan(clip: Clip, dataroot: Path, request: InsertRequest, chooser: AssetChooser) -> tuple[list[Placement], list]:
    """The request's placements in one clip (and notes on any it could not place)."""
    rng = np.random.default_rng(clip_seed(request.seed, clip.name))
    planner = InsertionPlanner(clip, lambda i, channel: scene_depth(dataroot, clip, i, channel))
    if request.at is not None:
        info = chooser.for_auto(rng)
        return [planner.at(info, *request.at)], []
    if request.script is not None:
        from dreamdrive.scenario import library
        from dreamdrive.scenario.sandbox import run_script

        data = run_script(request.script, "dreamdrive.scenario.library", set(library.FUNCTIONS), set(library.METHODS))
        return planner.from_script(data, lambda kind: chooser.for_class(kind, rng)), []
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
    dataroot: Path,
    clip: Clip,
    placements: list[Placement],
    chooser: AssetChooser,
    out: Path,
    name: str,
    quality: int,
    scratch: Path,
) -> tuple[Clip, dict]:
    """The clip with the placements pasted in, named `name`; dense sidecars go under `out` (temporary files under
    `scratch`, the writer's). Returns it and a report."""
    source_dense = dense_folder(dataroot, clip.name)
    has_dense = (source_dense / "instances.json").is_file()
    instances = {}
    if has_dense:
        instances = {int(k): v for k, v in json.loads((source_dense / "instances.json").read_text()).items()}
    base = max(instances, default=0)
    new_ids = [f"{name}-ins{k + 1}" for k in range(len(placements))]
    instances.update({base + k + 1: new_ids[k] for k in range(len(placements))})
    if has_dense:
        atomic_write(dense_folder(out, name) / "instances.json", dumps(instances), scratch=scratch)
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
            if objects:
                renderer.prepare(frame.global_T_ego.translation, objects, Environment())
            images = dict(frame.images)
            dense_views = {}
            for v, cam in enumerate(clip.rig):
                packed = load_packed(dense_path(dataroot, clip.name, cam.name, frame.timestamp)) if has_dense else None
                if objects:
                    depth = (
                        packed[0].astype(np.float32) / DEPTH_SCALE
                        if packed is not None
                        else scene_depth(dataroot, clip, i, cam.name)
                    )
                    _, global_T_ego = frame.camera_pose(cam.name)
                    rendered, visible = render_inserted(renderer, cam, global_T_ego @ cam.ego_T_cam, objects, depth)
                    if visible.any():
                        rgb = load_image(frame.images[cam.name]).copy()
                        rgb[visible] = rendered.rgb[visible]
                        images[cam.name] = encode_jpeg(rgb, quality, f"{name} {cam.name}")
                        for k in present:
                            visible_pixels[k, i, v] = int((visible & (rendered.instance == k + 1)).sum())
                        if packed is not None:
                            pasted = pack_dense(rendered)
                            pasted[1] = np.where(rendered.instance > 0, rendered.instance + base, 0)
                            packed = packed.copy()
                            packed[:, visible] = pasted[:, visible]
                if packed is not None:
                    write_packed(dense_path(out, name, cam.name, frame.timestamp), packed, scratch)
                    dense_views[cam.name] = CameraImages(
                        None, packed[0].astype(np.float32) / DEPTH_SCALE, None, packed[1].astype(np.int32), None
                    )
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
                        box, visibility=render_visibility(box, index, clip.rig, frame.global_T_ego, dense_views)
                    )
                agent.boxes[i] = box
            for k in present:
                box = new_boxes[k][i]
                if frame.is_key and dense_views:
                    box = replace(
                        box, visibility=render_visibility(box, base + k + 1, clip.rig, frame.global_T_ego, dense_views)
                    )
                new_boxes[k][i] = box
            frames.append(replace(frame, images=images, lidar=lidar))
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
    )
    report = {
        "scene": name,
        "source_scene": clip.name,
        "mode": "naive",
        "instances": [
            {
                "instance_id": new_ids[k],
                **placement.to_json(),
                "visible_pixels_max": int(visible_pixels[k].max()),
                "best_view": _best_view(visible_pixels[k], clip),
            }
            for k, placement in enumerate(placements)
        ],
    }
    return edited, report


def inserted_objects(
    dataroot: str | Path, clip: Clip, index: int, library: AssetLibrary
) -> list[tuple[Asset, Transform]]:
    """The objects an insertion job put into frame `index` of `clip` (from its report), as (asset, pose);
    empty for scenes that no insertion wrote."""
    path = Path(dataroot) / SIDECAR_DIR / "insertions" / f"{clip.name}.json"
    if not path.is_file():
        return []
    out = []
    for item in json.loads(path.read_text())["instances"]:
        agent = next((a for a in clip.agents if a.instance_id == item["instance_id"]), None)
        if agent is not None and agent.boxes[index] is not None:
            out.append((library.get(item["asset_id"]), agent.boxes[index].frame_T_box))
    return out


def _best_view(pixels: np.ndarray, clip: Clip) -> dict:
    """The key frame and camera where an object shows most (for previews)."""
    keys = clip.key_indices
    frame, view = np.unravel_index(np.argmax(pixels[keys]), pixels[keys].shape)
    return {"frame": int(keys[frame]), "camera": clip.rig.names[int(view)], "pixels": int(pixels[keys][frame, view])}


# -- the job ------------------------------------------------------------------------------------------


def source_fingerprint(dataroot: Path, version: str) -> str:
    """The finished source dataset's own fingerprint, else a digest of its tables' sizes and times."""
    index = dataroot / SIDECAR_DIR / "index.json"
    if index.is_file():
        value = json.loads(index.read_text()).get("fingerprint")
        if value:
            return value
    stats = [(p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in sorted((dataroot / version).glob("*.json"))]
    return hashlib.sha256(json.dumps(stats).encode()).hexdigest()


def insert_dataset(
    data: str | Path,
    out: str | Path,
    request: InsertRequest,
    scenes: list[str] | None = None,
    library: AssetLibrary | None = None,
    overwrite: bool = False,
    progress: Callable[[Iterable, int, str], Iterable] | None = None,
) -> tuple[Path, list[dict]]:
    """Insert into `scenes` (default: all) of the dataset at `data`; write the result to `out`.

    Returns the version folder written and the insertion report of every edited scene.
    """
    from dreamdrive.nusc.reader import NuscDataset
    from dreamdrive.nusc.writer import DatasetWriter

    data, out = Path(data), Path(out)
    if out.resolve() == data.resolve():
        raise DreamdriveError("--out must be a new folder, not the source dataset (it is read while writing).")
    source = NuscDataset(data)
    scenes = list(scenes or source.scene_names)
    unknown = [s for s in scenes if s not in source.scene_names]
    if unknown:
        raise DreamdriveError(f"no scenes {unknown} in {data}; it has {source.scene_names}.")
    library = library or AssetLibrary()
    library.ensure_builtin()
    chooser = AssetChooser(library, request)
    fingerprint = hashlib.sha256(
        json.dumps(
            [INSERT_FORMAT, source_fingerprint(data, source.version), asdict(request), chooser.fingerprint(), scenes]
        ).encode()
    ).hexdigest()
    writer = DatasetWriter(out, source.version)
    edited_name = {scene: f"{scene}-{request.mode}" for scene in scenes}
    report_path = {s: out / SIDECAR_DIR / "insertions" / f"{edited_name[s]}.json" for s in scenes}
    if not writer.begin(fingerprint, overwrite):
        items: Iterable[str] = scenes
        if progress is not None:
            items = progress(scenes, len(scenes), "inserting")
        for scene in items:
            scene_fingerprint = hashlib.sha256(f"{fingerprint}/{scene}".encode()).hexdigest()
            name = edited_name[scene]
            clip = None
            if not writer.has_clip(name, scene_fingerprint):
                clip = source.clip(scene)
                placements, notes = plan(clip, data, request, chooser)
                if not placements:
                    raise DreamdriveError(f"nothing could be inserted into {scene!r}: {'; '.join(notes)}.")
                scratch = writer.staging / "tmp"
                edited, report = naive_insert(
                    data, clip, placements, chooser, out, name, writer.options.jpeg_quality, scratch
                )
                report["notes"] = notes
                atomic_write(report_path[scene], dumps(report), scratch=scratch)
                sidecars = {"insertions": f"insertions/{name}.json"}
                if dense_folder(out, name).is_dir():
                    sidecars["dense"] = f"dense/{name}"
                writer.write_clip(edited, scene_fingerprint, sidecars)
            if request.with_originals and not writer.has_clip(scene, scene_fingerprint):
                clip = clip or source.clip(scene)
                writer.write_clip(clip, scene_fingerprint, _copy_dense(data, out, scene, writer.staging / "tmp"))
        names = [edited_name[s] for s in scenes] + (scenes if request.with_originals else [])
        splits = {}
        for split, members in source.splits.items():
            chosen = [s for s in members if s in edited_name]
            if chosen and split not in PREDEFINED_SPLITS:
                splits[split] = [edited_name[s] for s in chosen] + (chosen if request.with_originals else [])
        splits["insert_all"] = names
        writer.finalize(names, splits, fingerprint)
    return out / source.version, [json.loads(report_path[s].read_text()) for s in scenes]


def _copy_dense(data: Path, out: Path, scene: str, scratch: Path) -> dict[str, str]:
    folder = dense_folder(data, scene)
    if not folder.is_dir():
        return {}
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            atomic_write(dense_folder(out, scene) / path.relative_to(folder), path.read_bytes(), scratch=scratch)
    return {"dense": f"dense/{scene}"}
