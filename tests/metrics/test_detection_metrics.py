"""Our detection and tracking figures against the devkit's own evaluation of the same predictions."""

import json
import math

import numpy as np
import pytest

from dreamdrive.metrics.detection import evaluate_detection, evaluate_tracking, load_devkit
from dreamdrive.perception.predict import write_results
from dreamdrive.perception.track import track_results
from tests.helpers import split_samples


def noisy_ground_truth(nusc, split: str, seed: int = 0) -> dict:
    """Ground-truth boxes of the split, shifted, scaled and turned a little, some dropped, some invented,
    with random scores: predictions with every kind of error."""
    from pyquaternion import Quaternion

    rng = np.random.default_rng(seed)
    results = {}
    for sample, labelled in split_samples(nusc, split):
        boxes = []
        for token, ann, name in labelled:
            if rng.random() < 0.2:
                continue
            velocity = [0.0 if math.isnan(v) else float(v) for v in nusc.box_velocity(token)[:2]]
            turned = Quaternion(ann["rotation"]) * Quaternion(axis=[0, 0, 1], angle=rng.normal(0, 0.3))
            boxes.append(
                {
                    "sample_token": sample["token"],
                    "translation": (np.array(ann["translation"]) + rng.normal(0, 0.4, 3)).tolist(),
                    "size": (np.array(ann["size"]) * rng.uniform(0.85, 1.15, 3)).tolist(),
                    "rotation": list(turned.elements),
                    "velocity": (np.array(velocity) + rng.normal(0, 0.5, 2)).tolist(),
                    "detection_name": name,
                    "detection_score": float(rng.uniform(0.1, 1.0)),
                    "attribute_name": "",
                }
            )
            if rng.random() < 0.2:  # a false positive nearby
                fake = dict(boxes[-1], translation=(np.array(ann["translation"]) + [6.0, 0, 0]).tolist())
                boxes.append(dict(fake, detection_score=float(rng.uniform(0.05, 0.5))))
        results[sample["token"]] = boxes
    return results


def test_detection_figures_equal_the_devkits(tiny_world, tmp_path):
    from nuscenes.eval.common.config import config_factory
    from nuscenes.eval.detection.evaluate import DetectionEval

    nusc = load_devkit(tiny_world)
    path = write_results(noisy_ground_truth(nusc, "proc_all"), tmp_path / "results.json")
    report = evaluate_detection(tiny_world, "proc_all", path, tmp_path / "ours", nusc=nusc)
    devkit = DetectionEval(
        nusc, config_factory("detection_cvpr_2019"), str(path), "proc_all", str(tmp_path / "kit"), False
    )
    metrics, _ = devkit.evaluate()
    summary = metrics.serialize()
    assert report["official"]["mAP"] == pytest.approx(summary["mean_ap"], abs=1e-6)
    assert report["official"]["NDS"] == pytest.approx(summary["nd_score"], abs=1e-6)
    for key, name in (("trans_err", "mATE"), ("scale_err", "mASE"), ("orient_err", "mAOE"), ("vel_err", "mAVE")):
        assert report["official"][name] == pytest.approx(summary["tp_errors"][key], abs=1e-6)
    present = sorted({b.detection_name for b in devkit.gt_boxes.all})
    assert report["present"]["classes"] == present
    for name in present:
        assert report["per_class"][name]["AP"] == pytest.approx(summary["mean_dist_aps"][name], abs=1e-6)
    hand_map = np.mean([summary["mean_dist_aps"][n] for n in present])
    assert report["present"]["mAP"] == pytest.approx(hand_map, abs=1e-9)
    if len(present) < 10:  # absent classes pull the official mean down
        assert 0 < report["official"]["mAP"] < report["present"]["mAP"] < 1
    else:
        assert report["official"]["mAP"] == pytest.approx(report["present"]["mAP"], abs=1e-9)
    saved = json.loads((tmp_path / "ours" / "metrics_summary.json").read_text())
    assert saved["mean_ap"] == pytest.approx(summary["mean_ap"], abs=1e-9)
    assert (tmp_path / "ours" / "report.md").is_file() and list((tmp_path / "ours" / "plots").glob("*.pdf"))


