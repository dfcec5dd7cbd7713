"""Paired edits from the procedural world: Dream4Drive's training data, with the true edit that no real drive has.

One vehicle of a procedural scene plays the inserted asset. Each model frame is
rendered twice by the world's own renderer, under the scene's lighting, shadows,
headlights and weather: without the vehicle (the source a user would edit) and
with it (the target: the edit as it truly looks). The vehicle alone is rendered
as naive insertion renders assets, lit by a clear day with no shadow; where the
source's depth does not hide it, that render is the object image and its
silhouette the mask (`conditions.guidance.asset_maps`' rule). Pasting it over the
source gives the naive edit of the same scene, so naive and generative insertion
can both be scored against the truth.

`render_pair` makes one pair; `build_pairs` caches a build's pairs as
`pair-KKKK.npz` files, written atomically; a rerun skips finished ones.

Datasets without a renderer (real nuScenes) get Dream4Drive's own recipe
(`dataset_pair`): one vehicle already in the clip plays the asset, its pixels
cut from the frames are the object image, and the clip itself is the target.
The source is the clip too, since training never shows the model the source
inside the edit region; there is no naive edit to compare with.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np

from dreamdrive.conditions.guidance import asset_renderer, guidance_maps, visible_over
from dreamdrive.conditions.insert import scene_maps
from dreamdrive.core.camera import CameraRig
from dreamdrive.core.categories import detection_class
from dreamdrive.core.clip import Agent, Clip, Frame
from dreamdrive.core.errors import DreamdriveError
from dreamdrive.core.geometry import Transform
from dreamdrive.files import atomic_write
from dreamdrive.world.builder import START_US, WorldBuilder, WorldConfig, headlights, scene_objects, track_box
from dreamdrive.world.render import CameraImages, Environment, RenderObject, render_frame
from dreamdrive.world.traffic import Traffic

VEHICLES = ("car", "truck", "bus", "construction_vehicle", "trailer")
MIN_PIXELS = 40  # visible pixels of the vehicle over the pair, below which a scene gives no pair


@dataclass
class EditPair:
    """One paired edit over `T` model frames and the rig's `V` views.

    clip: the target's model frames (every one a key frame) with every agent's boxes, the vehicle's included;
    instance: the vehicle's instance id; source / target / naive: (T, V, H, W, 3) uint8;
    guidance: (T, V, 9, H, W) float16 (`conditions.guidance.guidance_maps`); mask: (T, V, H, W) bool, where
    the vehicle's object image shows.
    """

    clip: Clip
    instance: str
    source: np.ndarray
    target: np.ndarray
    naive: np.ndarray
    guidance: np.ndarray
    mask: np.ndarray


def pick_vehicle(traffic: Traffic, indices: list[int], max_distance: float = 30.0) -> int | None:
    """The vehicle annotated on every chosen frame that stays nearest the ego on average (within
    `max_distance` metres on every frame), or None."""
    best, best_distance = None, np.inf
    for j, track in enumerate(traffic.tracks):
        if detection_class(track.category) not in VEHICLES:
            continue
        if track.annotated is not None and not track.annotated[indices].all():
            continue
        distances = np.linalg.norm(track.centers[indices, :2] - traffic.ego[indices, :2], axis=1)
        if distances.max() <= max_distance and distances.mean() < best_distance:
            best, best_distance = j, float(distances.mean())
    return best


def render_pair(config: WorldConfig, k: int, frames: int = 8, stride: int = 3) -> EditPair | None:
    """The paired edit of scene `k` of the build `config` over `frames` model frames, one every `stride`
    camera frames; None when no vehicle stays near and visible."""
    builder = WorldBuilder(Path("."), config)  # for its town, assets and renderer; it writes nothing here
    traffic, environment = builder.traffic(k), builder.environment(k)
    indices = list(range(0, len(traffic.times), stride))[:frames]
    if len(indices) < frames:
        raise DreamdriveError(f"scenes of {config.seconds} s have {len(traffic.times)} camera frames; {frames} "
                              f"model frames every {stride} need {(frames - 1) * stride + 1}.")  # fmt: skip
    j = pick_vehicle(traffic, indices)
    if j is None:
        return None
    track = traffic.tracks[j]
    asset = next(a for group in builder.assets.values() for a in group if a.info.asset_id == track.asset_id)
    without = Traffic(traffic.times, traffic.ego, [t for m, t in enumerate(traffic.tracks) if m != j])
    rig = CameraRig.default(config.width, config.height)
    name = config.scene_name(k)
    # 1. The scene with and without the vehicle, by the world's renderer (one GL context at a time: the
    #    asset's renderer comes after this one is released).
    renderer = builder.renderer()
    scenes, clip_frames = [], []
    try:
        for i in indices:
            ego = Transform.from_pose2d(*traffic.ego[i])
            everything = scene_objects(traffic, i)
            rendered = render_frame(renderer, rig, ego, everything, environment, headlights(traffic, i, ego))
            target = {key: images.rgb.copy() for key, images in rendered.items()}  # the next render reuses them
            others = [o for o in everything if o.instance != j + 1]
            source = {key: CameraImages(images.rgb.copy(), images.depth.copy(), images.normal.copy(),
                                        images.instance.copy(), images.semantic.copy())
                      for key, images in render_frame(renderer, rig, ego, others, environment,
                                                      headlights(without, i, ego)).items()}  # fmt: skip
            scenes.append((ego, everything[j].global_T_object, target, source))
            clip_frames.append(
                Frame(START_US + k * 10**9 + int(round(traffic.times[i] * 1e6)), ego, target, is_key=True)
            )
    finally:
        renderer.release()
    # 2. The vehicle alone as naive insertion renders it, its object image and mask over the source.
    views = {key: [] for key in ("source", "target", "naive", "guidance", "mask")}
    alone = asset_renderer(asset, config.width, config.height)
    try:
        for ego, global_T_vehicle, target, source in scenes:
            pasted = render_frame(alone, rig, ego, [RenderObject(asset.info.asset_id, global_T_vehicle, 1)],
                                  Environment())  # fmt: skip
            row = {key: [] for key in views}
            for camera in rig:
                src, obj = source[camera.name], pasted[camera.name]
                visible = visible_over(obj, src.depth)
                row["source"].append(src.rgb)
                row["target"].append(target[camera.name])
                row["naive"].append(np.where(visible[..., None], obj.rgb, src.rgb))
                row["guidance"].append(guidance_maps(src.rgb, src.depth, src.normal, obj.rgb, visible))
                row["mask"].append(visible)
            for key in views:
                views[key].append(np.stack(row[key]))
    finally:
        alone.release()
    arrays = {key: np.stack(value) for key, value in views.items()}
    if arrays["mask"].sum() < MIN_PIXELS:
        return None
    instance = f"{name}-{track.instance_id}"
    agents = []
    for t in traffic.tracks:
        shown = [t.annotated is None or bool(t.annotated[i]) for i in indices]
        if any(shown):
            boxes = [track_box(t, i, f"{name}-{t.instance_id}") if s else None for i, s in zip(indices, shown)]
            agents.append(Agent(f"{name}-{t.instance_id}", t.category, boxes))
    town = builder.town
    description = f"procedural town {town.name}, {environment.time_of_day}, {environment.weather}"
    clip = Clip(name, clip_frames, agents, rig, town.name, town.hdmap, description, f"dreamdrive-{name}")
    return EditPair(clip, instance, arrays["source"], arrays["target"], arrays["naive"],
                    arrays["guidance"].astype(np.float16), arrays["mask"])  # fmt: skip


def dataset_pair(
    clip: Clip, frames: int, stride: int, size: tuple[int, int], max_distance: float = 30.0
) -> EditPair | None:
    """The paired edit of a recorded clip (no renderer): the vehicle annotated on every one of `frames` model
    frames (one every `stride` camera frames) that stays nearest the ego within `max_distance` m plays the
    asset; at `size` (height, width). Its mask is its dense instance map where the clip has dense ground truth,
    else its box's image outline less the pixels that something nearer than the box covers (LiDAR depth);
    its object image is the frame's pixels there. None when no vehicle qualifies or it shows under
    `MIN_PIXELS` pixels."""
    height, width = size
    indices = list(range(0, len(clip.frames), stride))[:frames]
    if len(indices) < frames:
        return None
    best, best_distance = None, np.inf
    for agent in clip.agents:
        if detection_class(agent.category) not in VEHICLES or any(agent.boxes[i] is None for i in indices):
            continue
        distances = [np.linalg.norm(agent.boxes[i].center[:2] - clip.frames[i].global_T_ego.translation[:2])
                     for i in indices]  # fmt: skip
        if max(distances) <= max_distance and np.mean(distances) < best_distance:
            best, best_distance = agent, float(np.mean(distances))
    if best is None:
        return None
    rig = clip.rig.resized(width, height)
    index_of = {instance: key for key, instance in clip.dense_instances.items()}
    views = {key: [] for key in ("image", "guidance", "mask")}
    for i in indices:
        row = {key: [] for key in views}
        for camera in rig:
            rgb, depth, normal, instance = scene_maps(clip, i, camera)
            if instance is not None and best.instance_id in index_of:
                mask = instance == index_of[best.instance_id]
            else:
                mask = _box_pixels(best.boxes[i], camera, clip.frames[i].camera_pose(camera.name)[1], depth)
            row["image"].append(rgb)
            row["guidance"].append(guidance_maps(rgb, depth, normal, np.where(mask[..., None], rgb, 0), mask))
            row["mask"].append(mask)
        for key in views:
            views[key].append(np.stack(row[key]))
    arrays = {key: np.stack(value) for key, value in views.items()}
    if arrays["mask"].sum() < MIN_PIXELS:
        return None
    frames_at = [replace(clip.frames[i], is_key=True) for i in indices]
    agents = [Agent(a.instance_id, a.category, [a.boxes[i] for i in indices]) for a in clip.agents
              if any(a.boxes[i] is not None for i in indices)]  # fmt: skip
    chosen = replace(clip, frames=frames_at, agents=agents)
    image = arrays["image"]
    return EditPair(chosen, best.instance_id, image, image, image, arrays["guidance"].astype(np.float16),
                    arrays["mask"])  # fmt: skip


def _box_pixels(box, camera, global_T_ego: Transform, depth: np.ndarray) -> np.ndarray:
    """(H, W) bool: the box's image outline in `camera`, less the pixels whose scene depth is nearer than the
    box's nearest corner by over half a metre (an occluder)."""
    cam_T_global = camera.cam_T_ego @ global_T_ego.inverse()
    outline = box.project(camera, cam_T_global)
    mask = np.zeros((camera.height, camera.width), np.uint8)
    if outline is None:
        return mask.astype(bool)
    cv2.fillPoly(mask, [np.round(outline).astype(np.int32)], 1)
    nearest = cam_T_global.apply(box.corners())[:, 2].min()
    return (mask > 0) & ~((depth > 0) & (depth < nearest - 0.5))


