"""Layout and guidance maps: known answers, and agreement with the procedural world's exact renders."""

import numpy as np
import pytest

from dreamdrive.conditions.guidance import angular_error_degrees, edges, normals_from_depth
from dreamdrive.conditions.layout import box_layout, map_layout
from dreamdrive.core.boxes import Box3D
from dreamdrive.core.camera import CameraRig
from dreamdrive.core.categories import DETECTION_CLASSES
from dreamdrive.core.geometry import Transform
from dreamdrive.core.hdmap import MAP_CHANNELS, HDMap

# CAM_FRONT of the default rig at 320x180: f = 1266 * 0.2 = 253.2, principal point (160, 90),
# mounted at (1.70, 0, 1.51) in the ego frame looking along +x.
F, CX, CY, MOUNT_X, MOUNT_Z = 253.2, 160.0, 90.0, 1.70, 1.51


def pixel(x, y, z):
    """Hand projection into CAM_FRONT of an ego-frame point."""
    depth = x - MOUNT_X
    return CX - F * y / depth, CY - F * (z - MOUNT_Z) / depth


def test_box_layout_known_pixels_and_occlusion():
    camera = CameraRig.default(320, 180)["CAM_FRONT"]
    car = Box3D(np.array([15.0, 0.0, 0.8]), np.array([1.95, 4.62, 1.6]), 0.0, "vehicle.car", "car")
    truck = Box3D(np.array([30.0, 0.0, 1.5]), np.array([2.5, 7.0, 3.0]), 0.0, "vehicle.truck", "truck")
    layout = box_layout([truck, car], camera, camera.cam_T_ego)
    car_channel, truck_channel = layout[DETECTION_CLASSES.index("car")], layout[DETECTION_CLASSES.index("truck")]
    # the car's near face spans u in 160 -+ 22.5 and v from 87.9 (top, 1.6 m) to 124.8 (ground) at 10.99 m
    left, top = pixel(12.69, 0.975, 1.6)
    right, bottom = pixel(12.69, -0.975, 0.0)
    assert (left, right) == pytest.approx((137.5, 182.5), abs=0.1) and (top, bottom) == pytest.approx(
        (87.9, 124.8), abs=0.1
    )
    assert car_channel[105, 160] == 1 and truck_channel[105, 160] == 0  # the nearer car covers the truck
    assert car_channel[105, 130] == 0 and car_channel[130, 160] == 0  # outside the car's outline
    truck_top = pixel(26.5, 0.0, 3.0)[1]  # the truck rises above the car: its own channel shows there
    row = int((truck_top + top) / 2)
    assert truck_channel[row, 160] == 1 and car_channel[row, 160] == 0
    assert layout.sum(axis=0).max() == 1  # one class per pixel


def test_map_layout_known_pixels():
    camera = CameraRig.default(320, 180)["CAM_FRONT"]
    hdmap = HDMap(
        "m",
        lane_dividers=[np.array([[0.0, 2.0], [60.0, 2.0]])],
        road_boundaries=[np.array([[0.0, -5.0], [60.0, -5.0]])],
    )
    layout = map_layout(hdmap, camera, Transform.identity(), thickness=1)
    divider, boundary = layout[MAP_CHANNELS.index("lane_divider")], layout[MAP_CHANNELS.index("road_boundary")]
    u, v = pixel(10.0, 2.0, 0.0)  # (99.0, 136.1)
    assert divider[int(v) - 1 : int(v) + 2, int(u) - 1 : int(u) + 2].any()
    u, v = pixel(20.0, -5.0, 0.0)
    assert boundary[int(v) - 1 : int(v) + 2, int(u) - 1 : int(u) + 2].any()
    assert not layout[MAP_CHANNELS.index("ped_crossing")].any()
    assert not divider[:, 200:].any()  # the divider is on the left


def test_edges_find_a_square():
    image = np.zeros((64, 64, 3), np.uint8)
    image[16:48, 16:48] = 255
    found = edges(image)
    assert found[16, 30] == 255 or found[15, 30] == 255
    assert found[32, 32] == 0


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from dreamdrive.nusc.reader import NuscDataset
    from dreamdrive.world.builder import WorldConfig, build_world

    root = tmp_path_factory.mktemp("world")
    build_world(root, WorldConfig(scenes=1, seconds=0.5, seed=2))
    dataset = NuscDataset(root)
    return root, dataset.clip(dataset.scene_names[0])


