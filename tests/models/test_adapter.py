"""The fusion adapter at a tiny size: shapes, the zero start, both fusions, refusals, save/load, an overfit."""

import json
import pickle

import pytest
import torch

from dreamdrive.core.errors import DreamdriveError
from dreamdrive.models.adapter import CONDITIONS, AdapterConfig, FusionAdapter, check_pair, preset, with_base
from dreamdrive.models.dit import PRESETS
from tests.models.test_dit import TINY, inputs, perturbed


def guidance(config: AdapterConfig, batch: int = 2, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(batch, config.frames, config.views, config.channels, *config.image_size, generator=g)


def test_shapes_and_the_zero_start_leave_the_dit_unchanged():
    dit = perturbed(TINY, 0)
    config = AdapterConfig.for_dit(TINY, width=8, blocks=(0, 1))
    torch.manual_seed(0)
    adapter = FusionAdapter(config)
    x, t, mask, layouts, text = inputs(TINY)
    residuals = adapter(guidance(config))
    tokens = TINY.frames * (4 // TINY.patch) * (TINY.views * 4 // TINY.patch)
    assert set(residuals) == {0, 1} and residuals[0].shape == (2 * TINY.frames, tokens // TINY.frames, TINY.hidden)
    plain = dit(x, t, x, mask, layouts, text)
    assert torch.equal(dit(x, t, x, mask, layouts, text, residuals=residuals), plain)  # zero-initialised injection
    loss = dit(x, t, x, mask, layouts, text, residuals=adapter(guidance(config))).square().mean()
    loss.backward()
    assert adapter.inject["0"].weight.grad.abs().sum() > 0  # the injection learns from the DiT's loss


@pytest.mark.parametrize("fusion", ["weights", "attention"])
def test_both_fusions_weigh_the_conditions(fusion):
    config = AdapterConfig.for_dit(TINY, width=8, fusion=fusion, blocks=(1,))
    torch.manual_seed(0)
    adapter = FusionAdapter(config)
    maps = guidance(config)
    weights = adapter.fusion_weights(adapter.encode(maps))
    assert weights.shape == (len(CONDITIONS),) and torch.isclose(weights.sum(), torch.tensor(1.0))
    assert adapter(maps)[1].shape[-1] == TINY.hidden


def test_refusals():
    with pytest.raises(DreamdriveError, match="must be distinct names"):
        AdapterConfig.for_dit(TINY, conditions=("depth", "albedo"))
    with pytest.raises(DreamdriveError, match="must be one of"):
        AdapterConfig.for_dit(TINY, fusion="sum")
    with pytest.raises(DreamdriveError, match="must be distinct, in 0..1"):
        AdapterConfig.for_dit(TINY, blocks=(0, 2))
    config = AdapterConfig.for_dit(TINY, width=8, blocks=(0,), conditions=("depth", "mask"))
    adapter = FusionAdapter(config)
    assert config.channels == 2
    with pytest.raises(DreamdriveError, match="needs guidance"):
        adapter(torch.zeros(1, TINY.frames, TINY.views, 9, *config.image_size))
    dit = perturbed(TINY, 0)
    check_pair(FusionAdapter(with_base(config, "abc")), dit, "abc")
    with pytest.raises(DreamdriveError, match="trained with the video model abc"):
        check_pair(FusionAdapter(with_base(config, "abc")), dit, "def")
    with pytest.raises(DreamdriveError, match="hidden differ"):
        check_pair(FusionAdapter(AdapterConfig.for_dit(TINY, hidden=64, blocks=(0,))), dit, "")
    assert preset("base", PRESETS["base"]).blocks == (0, 4, 8, 12) and preset("tiny", PRESETS["tiny"]).blocks == (
        0, 1, 2)  # fmt: skip
    with pytest.raises(DreamdriveError, match="'tiny' or 'base'"):
        preset("huge", TINY)


def test_same_seed_same_bytes_save_load_and_refusals(tmp_path):
    config = AdapterConfig.for_dit(TINY, width=8, blocks=(0, 1), fusion="attention", base="f00")
    torch.manual_seed(3)
    a = FusionAdapter(config)
    torch.manual_seed(3)
    b = FusionAdapter(config)
    for p in list(a.parameters()) + list(b.parameters()):
        torch.nn.init.normal_(p, std=0.05, generator=torch.Generator().manual_seed(p.numel()))
    maps = guidance(config)
    assert all(torch.equal(a(maps)[k], b(maps)[k]) for k in (0, 1))
    folder = a.save(tmp_path / "adapter")
    loaded = FusionAdapter.load(folder)
    assert loaded.config == config and all(torch.equal(loaded(maps)[k], a(maps)[k]) for k in (0, 1))
    record = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**record, "lighting": True}))
    with pytest.raises(DreamdriveError, match=r"unknown AdapterConfig keys \['lighting'\]"):
        FusionAdapter.load(folder)
    legacy = tmp_path / "legacy"
    legacy.mkdir()
    (legacy / "model.pt").write_bytes(pickle.dumps({"weights": 1}))
    with pytest.raises(DreamdriveError, match="pickled checkpoint"):
        FusionAdapter.load(legacy)


def test_overfit_the_adapter_steers_a_frozen_dit():
    """With the DiT frozen, the adapter alone learns to make the DiT predict a velocity that depends on the
    guidance: the loss on one batch falls at least 10x."""
    dit = perturbed(TINY, 4).requires_grad_(False)
    config = AdapterConfig.for_dit(TINY, width=8, blocks=(0, 1))
    torch.manual_seed(0)
    adapter = FusionAdapter(config)
    x, t, mask, layouts, text = inputs(TINY, batch=1)
    maps = guidance(config, batch=1)
    # a target that only the guidance explains: the object channels pooled to the latent grid
    obj = maps[:, :, :, 5:8].mean(3, keepdim=True)  # (1, T, V, 1, H, W)
    pooled = torch.nn.functional.avg_pool2d(obj.flatten(0, 2), TINY.vae_factor)  # ((T V), 1, h, w)
    target = (pooled.reshape(1, TINY.frames, TINY.views, 1, *TINY.latent_size) - 0.5).expand_as(x) * 4
    optimizer = torch.optim.Adam(adapter.parameters(), lr=3e-3)
    losses = []
    for _ in range(150):
        loss = (dit(x, t, x, mask, layouts, text, residuals=adapter(maps)) - target).square().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] / 10, (losses[0], losses[-1])
