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
definition for every class but barriers) and the mean centre error; each also
matching a detection of any vehicle class (a weak detector confuses cars,
trucks and buses more than it misplaces them), for all inserted boxes and for
the near, visible ones. Since every mode inserts the same placements, the
AOE is also given paired: over the boxes matched in every mode.
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

VEHICLES = ("car", "truck", "bus", "trailer", "construction_vehicle")


def inserted_boxes(dataroot: Path) -> dict[str, list]:
    """sample token -> (key, box, distance from the ego in metres) of each inserted object on that key frame;
    the key (source scene, frame, object number) is the same in every mode's dataset."""
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
            ego = clip.frames[index].global_T_ego.translation[:2]
            out[token] = [((scene.rsplit("-", 1)[0], index, a.instance_id.split("-ins")[-1]), a.boxes[index],
                           float(np.hypot(*(a.boxes[index].center[:2] - ego))))
                          for a in clip.agents if a.instance_id in inserted and a.boxes[index]]  # fmt: skip
    return out


def match(detector, dataroot: Path) -> dict[tuple, dict]:
    """Object key (`inserted_boxes`) -> its distance and visibility, and the yaw and centre errors of the
    highest-scoring detection within 2 m of its class ("class") and of any vehicle class ("vehicle")."""
    truth = inserted_boxes(dataroot)
    refs = [r for r in split_refs(dataroot, "insert_all") if r.sample_token in truth]
    results = predict(detector, refs)
    rows = {}
    for token, boxes in truth.items():
        for key, box, distance in boxes:
            row = {"distance": distance, "visibility": int(box.visibility or 0)}
            name = detection_class(box.category)
            for rule, names in (("class", (name,)), ("vehicle", VEHICLES)):
                candidates = [d for d in results.get(token, []) if d["detection_name"] in names
                              and np.hypot(*(np.array(d["translation"][:2]) - box.center[:2])) < 2.0]  # fmt: skip
                if candidates:
                    best = max(candidates, key=lambda d: d["detection_score"])
                    diff = abs(quat_to_yaw(best["rotation"]) - box.yaw) % (2 * np.pi)
                    row[rule] = (min(diff, 2 * np.pi - diff),
                                 float(np.hypot(*(np.array(best["translation"][:2]) - box.center[:2]))))  # fmt: skip
            rows[key] = row
    return rows


def summary(rows: list[dict], rule: str) -> dict:
    hits = [r[rule] for r in rows if rule in r]
    return {"boxes": len(rows), "matched": len(hits), "recall_2m": len(hits) / max(len(rows), 1),
            "aoe_rad": float(np.mean([h[0] for h in hits])) if hits else None,
            "ate_m": float(np.mean([h[1] for h in hits])) if hits else None}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--detector", required=True)
    parser.add_argument("--edited", action="append", required=True, help="MODE=DATAROOT")
    parser.add_argument("--near", type=float, default=30.0, help="the near subset: within this many metres")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    detector = load_model(args.detector)
    matched = {}
    for item in args.edited:
        mode, _, root = item.partition("=")
        matched[mode] = match(detector, Path(root))
    record = {}
    subsets = {"all": lambda r: True, f"within {args.near:g} m, visibility over 40%":
               lambda r: r["distance"] <= args.near and r["visibility"] >= 2}  # fmt: skip
    for mode, rows in matched.items():
        for subset, keep in subsets.items():
            for rule in ("class", "vehicle"):
                record.setdefault(mode, {}).setdefault(subset, {})[rule] = summary(
                    [r for r in rows.values() if keep(r)], rule
                )
    # Paired: the same objects on the same key frames, matched (any vehicle class) in every mode
    common = set.intersection(*[{k for k, r in rows.items() if "vehicle" in r} for rows in matched.values()])
    for mode, rows in matched.items():
        errors = [rows[k]["vehicle"][0] for k in common]
        record[mode]["paired (any vehicle class, matched in every mode)"] = {
            "boxes": len(common), "aoe_rad": float(np.mean(errors)) if errors else None}  # fmt: skip
    for mode, subsets_scores in record.items():
        for subset, value in subsets_scores.items():
            print(mode, "|", subset, "|", json.dumps(value), flush=True)
    if args.out is not None:
        args.out.write_text(json.dumps(record, indent=1))


if __name__ == "__main__":
    main()
