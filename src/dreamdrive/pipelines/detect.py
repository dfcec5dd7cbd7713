"""Evaluating a trained detector, the jobs: detect (and track) on a split, score with the devkit, draw pictures."""

from __future__ import annotations

from pathlib import Path

from dreamdrive.metrics.detection import evaluate_detection, evaluate_tracking, load_devkit
from dreamdrive.perception.data import ClipCache
from dreamdrive.perception.experiment import default_split
from dreamdrive.perception.pictures import detection_picture
from dreamdrive.perception.predict import predict, split_refs, write_results
from dreamdrive.perception.track import track_results
from dreamdrive.perception.train import load_model


def evaluate_run(
    run: str | Path,
    data: str | Path,
    out: str | Path,
    split: str | None = None,
    batch_size: int = 4,
    pictures: int = 4,
    camera_only: bool = False,
) -> Path:
    """Detect on `split` of `data` (default: its validation split) with the detector of `run`; write
    `results_nusc.json`, the devkit's metrics, `report.json` / `report.md`, PR curves and `pictures` detection
    pictures into `out`. Returns the results file. `camera_only`: as in `metrics.detection.evaluate_detection`."""
    # 1. Detections on the split, in the nuScenes submission format.
    out = Path(out)
    split = split or default_split(data, "val")
    refs = split_refs(data, split)
    detections = predict(load_model(run), refs, batch_size)
    results = write_results(detections, out / "results_nusc.json")
    # 2. The devkit's scores.
    evaluate_detection(data, split, results, out, camera_only=camera_only)
    # 3. Pictures of evenly spread samples.
    cache = ClipCache()
    for ref in refs[:: max(1, len(refs) // pictures)] if pictures else []:
        clip = cache.clip(ref.dataroot, ref.scene)
        picture = out / "pictures" / f"{ref.scene}_{ref.frame:03d}.png"
        detection_picture(clip, ref.frame, detections[ref.sample_token], picture)
    return results


def track_run(run: str | Path, data: str | Path, out: str | Path, split: str | None = None) -> Path:
    """Detect and track on `split` of `data`; write `results_tracking.json` and the devkit's tracking metrics
    into `out`. Returns the results file."""
    out = Path(out)
    split = split or default_split(data, "val")
    detections = predict(load_model(run), split_refs(data, split))
    results = write_results(track_results(detections, load_devkit(data)), out / "results_tracking.json")
    evaluate_tracking(data, split, results, out)
    return results
