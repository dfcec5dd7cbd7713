"""Kill at any point: every long job, killed with SIGKILL at seeded random moments and resumed, ends as a run
never stopped ends: the same bytes (datasets) or the same weights (training, within 1e-6), no stray temporary
files, no worker process outliving the killed job, and a rerun of the finished job changes nothing.

Each job runs once uninterrupted (the reference). Then, `KILLS` times, it runs in a fresh folder, is killed at
a random moment between its first output and 90% of the reference's time (one moment in each of `KILLS`
equal parts of that span, so every phase is hit), is started again and killed again as far into the rerun, and
is then run to the end. A run that ends before its moment (a warm or idle machine runs the job faster than it
ran the reference) rescales the timeline to itself and is drawn again at the same share of it.
The moments come from `random.Random(job name)`, so a failure repeats.
`DREAMDRIVE_KILLS=20` runs a longer check (docs/errors.md).
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

KILLS = int(os.environ.get("DREAMDRIVE_KILLS", "3"))
STRAY = re.compile(r"^\..*\.(tmp|tmp\.png|staging|old|partial\.mp4)$|^\.dreamdrive-(staging|new|replaced|swap\.json)$")
TINY_DETECTOR = ["--image-size", "64x32", "--bev-cells", "16", "--width", "8", "--batch-size", "4"]


@dataclass
class Job:
    name: str
    args: Callable[[dict, Path], list]  # (inputs, out) -> the dreamdrive command line
    weights: bool = False  # compare model weights (training) rather than every byte (datasets)
    derived: set[str] | None = None  # files (glob patterns) of timings, paths or tables of compared weights: compared
    # only to exist
    threads: int | None = None  # CPU threads (OMP/MKL); None: the machine's default


def command(args: list) -> list[str]:
    return [sys.executable, "-m", "dreamdrive.cli", *map(str, args)]


def launch(args: list, log: Path, threads: int | None = None) -> subprocess.Popen:
    env = os.environ.copy()
    if threads:
        env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    with log.open("ab") as handle:  # a file, not a pipe: a full pipe would stall the job
        return subprocess.Popen(command(args), stdout=handle, stderr=handle, env=env)


def finish(args: list, log: Path, threads: int | None = None) -> None:
    process = launch(args, log, threads)
    assert process.wait() == 0, log.read_text(errors="replace")[-3000:]


def files(root: Path) -> dict[str, Path]:
    return {str(p.relative_to(root)): p for p in sorted(root.rglob("*")) if p.is_file()}


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def stray(root: Path) -> list[str]:
    return [str(p.relative_to(root)) for p in root.rglob("*") if STRAY.match(p.name)]


def reference_run(args: list, out: Path, log: Path, threads: int | None = None) -> tuple[float, float]:
    """Run to the end; the seconds until `out` first appears and until the end."""
    start = time.perf_counter()
    process = launch(args, log, threads)
    first = None
    while process.poll() is None:
        if first is None and out.exists():
            first = time.perf_counter() - start
        time.sleep(0.01)
    assert process.returncode == 0, log.read_text(errors="replace")[-3000:]
    end = time.perf_counter() - start
    return first if first is not None else end, end


def kill_at(args: list, moment: float, log: Path, threads: int | None = None) -> float | None:
    """Start the job and SIGKILL it `moment` seconds later; None if it was still running then, else the seconds
    it took to end by itself."""
    process = launch(args, log, threads)
    start = time.perf_counter()
    while process.poll() is None and time.perf_counter() - start < moment:
        time.sleep(0.005)
    took = time.perf_counter() - start
    running = process.poll() is None
    children = descendants(process.pid)
    if running:
        process.send_signal(signal.SIGKILL)
    process.wait()
    deadline = time.time() + 10
    while any(alive(pid) for pid in children) and time.time() < deadline:
        time.sleep(0.05)
    orphans = [pid for pid in children if alive(pid)]
    assert not orphans, f"worker processes {orphans} outlived the killed job"
    return None if running else took


def descendants(pid: int) -> list[int]:
    """The process's children and theirs (Linux /proc; empty elsewhere)."""
    found, queue = [], [pid]
    while queue:
        parent = queue.pop()
        for path in Path(f"/proc/{parent}/task").glob("*/children"):
            try:
                children = [int(c) for c in path.read_text().split()]
            except OSError:
                continue
            found += children
            queue += children
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"  # a zombie has exited


def same_weights(a: Path, b: Path) -> None:
    models = sorted(p.relative_to(a) for p in a.rglob("model.safetensors") if "state" not in p.parts)
    assert models, f"no model in {a}"
    for relative in models:
        x, y = load_file(str(a / relative)), load_file(str(b / relative))
        assert x.keys() == y.keys(), relative
        for name in x:
            assert torch.allclose(x[name].float(), y[name].float(), atol=1e-6), f"{relative}: {name}"


def same_bytes(a: Path, b: Path, derived: set[str]) -> None:
    left, right = files(a), files(b)
    assert left.keys() == right.keys()
    compared = [name for name in left if not any(fnmatch.fnmatch(name, pattern) for pattern in derived)]
    different = [name for name in compared if digest(left[name]) != digest(right[name])]
    assert not different, different[:10]


def world_args(out: Path) -> list:
    return ["world", "build", "--out", out, "--scenes", "2", "--seconds", "2", "--seed", "5", "--width", "112",
            "--height", "64", "--weather", "clear,rain", "--time-of-day", "day,night"]  # fmt: skip


