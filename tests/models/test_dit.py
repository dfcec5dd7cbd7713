"""UniMVM at a tiny size: shapes, the ring's positions, masks, determinism, save/load, refusals, an overfit."""

import json
import pickle

import numpy as np
import pytest
import torch

from dreamdrive.core.errors import DreamdriveError
from dreamdrive.models.dit import PRESETS, DiTConfig, UniMVM, ring_position_embedding
from dreamdrive.pipelines.video import SceneTensors, sample_window, video_loss

TINY = DiTConfig(views=3, frames=3, latent_size=(4, 4), frame_stride=1, hidden=32, depth=2, heads=2,
                 layout_factor=2, layout_width=8)  # fmt: skip


def inputs(config: DiTConfig, batch: int = 2, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    shape = (batch, config.frames, config.views, config.latent_channels, *config.latent_size)
    x = torch.randn(shape, generator=g)
    layouts = (torch.rand(batch, config.frames, config.views, 13, *config.layout_size, generator=g) > 0.9).float()
    mask = torch.zeros(batch, config.frames, config.views, 1, *config.latent_size)
    return x, torch.rand(batch, generator=g), mask, layouts, torch.randn(batch, 384, generator=g)


def perturbed(config: DiTConfig, seed: int = 0) -> UniMVM:
    torch.manual_seed(seed)
    model = UniMVM(config)
    for p in model.parameters():  # leave the zero start, so that outputs depend on every input
        torch.nn.init.normal_(p, std=0.05)
    return model


def test_shapes_zero_start_and_refusals():
    torch.manual_seed(0)
    model = UniMVM(TINY)
    x, t, mask, layouts, text = inputs(TINY)
    out = model(x, t, x, mask, layouts, text)
    assert out.shape == x.shape and not out.any()  # adaLN-zero and a zero output layer
    with pytest.raises(DreamdriveError, match="got latents of shape"):
        model(x[:, :, :2], t, x[:, :, :2], mask[:, :, :2], layouts[:, :, :2], text)
    with pytest.raises(DreamdriveError, match="layouts must be"):
        model(x, t, x, mask, layouts[..., :2, :], text)
    with pytest.raises(DreamdriveError, match="must divide by the patch"):
        DiTConfig(latent_size=(5, 14))
    assert PRESETS["base"].image_size == (256, 448) and PRESETS["base"].views == 6 and PRESETS["base"].frames == 8


def test_ring_positions_wrap_around():
    """The last column's position is as close to the first column's as any two neighbours are."""
    embedding = ring_position_embedding(1, 12, 32)  # one row, twelve columns around the ring
    neighbour = torch.linalg.norm(embedding[1] - embedding[0])
    assert torch.allclose(torch.linalg.norm(embedding[11] - embedding[0]), neighbour, atol=1e-5)
    assert torch.linalg.norm(embedding[6] - embedding[0]) > 1.5 * neighbour


def test_views_talk_through_spatial_attention_and_frames_through_time():
    """A change in one view's latent at one frame reaches the other views and the other frames."""
    model = perturbed(TINY)
    x, t, mask, layouts, text = inputs(TINY, batch=1)
    before = model(x, t, x, mask, layouts, text)
    changed = x.clone()
    changed[0, 0, 0] += 1.0
    after = model(changed, t, changed, mask, layouts, text)
    assert (after - before)[0, 0, 1:].abs().max() > 1e-4  # other views, same frame
    assert (after - before)[0, 1:, 0].abs().max() > 1e-4  # same view, other frames
    assert (model(x, t, x, mask, torch.zeros_like(layouts), text) - before).abs().max() > 1e-4  # layouts matter


def test_same_seed_same_bytes_and_save_load(tmp_path):
    a, b = perturbed(TINY, 1), perturbed(TINY, 1)
    x, t, mask, layouts, text = inputs(TINY, batch=1)
    one = sample_window(a, x, mask, layouts, text, torch.Generator().manual_seed(5), steps=3)
    two = sample_window(b, x, mask, layouts, text, torch.Generator().manual_seed(5), steps=3)
    assert torch.equal(one, two)
    assert not torch.equal(one, sample_window(a, x, mask, layouts, text, torch.Generator().manual_seed(6), steps=3))
    folder = a.save(tmp_path / "dit")
    loaded = UniMVM.load(folder)
    assert loaded.config == TINY
    assert torch.equal(sample_window(loaded, x, mask, layouts, text, torch.Generator().manual_seed(5), steps=3), one)
    record = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**record, "cross_view": True}))
    with pytest.raises(DreamdriveError, match=r"unknown DiTConfig keys \['cross_view'\]"):
        UniMVM.load(folder)
    legacy = tmp_path / "legacy"
    legacy.mkdir()
    (legacy / "model.pt").write_bytes(pickle.dumps({"weights": 1}))
    with pytest.raises(DreamdriveError, match="pickled checkpoint"):
        UniMVM.load(legacy)


def test_given_content_is_kept_exactly():
    """Whatever the mask gives comes out of the sampler unchanged (first frame, or one view throughout)."""
    model = perturbed(TINY, 2)
    x, _, mask, layouts, text = inputs(TINY, batch=1)
    mask[0, 0] = 1
    mask[0, :, 1] = 1
    out = sample_window(model, x, mask, layouts, text, torch.Generator().manual_seed(0), steps=4)
    assert torch.equal(out[0, 0], x[0, 0]) and torch.equal(out[0, :, 1], x[0, :, 1])
    assert not torch.allclose(out[0, 1:, 0], x[0, 1:, 0])


def test_overfit_one_clip():
    """On one clip the loss falls at least ten-fold and the sample, given nothing, reproduces the clip."""
    config = DiTConfig(views=6, frames=3, latent_size=(2, 2), frame_stride=1, patch=1, hidden=64, depth=2, heads=4,
                       layout_factor=1, layout_width=8, drop_condition=0.0)  # fmt: skip
    g = torch.Generator().manual_seed(0)
    latents = torch.randn(3, 6, 4, 2, 2, generator=g).numpy().astype(np.float16)
    layouts = np.zeros((3, 6, 13, 2, 2), np.uint8)
    scene = SceneTensors("one", latents, layouts, np.zeros(384, np.float32))
    torch.manual_seed(0)
    model = UniMVM(config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3)
    losses = []
    for step in range(400):
        loss = video_loss(model, [scene], 8, torch.Generator().manual_seed(step))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    assert np.mean(losses[-20:]) < np.mean(losses[:10]) / 10, (losses[:10], losses[-20:])
    target = torch.from_numpy(latents.astype(np.float32))[None]
    mask = torch.zeros(1, 3, 6, 1, 2, 2)
    sample = sample_window(model.eval(), torch.zeros_like(target), mask, torch.zeros(1, 3, 6, 13, 2, 2),
                           torch.zeros(1, 384), torch.Generator().manual_seed(0), steps=20, guidance=1.0)  # fmt: skip
    error = float((sample - target).pow(2).mean())
    assert error < 0.05 * float(target.pow(2).mean()), error
