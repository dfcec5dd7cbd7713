"""Boxes on sweeps, interpolated between key frames, against hand computation and the devkit."""

import numpy as np
import pytest

from dreamdrive.core.boxes import Box3D
from dreamdrive.core.camera import CameraRig
from dreamdrive.core.clip import Agent, Clip, Frame
from dreamdrive.core.geometry import Transform
from dreamdrive.nusc.reader import NuscDataset
from dreamdrive.nusc.writer import write_dataset

T0 = 1_600_000_000_000_000
STEP_US = 83_333  # 12 Hz


def make_clip() -> Clip:
    """13 frames, key frames 0, 6, 12. One car turns: its sweeps follow a curve the key frames do not tell."""
    rig = CameraRig.default(32, 18)
    image = np.full((18, 32, 3), 128, np.uint8)
    keys = {0: ((10.0, 0.0), 0.0), 6: ((16.0, 3.0), 0.6), 12: ((20.0, 3.0), 0.6)}
    boxes = []
    for i in range(13):
        if i in keys:
            (x, y), yaw = keys[i]
        else:  # a wiggle that interpolation cannot know
            x, y, yaw = 10.0 + i, 0.3 * i + np.sin(i), 0.05 * i
        boxes.append(
            Box3D(np.array([x, y, 0.8]), np.array([1.9, 4.5, 1.6]), yaw, "vehicle.car", "car-1", num_lidar_pts=5)
        )
    frames = [
        Frame(
            T0 + i * STEP_US,
            Transform.from_pose2d(0.5 * i, 0.0, 0.0),
            {c: image for c in rig.names},
            is_key=(i % 6 == 0),
        )
        for i in range(13)
    ]
    return Clip("interp", frames, [Agent("car-1", "vehicle.car", boxes)], rig, location="nowhere")


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    clip = make_clip()
    root = tmp_path_factory.mktemp("interp")
    write_dataset([clip], root)
    return clip, root


def test_sidecar_gives_exact_sweep_boxes(written):
    clip, root = written
    again = NuscDataset(root).clip("interp")
    for b0, b1 in zip(clip.agents[0].boxes, again.agents[0].boxes):
        assert np.allclose(b0.center, b1.center) and b0.yaw == pytest.approx(b1.yaw)


def test_interpolation_hand_computed(written):
    _, root = written
    boxes = NuscDataset(root).clip("interp", boxes="interpolate").agents[0].boxes
    # frame 2: a third of the way from key frame 0 to key frame 6 (timestamps are in the ratio 2:6)
    alpha = (2 * STEP_US) / (6 * STEP_US)
    assert np.allclose(boxes[2].center, [10 + alpha * 6, alpha * 3, 0.8], atol=1e-9)
    assert boxes[2].yaw == pytest.approx(alpha * 0.6)  # slerp of two yaws about z is linear in angle
    # frame 9: half-way from key frame 6 to key frame 12
    assert np.allclose(boxes[9].center, [18.0, 3.0, 0.8], atol=1e-9)
    assert boxes[9].yaw == pytest.approx(0.6)
    assert np.allclose(boxes[6].center, [16.0, 3.0, 0.8])


def test_interpolation_equals_devkit_get_boxes(written):
    _, root = written
    dataset = NuscDataset(root)
    clip = dataset.clip("interp", boxes="interpolate")
    nusc = dataset.nusc
    sd = nusc.get("sample_data", nusc.sample[0]["data"]["CAM_FRONT"])
    chain = [sd]
    while chain[-1]["next"]:
        chain.append(nusc.get("sample_data", chain[-1]["next"]))
    assert len(chain) == 13
    for i, record in enumerate(chain):
        (reference,) = nusc.get_boxes(record["token"])
        ours = clip.agents[0].boxes[i]
        assert np.allclose(ours.center, reference.center, atol=1e-9)
        assert np.allclose(ours.quaternion, reference.orientation.elements, atol=1e-9)
