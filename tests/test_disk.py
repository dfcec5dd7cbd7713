"""A job that cannot write stops with one clear line naming the file, publishes nothing half-written, keeps its
last saved state (training), and finishes when run again once there is room.

Three ways to fail a write, each as real as the machine allows:
- a file size limit (RLIMIT_FSIZE, with SIGXFSZ ignored): every write past the limit fails with EFBIG, as a full
  disk fails with ENOSPC, on any machine and for any user, root included;
- a 1 MiB tmpfs: a full disk (needs mount rights; skipped without);
- a read-only bind mount (needs mount rights; skipped without). Making a folder read-only with chmod
  would not stop root, who runs CI.
"""

from __future__ import annotations

import hashlib
import os
import resource
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

WORLD = ["--scenes", "2", "--seconds", "1", "--seed", "6", "--width", "112", "--height", "64"]


def dreamdrive(*args, limit: int | None = None) -> subprocess.CompletedProcess:
    def limited() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # kept across exec: writes fail instead of killing
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return subprocess.run([sys.executable, "-m", "dreamdrive.cli", *map(str, args)], capture_output=True, text=True,
                          preexec_fn=limited if limit else None, env=os.environ.copy())  # fmt: skip


def one_clear_line(result: subprocess.CompletedProcess, *words: str) -> None:
    assert result.returncode == 2, result.stdout + result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert "Traceback" not in result.stderr and len(" ".join(lines)) < 600, result.stderr
    text = " ".join(result.stderr.split())
    assert "error:" in text and all(word in text for word in words), result.stderr


def tree(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*"))
            if p.is_file()}  # fmt: skip


@pytest.fixture
def mount_point(tmp_path):
    """A mount helper, or a skip where this machine gives no mount rights."""
    mounted = []

    def mount(*args: str) -> Path:
        target = tmp_path / f"mnt-{uuid.uuid4().hex[:6]}"
        target.mkdir()
        result = subprocess.run(["mount", *args, str(target)], capture_output=True, text=True)
        if result.returncode != 0:
            pytest.skip(f"no mount rights here: {result.stderr.strip()}")
        mounted.append(target)
        return target

    yield mount
    for target in reversed(mounted):
        subprocess.run(["umount", str(target)], capture_output=True)


@pytest.mark.slow
def test_a_build_that_cannot_write_stops_clearly_and_resumes_to_the_same_bytes(tmp_path):
    out = tmp_path / "world"
    failed = dreamdrive("world", "build", "--out", out, *WORLD, limit=20_000)
    one_clear_line(failed, "File too large", "disk has room")
    assert not (out / "v1.0-dreamdrive").exists()  # no dataset published half-written
    assert dreamdrive("world", "build", "--out", out, *WORLD).returncode == 0
    reference = tmp_path / "reference"
    assert dreamdrive("world", "build", "--out", reference, *WORLD).returncode == 0
    assert tree(out) == tree(reference)


@pytest.mark.slow
def test_a_dataset_replaced_on_a_full_disk_keeps_the_old_one_whole(tmp_path):
    """--overwrite writes the new dataset beside the old one and swaps it in when finished (docs/format.md);
    when the disk fills on the way, the old dataset still reads, byte for byte, and the same command, once
    there is room, finishes the new one."""
    out = tmp_path / "world"
    assert dreamdrive("world", "build", "--out", out, *WORLD).returncode == 0
    before = tree(out)
    bigger = [*WORLD[:-4], "--width", "320", "--height", "192"]
    one_clear_line(dreamdrive("world", "build", "--out", out, *bigger, "--overwrite", limit=60_000), "File too large")
    assert {k: v for k, v in tree(out).items() if not k.startswith(".")} == before
    assert dreamdrive("info", out).returncode == 0
    assert dreamdrive("world", "build", "--out", out, *bigger, "--overwrite").returncode == 0
    reference = tmp_path / "reference"
    assert dreamdrive("world", "build", "--out", reference, *bigger).returncode == 0
    assert tree(out) == tree(reference)


@pytest.mark.slow
def test_training_that_cannot_save_keeps_its_last_state(tmp_path):
    run = tmp_path / "run"

    def train(steps: int, limit: int | None = None) -> subprocess.CompletedProcess:
        return dreamdrive("hdmap", "train", "--out", run, "--towns", "0-1", "--per-town", "4", "--steps", steps,
                          "--batch-size", "4", "--save-every", "2", limit=limit)  # fmt: skip

    assert train(4).returncode == 0
    before = tree(run)
    one_clear_line(train(8, limit=20_000), "File too large")
    state = {k: v for k, v in before.items() if k.startswith("state/")}
    assert state and {k: v for k, v in tree(run).items() if k.startswith("state/")} == state  # the saved state
    resumed = train(8)
    assert resumed.returncode == 0, resumed.stderr
    assert not list(run.glob(".*"))
    reference = tmp_path / "reference"
    assert dreamdrive("hdmap", "train", "--out", reference, "--towns", "0-1", "--per-town", "4", "--steps", 8,
                      "--batch-size", "4", "--save-every", "2").returncode == 0  # fmt: skip
    from tests.test_kill import same_weights

    same_weights(reference, run)


@pytest.mark.slow
def test_a_full_disk_and_a_read_only_folder_are_named(tmp_path, mount_point):
    small = mount_point("-t", "tmpfs", "-o", "size=1m", "tmpfs")
    one_clear_line(dreamdrive("world", "build", "--out", small / "world", *WORLD), "No space left on device",
                   str(small))  # fmt: skip
    assert not (small / "world" / "v1.0-dreamdrive").exists()
    source = tmp_path / "source"
    source.mkdir()
    read_only = mount_point("--bind", "-o", "ro", str(source))
    one_clear_line(dreamdrive("world", "build", "--out", read_only / "world", *WORLD), "Read-only file system",
                   str(read_only))  # fmt: skip
    assert not list(source.iterdir())
