"""Naive insertion on the procedural world: 200 automatic placements, the written dataset, its LiDAR and pixels."""

import json
from dataclasses import replace

import numpy as np
import pytest
from shapely.geometry import Polygon
from shapely.ops import unary_union

from dreamdrive.conditions.insert import (
    AssetChooser,
    InsertRequest,
    stop_rays_at_boxes,
)
from dreamdrive.core.categories import DETECTION_CLASSES
from dreamdrive.core.errors import DreamdriveError
from dreamdrive.core.geometry import Transform
from dreamdrive.nusc.schema import make_token
from dreamdrive.pipelines.insert import insert_dataset
from dreamdrive.world.assets import AssetLibrary
from tests.helpers import evaluate_ground_truth, tree_digest

REQUEST = InsertRequest(classes=("car", "truck", "pedestrian", "bicycle", "traffic_cone"), auto=3, seed=5)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from dreamdrive.world.builder import WorldConfig, build_world

    root = tmp_path_factory.mktemp("world")
    build_world(root, WorldConfig(scenes=2, seconds=2.0, seed=3))
    return root


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    library = AssetLibrary(tmp_path_factory.mktemp("assets"))
    library.ensure_builtin()
    return library


@pytest.fixture(scope="module")
def inserted(world, library, tmp_path_factory):
    out = tmp_path_factory.mktemp("inserted")
    version, reports = insert_dataset(world, out, REQUEST, library=library)
    return out, reports


def test_rays_stop_on_the_face_of_a_box_they_enter():
    lidar_T_box = Transform.from_pose2d(10.0, 0.0, 0.0, 0.0)  # a box 4 m long, 2 m wide and 2 m tall at x = 10
    points = np.array(
        [
            [20.0, 0.0, 0.0, 7.0, 1.0],  # behind the box: stops on its near face (x = 8), 5 cm inside
            [5.0, 0.0, 0.0, 7.0, 2.0],  # in front of the box: untouched
            [20.0, 5.0, 0.0, 7.0, 3.0],  # passes beside it
            [9.0, 0.0, 0.5, 7.0, 4.0],  # a return inside the box: moved to the face it entered
            [20.0, 2.0, 0.0, 7.0, 5.0],  # enters through the near face at y = 0.8, leaves through the side
        ],
        np.float32,
    )
    cut_points, cut = stop_rays_at_boxes(points, [lidar_T_box], [(2.0, 4.0, 2.0)])
    assert cut.tolist() == [True, False, False, True, True]
    assert cut_points[0, :3] == pytest.approx([8.05, 0.0, 0.0], abs=1e-5)
    for k in (3, 4):  # 5 cm along the ray past the point where it crosses x = 8
        direction = points[k, :3] / np.linalg.norm(points[k, :3])
        entry = points[k, :3] * 8.0 / points[k, 0]
        assert cut_points[k, :3] == pytest.approx(entry + 0.05 * direction, abs=1e-5)
    assert cut_points[4, 1] == pytest.approx(0.8 + 0.05 * 2 / np.hypot(20, 2), abs=1e-5)
    assert (cut_points[[1, 2]] == points[[1, 2]]).all() and (cut_points[:, 3:] == points[:, 3:]).all()


