"""Write hand-made clips, read them back with the devkit and with our reader."""

import numpy as np
import pytest

from dreamdrive.core.camera import CAMERA_NAMES
from dreamdrive.core.categories import DETECTION_CLASSES
from dreamdrive.core.geometry import quat_to_rotmat
from dreamdrive.files import load_image
from dreamdrive.nusc.reader import NuscDataset
from dreamdrive.nusc.writer import write_dataset
from tests.helpers import SPLITS, evaluate_ground_truth, tree_digest


def test_devkit_sees_every_pose_calibration_and_box(clips, nusc):
    scenes = {s["name"]: s for s in nusc.scene}
    for clip in clips:
        scene = scenes[clip.name]
        samples = []
        token = scene["first_sample_token"]
        while token:
            samples.append(nusc.get("sample", token))
            token = samples[-1]["next"]
        key_frames = [clip.frames[i] for i in clip.key_indices]
        assert [s["timestamp"] for s in samples] == [f.timestamp for f in key_frames]
        for sample, index in zip(samples, clip.key_indices):
            frame = clip.frames[index]
            for channel in (*CAMERA_NAMES, "LIDAR_TOP"):
                sd = nusc.get("sample_data", sample["data"][channel])
                pose = nusc.get("ego_pose", sd["ego_pose_token"])
                assert np.allclose(pose["translation"], frame.global_T_ego.translation, atol=1e-6)
                assert np.allclose(quat_to_rotmat(pose["rotation"]), frame.global_T_ego.rotation, atol=1e-6)
                if channel != "LIDAR_TOP":
                    camera = clip.rig[channel]
                    calib = nusc.get("calibrated_sensor", sd["calibrated_sensor_token"])
                    assert np.allclose(calib["camera_intrinsic"], camera.intrinsic, atol=1e-6)
                    assert np.allclose(calib["translation"], camera.ego_T_cam.translation, atol=1e-6)
                    assert np.allclose(quat_to_rotmat(calib["rotation"]), camera.ego_T_cam.rotation, atol=1e-6)
                    assert (sd["width"], sd["height"]) == (camera.width, camera.height)
            anns = {
                nusc.get("sample_annotation", t)["translation"][0]: nusc.get("sample_annotation", t)
                for t in sample["anns"]
            }
            boxes = clip.boxes_at(index)
            assert len(anns) == len(boxes)
            for box in boxes:
                ann = min(anns.values(), key=lambda a: np.linalg.norm(np.array(a["translation"]) - box.center))
                assert np.allclose(ann["translation"], box.center, atol=1e-6)
                assert np.allclose(ann["size"], box.size, atol=1e-6)
                assert np.allclose(quat_to_rotmat(ann["rotation"]), quat_to_rotmat(box.quaternion), atol=1e-6)
                assert ann["category_name"] == box.category
                assert [nusc.get("attribute", t)["name"] for t in ann["attribute_tokens"]] == list(box.attributes)
                assert ann["num_lidar_pts"] == box.num_lidar_pts
    # sweeps: every camera has one image per frame, key frames in samples/, the others in sweeps/
    camera_sd = [sd for sd in nusc.sample_data if sd["sensor_modality"] == "camera"]
    assert len(camera_sd) == sum(len(c.frames) for c in clips) * 6
    assert all(sd["filename"].startswith("samples/" if sd["is_key_frame"] else "sweeps/") for sd in camera_sd)


def test_devkit_render_sample_data(nusc, tmp_path):
    sample = nusc.sample[2]
    out = tmp_path / "render.png"
    nusc.render_sample_data(sample["data"]["CAM_FRONT"], out_path=str(out), verbose=False)
    import matplotlib.pyplot as plt

    plt.close("all")
    assert out.stat().st_size > 10_000


def test_detection_eval_ground_truth_scores_ap_one(nusc, tmp_path):
    for split in SPLITS:
        metrics, evaluator = evaluate_ground_truth(nusc, split, tmp_path)
        present = {box.detection_name for box in evaluator.gt_boxes.all}
        assert present == set(DETECTION_CLASSES)
        for name in present:
            assert metrics.mean_dist_aps[name] == pytest.approx(1.0), name


