"""Text to multi-view video, DriveDreamer-2's system end to end: a prompt becomes a nuScenes-format dataset.

The stages, each timed (`STAGES`):

1. translate: the prompt becomes a scenario script (the translator), run in the
   sandbox into agent trajectories (lasting `seconds` if given);
2. map: the HD map is generated from the trajectories (`--map generated`) or taken
   from the named map, and the scenario is placed, validated and repaired on it;
3. render (first-frame mode only): the procedural renderer's view of the first
   frame, so the clip starts from a real-looking frame;
4. layouts: per-view map and box layouts on the video model's frames;
5. video: UniMVM generates the whole scenario, window by window (`video="model"`);
   or, with `video="world"`, the procedural renderer draws every model frame:
   the oracle, the same scenario and frames as the model would give, rendered;
6. write: `dataset/` (six cameras per frame, boxes on every frame from the
   trajectories, the map, the description), `video.mp4`, `bev.png` (map and
   trajectories), `frames.png` (six views at three moments), `script.py` and
   `scenario.json`; `generation.json` last, with the timings.

The same prompt, options and weights give the same bytes; a rerun of a finished
generation is a no-op (generation.json is written last and records its inputs).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch

from dreamdrive.core.camera import CameraRig
from dreamdrive.core.errors import DreamdriveError
from dreamdrive.files import atomic_write, clear_scratch
from dreamdrive.models.hdmap import HDMapNet
from dreamdrive.nusc.writer import write_dataset
from dreamdrive.pipelines.scenario import place_scenario, render_scenario, resolve_map, scenario_from_prompt
from dreamdrive.pipelines.vae import load_vae
from dreamdrive.pipelines.video import (
    check_pair,
    generate_images,
    load_video_model,
    model_frames,
    scene_images,
    scene_layouts,
    with_images,
)
from dreamdrive.scenario.retrieval import embed_texts
from dreamdrive.scenario.scene import to_clip
from dreamdrive.train.checkpoint import weights_fingerprint
from dreamdrive.viz.pictures import bev_plot, save_png, six_view_grid, write_video

MASKS = ("none", "first-frame")
VIDEOS = ("model", "world")
STAGES = ("translate", "map", "render", "layouts", "video", "write")
RECORD = "generation.json"
SPLIT = "generated"


@dataclass(frozen=True)
class GenerateOptions:
    """How a prompt becomes a clip.

    Args:
        map_spec: "generated" (an HD map generated from the trajectories), "road" (the scenario's own road or
            junction), "town", "town:SEED" or "nuscenes:DATAROOT:LOCATION".
        mask: "none" (layouts and text only) or "first-frame" (the renderer's first frame is given).
        model, vae, hdmap_model: model folders (default: the ones shipped in the package).
        seconds: how long the scenario lasts (default: what its script says, 8 s unless it says otherwise).
        frames: at most this many model frames (default: the whole scenario).
        seed: the scenario's seed (scenery, assets, map) and the video's noise.
        steps, guidance: Euler steps and classifier-free guidance scale of the video model.
        translator: "offline", "openai" or "llama".
        video: "model" (UniMVM draws the frames) or "world" (the procedural renderer draws them: the oracle
            of the same scenario, on the same frames, for the iso-epoch comparison).
    """

    map_spec: str = "generated"
    mask: str = "none"
    model: str | None = None
    vae: str | None = None
    hdmap_model: str | None = None
    seconds: float | None = None
    frames: int | None = None
    seed: int = 0
    steps: int = 30
    guidance: float = 2.0
    translator: str = "offline"
    video: str = "model"

    def __post_init__(self) -> None:
        if self.mask not in MASKS:
            raise DreamdriveError(f"--mask {self.mask!r} must be one of {', '.join(MASKS)}.")
        if self.video not in VIDEOS:
            raise DreamdriveError(f"--video {self.video!r} must be one of {', '.join(VIDEOS)}.")
        if self.steps < 1 or (self.frames is not None and self.frames < 1):
            raise DreamdriveError("--steps and --frames must be at least 1.")
        if not self.guidance > 0:
            raise DreamdriveError(f"the guidance scale must be positive, got {self.guidance}.")

    def to_json(self) -> dict:
        """The options as recorded; `video` only when not "model", so records from before it still match."""
        record = asdict(self)
        if record["video"] == "model":
            del record["video"]
        return record


@contextmanager
def one_thread():
    """torch on one intra-op thread: its CPU kernels then sum in one order, so the bytes written do not depend
    on how many cores the machine has (or on Ray's one CPU a task); `synth` is how generation uses many cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@contextmanager
def stage(timings: dict[str, float], name: str):
    """Add the seconds the block takes to `timings[name]`."""
    start = time.perf_counter()
    try:
        yield
    finally:
        timings[name] = timings.get(name, 0.0) + time.perf_counter() - start


def generate_from_prompt(
    prompt: str, out: str | Path, options: GenerateOptions = GenerateOptions(), overwrite: bool = False,
    progress: Callable | None = None,
) -> dict:  # fmt: skip
    """Turn `prompt` into a multi-view clip with exact boxes under `out` (see the module's docstring); returns
    the record written to `out`/generation.json, with the dataset's path under "dataset". torch runs on one thread
    (`one_thread`), so the same prompt and options give the same bytes on any machine of the same CPU kind."""
    with one_thread():
        return _generate(prompt, Path(out), options, overwrite, progress)


def _generate(prompt: str, out: Path, options: GenerateOptions, overwrite: bool, progress: Callable | None) -> dict:
    if not prompt.strip():
        raise DreamdriveError("the prompt is empty; describe what should happen, e.g. 'a truck cuts in at night'.")
    timings: dict[str, float] = {}
    # 0. The models, and a finished generation with the same inputs is returned as it is.
    with stage(timings, "map"):
        where = resolve_map(options.map_spec, options.seed, options.hdmap_model)  # a bad --map fails first
    network, autoencoder = load_video_model(options.model), load_vae(options.vae)
    check_pair(network, autoencoder)
    config = network.config
    inputs = {
        "prompt": prompt,
        "options": options.to_json(),
        "model": weights_fingerprint(network),
        "vae": weights_fingerprint(autoencoder),
        "hdmap_model": weights_fingerprint(where) if isinstance(where, HDMapNet) else None,
    }
    done = out / RECORD
    if done.is_file():
        record = json.loads(done.read_text())
        if record.get("inputs") == inputs:
            return {**record, "dataset": str(out / "dataset")}
    clear_scratch(out)  # what a killed generation left beside its outputs; one generation writes here
    # 1. Prompt -> script -> trajectories.
    with stage(timings, "translate"):
        scenario = scenario_from_prompt(prompt, options.translator, options.seed, options.seconds)
    # 2. The HD map, and the scenario placed and validated on it.
    with stage(timings, "map"):
        town = place_scenario(scenario, where)
    height, width = config.image_size
    rig = CameraRig.default(width, height)
    source = to_clip(scenario, town, rig)  # grey frames: the video model draws them
    # 3. First-frame mode: the procedural renderer's view of the first frame (the model frames start there).
    given = None
    rendered = "--mask first-frame" if options.mask == "first-frame" else "--video world"
    if (options.mask == "first-frame" or options.video == "world") and not town.roads:
        raise DreamdriveError(f"{rendered} draws with the procedural renderer, which draws procedural roads only; "
                              f"--map {options.map_spec} has none. Use --map road or town[:SEED].")  # fmt: skip
    if options.mask == "first-frame" and options.video == "model":
        with stage(timings, "render"):
            [first] = render_scenario(scenario, town, rig, [0])
            source.frames[0] = replace(source.frames[0], images=first)
            given = scene_images(source.subset([0]), config.image_size)
    # 4. Per-view layouts on the model frames.
    with stage(timings, "layouts"):
        clip, indices = model_frames(source, config, options.frames)
        layouts = scene_layouts(clip, config)
        text = embed_texts([clip.description])[0]
    # 5. The video, window by window; or the oracle, every model frame rendered.
    with stage(timings, "video"):
        if options.video == "world":
            views = render_scenario(scenario, town, rig, indices)
            generated = replace(clip, frames=[replace(f, images=v) for f, v in zip(clip.frames, views)])
        else:
            frames = generate_images(network, autoencoder, layouts, text, options.mask, given, options.seed,
                                     options.steps, options.guidance, progress)  # fmt: skip
            generated = with_images(clip, frames)
    # 6. The dataset, its pictures, the script; the record last.
    with stage(timings, "write"):
        write_dataset([generated], out / "dataset", splits={SPLIT: [generated.name]}, overwrite=overwrite)
        atomic_write(out / "script.py", scenario.script.encode())
        atomic_write(out / "scenario.json", json.dumps(scenario.to_json(town), indent=1).encode())
        bev_plot(generated, len(generated.frames) // 2, out / "bev.png", radius=60.0)
        picks = np.linspace(0, len(generated.frames) - 1, min(3, len(generated.frames))).round().astype(int)
        save_png(np.vstack([six_view_grid(generated, int(t), tile_width=224) for t in picks]), out / "frames.png")
        write_video(generated, out / "video.mp4", tile_width=width * 2)
    record = {
        "prompt": prompt,
        "scene": generated.name,
        "description": generated.description,
        "frames": len(indices),
        "source_frames": indices,
        "frame_stride": config.frame_stride,
        "report": list(scenario.report),
        "seconds": {name: round(timings[name], 3) for name in STAGES if name in timings},
        "inputs": inputs,
    }
    atomic_write(done, json.dumps(record, indent=1).encode())
    return {**record, "dataset": str(out / "dataset")}
