"""Helpers shared by tests."""

from __future__ import annotations

import hashlib
from pathlib import Path

SPLITS = {"hm_train": ["handmade-0000"], "hm_val": ["handmade-0001"]}


def tree_digest(root: Path) -> dict[str, str]:
    """sha256 of every file under `root`, keyed by relative path."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def split_samples(nusc, split: str):
    """(sample, [(annotation token, annotation, detection name)]) for every sample of `split`, with the
    annotations of the 10 detection classes."""
    from nuscenes.eval.detection.utils import category_to_detection_name
    from nuscenes.utils.splits import get_scenes_of_split

    scenes = set(get_scenes_of_split(split, nusc))
    for sample in nusc.sample:
        if nusc.get("scene", sample["scene_token"])["name"] not in scenes:
            continue
        annotations = []
        for token in sample["anns"]:
            ann = nusc.get("sample_annotation", token)
            name = category_to_detection_name(ann["category_name"])
            if name is not None:
                annotations.append((token, ann, name))
        yield sample, annotations


def evaluate_ground_truth(nusc, split: str, out_dir: Path):
    """Run the devkit's DetectionEval on `split` with the ground truth submitted as predictions.

    Boxes no LiDAR or radar point falls in are left out: the devkit drops them from the
    ground truth, so predicting them would count as false positives.
    Returns (metrics, evaluator).
    """
    from nuscenes.eval.common.config import config_factory
    from nuscenes.eval.detection.evaluate import DetectionEval

    from dreamdrive.perception.predict import write_results

    results = {}
    for sample, labelled in split_samples(nusc, split):
        boxes = []
        for token, ann, name in labelled:
            if ann["num_lidar_pts"] + ann["num_radar_pts"] == 0:
                continue
            attributes = [nusc.get("attribute", t)["name"] for t in ann["attribute_tokens"]]
            boxes.append(
                {
                    "sample_token": sample["token"],
                    "translation": ann["translation"],
                    "size": ann["size"],
                    "rotation": ann["rotation"],
                    "velocity": list(nusc.box_velocity(token)[:2]),
                    "detection_name": name,
                    "detection_score": 1.0,
                    "attribute_name": attributes[0] if attributes else "",
                }
            )
        results[sample["token"]] = boxes
    path = write_results(results, Path(out_dir) / f"{split}_results.json")
    evaluator = DetectionEval(
        nusc, config_factory("detection_cvpr_2019"), str(path), split, str(out_dir), verbose=False
    )
    metrics, _ = evaluator.evaluate()
    return metrics, evaluator