# fmt: off
JOBS = [
    Job("world build", lambda inputs, out: world_args(out)),
    Job("naive insertion", lambda inputs, out: ["insert", "--data", inputs["world"], "--out", out, "--class",
                                                "car,pedestrian", "--auto", "2", "--seed", "1"]),  # fmt: skip
    Job("generative insertion", lambda inputs, out: ["insert", "--data", inputs["world"], "--out", out, "--class",
                                                     "car", "--auto", "1", "--seed", "1", "--mode", "generative",
                                                     "--model", inputs["adapter"], "--steps", "3"]),  # fmt: skip
    Job("insertion adapter training", lambda inputs, out: ["insert", "train", "--out", out, "--scenes", "2",
                                                           "--seconds", "2", "--seed", "5", "--steps", "6",
                                                           "--batch-size", "1", "--save-every", "2"],
        weights=True),  # fmt: skip
    Job("detector training", lambda inputs, out: ["detect", "train", "--data", inputs["world"], "--out", out,
                                                  "--epochs", "3", *TINY_DETECTOR],
        weights=True, threads=1),  # fmt: skip
    Job("autoencoder training", lambda inputs, out: ["vae", "train", "--data", inputs["world"], "--out", out,
                                                     "--steps", "12", "--batch-size", "4", "--save-every", "3"],
        weights=True),  # fmt: skip
    Job("video model training", lambda inputs, out: ["video", "train", "--data", inputs["world"], "--out", out,
                                                     "--steps", "6", "--batch-size", "1", "--save-every", "2"],
        weights=True),  # fmt: skip
    Job("HD-map generator training", lambda inputs, out: ["hdmap", "train", "--out", out, "--towns", "0-1",
                                                          "--per-town", "4", "--steps", "8", "--batch-size", "4",
                                                          "--save-every", "2"], weights=True),  # fmt: skip
    Job("video generation", lambda inputs, out: ["video", "generate", "--data", inputs["world"], "--scene",
                                                 "proc-005-0000", "--out", out, "--frames", "8", "--steps", "4"]),
    Job("synthesis", lambda inputs, out: ["synth", "--prompts", inputs["prompts"], "--out", out, "--map", "road",
                                          "--seconds", "1.5", "--steps", "1", "--workers", "2"],
        derived={"report.json", "items/*/generation.json", "dataset/dreamdrive/index.json"}),  # fmt: skip
    # (the merged index's fingerprint keys where its scenes were read from: OUT/items)
    Job("iso-epoch experiment", lambda inputs, out: ["experiment", "iso-epoch", "--real", inputs["world"],
                                                     "--synthetic", f"naive={inputs['insert']}", "--epochs", "1",
                                                     "--seeds", "2", "--out", out, "--workers", "2",
                                                     *TINY_DETECTOR],
        weights=True, derived={"results.json", "results.md", "results.png"}, threads=1),
]
# fmt: on


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict:
    from dreamdrive.conditions.insert import InsertRequest
    from dreamdrive.pipelines.edit import train_insertion
    from dreamdrive.pipelines.insert import insert_dataset
    from dreamdrive.train.loop import LoopConfig
    from dreamdrive.world.builder import WorldConfig, build_world

    world = tmp_path_factory.mktemp("kill-world")
    build_world(world, WorldConfig(scenes=2, seconds=2.0, seed=5, width=112, height=64))
    synthetic = tmp_path_factory.mktemp("kill-insert")
    insert_dataset(world, synthetic, InsertRequest(classes=("car",), auto=1, seed=2))
    adapter = tmp_path_factory.mktemp("kill-adapter")  # a few steps over the shipped video model
    train_insertion(adapter, WorldConfig(scenes=1, seconds=2.0, seed=6, width=112, height=64),
                    loop=LoopConfig(steps=2, warmup=1, save_every=2), batch_size=1)  # fmt: skip
    prompts = tmp_path_factory.mktemp("kill-prompts") / "prompts.txt"
    prompts.write_text("A car overtakes us\nThe truck in front slams on the brakes\n")
    return {"world": world, "insert": synthetic, "adapter": adapter, "prompts": prompts}


@pytest.mark.slow
@pytest.mark.parametrize("job", JOBS, ids=[j.name for j in JOBS])
def test_a_job_killed_at_random_moments_ends_as_an_uninterrupted_run(job, inputs, tmp_path):
    reference, log = tmp_path / "reference", tmp_path / "log.txt"
    first, end = reference_run(job.args(inputs, reference), reference, log, job.threads)
    assert not stray(reference), stray(reference)
    rng = random.Random(job.name)
    hits = 0
    for k in range(KILLS):
        out = tmp_path / f"killed{k}"
        args = job.args(inputs, out)
        share = 0.9 * (k + rng.random()) / KILLS  # of the span from the first output to the end, clear of the end
        for _ in range(4):
            took = kill_at(args, first + share * (end - first), log, job.threads)
            if took is None:
                hits += 1
                break
            # the job ended before the moment: the machine runs it faster than it ran the reference (warm caches,
            # less load). Rescale the timeline to the run just seen and draw the same share of it again.
            shutil.rmtree(out)
            first, end = first * took / end * 0.9, took * 0.9
        moment = first + share * (end - first)
        kill_at(args, moment, log, job.threads)  # killed again as far into the rerun, which skips what the first did
        finish(args, log, job.threads)
        assert not stray(out), stray(out)
        if job.weights:
            same_weights(reference, out)
        else:
            same_bytes(reference, out, job.derived or set())
    assert hits >= KILLS - 1, f"only {hits} of {KILLS} kills hit the running job"  # one may come late on a busy machine
    before = {name: p.stat().st_mtime_ns for name, p in files(out).items()}
    finish(job.args(inputs, out), log, job.threads)  # a finished job, rerun, changes nothing
    after = {name: p.stat().st_mtime_ns for name, p in files(out).items()}
    assert before == after, sorted(k for k in after if before.get(k) != after[k])[:10]
