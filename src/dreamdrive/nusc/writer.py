"""Clips to a nuScenes-format dataset: the 13 tables, images, LiDAR sweeps, splits and sidecars.

Writing is atomic and resumable. Each clip's files are written one by one
(each atomically) and then a fragment holding its table rows is committed in a
staging folder; a rerun skips clips whose fragment matches. The tables appear
only at the very end, by renaming the finished version folder into place, so
`NuScenes(version, dataroot)` sees either no dataset or the whole one. Tokens
and file names are pure functions of the clips, so a run that was killed and
rerun gives the same bytes as one that never stopped.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from dreamdrive.core.boxes import Box3D
from dreamdrive.core.categories import visibility_token
from dreamdrive.core.clip import Clip, ImageSource, PointsSource
from dreamdrive.core.errors import DreamdriveError
from dreamdrive.core.geometry import Transform
from dreamdrive.core.hdmap import HDMap
from dreamdrive.files import atomic_write, dumps
from dreamdrive.nusc.dense import dense_folder, dense_path, encode_packed, write_instances
from dreamdrive.nusc.schema import (
    CLIP_TABLES,
    DEFAULT_EGO_T_LIDAR,
    DEFAULT_VERSION,
    LIDAR_CHANNEL,
    LIDAR_COLUMNS,
    MAP_MASK_RESOLUTION,
    PREDEFINED_SPLITS,
    SIDECAR_DIR,
    SIDECAR_FORMAT,
    SIDECAR_INDEX,
    TABLES,
    make_token,
    pose_record,
    static_tables,
)

STAGING_DIR = ".dreamdrive-staging"
REPLACING_DIR = ".dreamdrive-new"  # a dataset built beside the one it replaces (`--overwrite`), swapped in whole
REPLACED_DIR = ".dreamdrive-replaced"  # the replaced dataset's folders on their way out
SWAP_JOURNAL = ".dreamdrive-swap.json"  # a swap begun: the new dataset's folders
REPLACING_MARK = "fingerprint"  # in REPLACING_DIR: the dataset being built there
DATE_CAPTURED = "2026-01-01"  # nuScenes logs carry a date; ours is fixed so that bytes are reproducible


@dataclass(frozen=True)
class WriteOptions:
    """How images are encoded.

    Args:
        jpeg_quality: 1..100, for images given as arrays or as non-JPEG files.
    """

    jpeg_quality: int = 95


def clip_fingerprint(clip: Clip) -> str:
    """A digest of everything in `clip` that the written dataset depends on."""
    digest = hashlib.sha256()

    def add_source(source: ImageSource | PointsSource | None) -> None:
        if source is None:
            digest.update(b"none")
        elif isinstance(source, bytes):
            digest.update(source)
        elif isinstance(source, np.ndarray):
            digest.update(str((source.shape, source.dtype.str)).encode())
            digest.update(np.ascontiguousarray(source).tobytes())
        else:
            path = Path(source)
            stat = path.stat() if path.exists() else None
            digest.update(str((str(path.resolve()), stat and stat.st_size, stat and stat.st_mtime_ns)).encode())

    digest.update(json.dumps([clip.name, clip.location, clip.description, clip.log_name]).encode())
    digest.update(json.dumps(clip.hdmap.to_json() if clip.hdmap else None).encode())
    for camera in clip.rig:
        digest.update(
            repr(
                (camera.name, camera.intrinsic.tolist(), camera.ego_T_cam.matrix.tolist(), camera.width, camera.height)
            ).encode()
        )
    for frame in clip.frames:
        digest.update(
            repr(
                (
                    frame.timestamp,
                    frame.is_key,
                    frame.global_T_ego.matrix.tolist(),
                    sorted((k, t, p.matrix.tolist()) for k, (t, p) in frame.camera_poses.items()),
                )
            ).encode()
        )
        for channel in clip.rig.names:
            add_source(frame.images[channel])
        add_source(frame.lidar)
        for channel in sorted(frame.dense):  # clips without dense ground truth keep their old digests
            digest.update(channel.encode())
            add_source(frame.dense[channel])
    if clip.dense_instances:
        digest.update(json.dumps(sorted(clip.dense_instances.items())).encode())
    for agent in clip.agents:
        for box in agent.boxes:
            digest.update(repr(None if box is None else _box_json(box)).encode())
    return digest.hexdigest()


def _box_json(box: Box3D) -> dict:
    return {
        "instance_id": box.instance_id,
        "category": box.category,
        "translation": box.center.tolist(),
        "size": box.size.tolist(),
        "rotation": box.quaternion.tolist(),
        "yaw": box.yaw,
        "velocity": box.velocity.tolist(),
        "attributes": list(box.attributes),
        "num_lidar_pts": box.num_lidar_pts,
        "num_radar_pts": box.num_radar_pts,
        "visibility": box.visibility,
    }


def encode_jpeg(rgb: np.ndarray, quality: int, what: str = "image") -> bytes:
    """JPEG bytes of an (H, W, 3) uint8 RGB array (any strides, read-only views included)."""
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise DreamdriveError(f"{what}: an image array must be (H, W, 3) uint8 RGB, got {rgb.shape} {rgb.dtype}.")
    ok, data = cv2.imencode(".jpg", np.ascontiguousarray(rgb[:, :, ::-1]), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise DreamdriveError(f"{what}: JPEG encoding failed.")
    return data.tobytes()


def _image_bytes(source: ImageSource, size: tuple[int, int], quality: int, what: str) -> bytes:
    """JPEG bytes of an image source, checked against the camera's (width, height)."""
    if isinstance(source, bytes):
        try:
            with Image.open(io.BytesIO(source)) as image:
                image_size, image_format = image.size, image.format
        except (OSError, ValueError) as error:
            raise DreamdriveError(f"{what}: the image bytes are not a readable image ({error}).") from error
        if image_format != "JPEG" or image_size != tuple(size):
            raise DreamdriveError(
                f"{what}: image bytes must be a {size[0]}x{size[1]} JPEG, got {image_format} {image_size}."
            )
        return source
    if isinstance(source, np.ndarray):
        if source.shape[:2] != (size[1], size[0]):
            raise DreamdriveError(
                f"{what}: image is {source.shape[1]}x{source.shape[0]}, the camera says {size[0]}x{size[1]}."
            )
        return encode_jpeg(source, quality, what)
    path = Path(source)
    if not path.is_file():
        raise DreamdriveError(f"{what}: image file {path} does not exist.")
    try:
        with Image.open(path) as image:  # reads the header only
            image_size, image_format = image.size, image.format
    except (OSError, ValueError) as error:
        raise DreamdriveError(f"{what}: {path} is not a readable image ({error}).") from error
    if image_size != tuple(size):
        raise DreamdriveError(
            f"{what}: {path} is {image_size[0]}x{image_size[1]}, the camera says {size[0]}x{size[1]}."
        )
    if image_format == "JPEG":
        return path.read_bytes()
    with Image.open(path) as image:
        return encode_jpeg(np.asarray(image.convert("RGB")), quality, what)


