"""The detector's orientation error on inserted objects, naive against generative insertion.

    PYTHONPATH=. python benchmarks/bench_insert_orientation.py --detector RUN \
        --edited naive=DATAROOT --edited generative=DATAROOT [--out FILE.json]

Dream4Drive reports that generative insertion loses some of naive insertion's
orientation accuracy. For each edited dataset (the same placements inserted in
each mode, `dreamdrive insert ... --seed K`), a trained detector runs on every key
frame of the edited scenes (split `insert_all`). Each inserted object's box on a
key frame is matched to the highest-scoring detection of its class within 2 m
(centre distance in the ground plane, as the devkit's loosest threshold). Per
mode: the share of inserted boxes matched (recall at 2 m), and over matches the
mean absolute yaw error (AOE, radians, wrapped to [0, pi]; the devkit's
definition for every class but barriers) and the mean centre error.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from dreamdrive.core.categories import detection_class
from dreamdrive.core.geometry import quat_to_yaw
from dreamdrive.nusc.reader import NuscDataset
from dreamdrive.nusc.schema import SIDECAR_DIR
from dreamdrive.perception.predict import predict, split_refs
from dreamdrive.perception.train import load_model


def inserted_boxes(dataroot: Path) -> dict[str, list]:
    """sample token -> the inserted objects' boxes on that key frame."""
    dataset = NuscDataset(dataroot)
    out: dict[str, list] = {}
    for scene in dataset.splits["insert_all"]:
        report = dataroot / SIDECAR_DIR / "insertions" / f"{scene}.json"
        if not report.is_file():
            continue
        inserted = {item["instance_id"] for item in json.loads(report.read_text())["instances"]}
        clip = dataset.clip(scene)
        tokens = {r.frame: r.sample_token for r in split_refs(dataroot, "insert_all") if r.scene == scene}
        for index, token in tokens.items():
            if token is None:
                continue
            out[token] = [a.boxes[index] for a in clip.agents if a.instance_id in inserted and a.boxes[index]]
    return out


def score(detector, dataroot: Path) -> dict:
    truth = inserted_boxes(dataroot)
    refs = [r for r in split_refs(dataroot, "insert_all") if r.sample_token in truth]
    results = predict(detector, refs)
    errors, centres, total = [], [], 0
    for token, boxes in truth.items():
        for box in boxes:
            total += 1
            name = detection_class(box.category)
            candidates = [d for d in results.get(token, []) if d["detection_name"] == name
                          and np.hypot(*(np.array(d["translation"][:2]) - box.center[:2])) < 2.0]  # fmt: skip
            if not candidates:
                continue
            best = max(candidates, key=lambda d: d["detection_score"])
            diff = abs(quat_to_yaw(best["rotation"]) - box.yaw) % (2 * np.pi)
            errors.append(min(diff, 2 * np.pi - diff))
            centres.append(float(np.hypot(*(np.array(best["translation"][:2]) - box.center[:2]))))
    return {"inserted_boxes": total, "matched": len(errors), "recall_2m": len(errors) / max(total, 1),
            "aoe_rad": float(np.mean(errors)) if errors else None,
            "ate_m": float(np.mean(centres)) if centres else None}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--detector", required=True)
    parser.add_argument("--edited", action="append", required=True, help="MODE=DATAROOT")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    detector = load_model(args.detector)
    record = {}
    for item in args.edited:
        mode, _, root = item.partition("=")
        record[mode] = score(detector, Path(root))
        print(mode, record[mode], flush=True)
    if args.out is not None:
        args.out.write_text(json.dumps(record, indent=1))


if __name__ == "__main__":
    main()
