"""Paired edits from the procedural world: the source lacks the vehicle, the target has it as the world lights
it, the naive edit pastes it, and the guidance maps say so; the same bytes every time; a rerun keeps the files."""

import numpy as np
import pytest

from dreamdrive.conditions.guidance import guidance_maps
from dreamdrive.core.errors import DreamdriveError
from dreamdrive.pipelines.pairs import build_pairs, render_pair
from dreamdrive.world.builder import WorldConfig

CONFIG = WorldConfig(scenes=2, seconds=2.0, seed=7, width=112, height=64, weather=("clear", "rain"),
                     time_of_day=("day", "night"))  # fmt: skip


@pytest.fixture(scope="module")
def night_pair():
    return render_pair(CONFIG, 1)  # night, rain


def test_the_pair_differs_where_the_vehicle_is_and_the_naive_edit_only_there(night_pair):
    pair = night_pair
    assert pair is not None and pair.source.shape == pair.target.shape == pair.naive.shape == (8, 6, 64, 112, 3)
    assert pair.instance.startswith("proc-007-0001-") and pair.mask.sum() > 1000
    changed = np.abs(pair.target.astype(int) - pair.source.astype(int)).sum(-1) > 8
    assert changed[pair.mask].mean() > 0.5  # the vehicle is in the target, not in the source
    assert np.array_equal(pair.naive[~pair.mask], pair.source[~pair.mask])  # naive pastes, nothing else
    # at night the world darkens the vehicle; naive insertion lights it as by day
    inside = pair.mask
    assert pair.naive[inside].mean() > pair.target[inside].mean() + 10
    vehicle = [a for a in pair.clip.agents if a.instance_id == pair.instance]
    assert len(vehicle) == 1 and all(box is not None for box in vehicle[0].boxes)
    assert len(pair.clip.frames) == 8 and all(f.is_key for f in pair.clip.frames)


def test_guidance_is_blanked_under_the_object_and_carries_it(night_pair):
    guidance = night_pair.guidance.astype(np.float32)
    mask = night_pair.mask
    assert guidance.shape == (8, 6, 9, 64, 112)
    scene, obj = guidance[:, :, :5], guidance[:, :, 5:8]
    assert not np.moveaxis(scene, 2, -1)[mask].any()  # depth, normals, edges say nothing under the object
    assert not np.moveaxis(obj, 2, -1)[~mask].any() and np.array_equal(guidance[:, :, 8] > 0, mask)
    assert (guidance[:, :, 0][~mask] > 0).mean() > 0.3  # the scene's depth elsewhere


def test_guidance_maps_known_answer_and_refusal():
    depth = np.full((8, 8), 10.0, np.float32)
    normal = np.zeros((8, 8, 3), np.float32)
    normal[..., 2] = -1
    rgb = np.zeros((8, 8, 3), np.uint8)
    obj = np.full((8, 8, 3), 255, np.uint8)
    mask = np.zeros((8, 8), bool)
    mask[3, 3] = True
    maps = guidance_maps(rgb, depth, normal, obj, mask, blank=1)
    assert maps[0, 0, 0] == pytest.approx(0.5) and maps[0, 2:5, 2:5].sum() == 0  # 1 / (1 + 10 / 10), blanked 3x3
    assert maps[3, 0, 0] == -1 and maps[5:8, 3, 3].tolist() == [1, 1, 1] and maps[5:8].sum() == 3
    with pytest.raises(DreamdriveError, match="must agree"):
        guidance_maps(rgb, depth, normal, obj, mask[:4])


def test_same_bytes_and_a_rerun_keeps_the_files(night_pair, tmp_path):
    again = render_pair(CONFIG, 1)
    for key in ("source", "target", "naive", "guidance", "mask"):
        assert np.array_equal(getattr(again, key), getattr(night_pair, key)), key
    files = build_pairs(tmp_path, CONFIG)
    assert [f.name for f in files] == ["pair-0000.npz", "pair-0001.npz"]
    stored = np.load(files[1])
    assert np.array_equal(stored["target"], night_pair.target) and str(stored["instance"]) == night_pair.instance
    mtimes = [f.stat().st_mtime_ns for f in files]
    assert [f.stat().st_mtime_ns for f in build_pairs(tmp_path, CONFIG)] == mtimes
    with pytest.raises(DreamdriveError, match="model frames every 3 need 22"):
        render_pair(WorldConfig(scenes=1, seconds=1.0, seed=7, width=112, height=64), 0)


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """A written procedural dataset, read back as a recorded one would be."""
    from dreamdrive.nusc.reader import NuscDataset
    from dreamdrive.world.builder import build_world

    root = tmp_path_factory.mktemp("recorded")
    build_world(root, CONFIG)
    return NuscDataset(root)


def test_a_recorded_clip_gives_a_pair_from_one_of_its_own_vehicles(recorded):
    from dataclasses import replace

    from dreamdrive.core.categories import detection_class
    from dreamdrive.pipelines.pairs import VEHICLES, dataset_pair

    clip = recorded.clip(recorded.scene_names[1])
    pair = dataset_pair(clip, 8, 3, (32, 56))
    assert pair is not None and pair.target.shape == (8, 6, 32, 56, 3)
    assert np.array_equal(pair.source, pair.target)  # the clip is its own target
    vehicle = next(a for a in pair.clip.agents if a.instance_id == pair.instance)
    assert detection_class(vehicle.category) in VEHICLES and all(b is not None for b in vehicle.boxes)
    guidance, mask = pair.guidance.astype(np.float32), pair.mask
    assert mask.sum() > 100
    obj = np.moveaxis(guidance[:, :, 5:8], 2, -1)
    assert np.allclose(obj[mask], pair.target[mask] / 255, atol=1e-3)  # the object image is its own pixels
    assert not obj[~mask].any() and not np.moveaxis(guidance[:, :, :5], 2, -1)[mask].any()
    # without dense ground truth the mask is the box's outline less what LiDAR sees in front: it covers the
    # vehicle's true silhouette and not much more
    bare = replace(clip, frames=[replace(f, dense={}) for f in clip.frames], dense_instances={})
    outline = dataset_pair(bare, 8, 3, (32, 56))
    assert outline is not None and outline.instance == pair.instance
    assert (outline.mask & mask).sum() >= 0.8 * mask.sum() and outline.mask.sum() <= 3 * mask.sum()
    assert dataset_pair(clip, 40, 3, (32, 56)) is None  # 40 model frames do not fit in 2 s
