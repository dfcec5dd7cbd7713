"""Synthesis at scale on a local Ray cluster: 20 prompts with 2 workers give the dataset the same prompts give
one by one, a worker killed mid-item costs a retry and not the item, a rerun does nothing, bad items fail alone
with their error, insertion jobs merge beside prompts, and the merged dataset trains the detector with real
data."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from nuscenes.nuscenes import NuScenes

from dreamdrive.core.errors import DreamdriveError
from dreamdrive.perception.data import Mix
from dreamdrive.perception.train import TrainConfig, train
from dreamdrive.pipelines.generate import GenerateOptions, generate_from_prompt
from dreamdrive.pipelines.synth import Item, merge, read_items, synth
from tests.perception.test_training import TINY
from tests.scenario.prompts import PROMPTS

pytest.importorskip("ray")

OPTIONS = GenerateOptions(map_spec="road", seconds=1.5, steps=1)  # 7 model frames: one window, one step
TWENTY = [prompt for prompt, _ in PROMPTS[::3]][:20]


def files(root: Path) -> dict[str, bytes]:
    """Every file's bytes; the index without its fingerprint, a key of where the merged scenes were read from."""
    out = {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}
    if "dreamdrive/index.json" in out:
        index = json.loads(out["dreamdrive/index.json"])
        out["dreamdrive/index.json"] = json.dumps({**index, "fingerprint": None}).encode()
    return out


def mtimes(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in sorted(root.rglob("*"))}


def prompts_file(path: Path, prompts: list[str]) -> Path:
    path.write_text("# corner cases\n" + "\n".join(prompts) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def one_by_one(tmp_path_factory) -> Path:
    """The twenty prompts generated one by one, and merged as synth merges."""
    root = tmp_path_factory.mktemp("one-by-one")
    folders = []
    for k, prompt in enumerate(TWENTY):
        folders.append(root / f"p{k}")
        generate_from_prompt(prompt, folders[-1], OPTIONS)
    merge(folders, root / "dataset")
    return root


@pytest.mark.slow
def test_twenty_prompts_on_two_workers_give_the_dataset_of_the_prompts_run_one_by_one(one_by_one, tmp_path):
    assert len(TWENTY) == 20
    items = read_items(prompts_file(tmp_path / "prompts.txt", TWENTY))
    report = synth(items, tmp_path / "out", OPTIONS, workers=2)
    assert report["done"] == 20 and report["failed"] == 0
    assert files(tmp_path / "out" / "dataset") == files(one_by_one / "dataset")
    nusc = NuScenes("v1.0-dreamdrive", str(tmp_path / "out" / "dataset"), verbose=False)
    assert len(nusc.scene) == 20
    splits = json.loads((tmp_path / "out" / "dataset" / "v1.0-dreamdrive" / "splits.json").read_text())
    assert sorted(splits["synthetic"]) == sorted(s["name"] for s in nusc.scene)
    # a rerun of the finished run changes nothing (and starts no cluster: no item is left to run)
    before = mtimes(tmp_path / "out")
    again = synth(items, tmp_path / "out", OPTIONS, workers=2, address="127.0.0.1:1")  # unreachable: never used
    assert again == report and mtimes(tmp_path / "out") == before


def ray_workers_running_items() -> list[int]:
    """Ray worker processes executing `run_item` now (Ray titles them ray::run_item)."""
    pids = []
    for path in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if path.read_bytes().startswith(b"ray::run_item"):
                pids.append(int(path.parent.name))
        except OSError:
            continue
    return pids


@pytest.mark.slow
def test_a_worker_killed_mid_item_costs_a_retry_not_the_item(one_by_one, tmp_path):
    prompts = TWENTY[:6]
    path = prompts_file(tmp_path / "prompts.txt", prompts)
    command = [sys.executable, "-m", "dreamdrive.cli", "synth", "--prompts", str(path), "--out", str(tmp_path / "out"),
               "--map", "road", "--seconds", "1.5", "--steps", "1", "--workers", "2"]  # fmt: skip
    with (tmp_path / "log.txt").open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=log, env=os.environ.copy())
    killed, deadline = None, time.time() + 300
    while process.poll() is None and time.time() < deadline and killed is None:
        workers = ray_workers_running_items()
        if workers:
            time.sleep(1.0)  # well inside the item
            killed = workers[0]
            os.kill(killed, signal.SIGKILL)
        time.sleep(0.05)
    assert process.wait(timeout=600) == 0, (tmp_path / "log.txt").read_text()[-3000:]
    assert killed is not None, "no worker was seen running an item"
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["done"] == 6 and report["failed"] == 0
    for row in report["items"]:  # every item as the one-by-one run made it
        k = TWENTY.index(row["item"])
        assert files(tmp_path / "out" / "items" / row["key"] / "dataset") == files(one_by_one / f"p{k}" / "dataset")
    stray = [p.name for p in (tmp_path / "out").rglob("*") if p.name.startswith(".") and "tmp" in p.name]
    assert not stray