def test_two_hundred_automatic_insertions_are_clear_on_road_and_visible(world, library):
    """Placements drawn with every distance and side control: none overlaps an agent or the ego on any frame,
    none leaves the drivable area (checked with shapely on the boxes' corners), and each one's rendered
    silhouette survives the scene's occlusion in at least one camera on some key frame."""
    from dreamdrive.conditions.guidance import asset_renderer, render_inserted, scene_depth
    from dreamdrive.conditions.planner import InsertionPlanner
    from dreamdrive.nusc.reader import NuscDataset
    from dreamdrive.world.render import Environment, RenderObject

    dataset = NuscDataset(world)
    chooser = AssetChooser(library, InsertRequest(classes=tuple(DETECTION_CLASSES), auto=1))
    controls = [(d, s) for d in ("near", "mid", "far", "any") for s in ("left", "right", "any")]
    total, short = 0, 0
    for scene in dataset.scene_names:
        clip = dataset.clip(scene)
        planner = InsertionPlanner(clip, lambda i, channel, clip=clip: scene_depth(clip, i, channel))
        road = unary_union([Polygon(p).buffer(0) for p in clip.hdmap.drivable_areas])
        placements = []
        for k in range(100):
            distance, side = controls[k % len(controls)]
            found, _ = planner.auto(1, chooser.for_auto, np.random.default_rng([k, 1]), distance, side, attempts=100)
            short += not found
            placements += found
        assets = {p.asset.asset_id: chooser.asset(p.asset) for p in placements}
        renderer = asset_renderer(list(assets.values()), clip.rig.cameras[0].width, clip.rig.cameras[0].height)
        try:
            for placement in placements:
                boxes = placement.boxes(clip, "new")
                seen = 0
                for i, box in enumerate(boxes):
                    shape = Polygon(box.corners()[[0, 1, 5, 4], :2])
                    assert road.contains(shape), f"{placement.asset.asset_id} leaves the road on frame {i}"
                    for agent in clip.agents:
                        if agent.boxes[i] is not None:
                            assert not shape.intersects(Polygon(agent.boxes[i].corners()[[0, 1, 5, 4], :2])), (
                                agent.instance_id
                            )
                    ego = clip.frames[i].global_T_ego
                    ego_box = Polygon(
                        ego.apply(np.array([[2.31, 0.98, 0], [2.31, -0.98, 0], [-2.31, -0.98, 0], [-2.31, 0.98, 0]]))[
                            :, :2
                        ]
                    )
                    assert not shape.intersects(ego_box)
                    if not clip.frames[i].is_key or seen:
                        continue
                    objects = [RenderObject(placement.asset.asset_id, box.frame_T_box, 1)]
                    renderer.prepare(ego.translation, objects, Environment())
                    for camera in clip.rig:
                        _, global_T_ego = clip.frames[i].camera_pose(camera.name)
                        depth = scene_depth(clip, i, camera.name)
                        _, visible = render_inserted(renderer, camera, global_T_ego @ camera.ego_T_cam, objects, depth)
                        seen += int(visible.sum())
                assert seen > 0, f"{placement.asset.asset_id} is hidden in every camera"
        finally:
            renderer.release()
        total += len(placements)
    assert total >= 195 and short <= 5, (total, short)


def test_the_inserted_dataset_loads_and_ground_truth_scores_ap_one(inserted, tmp_path):
    from nuscenes.nuscenes import NuScenes

    out, reports = inserted
    nusc = NuScenes("v1.0-dreamdrive", str(out), verbose=False)
    assert sorted(s["name"] for s in nusc.scene) == ["proc-003-0000-naive", "proc-003-0001-naive"]
    new = {(r.scene, item.instance_id): item for r in reports for item in r.instances}
    assert len(new) == 6
    most_points = {}
    for annotation in nusc.sample_annotation:
        token = annotation["instance_token"]
        most_points[token] = max(most_points.get(token, 0), annotation["num_lidar_pts"])
    for scene, instance_id in new:  # the LiDAR sees every inserted object on some key frame
        assert most_points[make_token(scene, "instance", instance_id)] > 0, instance_id
    metrics, evaluator = evaluate_ground_truth(nusc, "proc_train", tmp_path)
    names = {b.detection_name for b in evaluator.gt_boxes.all}
    assert {item.kind for item in new.values()} & names
    for name in names:
        assert metrics.mean_dist_aps[name] == pytest.approx(1.0), name


