"""`make demo`'s job, small: every file it promises is written, and the dataset it builds reads back."""

import pytest

from dreamdrive.nusc.reader import NuscDataset
from dreamdrive.pipelines.demo import run_demo


@pytest.mark.slow
def test_the_demo_writes_its_dataset_pictures_insertion_scenario_and_videos(tmp_path):
    lines, summaries = [], []
    out = run_demo(tmp_path / "demo", scenes=1, seconds=2.0, seed=0, log=lines.append, on_dataset=summaries.append,
                   video_steps=3)  # fmt: skip
    assert summaries and len(summaries[0]["scenes"]) == 1
    pictures = out / "pictures"
    scene = NuscDataset(out / "dataset").scene_names[0]
    for name in ("town.png", f"{scene}_bev.png", f"{scene}_grid.png", f"{scene}.mp4", "insertion.png"):
        assert (pictures / name).stat().st_size > 1000, name
    assert NuscDataset(out / "inserted").scene_names == [f"{scene}-naive"]
    for name in ("scenario.json", "script.py", "bev.png", "trajectory_map.png", "scenario.mp4"):
        assert (out / "scenario" / name).is_file(), name
    assert any("naive insertion into" in line for line in lines) and any("scenario:" in line for line in lines)
    generated = NuscDataset(out / "generated" / "dataset")
    assert generated.scene_names == [scene] and len(generated.clip(scene).frames) == 8
    assert (out / "generated" / "video.mp4").stat().st_size > 1000
    assert (out / "generated" / "real_vs_generated.png").stat().st_size > 1000
    text_to_video = NuscDataset(out / "text-to-video" / "dataset")
    [name] = text_to_video.scene_names
    assert len(text_to_video.clip(name).frames) == 17  # 4 s at 4 Hz, both ends
    assert (out / "text-to-video" / "video.mp4").stat().st_size > 1000
    assert any("from the prompt" in line for line in lines)