def load_points(source: PointsSource, what: str) -> np.ndarray:
    """LiDAR points (N, 5) float32 from an array or a nuScenes .pcd.bin file."""
    if isinstance(source, np.ndarray):
        points = source
    else:
        path = Path(source)
        if not path.is_file():
            raise DreamdriveError(f"{what}: point cloud {path} does not exist.")
        raw = np.fromfile(path, dtype=np.float32)
        if raw.size % LIDAR_COLUMNS:
            raise DreamdriveError(f"{what}: {path} is not a nuScenes .pcd.bin ({LIDAR_COLUMNS} float32 per point).")
        points = raw.reshape(-1, LIDAR_COLUMNS)
    if points.ndim != 2 or points.shape[1] != LIDAR_COLUMNS:
        raise DreamdriveError(
            f"{what}: points must be (N, {LIDAR_COLUMNS}) x, y, z, intensity, ring; got {points.shape}."
        )
    return np.ascontiguousarray(points, dtype=np.float32)


def map_mask_png(hdmap: HDMap | None) -> bytes:
    """The nuScenes semantic-prior map: drivable area at 0.1 m/pixel, origin at the bottom-left."""
    polygons = hdmap.drivable_areas if hdmap else []
    x_max = max([float(p[:, 0].max()) for p in polygons], default=0.0)
    y_max = max([float(p[:, 1].max()) for p in polygons], default=0.0)
    width = max(1, int(np.ceil(x_max / MAP_MASK_RESOLUTION)))
    height = max(1, int(np.ceil(y_max / MAP_MASK_RESOLUTION)))
    mask = np.zeros((height, width), dtype=np.uint8)
    for polygon in polygons:
        pixels = np.stack([polygon[:, 0] / MAP_MASK_RESOLUTION, height - polygon[:, 1] / MAP_MASK_RESOLUTION], axis=1)
        cv2.fillPoly(mask, [np.round(pixels).astype(np.int32)], 255)
    ok, data = cv2.imencode(".png", mask)
    assert ok
    return data.tobytes()


