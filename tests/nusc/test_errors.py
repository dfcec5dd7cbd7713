"""Bad input gets one exception type whose message names the file or token and what to do."""

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from dreamdrive.core.errors import DreamdriveError
from dreamdrive.nusc.reader import NuscDataset
from dreamdrive.nusc.writer import write_dataset


@pytest.fixture()
def copy(dataroot, tmp_path):
    target = tmp_path / "copy"
    shutil.copytree(dataroot, target)
    return target


def edit_table(root, table, edit):
    path = root / "v1.0-dreamdrive" / f"{table}.json"
    rows = json.loads(path.read_text())
    edit(rows)
    path.write_text(json.dumps(rows))


def test_missing_table(copy):
    (copy / "v1.0-dreamdrive" / "sample_annotation.json").unlink()
    with pytest.raises(DreamdriveError, match=r"missing the nuScenes table\(s\) sample_annotation.json"):
        NuscDataset(copy)


def test_malformed_table(copy):
    (copy / "v1.0-dreamdrive" / "scene.json").write_text("[{")
    with pytest.raises(DreamdriveError, match=r"scene.json is not valid JSON"):
        NuscDataset(copy)


def test_missing_image(copy):
    rows = json.loads((copy / "v1.0-dreamdrive" / "sample_data.json").read_text())
    victim = next(r for r in rows if r["filename"].endswith(".jpg") and not r["is_key_frame"])
    (copy / victim["filename"]).unlink()
    with pytest.raises(DreamdriveError, match=rf"sample_data {victim['token']} points at .*{victim['filename']}"):
        NuscDataset(copy).clip("handmade-0000")


def test_non_unit_quaternion_in_ego_pose(copy):
    edit_table(copy, "ego_pose", lambda rows: rows[0].update(rotation=[0.9, 0.0, 0.0, 0.1]))
    token = json.loads((copy / "v1.0-dreamdrive" / "ego_pose.json").read_text())[0]["token"]
    with pytest.raises(DreamdriveError, match=rf"ego_pose {token}.*not a unit quaternion"):
        NuscDataset(copy).clip("handmade-0000")


def test_non_unit_quaternion_in_calibration(copy):
    edit_table(copy, "calibrated_sensor", lambda rows: rows[1].update(rotation=[1.0, 1.0, 0.0, 0.0]))
    with pytest.raises(DreamdriveError, match=r"not sound: calibrated_sensor \w+: rotation .* not a unit quaternion"):
        NuscDataset(copy).clip("handmade-0000")


@pytest.mark.parametrize("boxes", ["auto", "interpolate"])
def test_nan_in_a_box(copy, boxes):
    edit_table(copy, "sample_annotation", lambda rows: rows[0].update(translation=[float("nan"), 1.0, 1.0]))
    token = json.loads((copy / "v1.0-dreamdrive" / "sample_annotation.json").read_text())[0]["token"]
    with pytest.raises(
        DreamdriveError, match=rf"sample_annotation {token}: translation \[nan, 1.0, 1.0\] is not 3 finite"
    ):
        NuscDataset(copy).clip("handmade-0000", boxes=boxes)


def test_edited_tables_disagree_with_sidecar(copy):
    edit_table(copy, "sample_annotation", lambda rows: rows[0].update(translation=[1.0, 2.0, 3.0]))
    with pytest.raises(DreamdriveError, match="disagrees with the sample_annotation table"):
        NuscDataset(copy).clip("handmade-0000")


def test_unknown_scene(dataroot):
    with pytest.raises(DreamdriveError, match=r"no scene named 'scene-9999'.*handmade-0000"):
        NuscDataset(dataroot).clip("scene-9999")


def test_not_a_dataset(tmp_path):
    with pytest.raises(DreamdriveError, match="no nuScenes version folder"):
        NuscDataset(tmp_path)