@pytest.mark.slow
def test_bad_items_fail_alone_with_their_error_and_are_not_run_again(tmp_path):
    path = tmp_path / "prompts.txt"
    path.write_bytes(b"A car overtakes us\n\xff\xfe not text\nxyzzy plugh\n")
    items = read_items(path)
    assert [item.line for item in items] == [1, 2, 3]
    report = synth(items, tmp_path / "out", OPTIONS, workers=2)
    errors = {row["line"]: row.get("error") for row in report["items"]}
    assert errors[1] is None and "line 2 is not UTF-8" in errors[2] and "could not place" in errors[3]
    assert report["done"] == 1 and report["failed"] == 2
    NuScenes("v1.0-dreamdrive", str(tmp_path / "out" / "dataset"), verbose=False)
    before = mtimes(tmp_path / "out")
    assert synth(items, tmp_path / "out", OPTIONS, workers=2, address="127.0.0.1:1") == report
    assert mtimes(tmp_path / "out") == before


@pytest.mark.slow
def test_insertion_jobs_merge_beside_prompts_and_the_dataset_trains_the_detector_with_real_data(tiny_world, tmp_path):
    jobs = tmp_path / "jobs.jsonl"
    good = {"data": str(tiny_world), "scenes": "proc-004-0000", "class": "car", "auto": 1, "seed": 2}
    bad = {**good, "data": "/nowhere"}
    jobs.write_text("\n".join([json.dumps(good), json.dumps({**good, "seed": 3}), json.dumps(bad), "not json"]) + "\n")
    report = synth(read_items(inserts=jobs), tmp_path / "out", OPTIONS, workers=2)
    assert report["done"] == 2 and report["failed"] == 2, report
    assert "/nowhere" in report["items"][2]["error"] and "not a JSON object" in report["items"][3]["error"]
    nusc = NuScenes("v1.0-dreamdrive", str(tmp_path / "out" / "dataset"), verbose=False)
    names = sorted(s["name"] for s in nusc.scene)  # two edits of one scene, each named after its item
    assert len(names) == 2 and all(name.startswith("proc-004-0000-") for name in names) and names[0] != names[1]
    model = train(Mix([(str(tiny_world), "proc_train"), (str(tmp_path / "out" / "dataset"), "synthetic")]),
                  tmp_path / "run", TrainConfig(epochs=1, batch_size=2), TINY)  # fmt: skip
    assert (model / "model.safetensors").is_file()


def test_items_are_read_one_a_line_and_files_that_are_not_text_are_refused(tmp_path):
    path = tmp_path / "p.txt"
    path.write_text("# a comment\n\nA car follows us\n  A bus ahead  \n", encoding="utf-8")
    assert read_items(path) == [Item("prompt", "A car follows us", 3), Item("prompt", "A bus ahead", 4)]
    path.write_text("a car cuts in\n", encoding="utf-16")
    with pytest.raises(DreamdriveError, match="not UTF-8 text"):
        read_items(path)
    path.write_text("# only a comment\n")
    with pytest.raises(DreamdriveError, match="no items"):
        read_items(path)
    with pytest.raises(DreamdriveError, match="either --prompts"):
        read_items(path, path)
    with pytest.raises(DreamdriveError, match="does not exist"):
        read_items(tmp_path / "missing.txt")


def test_an_unreachable_ray_address_is_refused_at_once(tmp_path):
    path = prompts_file(tmp_path / "p.txt", ["A car follows us"])
    with pytest.raises(DreamdriveError, match="cannot reach the Ray cluster at 127.0.0.1:1"):
        synth(read_items(path), tmp_path / "out", OPTIONS, address="127.0.0.1:1")
    with pytest.raises(DreamdriveError, match="HOST:PORT"):
        synth(read_items(path), tmp_path / "out", OPTIONS, address="no-port")
