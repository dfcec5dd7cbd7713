"""A CenterPoint-style tracker: greedy association of detections by centre distance, velocity-compensated.

For each scene, samples are taken in time order. Each detection of a tracking
class is moved back by its own velocity over the time since the previous
sample and matched to the nearest live track of its class within the class's
distance gate, greedily from the closest pair; unmatched detections start new
tracks; a track unmatched for more than `max_age` samples ends.
"""

from __future__ import annotations

import numpy as np

TRACKING_CLASSES = ("bicycle", "bus", "car", "motorcycle", "pedestrian", "trailer", "truck")
# CenterPoint's per-class gates (metres) for nuScenes
DISTANCE_GATE = {
    "car": 4.0, "truck": 4.0, "bus": 5.5, "trailer": 3.0, "pedestrian": 1.0, "motorcycle": 13.0, "bicycle": 3.0,
}  # fmt: skip


def track_scene(samples: list[tuple[str, int, list[dict]]], max_age: int = 3, min_score: float = 0.0) -> dict:
    """samples: (sample token, timestamp in us, detection boxes) in time order -> tracking boxes by token."""
    tracks: list[dict] = []  # id, name, position (2,), age
    next_id = 0
    out = {}
    previous_time = None
    for token, timestamp, detections in samples:
        dt = 0.0 if previous_time is None else (timestamp - previous_time) / 1e6
        previous_time = timestamp
        dets = [d for d in detections if d["detection_name"] in TRACKING_CLASSES and d["detection_score"] >= min_score]
        dets.sort(key=lambda d: -d["detection_score"])
        back = np.array([[d["translation"][0] - d["velocity"][0] * dt, d["translation"][1] - d["velocity"][1] * dt]
                         for d in dets]).reshape(-1, 2)  # fmt: skip
        # every (detection, track) pair of one class within the class's gate, closest first (ties: by index)
        names = np.array([d["detection_name"] for d in dets])
        track_names = np.array([t["name"] for t in tracks])
        track_positions = np.array([t["position"] for t in tracks]).reshape(-1, 2)
        distance = np.linalg.norm(back[:, None, :] - track_positions[None, :, :], axis=2)
        gates = np.array([DISTANCE_GATE[n] for n in names]).reshape(-1, 1)
        rows, cols = np.nonzero((names[:, None] == track_names[None, :]) & (distance <= gates))
        order = np.lexsort((cols, rows, distance[rows, cols]))
        pairs = zip(rows[order].tolist(), cols[order].tolist())
        det_track: dict[int, int] = {}
        used = set()
        for i, j in pairs:
            if i in det_track or j in used:
                continue
            det_track[i] = j
            used.add(j)
        boxes = []
        touched = set()
        for i, det in enumerate(dets):
            if i in det_track:
                track = tracks[det_track[i]]
            else:
                track = {"id": next_id, "name": det["detection_name"]}
                next_id += 1
                tracks.append(track)
            track["position"] = np.array(det["translation"][:2])
            track["age"] = 0
            touched.add(track["id"])
            boxes.append(
                {
                    "sample_token": token,
                    "translation": det["translation"],
                    "size": det["size"],
                    "rotation": det["rotation"],
                    "velocity": det["velocity"],
                    "tracking_id": str(track["id"]),
                    "tracking_name": det["detection_name"],
                    "tracking_score": det["detection_score"],
                }
            )
        for track in tracks:
            if track["id"] not in touched:
                track["age"] += 1
        tracks = [t for t in tracks if t["age"] <= max_age]
        out[token] = boxes
    return out


def track_results(detections: dict[str, list[dict]], nusc) -> dict[str, list[dict]]:
    """Tracks for every scene whose samples appear in `detections` (a devkit NuScenes supplies the order)."""
    out = {}
    for scene in nusc.scene:
        token = scene["first_sample_token"]
        samples = []
        while token:
            sample = nusc.get("sample", token)
            if token in detections:
                samples.append((token, sample["timestamp"], detections[token]))
            token = sample["next"]
        if samples:
            out.update(track_scene(samples))
    return out
