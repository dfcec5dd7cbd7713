"""A small procedural build, checked against the devkit and against its own pixels."""

import json

import numpy as np
import pytest

from dreamdrive.core.boxes import Box3D
from dreamdrive.core.categories import DETECTION_CLASSES
from dreamdrive.core.geometry import Transform
from dreamdrive.nusc.dense import load_dense
from dreamdrive.nusc.reader import NuscDataset
from dreamdrive.nusc.schema import DEFAULT_EGO_T_LIDAR
from dreamdrive.world.builder import WorldConfig, build_world
from tests.helpers import evaluate_ground_truth

CONFIG = WorldConfig(scenes=3, seconds=1.0, seed=0)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("world")
    build_world(root, CONFIG)
    return root


@pytest.fixture(scope="module")
def nusc(world):
    from nuscenes.nuscenes import NuScenes

    return NuScenes("v1.0-dreamdrive", str(world), verbose=False)


def test_ground_truth_scores_ap_one_for_all_ten_classes(world, nusc, tmp_path):
    metrics, evaluator = evaluate_ground_truth(nusc, "proc_all", tmp_path)
    assert {b.detection_name for b in evaluator.gt_boxes.all} == set(DETECTION_CLASSES)
    for name in DETECTION_CLASSES:
        assert metrics.mean_dist_aps[name] == pytest.approx(1.0), name


def _rect(points: np.ndarray) -> tuple[float, float, float, float]:
    return points[:, 0].min(), points[:, 1].min(), points[:, 0].max(), points[:, 1].max()


def _iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


# Classes whose meshes fill their boxes' extremes, so that the 2D box of the projected 3D box and the
# mask's bounding rectangle must agree; a cone's tip or a person's narrow body cannot reach a box's corners.
BOX_SHAPED = {"car", "truck", "bus", "trailer", "construction_vehicle", "barrier"}


def unoccluded_views(world):
    """(class, rectangle of the projected box, its outline, mask, depths in the mask, corner depths) per view."""
    from dreamdrive.core.categories import detection_class

    dataset = NuscDataset(world)
    for scene in dataset.scene_names:
        clip = dataset.clip(scene)
        instances = json.loads((world / "dreamdrive" / "dense" / scene / "instances.json").read_text())
        index_of = {name: int(k) for k, name in instances.items()}
        for i in clip.key_indices:
            frame = clip.frames[i]
            for camera in clip.rig:
                dense = load_dense(world, scene, camera.name, frame.timestamp)
                cam_T_global = camera.cam_T_ego @ frame.global_T_ego.inverse()
                for box in clip.boxes_at(i):
                    outline = box.project(camera, cam_T_global)
                    corners = camera.project_ego(frame.global_T_ego.inverse().apply(box.corners()))
                    if outline is None or not corners.in_image.all():
                        continue  # out of view or truncated at the image border
                    rect = _rect(outline)
                    if (rect[2] - rect[0]) * (rect[3] - rect[1]) < 400:
                        continue  # too small to judge in pixels
                    x0, y0 = int(np.floor(rect[0])), int(np.floor(rect[1]))
                    x1, y1 = int(np.ceil(rect[2])), int(np.ceil(rect[3]))
                    k = index_of[box.instance_id]
                    window_instance, window_depth = dense["instance"][y0:y1, x0:x1], dense["depth"][y0:y1, x0:x1]
                    nearer = (window_instance != k) & (window_depth > 0) & (window_depth < corners.depth.min() - 0.05)
                    mask = dense["instance"] == k
                    if nearer.any() or not mask.any():
                        continue  # something stands in front of it
                    yield detection_class(box.category), rect, outline, mask, dense["depth"][mask], corners.depth


def test_annotations_agree_with_pixels(world):
    import cv2

    ious: dict[str, list[float]] = {}
    for name, rect, outline, mask, depths, corner_depths in unoccluded_views(world):
        rows, cols = np.nonzero(mask)
        ious.setdefault(name, []).append(_iou(rect, (cols.min(), rows.min(), cols.max() + 1, rows.max() + 1)))
        # every pixel of the object lies inside its box's outline ...
        inside = np.zeros(mask.shape, np.uint8)
        cv2.fillPoly(inside, [np.round(outline * 16).astype(np.int32)], 1, cv2.LINE_8, 4)
        inside = cv2.dilate(inside, np.ones((3, 3), np.uint8))
        assert inside[mask].mean() >= 0.99, name
        # ... at a depth within the box's depth range
        assert depths.min() >= corner_depths.min() - 0.05 and depths.max() <= corner_depths.max() + 0.05, name
    checked = sum(len(v) for v in ious.values())
    assert checked >= 30 and len(ious) >= 6, f"too few unoccluded objects to judge: {ious.keys()}"
    boxy = [iou for name, values in ious.items() if name in BOX_SHAPED for iou in values]
    assert len(boxy) >= 5 and min(boxy) >= 0.9, f"box-shaped classes: worst IoU {min(boxy):.3f} of {len(boxy)}"
    others = [iou for name, values in ious.items() if name not in BOX_SHAPED for iou in values]
    assert np.median(others) >= 0.8  # thin and round objects: the mask fills most of the box's 2D extent


def test_lidar_points_match_annotations(world, nusc):
    counted, seen_near = 0, []
    for ann in nusc.sample_annotation:
        sample = nusc.get("sample", ann["sample_token"])
        sd = nusc.get("sample_data", sample["data"]["LIDAR_TOP"])
        points = np.fromfile(world / sd["filename"], dtype=np.float32).reshape(-1, 5)
        pose = nusc.get("ego_pose", sd["ego_pose_token"])
        global_T_ego = Transform.from_quat(pose["rotation"], pose["translation"])
        points_global = (global_T_ego @ DEFAULT_EGO_T_LIDAR).apply(points[:, :3])
        box = Box3D(
            np.array(ann["translation"]),
            np.array(ann["size"]),
            float(np.arctan2(2 * ann["rotation"][0] * ann["rotation"][3], 1 - 2 * ann["rotation"][3] ** 2)),
            ann["category_name"],
            ann["instance_token"],
        )
        assert int(box.contains(points_global).sum()) == ann["num_lidar_pts"]
        counted += 1
        distance = np.linalg.norm(np.array(ann["translation"][:2]) - global_T_ego.translation[:2])
        if distance < 25 and ann["visibility_token"] == "4":
            seen_near.append(ann["num_lidar_pts"] > 0)
    assert counted > 100
    assert np.mean(seen_near) > 0.9  # what the cameras see up close, the LiDAR hits too


def test_dense_sidecar_decodes(world):
    dataset = NuscDataset(world)
    clip = dataset.clip(dataset.scene_names[0])
    dense = load_dense(world, clip.name, "CAM_FRONT", clip.frames[0].timestamp)
    ground = dense["semantic"] == 1  # road
    assert ground.any()
    # road seen by a level camera: normals point up, which is -y in the camera frame
    assert np.median(dense["normal"][ground][:, 1]) < -0.95
    assert (dense["depth"][dense["semantic"] == 0] == 0).all()  # sky: nothing hit
