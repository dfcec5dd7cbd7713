"""Builds the embedded default dataset: procedural town, traffic, renders, LiDAR -> nuScenes format.

For each scene: simulate traffic, render the six cameras at 12 Hz and the
LiDAR on the 2 Hz key frames, write the dense ground truth of every camera
frame as a sidecar, and hand the clip to the resumable dataset writer. A
scene whose fragment is already committed is skipped without rendering, so a
build killed at any point resumes where it stopped; the same configuration
gives the same bytes.

Dense sidecar: `dreamdrive/dense/<scene>/<CHANNEL>/<timestamp>.npy.zst`, one
zstd-compressed `.npy` array (4, H, W) uint16 per camera frame (read it with
`load_dense`; zstd because it encodes 25 times faster than PNG and smaller):
plane 0 depth in 1/256 m (0 = nothing), 1 instance index (0 = scenery; see
`dreamdrive/dense/<scene>/instances.json`), 2 camera-frame normal as
(x + 1) * 127.5 in the high byte and (y + 1) * 127.5 in the low byte (z is
negative: the surface faces the camera), 3 semantic class (`SEMANTIC_NAMES`).
"""

from __future__ import annotations

import hashlib
import io
import json
from collections import defaultdict
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from dreamdrive.core.boxes import Box3D
from dreamdrive.core.camera import CameraRig
from dreamdrive.core.categories import visibility_token
from dreamdrive.core.clip import CAMERA_HZ, KEYFRAME_HZ, Agent, Clip, Frame
from dreamdrive.core.errors import DreamdriveError
from dreamdrive.core.geometry import Transform
from dreamdrive.nusc.schema import DEFAULT_EGO_T_LIDAR, DEFAULT_VERSION, SIDECAR_DIR, atomic_write, dumps
from dreamdrive.nusc.writer import DatasetWriter, WriteOptions, encode_jpeg
from dreamdrive.world.assets import Asset, builtin_assets
from dreamdrive.world.geometry import SEMANTIC, SEMANTIC_NAMES, mesh_soup
from dreamdrive.world.render import (
    TIMES_OF_DAY,
    WEATHERS,
    CameraImages,
    Environment,
    RenderObject,
    make_renderer,
    scan_lidar,
)
from dreamdrive.world.town import Town, make_town
from dreamdrive.world.traffic import Traffic, simulate

BUILD_FORMAT = 3  # bump when the builder's output for a given configuration changes
START_US = 1_700_000_000_000_000
DEPTH_SCALE = 256.0


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


def pack_dense(images: CameraImages) -> np.ndarray:
    """(4, H, W) uint16: depth, instance, packed normal, semantic (see the module docstring)."""
    depth = np.clip(np.round(images.depth * DEPTH_SCALE), 0, 65535).astype(np.uint16)
    nx = np.clip(np.round((images.normal[..., 0] + 1) * 127.5), 0, 255).astype(np.uint16)
    ny = np.clip(np.round((images.normal[..., 1] + 1) * 127.5), 0, 255).astype(np.uint16)
    normal = np.where(images.depth > 0, (nx << 8) | ny, 0).astype(np.uint16)
    return np.stack([depth, images.instance.astype(np.uint16), normal, images.semantic.astype(np.uint16)])


def unpack_dense(packed: np.ndarray) -> dict[str, np.ndarray]:
    """Depth (m), instance, normal (camera frame, unit) and semantic arrays from a packed dense image."""
    depth = packed[0].astype(np.float32) / DEPTH_SCALE
    nx = (packed[2] >> 8).astype(np.float32) / 127.5 - 1
    ny = (packed[2] & 255).astype(np.float32) / 127.5 - 1
    nz = -np.sqrt(np.clip(1 - nx**2 - ny**2, 0, 1))
    normal = np.where((depth > 0)[..., None], np.stack([nx, ny, nz], -1), 0).astype(np.float32)
    return {
        "depth": depth,
        "instance": packed[1].astype(np.int32),
        "normal": normal,
        "semantic": packed[3].astype(np.uint8),
    }


def dense_folder(dataroot: str | Path, scene: str) -> Path:
    """Where a scene's dense sidecar lives: one folder per camera, and `instances.json`."""
    return Path(dataroot) / SIDECAR_DIR / "dense" / scene


def dense_path(dataroot: str | Path, scene: str, channel: str, timestamp: int) -> Path:
    return dense_folder(dataroot, scene) / channel / f"{timestamp}.npy.zst"


