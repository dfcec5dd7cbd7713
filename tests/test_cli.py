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