class DatasetWriter:
    """Writes clips into `dataroot` as the nuScenes version `version`, resumably.

    Use `write_dataset` unless clips are produced one at a time (the procedural
    world builder renders a clip, writes it, then drops it).
    """

    def __init__(self, dataroot: str | Path, version: str = DEFAULT_VERSION, options: WriteOptions = WriteOptions()):
        if not version or "/" in version:
            raise DreamdriveError(f"version {version!r} must be a folder name such as {DEFAULT_VERSION!r}.")
        self.target = Path(dataroot)  # where the finished dataset lies
        self.dataroot = self.target  # where this run writes: the target, or beside it while replacing it
        self.version = version
        self.options = options

    @property
    def staging(self) -> Path:
        return self.dataroot / STAGING_DIR

    def _write(self, path: Path, data: bytes, durable: bool = True) -> None:
        atomic_write(path, data, scratch=self.staging / "tmp", durable=durable)

    def _write_image(self, job: tuple[Path, ImageSource, tuple[int, int], str]) -> None:
        path, source, size, what = job
        self._write(path, _image_bytes(source, size, self.options.jpeg_quality, what), durable=False)

    # -- state -------------------------------------------------------------------------------

    @property
    def index_path(self) -> Path:
        return self.dataroot / SIDECAR_DIR / SIDECAR_INDEX

    def existing_fingerprint(self) -> str | None:
        """The fingerprint of the finished dataset in `dataroot`, or None when there is none."""
        if not (self.dataroot / self.version / "scene.json").is_file() or not self.index_path.is_file():
            return None
        try:
            return json.loads(self.index_path.read_text()).get("fingerprint")
        except json.JSONDecodeError:
            return None

    def begin(self, fingerprint: str, overwrite: bool) -> bool:
        """Start (or resume) writing the dataset `fingerprint`; True when it is already finished here.

        A different finished dataset in the folder is replaced with `overwrite`, else refused. It stays whole
        until the new one is finished: the new one is written beside it (`REPLACING_DIR`, resumed there after a
        kill) and `finalize` swaps it in.
        """
        finish_swap(self.target)  # a swap a killed run began
        existing = self.existing_fingerprint()
        replacing = self.target / REPLACING_DIR
        if existing == fingerprint:
            shutil.rmtree(self.staging, ignore_errors=True)  # a run killed while cleaning up
            shutil.rmtree(replacing, ignore_errors=True)  # a replacement given up for the dataset that is there
            return True
        if existing is None and not (self.target / self.version).exists():
            shutil.rmtree(replacing, ignore_errors=True)
            return False
        if not overwrite:
            raise DreamdriveError(
                f"{self.target / self.version} already holds a different dataset; choose another output "
                "folder or pass --overwrite."
            )
        mark = replacing / REPLACING_MARK
        if not (mark.is_file() and mark.read_text() == fingerprint):  # another replacement was under way: restart
            shutil.rmtree(replacing, ignore_errors=True)
            atomic_write(mark, fingerprint.encode())
        self.dataroot = replacing
        return False

    def fragment_path(self, scene: str) -> Path:
        return self.staging / "fragments" / f"{scene}.json"

    def has_clip(self, scene: str, fingerprint: str) -> bool:
        path = self.fragment_path(scene)
        if not path.is_file():
            return False
        return json.loads(path.read_text()).get("fingerprint") == fingerprint

    # -- one clip ----------------------------------------------------------------------------

    def write_clip(self, clip: Clip, fingerprint: str | None = None, sidecars: dict[str, str] | None = None) -> None:
        """Write a clip's images, LiDAR and sidecar, then commit its table rows as a fragment.

        `sidecars` names further per-scene sidecar files or folders (relative to `dreamdrive/`)
        that the caller wrote itself, e.g. {"insertions": "insertions/<scene>.json"}; the index
        lists them. The frames' dense ground truth is written here (and listed as "dense").
        """
        clip.validate()
        fingerprint = fingerprint or clip_fingerprint(clip)
        if self.has_clip(clip.name, fingerprint):
            return
        sidecars = dict(sidecars or {})
        if self._write_dense(clip):
            sidecars.setdefault("dense", f"dense/{clip.name}")
        rows = self._clip_rows(clip)
        os.sync()  # the clip's images and sweeps reach the disk before its fragment says they are there
        sidecar = {
            "frames": [
                {"timestamp": frame.timestamp, "boxes": [_box_json(box) for box in clip.boxes_at(i)]}
                for i, frame in enumerate(clip.frames)
            ]
        }
        self._write(self.dataroot / SIDECAR_DIR / "boxes" / f"{clip.name}.json", dumps(sidecar))
        fragment = {
            "fingerprint": fingerprint,
            "location": clip.location,
            "sidecars": sidecars,
            "hdmap": clip.hdmap.to_json() if clip.hdmap else None,
            "rows": rows,
        }
        self._write(self.fragment_path(clip.name), dumps(fragment))

    def _write_dense(self, clip: Clip) -> bool:
        """Write the frames' dense sources and the instance table into the dense sidecar; False without any.

        A source that is already the sidecar file (the world builder streams its dense ground
        truth there while it renders) is left as it is.
        """
        if not clip.dense_instances and not any(frame.dense for frame in clip.frames):
            return False
        folder = dense_folder(self.dataroot, clip.name)
        if clip.dense_instances:
            write_instances(folder, clip.dense_instances, self.staging / "tmp")
        for frame in clip.frames:
            for channel, source in frame.dense.items():
                target = dense_path(self.dataroot, clip.name, channel, frame.timestamp)
                if isinstance(source, np.ndarray):
                    self._write(target, encode_packed(source), durable=False)
                elif isinstance(source, bytes):
                    self._write(target, source, durable=False)
                elif not Path(source).is_file():
                    raise DreamdriveError(
                        f"clip {clip.name!r}: the dense ground truth {source} ({channel}, {frame.timestamp}) does "
                        "not exist; rebuild the source dataset or drop the frame's dense entry."
                    )
                elif Path(source).resolve() != target.resolve():
                    self._write(target, Path(source).read_bytes(), durable=False)
        return True

    def _clip_rows(self, clip: Clip) -> dict[str, list[dict]]:
        """Write the clip's files and return its rows of the per-clip tables."""
        scene = clip.name
        rows: dict[str, list[dict]] = {table: [] for table in CLIP_TABLES}
        log_token = make_token(scene, "log")
        rows["log"].append(
            {
                "token": log_token,
                "logfile": clip.log_name,
                "vehicle": "dreamdrive",
                "date_captured": DATE_CAPTURED,
                "location": clip.location,
            }
        )

        # 1. Calibrations: one record per channel for the scene.
        calib_tokens = {}
        for camera in clip.rig:
            calib_tokens[camera.name] = make_token(scene, "calibrated_sensor", camera.name)
            rows["calibrated_sensor"].append(
                {
                    "token": calib_tokens[camera.name],
                    "sensor_token": make_token("sensor", camera.name),
                    "translation": camera.ego_T_cam.translation.tolist(),
                    "rotation": camera.ego_T_cam.quaternion.tolist(),
                    "camera_intrinsic": camera.intrinsic.tolist(),
                }
            )
        calib_tokens[LIDAR_CHANNEL] = make_token(scene, "calibrated_sensor", LIDAR_CHANNEL)
        rows["calibrated_sensor"].append(
            {
                "token": calib_tokens[LIDAR_CHANNEL],
                "sensor_token": make_token("sensor", LIDAR_CHANNEL),
                "translation": DEFAULT_EGO_T_LIDAR.translation.tolist(),
                "rotation": DEFAULT_EGO_T_LIDAR.quaternion.tolist(),
                "camera_intrinsic": [],
            }
        )

        # 2. Samples: one per key frame, linked in time order.
        keys = clip.key_indices
        sample_tokens = {i: make_token(scene, "sample", clip.frames[i].timestamp) for i in keys}
        for n, i in enumerate(keys):
            rows["sample"].append(
                {
                    "token": sample_tokens[i],
                    "timestamp": clip.frames[i].timestamp,
                    "prev": sample_tokens[keys[n - 1]] if n > 0 else "",
                    "next": sample_tokens[keys[n + 1]] if n + 1 < len(keys) else "",
                    "scene_token": make_token(scene, "scene"),
                }
            )
        rows["scene"].append(
            {
                "token": make_token(scene, "scene"),
                "log_token": log_token,
                "nbr_samples": len(keys),
                "first_sample_token": sample_tokens[keys[0]],
                "last_sample_token": sample_tokens[keys[-1]],
                "name": scene,
                "description": clip.description,
            }
        )

        # 3. Sample data: every camera on every frame, LiDAR on key frames and wherever a sweep is given.
        # A sweep belongs to the next key frame's sample (the devkit interpolates boxes on that basis).
        owner = {}
        for i in range(len(clip.frames)):
            later = [k for k in keys if k >= i]
            owner[i] = later[0] if later else keys[-1]
        lidar_points: dict[int, np.ndarray] = {}
        image_jobs: list[tuple[Path, ImageSource, tuple[int, int], str]] = []
        for channel in (*clip.rig.names, LIDAR_CHANNEL):
            chain = []
            for i, frame in enumerate(clip.frames):
                if channel == LIDAR_CHANNEL and frame.lidar is None and not frame.is_key:
                    continue
                timestamp, global_T_ego = (
                    frame.camera_pose(channel) if channel != LIDAR_CHANNEL else (frame.timestamp, frame.global_T_ego)
                )
                token = make_token(scene, "sample_data", channel, i)
                folder = "samples" if frame.is_key else "sweeps"
                if channel == LIDAR_CHANNEL:
                    filename = f"{folder}/{channel}/{clip.log_name}__{channel}__{timestamp}.pcd.bin"
                    points = (
                        load_points(frame.lidar, f"{scene} frame {i} {channel}")
                        if frame.lidar is not None
                        else np.zeros((0, LIDAR_COLUMNS), np.float32)
                    )
                    if frame.lidar_pose is not None:  # written in the default mounting at the frame's ego pose
                        written_T_sweep = (frame.global_T_ego @ DEFAULT_EGO_T_LIDAR).inverse() @ frame.lidar_pose
                        points = points.copy()
                        points[:, :3] = written_T_sweep.apply(points[:, :3])
                    lidar_points[i] = points
                    self._write(self.dataroot / filename, points.tobytes(), durable=False)
                    width = height = 0
                    fileformat = "pcd"
                else:
                    filename = f"{folder}/{channel}/{clip.log_name}__{channel}__{timestamp}.jpg"
                    camera = clip.rig[channel]
                    image_jobs.append(
                        (
                            self.dataroot / filename,
                            frame.images[channel],
                            (camera.width, camera.height),
                            f"{scene} frame {i} {channel}",
                        )
                    )
                    width, height, fileformat = camera.width, camera.height, "jpg"
                rows["ego_pose"].append(pose_record(token, timestamp, global_T_ego))
                chain.append(
                    {
                        "token": token,
                        "sample_token": sample_tokens[owner[i]],
                        "ego_pose_token": token,
                        "calibrated_sensor_token": calib_tokens[channel],
                        "timestamp": int(timestamp),
                        "fileformat": fileformat,
                        "is_key_frame": bool(frame.is_key),
                        "height": height,
                        "width": width,
                        "filename": filename,
                        "prev": "",
                        "next": "",
                    }
                )
            for a, b in zip(chain, chain[1:]):
                a["next"], b["prev"] = b["token"], a["token"]
            rows["sample_data"].extend(chain)
        # JPEG encoding and file writes release the GIL: spread them over the cores.
        with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
            list(pool.map(self._write_image, image_jobs))

        # 4. Annotations on key frames, chained per instance.
        sweeps = {i: _SortedPoints(points, clip.frames[i].global_T_ego) for i, points in lidar_points.items()}
        for agent in clip.agents:
            annotated = [i for i in keys if agent.boxes[i] is not None]
            tokens = [make_token(scene, "sample_annotation", agent.instance_id, i) for i in annotated]
            instance_token = make_token(scene, "instance", agent.instance_id)
            for n, i in enumerate(annotated):
                box = agent.boxes[i]
                frame = clip.frames[i]
                rows["sample_annotation"].append(
                    {
                        "token": tokens[n],
                        "sample_token": sample_tokens[i],
                        "instance_token": instance_token,
                        "visibility_token": box.visibility or self._visibility(clip, box, frame.global_T_ego),
                        "attribute_tokens": [make_token("attribute", a) for a in box.attributes],
                        "translation": box.center.tolist(),
                        "size": box.size.tolist(),
                        "rotation": box.quaternion.tolist(),
                        "prev": tokens[n - 1] if n > 0 else "",
                        "next": tokens[n + 1] if n + 1 < len(tokens) else "",
                        "num_lidar_pts": int(
                            box.num_lidar_pts if box.num_lidar_pts is not None else sweeps[i].count_in(box)
                        ),
                        "num_radar_pts": int(box.num_radar_pts),
                    }
                )
            rows["instance"].append(
                {
                    "token": instance_token,
                    "category_token": make_token("category", agent.category),
                    "nbr_annotations": len(tokens),
                    "first_annotation_token": tokens[0],
                    "last_annotation_token": tokens[-1],
                }
            )
        return rows

    @staticmethod
    def _visibility(clip: Clip, box: Box3D, global_T_ego: Transform) -> str:
        return visibility_token(box.visible_fraction(clip.rig, global_T_ego.inverse()))

    # -- commit ------------------------------------------------------------------------------

    def finalize(
        self, scenes: Sequence[str], splits: dict[str, list[str]], fingerprint: str, extra: dict | None = None
    ) -> Path:
        """Assemble the tables of `scenes` from their fragments and publish the dataset atomically. `extra`
        (JSON) is kept in the sidecar index beside the fingerprint, e.g. the world build's configuration."""
        tables = static_tables() | {table: [] for table in (*CLIP_TABLES, "map")}
        maps: dict[str, HDMap | None] = {}
        map_records: dict[str, dict] = {}  # each location's map as its first scene's fragment holds it
        logs_at: dict[str, list[str]] = {}
        sidecars: dict[str, dict[str, str]] = {}
        for scene in scenes:
            path = self.fragment_path(scene)
            if not path.is_file():
                raise DreamdriveError(f"scene {scene!r} was never written; call write_clip before finalize.")
            fragment = json.loads(path.read_text())
            for table, table_rows in fragment["rows"].items():
                tables[table].extend(table_rows)
            location = fragment["location"]
            logs_at.setdefault(location, []).extend(row["token"] for row in fragment["rows"]["log"])
            sidecars[scene] = fragment["sidecars"]
            maps.setdefault(location, None)
            if fragment["hdmap"] is not None:
                if location in map_records and map_records[location] != fragment["hdmap"]:
                    raise DreamdriveError(f"scene {scene!r} has a different map of location {location!r} than an "
                                          "earlier scene; scenes of one location share one map, so give each map "
                                          "its own location name.")  # fmt: skip
                if location not in map_records:  # parsed once per location
                    map_records[location] = fragment["hdmap"]
                    maps[location] = HDMap.from_json(fragment["hdmap"])

        # Maps: the semantic-prior PNG the devkit expects, and our vector map sidecar.
        map_sidecars = {}
        for location in sorted(maps):
            filename = f"maps/{make_token('map', location)}.png"
            self._write(self.dataroot / filename, map_mask_png(maps[location]))
            tables["map"].append(
                {
                    "token": make_token("map", location),
                    "log_tokens": logs_at[location],
                    "category": "semantic_prior",
                    "filename": filename,
                }
            )
            if maps[location] is not None:
                map_sidecars[location] = f"maps/{location}.json"
                self._write(self.dataroot / SIDECAR_DIR / map_sidecars[location], dumps(maps[location].to_json()))

        # Tables into a staging version folder, then one rename publishes them.
        staged = self.staging / self.version
        shutil.rmtree(staged, ignore_errors=True)
        for table in TABLES:
            self._write(staged / f"{table}.json", dumps(tables[table]))
        self._write(staged / "splits.json", dumps(splits))
        index = {
            "format": SIDECAR_FORMAT,
            "version": self.version,
            "fingerprint": fingerprint,
            "maps": map_sidecars,
            "scenes": {s: {"boxes": f"boxes/{s}.json", **sidecars[s]} for s in scenes},
            **(extra or {}),
        }
        self._write(self.index_path, dumps(index))
        target = self.dataroot / self.version
        shutil.rmtree(target, ignore_errors=True)
        staged.rename(target)
        shutil.rmtree(self.staging, ignore_errors=True)
        if self.dataroot != self.target:  # the replacement is finished: swap it in
            entries = sorted(p.name for p in self.dataroot.iterdir() if p.name in {self.version, *DATASET_FOLDERS})
            atomic_write(self.target / SWAP_JOURNAL, json.dumps({"entries": entries, "version": self.version}).encode())
            finish_swap(self.target)
            self.dataroot = self.target
        return self.target / self.version


