"""The world model end to end at a tiny size: autoencoder and video training on a procedural build, resumed
runs, generation in each UniMVM mode written as a nuScenes-format dataset, and refusals."""

import json

import numpy as np
import pytest
import torch
from nuscenes.nuscenes import NuScenes
from safetensors.torch import load_file

from dreamdrive.core.errors import DreamdriveError
from dreamdrive.files import load_image
from dreamdrive.models.dit import DiTConfig
from dreamdrive.models.vae import VAEConfig
from dreamdrive.nusc.reader import NuscDataset
from dreamdrive.pipelines.vae import load_vae, reconstruct, train_vae
from dreamdrive.pipelines.video import (
    FRONT,
    MODES,
    encode_frames,
    generate_latents,
    generate_video,
    load_video_model,
    scene_images,
    scene_layouts,
    train_video,
)
from dreamdrive.train.loop import LoopConfig

VAE = VAEConfig(widths=(8, 8, 16, 16), blocks=1)
DIT = DiTConfig(latent_size=(12, 20), frames=3, frame_stride=2, hidden=32, depth=1, heads=2, layout_factor=2,
                layout_width=8)  # fmt: skip


@pytest.fixture(scope="module")
def models(tiny_world, tmp_path_factory):
    root = tmp_path_factory.mktemp("world-model")
    vae = train_vae(root / "vae", [tiny_world], split=None, crop=32, config=VAE,
                    loop=LoopConfig(steps=30, learning_rate=3e-3, warmup=2, save_every=30))  # fmt: skip
    video = train_video(root / "video", [tiny_world], vae, split=None, batch_size=2, config=DIT,
                        loop=LoopConfig(steps=4, learning_rate=1e-3, warmup=1, save_every=2))  # fmt: skip
    return vae, video


def test_training_writes_models_caches_scenes_and_continues_to_the_same_weights(models, tiny_world, tmp_path):
    vae, video = models
    autoencoder = load_vae(vae)
    assert autoencoder.config.latent_scale != 1.0  # the latent normalisation was measured and stored
    assert len(list((video.parent / "scenes").glob("*.npz"))) == 3
    assert sorted(p.name for p in (video.parent / "samples").glob("*.png")) == ["000002.png", "000004.png"]
    mtime = (video / "model.safetensors").stat().st_mtime_ns
    again = train_video(video.parent, [tiny_world], vae, split=None, batch_size=2, config=DIT,
                        loop=LoopConfig(steps=4, learning_rate=1e-3, warmup=1, save_every=2))  # fmt: skip
    assert again == video and (video / "model.safetensors").stat().st_mtime_ns == mtime  # a finished run is kept
    short = train_video(tmp_path / "short", [tiny_world], vae, split=None, batch_size=2, config=DIT,
                        loop=LoopConfig(steps=2, learning_rate=1e-3, warmup=1, save_every=2))  # fmt: skip
    assert short.is_dir()
    longer = train_video(tmp_path / "short", [tiny_world], vae, split=None, batch_size=2, config=DIT,
                         loop=LoopConfig(steps=4, learning_rate=1e-3, warmup=1, save_every=2))  # fmt: skip
    a, b = load_file(str(video / "model.safetensors")), load_file(str(longer / "model.safetensors"))
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)


