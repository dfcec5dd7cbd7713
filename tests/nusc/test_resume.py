"""A writer killed with SIGKILL at any moment, then rerun, gives the bytes of an uninterrupted run."""

import json
import os
import pickle
import signal
import subprocess
import sys
import time

import pytest

from dreamdrive.nusc.writer import STAGING_DIR, write_dataset
from dreamdrive.viz.handmade import handmade_clips
from tests.helpers import tree_digest

SPLITS = {"a": ["handmade-0000", "handmade-0001"], "b": ["handmade-0002"]}
CHILD = f"""
import pickle, sys
from dreamdrive.nusc.writer import write_dataset
clips = pickle.load(open(sys.argv[1], "rb"))
print("ready", flush=True)
write_dataset(clips, sys.argv[2], splits={SPLITS!r})
"""


def run_child(clips_file, root, kill_after: float | None) -> bool:
    """Run the writer in a subprocess; SIGKILL it `kill_after` seconds into writing. True if it finished."""
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(clips_file), str(root)],
        stdout=subprocess.PIPE,
        text=True,
        env=os.environ.copy(),
    )
    assert child.stdout.readline().strip() == "ready"
    if kill_after is not None:
        time.sleep(kill_after)
        child.send_signal(signal.SIGKILL)
    child.wait(timeout=300)
    return child.returncode == 0


def check_all_or_nothing(root, expected) -> None:
    """The devkit's tables are absent, or present and final."""
    version = root / "v1.0-dreamdrive"
    if (version / "scene.json").exists():
        digest = tree_digest(version)
        assert digest == {k.split("/", 1)[1]: v for k, v in expected.items() if k.startswith("v1.0-dreamdrive/")}
        for path in version.iterdir():
            json.loads(path.read_text())


@pytest.mark.slow
def test_killed_writer_resumes_to_identical_bytes(tmp_path):
    clips = handmade_clips(3, 2.0, 192, 108, 0)
    clips_file = tmp_path / "clips.pkl"
    clips_file.write_bytes(pickle.dumps(clips))
    reference = tmp_path / "reference"
    start = time.perf_counter()
    write_dataset(clips, reference, splits=SPLITS)
    duration = time.perf_counter() - start
    expected = tree_digest(reference)

    interrupted = 0
    for trial, fractions in enumerate(([0.1], [0.3], [0.5], [0.7], [0.9], [0.2, 0.4])):
        root = tmp_path / f"trial{trial}"
        for fraction in fractions:
            finished = run_child(clips_file, root, kill_after=fraction * duration)
            interrupted += not finished and (root / STAGING_DIR).exists()
            check_all_or_nothing(root, expected)
        assert run_child(clips_file, root, kill_after=None)
        assert tree_digest(root) == expected, f"trial {trial} killed at {fractions} of the run"
    assert interrupted >= 3, "the kills did not land while writing; the test proved nothing"
