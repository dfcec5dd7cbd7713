"""Generative insertion's training at a tiny size: the edit region, the paired tensors, a short resumable run
whose adapter knows its DiT, and the refusal of another DiT."""

import json

import numpy as np
import pytest
import torch

from dreamdrive.core.errors import DreamdriveError
from dreamdrive.models.dit import DiTConfig, UniMVM
from dreamdrive.pipelines.edit import edit_region, load_insertion, train_insertion
from dreamdrive.train.loop import LoopConfig
from dreamdrive.world.builder import WorldConfig

DIT = DiTConfig(views=6, frames=3, latent_size=(4, 8), frame_stride=3, hidden=32, depth=2, heads=2, layout_factor=2,
                layout_width=8)  # fmt: skip
WORLD = WorldConfig(scenes=2, seconds=1.0, seed=7, width=64, height=32, time_of_day=("night",))


def test_the_edit_region_grows_the_mask_and_marks_latent_cells():
    mask = np.zeros((1, 1, 32, 32), bool)
    mask[0, 0, 12:14, 12:14] = True
    region, obj = edit_region(mask, factor=8, grow=6)
    assert region.shape == obj.shape == (1, 1, 1, 4, 4)
    assert obj[0, 0, 0].tolist() == [[0, 0, 0, 0], [0, 1, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]
    assert region[0, 0, 0].sum() == 9 and region[0, 0, 0, :3, :3].all()  # pixels 6..19 span cells 0..2


@pytest.mark.slow
def test_a_short_run_trains_the_adapter_for_its_dit_and_refuses_another(tmp_path):
    torch.manual_seed(0)
    dit = UniMVM(DIT)
    for p in dit.parameters():
        torch.nn.init.normal_(p, std=0.05)
    dit.save(tmp_path / "dit")
    loop = LoopConfig(steps=4, learning_rate=1e-3, warmup=1, save_every=2)
    folder = train_insertion(tmp_path / "run", WORLD, model=tmp_path / "dit", loop=loop, batch_size=2)
    cached = sorted(p.name for p in (tmp_path / "run" / "pairs").iterdir())
    assert cached and all(name.endswith((".npz", ".none")) for name in cached)
    record = json.loads((folder / "config.json").read_text())
    assert record["_kind"] == "fusion-adapter" and record["base"]
    losses = json.loads((tmp_path / "run" / "training.json").read_text())["losses"]
    assert len(losses) == 4 and all(np.isfinite(losses))
    model = load_insertion(tmp_path / "run", model=tmp_path / "dit")
    assert not any(p.requires_grad for p in model.dit.parameters())
    torch.manual_seed(1)
    UniMVM(DIT).save(tmp_path / "other")
    with pytest.raises(DreamdriveError, match="trained with the video model"):
        load_insertion(tmp_path / "run", model=tmp_path / "other")
    with pytest.raises(DreamdriveError, match="must be rendered at the video model's 64x32"):
        train_insertion(tmp_path / "bad", WorldConfig(scenes=1, seconds=1.0, width=112, height=64),
                        model=tmp_path / "dit", loop=loop)  # fmt: skip
