"""The scenario command's outputs: files, a dataset the devkit reads, determinism, crash requests."""

import json
import subprocess
import sys

import pytest

from dreamdrive.pipelines.scenario import from_prompt, write_outputs
from dreamdrive.scenario.translate import TranslationError
from tests.helpers import tree_digest


def test_same_prompt_and_seed_same_bytes(tmp_path):
    for folder in ("a", "b"):
        scenario, _ = from_prompt("A truck cuts in from the right on a foggy night", seed=3)
        write_outputs(scenario, tmp_path / folder, render=False)
    assert tree_digest(tmp_path / "a") == tree_digest(tmp_path / "b")


def test_a_requested_crash_is_kept_and_reported():
    scenario, _ = from_prompt("A car brakes hard right in front of us and we crash into it, 6 m ahead")
    assert scenario.crash_requested
    assert any("the prompt asks for a crash" in line for line in scenario.report)


def test_collisions_are_repaired_and_reported():
    # a tailgater closing in from behind: the ego does not react to traffic behind it
    scenario, _ = from_prompt("A car follows us at 90 km/h, 6 m behind")
    assert not [line for line in scenario.report if not line.startswith(("moved", "lowered", "removed"))]
    assert any(line.startswith("lowered car-1's speed") for line in scenario.report)
    assert not any(line.startswith("removed") for line in scenario.report)


def test_a_repair_that_breaks_what_was_asked_is_refused():
    # the truck's cut-in runs through the dashing pedestrian; moved ahead until it clears, it no longer cuts in
    with pytest.raises(TranslationError, match="the repair .* leaves the scenario not what the prompt asks.*cut in"):
        from_prompt("a truck cuts in from the right and a pedestrian dashes out")


@pytest.mark.slow
def test_command_end_to_end(tmp_path):
    from nuscenes.nuscenes import NuScenes

    out = tmp_path / "out"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "dreamdrive.cli",
            "scenario",
            "A red truck cuts in from the left on a rainy night",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    for name in ("scenario.json", "script.py", "bev.png", "trajectory_map.png", "scenario.mp4"):
        assert (out / name).stat().st_size > 50, name
    record = json.loads((out / "scenario.json").read_text())
    assert record["format"] == 1 and record["description"].startswith("Night, rain")
    nusc = NuScenes("v1.0-dreamdrive", str(out / "dataset"), verbose=False)
    (scene,) = nusc.scene
    assert scene["description"] == record["description"]
    categories = {a["category_name"] for a in nusc.sample_annotation}
    assert "vehicle.truck" in categories
    # the images are rendered, not blank: the camera frames differ from a constant grey
    import cv2

    sd = next(s for s in nusc.sample_data if s["channel"] == "CAM_FRONT" and s["is_key_frame"])
    image = cv2.imread(str(out / "dataset" / sd["filename"]))
    assert image.std() > 10


def test_unknown_prompt_fails_cleanly(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "dreamdrive.cli", "scenario", "a dragon sings opera", "--out", str(tmp_path / "x")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert "could not place 'dragon'" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "x").exists()
