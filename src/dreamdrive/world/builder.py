"""Builds the embedded default dataset: procedural town, traffic, renders, LiDAR -> nuScenes format.

For each scene: simulate traffic, render the six cameras at 12 Hz and the
LiDAR on the 2 Hz key frames, write the dense ground truth of every camera
frame as a sidecar, and hand the clip to the resumable dataset writer. A
scene whose fragment is already committed is skipped without rendering, so a
build killed at any point resumes where it stopped; the same configuration
gives the same bytes.

The dense ground truth (format in `nusc.dense`) is streamed to the sidecar while
the scene renders, and the frames point at it (`Frame.dense`).
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from dreamdrive.core.boxes import Box3D
from dreamdrive.core.camera import CameraRig
from dreamdrive.core.clip import Agent, Clip, Frame
from dreamdrive.core.conventions import CAMERA_HZ, KEYFRAME_HZ, TIMES_OF_DAY, WEATHERS
from dreamdrive.core.errors import DreamdriveError
from dreamdrive.core.geometry import Transform
from dreamdrive.nusc.dense import dense_path, dense_visibility, pack_dense, write_packed
from dreamdrive.nusc.schema import DEFAULT_EGO_T_LIDAR, DEFAULT_VERSION, SIDECAR_DIR
from dreamdrive.nusc.writer import DatasetWriter, WriteOptions, encode_jpeg
from dreamdrive.processes import process_pool
from dreamdrive.world.assets import Asset, builtin_assets
from dreamdrive.world.geometry import SEMANTIC, SEMANTIC_NAMES, mesh_soup
from dreamdrive.world.render import (
    CameraImages,
    Environment,
    RenderObject,
    make_renderer,
    render_frame,
    scan_lidar,
)
from dreamdrive.world.town import Town, make_town
from dreamdrive.world.traffic import Traffic, simulate

BUILD_FORMAT = 3  # bump when the builder's output for a given configuration changes
START_US = 1_700_000_000_000_000


@dataclass(frozen=True)
class WorldConfig:
    """What to build.

    Args:
        scenes: number of scenes; every fourth one, and the last, go to `proc_val`.
        seconds: length of each scene.
        seed: the town, the traffic and the asset variants all follow from it.
        width, height: camera image size.
        weather, time_of_day: cycled over the scenes.
        blocks: intersections of the town (columns, rows).
        jpeg_quality: of the camera images.
    """

    scenes: int = 4
    seconds: float = 8.0
    seed: int = 0
    width: int = 448
    height: int = 256
    weather: tuple[str, ...] = ("clear",)
    time_of_day: tuple[str, ...] = ("day",)
    blocks: tuple[int, int] = (3, 3)
    jpeg_quality: int = 92
    version: str = DEFAULT_VERSION

    def __post_init__(self) -> None:
        if self.scenes < 1 or self.seconds < 0.5:
            raise DreamdriveError(f"need at least 1 scene of at least 0.5 s, got {self.scenes} x {self.seconds} s.")
        if self.width < 32 or self.height < 32 or self.width % 2 or self.height % 2:
            raise DreamdriveError(f"image size {self.width}x{self.height} must be even and at least 32x32.")
        for value in self.weather:
            if value not in WEATHERS:
                raise DreamdriveError(f"weather {value!r} must be one of {WEATHERS}.")
        for value in self.time_of_day:
            if value not in TIMES_OF_DAY:
                raise DreamdriveError(f"time of day {value!r} must be one of {TIMES_OF_DAY}.")

    def fingerprint(self) -> str:
        return hashlib.sha256(json.dumps([BUILD_FORMAT, asdict(self)], sort_keys=True).encode()).hexdigest()

    def scene_name(self, k: int) -> str:
        return f"proc-{self.seed:03d}-{k:04d}"

    def splits(self) -> dict[str, list[str]]:
        names = [self.scene_name(k) for k in range(self.scenes)]
        val = [n for k, n in enumerate(names) if self.scenes > 1 and (k % 4 == 3 or k == self.scenes - 1)]
        return {"proc_train": [n for n in names if n not in val], "proc_val": val, "proc_all": names}


class WorldBuilder:
    """Builds `config` into `dataroot`; `build()` is resumable and a no-op when the dataset is complete."""

    def __init__(self, dataroot: str | Path, config: WorldConfig, overwrite: bool = False, workers: int = 1):
        self.dataroot = Path(dataroot)
        self.config = config
        self.writer = DatasetWriter(self.dataroot, config.version, WriteOptions(config.jpeg_quality))
        self.overwrite = overwrite
        self.workers = max(1, workers)
        self._town: Town | None = None
        self._renderer = None
        self._assets: dict[str, list[Asset]] | None = None

    @property
    def town(self) -> Town:
        if self._town is None:
            self._town = make_town(self.config.seed, self.config.blocks)
        return self._town

    @property
    def assets(self) -> dict[str, list[Asset]]:
        if self._assets is None:
            grouped: dict[str, list[Asset]] = defaultdict(list)
            for asset in builtin_assets(self.config.seed):
                grouped[asset.info.detection_class].append(asset)
            self._assets = dict(grouped)
        return self._assets

    def add_assets(self, assets: Iterable[Asset]) -> None:
        """Make further assets renderable (inserted objects); call before the first render."""
        if self._renderer is not None:
            raise DreamdriveError("add assets before the builder's first render.")
        known = {a.info.asset_id for group in self.assets.values() for a in group}
        for asset in assets:
            if asset.info.asset_id not in known:
                self.assets.setdefault(asset.info.detection_class, []).append(asset)
                known.add(asset.info.asset_id)

    def renderer(self):
        if self._renderer is None:
            meshes = {
                a.info.asset_id: mesh_soup(a.mesh, SEMANTIC[a.info.detection_class])
                for group in self.assets.values()
                for a in group
            }
            self._renderer = make_renderer(self.town, meshes, self.config.width, self.config.height)
        return self._renderer

    def release(self) -> None:
        """Free the renderer's GL context (the next render makes a new one)."""
        if self._renderer is not None:
            self._renderer.release()
            self._renderer = None

    def build(self, progress: Callable[[Iterable, int, str], Iterable] | None = None) -> Path:
        """Build every scene that is not built yet, then publish the dataset. Returns the version folder."""
        config, writer = self.config, self.writer
        fingerprint = config.fingerprint()
        if writer.begin(fingerprint, self.overwrite):
            return self.dataroot / config.version
        pending = [
            k for k in range(config.scenes) if not writer.has_clip(config.scene_name(k), self.scene_fingerprint(k))
        ]
        if self.workers > 1 and len(pending) > 1:
            self._build_in_processes(pending, progress)
        else:
            try:
                with _serial_blas():
                    for k in pending:
                        self.write_scene(k, progress)
            finally:
                self.release()
        names = [config.scene_name(k) for k in range(config.scenes)]
        return writer.finalize(names, config.splits(), fingerprint, {"world": asdict(config)})

    def scene_fingerprint(self, k: int) -> str:
        return hashlib.sha256(f"{self.config.fingerprint()}/{k}".encode()).hexdigest()

    def write_scene(self, k: int, progress: Callable[[Iterable, int, str], Iterable] | None = None) -> None:
        """Build scene `k` and commit it to the dataset's staging area."""
        clip = self.build_clip(k, progress)
        self.writer.write_clip(clip, self.scene_fingerprint(k))

    def _build_in_processes(self, pending: list[int], progress) -> None:
        """Scenes in parallel processes, each with a single-threaded rasterizer: the per-frame Python and
        vertex work is serial within a process, so processes use the cores better than raster threads do."""
        from concurrent.futures import as_completed

        with process_pool(self.workers) as pool:
            writing = str(self.writer.dataroot)  # the dataroot, or beside it while replacing another dataset there
            futures = [pool.submit(_write_scene_in_worker, writing, self.config, k) for k in pending]
            done = as_completed(futures)
            for future in progress(done, len(futures), "scenes") if progress else done:
                future.result()

    def environment(self, k: int) -> Environment:
        """Scene `k`'s time of day, weather and sun."""
        config = self.config
        return Environment(
            config.time_of_day[k % len(config.time_of_day)],
            config.weather[k % len(config.weather)],
            sun_azimuth=float(np.random.default_rng([config.seed, k, 7]).uniform(0, 2 * np.pi)),
        )

    def traffic(self, k: int) -> Traffic:
        """Scene `k`'s simulated ego and agents."""
        return simulate(self.town, self.assets, seed=hash_seed(self.config.seed, k), seconds=self.config.seconds)

    def build_clip(
        self,
        k: int,
        progress: Callable[[Iterable, int, str], Iterable] | None = None,
        traffic: Traffic | None = None,
        name: str | None = None,
    ) -> Clip:
        """Simulate, render and assemble scene `k` (its dense sidecar is written on the way); `traffic`
        replaces the simulated one (the same scene with objects added) and `name` the scene's name."""
        config = self.config
        name = name or config.scene_name(k)
        environment = self.environment(k)
        traffic = traffic or self.traffic(k)
        rig = CameraRig.default(config.width, config.height)
        renderer = self.renderer()
        frames_count = len(traffic.times)
        step = CAMERA_HZ // KEYFRAME_HZ
        timestamps = START_US + k * 10**9 + np.round(traffic.times * 1e6).astype(np.int64)
        frames: list[Frame] = []
        boxes: list[list[Box3D | None]] = [[None] * frames_count for _ in traffic.tracks]
        instances = {i + 1: f"{name}-{t.instance_id}" for i, t in enumerate(traffic.tracks)}
        scratch = self.writer.staging / "tmp"
        indices: Iterable[int] = range(frames_count)
        if progress is not None:
            indices = progress(indices, frames_count, f"{name} ({environment.time_of_day}, {environment.weather})")
        with ThreadPoolExecutor(max_workers=2) as pool:
            pending = []
            for i in indices:
                global_T_ego = Transform.from_pose2d(*traffic.ego[i])
                objects = scene_objects(traffic, i)
                images = render_frame(
                    renderer, rig, global_T_ego, objects, environment, headlights(traffic, i, global_T_ego)
                )
                jpegs, dense = {}, {}
                for channel, image in images.items():
                    jpegs[channel] = pool.submit(encode_jpeg, image.rgb, config.jpeg_quality)
                    dense[channel] = dense_path(self.writer.dataroot, name, channel, int(timestamps[i]))
                    pending.append(pool.submit(_write_dense, dense[channel], image, scratch))
                lidar = None
                if i % step == 0:
                    points, _ = scan_lidar(renderer, global_T_ego @ DEFAULT_EGO_T_LIDAR, objects)
                    lidar = points
                for j, track in enumerate(traffic.tracks):
                    if track.annotated[i]:
                        box = track_box(track, i, instances[j + 1])
                        if i % step == 0:  # visibility is a key-frame annotation
                            box = replace(box, visibility=dense_visibility(box, j + 1, rig, global_T_ego, images))
                        boxes[j][i] = box
                # JPEGs are collected after the loop: waiting here would stall rendering behind the encoders
                frames.append(
                    Frame(int(timestamps[i]), global_T_ego, jpegs, is_key=(i % step == 0), lidar=lidar, dense=dense)
                )
            for future in pending:
                future.result()
            for frame in frames:
                frame.images = {channel: future.result() for channel, future in frame.images.items()}
        agents = []
        for j, track in enumerate(traffic.tracks):
            if any(boxes[j][i] is not None for i in range(0, frames_count, step)):
                agents.append(Agent(instances[j + 1], track.category, boxes[j]))
        return Clip(
            name=name,
            frames=frames,
            agents=agents,
            rig=rig,
            location=self.town.name,
            hdmap=self.town.hdmap,
            description=f"procedural town {self.town.name}, {environment.time_of_day}, {environment.weather}",
            log_name=f"dreamdrive-{name}",
            dense_instances=instances,
        )


