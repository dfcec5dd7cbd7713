"""Detection and tracking metrics through the nuscenes-devkit, reported two ways.

`official` holds the devkit's own figures over the 10 detection classes (7
tracking classes); classes without ground truth in the split count as they do
in the devkit (AP 0, TP errors 1 in NDS). `present` averages only over the
classes that have ground truth in the evaluated split: mAP and each TP error
are their means over those classes (a TP error the devkit cannot measure for a
class, such as a cone's orientation, is left out of its mean), and NDS is
(5 mAP + sum over the five TP errors of (1 - min(1, error))) / 10, the devkit's
formula on those means. For tracking, AMOTA, AMOTP and the other figures are
averaged over the present tracking classes the same way.

Each evaluation writes the devkit's files (`metrics_summary.json`,
`metrics_details.json`, PR-curve plots) and `report.json` and `report.md`.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
from pathlib import Path

import numpy as np

from dreamdrive.core.errors import DreamdriveError
from dreamdrive.files import atomic_write
from dreamdrive.nusc.reader import find_version, load_devkit

TP_NAMES = {"trans_err": "mATE", "scale_err": "mASE", "orient_err": "mAOE", "vel_err": "mAVE", "attr_err": "mAAE"}
TRACK_FIGURES = ("amota", "amotp", "recall", "motar", "mota", "motp", "ids", "frag", "tp", "fp", "fn")


def _check_split(nusc, split: str) -> None:
    from nuscenes.utils.splits import get_scenes_of_split

    try:
        scenes = get_scenes_of_split(split, nusc)
    except (AssertionError, ValueError, KeyError) as error:
        raise DreamdriveError(f"the dataset has no split {split!r} ({error}); see its splits.json.") from error
    if not scenes:
        raise DreamdriveError(f"split {split!r} holds no scenes.")


def evaluate_detection(dataroot: str | Path, split: str, results: str | Path, out: str | Path, plots: bool = True,
                       nusc=None, camera_only: bool = False) -> dict:  # fmt: skip
    """Run the devkit's DetectionEval on a results file; write its outputs and our report to `out`.

    `camera_only`: keep ground-truth boxes that no LiDAR point hit. The devkit drops them, which is right for
    LiDAR-scanned datasets and drops every box of a camera-only one (a generated clip, whose annotations have
    no sweep to count points in). The distance filter and everything else are the devkit's.
    """
    import nuscenes.eval.detection.evaluate as devkit_evaluate
    from nuscenes.eval.common.config import config_factory

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    nusc = nusc or load_devkit(dataroot)
    _check_split(nusc, split)
    try:
        with keeping_unscanned(devkit_evaluate, camera_only):
            evaluator = devkit_evaluate.DetectionEval(nusc, config_factory("detection_cvpr_2019"), str(results),
                                                      split, str(out), False)  # fmt: skip
    except AssertionError as error:
        raise DreamdriveError(f"the devkit refused {results}: {error}") from error
    with contextlib.redirect_stdout(io.StringIO()):  # the devkit prints its tables; the report holds them
        summary = evaluator.main(plot_examples=0, render_curves=plots)
    present = sorted({box.detection_name for box in evaluator.gt_boxes.all})
    report = detection_report(summary, present)
    report.update(split=split, dataroot=str(dataroot), results=str(results))
    atomic_write(out / "report.md", detection_markdown(report).encode())
    atomic_write(out / "report.json", json.dumps(report, indent=1).encode())  # last: it marks the outputs complete
    return report


@contextlib.contextmanager
def keeping_unscanned(module, active: bool = True):
    """While active, the devkit evaluation `module`'s filter keeps ground-truth boxes that no LiDAR point hit
    (it counts them as hit once); the distance filter and the rest are the devkit's."""
    original = module.filter_eval_boxes

    def keep_unscanned(nusc_, boxes, max_dist, verbose=False):
        for sample in boxes.sample_tokens:
            for box in boxes[sample]:
                if getattr(box, "num_pts", -1) == 0:  # ground truth without points; predictions carry -1
                    box.num_pts = 1
        return original(nusc_, boxes, max_dist, verbose)

    if active:
        module.filter_eval_boxes = keep_unscanned
    try:
        yield
    finally:
        module.filter_eval_boxes = original