def test_pixels_change_only_where_the_inserted_objects_show(world, inserted):
    from dreamdrive.files import load_image
    from dreamdrive.nusc.dense import load_dense
    from dreamdrive.nusc.reader import NuscDataset

    out, reports = inserted
    source, edited = NuscDataset(world), NuscDataset(out)
    report = reports[0]
    before, after = source.clip(report.source_scene), edited.clip(report.scene)
    instances = json.loads((out / "dreamdrive" / "dense" / report.scene / "instances.json").read_text())
    new_indices = [int(k) for k, v in instances.items() if v.startswith(report.scene)]
    assert len(new_indices) == 3
    changed_views = 0
    for i in before.key_indices:
        for channel in before.rig.names:
            timestamp = after.frames[i].timestamp
            mask = np.isin(load_dense(out, report.scene, channel, timestamp)["instance"], new_indices)
            original = load_image(before.frames[i].images[channel]).astype(int)
            now = load_image(after.frames[i].images[channel]).astype(int)
            if not mask.any():
                assert (original == now).all()  # untouched views keep their JPEG bytes
                continue
            changed_views += 1
            difference = np.abs(original - now).mean(axis=2)
            assert difference[~mask].mean() < 2.0  # only JPEG re-encoding outside the objects
            # the objects show only where they are nearer than the scene was
            scene = load_dense(world, report.source_scene, channel, timestamp)["depth"][mask]
            depth = load_dense(out, report.scene, channel, timestamp)["depth"][mask]
            assert ((scene == 0) | (depth <= scene + 0.05 + 1 / 128)).all()
    assert changed_views > 0


def test_the_oracle_renders_the_naive_placements_with_the_world_and_keeps_the_rest_as_built(
    world, library, inserted, tmp_path
):
    from nuscenes.nuscenes import NuScenes

    from dreamdrive.files import load_image
    from dreamdrive.nusc.dense import load_dense
    from dreamdrive.nusc.reader import NuscDataset

    naive_out, naive_reports = inserted
    out = tmp_path / "oracle"
    _, reports = insert_dataset(world, out, replace(REQUEST, mode="oracle"), library=library)
    # the same placements as naive insertion, and the same boxes in the devkit's tables
    for naive, oracle in zip(naive_reports, reports):
        assert [(i.asset_id, i.track) for i in naive.instances] == [(i.asset_id, i.track) for i in oracle.instances]
    nusc = NuScenes("v1.0-dreamdrive", str(out), verbose=False)
    naive_nusc = NuScenes("v1.0-dreamdrive", str(naive_out), verbose=False)

    def boxes(dataset, mode):
        scene_of = {s["token"]: s["name"] for s in dataset.scene}
        rows = []
        for a in dataset.sample_annotation:
            scene = scene_of[dataset.get("sample", a["sample_token"])["scene_token"]]
            instance = dataset.get("instance", a["instance_token"])
            rows.append((scene.replace(mode, "MODE"), dataset.get("category", instance["category_token"])["name"],
                         tuple(np.round(a["translation"], 3)), tuple(np.round(a["size"], 3)),
                         tuple(np.round(a["rotation"], 4))))  # fmt: skip
        return sorted(rows)

    assert boxes(nusc, "oracle") == boxes(naive_nusc, "naive")
    # every camera frame where no inserted object shows is the source's render, byte for byte, unless a
    # shadow or headlight of the object reaches it; frames where one shows change there, and cast shadows
    source, edited = NuscDataset(world), NuscDataset(out)
    same, hidden, shown = 0, 0, 0
    for report in reports:
        before, after = source.clip(report.source_scene), edited.clip(report.scene)
        instances = json.loads((out / "dreamdrive" / "dense" / report.scene / "instances.json").read_text())
        new = [int(k) for k, v in instances.items() if v.startswith(f"{report.scene}-ins")]
        assert len(new) == 3
        for i in before.key_indices:
            for channel in before.rig.names:
                mask = np.isin(load_dense(out, report.scene, channel, after.frames[i].timestamp)["instance"], new)
                original = load_image(before.frames[i].images[channel]).astype(int)
                now = load_image(after.frames[i].images[channel]).astype(int)
                if mask.any():
                    shown += 1
                    assert np.abs(original - now).max(axis=2)[mask].mean() > 5
                else:
                    hidden += 1
                    same += int((original == now).all())
    assert shown > 0 and same >= 0.8 * hidden
    with pytest.raises(DreamdriveError, match="not built by `dreamdrive world build`"):
        insert_dataset(naive_out, tmp_path / "x", replace(REQUEST, mode="oracle"), library=library)


