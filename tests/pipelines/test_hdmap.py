"""HD maps for scenarios: `--map generated` writes a dataset on the generated map; `hdmap generate` writes samples."""

import json

import numpy as np
import pytest
import torch

from dreamdrive.conditions.layout import map_layout
from dreamdrive.core.errors import DreamdriveError
from dreamdrive.models.hdmap import HDMapConfig, HDMapNet
from dreamdrive.nusc.reader import NuscDataset
from dreamdrive.pipelines.hdmap import generate_for_scenario
from dreamdrive.pipelines.scenario import from_prompt, write_outputs

PROMPT = "a car cuts in from the left"


@pytest.fixture(scope="module")
def model_folder(tmp_path_factory):
    """A small generator whose output is a fixed map (its last conv drives every pixel to one sign per channel):
    the pipeline's mechanics are under test here, the trained model's quality in benchmarks/bench_hdmap.py."""
    torch.manual_seed(0)
    model = HDMapNet(HDMapConfig(size=64, patch_m=102.4, widths=(8, 16), cond_dim=16))
    with torch.no_grad():
        model.out[-1].bias.copy_(torch.tensor([-4.0, -4.0, -4.0]))  # velocity -4: x_0 = noise + 4 > 0 everywhere
    return model.save(tmp_path_factory.mktemp("hdmap") / "model")


def test_a_scenario_on_a_generated_map_writes_a_dataset_with_that_map(model_folder, tmp_path):
    scenario, town = from_prompt(PROMPT, seed=1, map_spec="generated", hdmap_model=model_folder)
    assert town.name == f"generated-{scenario.name}" and town.hdmap.road_boundaries and not town.roads
    write_outputs(scenario, tmp_path / "out", town=town)
    from nuscenes.nuscenes import NuScenes

    NuScenes("v1.0-dreamdrive", str(tmp_path / "out" / "dataset"), verbose=False)  # the devkit loads it
    clip = NuscDataset(tmp_path / "out" / "dataset").clip(scenario.name)
    assert clip.hdmap.to_json() == {**town.hdmap.to_json(), "name": clip.hdmap.name}
    camera, pose = clip.rig["CAM_FRONT"], clip.frames[0].global_T_ego
    assert np.array_equal(map_layout(clip.hdmap, camera, pose), map_layout(town.hdmap, camera, pose))
    saved = json.loads((tmp_path / "out" / "scenario.json").read_text())
    assert saved["map"]["road_boundaries"] == town.hdmap.to_json()["road_boundaries"]


def test_hdmap_generate_writes_each_sample(model_folder, tmp_path):
    scenario, town = from_prompt(PROMPT, seed=0)
    write_outputs(scenario, tmp_path / "scenario", render=False, town=town)
    folders = generate_for_scenario(tmp_path / "scenario", tmp_path / "maps", samples=2, seed=5, model=model_folder)
    assert [f.name for f in folders] == ["sample_0", "sample_1"]
    for folder in folders:
        record = json.loads((folder / "hdmap.json").read_text())
        assert record["resolution_m"] == pytest.approx(1.6) and record["size_px"] == 64
        assert {"road_boundaries", "lane_dividers", "ped_crossings", "drivable_areas"} <= set(record)
        for name in ("hdmap.png", "trajectories.png", "overlay.png"):
            assert (folder / name).stat().st_size > 100, name


def test_bad_inputs_are_refused(model_folder, tmp_path):
    with pytest.raises(DreamdriveError, match="holds no scenario.json"):
        generate_for_scenario(tmp_path, tmp_path / "maps", model=model_folder)
    (tmp_path / "scenario.json").write_text(json.dumps({"format": 1}))
    with pytest.raises(DreamdriveError, match="holds no scenario trajectories"):
        generate_for_scenario(tmp_path, tmp_path / "maps", model=model_folder)
    with pytest.raises(DreamdriveError, match="not a model folder"):
        from_prompt(PROMPT, map_spec="generated", hdmap_model=tmp_path)


def test_the_shipped_generator_loads_and_is_deterministic():
    from dreamdrive.models.hdmap import PRESETS
    from dreamdrive.pipelines.hdmap import load_generator, sample_maps, scenario_trajectories

    model = load_generator()
    assert model.config == PRESETS["tiny"]
    scenario, _ = from_prompt(PROMPT, seed=0)
    trajectories, _, _ = scenario_trajectories(scenario.result, model.config)
    first = sample_maps(model, trajectories[None], seed=2, steps=10)
    assert np.array_equal(first, sample_maps(model, trajectories[None], seed=2, steps=10))
    assert first[0, 0].any()  # a trained model draws road boundaries around the paths


def test_road_boundaries_are_kept_off_the_vehicle_paths(model_folder):
    """`driven_mask` strokes each path a vehicle's half width to either side and half a length beyond its ends;
    `sample_maps(keep_clear=...)` erases boundary pixels there and nowhere else (the fixture's model draws every
    channel everywhere)."""
    from dreamdrive.pipelines.hdmap import driven_mask, load_generator, sample_maps

    model = load_generator(model_folder)
    config = model.config  # 64 px over 102.4 m: 1.6 m a pixel, the ego at pixel (32, 32) facing up
    path = np.column_stack([np.linspace(0.0, 16.0, 9), np.zeros(9)])  # 16 m straight ahead
    mask = driven_mask([path], config)
    assert mask[32, 32] and mask[22, 32] and mask[32, 31] and mask[32, 33]  # along the path and its width
    assert mask[20, 32] and mask[34, 32]  # 2.5 m beyond both ends
    assert not mask[32, 36] and not mask[10, 32] and not mask[40, 32]
    trajectories = np.zeros((1, 64, 64, 3), np.uint8)
    maps = sample_maps(model, trajectories, steps=2, keep_clear=mask[None])
    assert not maps[0, 0][mask].any() and maps[0, 0][~mask].mean() > 0.99
    assert maps[0, 1][mask].mean() > 0.99  # dividers may lie under a path (lane changes cross them)
    with pytest.raises(DreamdriveError, match="keep_clear has shape"):
        sample_maps(model, trajectories, steps=1, keep_clear=mask[None, :32])
