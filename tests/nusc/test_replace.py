"""`--overwrite` keeps the previous dataset whole until the new one is finished: a replacement that fails or is
killed while it writes leaves the old dataset readable, and a run killed at any step of the swap completes it
when rerun, ending with the bytes of a dataset written fresh and no hidden folder left."""

import dataclasses
from pathlib import Path

import pytest
from nuscenes.nuscenes import NuScenes

from dreamdrive.core.errors import DreamdriveError
from dreamdrive.nusc.writer import REPLACED_DIR, REPLACING_DIR, SWAP_JOURNAL, DatasetWriter, write_dataset
from dreamdrive.viz.handmade import handmade_clips
from tests.helpers import tree_digest


@pytest.fixture(scope="module")
def datasets():
    old = handmade_clips(2, 1.0, 96, 64, 0)
    new = handmade_clips(3, 1.0, 96, 64, 1)
    return old, new


def hidden(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if p.name.startswith("."))


def test_a_replacement_that_fails_midway_leaves_the_old_dataset_whole_and_resumes(datasets, tmp_path):
    old, new = datasets
    write_dataset(old, tmp_path / "fresh-old")
    write_dataset(new, tmp_path / "fresh-new")
    root = tmp_path / "out"
    write_dataset(old, root)
    (root / "notes.txt").write_text("the user's own file")
    frames = list(new[1].frames)
    frames[0] = dataclasses.replace(frames[0], images={**frames[0].images, "CAM_FRONT": tmp_path / "missing.jpg"})
    broken = [new[0], dataclasses.replace(new[1], frames=frames), new[2]]
    with pytest.raises((DreamdriveError, OSError)):
        write_dataset(broken, root, overwrite=True)  # fails on the second clip, after the first was written
    visible = {k: v for k, v in tree_digest(root).items() if not k.startswith(".") and k != "notes.txt"}
    assert visible == tree_digest(tmp_path / "fresh-old")  # the old dataset, byte for byte
    NuScenes("v1.0-dreamdrive", str(root), verbose=False)  # the old dataset still reads
    assert DatasetWriter(root).existing_fingerprint() == DatasetWriter(tmp_path / "fresh-old").existing_fingerprint()
    assert (root / REPLACING_DIR).is_dir()  # the replacement's finished clip is kept for the rerun
    write_dataset(new, root, overwrite=True)
    assert hidden(root) == []
    assert (root / "notes.txt").read_text() == "the user's own file"
    expected = tree_digest(tmp_path / "fresh-new")
    assert {k: v for k, v in tree_digest(root).items() if k != "notes.txt"} == expected


@pytest.mark.parametrize("crash_at", range(8))  # the swap renames 8 times: 4 folders out, 4 in
def test_a_run_killed_at_any_step_of_the_swap_completes_it_when_rerun(datasets, tmp_path, monkeypatch, crash_at):
    old, new = datasets
    write_dataset(new, tmp_path / "fresh-new")
    root = tmp_path / "out"
    write_dataset(old, root)
    renames = {"count": 0}
    original = Path.rename

    def crashing_rename(self, target):  # the process dies before its `crash_at`-th rename of the swap
        if (root / SWAP_JOURNAL).exists():
            if renames["count"] == crash_at:
                raise KeyboardInterrupt("killed")
            renames["count"] += 1
        return original(self, target)

    monkeypatch.setattr(Path, "rename", crashing_rename)
    try:
        write_dataset(new, root, overwrite=True)
        finished = True
    except KeyboardInterrupt:
        finished = False
    monkeypatch.setattr(Path, "rename", original)
    assert not finished and (root / SWAP_JOURNAL).is_file()
    write_dataset(new, root, overwrite=True)  # the rerun completes the swap, then finds the dataset finished
    assert hidden(root) == []
    assert tree_digest(root) == tree_digest(tmp_path / "fresh-new")
    NuScenes("v1.0-dreamdrive", str(root), verbose=False)


def test_without_overwrite_a_different_dataset_is_refused_and_kept(datasets, tmp_path):
    old, new = datasets
    write_dataset(old, tmp_path / "out")
    before = tree_digest(tmp_path / "out")
    with pytest.raises(DreamdriveError, match="--overwrite"):
        write_dataset(new, tmp_path / "out")
    assert tree_digest(tmp_path / "out") == before and not (tmp_path / "out" / REPLACED_DIR).exists()
