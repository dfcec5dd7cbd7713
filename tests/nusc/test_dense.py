"""Dense ground truth travels with the data model: on Frame.dense through the writer and back."""

from dataclasses import replace

import numpy as np
import pytest

from dreamdrive.conditions.guidance import scene_depth
from dreamdrive.core.errors import DreamdriveError
from dreamdrive.nusc.dense import encode_packed, load_dense, pack_dense, read_dense, read_packed
from dreamdrive.nusc.reader import NuscDataset
from dreamdrive.nusc.writer import write_dataset


def _dense_view(height: int, width: int, seed: int) -> tuple[np.ndarray, dict]:
    rng = np.random.default_rng(seed)
    depth = np.round(rng.uniform(0, 80, (height, width)) * 256) / 256
    depth[:4] = 0.0  # sky: no depth, no normal
    normal = np.zeros((height, width, 3))
    normal[..., 2] = -1.0
    instance = rng.integers(0, 3, (height, width))
    semantic = rng.integers(0, 19, (height, width))
    packed = pack_dense(depth, normal, instance, semantic)
    return packed, {"depth": depth, "instance": instance, "semantic": semantic}


def _with_dense(clip):
    camera = clip.rig.cameras[0]
    frames, expected = [], []
    for i, frame in enumerate(clip.frames):
        views = {c.name: _dense_view(camera.height, camera.width, 100 * i + k) for k, c in enumerate(clip.rig)}
        # the three kinds of dense source a frame may carry: a packed array, a sidecar file's bytes
        dense = {name: (packed if i % 2 else encode_packed(packed)) for name, (packed, _) in views.items()}
        frames.append(replace(frame, dense=dense))
        expected.append({name: truth for name, (_, truth) in views.items()})
    instances = {k + 1: agent.instance_id for k, agent in enumerate(clip.agents)}
    return replace(clip, frames=frames, dense_instances=instances), expected


def test_dense_ground_truth_round_trips_through_writer_and_reader(clips, tmp_path):
    clip, expected = _with_dense(clips[0])
    write_dataset([clip], tmp_path, splits={"all": [clip.name]})
    read = NuscDataset(tmp_path).clip(clip.name)
    assert read.dense_instances == clip.dense_instances
    for i, frame in enumerate(read.frames):
        assert sorted(frame.dense) == sorted(clip.rig.names)
        for channel, truth in expected[i].items():
            view = read_dense(frame.dense[channel])
            assert np.array_equal(view["depth"], truth["depth"].astype(np.float32))
            assert np.array_equal(view["instance"], truth["instance"])
            assert np.array_equal(view["semantic"], truth["semantic"])
            seen = truth["depth"] > 0
            assert np.allclose(view["normal"][seen][:, 2], -1.0, atol=1e-3) and not view["normal"][~seen].any()
            assert np.array_equal(load_dense(tmp_path, clip.name, channel, frame.timestamp)["depth"], view["depth"])
    # a clip read back and written again keeps the same dense bytes (files are copied)
    again = tmp_path / "again"
    write_dataset([read], again, splits={"all": [clip.name]})
    frame = read.frames[3]
    for channel in clip.rig.names:
        source = (tmp_path / "dreamdrive" / "dense" / clip.name / channel / f"{frame.timestamp}.npy.zst").read_bytes()
        copy = (again / "dreamdrive" / "dense" / clip.name / channel / f"{frame.timestamp}.npy.zst").read_bytes()
        assert source == copy


def test_clips_without_dense_ground_truth_write_no_dense_sidecar(clips, tmp_path):
    write_dataset([clips[0]], tmp_path, splits={"all": [clips[0].name]})
    assert not (tmp_path / "dreamdrive" / "dense").exists()
    read = NuscDataset(tmp_path).clip(clips[0].name)
    assert read.dense_instances == {} and not any(frame.dense for frame in read.frames)


def test_scene_depth_is_a_pure_function_of_the_clip(clips):
    """No dataset on disk: the depth comes from the frame's own dense ground truth."""
    clip, expected = _with_dense(clips[0])
    channel = clip.rig.names[2]
    depth = scene_depth(clip, 5, channel)
    assert np.array_equal(depth, expected[5][channel]["depth"].astype(np.float32))


def test_bad_dense_sources_are_refused(clips, tmp_path):
    with pytest.raises(DreamdriveError, match="not a dense sidecar"):
        read_packed(b"not zstd at all", "the test's bytes")
    with pytest.raises(DreamdriveError, match=r"not the packed \(4, H, W\) uint16"):
        read_packed(np.zeros((3, 8, 8), np.uint16), "a three-plane array")
    with pytest.raises(DreamdriveError, match="no dense sidecar"):
        read_packed(tmp_path / "missing.npy.zst")
    clip = clips[0]
    frames = [replace(clip.frames[0], dense={clip.rig.names[0]: str(tmp_path / "gone.npy.zst")}), *clip.frames[1:]]
    with pytest.raises(DreamdriveError, match="does not exist"):
        write_dataset([replace(clip, frames=frames)], tmp_path / "out", splits={"all": [clip.name]})
    assert not (tmp_path / "out" / "v1.0-dreamdrive").exists()  # nothing half-written is published
