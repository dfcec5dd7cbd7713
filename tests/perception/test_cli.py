"""dreamdrive detect train | eval | track, run as a user would, on a tiny procedural build."""

import json
import subprocess
import sys

TINY = ["--image-size", "64x32", "--bev-cells", "16", "--width", "8"]


def dreamdrive(*args):
    return subprocess.run([sys.executable, "-m", "dreamdrive.cli", *map(str, args)], capture_output=True, text=True)


def test_train_eval_and_track_write_the_nuscenes_files(tiny_world, tmp_path):
    result = dreamdrive("detect", "train", "--data", tiny_world, "--out", tmp_path / "run", "--epochs", "2", *TINY)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "run" / "model" / "model.safetensors").is_file() and json.loads(
        (tmp_path / "run" / "run.json").read_text()
    )
    result = dreamdrive("detect", "eval", "--run", tmp_path / "run", "--data", tiny_world, "--out", tmp_path / "eval")
    assert result.returncode == 0, result.stderr
    submission = json.loads((tmp_path / "eval" / "results_nusc.json").read_text())
    from dreamdrive.perception.predict import split_refs

    samples = {ref.sample_token for ref in split_refs(tiny_world, "proc_val")}
    assert submission["meta"]["use_camera"] and set(submission["results"]) == samples and len(samples) >= 3
    summary = json.loads((tmp_path / "eval" / "metrics_summary.json").read_text())
    assert {"mean_ap", "nd_score", "tp_errors", "mean_dist_aps"} <= set(summary)
    assert "10 classes (devkit)" in result.stdout and len(list((tmp_path / "eval" / "pictures").glob("*.png"))) >= 3
    result = dreamdrive("detect", "track", "--run", tmp_path / "run", "--data", tiny_world, "--out", tmp_path / "track")
    assert result.returncode == 0, result.stderr
    tracks = json.loads((tmp_path / "track" / "results_tracking.json").read_text())
    assert all("tracking_id" in box for boxes in tracks["results"].values() for box in boxes)
    assert "amota" in json.loads((tmp_path / "track" / "metrics_summary.json").read_text())


def test_bad_input_is_one_clear_line(tiny_world, tmp_path):
    result = dreamdrive("detect", "eval", "--run", tmp_path / "nowhere", "--data", tiny_world, "--out", tmp_path / "e")
    assert result.returncode == 2 and "no trained model" in result.stderr and "Traceback" not in result.stderr
    result = dreamdrive("detect", "train", "--data", tiny_world, "--out", tmp_path / "r", "--split", "nope", *TINY)
    assert result.returncode == 2 and "no split 'nope'" in result.stderr
    result = dreamdrive("experiment", "iso-epoch", "--real", tiny_world, "--synthetic", "broken", "--out", tmp_path)
    assert result.returncode == 2 and "NAME=DATAROOT" in result.stderr
    result = dreamdrive("metrics", "fvd", "--real", tiny_world, "--generated", tiny_world)
    assert result.returncode == 2 and "i3d_torchscript.pt" in result.stderr