def detection_report(summary: dict, present: list[str]) -> dict:
    """The devkit's summary, and its figures averaged over the present classes only."""
    official = {"mAP": summary["mean_ap"], "NDS": summary["nd_score"]}
    official.update({TP_NAMES[k]: v for k, v in summary["tp_errors"].items()})
    per_class = {
        name: {"AP": summary["mean_dist_aps"][name], **{TP_NAMES[k]: v for k, v in errors.items()}}
        for name, errors in summary["label_tp_errors"].items()
    }
    mean_ap = float(np.mean([per_class[name]["AP"] for name in present])) if present else 0.0
    errors = {}
    for metric in TP_NAMES.values():
        values = [per_class[n][metric] for n in present if not math.isnan(per_class[n][metric])]
        errors[metric] = float(np.mean(values)) if values else 1.0
    nds = (5 * mean_ap + sum(1 - min(1.0, e) for e in errors.values())) / 10
    return {
        "official": official,
        "present": {"classes": present, "mAP": mean_ap, "NDS": nds, **errors},
        "per_class": per_class,
    }


def detection_markdown(report: dict) -> str:
    head = "| | mAP | NDS | mATE | mASE | mAOE | mAVE | mAAE |\n|---|---:|---:|---:|---:|---:|---:|---:|\n"
    rows = []
    for key, label in (
        ("official", "10 classes (devkit)"),
        ("present", f"{len(report['present']['classes'])} classes present"),
    ):
        r = report[key]
        rows.append(f"| {label} | " + " | ".join(f"{r[m]:.4f}" for m in ("mAP", "NDS", *TP_NAMES.values())) + " |")
    classes = "| class | AP | ATE | ASE | AOE | AVE | AAE |\n|---|---:|---:|---:|---:|---:|---:|\n" + "\n".join(
        f"| {name} | {v['AP']:.4f} | " + " | ".join(f"{v[m]:.3f}" for m in TP_NAMES.values()) + " |"
        for name, v in report["per_class"].items()
    )
    return f"# Detection on split {report['split']}\n\n{head}" + "\n".join(rows) + f"\n\n{classes}\n"


def evaluate_tracking(
    dataroot: str | Path, split: str, results: str | Path, out: str | Path, camera_only: bool = False
) -> dict:
    """Run the devkit's TrackingEval on a tracking results file; write its outputs and our report to `out`.
    `camera_only`: as in `evaluate_detection`."""
    import nuscenes.eval.tracking.evaluate as devkit_tracking
    from nuscenes.eval.common.config import config_factory

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    dataroot = Path(dataroot)
    version = find_version(dataroot)
    _check_split(load_devkit(dataroot), split)
    try:
        with keeping_unscanned(devkit_tracking, camera_only):
            evaluator = devkit_tracking.TrackingEval(
                config_factory("tracking_nips_2019"), str(results), split, str(out), version, str(dataroot), False
            )
    except AssertionError as error:
        raise DreamdriveError(f"the devkit refused {results}: {error}") from error
    with contextlib.redirect_stdout(io.StringIO()):
        summary = evaluator.main(render_curves=False)
    present = sorted(
        {box.tracking_name for scene in evaluator.tracks_gt.values() for boxes in scene.values() for box in boxes}
    )
    report = tracking_report(summary, present)
    report.update(split=split, dataroot=str(dataroot), results=str(results))
    table = "| | " + " | ".join(TRACK_FIGURES) + " |\n|---|" + "---:|" * len(TRACK_FIGURES) + "\n"
    for key in ("official", "present"):
        table += f"| {key} | " + " | ".join(f"{report[key][f]:.4f}" for f in TRACK_FIGURES) + " |\n"
    atomic_write(out / "report.md", f"# Tracking on split {split}\n\n{table}".encode())
    atomic_write(out / "report.json", json.dumps(report, indent=1).encode())  # last: it marks the outputs complete
    return report


def tracking_report(summary: dict, present: list[str]) -> dict:
    official = {name: summary[name] for name in TRACK_FIGURES}
    averaged = {}
    for name in TRACK_FIGURES:
        values = [summary["label_metrics"][name][c] for c in present]
        values = [v for v in values if v is not None and not math.isnan(v)]
        averaged[name] = float(np.mean(values)) if values else float("nan")
    return {"official": official, "present": {"classes": present, **averaged}, "per_class": summary["label_metrics"]}
