"""Running a trained detector over a split and writing nuScenes detection results."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from dreamdrive.core.boxes import Box3D
from dreamdrive.core.categories import DEFAULT_CATEGORY
from dreamdrive.core.errors import DreamdriveError
from dreamdrive.files import atomic_write
from dreamdrive.perception.data import DetectionDataset, SampleRef, scene_samples
from dreamdrive.perception.model import decode

META = {"use_camera": True, "use_lidar": False, "use_radar": False, "use_map": False, "use_external": False}


def attribute_for(name: str, speed: float) -> str:
    """The attribute nuScenes expects for a class at a speed (the devkit scores it as mAAE)."""
    if name in ("car", "truck", "bus", "trailer", "construction_vehicle"):
        return "vehicle.moving" if speed > 0.5 else "vehicle.parked"
    if name == "pedestrian":
        return "pedestrian.moving" if speed > 0.3 else "pedestrian.standing"
    if name in ("motorcycle", "bicycle"):
        return "cycle.with_rider"
    return ""


def to_global(rows: np.ndarray, frame, classes) -> list[dict]:
    """Decoded rows (class, score, x, y, z, w, l, h, yaw, vx, vy) in the frame's ego frame -> result boxes."""
    boxes = []
    for kind, score, x, y, z, width, length, height, yaw, vx, vy in rows.astype(np.float64):
        name = classes[int(kind)]
        box = Box3D(
            np.array([x, y, z]), np.array([width, length, height]), yaw, DEFAULT_CATEGORY[name], "p", np.array([vx, vy])
        )
        box = box.transformed(frame.global_T_ego)
        boxes.append(
            {
                "translation": [round(float(v), 4) for v in box.center],
                "size": [round(float(v), 4) for v in box.size],
                "rotation": [round(float(v), 6) for v in box.quaternion],
                "velocity": [round(float(v), 4) for v in box.velocity],
                "detection_name": name,
                "detection_score": round(float(score), 5),
                "attribute_name": attribute_for(name, float(np.hypot(vx, vy))),
            }
        )
    return boxes


@torch.no_grad()
def predict(
    model,
    refs: list[SampleRef],
    batch_size: int = 4,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, list[dict]]:
    """Detections of every key frame in `refs`, by sample token, in global coordinates."""

    refs = [r for r in refs if r.sample_token is not None]
    if not refs:
        raise DreamdriveError("no key frames to predict on.")
    config = model.config
    dataset = DetectionDataset(refs, config)
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=False)
    device = next(model.parameters()).device
    results: dict[str, list[dict]] = {}
    done = 0
    model.eval()
    for batch in loader:
        heatmap, regression = model(
            batch["images"].to(device), batch["intrinsics"].to(device), batch["ref_T_cam"].to(device)
        )
        for rows, k in zip(decode(heatmap, regression, config), batch["index"].tolist()):
            ref = refs[k]
            frame = dataset.cache.clip(ref.dataroot, ref.scene).frames[ref.frame]  # read once, by the loader
            boxes = to_global(rows, frame, config.classes)
            results[ref.sample_token] = [{"sample_token": ref.sample_token, **b} for b in boxes]
        done += len(batch["index"])
        if progress is not None:
            progress(done, len(refs))
    return results


def write_results(results: dict[str, list[dict]], path: str | Path) -> Path:
    """The nuScenes submission file of detection or tracking results."""
    path = Path(path)
    atomic_write(path, json.dumps({"meta": META, "results": results}).encode())
    return path


def split_refs(dataroot: str | Path, split: str) -> list[SampleRef]:
    return [r for r in scene_samples(dataroot, split) if r.sample_token is not None]