DATASET_FOLDERS = ("samples", "sweeps", "maps", SIDECAR_DIR)  # with the version folder: what a dataset is


def finish_swap(target: Path) -> None:
    """Complete the swap of a replacement dataset into `target` that `SWAP_JOURNAL` records: each of the old
    dataset's folders out of the way, the new one's in its place, then the old ones deleted. Every step checks
    what is already done, so a run killed anywhere in it completes it here."""
    journal = target / SWAP_JOURNAL
    if not journal.is_file():
        return
    record = json.loads(journal.read_text())
    new, old = target / REPLACING_DIR, target / REPLACED_DIR
    old.mkdir(exist_ok=True)
    for name in (record["version"], *DATASET_FOLDERS, STAGING_DIR):
        if name in record["entries"] and not (new / name).exists():
            continue  # already in place
        if (target / name).exists():
            shutil.rmtree(old / name, ignore_errors=True)
            (target / name).rename(old / name)
        if name in record["entries"]:
            (new / name).rename(target / name)
    shutil.rmtree(old)
    shutil.rmtree(new, ignore_errors=True)
    journal.unlink()


class _SortedPoints:
    """A sweep's points in the global frame, sorted by x, to count the points in many boxes quickly."""

    def __init__(self, points_lidar: np.ndarray, global_T_ego: Transform):
        points = (global_T_ego @ DEFAULT_EGO_T_LIDAR).apply(points_lidar[:, :3])
        self.points = points[np.argsort(points[:, 0], kind="stable")]

    def count_in(self, box: Box3D) -> int:
        """The number of points inside `box` (a global box): the exact test on those within its radius in x."""
        radius = np.linalg.norm(box.size) / 2
        lo = np.searchsorted(self.points[:, 0], box.center[0] - radius, side="left")
        hi = np.searchsorted(self.points[:, 0], box.center[0] + radius, side="right")
        return int(box.contains(self.points[lo:hi]).sum())


