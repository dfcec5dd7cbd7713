"""Dense ground truth beside a nuScenes-format dataset: per camera frame depth, instance, normal and semantic.

nuScenes has no table for it, so it is a sidecar, owned here beside the reader and
writer that own the rest of the layout:
`dreamdrive/dense/<scene>/<CHANNEL>/<timestamp>.npy.zst`, one zstd-compressed `.npy`
array (4, H, W) uint16 per camera frame (zstd because it encodes 25 times faster than
PNG and smaller):

- plane 0: depth in 1/256 m (0 = nothing);
- plane 1: instance index (0 = scenery), mapped to instance ids by
  `dreamdrive/dense/<scene>/instances.json` (`Clip.dense_instances`);
- plane 2: camera-frame normal as (x + 1) * 127.5 in the high byte and (y + 1) * 127.5
  in the low byte (z is negative: the surface faces the camera);
- plane 3: semantic class (`world.geometry.SEMANTIC_NAMES`).

In memory a frame carries its dense sources in `Frame.dense` (channel -> file, packed
array or encoded bytes), the way it carries images; the reader fills them in and the
writer writes them out.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import zstandard

from dreamdrive.core.boxes import Box3D
from dreamdrive.core.camera import CameraRig
from dreamdrive.core.categories import visibility_token
from dreamdrive.core.clip import DenseSource
from dreamdrive.core.errors import DreamdriveError
from dreamdrive.core.geometry import Transform
from dreamdrive.files import atomic_write, dumps
from dreamdrive.nusc.schema import SIDECAR_DIR

DEPTH_SCALE = 256.0
INSTANCES_FILE = "instances.json"


@dataclass
class DenseView:
    """The dense ground truth of one camera frame.

    Args:
        depth: (H, W) float32 camera-frame z in metres, 0 where nothing was seen.
        instance: (H, W) int32 instance index, 0 for scenery.
        normal: (H, W, 3) float32 unit normals in the camera frame (0 where no depth), or None.
        semantic: (H, W) uint8 semantic class, or None.
    """

    depth: np.ndarray
    instance: np.ndarray
    normal: np.ndarray | None = None
    semantic: np.ndarray | None = None


def pack_dense(depth: np.ndarray, normal: np.ndarray, instance: np.ndarray, semantic: np.ndarray) -> np.ndarray:
    """(4, H, W) uint16: depth, instance, packed normal, semantic (see the module docstring)."""
    quantised = np.clip(np.round(depth * DEPTH_SCALE), 0, 65535).astype(np.uint16)
    nx = np.clip(np.round((normal[..., 0] + 1) * 127.5), 0, 255).astype(np.uint16)
    ny = np.clip(np.round((normal[..., 1] + 1) * 127.5), 0, 255).astype(np.uint16)
    packed_normal = np.where(depth > 0, (nx << 8) | ny, 0).astype(np.uint16)
    return np.stack([quantised, instance.astype(np.uint16), packed_normal, semantic.astype(np.uint16)])


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


def depth_of(packed: np.ndarray) -> np.ndarray:
    """Plane 0 of a packed dense array as metres (H, W) float32."""
    return packed[0].astype(np.float32) / DEPTH_SCALE


def encode_packed(packed: np.ndarray) -> bytes:
    """A packed dense array as the bytes of a sidecar file."""
    buffer = io.BytesIO()
    np.save(buffer, packed)
    return zstandard.ZstdCompressor(level=1).compress(buffer.getvalue())


def read_packed(source: DenseSource, what: str = "dense sidecar") -> np.ndarray:
    """A dense source (a sidecar file, its bytes or a packed array) as the packed (4, H, W) uint16 array."""
    if isinstance(source, np.ndarray):
        return _checked(source, what)
    if isinstance(source, bytes):
        data = source
    else:
        path = Path(source)
        if not path.is_file():
            raise DreamdriveError(f"no dense sidecar {path}; it exists for datasets built by `dreamdrive world build`.")
        data, what = path.read_bytes(), str(path)
    try:
        packed = np.load(io.BytesIO(zstandard.ZstdDecompressor().decompress(data)), allow_pickle=False)
    except (zstandard.ZstdError, ValueError, EOFError, OSError) as error:
        raise DreamdriveError(f"{what} is not a dense sidecar ({error}); rebuild the dataset.") from error
    return _checked(packed, what)


def _checked(packed: np.ndarray, what: str) -> np.ndarray:
    if packed.ndim != 3 or packed.shape[0] != 4 or packed.dtype != np.uint16:
        raise DreamdriveError(
            f"{what} holds a {packed.dtype} array of shape {packed.shape}, not the packed (4, H, W) uint16 dense "
            "ground truth; rebuild the dataset."
        )
    return packed


def read_dense(source: DenseSource) -> dict[str, np.ndarray]:
    """The dense ground truth of one camera frame from its source (see `unpack_dense`)."""
    return unpack_dense(read_packed(source))


def dense_folder(dataroot: str | Path, scene: str) -> Path:
    """Where a scene's dense sidecar lives: one folder per camera, and `instances.json`."""
    return Path(dataroot) / SIDECAR_DIR / "dense" / scene


def dense_path(dataroot: str | Path, scene: str, channel: str, timestamp: int) -> Path:
    return dense_folder(dataroot, scene) / channel / f"{timestamp}.npy.zst"


def load_dense(dataroot: str | Path, scene: str, channel: str, timestamp: int) -> dict[str, np.ndarray]:
    """The dense ground truth of one camera frame of a written dataset."""
    return read_dense(dense_path(dataroot, scene, channel, timestamp))


def write_packed(path: Path, packed: np.ndarray, scratch: Path) -> None:
    """Write a packed dense array as a sidecar file (atomically)."""
    atomic_write(path, encode_packed(packed), scratch=scratch, durable=False)


def read_instances(folder: Path) -> dict[int, str]:
    """A scene's instance index -> instance id table (empty when the scene has none)."""
    path = folder / INSTANCES_FILE
    if not path.is_file():
        return {}
    try:
        return {int(k): v for k, v in json.loads(path.read_text()).items()}
    except (json.JSONDecodeError, ValueError, AttributeError) as error:
        raise DreamdriveError(f"{path} is not an instance table ({error}); rebuild the dataset.") from error


def write_instances(folder: Path, instances: dict[int, str], scratch: Path) -> None:
    atomic_write(folder / INSTANCES_FILE, dumps(instances), scratch=scratch)


def dense_visibility(box: Box3D, instance: int, rig: CameraRig, global_T_ego: Transform, views: dict) -> str:
    """nuScenes visibility token from dense ground truth: the share of the box's volume the cameras see.

    `views` maps each channel to its dense view (anything with `depth` and `instance`
    arrays: a `DenseView`, the renderer's `CameraImages`). Lattice points inside the box
    count as seen where a camera pixel they project to shows this object, as hidden where
    something nearer covers them or where no camera looks, and not at all where the pixel
    shows something farther (the box's empty corners, e.g. above a car's bonnet).
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
        pixel_instance = views[camera.name].instance[rows, cols]
        pixel_depth = views[camera.name].depth[rows, cols]
        seen |= inside & (pixel_instance == instance)
        covered |= inside & (pixel_instance != instance) & (pixel_depth > 0) & (pixel_depth < projection.depth - 0.3)
        in_any |= inside
    hidden = (covered | ~in_any) & ~seen
    counted = seen.sum() + hidden.sum()
    return visibility_token(seen.sum() / counted if counted else 0.0)