def test_rerun_is_a_no_op_and_the_same_seed_gives_the_same_bytes(world, library, inserted, tmp_path):
    out, _ = inserted
    digest = tree_digest(out / "v1.0-dreamdrive")
    insert_dataset(world, out, REQUEST, library=library)
    assert tree_digest(out / "v1.0-dreamdrive") == digest
    again = tmp_path / "again"
    insert_dataset(world, again, REQUEST, library=library, scenes=["proc-003-0000"])
    first = tree_digest(out / "samples")
    second = tree_digest(again / "samples")
    assert second and all(first[path] == value for path, value in second.items())


def test_bad_requests_are_refused(world, library, tmp_path):
    with pytest.raises(DreamdriveError, match="no asset 'no-such-asset'"):
        insert_dataset(world, tmp_path / "a", InsertRequest(asset="no-such-asset", auto=1), library=library)
    with pytest.raises(DreamdriveError, match="leaves the drivable area"):
        insert_dataset(world, tmp_path / "b", InsertRequest(asset="car-00", at=(10.0, 60.0, 0.0)), library=library)
    with pytest.raises(DreamdriveError, match="exactly one of"):
        InsertRequest(asset="car-00", auto=2, at=(1.0, 2.0, 0.0))
    with pytest.raises(DreamdriveError, match="either an asset"):
        InsertRequest(auto=2)
    with pytest.raises(DreamdriveError, match="unknown classes"):
        InsertRequest(classes=("spaceship",), auto=2)
    with pytest.raises(DreamdriveError, match="not the source"):
        insert_dataset(world, world, InsertRequest(asset="car-00", auto=1), library=library)
    with pytest.raises(DreamdriveError, match="no scenes"):
        insert_dataset(world, tmp_path / "c", InsertRequest(asset="car-00", auto=1), ["nope"], library=library)
    with pytest.raises(DreamdriveError, match=r"mode 'magic' must be one of \['naive', 'generative', 'oracle'\]"):
        insert_dataset(world, tmp_path / "d", InsertRequest(asset="car-00", auto=1, mode="magic"), library=library)
    assert not (tmp_path / "d").exists()  # refused before anything is written
    empty = tmp_path / "empty.obj"
    empty.write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\n")
    with pytest.raises(DreamdriveError, match="has no faces"):
        library.add(empty, "car", asset_id="empty")


def test_cli_inserts_at_a_pose_and_writes_a_preview(world, library, tmp_path):
    import subprocess
    import sys

    def dreamdrive(*args):
        command = [sys.executable, "-m", "dreamdrive.cli", "insert", "--data", world, "--library", library.root, *args]
        return subprocess.run(list(map(str, command)), capture_output=True, text=True)

    # a car 12 m ahead and 3.5 m to the right of the ego's first pose, facing it
    result = dreamdrive(
        "--out", tmp_path / "a", "--asset", "car-02", "--at", "12,-3.5,180", "--scenes", "proc-003-0001"
    )
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "a" / "dreamdrive" / "insertions" / "proc-003-0001-naive.json").read_text())
    from dreamdrive.nusc.reader import NuscDataset

    ego = NuscDataset(world).clip("proc-003-0001").frames[0].global_T_ego
    x, y, yaw = ego.translation[0], ego.translation[1], ego.yaw
    expected = [x + 12 * np.cos(yaw) + 3.5 * np.sin(yaw), y + 12 * np.sin(yaw) - 3.5 * np.cos(yaw)]
    assert report["instances"][0]["track"][0][:2] == pytest.approx(expected, abs=1e-3)
    assert np.cos(report["instances"][0]["track"][0][2] - yaw) == pytest.approx(-1.0, abs=1e-6)
    assert (tmp_path / "a" / "previews" / "proc-003-0001-naive.png").is_file()
    result = dreamdrive("--out", tmp_path / "b", "--class", "car", "--auto", "1", "--distance", "near")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "b" / "previews" / "proc-003-0000-naive.png").stat().st_size > 10_000
    result = dreamdrive("--out", tmp_path / "c", "--class", "car", "--at", "5,nowhere,0")
    assert result.returncode == 2 and "--at takes x,y,yaw" in result.stderr


