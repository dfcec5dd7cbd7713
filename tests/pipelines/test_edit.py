"""Generative insertion's training at a tiny size: the edit region, the paired tensors, a short resumable run
whose adapter knows its DiT, and the refusal of another DiT."""

import json

import cv2
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


def save_random_dit(folder) -> None:
    """A tiny DiT with weights large enough to act (its output layers start at zero), saved in `folder`."""
    torch.manual_seed(0)
    dit = UniMVM(DIT)
    for p in dit.parameters():
        torch.nn.init.normal_(p, std=0.05)
    dit.save(folder)


@pytest.mark.slow
def test_a_short_run_trains_the_adapter_for_its_dit_and_refuses_another(tmp_path):
    save_random_dit(tmp_path / "dit")
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


@pytest.fixture(scope="module")
def generative_setup(tmp_path_factory):
    """A tiny DiT, an adapter trained on it for a few steps, and a procedural dataset of its image size."""
    from dreamdrive.world.builder import build_world

    root = tmp_path_factory.mktemp("generative")
    save_random_dit(root / "dit")
    loop = LoopConfig(steps=2, learning_rate=1e-2, warmup=1, save_every=2)
    train_insertion(root / "run", WORLD, model=root / "dit", loop=loop, batch_size=1)
    data = root / "world"
    build_world(data, WorldConfig(scenes=1, seconds=1.0, seed=3, width=64, height=32, time_of_day=("night",)))
    return root, data


def _generative(root, data, out, seed=0):
    from dreamdrive.conditions.insert import InsertRequest
    from dreamdrive.pipelines.edit import GenerativeOptions
    from dreamdrive.pipelines.insert import insert_dataset

    request = InsertRequest(classes=("car",), auto=2, distance="near", mode="generative", seed=seed)
    options = GenerativeOptions(adapter=str(root / "run"), model=str(root / "dit"), steps=3)
    return insert_dataset(data, out, request, generative=options)