def load_dense(dataroot: str | Path, scene: str, channel: str, timestamp: int) -> dict[str, np.ndarray]:
    """The dense ground truth of one camera frame of a built dataset."""
    return unpack_dense(load_packed(dense_path(dataroot, scene, channel, timestamp)))


def load_packed(path: Path) -> np.ndarray:
    """A dense sidecar file as its packed (4, H, W) uint16 array."""
    import zstandard

    if not path.is_file():
        raise DreamdriveError(f"no dense sidecar {path}; it exists for datasets built by `dreamdrive world build`.")
    try:
        return np.load(io.BytesIO(zstandard.ZstdDecompressor().decompress(path.read_bytes())))
    except (zstandard.ZstdError, ValueError) as error:
        raise DreamdriveError(f"{path} is not a dense sidecar ({error}); rebuild the dataset.") from error


def write_packed(path: Path, packed: np.ndarray, scratch: Path) -> None:
    """Write a packed dense array as a sidecar file (atomically)."""
    import zstandard

    buffer = io.BytesIO()
    np.save(buffer, packed)
    atomic_write(path, zstandard.ZstdCompressor(level=1).compress(buffer.getvalue()), scratch=scratch, durable=False)


def render_visibility(
    box: Box3D, instance: int, rig: CameraRig, global_T_ego: Transform, images: dict[str, CameraImages]
) -> str:
    """nuScenes visibility token: the share of the box's volume that the cameras see of it.

    Lattice points inside the box count as seen where a camera pixel they project to
    shows this object, as hidden where something nearer covers them or where no
    camera looks, and not at all where the pixel shows something farther (the box's
    empty corners, e.g. above a car's bonnet).
    """
    points = global_T_ego.inverse().apply(box.sample_points(4))
    seen = np.zeros(len(points), bool)
    covered = np.zeros(len(points), bool)
    in_any = np.zeros(len(points), bool)
    for camera in rig:
        projection = camera.project_ego(points)
        inside = projection.in_image
        rows = np.clip(projection.pixels[:, 1].astype(int), 0, camera.height - 1)
        cols = np.clip(projection.pixels[:, 0].astype(int), 0, camera.width - 1)
        pixel_instance = images[camera.name].instance[rows, cols]
        pixel_depth = images[camera.name].depth[rows, cols]
        seen |= inside & (pixel_instance == instance)
        covered |= inside & (pixel_instance != instance) & (pixel_depth > 0) & (pixel_depth < projection.depth - 0.3)
        in_any |= inside
    hidden = (covered | ~in_any) & ~seen
    counted = seen.sum() + hidden.sum()
    return visibility_token(seen.sum() / counted if counted else 0.0)


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

    def renderer(self):
        if self._renderer is None:
            meshes = {
                a.info.asset_id: mesh_soup(a.mesh, SEMANTIC[a.info.detection_class])
                for group in self.assets.values()
                for a in group
            }
            self._renderer = make_renderer(self.town, meshes, self.config.width, self.config.height)
        return self._renderer

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
                if self._renderer is not None:
                    self._renderer.release()
                    self._renderer = None
        names = [config.scene_name(k) for k in range(config.scenes)]
        return writer.finalize(names, config.splits(), fingerprint)

    def scene_fingerprint(self, k: int) -> str:
        return hashlib.sha256(f"{self.config.fingerprint()}/{k}".encode()).hexdigest()

    def write_scene(self, k: int, progress: Callable[[Iterable, int, str], Iterable] | None = None) -> None:
        """Build scene `k` and commit it to the dataset's staging area."""
        name = self.config.scene_name(k)
        clip = self.build_clip(k, progress)
        self.writer.write_clip(clip, self.scene_fingerprint(k), sidecars={"dense": f"dense/{name}"})

    def _build_in_processes(self, pending: list[int], progress) -> None:
        """Scenes in parallel processes, each with a single-threaded rasterizer: the per-frame Python and
        vertex work is serial within a process, so processes use the cores better than raster threads do."""
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor, as_completed

        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=self.workers, mp_context=context) as pool:
            futures = [pool.submit(_write_scene_in_worker, str(self.dataroot), self.config, k) for k in pending]
            done = as_completed(futures)
            for future in progress(done, len(futures), "scenes") if progress else done:
                future.result()

    def build_clip(self, k: int, progress: Callable[[Iterable, int, str], Iterable] | None = None) -> Clip:
        """Simulate, render and assemble scene `k` (its dense sidecar is written on the way)."""
        config = self.config
        name = config.scene_name(k)
        environment = Environment(
            config.time_of_day[k % len(config.time_of_day)],
            config.weather[k % len(config.weather)],
            sun_azimuth=float(np.random.default_rng([config.seed, k, 7]).uniform(0, 2 * np.pi)),
        )
        traffic = simulate(self.town, self.assets, seed=hash_seed(config.seed, k), seconds=config.seconds)
        rig = CameraRig.default(config.width, config.height)
        renderer = self.renderer()
        frames_count = len(traffic.times)
        step = CAMERA_HZ // KEYFRAME_HZ
        timestamps = START_US + k * 10**9 + np.round(traffic.times * 1e6).astype(np.int64)
        frames: list[Frame] = []
        boxes: list[list[Box3D | None]] = [[None] * frames_count for _ in traffic.tracks]
        instances = {i + 1: f"{name}-{t.instance_id}" for i, t in enumerate(traffic.tracks)}
        scratch = self.writer.staging / "tmp"
        folder = dense_folder(self.dataroot, name)
        atomic_write(folder / "instances.json", dumps(instances), scratch=scratch)
        indices: Iterable[int] = range(frames_count)
        if progress is not None:
            indices = progress(indices, frames_count, f"{name} ({environment.time_of_day}, {environment.weather})")
        with ThreadPoolExecutor(max_workers=2) as pool:
            pending = []
            for i in indices:
                global_T_ego = Transform.from_pose2d(*traffic.ego[i])
                objects = _objects(traffic, i)
                renderer.prepare(global_T_ego.translation, objects, environment, _headlights(traffic, i, global_T_ego))
                images = {
                    camera.name: renderer.render(camera, global_T_ego @ camera.ego_T_cam, objects) for camera in rig
                }
                jpegs = {}
                for channel, image in images.items():
                    jpegs[channel] = pool.submit(encode_jpeg, image.rgb, config.jpeg_quality)
                    path = dense_path(self.dataroot, name, channel, int(timestamps[i]))
                    pending.append(pool.submit(_write_dense, path, image, scratch))
                lidar = None
                if i % step == 0:
                    points, _ = scan_lidar(renderer, global_T_ego @ DEFAULT_EGO_T_LIDAR, objects)
                    lidar = points
                for j, track in enumerate(traffic.tracks):
                    if track.annotated[i]:
                        box = _box(track, i, instances[j + 1])
                        if i % step == 0:  # visibility is a key-frame annotation
                            box = replace(box, visibility=render_visibility(box, j + 1, rig, global_T_ego, images))
                        boxes[j][i] = box
                # JPEGs are collected after the loop: waiting here would stall rendering behind the encoders
                frames.append(Frame(int(timestamps[i]), global_T_ego, jpegs, is_key=(i % step == 0), lidar=lidar))
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
    write_packed(path, pack_dense(images), scratch)


