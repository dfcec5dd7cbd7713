# ruff: noqa: E501  (the corpus is a table: one case a line)
"""Bad input across the whole CLI: each case is a real mistake a user makes. Every one must exit non-zero with
one line on stderr that names what was wrong, print no traceback, and write no output.

The cases are listed for users in docs/errors.md.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

VERSION = "v1.0-dreamdrive"


@dataclass(frozen=True)
class Case:
    """A mistake: `argv(tmp, dataroot)` builds the command line (and breaks whatever it needs broken in tmp);
    the one error line must contain `names`."""

    name: str
    argv: Callable[[Path, Path], list[str]]
    names: str


def broken(table: str, edit: Callable[[list], None]) -> Callable[[Path, Path], Path]:
    """A copy of the dataset with `table` edited."""

    def make(tmp: Path, dataroot: Path) -> Path:
        copy = tmp / "data"
        shutil.copytree(dataroot, copy)
        path = copy / VERSION / f"{table}.json"
        rows = json.loads(path.read_text())
        edit(rows)
        path.write_text(json.dumps(rows))
        return copy

    return make


def copy_with(change: Callable[[Path], None]) -> Callable[[Path, Path], Path]:
    def make(tmp: Path, dataroot: Path) -> Path:
        copy = tmp / "data"
        shutil.copytree(dataroot, copy)
        change(copy)
        return copy

    return make


def first_image(root: Path) -> Path:
    return sorted((root / "samples" / "CAM_FRONT").glob("*.jpg"))[0]


def truncate(path: Path, keep: int) -> None:
    path.write_bytes(path.read_bytes()[:keep])


def model_folder(kind: str, change: Callable[[Path], None] | None = None) -> Callable[[Path], Path]:
    """A tiny model folder of `kind` (vae, hdmap, unimvm), optionally broken by `change`."""

    def make(tmp: Path) -> Path:
        from dreamdrive.models.dit import DiTConfig, UniMVM
        from dreamdrive.models.hdmap import HDMapConfig, HDMapNet
        from dreamdrive.models.vae import Autoencoder, VAEConfig

        network = {
            "vae": lambda: Autoencoder(VAEConfig(widths=(8, 8, 8, 8), blocks=1)),
            "hdmap": lambda: HDMapNet(HDMapConfig(size=32, widths=(8, 16), cond_dim=8)),
            "unimvm": lambda: UniMVM(DiTConfig(hidden=16, depth=1, heads=2, layout_width=4)),
        }[kind]()
        folder = network.save(tmp / f"model-{kind}")
        if change is not None:
            change(folder)
        return folder

    return make


def edit_config(**extra) -> Callable[[Path], None]:
    def change(folder: Path) -> None:
        record = json.loads((folder / "config.json").read_text())
        (folder / "config.json").write_text(json.dumps({**record, **extra}))

    return change


def scenario_folder(tmp: Path, content: dict | None) -> Path:
    folder = tmp / "scenario"
    folder.mkdir()
    if content is not None:
        (folder / "scenario.json").write_text(json.dumps(content))
    return folder


def triangle(tmp: Path) -> Path:
    path = tmp / "triangle.obj"
    path.write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n")
    return path


CASES = [
    # -- datasets: broken or inconsistent tables, missing files ------------------------------------------------
    Case("info on a folder that does not exist", lambda t, r: ["info", t / "nowhere"], "is not a folder"),
    Case("info on an empty folder", lambda t, r: ["info", t], "no nuScenes version folder"),
    Case("info with a table missing", lambda t, r: ["info", copy_with(lambda c: (c / VERSION / "sample.json").unlink())(t, r)], "sample.json"),
    Case("info with a truncated table", lambda t, r: ["info", copy_with(lambda c: truncate(c / VERSION / "scene.json", 40))(t, r)], "scene.json"),
    Case("info with a non-unit quaternion", lambda t, r: ["info", broken("calibrated_sensor", lambda rows: rows[0].update(rotation=[0.5, 0, 0, 0]))(t, r)], "unit quaternion"),
    Case("info with a NaN translation", lambda t, r: ["info", broken("ego_pose", lambda rows: rows[2].update(translation=[float("nan"), 0, 0]))(t, r)], "translation"),
    Case("info with an infinite box size", lambda t, r: ["info", broken("sample_annotation", lambda rows: rows[0].update(size=[float("inf"), 1, 1]))(t, r)], "size"),
    Case("info with a dangling sample token", lambda t, r: ["info", broken("sample_data", lambda rows: rows[5].update(sample_token="gone"))(t, r)], "names no sample"),
    Case("info with a sample of a missing scene", lambda t, r: ["info", broken("sample", lambda rows: rows[1].update(scene_token="gone"))(t, r)], "names no scene"),
    Case("info with timestamps out of order", lambda t, r: ["info", broken("sample", lambda rows: rows[0].update(timestamp=rows[0]["timestamp"] + 10**9))(t, r)], "is not later"),
    Case("info naming a version that is not there", lambda t, r: ["info", r, "--version", "v9.9"], "v9.9"),
    Case("show a scene that does not exist", lambda t, r: ["show", r, "--scene", "scene-0001", "--out", t / "out"], "scene-0001"),
    Case("show into a folder that cannot be created", lambda t, r: ["show", r, "--scene", "handmade-0000", "--out", "/proc/dd-out"], "/proc/dd-out"),
    Case("show a frame past the scene's end", lambda t, r: ["show", r, "--scene", "handmade-0000", "--out", t / "out", "--frame", "9999"], "9999"),
    Case("show with a camera image missing", lambda t, r: ["show", copy_with(lambda c: first_image(c).unlink())(t, r), "--scene", "handmade-0000", "--out", t / "out"], "does not exist"),
    Case("show with a truncated camera image", lambda t, r: ["show", copy_with(lambda c: truncate(first_image(c), 100))(t, r), "--scene", "handmade-0000", "--out", t / "out"], ".jpg"),
    Case("conditions for a frame that does not exist", lambda t, r: ["conditions", "--data", r, "--scene", "handmade-0000", "--out", t / "out", "--frame", "500"], "500"),
    # -- options: out of range, malformed, contradictory -------------------------------------------------------
    Case("world build with no scenes", lambda t, r: ["world", "build", "--out", t / "out", "--scenes", "0"], "--scenes"),
    Case("world build with an odd image width", lambda t, r: ["world", "build", "--out", t / "out", "--width", "33"], "33"),
    Case("world build with an unknown weather", lambda t, r: ["world", "build", "--out", t / "out", "--weather", "snow"], "snow"),
    Case("world build with malformed blocks", lambda t, r: ["world", "build", "--out", t / "out", "--blocks", "3y3"], "--blocks"),
    Case("world build over another dataset", lambda t, r: ["world", "build", "--out", str(copy_with(lambda c: None)(t, r)), "--scenes", "1", "--seconds", "0.5"], "--overwrite"),
    Case("world map with malformed blocks", lambda t, r: ["world", "map", "--out", t / "town.png", "--blocks", "0x0"], "blocks"),
    Case("an unknown command", lambda t, r: ["render"], "render"),
    Case("an unknown option", lambda t, r: ["info", r, "--colour"], "--colour"),
    Case("a required option missing", lambda t, r: ["show", r, "--scene", "handmade-0000"], "--out"),
    Case("a number where a word is needed", lambda t, r: ["world", "build", "--out", t / "out", "--scenes", "many"], "--scenes"),
    Case("scenario with an unknown translator", lambda t, r: ["scenario", "a car cuts in", "--out", t / "out", "--translator", "gpt9"], "gpt9"),
    Case("scenario on an unknown map", lambda t, r: ["scenario", "a car cuts in", "--out", t / "out", "--map", "atlantis"], "atlantis"),
    Case("scenario with an empty prompt", lambda t, r: ["scenario", "", "--out", t / "out"], "prompt"),
    Case("scenario with a prompt it cannot place", lambda t, r: ["scenario", "zorp blick fravle", "--out", t / "out"], "zorp"),
    Case("scenario whose only scripts contradict the prompt", lambda t, r: ["scenario", "a car dawdles in the next lane", "--out", t / "out", "--no-render"], "cut in"),
    Case("scenario with a huge prompt", lambda t, r: ["scenario", "a car cuts in " * 2000, "--out", t / "out"], "prompt"),
    Case("hdmap train with malformed towns", lambda t, r: ["hdmap", "train", "--out", t / "out", "--towns", "a-b"], "--towns"),
    Case("hdmap train with an unknown preset", lambda t, r: ["hdmap", "train", "--out", t / "out", "--preset", "huge"], "huge"),
    Case("hdmap train with an unknown conditioning", lambda t, r: ["hdmap", "train", "--out", t / "out", "--condition", "attention"], "attention"),
    Case("hdmap generate from a folder without a scenario", lambda t, r: ["hdmap", "generate", "--scenario", scenario_folder(t, None), "--out", t / "out"], "scenario.json"),
    Case("hdmap generate from a scenario without trajectories", lambda t, r: ["hdmap", "generate", "--scenario", scenario_folder(t, {"format": 1}), "--out", t / "out"], "trajectories"),
    Case("vae train with an unknown preset", lambda t, r: ["vae", "train", "--data", r, "--out", t / "out", "--preset", "huge"], "huge"),
    Case("vae train on a split the dataset lacks", lambda t, r: ["vae", "train", "--data", r, "--out", t / "out", "--split", "proc_train"], "proc_train"),
    Case("vae train with no steps", lambda t, r: ["vae", "train", "--data", r, "--out", t / "out", "--steps", "0"], "--steps"),
    Case("video generate with an unknown mask", lambda t, r: ["video", "generate", "--data", r, "--scene", "handmade-0000", "--out", t / "out", "--mask", "sides"], "sides"),
    Case("video generate with no steps", lambda t, r: ["video", "generate", "--data", r, "--scene", "handmade-0000", "--out", t / "out", "--steps", "0"], "--steps"),
    Case("video train on a dataset that does not exist", lambda t, r: ["video", "train", "--data", t / "nowhere", "--out", t / "out", "--vae", model_folder("vae")(t)], "nowhere"),
    Case("generate with an empty prompt", lambda t, r: ["generate", "", "--out", t / "out"], "prompt"),
    Case("generate with a prompt it cannot place", lambda t, r: ["generate", "zorp blick fravle", "--out", t / "out", "--map", "road"], "zorp"),
    Case("generate with an unknown mask", lambda t, r: ["generate", "a car cuts in", "--out", t / "out", "--mask", "sides"], "sides"),
    Case("generate on an unknown map", lambda t, r: ["generate", "a car cuts in", "--out", t / "out", "--map", "atlantis"], "atlantis"),
    Case("generate from the first frame on a generated map", lambda t, r: ["generate", "a car cuts in", "--out", t / "out", "--mask", "first-frame"], "--map"),
    Case("generate with an unknown video source", lambda t, r: ["generate", "a car cuts in", "--out", t / "out", "--map", "road", "--video", "film"], "--video"),
    Case("generate for too long a scenario", lambda t, r: ["generate", "a car cuts in", "--out", t / "out", "--map", "road", "--seconds", "600"], "--seconds"),
    Case("synth without prompts or jobs", lambda t, r: ["synth", "--out", t / "out"], "--prompts"),
    Case("synth with a prompts file that does not exist", lambda t, r: ["synth", "--prompts", t / "nowhere.txt", "--out", t / "out"], "nowhere.txt"),
    Case("synth with a prompts file that is not UTF-8 text", lambda t, r: ["synth", "--prompts", (t / "utf16.txt").write_text("a car cuts in", encoding="utf-16") and t / "utf16.txt", "--out", t / "out"], "utf16.txt"),
    Case("synth on an unreachable Ray cluster", lambda t, r: ["synth", "--prompts", (t / "p.txt").write_text("a car cuts in") and t / "p.txt", "--out", t / "out", "--ray", "127.0.0.1:1"], "127.0.0.1:1"),
    Case("synth with a malformed Ray address", lambda t, r: ["synth", "--prompts", (t / "p.txt").write_text("a car cuts in") and t / "p.txt", "--out", t / "out", "--ray", "headnode"], "--ray"),
    Case("insert without saying what to insert", lambda t, r: ["insert", "--data", r, "--out", t / "out", "--auto", "1"], "--class"),
    Case("insert an unknown class", lambda t, r: ["insert", "--data", r, "--out", t / "out", "--class", "spaceship", "--auto", "1"], "spaceship"),
    Case("insert at a malformed pose", lambda t, r: ["insert", "--data", r, "--out", t / "out", "--class", "car", "--at", "1,2"], "--at"),
    Case("insert with two placements at once", lambda t, r: ["insert", "--data", r, "--out", t / "out", "--class", "car", "--at", "5,0,0", "--auto", "1"], "--at"),
    Case("insert an unknown mode", lambda t, r: ["insert", "--data", r, "--out", t / "out", "--class", "car", "--auto", "1", "--mode", "magic"], "magic"),
    Case("insert in oracle mode into a dataset the world did not build", lambda t, r: ["insert", "--data", r, "--out", t / "out", "--class", "car", "--auto", "1", "--mode", "oracle"], "world build"),
    Case("insert train with a split but no dataset", lambda t, r: ["insert", "train", "--out", t / "out", "--split", "proc_train"], "--data"),
    Case("detect eval of a run that does not exist", lambda t, r: ["detect", "eval", "--run", t / "nowhere", "--data", r, "--out", t / "out"], "nowhere"),
    Case("detect train with a malformed ratio", lambda t, r: ["detect", "train", "--data", f"{r},{r}", "--out", t / "out", "--ratio", "1,x"], "--ratio"),
    Case("metrics fid without its weights", lambda t, r: ["metrics", "fid", "--real", r, "--generated", r], "--weights"),
    Case("experiment with a malformed held-out set", lambda t, r: ["experiment", "iso-epoch", "--real", r, "--synthetic", f"a={r}", "--val", "corner", "--out", t / "out"], "--val"),
    Case("experiment with a malformed synthetic set", lambda t, r: ["experiment", "iso-epoch", "--real", r, "--synthetic", "nameless", "--out", t / "out"], "--synthetic"),
    Case("assets show an unknown asset", lambda t, r: ["assets", "show", "nosuch-asset", "--out", t / "a.png"], "nosuch-asset"),
    Case("assets add a broken mesh", lambda t, r: ["assets", "add", (t / "broken.obj").write_text("v 1 2\nf 1 2 9\n") and t / "broken.obj", "--class", "car", "--library", t / "lib"], "broken.obj"),
    Case("assets add a mesh of an unknown class", lambda t, r: ["assets", "add", triangle(t), "--class", "dragon", "--library", t / "lib"], "dragon"),
    # -- model folders: wrong kind or version, truncated weights, unknown keys, pickles -------------------------
    Case("vae recon with a model of another kind", lambda t, r: ["vae", "recon", "--data", r, "--out", t / "out", "--model", model_folder("hdmap")(t)], "hdmap"),
    Case("vae recon with truncated weights", lambda t, r: ["vae", "recon", "--data", r, "--out", t / "out", "--model", model_folder("vae", lambda f: truncate(f / "model.safetensors", 64))(t)], "model.safetensors"),
    Case("vae recon with an unknown config key", lambda t, r: ["vae", "recon", "--data", r, "--out", t / "out", "--model", model_folder("vae", edit_config(heads=4))(t)], "heads"),
    Case("vae recon with a checkpoint of a future format", lambda t, r: ["vae", "recon", "--data", r, "--out", t / "out", "--model", model_folder("vae", edit_config(_format=99))(t)], "99"),
    Case("vae recon with a pickled checkpoint", lambda t, r: ["vae", "recon", "--data", r, "--out", t / "out", "--model", model_folder("vae", lambda f: ((f / "model.safetensors").unlink(), (f / "model.pt").write_bytes(b"\x80\x04K\x01.")))(t)], "pickle"),
    Case("video generate with a model of another kind", lambda t, r: ["video", "generate", "--data", r, "--scene", "handmade-0000", "--out", t / "out", "--model", model_folder("vae")(t)], "unimvm"),
    Case("hdmap generate with a model of another kind", lambda t, r: ["hdmap", "generate", "--scenario", scenario_folder(t, None), "--out", t / "out", "--model", model_folder("unimvm")(t)], "scenario.json"),
    Case("video generate with a mismatched autoencoder", lambda t, r: ["video", "generate", "--data", r, "--scene", "handmade-0000", "--out", t / "out", "--model", model_folder("unimvm")(t), "--vae", model_folder("vae", edit_config(latent_channels=8))(t)], "model-vae"),
    Case("video generate for a scene that does not exist", lambda t, r: ["video", "generate", "--data", r, "--scene", "scene-0001", "--out", t / "out", "--model", model_folder("unimvm")(t), "--vae", model_folder("vae")(t)], "scene-0001"),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_is_one_clear_line(case: Case, dataroot: Path, tmp_path: Path):
    argv = [str(a) for a in case.argv(tmp_path, dataroot)]
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    result = subprocess.run(
        [sys.executable, "-m", "dreamdrive.cli", *argv], capture_output=True, text=True, timeout=300
    )
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode != 0, (argv, result.stdout[-500:])
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    assert len(lines) == 1, result.stderr
    assert case.names in lines[0], (case.names, lines[0])
    after = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    assert after == before, f"{argv} wrote {sorted(set(after) - set(before))}"


def test_the_corpus_is_large_and_documented():
    assert len(CASES) >= 60
    listed = (Path(__file__).parents[1] / "docs" / "errors.md").read_text()
    missing = [c.name for c in CASES if c.name not in listed]
    assert not missing, missing
