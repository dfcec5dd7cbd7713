"""The detector's parts against known answers: targets, lifting, decoding, weight loading; augmentation geometry."""

import numpy as np
import pytest
import torch

from dreamdrive.core.errors import DreamdriveError
from dreamdrive.perception.data import DetectorConfig, epoch_order, make_targets
from dreamdrive.perception.model import Backbone, Lifter, decode

CONFIG = DetectorConfig(image_size=(64, 32), bev_range=8.0, bev_cells=16, z_levels=(0.5, 1.5), width=8)


def test_targets_put_a_peak_and_the_regression_at_the_centre_cell():
    box = np.array([[2, 0.5, -1.5, 0.8, 1.9, 4.6, 1.7, 0.3, 2.0, -1.0]], np.float32)  # class 2 (bus) at (0.5, -1.5)
    targets = make_targets(box, CONFIG)
    # cell = 1 m: x = 0.5 -> column 8.5, y = -1.5 -> row 6.5
    assert targets["heatmap"][2, 6, 8] == 1.0 and targets["heatmap"].max() == 1.0
    assert targets["heatmap"][[0, 1, 3]].max() == 0.0
    assert targets["target_index"][0] == 6 * 16 + 8 and targets["target_mask"].tolist()[:2] == [1.0, 0.0]
    expected = [0.5, 0.5, 0.8, np.log(1.9), np.log(4.6), np.log(1.7), np.sin(0.3), np.cos(0.3), 2.0, -1.0]
    assert targets["target"][0] == pytest.approx(expected, abs=1e-6)


def test_decoding_a_perfect_prediction_gives_the_boxes_back():
    boxes = np.array(
        [[0, 3.2, 2.7, 0.9, 1.9, 4.6, 1.7, -2.0, 5.0, 1.0], [5, -4.4, -0.6, 0.8, 0.7, 0.7, 1.8, 1.0, 0.0, 1.2]],
        np.float32,
    )
    targets = make_targets(boxes, CONFIG)
    heat = torch.from_numpy(targets["heatmap"])[None]
    logits = torch.log(heat.clamp(1e-6, 1 - 1e-6) / (1 - heat.clamp(1e-6, 1 - 1e-6)))
    regression = torch.zeros(1, 10, 16 * 16)
    for k in range(2):
        regression[0, :, targets["target_index"][k]] = torch.from_numpy(targets["target"][k])
    [decoded] = decode(logits, regression.reshape(1, 10, 16, 16), CONFIG, threshold=0.5)
    decoded = decoded[np.argsort(decoded[:, 0])]
    assert decoded[:, 0].tolist() == [0, 5] and decoded[:, 1] == pytest.approx(1.0, abs=1e-4)
    assert decoded[:, 2:] == pytest.approx(boxes[:, 1:], abs=1e-4)


def test_lifting_samples_the_pixel_a_voxel_projects_to():
    # one camera at the ego origin looking along +x (camera axes: x right = -y ego, y down = -z ego, z forward = x ego)
    ref_T_cam = torch.eye(4)
    ref_T_cam[:3, :3] = torch.tensor([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])
    intrinsics = torch.tensor([[32.0, 0.0, 32.0], [0.0, 32.0, 16.0], [0.0, 0.0, 1.0]])
    features = torch.zeros(1, 1, 1, 32, 64)
    features[0, 0, 0, :, 40:] = 1.0  # the right part of the image (u >= 40) is hot
    lifted = Lifter(CONFIG)(features, intrinsics[None, None], ref_T_cam[None, None])  # (1, Z, Y, X)
    # a voxel at x = 5.5 m, y = -2.5 m (row 5, column 13), z = 0.5 m lands at u = 32 + 32 * 2.5 / 5.5 = 46.5: hot
    assert lifted[0, 0, 5, 13] == pytest.approx(1.0)
    # straight ahead (y = +0.5, row 8): u = 32 - 32 * 0.5 / 5.5 = 29.1: cold; behind the camera (x < 0): nothing
    assert lifted[0, 0, 8, 13] == 0.0 and lifted[0, :, :, :8].abs().max() == 0.0


def test_backbone_loads_resnet_named_weights_and_refuses_misfits(tmp_path):
    torch.manual_seed(0)
    source = Backbone(64, 64)
    state = {k: v for k, v in source.state_dict().items() if not k.startswith(("lateral", "smooth"))}
    state["fc.weight"] = torch.zeros(1000, 512)  # a classifier the backbone does not have is ignored
    torch.save(state, tmp_path / "resnet18.pth")
    target = Backbone(64, 64)
    assert target.load_weights(tmp_path / "resnet18.pth") == len(state) - 1
    assert torch.equal(target.layer3[1].conv2.weight, source.layer3[1].conv2.weight)
    with pytest.raises(DreamdriveError, match="need width 64"):
        Backbone(32, 32).load_weights(tmp_path / "resnet18.pth")
    with pytest.raises(DreamdriveError, match="do not exist"):
        target.load_weights(tmp_path / "missing.pth")


def test_epoch_order_counts_each_source_by_its_ratio():
    order = epoch_order([10, 4], [1.0, 0.5], seed=0, epoch=0)
    assert sorted(i for s, i in order if s == 0) == list(range(10))
    assert len([1 for s, _ in order if s == 1]) == 2
    assert order == epoch_order([10, 4], [1.0, 0.5], seed=0, epoch=0)
    assert order != epoch_order([10, 4], [1.0, 0.5], seed=0, epoch=1)
    twice = epoch_order([3], [2.0], seed=1, epoch=0)
    assert sorted(i for _, i in twice) == [0, 0, 1, 1, 2, 2]
