"""Training and evaluation samples from nuScenes-format datasets: six images, camera geometry, boxes, targets.

A sample is one frame of a clip in its *reference* ego frame (the frame's ego
pose): the cameras' poses relative to it (cameras of real nuScenes fire at
other moments, so each brings its own ego pose), the images resized to the
detector's input, and the boxes of that frame in the reference frame. Training
samples get BEV augmentation (a rotation, a scale and a left-right flip of the
whole scene, applied alike to the boxes and the camera poses) and photometric
jitter; the CenterPoint targets (class heatmaps, regression at object centres)
are made here, in the loader's workers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch

from dreamdrive.core.categories import DETECTION_CLASSES, detection_class
from dreamdrive.core.errors import DreamdriveError
from dreamdrive.files import load_image
from dreamdrive.nusc.reader import NuscDataset

MAX_OBJECTS = 256
IMAGE_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
IMAGE_STD = np.array([0.229, 0.224, 0.225], np.float32)


@dataclass(frozen=True)
class DetectorConfig:
    """The detector's input, grid and size.

    Args:
        image_size: (width, height) the six images are resized to.
        bev_range: metres from the ego to the edge of the square BEV grid.
        bev_cells: grid cells along each side of the BEV grid.
        z_levels: heights (metres, ego frame) of the lifted voxel layers.
        width: channels of the image backbone's first stage (64 = ResNet-18's, which can load its weights).
        feature_stride: of the image features the voxels sample (4 or 8).
        bev_channels: channels of the BEV encoder.
    """

    image_size: tuple[int, int] = (224, 128)
    bev_range: float = 51.2
    bev_cells: int = 80
    z_levels: tuple[float, ...] = (-0.5, 0.5, 1.5, 2.5)
    width: int = 32
    feature_stride: int = 4
    bev_channels: int = 48
    classes: tuple[str, ...] = DETECTION_CLASSES

    @property
    def cell(self) -> float:
        return 2 * self.bev_range / self.bev_cells

    def to_json(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in self.__dict__.items()}

    @staticmethod
    def from_json(data: dict) -> DetectorConfig:
        unknown = sorted(set(data) - set(DetectorConfig.__dataclass_fields__))
        if unknown:
            known = list(DetectorConfig.__dataclass_fields__)
            raise DreamdriveError(f"unknown detector config keys {unknown}; a detector config has {known}.")
        return DetectorConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})


@dataclass(frozen=True)
class SampleRef:
    """One frame to learn from or to predict on."""

    dataroot: str
    scene: str
    frame: int
    sample_token: str | None  # the nuScenes sample of a key frame; None for sweeps


@dataclass
class Augment:
    """BEV and photometric augmentation of training samples."""

    rotate_degrees: float = 22.5
    scale: tuple[float, float] = (0.95, 1.05)
    flip: bool = True
    brightness: float = 0.2
    contrast: float = 0.2
    enabled: bool = True

    def bev_matrix(self, rng: np.random.Generator) -> np.ndarray:
        """A 4x4 map of the reference ego frame onto the augmented one."""
        if not self.enabled:
            return np.eye(4)
        angle = math.radians(rng.uniform(-self.rotate_degrees, self.rotate_degrees))
        scale = rng.uniform(*self.scale)
        c, s = math.cos(angle), math.sin(angle)
        matrix = np.eye(4)
        matrix[:2, :2] = scale * np.array([[c, -s], [s, c]])
        matrix[2, 2] = scale
        if self.flip and rng.random() < 0.5:
            matrix[1, :] *= -1  # mirror left-right
        return matrix


def scene_samples(dataroot: str | Path, split: str | None, every_frame: bool = False) -> list[SampleRef]:
    """The frames of a dataset's split (key frames; every camera frame with `every_frame`)."""

    dataset = NuscDataset(dataroot)
    scenes = dataset.scene_names if split is None else dataset.splits.get(split)
    if scenes is None:
        raise DreamdriveError(f"{dataroot} has no split {split!r}; its splits are {sorted(dataset.splits)}.")
    refs = []
    for scene in scenes:
        tokens = sample_tokens(dataset, scene)
        clip = dataset.clip(scene, check_files=False)
        for i, frame in enumerate(clip.frames):
            if frame.is_key or every_frame:
                refs.append(SampleRef(str(dataroot), scene, i, tokens.get(frame.timestamp) if frame.is_key else None))
    return refs


