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


def evaluate_ground_truth(nusc, split: str, out_dir: Path):
    """Run the devkit's DetectionEval on `split` with the ground truth submitted as predictions.

    Boxes no LiDAR or radar point falls in are left out: the devkit drops them from the
    ground truth, so predicting them would count as false positives.
    Returns (metrics, evaluator).
    """
    import json

    from nuscenes.eval.common.config import config_factory
    from nuscenes.eval.detection.evaluate import DetectionEval
    from nuscenes.eval.detection.utils import category_to_detection_name
    from nuscenes.utils.splits import get_scenes_of_split

    scenes = set(get_scenes_of_split(split, nusc))
    results = {}
    for sample in nusc.sample:
        if nusc.get("scene", sample["scene_token"])["name"] not in scenes:
            continue
        boxes = []
        for token in sample["anns"]:
            ann = nusc.get("sample_annotation", token)
            name = category_to_detection_name(ann["category_name"])
            if name is None or ann["num_lidar_pts"] + ann["num_radar_pts"] == 0:
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
    meta = {"use_camera": True, "use_lidar": False, "use_radar": False, "use_map": False, "use_external": False}
    path = Path(out_dir) / f"{split}_results.json"
    path.write_text(json.dumps({"meta": meta, "results": results}))
    evaluator = DetectionEval(
        nusc, config_factory("detection_cvpr_2019"), str(path), split, str(out_dir), verbose=False
    )
    metrics, _ = evaluator.evaluate()
    return metrics, evaluator
