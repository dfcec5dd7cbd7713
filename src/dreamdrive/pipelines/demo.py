"""What `make demo` runs: a small procedural dataset, its pictures, a naive insertion and one prompt end to end."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path

from dreamdrive.conditions.insert import InsertRequest
from dreamdrive.conditions.pictures import insertion_preview
from dreamdrive.nusc.reader import NuscDataset
from dreamdrive.pipelines.insert import insert_dataset
from dreamdrive.pipelines.pictures import scene_pictures
from dreamdrive.pipelines.scenario import from_prompt, write_outputs
from dreamdrive.world.builder import WorldConfig, build_world
from dreamdrive.world.plots import plot_town
from dreamdrive.world.town import make_town

DEMO_PROMPT = "A red truck cuts in from the left on a rainy night, and a pedestrian dashes out"


def run_demo(
    out: str | Path,
    scenes: int = 2,
    seconds: float = 6.0,
    seed: int = 0,
    log: Callable[[str], None] = print,
    on_dataset: Callable[[dict], None] | None = None,
    progress: Callable[[Iterable, int, str], Iterable] | None = None,
    frame_progress: Callable[[str], Callable[[Iterable], Iterable]] | None = None,
) -> Path:
    """Build the embedded default dataset (day, then night in the rain) under `out`/dataset, write its pictures,
    insert two assets into its first scene and turn one prompt into a scenario; returns `out`.

    `log` receives one line per thing written; `on_dataset` the dataset's summary once it is built; `progress`
    and `frame_progress` show progress over scenes and over a video's frames.
    """
    # 1. The procedural dataset, built with every core.
    out = Path(out)
    config = WorldConfig(
        scenes=scenes, seconds=seconds, seed=seed, weather=("clear", "rain"), time_of_day=("day", "night")
    )
    dataroot = out / "dataset"
    build_world(dataroot, config, overwrite=True, progress=progress, workers=os.cpu_count() or 1)
    dataset = NuscDataset(dataroot)
    if on_dataset is not None:
        on_dataset(dataset.summary())

    # 2. The town from above and every scene's pictures.
    log(f"wrote {plot_town(make_town(seed, config.blocks), out / 'pictures' / 'town.png')}")
    for name in dataset.scene_names:
        for path in scene_pictures(dataroot, name, out / "pictures", progress=frame_progress):
            log(f"wrote {path}")

    # 3. Naive insertion of two assets into the first scene, with its before/after picture.
    first = dataset.scene_names[0]
    request = InsertRequest(classes=("car", "truck"), auto=2, distance="near", seed=seed)
    _, [report] = insert_dataset(dataroot, out / "inserted", request, [first], overwrite=True)
    after = NuscDataset(out / "inserted").clip(report.scene)
    preview = insertion_preview(dataset.clip(first), after, report, out / "pictures" / "insertion.png")
    log(f"wrote {out / 'inserted'} (naive insertion into {first}) and {preview}")

    # 4. A text prompt, end to end.
    scenario, _ = from_prompt(DEMO_PROMPT, seed=seed)
    log(f"scenario: {DEMO_PROMPT!r} -> {scenario.description()}")
    write_outputs(scenario, out / "scenario")
    log(f"wrote {out / 'scenario'} (scenario.json, script.py, bev.png, trajectory_map.png, dataset/, MP4)")
    return out