def test_a_killed_insertion_resumes_to_the_same_bytes(world, library, inserted, tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "killed"
    child = f"""
import sys
from dreamdrive.conditions.insert import InsertRequest
from dreamdrive.pipelines.insert import insert_dataset
from dreamdrive.world.assets import AssetLibrary
insert_dataset({str(world)!r}, {str(out)!r}, {REQUEST!r}, library=AssetLibrary({str(library.root)!r}))
"""
    process = subprocess.Popen([sys.executable, "-c", child], env=os.environ.copy())
    fragments = out / ".dreamdrive-staging" / "fragments"
    deadline = time.time() + 120
    while not (fragments.is_dir() and any(fragments.iterdir())) and process.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)  # during the second scene, after the first was committed
    process.wait()
    assert not (out / "v1.0-dreamdrive").exists()
    insert_dataset(world, out, REQUEST, library=library)
    reference, _ = inserted
    for folder in ("v1.0-dreamdrive", "samples", "sweeps", "dreamdrive"):
        assert tree_digest(out / folder) == tree_digest(reference / folder), folder


def test_conditions_of_an_edited_frame_include_the_object_and_mask_maps(inserted, library, tmp_path):
    import cv2

    from dreamdrive.conditions.pictures import condition_pictures
    from dreamdrive.nusc.reader import NuscDataset
    from dreamdrive.pipelines.insert import inserted_objects

    out, reports = inserted
    report = reports[1]
    best = report.best_view()
    clip = NuscDataset(out).clip(report.scene)
    objects = inserted_objects(out, clip, best.frame, library)
    assert len(objects) == 3
    written = condition_pictures(clip, best.frame, tmp_path, objects)
    assert [p.stem.rsplit("_", 1)[1] for p in written] == ["map", "boxes", "depth", "normal", "edges", "object", "mask"]
    mask = cv2.imread(str(written[-1]), cv2.IMREAD_GRAYSCALE)
    # the mask grid shows at least the pixels the insertion pasted into the best view
    assert (mask == 255).sum() >= best.pixels


def test_insertion_on_data_without_dense_depth_uses_the_lidar(world, library, tmp_path):
    """Real nuScenes has no dense sidecar: occlusion then comes from LiDAR depth, and no dense maps are written."""
    import shutil

    from nuscenes.nuscenes import NuScenes

    lidar_only = tmp_path / "lidar-only"
    shutil.copytree(world, lidar_only)
    shutil.rmtree(lidar_only / "dreamdrive" / "dense")
    request = InsertRequest(classes=("car",), auto=2, seed=8, with_originals=True)
    _, [report] = insert_dataset(lidar_only, tmp_path / "out", request, ["proc-003-0000"], library=library)
    assert not (tmp_path / "out" / "dreamdrive" / "dense").exists()
    splits = json.loads((tmp_path / "out" / "v1.0-dreamdrive" / "splits.json").read_text())
    assert splits["proc_train"] == ["proc-003-0000-naive", "proc-003-0000"]  # the edited clip and its original
    assert sorted(splits["insert_all"]) == ["proc-003-0000", "proc-003-0000-naive"]
    assert all(item.visible_pixels_max > 0 for item in report.instances)
    nusc = NuScenes("v1.0-dreamdrive", str(tmp_path / "out"), verbose=False)
    most = {}
    for annotation in nusc.sample_annotation:
        most[annotation["instance_token"]] = max(most.get(annotation["instance_token"], 0), annotation["num_lidar_pts"])
    for item in report.instances:
        assert most[make_token(report.scene, "instance", item.instance_id)] > 0