def test_tracking_figures_equal_the_devkits(tiny_world, tmp_path):
    from nuscenes.eval.common.config import config_factory
    from nuscenes.eval.tracking.evaluate import TrackingEval

    nusc = load_devkit(tiny_world)
    tracks = track_results(noisy_ground_truth(nusc, "proc_all", seed=1), nusc)
    ids = {box["tracking_id"] for boxes in tracks.values() for box in boxes}
    assert len(ids) < sum(len(b) for b in tracks.values())  # objects keep their ids across samples
    path = write_results(tracks, tmp_path / "tracks.json")
    report = evaluate_tracking(tiny_world, "proc_all", path, tmp_path / "ours")
    devkit = TrackingEval(config_factory("tracking_nips_2019"), str(path), "proc_all", str(tmp_path / "kit"),
                          "v1.0-dreamdrive", str(tiny_world), False)  # fmt: skip
    summary = devkit.main(render_curves=False)
    for name in ("amota", "amotp", "ids", "recall", "motar"):
        assert report["official"][name] == pytest.approx(summary[name], abs=1e-6, nan_ok=True), name
    assert not math.isnan(report["official"]["amota"])


def test_camera_only_keeps_ground_truth_no_lidar_point_hit(tiny_world, tmp_path):
    """Ground truth submitted as predictions scores AP 1 on every present class when boxes without LiDAR points
    count as ground truth (camera_only); the devkit's own filter drops them, so their predictions become false
    positives. The devkit's filter is restored afterwards."""
    import nuscenes.eval.detection.evaluate as devkit_evaluate

    original = devkit_evaluate.filter_eval_boxes
    nusc = load_devkit(tiny_world)
    results = {}
    unscanned = 0
    for sample, labelled in split_samples(nusc, "proc_all"):
        results[sample["token"]] = []
        for _token, ann, name in labelled:
            unscanned += ann["num_lidar_pts"] == 0
            results[sample["token"]].append({"sample_token": sample["token"], "translation": ann["translation"],
                                             "size": ann["size"], "rotation": ann["rotation"],
                                             "velocity": [0.0, 0.0], "detection_name": name,
                                             "detection_score": 0.9, "attribute_name": ""})  # fmt: skip
    assert unscanned > 0
    path = write_results(results, tmp_path / "results.json")
    kept = evaluate_detection(tiny_world, "proc_all", path, tmp_path / "kept", nusc=nusc, plots=False,
                              camera_only=True)  # fmt: skip
    assert devkit_evaluate.filter_eval_boxes is original
    assert all(kept["per_class"][c]["AP"] == pytest.approx(1.0) for c in kept["present"]["classes"])
    dropped = evaluate_detection(tiny_world, "proc_all", path, tmp_path / "dropped", nusc=nusc, plots=False)
    assert dropped["present"]["mAP"] < kept["present"]["mAP"]


def test_camera_only_tracking_keeps_ground_truth_no_lidar_point_hit(tiny_world, tmp_path):
    """Tracking the ground truth: with camera_only the boxes no LiDAR point hit are tracked ground truth too, so
    recall is higher than with the devkit's own filter (which drops them); the filter is restored afterwards."""
    import nuscenes.eval.tracking.evaluate as devkit_tracking

    original = devkit_tracking.filter_eval_boxes
    nusc = load_devkit(tiny_world)
    assert any(ann["num_lidar_pts"] == 0 for ann in nusc.sample_annotation)
    path = write_results(track_results(noisy_ground_truth(nusc, "proc_all", seed=1), nusc), tmp_path / "tracks.json")
    kept = evaluate_tracking(tiny_world, "proc_all", path, tmp_path / "kept", camera_only=True)
    assert devkit_tracking.filter_eval_boxes is original
    dropped = evaluate_tracking(tiny_world, "proc_all", path, tmp_path / "dropped")
    assert kept["official"]["tp"] > dropped["official"]["tp"]
    assert kept["official"]["fp"] < dropped["official"]["fp"]  # tracked unscanned boxes are no longer false