def npz_bytes(**arrays) -> bytes:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    return buffer.getvalue()


def cache_scenes(
    folder: Path, count: int, make: Callable[[int], bytes | None], prefix: str = "", progress: Callable | None = None
) -> list[Path]:
    """Per scene k of `count`: `folder`/{prefix}KKKK.npz holding `make(k)`'s bytes, or an empty marker
    {prefix}KKKK.none where `make` gives None. Each is written atomically and a finished one is kept, so a
    killed run resumes and a rerun makes nothing. Returns the .npz files, in scene order."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    scenes = range(count)
    for k in progress(scenes, count, "paired edits") if progress else scenes:
        path, none = folder / f"{prefix}{k:04d}.npz", folder / f"{prefix}{k:04d}.none"
        if none.is_file():
            continue
        if not path.is_file():
            data = make(k)
            if data is None:
                atomic_write(none, b"")
                continue
            atomic_write(path, data)
        written.append(path)
    return written


def build_pairs(
    out: str | Path, config: WorldConfig, frames: int = 8, stride: int = 3, progress: Callable | None = None
) -> list[Path]:
    """Every scene's pair of the build `config` as `out`/pair-KKKK.npz (source, target, naive, guidance, mask,
    instance; the clip and its layouts are rebuilt from `config` by `render_pair`); a scene without a pair gets
    an empty marker `pair-KKKK.none`. Finished files are kept, so a killed run resumes. Returns the pair files."""

    def make(k: int) -> bytes | None:
        pair = render_pair(config, k, frames, stride)
        if pair is None:
            return None
        return npz_bytes(source=pair.source, target=pair.target, naive=pair.naive, guidance=pair.guidance,
                         mask=pair.mask, instance=np.array(pair.instance))  # fmt: skip

    return cache_scenes(Path(out), config.scenes, make, "pair-", progress)
