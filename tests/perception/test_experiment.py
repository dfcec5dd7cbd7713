"""A tiny iso-epoch experiment: two seeds, a baseline and two synthetic mixes at 1x and 2x, killed and resumed."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from dreamdrive.conditions.insert import InsertRequest
from dreamdrive.pipelines.insert import insert_dataset

TINY = ["--image-size", "64x32", "--bev-cells", "16", "--width", "8", "--batch-size", "4"]


@pytest.fixture(scope="module")
def synthetic(tiny_world, tmp_path_factory):
    from dreamdrive.world.assets import AssetLibrary

    library = AssetLibrary(tmp_path_factory.mktemp("assets"))
    out = {}
    for name, seed in (("naiveA", 1), ("naiveB", 2)):
        root = tmp_path_factory.mktemp(name)
        insert_dataset(
            tiny_world, root, InsertRequest(classes=("car", "pedestrian"), auto=1, seed=seed), library=library
        )
        out[name] = root
    return out


def iso_epoch_command(tiny_world, synthetic, out):
    args = ["experiment", "iso-epoch", "--real", tiny_world, "--epochs", "1,2", "--seeds", "2", "--out", out, *TINY]
    for name, root in synthetic.items():
        args += ["--synthetic", f"{name}={root}"]
    return [sys.executable, "-m", "dreamdrive.cli", *map(str, args)]


def test_tiny_iso_epoch_resumes_without_retraining_finished_runs(tiny_world, synthetic, tmp_path):
    out = tmp_path / "iso"
    process = subprocess.Popen(iso_epoch_command(tiny_world, synthetic, out), env=os.environ.copy(),
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
    deadline = time.time() + 300
    while process.poll() is None and time.time() < deadline:
        if len(list(out.glob("runs/*/eval/report.json"))) >= 4:
            break
        time.sleep(0.1)
    process.send_signal(signal.SIGKILL)
    process.wait()
    finished = {p.parent.parent.name: p.parent.parent.joinpath("model", "model.safetensors").stat().st_mtime_ns
                for p in out.glob("runs/*/eval/report.json")}  # fmt: skip
    assert 4 <= len(finished) < 12 and not (out / "results.json").exists()
    result = subprocess.run(iso_epoch_command(tiny_world, synthetic, out), capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    for name, mtime in finished.items():  # finished runs were not trained again
        assert (out / "runs" / name / "model" / "model.safetensors").stat().st_mtime_ns == mtime
    results = json.loads((out / "results.json").read_text())
    assert len(results["runs"]) == 12
    steps = {(r["mix"], r["schedule"]): r["steps"] for r in results["runs"]}
    # iso-epoch: the same epochs; a mix's epoch holds the synthetic samples too, so it has more steps
    assert steps[("naiveA", 1)] > steps[("real", 1)] and steps[("real", 2)] == 2 * steps[("real", 1)]
    from dreamdrive.perception.train import training_record

    trained = training_record(out / "runs" / "naiveB-2x-seed1")["steps"]
    assert steps[("naiveB", 2)] == trained  # the steps counted from run.json are the steps the run took
    table = (out / "results.md").read_text()
    assert table.count("| 1x |") == 3 and table.count("| 2x |") == 3 and "naiveB" in table
    assert "±" in table and (out / "results.png").stat().st_size > 5000
    summary = results["summary"]["2"]["naiveA"]
    assert summary["seeds"] == 2 and summary["NDS_vs_real"]["pairs"] == 2