def sample_tokens(dataset, scene: str) -> dict[int, str]:
    """CAM_FRONT timestamp of each key frame of `scene` -> its nuScenes sample token."""
    nusc = dataset.nusc
    out = {}
    token = dataset.scene_record(scene)["first_sample_token"]
    while token:
        sample = nusc.get("sample", token)
        out[nusc.get("sample_data", sample["data"]["CAM_FRONT"])["timestamp"]] = token
        token = sample["next"]
    return out


class ClipCache:
    """Clips read once per process."""

    def __init__(self) -> None:
        self._datasets: dict[str, object] = {}
        self._clips: dict[tuple[str, str], object] = {}

    def clip(self, dataroot: str, scene: str):

        if dataroot not in self._datasets:
            self._datasets[dataroot] = NuscDataset(dataroot)
        if (dataroot, scene) not in self._clips:
            self._clips[(dataroot, scene)] = self._datasets[dataroot].clip(scene, check_files=False)
        return self._clips[(dataroot, scene)]


class DetectionDataset(torch.utils.data.Dataset):
    """Samples as tensors: images (V, 3, H, W), intrinsics (V, 3, 3), ref_T_cam (V, 4, 4) and targets."""

    def __init__(self, refs: list[SampleRef], config: DetectorConfig, augment: Augment | None = None, seed: int = 0):
        self.refs = refs
        self.config = config
        self.augment = augment or Augment(enabled=False)
        self.seed = seed
        self.epoch = 0
        self.cache = ClipCache()

    def __len__(self) -> int:
        return len(self.refs)

    def __getitem__(self, k: int) -> dict:
        ref = self.refs[k]
        rng = np.random.default_rng([self.seed, self.epoch, k])
        clip = self.cache.clip(ref.dataroot, ref.scene)
        frame = clip.frames[ref.frame]
        ego_T_global = frame.global_T_ego.inverse()
        bev = self.augment.bev_matrix(rng)
        width, height = self.config.image_size
        images, intrinsics, poses = [], [], []
        for camera in clip.rig:
            _, global_T_ego = frame.camera_pose(camera.name)
            image = cv2.resize(load_image(frame.images[camera.name]), (width, height), interpolation=cv2.INTER_AREA)
            image = image.astype(np.float32) / 255.0
            if self.augment.enabled:
                image = (image - 0.5) * (1 + rng.uniform(-self.augment.contrast, self.augment.contrast)) + 0.5
                image = image + rng.uniform(-self.augment.brightness, self.augment.brightness) * 0.5
            images.append(((np.clip(image, 0, 1) - IMAGE_MEAN) / IMAGE_STD).transpose(2, 0, 1))
            scale = np.diag([width / camera.width, height / camera.height, 1.0])
            intrinsics.append(scale @ camera.intrinsic)
            poses.append(bev @ (ego_T_global @ global_T_ego @ camera.ego_T_cam).matrix)
        boxes = boxes_in_reference(clip.boxes_at(ref.frame), ego_T_global, bev, self.config.classes)
        item = {
            "images": torch.from_numpy(np.stack(images)),
            "intrinsics": torch.from_numpy(np.stack(intrinsics).astype(np.float32)),
            "ref_T_cam": torch.from_numpy(np.stack(poses).astype(np.float32)),
            "index": k,
        }
        item.update({name: torch.from_numpy(value) for name, value in make_targets(boxes, self.config).items()})
        return item


def boxes_in_reference(boxes, ego_T_global, bev: np.ndarray, classes) -> np.ndarray:
    """(N, 10) class index, x, y, z, w, l, h, yaw, vx, vy of the boxes of known classes, in the augmented
    reference frame."""
    rows = []
    scale = float(np.sqrt(abs(np.linalg.det(bev[:2, :2]))))
    for box in boxes:
        name = detection_class(box.category)
        if name not in classes:
            continue
        ego = box.transformed(ego_T_global)
        centre = bev[:3, :3] @ ego.center + bev[:3, 3]
        heading = bev[:2, :2] @ np.array([np.cos(ego.yaw), np.sin(ego.yaw)])
        velocity = bev[:2, :2] @ ego.velocity / scale  # rotated and mirrored, not scaled
        width, length, height = ego.size * scale
        rows.append(
            [classes.index(name), *centre, width, length, height, math.atan2(heading[1], heading[0]), *velocity]
        )
    return np.array(rows, np.float32).reshape(-1, 10)