def _write_scene_in_worker(dataroot: str, config: WorldConfig, k: int) -> None:
    import os

    os.environ.setdefault("LP_NUM_THREADS", "1")  # llvmpipe reads it when the context is made: one raster thread
    builder = WorldBuilder(dataroot, config)
    try:
        with _serial_blas():
            builder.write_scene(k)
    finally:
        if builder._renderer is not None:
            builder._renderer.release()


def _serial_blas():
    """A context in which numpy's BLAS runs in the calling thread. Its worker threads otherwise spin
    (sched_yield) after each of the build's many tiny matrix products, taking a core from the rasterizer
    and the encoders: 63 against 57 camera-frames/s end to end with two workers."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(1, user_api="blas")


def hash_seed(seed: int, k: int) -> int:
    return int.from_bytes(hashlib.sha256(f"{seed}/{k}".encode()).digest()[:4], "little")


def _write_dense(path: Path, images: CameraImages, scratch: Path) -> None:
    write_packed(path, pack_dense(images.depth, images.normal, images.instance, images.semantic), scratch)


def scene_objects(traffic: Traffic, i: int) -> list[RenderObject]:
    """Frame `i`'s objects, each with its track's instance index (1-based); a track whose centre is NaN on
    the frame (an inserted object not yet there) is left out."""
    out = []
    for j, track in enumerate(traffic.tracks):
        x, y, z = track.centers[i]
        if np.isnan(x):
            continue
        out.append(
            RenderObject(track.asset_id, Transform.from_pose2d(x, y, float(track.yaws[i]), z), j + 1, track.lights)
        )
    return out


def headlights(traffic: Traffic, i: int, global_T_ego: Transform) -> list:
    """Spot lights: the ego's two headlights, then those of the nearest vehicles with lights."""
    lights = []
    for side in (0.7, -0.7):
        position = global_T_ego.apply(np.array([[2.3, side, 0.7]]))[0]
        direction = global_T_ego.apply_vectors(np.array([[1.0, 0.0, -0.08]]))[0]
        lights.append((position, direction / np.linalg.norm(direction), np.array([2.2, 2.1, 1.9]) * 3.0, np.cos(0.45)))
    vehicles = [t for t in traffic.tracks if t.lights and not np.isnan(t.centers[i, 0])]
    ego_xy = traffic.ego[i, :2]
    vehicles.sort(key=lambda t: np.linalg.norm(t.centers[i, :2] - ego_xy))
    for track in vehicles[:6]:
        yaw = float(track.yaws[i])
        forward = np.array([np.cos(yaw), np.sin(yaw), -0.08])
        position = track.centers[i] + np.array([np.cos(yaw), np.sin(yaw), 0.0]) * (track.size[1] / 2 + 0.1)
        position[2] = 0.7
        lights.append((position, forward / np.linalg.norm(forward), np.array([2.2, 2.1, 1.9]) * 2.0, np.cos(0.45)))
    return lights


