"""The `dreamdrive` command: one sub-command per stage."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import track
from rich.table import Table

from dreamdrive.core.errors import DreamdriveError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="dreamdrive: a driving world model as a synthetic-data generator for camera perception.",
)
console = Console()


def _progress(description: str):
    def wrap(items: Iterable) -> Iterable:
        items = list(items)
        return track(items, description=description, console=console, transient=False, disable=not items)

    return wrap


def print_summary(summary: dict) -> None:
    console.print(
        f"[bold]{summary['dataroot']}[/bold]  version [cyan]{summary['version']}[/cyan]"
        f"  ({'with' if summary['sidecar'] else 'without'} dreamdrive sidecars)"
    )
    console.print(
        f"{len(summary['scenes'])} scenes, {summary['samples']} samples (key frames), "
        f"{summary['sweeps']} camera sweeps, {summary['camera_frames']} camera images, "
        f"{summary['annotations']} annotations"
    )
    scenes = Table("scene", "samples", "description", title="scenes")
    for scene in summary["scenes"]:
        scenes.add_row(scene["name"], str(scene["samples"]), scene["description"])
    console.print(scenes)
    cameras = Table("camera", "width x height", title="cameras (ring order)")
    for name, (width, height) in summary["cameras"].items():
        cameras.add_row(name, f"{width} x {height}")
    console.print(cameras)
    classes = Table("class", "annotations", title="classes")
    for name, count in summary["classes"].items():
        classes.add_row(name, str(count))
    console.print(classes)
    splits = Table("split", "scenes", title="splits")
    for name, count in summary["splits"].items():
        splits.add_row(name, str(count))
    console.print(splits)


@app.command()
def info(
    dataroot: Path = typer.Argument(..., help="folder holding the nuScenes version folder"),
    version: str | None = typer.Option(None, help="version folder (found automatically if there is one)"),
    as_json: bool = typer.Option(False, "--json", help="print the summary as JSON"),
) -> None:
    """Summarise a nuScenes-format dataset: scenes, samples, sweeps, cameras, classes, splits."""
    from dreamdrive.nusc.reader import NuscDataset

    summary = NuscDataset(dataroot, version).summary()
    if as_json:
        print(json.dumps(summary, indent=1))
    else:
        print_summary(summary)


def write_scene_pictures(
    dataroot: Path, scene: str, out: Path, version: str | None, frame: int | None, gif: bool
) -> list[Path]:
    from dreamdrive.nusc.reader import NuscDataset
    from dreamdrive.viz.pictures import bev_plot, save_png, six_view_grid, write_video

    clip = NuscDataset(dataroot, version).clip(scene)
    index = len(clip.frames) // 2 if frame is None else frame
    if not 0 <= index < len(clip.frames):
        raise DreamdriveError(f"frame {index} is out of range: scene {scene} has {len(clip.frames)} frames.")
    written = [
        bev_plot(clip, index, out / f"{scene}_bev.png"),
        save_png(six_view_grid(clip, index), out / f"{scene}_grid.png"),
        write_video(clip, out / f"{scene}.mp4", progress=_progress(f"video {scene}")),
    ]
    if gif:
        written.append(write_video(clip, out / f"{scene}.gif", tile_width=200, progress=_progress(f"gif {scene}")))
    return written


@app.command()
def show(
    dataroot: Path = typer.Argument(..., help="folder holding the nuScenes version folder"),
    scene: str = typer.Option(..., help="scene name, e.g. scene-0061"),
    out: Path = typer.Option(..., help="output folder for the pictures"),
    version: str | None = typer.Option(None, help="version folder (found automatically if there is one)"),
    frame: int | None = typer.Option(None, help="frame index for the BEV plot and grid (default: the middle)"),
    gif: bool = typer.Option(False, help="also write a GIF"),
) -> None:
    """Write a scene's BEV plot, six-view grid (PNG) and video (MP4, one frame per camera frame)."""
    for path in write_scene_pictures(dataroot, scene, out, version, frame, gif):
        console.print(f"wrote {path}")


@app.command()
def demo(
    out: Path = typer.Option(Path("outputs/demo"), help="output folder"),
    scenes: int = typer.Option(2, min=1, help="number of hand-made scenes"),
    seconds: float = typer.Option(3.0, min=0.5, help="length of each scene"),
    width: int = typer.Option(480, min=16, help="image width"),
    height: int = typer.Option(270, min=16, help="image height"),
    seed: int = typer.Option(0, help="random seed"),
) -> None:
    """Build a small hand-made nuScenes-format dataset, summarise it and write its pictures."""
    from dreamdrive.demo import handmade_clips
    from dreamdrive.nusc.writer import write_dataset

    clips = handmade_clips(scenes, seconds, width, height, seed)
    names = [clip.name for clip in clips]
    split = max(1, len(names) - 1) if len(names) > 1 else 1
    dataroot = out / "dataset"
    write_dataset(
        clips,
        dataroot,
        splits={"demo_train": names[:split], "demo_val": names[split:]},
        overwrite=True,
        progress=_progress("writing scenes"),
    )
    from dreamdrive.nusc.reader import NuscDataset

    print_summary(NuscDataset(dataroot).summary())
    for path in write_scene_pictures(dataroot, names[0], out / "pictures", None, None, gif=True):
        console.print(f"wrote {path}")


def main() -> None:
    """Entry point: user errors are printed without a traceback and exit with status 2."""
    try:
        app()
    except DreamdriveError as error:
        Console(stderr=True).print(f"[bold red]error:[/bold red] {error}", highlight=False)
        sys.exit(2)


if __name__ == "__main__":
    main()