def gaussian_radius(length: float, width: float, min_overlap: float = 0.1) -> float:
    """CenterNet's radius (in cells) within which a centre still gives a box overlapping the truth by `min_overlap`."""
    a1, b1 = 1.0, length + width
    c1 = width * length * (1 - min_overlap) / (1 + min_overlap)
    r1 = (b1 + math.sqrt(b1**2 - 4 * a1 * c1)) / 2
    a2, b2 = 4.0, 2 * (length + width)
    c2 = (1 - min_overlap) * width * length
    r2 = (b2 + math.sqrt(b2**2 - 4 * a2 * c2)) / 2
    a3, b3 = 4 * min_overlap, -2 * min_overlap * (length + width)
    c3 = (min_overlap - 1) * width * length
    r3 = (b3 + math.sqrt(b3**2 - 4 * a3 * c3)) / 2
    return min(r1, r2, r3)


def make_targets(boxes: np.ndarray, config: DetectorConfig) -> dict[str, np.ndarray]:
    """CenterPoint targets: heatmap (C, Y, X), and for up to MAX_OBJECTS centres their cell index, a mask and
    the regression target (offset x, y; z; log w, l, h; sin, cos yaw; vx, vy)."""
    cells, cell = config.bev_cells, config.cell
    heatmap = np.zeros((len(config.classes), cells, cells), np.float32)
    index = np.zeros(MAX_OBJECTS, np.int64)
    mask = np.zeros(MAX_OBJECTS, np.float32)
    target = np.zeros((MAX_OBJECTS, 10), np.float32)
    count = 0
    for row in boxes:
        kind, x, y, z, width, length, height, yaw, vx, vy = row
        gx, gy = (x + config.bev_range) / cell, (y + config.bev_range) / cell
        cx, cy = int(gx), int(gy)
        if not (0 <= cx < cells and 0 <= cy < cells) or count >= MAX_OBJECTS:
            continue
        radius = max(2, int(gaussian_radius(length / cell, width / cell)))
        draw_gaussian(heatmap[int(kind)], cx, cy, radius)
        index[count] = cy * cells + cx
        mask[count] = 1.0
        target[count] = [gx - cx, gy - cy, z, math.log(width), math.log(length), math.log(height),
                         math.sin(yaw), math.cos(yaw), vx, vy]  # fmt: skip
        count += 1
    return {"heatmap": heatmap, "target_index": index, "target_mask": mask, "target": target}


def draw_gaussian(canvas: np.ndarray, cx: int, cy: int, radius: int) -> None:
    """Max-blend a Gaussian peak of 1 at (cx, cy) (row = y, column = x), sigma = diameter / 6."""
    sigma = (2 * radius + 1) / 6
    ys, xs = np.ogrid[-radius : radius + 1, -radius : radius + 1]
    peak = np.exp(-(xs * xs + ys * ys) / (2 * sigma * sigma))
    height, width = canvas.shape
    left, right = min(cx, radius), min(width - cx, radius + 1)
    top, bottom = min(cy, radius), min(height - cy, radius + 1)
    window = canvas[cy - top : cy + bottom, cx - left : cx + right]
    patch = peak[radius - top : radius + bottom, radius - left : radius + right]
    np.maximum(window, patch, out=window)


@dataclass
class Mix:
    """Training sources and how much of each an epoch holds.

    Args:
        sources: (dataroot, split) pairs.
        ratios: per source, the share of its samples in each epoch (1 = all once; 0.5 = a different random
            half every epoch; 2 = every sample twice).
    """

    sources: list[tuple[str, str | None]]
    ratios: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.ratios = list(self.ratios) or [1.0] * len(self.sources)
        if len(self.ratios) != len(self.sources) or any(r <= 0 for r in self.ratios):
            raise DreamdriveError(f"give one positive ratio per dataset, got {self.ratios} for {len(self.sources)}.")


def epoch_order(sizes: list[int], ratios: list[float], seed: int, epoch: int) -> list[tuple[int, int]]:
    """The (source, sample) pairs of one epoch, shuffled: round(ratio * size) draws from each source, every
    sample once per whole multiple of its size and the remainder drawn without replacement."""
    rng = np.random.default_rng([seed, epoch])
    order = []
    for s, (size, ratio) in enumerate(zip(sizes, ratios)):
        total = round(ratio * size)
        whole, rest = divmod(total, size) if size else (0, 0)
        picks = list(np.tile(np.arange(size), whole)) + list(rng.permutation(size)[:rest])
        order += [(s, int(i)) for i in picks]
    permutation = rng.permutation(len(order))
    return [order[i] for i in permutation]