@pytest.mark.slow
def test_generative_insertion_changes_only_the_edit_region_and_is_deterministic(generative_setup, tmp_path):
    from nuscenes.nuscenes import NuScenes

    from dreamdrive.files import load_image
    from dreamdrive.nusc.dense import read_packed
    from dreamdrive.nusc.reader import NuscDataset
    from dreamdrive.nusc.writer import WriteOptions, encode_jpeg
    from dreamdrive.pipelines.edit import pixel_region

    root, data = generative_setup
    version, reports = _generative(root, data, tmp_path / "a")
    assert reports[0].mode == "generative" and reports[0].instances
    source, edited = NuscDataset(data).clip(reports[0].source_scene), NuscDataset(tmp_path / "a").clip(reports[0].scene)
    assert len(edited.frames) == len(source.frames)
    assert len(edited.agents) == len(source.agents) + len(reports[0].instances)
    # Outside the region grown around the inserted objects (their dense instances), the pixels are the source's:
    # exactly for views the objects do not reach (the same file); elsewhere, outside the 16 x 16 JPEG blocks
    # the region touches, within what re-encoding the source image once as JPEG at the writer's quality costs
    # there (+0.25 levels), the only change outside. Inside the region, something changed.
    new = {k for k, v in edited.dense_instances.items() if v.startswith(reports[0].scene)}
    changed = checked = 0
    for i, frame in enumerate(edited.frames):
        for name in edited.rig.names:
            instance = read_packed(frame.dense[name])[1]
            mask = np.isin(instance, list(new))
            before, after = load_image(source.frames[i].images[name]), load_image(frame.images[name])
            if not mask.any():
                assert np.array_equal(before, after)
                continue
            touched = cv2.resize(pixel_region(mask, 6).astype(np.float32), (4, 2), interpolation=cv2.INTER_AREA) > 0
            outside = ~np.kron(touched, np.ones((16, 16), bool))[: mask.shape[0], : mask.shape[1]]
            if outside.any():
                reencoded = cv2.imdecode(np.frombuffer(encode_jpeg(before, WriteOptions().jpeg_quality), np.uint8), 1)
                cost = np.abs(before.astype(int) - reencoded[..., ::-1].astype(int))[outside].mean()
                assert np.abs(before.astype(int) - after.astype(int))[outside].mean() <= cost + 0.25
                checked += 1
            changed += int(np.abs(before.astype(int) - after.astype(int))[mask].mean() > 1)
    assert changed > 0 and checked > 0
    assert (tmp_path / "a" / "previews" / f"{reports[0].scene}.png").is_file()
    assert (tmp_path / "a" / "previews" / f"{reports[0].scene}.mp4").stat().st_size > 0
    NuScenes(version.name, str(tmp_path / "a"), verbose=False)
    # The same job again: the same bytes; rerun in place: nothing rewritten.
    _generative(root, data, tmp_path / "b")
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a" / version.name).rglob("*") if p.is_file())
    for sub in ("samples", "sweeps"):
        files += sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a" / sub).rglob("*") if p.is_file())
    assert files and all((tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes() for f in files)
    stamps = {p: p.stat().st_mtime_ns for p in (tmp_path / "a").rglob("*") if p.is_file()}
    _generative(root, data, tmp_path / "a")
    assert stamps == {p: p.stat().st_mtime_ns for p in (tmp_path / "a").rglob("*") if p.is_file()}


def test_sampling_an_edit_keeps_the_source_outside_the_region_exactly():
    from dreamdrive.pipelines.edit import blend, pixel_region

    rng = np.random.default_rng(0)
    source, generated = rng.integers(0, 255, (2, 3, 32, 64, 3), np.uint8)
    mask = np.zeros((3, 32, 64), bool)
    mask[1, 10:12, 20:24] = True
    region = pixel_region(mask, 2)
    assert region[1].sum() == (2 + 4) * (4 + 4) and not region[0].any()
    out = blend(source, generated, region)
    assert np.array_equal(out[~region], source[~region]) and np.array_equal(out[region], generated[region])
    big = blend(np.zeros((3, 64, 128, 3), np.uint8), generated, region)  # resized to the source's size
    assert big.shape == (3, 64, 128, 3) and big[1].any() and not big[0].any()


@pytest.mark.slow
def test_generative_insertion_refuses_an_adapter_of_another_video_model(generative_setup, tmp_path):
    root, data = generative_setup
    torch.manual_seed(5)
    UniMVM(DIT).save(tmp_path / "other")
    from dreamdrive.pipelines.edit import GenerativeInserter, GenerativeOptions

    with pytest.raises(DreamdriveError, match="trained with the video model"):
        GenerativeInserter(GenerativeOptions(adapter=str(root / "run"), model=str(tmp_path / "other")))
    with pytest.raises(DreamdriveError, match="--steps"):
        GenerativeOptions(steps=0)


@pytest.mark.slow
def test_an_edit_started_at_almost_no_noise_returns_the_naive_composite(generative_setup):
    """The decoded change is added to the base, so the autoencoder's reconstruction error cancels: edited from
    noise level 1e-4, the output is the base inside the region (within the rounding of two decoded images to
    8 bits: a mean under half a level, none over 3) and the source, exactly, outside it."""
    from dreamdrive.pipelines.edit import pixel_region, sample_edit
    from dreamdrive.pipelines.vae import load_vae

    root, _ = generative_setup
    model, vae = load_insertion(root / "run", model=root / "dit"), load_vae(None)
    config = model.config
    rng = np.random.default_rng(0)
    source = rng.integers(0, 255, (3, 6, 32, 64, 3), np.uint8)
    mask = np.zeros((3, 6, 32, 64), bool)
    mask[:, 0, 10:20, 20:40] = True
    base = np.where(mask[..., None], np.uint8(200), source)
    guidance = np.zeros((3, 6, 9, 32, 64), np.float32)
    layouts = np.zeros((3, 6, 13, *config.layout_size), np.uint8)
    out = sample_edit(model, vae, source, guidance, mask, layouts, np.zeros(384, np.float32), steps=2, base=base,
                      strength=1e-4, smooth=2.0)  # fmt: skip
    region = pixel_region(mask, 6)
    assert np.array_equal(out[~region], source[~region])
    error = np.abs(out[region].astype(int) - base[region].astype(int))
    assert error.mean() < 0.5 and error.max() <= 3
    far = sample_edit(model, vae, source, guidance, mask, layouts, np.zeros(384, np.float32), steps=2, base=base)
    assert np.abs(far[region].astype(int) - base[region].astype(int)).mean() > 5  # from pure noise it differs
    # read as a shadow, the change around the silhouette is grey and only darkens: from pure noise, where the
    # model changes the ring most, no ring pixel is brighter than the base and its channels drop alike
    shaded = sample_edit(model, vae, source, guidance, mask, layouts, np.zeros(384, np.float32), steps=2,
                         base=base, smooth=2.0, shadow=0.0)  # fmt: skip
    ring = region & ~mask
    delta = shaded[ring].astype(int) - base[ring].astype(int)
    assert (delta <= 0).all() and (delta < 0).any()
    unclipped = (shaded[ring] > 0).all(axis=1)  # a channel darkened to 0 was cut there
    assert unclipped.sum() > 100 and (np.ptp(delta[unclipped], axis=1) <= 1).all()


@pytest.mark.slow
def test_a_recorded_dataset_trains_the_adapter_by_dream4drives_recipe(tmp_path):
    from dreamdrive.world.builder import build_world

    save_random_dit(tmp_path / "dit")
    build_world(tmp_path / "data", WORLD)
    loop = LoopConfig(steps=2, learning_rate=1e-3, warmup=1, save_every=2)
    with pytest.raises(DreamdriveError, match="has no split 'nope'"):
        train_insertion(tmp_path / "bad", None, model=tmp_path / "dit", loop=loop, data=tmp_path / "data",
                        split="nope")  # fmt: skip
    folder = train_insertion(tmp_path / "run", None, model=tmp_path / "dit", loop=loop, batch_size=1,
                             data=tmp_path / "data", split="proc_all")  # fmt: skip
    assert any(p.suffix == ".npz" for p in (tmp_path / "run" / "pairs").iterdir())
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["data"][1] == "proc_all" and "world" not in run
    assert all(np.isfinite(json.loads((tmp_path / "run" / "training.json").read_text())["losses"]))
    assert load_insertion(folder, model=tmp_path / "dit").adapter is not None
