"""Soundness of a nuScenes-format dataset: every problem in its tables (and optionally its files), not the first.

What is checked, table by table:

- every token a record names exists in the table it names (scene -> log and
  samples, sample -> scene, sample_data -> sample, ego pose and calibration,
  annotations -> sample and instance, instance -> category and annotations),
  and every prev/next link names a record of the same table or is empty;
- rotations are finite unit quaternions (w, x, y, z), translations finite,
  box sizes finite and positive, camera intrinsics finite;
- timestamps increase along each scene's samples and each sensor's chain;
- with `files`: every sample_data file exists, images are not empty and point clouds hold whole points.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dreamdrive.core.geometry import UNIT_TOLERANCE

REFERENCES: tuple[tuple[str, str, str], ...] = (
    ("scene", "log_token", "log"),
    ("scene", "first_sample_token", "sample"),
    ("scene", "last_sample_token", "sample"),
    ("sample", "scene_token", "scene"),
    ("sample_data", "sample_token", "sample"),
    ("sample_data", "ego_pose_token", "ego_pose"),
    ("sample_data", "calibrated_sensor_token", "calibrated_sensor"),
    ("calibrated_sensor", "sensor_token", "sensor"),
    ("sample_annotation", "sample_token", "sample"),
    ("sample_annotation", "instance_token", "instance"),
    ("sample_annotation", "visibility_token", "visibility"),
    ("instance", "category_token", "category"),
    ("instance", "first_annotation_token", "sample_annotation"),
    ("instance", "last_annotation_token", "sample_annotation"),
)
LINKED = ("sample", "sample_data", "sample_annotation")
POSED = ("calibrated_sensor", "ego_pose", "sample_annotation")

# The fields each table's records need and their JSON kinds: "str", "int", "bool", "list".
FIELDS: dict[str, dict[str, str]] = {
    "category": {"token": "str", "name": "str"},
    "attribute": {"token": "str", "name": "str"},
    "visibility": {"token": "str", "level": "str"},
    "instance": {"token": "str", "category_token": "str", "nbr_annotations": "int", "first_annotation_token": "str",
                 "last_annotation_token": "str"},
    "sensor": {"token": "str", "channel": "str", "modality": "str"},
    "calibrated_sensor": {"token": "str", "sensor_token": "str", "translation": "list", "rotation": "list",
                          "camera_intrinsic": "list"},
    "ego_pose": {"token": "str", "timestamp": "int", "translation": "list", "rotation": "list"},
    "log": {"token": "str", "logfile": "str", "location": "str"},
    "scene": {"token": "str", "log_token": "str", "nbr_samples": "int", "first_sample_token": "str",
              "last_sample_token": "str", "name": "str", "description": "str"},
    "sample": {"token": "str", "timestamp": "int", "prev": "str", "next": "str", "scene_token": "str"},
    "sample_data": {"token": "str", "sample_token": "str", "ego_pose_token": "str", "calibrated_sensor_token": "str",
                    "timestamp": "int", "is_key_frame": "bool", "height": "int", "width": "int", "filename": "str",
                    "prev": "str", "next": "str"},
    "sample_annotation": {"token": "str", "sample_token": "str", "instance_token": "str", "visibility_token": "str",
                          "attribute_tokens": "list", "translation": "list", "size": "list", "rotation": "list",
                          "prev": "str", "next": "str", "num_lidar_pts": "int"},
    "map": {"token": "str", "log_tokens": "list", "filename": "str"},
}  # fmt: skip
KINDS = {"str": str, "int": int, "bool": bool, "list": list}


def check_shapes(tables: dict[str, list]) -> list[str]:
    """Problems with the tables' shape: a table that is not a list of records, a record without a field it needs
    or with a value of another kind, a token used twice."""
    problems = []
    for table, needed in FIELDS.items():
        rows = tables.get(table)
        if not isinstance(rows, list):
            problems.append(f"table {table} is not a list of records.")
            continue
        seen: set[str] = set()
        for k, record in enumerate(rows):
            if not isinstance(record, dict):
                problems.append(f"{table} record {k} is not an object.")
                continue
            where = f"{table} {record.get('token', f'record {k}')}"
            for field, kind in needed.items():
                value = record.get(field)
                wrong = not isinstance(value, KINDS[kind]) or (kind == "int" and isinstance(value, bool))
                if field in record and wrong:
                    problems.append(f"{where}: {field} {value!r} is not a {kind}.")
                elif field not in record:
                    problems.append(f"{where}: it has no {field}.")
            token = record.get("token")
            if isinstance(token, str):
                if token in seen:
                    problems.append(f"{where}: the token is used twice.")
                seen.add(token)
    return problems


def _finite(values, shape: tuple[int, ...]) -> np.ndarray | None:
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        return None
    return array if array.shape == shape and np.isfinite(array).all() else None


def check_tables(nusc) -> list[str]:
    """Problems in the tables of a devkit `NuScenes`, one line each, naming the table, token and field."""
    problems: list[str] = []
    tokens = {table: {record["token"] for record in getattr(nusc, table)} for table in
              {t for ref in REFERENCES for t in (ref[0], ref[2])} | {"attribute"}}  # fmt: skip
    # 1. References and links.
    for table, field, target in REFERENCES:
        for record in getattr(nusc, table):
            if record.get(field) not in tokens[target]:
                problems.append(f"{table} {record['token']}: {field} {record.get(field)!r} names no {target} record.")
    for record in nusc.sample_annotation:
        for token in record.get("attribute_tokens") or ():
            if token not in tokens["attribute"]:
                problems.append(f"sample_annotation {record['token']}: attribute {token!r} names no attribute record.")
    for table in LINKED:
        for record in getattr(nusc, table):
            for field in ("prev", "next"):
                if record.get(field, "") and record[field] not in tokens[table]:
                    problems.append(f"{table} {record['token']}: {field} {record[field]!r} names no {table} record.")
    # 2. Poses, boxes and intrinsics.
    for table in POSED:
        for record in getattr(nusc, table):
            where = f"{table} {record['token']}"
            rotation = _finite(record.get("rotation"), (4,))
            if rotation is None:
                problems.append(f"{where}: rotation {record.get('rotation')!r} is not 4 finite numbers.")
            elif abs(float(np.linalg.norm(rotation)) - 1.0) > UNIT_TOLERANCE:
                problems.append(f"{where}: rotation {rotation.tolist()} is not a unit quaternion "
                                f"(norm {np.linalg.norm(rotation):.6f}).")  # fmt: skip
            if _finite(record.get("translation"), (3,)) is None:
                problems.append(f"{where}: translation {record.get('translation')!r} is not 3 finite numbers.")
            if table == "sample_annotation":
                size = _finite(record.get("size"), (3,))
                if size is None or (size <= 0).any():
                    problems.append(f"{where}: size {record.get('size')!r} is not 3 finite positive numbers.")
    for record in nusc.calibrated_sensor:
        intrinsic = record.get("camera_intrinsic")
        if intrinsic and _finite(intrinsic, (3, 3)) is None:
            problems.append(f"calibrated_sensor {record['token']}: camera_intrinsic is not a finite 3 x 3 matrix.")
    # 3. Time order along each scene's samples and each sensor's chain.
    for table in ("sample", "sample_data"):
        index = {record["token"]: record for record in getattr(nusc, table)}
        for record in index.values():
            after = index.get(record.get("next", ""))
            if after is not None and after["timestamp"] <= record["timestamp"]:
                problems.append(f"{table} {record['token']}: the next record {after['token']} is not later "
                                f"({after['timestamp']} <= {record['timestamp']}).")  # fmt: skip
    return problems


POINT_BYTES = 20  # a LiDAR point in a .pcd.bin: x, y, z, intensity, ring as float32


def check_files(nusc, dataroot: str | Path) -> list[str]:
    """Problems with the files sample_data names: missing, an empty image, a point cloud cut mid-point."""
    problems = []
    for record in nusc.sample_data:
        path = Path(dataroot) / record["filename"]
        if not path.is_file():
            problems.append(f"sample_data {record['token']}: its file {path} does not exist.")
            continue
        size = path.stat().st_size
        if record.get("sensor_modality") == "camera" and size == 0:
            problems.append(f"sample_data {record['token']}: its image {path} is empty.")
        elif record.get("sensor_modality") == "lidar" and size % POINT_BYTES:
            problems.append(f"sample_data {record['token']}: its point cloud {path} is truncated ({size} bytes, not "
                            f"a multiple of {POINT_BYTES}).")  # fmt: skip
    return problems
