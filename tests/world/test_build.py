"""The builder: same seed same bytes, resume after SIGKILL, rerun is a no-op, bad options."""

import os
import signal
import subprocess
import sys
import time

import pytest

from dreamdrive.core.errors import DreamdriveError
from dreamdrive.world.builder import WorldConfig, build_world
from tests.helpers import tree_digest

SMALL = WorldConfig(
    scenes=2, seconds=0.5, seed=5, width=224, height=128, weather=("clear", "fog"), time_of_day=("day", "dusk")
)
CHILD = f"""
import sys
from dreamdrive.world.builder import WorldConfig, build_world
config = WorldConfig(**{{**{SMALL.__dict__!r}}})
print("ready", flush=True)
build_world(sys.argv[1], config)
"""


@pytest.mark.slow
def test_same_seed_same_bytes_and_resume_after_kill(tmp_path):
    build_world(tmp_path / "warm-up", SMALL)  # compiles shaders and fills caches, so the timing below is typical
    reference = tmp_path / "reference"
    start = time.perf_counter()
    build_world(reference, SMALL)
    duration = time.perf_counter() - start
    expected = tree_digest(reference)
    stamps = {p: p.stat().st_mtime_ns for p in reference.rglob("*") if p.is_file()}
    build_world(reference, SMALL)  # finished: a no-op
    assert stamps == {p: p.stat().st_mtime_ns for p in reference.rglob("*") if p.is_file()}

    killed = tmp_path / "killed"
    interrupted = 0
    for fraction in (0.25, 0.6):
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(killed)], stdout=subprocess.PIPE, text=True, env=os.environ.copy()
        )
        assert child.stdout.readline().strip() == "ready"
        time.sleep(fraction * duration)
        child.send_signal(signal.SIGKILL)
        child.wait()
        interrupted += child.returncode == -signal.SIGKILL and not (killed / "v1.0-dreamdrive").exists()
    assert interrupted >= 1, "no kill landed mid-build"
    result = subprocess.run([sys.executable, "-c", CHILD, str(killed)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert tree_digest(killed) == expected


def test_bad_options(tmp_path):
    with pytest.raises(DreamdriveError, match="weather 'snow'"):
        WorldConfig(weather=("snow",))
    with pytest.raises(DreamdriveError, match="must be even"):
        WorldConfig(width=101)
    result = subprocess.run(
        [sys.executable, "-m", "dreamdrive.cli", "world", "build", "--out", str(tmp_path), "--time-of-day", "noon"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2 and "time of day 'noon'" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.slow
def test_parallel_workers_give_the_same_bytes(tmp_path):
    build_world(tmp_path / "one", SMALL, workers=1)
    build_world(tmp_path / "two", SMALL, workers=2)
    assert tree_digest(tmp_path / "one") == tree_digest(tmp_path / "two")