@pytest.mark.parametrize("mode", ["first-frame", "front-view", "none"])
def test_generation_writes_a_dataset_the_devkit_loads(models, tiny_world, tmp_path, mode):
    vae, video = models
    source = NuscDataset(tiny_world)
    scene = source.scene_names[0]
    record = generate_video(tiny_world, scene, tmp_path / "out", video, vae, mode, frames=5, steps=2, seed=1)
    assert record["frames"] == 5 and record["source_frames"] == [0, 2, 4, 6, 8]
    nusc = NuScenes("v1.0-dreamdrive", str(tmp_path / "out" / "dataset"), verbose=False)
    assert len(nusc.scene) == 1 and nusc.sample_annotation
    generated = NuscDataset(tmp_path / "out" / "dataset").clip(scene)
    real = source.clip(scene)
    assert [f.timestamp for f in generated.frames] == [real.frames[i].timestamp for i in (0, 2, 4, 6, 8)]
    assert set(generated.frames[0].images) == set(real.rig.names)
    assert all(any(a.boxes[t] is not None for a in generated.agents) for t in range(5))  # boxes on every frame
    images = scene_images(generated, (96, 160))  # (T, V, H, W, 3)
    truth = scene_images(real.subset([0, 2, 4, 6, 8], every_key=True), (96, 160))
    recon = reconstruct(load_vae(vae), truth.reshape(-1, 96, 160, 3)).reshape(truth.shape)

    def error(a, b):  # mean absolute difference, grey levels
        return float(np.abs(a.astype(int) - b.astype(int)).mean())

    given = {"first-frame": (0, slice(None)), "front-view": (slice(None), FRONT), "none": None}[mode]
    if given is not None:  # given content comes back as the autoencoder's reconstruction, up to the JPEG's error
        assert error(images[given], recon[given]) < 1.5
    assert (tmp_path / "out" / "video.mp4").stat().st_size > 1000
    assert load_image(tmp_path / "out" / "real_vs_generated.png").shape[1] == 6 * 160
    assert json.loads((tmp_path / "out" / "generation.json").read_text())["mask"] == mode


def test_masks_hold_in_latent_space_across_windows(models, tiny_world):
    """Five model frames in windows of three: given latents come back exactly, the rest is generated."""
    vae, video = models
    model, autoencoder = load_video_model(video), load_vae(vae)
    clip = NuscDataset(tiny_world).clip("proc-004-0000").subset([0, 2, 4, 6, 8], every_key=True)
    layouts = scene_layouts(clip, model.config)
    real = encode_frames(autoencoder, scene_images(clip, model.config.image_size))
    truth = torch.from_numpy(real)
    for mode in MODES:
        out = generate_latents(model, layouts, np.zeros(384, np.float32), mode, real, seed=0, steps=2)
        assert out.shape == truth.shape
        if mode == "first-frame":
            assert torch.equal(out[0], truth[0])
        if mode == "front-view":
            assert torch.equal(out[:, FRONT], truth[:, FRONT])
        assert not torch.allclose(out[1:, 0], truth[1:, 0], atol=1e-2)


def test_same_seed_same_bytes(models, tiny_world, tmp_path):
    vae, video = models
    scene = NuscDataset(tiny_world).scene_names[1]
    for name in ("a", "b"):
        generate_video(tiny_world, scene, tmp_path / name, video, vae, "first-frame", frames=3, steps=2, seed=4)
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a" / "dataset" / "samples").rglob("*.jpg"))
    assert files and all((tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes() for f in files)


def test_bad_inputs_are_refused(models, tiny_world, tmp_path):
    vae, video = models
    with pytest.raises(DreamdriveError, match="no scene named 'nope'"):
        generate_video(tiny_world, "nope", tmp_path / "x", video, vae)
    with pytest.raises(DreamdriveError, match="--mask 'sides' must be one of"):
        generate_video(tiny_world, "any", tmp_path / "x", video, vae, mode="sides")
    with pytest.raises(DreamdriveError, match="holds a vae, not a unimvm"):
        generate_video(tiny_world, "any", tmp_path / "x", vae, vae)
    with pytest.raises(DreamdriveError, match="no config.json"):
        generate_video(tiny_world, "any", tmp_path / "x", video, tmp_path / "nowhere")
    other = VAEConfig(latent_channels=8, widths=(8, 8, 16, 16), blocks=1)
    from dreamdrive.models.vae import Autoencoder

    Autoencoder(other).save(tmp_path / "vae8")
    with pytest.raises(DreamdriveError, match="does not match the video model"):
        generate_video(tiny_world, NuscDataset(tiny_world).scene_names[0], tmp_path / "x", video, tmp_path / "vae8")
    assert not (tmp_path / "x").exists()