def _objects(traffic: Traffic, i: int) -> list[RenderObject]:
    out = []
    for j, track in enumerate(traffic.tracks):
        x, y, z = track.centers[i]
        out.append(
            RenderObject(track.asset_id, Transform.from_pose2d(x, y, float(track.yaws[i]), z), j + 1, track.lights)
        )
    return out


def _headlights(traffic: Traffic, i: int, global_T_ego: Transform) -> list:
    """Spot lights: the ego's two headlights, then those of the nearest vehicles with lights."""
    lights = []
    for side in (0.7, -0.7):
        position = global_T_ego.apply(np.array([[2.3, side, 0.7]]))[0]
        direction = global_T_ego.apply_vectors(np.array([[1.0, 0.0, -0.08]]))[0]
        lights.append((position, direction / np.linalg.norm(direction), np.array([2.2, 2.1, 1.9]) * 3.0, np.cos(0.45)))
    vehicles = [t for t in traffic.tracks if t.lights]
    ego_xy = traffic.ego[i, :2]
    vehicles.sort(key=lambda t: np.linalg.norm(t.centers[i, :2] - ego_xy))
    for track in vehicles[:6]:
        yaw = float(track.yaws[i])
        forward = np.array([np.cos(yaw), np.sin(yaw), -0.08])
        position = track.centers[i] + np.array([np.cos(yaw), np.sin(yaw), 0.0]) * (track.size[1] / 2 + 0.1)
        position[2] = 0.7
        lights.append((position, forward / np.linalg.norm(forward), np.array([2.2, 2.1, 1.9]) * 2.0, np.cos(0.45)))
    return lights


def _box(track, i: int, instance_id: str) -> Box3D:
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


__all__ = ["SEMANTIC_NAMES", "WorldConfig", "build_world", "load_dense", "unpack_dense"]
