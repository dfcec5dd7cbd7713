"""A tiny iso-epoch experiment: two seeds, a baseline and two synthetic mixes at 1x and 2x, killed and resumed;
a held-out set with tracking added to a finished experiment; and runs in parallel workers."""

import json
import os
import shutil
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
    args = ["experiment", "iso-epoch", "--real", tiny_world, "--epochs", "1,2", "--seeds", "2", "--out", out, *TINY,
            "--compare", "naiveA:naiveB"]  # fmt: skip
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
    rows = table.splitlines()
    assert sum(r.startswith("| 1x |") for r in rows) == 3 and sum(r.startswith("| 2x |") for r in rows) == 3
    assert "±" in table and (out / "results.png").stat().st_size > 5000
    summary = results["summary"]["val"]["2"]["naiveA"]
    assert summary["seeds"] == 2 and summary["NDS_vs_real"]["pairs"] == 2
    # naiveA against naiveB: the mean of the seeds' differences, per schedule and over all four runs of each
    nds = {(r["mix"], r["schedule"], r["seed"]): r["scores"]["val"]["NDS"] for r in results["runs"]}
    compared = results["comparisons"]["val"]["naiveA:naiveB"]
    differences = [nds[("naiveA", s, seed)] - nds[("naiveB", s, seed)] for s in (1, 2) for seed in (0, 1)]
    assert compared["2"]["NDS"]["pairs"] == 2 and compared["all"]["NDS"]["pairs"] == 4
    assert compared["2"]["NDS"]["mean_difference"] == pytest.approx(sum(differences[2:]) / 2)
    assert compared["all"]["NDS"]["mean_difference"] == pytest.approx(sum(differences) / 4)
    assert "| naiveA − naiveB | all |" in table


def test_the_paired_test_has_the_known_p_value():
    """Differences 1, 2, 3: t = 2 / (1 / sqrt 3) = sqrt 12 on 2 degrees of freedom, where the two-sided p-value
    is 1 - t / sqrt(t^2 + 2) = 1 - sqrt(12 / 14)."""
    from dreamdrive.perception.experiment import paired_test

    result = paired_test([(1.5, 0.5), (2.0, 0.0), (3.25, 0.25)])
    assert result["mean_difference"] == pytest.approx(2.0) and result["pairs"] == 3
    assert result["p_value"] == pytest.approx(1 - (12 / 14) ** 0.5, rel=1e-9)
    assert paired_test([(1.0, 0.0), (2.0, 1.0)])["p_value"] is None  # differences that do not vary: no test
    assert paired_test([])["mean_difference"] is None


def test_a_held_out_set_and_tracking_added_later_score_the_runs_without_training_them_again(
    tiny_world, synthetic, tmp_path
):
    out = tmp_path / "iso"
    mix = f"naiveA={synthetic['naiveA']}"
    base = [sys.executable, "-m", "dreamdrive.cli", "experiment", "iso-epoch", "--real", str(tiny_world), "--out",
            str(out), "--synthetic", mix, "--epochs", "1", "--seeds", "2", *TINY]  # fmt: skip
    result = subprocess.run(base, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    models = {p: p.stat().st_mtime_ns for p in out.glob("runs/*/model/model.safetensors")}
    assert len(models) == 4
    # the corner set: another dataset's validation split, named; the tracker scored on both sets
    held_out = ["--val", f"corner={synthetic['naiveB']}", "--tracking"]
    # what a killed evaluation, tracking run or plot leaves: cleared where the resumed experiment writes
    run = out / "runs" / "real-1x-seed0"
    left = [run / "eval-corner" / ".results_nusc.json.k1.tmp", run / "eval" / "tracking" / ".report.json.k2.tmp",
            out / ".results.tmp.png"]  # fmt: skip
    for path in left:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"partial")
    result = subprocess.run(base + held_out, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert not [path for path in left if path.exists()]
    assert {p: p.stat().st_mtime_ns for p in out.glob("runs/*/model/model.safetensors")} == models
    results = json.loads((out / "results.json").read_text())
    assert set(results["summary"]) == {"val", "corner"} and results["sets"]["corner"][0] == str(synthetic["naiveB"])
    for run in results["runs"]:
        for key in ("val", "corner"):
            scores = run["scores"][key]
            assert 0 <= scores["AMOTA"] <= 1 and 0 <= scores["mAP"] <= 1
        tracked = json.loads((out / "runs" / f"{run['mix']}-1x-seed{run['seed']}" / "eval-corner" / "tracking" /
                              "report.json").read_text())  # fmt: skip
        assert tracked["official"]["amota"] == run["scores"]["corner"]["AMOTA"]
    entry = results["summary"]["corner"]["1"]["naiveA"]
    assert entry["seeds"] == 2 and entry["AMOTA_vs_real"]["pairs"] == 2
    table = (out / "results.md").read_text()
    assert "## corner: held-out set" in table and "| AMOTA |" in table and "ΔAMOTA (p)" in table
    # the same command again rewrites nothing
    times = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    result = subprocess.run(base + held_out, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()} == times
    # a run killed after its training record was written and before its model was: trained on, not taken as done
    run, before = out / "runs" / "naiveA-1x-seed1", (out / "results.json").read_bytes()
    for folder in ("model", "eval", "eval-corner"):
        shutil.rmtree(run / folder)
    result = subprocess.run(base + held_out, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert (run / "model" / "config.json").is_file() and (out / "results.json").read_bytes() == before
    bad = subprocess.run(base + ["--val", "corner"], capture_output=True, text=True)
    assert bad.returncode != 0 and "--val takes NAME=DATAROOT" in bad.stderr + bad.stdout
    bad = subprocess.run(base + ["--compare", "naiveA:nothere"], capture_output=True, text=True)
    assert bad.returncode != 0 and "cannot compare 'naiveA' with 'nothere'" in bad.stderr + bad.stdout
    assert (out / "results.json").read_bytes() == before  # refused before anything was written


def test_runs_in_parallel_workers_equal_the_same_runs_one_by_one(tiny_world, synthetic, tmp_path):
    """Two workers of one thread each give the bytes of a one-worker experiment run with one thread: a run's
    weights depend on its seed and thread count, not on the process that trained it."""
    mix = f"naiveA={synthetic['naiveA']}"
    base = [sys.executable, "-m", "dreamdrive.cli", "experiment", "iso-epoch", "--real", str(tiny_world),
            "--synthetic", mix, "--epochs", "1", "--seeds", "2", *TINY]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    serial = subprocess.run([*base, "--out", str(tmp_path / "one")], capture_output=True, text=True, env=env)
    assert serial.returncode == 0, serial.stderr
    parallel = subprocess.run([*base, "--out", str(tmp_path / "two"), "--workers", "2"], capture_output=True,
                              text=True, env={**env, "OMP_NUM_THREADS": "2"})  # fmt: skip
    assert parallel.returncode == 0, parallel.stderr
    assert parallel.stdout.count(" done") == 4  # each run reported as its worker finished it
    assert (tmp_path / "one" / "results.json").read_bytes() == (tmp_path / "two" / "results.json").read_bytes()
    for model in (tmp_path / "one" / "runs").glob("*/model/model.safetensors"):
        twin = tmp_path / "two" / model.relative_to(tmp_path / "one")
        assert model.read_bytes() == twin.read_bytes()
