"""A scene's pictures, the job: read the scene from a dataset and write its BEV plot, six-view grid and video."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterable
from pathlib import Path

from dreamdrive.core.errors import DreamdriveError
from dreamdrive.nusc.reader import NuscDataset
from dreamdrive.viz.pictures import bev_plot, save_png, six_view_grid, write_video


def scene_pictures(
    dataroot: str | Path,
    scene: str,
    out: str | Path,
    version: str | None = None,
    frame: int | None = None,
    gif: bool = False,
    clean: bool = False,
    progress: Callable[[str], Callable[[Iterable], Iterable]] | None = None,
) -> list[Path]:
    """Write `scene`'s BEV plot and six-view grid at `frame` (default: the middle), its MP4 (and GIF with `gif`,
    the grid without boxes and map with `clean`) into `out`; returns the files written.

    `progress(description)` gives a wrapper that shows progress over the video's frames.
    """
    # 1. The clip and the frame.
    out = Path(out)
    dataset = NuscDataset(dataroot, version)
    dataset.check()  # the tables are sound: a picture of a broken dataset would hide what is wrong
    clip = dataset.clip(scene)
    index = len(clip.frames) // 2 if frame is None else frame
    if not 0 <= index < len(clip.frames):
        raise DreamdriveError(f"frame {index} is out of range: scene {scene} has {len(clip.frames)} frames.")
    # 2. The pictures, then the videos, into a staging folder: a scene that fails halfway (a broken image)
    #    leaves nothing behind.
    created = not out.exists()
    staging = out / f".{scene}.staging"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        written = [
            bev_plot(clip, index, staging / f"{scene}_bev.png"),
            save_png(six_view_grid(clip, index), staging / f"{scene}_grid.png"),
            write_video(clip, staging / f"{scene}.mp4", progress=progress and progress(f"video {scene}")),
        ]
        if clean:
            written.append(save_png(six_view_grid(clip, index, annotate=False), staging / f"{scene}_clean.png"))
        if gif:
            gif_progress = progress and progress(f"gif {scene}")
            written.append(write_video(clip, staging / f"{scene}.gif", tile_width=200, progress=gif_progress))
    except BaseException:
        shutil.rmtree(out if created else staging, ignore_errors=True)
        raise
    # 3. Published together.
    final = []
    for path in written:
        path.replace(out / path.name)
        final.append(out / path.name)
    staging.rmdir()
    return final
