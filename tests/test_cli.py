"""The dreamdrive command, run as a user would."""

import json
import subprocess
import sys


def dreamdrive(*args):
    return subprocess.run([sys.executable, "-m", "dreamdrive.cli", *map(str, args)], capture_output=True, text=True)


def test_info(dataroot):
    result = dreamdrive("info", dataroot)
    assert result.returncode == 0, result.stderr
    for text in ("v1.0-dreamdrive", "handmade-0000", "handmade-0001", "CAM_BACK_LEFT", "hm_train", "traffic_cone"):
        assert text in result.stdout
    summary = json.loads(dreamdrive("info", dataroot, "--json").stdout)
    assert summary["samples"] == 10 and summary["sweeps"] == 2 * 20 * 6
    assert summary["classes"]["car"] == 20


def test_show_writes_pictures(dataroot, tmp_path):
    result = dreamdrive("show", dataroot, "--scene", "handmade-0001", "--out", tmp_path)
    assert result.returncode == 0, result.stderr
    for name in ("handmade-0001_bev.png", "handmade-0001_grid.png", "handmade-0001.mp4"):
        assert (tmp_path / name).stat().st_size > 1000


def test_show_unknown_scene(dataroot, tmp_path):
    result = dreamdrive("show", dataroot, "--scene", "scene-0001", "--out", tmp_path)
    assert result.returncode == 2
    assert "no scene named 'scene-0001'" in result.stderr and "Traceback" not in result.stderr


def test_help_lists_commands():
    result = dreamdrive("--help")
    assert result.returncode == 0
    for command in ("info", "show", "demo"):
        assert command in result.stdout


def _broken_copy(dataroot, tmp_path, table: str, edit):
    """A copy of the dataset whose `table` has been changed by `edit(rows)`."""
    import shutil

    copy = tmp_path / "broken"
    shutil.copytree(dataroot, copy)
    path = copy / "v1.0-dreamdrive" / f"{table}.json"
    rows = json.loads(path.read_text())
    edit(rows)
    path.write_text(json.dumps(rows))
    return copy


def test_info_refuses_unsound_tables_and_check_lists_every_problem(dataroot, tmp_path):
    def bad_quaternion(rows):
        rows[0]["rotation"] = [0.9, 0.0, 0.0, 0.0]

    def nan_and_unknown_scene(rows):
        rows[0]["scene_token"] = "no-such-scene"
        rows[1]["scene_token"] = "another-missing-scene"

    cases = [("calibrated_sensor", bad_quaternion, "is not a unit quaternion"),
             ("sample", nan_and_unknown_scene, "scene_token 'no-such-scene' names no scene record")]  # fmt: skip
    for k, (table, edit, message) in enumerate(cases):
        broken = _broken_copy(dataroot, tmp_path / str(k), table, edit)
        result = dreamdrive("info", broken)
        assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr, result
        assert "--check" in result.stderr
        listed = dreamdrive("info", broken, "--check")
        assert listed.returncode == 1 and message in listed.stdout, listed
    both = _broken_copy(dataroot, tmp_path / "nan", "sample_annotation",
                        lambda rows: rows[3].update(size=[float("nan"), 1.0, 1.0], translation=[1.0, 2.0]))  # fmt: skip
    listed = dreamdrive("info", both, "--check")
    assert listed.returncode == 1 and "size [nan, 1.0, 1.0] is not 3 finite positive numbers" in listed.stdout
    assert "translation [1.0, 2.0] is not 3 finite numbers" in listed.stdout and "2 problem(s)" in listed.stdout
    sound = dreamdrive("info", dataroot, "--check")
    assert sound.returncode == 0 and "0 problem(s)" in sound.stdout


def test_info_check_finds_missing_and_empty_files(dataroot, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(dataroot, copy)
    images = sorted((copy / "samples" / "CAM_FRONT").glob("*.jpg"))
    images[0].unlink()
    images[1].write_bytes(b"")
    listed = dreamdrive("info", copy, "--check")
    assert listed.returncode == 1 and "does not exist" in listed.stdout and "its image" in listed.stdout


def test_an_output_folder_that_cannot_be_created_is_one_clear_error(dataroot):
    result = dreamdrive("show", dataroot, "--scene", "handmade-0001", "--out", "/proc/dreamdrive-out")
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert "/proc/dreamdrive-out" in result.stderr and "writable" in result.stderr


def test_show_refuses_a_sample_of_a_missing_scene(dataroot, tmp_path):
    broken = _broken_copy(dataroot, tmp_path, "sample", lambda rows: rows[0].update(scene_token="gone"))
    result = dreamdrive("show", broken, "--scene", "handmade-0000", "--out", tmp_path / "pictures")
    assert result.returncode == 2 and "names no scene record" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "pictures").exists()