def test_normals_from_depth_agree_with_the_renderer(world):
    from dreamdrive.nusc.dense import load_dense

    root, clip = world
    errors = {"road": [], "building": []}
    for camera in clip.rig:
        dense = load_dense(root, clip.name, camera.name, clip.frames[3].timestamp)
        normals = normals_from_depth(dense["depth"], camera.intrinsic)
        for name, index in (("road", 1), ("building", 5)):
            mask = (dense["semantic"] == index) & (np.linalg.norm(normals, axis=-1) > 0)
            errors[name].append(angular_error_degrees(normals[mask], dense["normal"][mask]))
    for name, values in errors.items():
        values = np.concatenate(values)
        assert len(values) > 10_000 and values.mean() <= 10.0, f"{name}: {values.mean():.2f} degrees"


def test_map_lines_fall_on_painted_markings(world):
    """Every painted lane-marking pixel lies within a few pixels of a projected divider line."""
    import cv2

    from dreamdrive.nusc.dense import load_dense

    root, clip = world
    distances = []
    for camera in clip.rig:
        frame = clip.frames[3]
        dense = load_dense(root, clip.name, camera.name, frame.timestamp)
        layout = map_layout(clip.hdmap, camera, frame.global_T_ego, thickness=1)
        lines = layout[MAP_CHANNELS.index("lane_divider")]
        if not lines.any():
            continue
        away = cv2.distanceTransform((1 - lines).astype(np.uint8), cv2.DIST_L2, 5)
        # lane markings 10-40 m away: nearer, a 0.15 m wide line is wider than the misplacement we look for
        marking = (dense["semantic"] == 3) & (dense["depth"] >= 10) & (dense["depth"] < 40)
        distances.append(away[marking])
    distances = np.concatenate(distances)
    assert len(distances) > 200
    assert np.median(distances) <= 1.5 and np.percentile(distances, 90) <= 3.0, (
        f"median {np.median(distances):.2f} px, 90th percentile {np.percentile(distances, 90):.2f} px"
    )