def test_writer_rejects_bad_input(clips, tmp_path):
    with pytest.raises(DreamdriveError, match="reserved by the nuscenes-devkit"):
        write_dataset(clips, tmp_path / "a", splits={"train": ["handmade-0000"]})
    with pytest.raises(DreamdriveError, match="not in the dataset"):
        write_dataset(clips, tmp_path / "b", splits={"mine": ["scene-0001"]})
    write_dataset(clips[:1], tmp_path / "c")
    with pytest.raises(DreamdriveError, match="already holds a different dataset"):
        write_dataset(clips[1:], tmp_path / "c")
    clip = clips[0]
    bad = type(clip)(clip.name, clip.frames[:3], [], clip.rig, clip.location)
    bad.frames = [
        type(f)(f.timestamp, f.global_T_ego, {"CAM_FRONT": f.images["CAM_FRONT"]}, f.is_key) for f in bad.frames
    ]
    with pytest.raises(DreamdriveError, match=r"frame 0 has no image for \['CAM_FRONT_LEFT'"):
        write_dataset([bad], tmp_path / "d")
    missing = type(clip)(
        "m",
        [
            type(f)(f.timestamp, f.global_T_ego, {c: "/nonexistent.jpg" for c in clip.rig.names}, f.is_key)
            for f in clip.frames[:2]
        ],
        [],
        clip.rig,
        clip.location,
    )
    with pytest.raises(DreamdriveError, match="image file /nonexistent.jpg does not exist"):
        write_dataset([missing], tmp_path / "e")
    wrong = type(clip)(
        "w",
        [
            type(f)(f.timestamp, f.global_T_ego, {c: np.zeros((5, 5, 3), np.uint8) for c in clip.rig.names}, f.is_key)
            for f in clip.frames[:2]
        ],
        [],
        clip.rig,
        clip.location,
    )
    with pytest.raises(DreamdriveError, match="image is 5x5, the camera says 192x108"):
        write_dataset([wrong], tmp_path / "f")


def test_cli_prints_error_without_traceback(copy):
    (copy / "v1.0-dreamdrive" / "sample.json").unlink()
    result = subprocess.run([sys.executable, "-m", "dreamdrive.cli", "info", str(copy)], capture_output=True, text=True)
    assert result.returncode == 2
    assert "sample.json" in result.stderr and "error:" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "dreamdrive.cli",
            "show",
            str(copy.parent / "nothing"),
            "--scene",
            "x",
            "--out",
            str(copy / "o"),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr


def test_writer_takes_image_files(clips, tmp_path):
    """Images given as files: JPEGs are copied byte for byte, PNGs re-encoded, wrong sizes and junk refused."""
    import cv2

    clip = clips[0]
    folder = tmp_path / "images"
    folder.mkdir()
    frames = []
    for i, frame in enumerate(clip.frames[:2]):
        images = {}
        for channel in clip.rig.names:
            path = folder / f"{i}_{channel}.{'jpg' if i == 0 else 'png'}"
            cv2.imwrite(str(path), frame.images[channel][:, :, ::-1])
            images[channel] = str(path)
        frames.append(type(frame)(frame.timestamp, frame.global_T_ego, images, frame.is_key))
    files_clip = type(clip)("files", frames, [], clip.rig, clip.location)
    root = tmp_path / "out"
    write_dataset([files_clip], root)
    rows = json.loads((root / "v1.0-dreamdrive" / "sample_data.json").read_text())
    first = next(r for r in rows if r["filename"].startswith("samples/CAM_FRONT/"))
    assert (root / first["filename"]).read_bytes() == (folder / "0_CAM_FRONT.jpg").read_bytes()
    second = next(r for r in rows if r["filename"].startswith("sweeps/CAM_FRONT/"))
    assert (root / second["filename"]).read_bytes()[:2] == b"\xff\xd8"  # re-encoded as JPEG
    (folder / "0_CAM_FRONT.jpg").write_bytes(b"not an image")
    with pytest.raises(DreamdriveError, match="is not a readable image"):
        write_dataset([files_clip], tmp_path / "junk")
    cv2.imwrite(str(folder / "0_CAM_FRONT.jpg"), np.zeros((10, 20, 3), np.uint8))
    with pytest.raises(DreamdriveError, match="is 20x10, the camera says 192x108"):
        write_dataset([files_clip], tmp_path / "small")
