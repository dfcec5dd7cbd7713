"""The one checkpoint format: save/load round trips, clear refusals, and pickles that would run code never run."""

import json
import pickle

import pytest
import torch
from accelerate import Accelerator

from dreamdrive.core.errors import DreamdriveError
from dreamdrive.perception.data import DetectorConfig, Mix
from dreamdrive.perception.model import Detector
from dreamdrive.perception.train import TrainConfig, load_model, train
from dreamdrive.train.checkpoint import (
    UnsafeCheckpointError,
    load_training_state,
    save_training_state,
)

TINY = DetectorConfig(image_size=(64, 32), bev_cells=16, z_levels=(0.5, 1.5), width=8, bev_channels=8)
MARKER_NAME = "ran-code"


class _RunsCode:
    """Unpickling this creates a file: the proof that loading executed code."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def _crafted_pickle(marker) -> bytes:
    return pickle.dumps({"state": _RunsCode(marker), "param_groups": []}, protocol=2)  # torch.save's protocol


def test_a_detector_round_trips_through_its_folder(tmp_path):
    torch.manual_seed(0)
    model = Detector(TINY)
    folder = model.save(tmp_path / "model")
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.safetensors"]
    assert json.loads((folder / "config.json").read_text())["_kind"] == "detector"
    loaded = Detector.load(folder)
    assert loaded.config == TINY
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, loaded.state_dict()[name]), name
    # saving the same weights again gives the same bytes
    again = model.save(tmp_path / "again")
    assert (again / "model.safetensors").read_bytes() == (folder / "model.safetensors").read_bytes()


def test_wrong_kind_unknown_keys_and_truncated_weights_are_refused(tmp_path):
    folder = Detector(TINY).save(tmp_path / "model")
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "_kind": "vae"}))
    with pytest.raises(DreamdriveError, match="holds a vae, not a detector"):
        Detector.load(folder)
    (folder / "config.json").write_text(json.dumps({**config, "depth": 3}))
    with pytest.raises(DreamdriveError, match=r"unknown detector config keys \['depth'\]"):
        Detector.load(folder)
    (folder / "config.json").write_text(json.dumps(config))
    weights = (folder / "model.safetensors").read_bytes()
    (folder / "model.safetensors").write_bytes(weights[: len(weights) // 2])
    with pytest.raises(DreamdriveError, match="not a readable safetensors file"):
        Detector.load(folder)
    with pytest.raises(DreamdriveError, match="not a model folder"):
        Detector.load(tmp_path)


def test_an_old_pickled_run_folder_is_refused_without_unpickling(tmp_path):
    marker = tmp_path / MARKER_NAME
    run = tmp_path / "old-run"
    run.mkdir()
    (run / "model.pt").write_bytes(_crafted_pickle(marker))
    with pytest.raises(DreamdriveError, match="pickled checkpoint of an older dreamdrive.*Train again"):
        load_model(run)
    with pytest.raises(DreamdriveError, match="pickled checkpoint"):
        load_model(run / "model.pt")
    with pytest.raises(DreamdriveError, match="Train again into a new run folder"):  # before any data is read
        train(Mix([(str(tmp_path / "no-such-data"), None)]), run, TrainConfig(epochs=1), TINY)
    assert not marker.exists()


def test_a_training_state_whose_pickle_would_run_code_is_refused(tmp_path):
    """accelerate's state files go through torch.load(weights_only=True): a crafted optimizer file is refused
    with the project's error, and the code in it never runs."""
    accelerator = Accelerator(cpu=True)
    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model, optimizer = accelerator.prepare(model, optimizer)
    save_training_state(accelerator, tmp_path, {"epoch": 1, "step": 7})
    state = tmp_path / "state"
    assert (state / "model.safetensors").is_file() and (state / "optimizer.bin").is_file()
    assert load_training_state(accelerator, tmp_path) == {"epoch": 1, "step": 7}
    marker = tmp_path / MARKER_NAME
    (state / "optimizer.bin").write_bytes(_crafted_pickle(marker))
    with pytest.raises(UnsafeCheckpointError, match="could run code.*not loaded"):
        load_training_state(accelerator, tmp_path)
    assert not marker.exists()
    # the same pickle, loaded without the guard, does run code: the test above could have failed
    pickle.loads((state / "optimizer.bin").read_bytes())
    assert marker.exists()


def test_the_training_state_restores_the_random_generators(tmp_path):
    accelerator = Accelerator(cpu=True)
    model, optimizer = accelerator.prepare(torch.nn.Linear(2, 2), torch.optim.SGD(torch.nn.Linear(2, 2).parameters()))
    torch.manual_seed(3)
    save_training_state(accelerator, tmp_path, {"step": 0})
    expected = torch.rand(4)
    torch.manual_seed(99)
    load_training_state(accelerator, tmp_path)
    assert torch.equal(torch.rand(4), expected)