def test_asset_behind_an_object_is_masked_exactly_where_the_scene_is_nearer():
    from dreamdrive.conditions.guidance import asset_maps, asset_renderer
    from dreamdrive.world.assets import parametric_asset

    rig = CameraRig.default(320, 180)
    camera = rig["CAM_FRONT"]
    asset = parametric_asset("car", 0)
    renderer = asset_renderer(asset, camera.width, camera.height)
    try:
        global_T_ego = Transform.identity()
        global_T_cam = global_T_ego @ camera.ego_T_cam
        pose = Transform.from_pose2d(20.0, 0.0, 0.3, asset.info.size[2] / 2)
        empty = np.zeros((camera.height, camera.width), np.float32)
        _, alone = asset_maps(renderer, camera, global_T_cam, asset.info.asset_id, pose, empty)
        # a constructed scene: a wall 10 m ahead covering the left half of the image
        scene = np.zeros_like(empty)
        scene[:, : camera.width // 2] = 10.0
        obj, mask = asset_maps(renderer, camera, global_T_cam, asset.info.asset_id, pose, scene)
        # a wall behind the car hides nothing
        far_wall = np.full_like(empty, 40.0)
        _, behind = asset_maps(renderer, camera, global_T_cam, asset.info.asset_id, pose, far_wall)
    finally:
        renderer.release()
    left, right = slice(0, camera.width // 2), slice(camera.width // 2, camera.width)
    assert alone[:, left].sum() > 50 and alone[:, right].sum() > 50  # the car straddles the middle
    assert mask[:, left].sum() == 0  # hidden behind the nearer wall
    assert (mask[:, right] == alone[:, right]).all()  # untouched where the scene is empty
    assert (obj[mask == 0] == 0).all() and obj[mask == 1].max() > 0
    assert (behind == alone).all()


def test_lidar_depth_agrees_with_exact_depth(world):
    """Real nuScenes has no dense depth: LiDAR points projected and filled must match the exact depth."""
    from dreamdrive.conditions.guidance import lidar_depth
    from dreamdrive.nusc.dense import load_dense
    from dreamdrive.nusc.schema import DEFAULT_EGO_T_LIDAR
    from dreamdrive.nusc.writer import load_points

    root, clip = world
    frame = clip.frames[0]  # a key frame: it has a LiDAR sweep
    points = load_points(frame.lidar, "LiDAR")[:, :3]
    global_points = (frame.global_T_ego @ DEFAULT_EGO_T_LIDAR).apply(points)
    camera = clip.rig["CAM_FRONT"]
    projection = camera.project_ego(frame.global_T_ego.inverse().apply(global_points))
    estimate = lidar_depth(projection, camera)
    exact = load_dense(root, clip.name, camera.name, frame.timestamp)["depth"]
    # at the pixels LiDAR points hit, the depths agree (the LiDAR's own rendering quantises a little)
    hit = projection.in_image
    rows, cols = projection.pixels[hit, 1].astype(int), projection.pixels[hit, 0].astype(int)
    both = (exact[rows, cols] > 0) & (estimate[rows, cols] > 0)
    relative = np.abs(estimate[rows, cols][both] - exact[rows, cols][both]) / exact[rows, cols][both]
    assert both.sum() > 500 and np.median(relative) < 0.02
    assert (estimate > 0).mean() > (hit.sum() / estimate.size)  # holes between points are filled


def test_conditions_command(world, tmp_path):
    import subprocess
    import sys

    root, clip = world
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "dreamdrive.cli",
            "conditions",
            "--data",
            str(root),
            "--scene",
            clip.name,
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    written = sorted(p.name.rsplit("_", 1)[1] for p in tmp_path.glob("*.png"))
    assert written == ["boxes.png", "depth.png", "edges.png", "map.png", "normal.png"]


def test_relative_inverse_depth_is_aligned_to_anchors_exactly():
    from dreamdrive.conditions.guidance import align_inverse_depth

    rng = np.random.default_rng(0)
    truth = rng.uniform(2.0, 80.0, (36, 64))
    relative = 3.0 / truth + 0.2  # what a relative model outputs: inverse depth up to scale and shift
    rows, cols = rng.integers(0, 36, 50), rng.integers(0, 64, 50)
    aligned = align_inverse_depth(relative, rows, cols, truth[rows, cols])
    assert aligned == pytest.approx(truth, rel=1e-4)


def test_a_depth_model_from_a_local_folder(tmp_path):
    import torch
    from transformers import DPTConfig, DPTForDepthEstimation, DPTImageProcessor

    from dreamdrive.conditions.guidance import MonocularDepth
    from dreamdrive.core.errors import DreamdriveError
    from dreamdrive.core.geometry import Projection

    with pytest.raises(DreamdriveError, match="holds no depth model"):
        MonocularDepth(tmp_path / "missing")
    torch.manual_seed(0)  # a tiny randomly initialised DPT stands in for real weights
    config = DPTConfig(
        hidden_size=32, num_hidden_layers=4, num_attention_heads=4, intermediate_size=37, image_size=64,
        patch_size=16, backbone_out_indices=[0, 1, 2, 3], neck_hidden_sizes=[16, 16, 16, 16], fusion_hidden_size=16,
    )  # fmt: skip
    DPTForDepthEstimation(config).save_pretrained(tmp_path / "dpt")
    DPTImageProcessor(size={"height": 64, "width": 64}).save_pretrained(tmp_path / "dpt")
    rgb = np.random.default_rng(1).integers(0, 255, (90, 160, 3), dtype=np.uint8)
    relative = MonocularDepth(tmp_path / "dpt")
    raw = relative.raw(rgb)
    assert raw.shape == (90, 160) and np.isfinite(raw).all()
    with pytest.raises(DreamdriveError, match="LiDAR returns in view"):
        relative.predict(rgb)
    rng = np.random.default_rng(2)
    pixels = rng.uniform([0, 0], [160, 90], (100, 2))
    anchors = Projection(pixels, rng.uniform(5, 50, 100), np.ones(100, bool), np.ones(100, bool))
    depth = relative.predict(rgb, anchors)
    assert depth.shape == (90, 160) and (depth >= 0.5).all() and (depth <= 250).all()
    metric = MonocularDepth(tmp_path / "dpt", metric=True).predict(rgb)
    assert metric == pytest.approx(np.clip(raw, 0, None))
