"""Training: augmentation keeps boxes and cameras consistent, runs resume after a kill to the same weights."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from dreamdrive.perception.data import Augment, DetectionDataset, DetectorConfig, Mix, scene_samples
from dreamdrive.perception.train import TrainConfig, load_model, train, training_record

TINY = DetectorConfig(image_size=(64, 32), bev_cells=16, z_levels=(0.5, 1.5), width=8, bev_channels=8)


def _pixels(item, box_rows):
    """Pixels of the boxes' centres in every camera, from the sample's own intrinsics and poses."""
    centres = np.column_stack([box_rows[:, 1:4], np.ones(len(box_rows))])
    cam = np.linalg.inv(item["ref_T_cam"].numpy().astype(np.float64)) @ centres.T  # (V, 4, N)
    uvw = item["intrinsics"].numpy().astype(np.float64) @ cam[:, :3]
    return uvw[:, :2] / uvw[:, 2:3], cam[:, 2]


def test_augmentation_moves_boxes_and_cameras_together(tiny_world):
    refs = scene_samples(tiny_world, "proc_train")
    plain = DetectionDataset(refs, TINY)
    augmented = DetectionDataset(refs, TINY, Augment(), seed=3)
    from dreamdrive.perception.data import boxes_in_reference

    moved = 0
    for k in range(len(refs)):
        a, b = plain[k], augmented[k]
        clip = plain.cache.clip(refs[k].dataroot, refs[k].scene)
        frame = clip.frames[refs[k].frame]
        rows_a = boxes_in_reference(clip.boxes_at(refs[k].frame), frame.global_T_ego.inverse(), np.eye(4), TINY.classes)
        # the augmentation, recovered from the first camera's pose with and without it
        bev = b["ref_T_cam"][0].numpy().astype(np.float64) @ np.linalg.inv(a["ref_T_cam"][0].numpy().astype(np.float64))
        rows_b = boxes_in_reference(clip.boxes_at(refs[k].frame), frame.global_T_ego.inverse(), bev, TINY.classes)
        pixels_a, depth_a = _pixels(a, rows_a)
        pixels_b, depth_b = _pixels(b, rows_b)
        # every box lands on the same pixels (float32 poses: relative tolerance for points near a camera's plane)
        assert pixels_b == pytest.approx(pixels_a, rel=1e-4, abs=1e-2)
        assert depth_b == pytest.approx(depth_a, rel=1e-4, abs=1e-3)
        moved += not np.allclose(rows_a[:, 1:3], rows_b[:, 1:3])
    assert moved > 0


CHILD = """
import sys
from dreamdrive.perception.data import Mix
from dreamdrive.perception.train import TrainConfig, train
from tests.perception.test_training import TINY
train(Mix([(sys.argv[1], "proc_train")]), sys.argv[2], TrainConfig(epochs=3, batch_size=2, save_every=1), TINY)
"""


@pytest.fixture
def one_thread():
    """One CPU thread: with two, the same run in two processes can differ in the last bits (docs/errors.md)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    torch.set_num_threads(threads)


def test_a_killed_run_resumes_to_the_weights_of_an_uninterrupted_one(tiny_world, tmp_path, one_thread):
    mix = Mix([(str(tiny_world), "proc_train")])
    config = TrainConfig(epochs=3, batch_size=2, save_every=1)
    reference = train(mix, tmp_path / "reference", config, TINY)
    process = subprocess.Popen([sys.executable, "-c", CHILD, str(tiny_world), str(tmp_path / "killed")],
                               env=one_thread, cwd=os.getcwd())  # fmt: skip
    trainer = tmp_path / "killed" / "state" / "trainer.json"
    deadline = time.time() + 120
    while process.poll() is None and time.time() < deadline:
        if trainer.is_file() and json.loads(trainer.read_text())["step"] >= 3:
            break
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not (tmp_path / "killed" / "model").exists()
    resumed = train(mix, tmp_path / "killed", config, TINY)
    a, b = training_record(tmp_path / "reference"), training_record(tmp_path / "killed")
    assert a["steps"] == b["steps"] and len(a["history"]) == len(b["history"]) == 3
    for x, y in zip(a["history"], b["history"]):
        assert x == pytest.approx(y, rel=1e-5)
    weights_a, weights_b = (
        load_file(str(reference / "model.safetensors")),
        load_file(str(resumed / "model.safetensors")),
    )
    for name, tensor in weights_a.items():
        assert torch.allclose(tensor.float(), weights_b[name].float(), atol=1e-6), name
    mtime = (reference / "model.safetensors").stat().st_mtime_ns
    assert train(mix, tmp_path / "reference", config, TINY) == reference
    assert (reference / "model.safetensors").stat().st_mtime_ns == mtime
    assert load_model(tmp_path / "reference").config == TINY