def check_splits(splits: dict[str, list[str]], scenes: Sequence[str]) -> dict[str, list[str]]:
    """Validate custom split names and their scenes."""
    for name, members in splits.items():
        if name in PREDEFINED_SPLITS:
            raise DreamdriveError(
                f"split name {name!r} is reserved by the nuscenes-devkit for the official scene lists; "
                f"name custom splits otherwise (e.g. 'proc_train', 'proc_val')."
            )
        unknown = sorted(set(members) - set(scenes))
        if unknown:
            raise DreamdriveError(f"split {name!r} names scenes that are not in the dataset: {unknown}.")
    return {name: list(members) for name, members in splits.items()}


def write_dataset(
    clips: Iterable[Clip],
    dataroot: str | Path,
    version: str = DEFAULT_VERSION,
    splits: dict[str, list[str]] | None = None,
    overwrite: bool = False,
    options: WriteOptions = WriteOptions(),
    progress: Callable[[Iterable], Iterable] | None = None,
) -> Path:
    """Write clips as a nuScenes-format dataset; returns the version folder.

    Rerunning with the same clips is a no-op; a run that was killed resumes. A
    different dataset already in `dataroot` is replaced only with `overwrite`.

    Args:
        clips: the scenes, in the order their rows appear in the tables.
        dataroot: output folder (created).
        version: the version folder name read by `NuScenes(version, dataroot)`.
        splits: custom split name -> scene names (default: one split "all").
        overwrite: replace a different finished dataset in `dataroot`.
        progress: wraps the clip iteration, e.g. a progress bar.
    """
    clips = list(clips)
    scenes = [clip.name for clip in clips]
    if len(set(scenes)) != len(scenes):
        raise DreamdriveError(f"scene names must be unique within a dataset, got {scenes}.")
    if not clips:
        raise DreamdriveError("no clips to write.")
    splits = check_splits(splits if splits is not None else {"all": scenes}, scenes)
    for clip in clips:
        clip.validate()
    writer = DatasetWriter(dataroot, version, options)
    fingerprints = [clip_fingerprint(clip) for clip in clips]
    fingerprint = hashlib.sha256(json.dumps([version, splits, options.jpeg_quality, fingerprints]).encode()).hexdigest()
    if writer.begin(fingerprint, overwrite):
        return writer.dataroot / version
    pairs = list(zip(clips, fingerprints))
    for clip, clip_digest in progress(pairs) if progress else pairs:
        writer.write_clip(clip, clip_digest)
    return writer.finalize(scenes, splits, fingerprint)