def track_box(track, i: int, instance_id: str) -> Box3D:
    previous, following = max(i - 1, 0), min(i + 1, len(track.centers) - 1)
    span = max(following - previous, 1) / CAMERA_HZ
    velocity = (track.centers[following, :2] - track.centers[previous, :2]) / span
    attribute = track.attributes[i]
    return Box3D(
        center=track.centers[i].astype(np.float64),
        size=np.asarray(track.size, np.float64),
        yaw=float(track.yaws[i]),
        category=track.category,
        instance_id=instance_id,
        velocity=velocity,
        attributes=(attribute,) if attribute else (),
    )


def world_config(dataroot: str | Path) -> WorldConfig | None:
    """The configuration that `dreamdrive world build` built the dataset at `dataroot` from, or None for a
    dataset it did not build (a real one, or one built before builds recorded it)."""
    index = Path(dataroot) / SIDECAR_DIR / "index.json"
    record = json.loads(index.read_text()) if index.is_file() else {}
    if "world" not in record:
        return None
    values = dict(record["world"])
    for key in ("weather", "time_of_day", "blocks"):
        values[key] = tuple(values[key])
    config = WorldConfig(**values)
    if config.fingerprint() != record.get("fingerprint"):
        raise DreamdriveError(f"{index} records a world configuration that does not match its fingerprint; "
                              "rebuild the dataset with `dreamdrive world build`.")  # fmt: skip
    return config


def build_world(
    dataroot: str | Path,
    config: WorldConfig,
    overwrite: bool = False,
    progress: Callable[[Iterable, int, str], Iterable] | None = None,
    workers: int = 1,
) -> Path:
    """Build (or resume, or keep) the procedural dataset described by `config` in `dataroot`.

    `workers` > 1 builds scenes in that many processes (the bytes are the same either way).
    """
    return WorldBuilder(dataroot, config, overwrite, workers).build(progress)


__all__ = ["SEMANTIC_NAMES", "WorldConfig", "build_world", "world_config"]
