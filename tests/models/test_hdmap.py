"""The HD-map generator at a tiny size: shapes, determinism, save/load, refusals, and an overfit on one pair."""

import json
import pickle

import numpy as np
import pytest
import torch

from dreamdrive.core.errors import DreamdriveError
from dreamdrive.models.hdmap import PRESETS, HDMapConfig, HDMapNet
from dreamdrive.nusc.reader import NuscDataset
from dreamdrive.pipelines.hdmap import hdmap_loss, load_generator, procedural_pairs, sample_maps

TINY = HDMapConfig(size=32, patch_m=51.2, widths=(8, 16), blocks=1, cond_dim=16)


@pytest.mark.parametrize("condition", ["controlnet", "concat"])
def test_shapes_and_a_zero_start(condition):
    torch.manual_seed(0)
    model = HDMapNet(HDMapConfig(size=32, widths=(8, 16, 16), condition=condition, cond_dim=16))
    x, trajectories = torch.randn(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    out = model(x, torch.rand(2), trajectories)
    assert out.shape == (2, 3, 32, 32)
    assert not out.any()  # the output conv starts at zero
    with pytest.raises(DreamdriveError, match="32x32 rasters"):
        model(torch.randn(1, 3, 64, 64), torch.rand(1), torch.rand(1, 3, 64, 64))


def test_same_seed_same_weights_and_same_maps(tmp_path):
    torch.manual_seed(0)
    a = HDMapNet(TINY)
    torch.manual_seed(0)
    b = HDMapNet(TINY)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    for p in a.parameters():  # leave the zero start, so that samples depend on the weights
        torch.nn.init.normal_(p, std=0.05)
    trajectories = np.random.default_rng(0).integers(0, 255, (2, 32, 32, 3), dtype=np.uint8)
    first, again = sample_maps(a, trajectories, seed=3, steps=4), sample_maps(a, trajectories, seed=3, steps=4)
    assert first.shape == (2, 3, 32, 32) and first.dtype == np.uint8 and np.array_equal(first, again)
    assert not np.array_equal(first, sample_maps(a, trajectories, seed=4, steps=4))


def test_save_load_round_trip_and_refusals(tmp_path):
    model = HDMapNet(TINY)
    folder = model.save(tmp_path / "model")
    loaded = HDMapNet.load(folder)
    assert loaded.config == TINY
    assert all(torch.equal(x, y) for x, y in zip(model.state_dict().values(), loaded.state_dict().values()))
    assert load_generator(tmp_path / "model").config == TINY
    record = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**record, "heads": 4}))
    with pytest.raises(DreamdriveError, match=r"unknown HDMapConfig keys \[.heads.\]"):
        HDMapNet.load(folder)
    (folder / "config.json").write_text(json.dumps({**record, "_kind": "detector"}))
    with pytest.raises(DreamdriveError, match="holds a detector, not a hdmap"):
        HDMapNet.load(folder)
    with pytest.raises(DreamdriveError, match="condition 'attention' must be one of"):
        HDMapConfig(condition="attention")
    legacy = tmp_path / "legacy"
    legacy.mkdir()
    (legacy / "model.pt").write_bytes(pickle.dumps({"weights": 1}))
    with pytest.raises(DreamdriveError, match="pickled checkpoint"):
        HDMapNet.load(legacy)
    assert set(PRESETS) == {"tiny", "base"} and PRESETS["base"].size == 256


def test_training_pairs_hold_the_town_map_and_the_trajectories():
    trajectories, maps = procedural_pairs(5, 3, HDMapConfig(size=64, patch_m=102.4, widths=(8, 16)))
    assert trajectories.shape == (3, 64, 64, 3) and maps.shape == (3, 3, 64, 64)
    assert set(np.unique(maps)) <= {0, 1} and maps[:, 0].any() and maps[:, 1].any()  # boundaries and dividers
    assert (trajectories[:, 24:40, 24:40] > 0).any(axis=(1, 2, 3)).all()  # the ego's path starts at the centre


def test_overfit_one_pair():
    """On one pair the loss falls at least ten-fold and the sampled map is the pair's map."""
    config = HDMapConfig(size=32, patch_m=102.4, widths=(16, 32), blocks=1, cond_dim=32, drop_condition=0.0)
    trajectories, maps = procedural_pairs(2, 1, config)
    torch.manual_seed(0)
    model = HDMapNet(config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    generator = torch.Generator().manual_seed(0)
    losses = []
    for _ in range(300):
        loss = hdmap_loss(model, trajectories, maps, 8, generator)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    assert np.mean(losses[-20:]) < np.mean(losses[:5]) / 10, (losses[:5], losses[-20:])
    sample = sample_maps(model.eval(), trajectories, seed=0, steps=20, guidance=1.0)[0]
    truth = maps[0] > 0
    iou = (truth & (sample > 0)).sum() / max((truth | (sample > 0)).sum(), 1)
    assert iou > 0.5, iou


def test_training_pairs_from_a_written_dataset_with_a_map(tiny_world):
    """The second source through the same interface: clips of any nuScenes-format dataset that carry a map."""
    from dreamdrive.pipelines.hdmap import clip_pairs

    dataset = NuscDataset(tiny_world)
    clip = dataset.clip(dataset.scene_names[0])
    config = HDMapConfig(size=64, patch_m=102.4, widths=(8, 16))
    trajectories, maps = clip_pairs(clip, config, window_s=1.0, every=6)
    assert len(trajectories) == len(range(0, len(clip.frames) - 12 + 1, 6)) and maps.shape[1:] == (3, 64, 64)
    assert maps[:, 0].any() and (trajectories[:, 28:36, 28:36] > 0).any()
    clip.hdmap = None
    with pytest.raises(DreamdriveError, match="has no map"):
        clip_pairs(clip, config)