def test_reader_returns_the_written_clips(clips, dataroot):
    dataset = NuscDataset(dataroot)
    assert dataset.scene_names == [c.name for c in clips]
    assert dataset.splits == SPLITS
    for clip in clips:
        again = dataset.clip(clip.name)
        assert again.location == clip.location and again.description == clip.description
        assert again.hdmap.to_json() == clip.hdmap.to_json()
        assert again.rig.names == clip.rig.names
        for a, b in zip(again.rig, clip.rig):
            assert np.allclose(a.intrinsic, b.intrinsic) and np.allclose(a.ego_T_cam.matrix, b.ego_T_cam.matrix)
        assert [f.timestamp for f in again.frames] == [f.timestamp for f in clip.frames]
        assert [f.is_key for f in again.frames] == [f.is_key for f in clip.frames]
        for f0, f1 in zip(clip.frames, again.frames):
            assert np.allclose(f0.global_T_ego.matrix, f1.global_T_ego.matrix, atol=1e-9)
            assert f1.camera_poses == {}
        original = {a.instance_id: a for a in clip.agents}
        assert set(original) == {a.instance_id for a in again.agents}
        for agent in again.agents:
            for b0, b1 in zip(original[agent.instance_id].boxes, agent.boxes):
                assert np.allclose(b0.center, b1.center, atol=1e-9) and np.allclose(b0.size, b1.size)
                assert b0.yaw == pytest.approx(b1.yaw) and np.allclose(b0.velocity, b1.velocity)
                assert b0.attributes == b1.attributes and b0.category == b1.category
        # JPEG is lossy: the stored image is close to the painted one
        for channel in CAMERA_NAMES:
            stored = load_image(again.frames[3].images[channel]).astype(float)
            assert np.abs(stored - clip.frames[3].images[channel]).mean() < 3.0


def test_same_clips_same_bytes_and_rerun_is_noop(clips, dataroot, tmp_path):
    other = tmp_path / "again"
    write_dataset(clips, other, splits=SPLITS)
    assert tree_digest(other) == tree_digest(dataroot)
    stamps = {p: p.stat().st_mtime_ns for p in other.rglob("*") if p.is_file()}
    write_dataset(clips, other, splits=SPLITS)
    assert stamps == {p: p.stat().st_mtime_ns for p in other.rglob("*") if p.is_file()}


def test_lidar_taken_at_its_own_pose_lands_at_the_same_global_points(tmp_path):
    # A sweep whose pose is not the default mounting at the frame's ego pose (real nuScenes: the LiDAR's own
    # ego pose and calibration) is written in the default mounting and read back at the same global points.
    from dreamdrive.core.geometry import Transform
    from dreamdrive.nusc.schema import global_T_lidar
    from dreamdrive.viz.handmade import handmade_clip

    clip = handmade_clip("handmade-lidar", 3, seconds=1.0, width=96, height=54)
    rng = np.random.default_rng(0)
    sweeps = {}
    for i in clip.key_indices:
        frame = clip.frames[i]
        frame.lidar = np.concatenate([rng.uniform(-30, 30, (50, 3)), rng.uniform(0, 1, (50, 2))], axis=1).astype(
            np.float32
        )
        frame.lidar_pose = frame.global_T_ego @ Transform.from_pose2d(1.2, 0.3, -1.4, 1.9)
        sweeps[frame.timestamp] = frame.lidar_pose.apply(frame.lidar[:, :3].astype(np.float64))
    write_dataset([clip], tmp_path)
    again = NuscDataset(tmp_path).clip(clip.name)
    for frame in again.frames:
        if frame.timestamp in sweeps:
            points = np.fromfile(frame.lidar, np.float32).reshape(-1, 5)[:, :3]
            assert np.abs(global_T_lidar(frame).apply(points.astype(np.float64)) - sweeps[frame.timestamp]).max() < 1e-4
