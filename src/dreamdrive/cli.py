"""The `dreamdrive` command: one sub-command per stage."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import typer
import typer.core
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


def _frame_progress(description: str):
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
    check: bool = typer.Option(False, "--check", help="list every problem in the tables and files; exit 1 if any"),
) -> None:
    """Summarise a nuScenes-format dataset: scenes, samples, sweeps, cameras, classes, splits. The tables are
    validated first (tokens, quaternions, finite values, time order); --check also checks every file and lists
    every problem."""
    from dreamdrive.nusc.reader import NuscDataset

    dataset = NuscDataset(dataroot, version)
    if check:
        problems = dataset.problems(files=True)
        for problem in problems:
            print(problem)
        tables = sum(len(getattr(dataset.nusc, t)) for t in ("scene", "sample", "sample_data", "sample_annotation"))
        print(
            f"{len(problems)} problem(s) in {dataset.dataroot / dataset.version} "
            f"({tables} scene, sample, sample_data and annotation records, {len(dataset.nusc.sample_data)} files)"
        )
        if problems:
            sys.exit(1)
        return
    dataset.check()
    summary = dataset.summary()
    if as_json:
        print(json.dumps(summary, indent=1))
    else:
        print_summary(summary)


@app.command()
def show(
    dataroot: Path = typer.Argument(..., help="folder holding the nuScenes version folder"),
    scene: str = typer.Option(..., help="scene name, e.g. scene-0061"),
    out: Path = typer.Option(..., help="output folder for the pictures"),
    version: str | None = typer.Option(None, help="version folder (found automatically if there is one)"),
    frame: int | None = typer.Option(None, help="frame index for the BEV plot and grid (default: the middle)"),
    gif: bool = typer.Option(False, help="also write a GIF"),
    clean: bool = typer.Option(False, help="also write the grid without boxes and map, NAME_clean.png"),
) -> None:
    """Write a scene's BEV plot, six-view grid (PNG) and video (MP4, one frame per camera frame)."""
    from dreamdrive.pipelines.pictures import scene_pictures

    for path in scene_pictures(dataroot, scene, out, version, frame, gif, clean, _frame_progress):
        console.print(f"wrote {path}")


@app.command()
def demo(
    out: Path = typer.Option(Path("outputs/demo"), help="output folder"),
    scenes: int = typer.Option(2, min=1, help="number of scenes"),
    seconds: float = typer.Option(6.0, min=0.5, help="length of each scene"),
    seed: int = typer.Option(0, help="random seed"),
) -> None:
    """Build a small procedural town dataset (day, then night in the rain) and its pictures, insert two assets
    into its first scene, and run one prompt."""
    from dreamdrive.pipelines.demo import run_demo

    run_demo(
        out,
        scenes,
        seconds,
        seed,
        console.print,
        print_summary,
        progress=_scene_progress,
        frame_progress=_frame_progress,
    )


class _PromptGroup(typer.core.TyperGroup):
    """A command group whose first argument, when it is no sub-command, is a prompt for `make`."""

    def resolve_command(self, ctx, args):
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["make", *args]
        return super().resolve_command(ctx, args)


scenario_app = typer.Typer(
    cls=_PromptGroup, no_args_is_help=True,
    help='Text to scenario: `dreamdrive scenario "PROMPT" --out DIR`, and the curated pairs and fine-tuning.',
)  # fmt: skip
app.add_typer(scenario_app, name="scenario")


@scenario_app.command("make")
def scenario_make(
    prompt: str = typer.Argument(..., help='what should happen, e.g. "a truck cuts in on a rainy night"'),
    out: Path = typer.Option(..., help="output folder"),
    translator: str = typer.Option(
        "offline",
        help="offline; tuned (offline with the shipped fine-tuned SmolLM2 between parser and retrieval; needs "
        "llama-cpp-python); llama; or openai (an OpenAI-compatible endpoint: DREAMDRIVE_LLM_BASE_URL, "
        "DREAMDRIVE_LLM_MODEL)",
    ),
    seed: int = typer.Option(0, help="random seed (roadside scenery, asset choice)"),
    render: bool = typer.Option(True, help="render the six cameras with the procedural renderer"),
    map_spec: str = typer.Option(
        "road",
        "--map",
        help="road (its own road or junction), generated (an HD map generated from the trajectories), town, "
        "town:SEED, or nuscenes:DATAROOT:LOCATION",
    ),
    hdmap_model: Path | None = typer.Option(None, help="for --map generated: an HD-map model (default: shipped)"),
) -> None:
    """Turn a text prompt into a scenario: script, trajectories, validation, pictures and a nuScenes dataset."""
    from dreamdrive.pipelines.scenario import from_prompt, write_outputs

    result, town = from_prompt(prompt, translator, seed, map_spec, hdmap_model)
    console.print(f"[bold]{result.description()}[/bold]  ({result.name})")
    console.print(result.script.strip())
    for line in result.report:
        console.print(f"validation: {line}")
    write_outputs(result, out, render=render, town=town)
    for name in ("scenario.json", "script.py", "bev.png", "trajectory_map.png", "dataset", "scenario.mp4"):
        if (out / name).exists():
            console.print(f"wrote {out / name}")


@scenario_app.command("pairs")
def scenario_pairs(out: Path = typer.Option(..., help="JSONL file to write")) -> None:
    """Export the curated Text-to-Script pairs as chat-format JSONL."""
    from dreamdrive.scenario.curated import curated_pairs, export_jsonl

    console.print(f"wrote {export_jsonl(out)} ({len(curated_pairs())} pairs)")


@scenario_app.command("finetune")
def scenario_finetune(
    model: Path = typer.Option(..., help="local Hugging Face causal LM folder, or a GGUF file (no download)"),
    out: Path = typer.Option(..., help="run folder (resumes if it holds the same run)"),
    steps: int = typer.Option(200, min=1, help="optimizer steps"),
    batch_size: int = typer.Option(4, min=1),
    learning_rate: float = typer.Option(2e-4),
    rank: int = typer.Option(8, min=1, help="LoRA rank"),
    alpha: int = typer.Option(16, min=1, help="LoRA alpha"),
    corpus: int = typer.Option(0, min=0, help="train on this many composed pairs (0: the curated pairs)"),
    targets: str = typer.Option("", help="comma-separated linear layers to adapt (default: the attention projections)"),
    max_length: int = typer.Option(384, min=16, help="tokens per example"),
    seed: int = typer.Option(0),
) -> None:
    """LoRA-fine-tune a local language model on the curated or composed Text-to-Script pairs."""
    from dreamdrive.scenario.finetune import FinetuneConfig, finetune
    from dreamdrive.scenario.tuned import SYSTEM

    config = FinetuneConfig(steps=steps, batch_size=batch_size, learning_rate=learning_rate, rank=rank, alpha=alpha,
                            max_length=max_length, seed=seed, corpus=corpus, system=SYSTEM if corpus else None,
                            targets=tuple(t for t in targets.split(",") if t) or None)  # fmt: skip
    run = finetune(model, out, config, progress=lambda items: track(items, description="fine-tuning", console=console))
    console.print(f"adapter in {run / 'checkpoint' / 'adapter'}")


@app.command()
def conditions(
    data: Path = typer.Option(..., help="a nuScenes-format dataroot"),
    scene: str = typer.Option(..., help="scene name"),
    out: Path = typer.Option(..., help="output folder"),
    frame: int | None = typer.Option(None, help="frame index (default: the middle key frame)"),
    version: str | None = typer.Option(None, help="version folder (found automatically if there is one)"),
    library: Path | None = typer.Option(
        None, help="asset library of inserted objects (default: $DREAMDRIVE_HOME/assets)"
    ),
    depth_model: Path | None = typer.Option(
        None, help="a local depth-estimation model folder (transformers) for data without dense depth"
    ),
    metric_depth: bool = typer.Option(False, help="the depth model predicts metres (else aligned to LiDAR)"),
) -> None:
    """Write a frame's layout maps (HD map, boxes) and guidance maps (depth, normals, edges) as six-view grids.

    On a scene written by `dreamdrive insert`, also the object and mask maps of the inserted assets.
    """
    from dreamdrive.conditions.pictures import condition_pictures
    from dreamdrive.nusc.reader import NuscDataset
    from dreamdrive.pipelines.insert import inserted_objects
    from dreamdrive.world.assets import AssetLibrary

    clip = NuscDataset(data, version).clip(scene)
    keys = clip.key_indices
    index = keys[len(keys) // 2] if frame is None else frame
    if not 0 <= index < len(clip.frames):
        raise DreamdriveError(f"frame {index} is out of range: scene {scene} has {len(clip.frames)} frames.")
    inserted = inserted_objects(data, clip, index, AssetLibrary(library))
    monocular = None
    if depth_model is not None:
        from dreamdrive.conditions.guidance import MonocularDepth

        monocular = MonocularDepth(depth_model, metric=metric_depth)
    for path in condition_pictures(clip, index, out, inserted, monocular):
        console.print(f"wrote {path}")


def _items(text: str | None) -> list[str] | None:
    """A comma-separated option as a list (None when not given)."""
    return [s.strip() for s in text.split(",") if s.strip()] if text else None


def _pose(text: str) -> tuple[float, float, float]:
    try:
        x, y, yaw = (float(v) for v in text.split(","))
    except ValueError as error:
        raise DreamdriveError(
            f"--at takes x,y,yaw (metres, metres, degrees) such as 12,-3.5,0, got {text!r}."
        ) from error
    return x, y, float(np.radians(yaw))


insert_app = typer.Typer(
    no_args_is_help=False,
    help="Insert 3D assets into clips (naive or generative) and train the generative insertion adapter.",
)
app.add_typer(insert_app, name="insert")


@insert_app.callback(invoke_without_command=True)
def insert(
    ctx: typer.Context,
    data: Path | None = typer.Option(None, help="the nuScenes-format dataroot to edit"),
    out: Path | None = typer.Option(None, help="output dataroot for the edited clips"),
    asset: str | None = typer.Option(None, help="a library asset id (`dreamdrive assets list`)"),
    detection_class: str | None = typer.Option(
        None, "--class", help="insert assets of these classes (comma-separated), a variant drawn at random"
    ),
    at: str | None = typer.Option(
        None, help="x,y,yaw: metres ahead, metres left, degrees, in the first frame's ego frame"
    ),
    script: Path | None = typer.Option(None, help="a scenario script: each of its actors is inserted along its path"),
    auto: int | None = typer.Option(None, help="sample this many placements per clip on lanes near the ego"),
    distance: str = typer.Option("any", help="for --auto: near (4-20 m), mid (20-35 m), far (35-50 m) or any"),
    side: str = typer.Option("any", help="for --auto: left, right or any side of the ego"),
    scenes: str | None = typer.Option(None, help="comma-separated scene names (default: all)"),
    mode: str = typer.Option(
        "naive",
        help="naive: paste the rendered asset (Dream4Drive's baseline); generative: re-render it in the scene; "
        "oracle: render it with the world that built the dataset (procedural builds only; the upper bound)",
    ),
    model: Path | None = typer.Option(None, help="generative: an adapter model or run folder (default: shipped)"),
    video_model: Path | None = typer.Option(
        None, help="generative: the video model the adapter was trained over (default: shipped)"
    ),
    vae: Path | None = typer.Option(None, help="generative: the video model's autoencoder (default: shipped)"),
    steps: int = typer.Option(30, help="generative: Euler steps"),
    cfg: float = typer.Option(2.0, help="generative: classifier-free guidance scale"),
    strength: float = typer.Option(
        0.3, help="generative: noise level the naive composite is re-rendered from (1: from pure noise)"
    ),
    seed: int = typer.Option(0, help="seed of the placements, asset variants and sampling"),
    with_originals: bool = typer.Option(False, help="also write the unedited clips"),
    library: Path | None = typer.Option(None, help="asset library folder (default: $DREAMDRIVE_HOME/assets)"),
    overwrite: bool = typer.Option(False, help="replace a different dataset already in --out"),
) -> None:
    """Insert 3D assets into clips with correct occlusion and write the edited clips as a nuScenes-format dataset.

    Writes OUT/previews/SCENE-MODE.png (before and after; generative: source, naive and generative) for every
    edited scene, and, in generative mode, OUT/previews/SCENE-generative.mp4 of the camera that sees most.
    `dreamdrive insert train` trains the generative mode's adapter.
    """
    if ctx.invoked_subcommand is not None:
        return
    if data is None or out is None:
        raise DreamdriveError("insert needs --data DATAROOT and --out DIR (or `dreamdrive insert train --help`).")
    from dreamdrive.conditions.insert import InsertRequest
    from dreamdrive.pipelines.insert import insert_dataset, write_previews
    from dreamdrive.world.assets import AssetLibrary

    if script is not None and not script.is_file():
        raise DreamdriveError(f"script {script} does not exist.")
    request = InsertRequest(
        asset=asset,
        classes=tuple(_items(detection_class) or ()),
        at=_pose(at) if at is not None else None,
        script=script.read_text() if script is not None else None,
        auto=auto,
        distance=distance,
        side=side,
        mode=mode,
        seed=seed,
        with_originals=with_originals,
    )
    generative = None
    if mode == "generative":
        from dreamdrive.pipelines.edit import GenerativeOptions

        generative = GenerativeOptions(
            str(model) if model else None, str(video_model) if video_model else None, str(vae) if vae else None,
            steps, cfg, strength=strength,
        )  # fmt: skip
    elif (model, video_model, vae) != (None, None, None):
        raise DreamdriveError("--model, --video-model and --vae are for --mode generative.")
    version, reports = insert_dataset(
        data, out, request, _items(scenes), AssetLibrary(library), overwrite=overwrite, progress=_scene_progress,
        generative=generative,
    )  # fmt: skip
    table = Table("scene", "inserted", "most pixels seen", "notes", title=f"{mode} insertion into {version}")
    for report in reports:
        objects = ", ".join(item.asset_id for item in report.instances)
        best = report.best_view()
        table.add_row(report.scene, objects, f"{best.pixels} px in {best.camera}", "; ".join(report.notes))
    write_previews(data, out, reports)
    console.print(table)
    console.print(f"dataset ready: {version}; pictures in {out / 'previews'}")


@insert_app.command("train")
def insert_train(
    out: Path = typer.Option(..., help="run folder (resumes if it holds the same run)"),
    data: Path | None = typer.Option(
        None, help="a recorded dataset instead of the procedural world: its vehicles play the asset"
    ),
    split: str | None = typer.Option(None, help="with --data: the split whose scenes give pairs (default: all)"),
    scenes: int = typer.Option(160, min=1, help="procedural scenes rendered as paired edits"),
    seconds: float = typer.Option(2.0, help="length of each scene (the model's frames at its stride must fit)"),
    seed: int = typer.Option(0, help="seed of the procedural world (keep held-out seeds apart)"),
    weather: str = typer.Option("clear,rain", help="comma-separated, cycled over scenes: clear, rain, fog"),
    time_of_day: str = typer.Option("day,day,night", help="comma-separated, cycled over scenes: day, dusk, night"),
    model: Path | None = typer.Option(None, help="the video model to start from (default: shipped)"),
    vae: Path | None = typer.Option(None, help="its autoencoder (default: shipped)"),
    preset: str = typer.Option("tiny", help="tiny (this CPU) or base (GPUs)"),
    fusion: str = typer.Option("weights", help="weights (learned per-condition weights) or attention"),
    finetune: bool = typer.Option(False, help="train the video DiT too (default: frozen, only the adapter trains)"),
    steps: int = typer.Option(900, min=1),
    batch_size: int = typer.Option(2, min=1),
    learning_rate: float = typer.Option(5e-4),
    ema_decay: float = typer.Option(0.99, help="of the weights' moving average that is saved (0: the last weights)"),
    save_every: int = typer.Option(50, min=1),
    train_seed: int = typer.Option(0, help="seed of the weights' initialisation and the batches"),
) -> None:
    """Train the generative insertion adapter on paired edits of the procedural world: each scene rendered with
    and without one of its vehicles, under its own light, shadows and weather (resumable; a finished run is
    kept). The pairs are rendered at the video model's image size and cached in OUT/pairs.

    With --data, a recorded dataset (real nuScenes) gives the pairs by Dream4Drive's recipe: in each scene one
    vehicle already there plays the asset, its own pixels the object image, and the clip is the target; the
    world options are then unused."""
    from dataclasses import replace

    from dreamdrive.models.adapter import preset as adapter_preset
    from dreamdrive.pipelines.edit import train_insertion
    from dreamdrive.pipelines.video import load_video_model
    from dreamdrive.train.loop import LoopConfig
    from dreamdrive.world.builder import WorldConfig

    config = load_video_model(model).config
    height, width = config.image_size
    world = WorldConfig(scenes=scenes, seconds=seconds, seed=seed, width=width, height=height,
                        weather=tuple(_items(weather) or ()), time_of_day=tuple(_items(time_of_day) or ()))  # fmt: skip
    adapter = replace(adapter_preset(preset, config), fusion=fusion)
    loop = LoopConfig(steps=steps, learning_rate=learning_rate, warmup=min(50, steps // 2), ema_decay=ema_decay,
                      save_every=save_every, seed=train_seed)  # fmt: skip
    bar = _step_progress("training")
    if data is None and split is not None:
        raise DreamdriveError("--split chooses scenes of --data; give --data DATAROOT too.")
    folder = train_insertion(out, world, model, vae, adapter, finetune, batch_size, loop,
                             progress=lambda step, total, loss: bar(step, total, {"loss": loss}),
                             pairs_progress=_scene_progress, data=data, split=split)  # fmt: skip
    console.print(f"model: {folder}")


detect_app = typer.Typer(no_args_is_help=True, help="The multi-view camera 3D detector: train, evaluate, track.")
experiment_app = typer.Typer(no_args_is_help=True, help="Experiments measured the fair way (iso-epoch).")
app.add_typer(detect_app, name="detect")
app.add_typer(experiment_app, name="experiment")


def _detector_config(image_size: str, bev_cells: int, width: int):
    from dreamdrive.perception.data import DetectorConfig

    try:
        w, h = (int(v) for v in image_size.lower().split("x"))
    except ValueError as error:
        raise DreamdriveError(f"--image-size takes WIDTHxHEIGHT such as 224x128, got {image_size!r}.") from error
    return DetectorConfig(image_size=(w, h), bev_cells=bev_cells, width=width)


def _step_progress(description: str):
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    counts = TextColumn("{task.completed}/{task.total} {task.fields[loss]}")
    progress = Progress(TextColumn(description), BarColumn(), counts, TimeRemainingColumn(), console=console)
    state = {}

    def update(step: int, total: int, losses: dict) -> None:
        if "task" not in state:
            progress.start()
            state["task"] = progress.add_task(description, total=total, loss="")
        progress.update(state["task"], completed=step, loss=f"loss {losses.get('loss', 0):.3f}")
        if step >= total:
            progress.stop()

    return update


@detect_app.command("train")
def detect_train(
    data: str = typer.Option(..., help="nuScenes-format dataroot(s), comma-separated"),
    out: Path = typer.Option(..., help="run folder (resumes if it holds this run)"),
    epochs: int = typer.Option(20, min=1, help="passes over the epoch's samples"),
    split: str | None = typer.Option(
        None, help="training split of every dataset (default: each one's own: train, proc_train, *_train)"
    ),
    ratio: str | None = typer.Option(None, help="per dataset, the share of its samples in each epoch, e.g. 1,0.5"),
    batch_size: int = typer.Option(4, min=1),
    learning_rate: float = typer.Option(2e-3),
    seed: int = typer.Option(0),
    every_frame: bool = typer.Option(False, help="learn from every camera frame (datasets annotated on every frame)"),
    backbone_weights: Path | None = typer.Option(
        None, help="a local ResNet-18 state dict for the backbone (needs --width 64)"
    ),
    image_size: str = typer.Option("224x128", help="input size WIDTHxHEIGHT"),
    bev_cells: int = typer.Option(80, help="BEV grid cells per side (over 102.4 m)"),
    width: int = typer.Option(32, help="backbone width (64: ResNet-18)"),
    workers: int = typer.Option(0, min=0, help="data loader processes"),
) -> None:
    """Train the multi-view 3D detector (resumable; `accelerate launch` runs it on several GPUs)."""
    from dreamdrive.perception.data import Mix
    from dreamdrive.perception.experiment import default_split
    from dreamdrive.perception.train import TrainConfig, train

    roots = _items(data) or []
    try:
        ratios = [float(r) for r in ratio.split(",")] if ratio else []
    except ValueError as error:
        raise DreamdriveError(f"--ratio takes one number per dataset such as 1,0.5, got {ratio!r}.") from error
    mix = Mix([(root, split or default_split(root, "train")) for root in roots], ratios)
    config = TrainConfig(epochs=epochs, batch_size=batch_size, learning_rate=learning_rate, seed=seed,
                         every_frame=every_frame, backbone_weights=str(backbone_weights) if backbone_weights else None,
                         workers=workers)  # fmt: skip
    model = train(mix, out, config, _detector_config(image_size, bev_cells, width), progress=_step_progress("training"))
    console.print(f"model: {model}")


@detect_app.command("eval")
def detect_eval(
    run: Path = typer.Option(..., help="a run folder from `detect train` (or its model folder)"),
    data: Path = typer.Option(..., help="the nuScenes-format dataroot to evaluate on"),
    split: str | None = typer.Option(None, help="the split (default: val, proc_val or *_val)"),
    out: Path = typer.Option(..., help="output folder"),
    batch_size: int = typer.Option(4, min=1),
    pictures: int = typer.Option(4, min=0, help="BEV and front-camera pictures of this many samples"),
    camera_only: bool = typer.Option(False, help="keep ground-truth boxes no LiDAR point hit (generated clips)"),
) -> None:
    """Detect on a split; write results_nusc.json, the devkit's metrics_summary.json, report.md and PR curves."""
    from dreamdrive.pipelines.detect import evaluate_run

    results = evaluate_run(run, data, out, split, batch_size, pictures, camera_only)
    console.print((out / "report.md").read_text())
    console.print(
        f"wrote {results}, {out / 'metrics_summary.json'}, {out / 'report.json'}, PR curves in {out / 'plots'}"
        f" and pictures in {out / 'pictures'}"
    )


@detect_app.command("track")
def detect_track(
    run: Path = typer.Option(..., help="a run folder from `detect train` (or its model folder)"),
    data: Path = typer.Option(..., help="the nuScenes-format dataroot to track on"),
    split: str | None = typer.Option(None, help="the split (default: val, proc_val or *_val)"),
    out: Path = typer.Option(..., help="output folder"),
) -> None:
    """Detect and track on a split; write results_tracking.json and the devkit's tracking metrics_summary.json."""
    from dreamdrive.pipelines.detect import track_run

    results = track_run(run, data, out, split)
    console.print((out / "report.md").read_text())
    console.print(f"wrote {results} and {out / 'metrics_summary.json'}")


@experiment_app.command("iso-epoch")
def experiment_iso_epoch(
    real: Path = typer.Option(..., help="the real dataset (its training split trains, its validation split scores)"),
    synthetic: list[str] = typer.Option(..., help="NAME=DATAROOT of a synthetic dataset (repeat for several)"),
    epochs: str = typer.Option("1,2,3", help="schedules: multiples of --epoch-unit"),
    epoch_unit: int = typer.Option(1, min=1, help="epochs of the 1x schedule"),
    seeds: int = typer.Option(3, min=1),
    out: Path = typer.Option(..., help="output folder (resumes)"),
    batch_size: int = typer.Option(4, min=1),
    learning_rate: float = typer.Option(2e-3),
    image_size: str = typer.Option("224x128"),
    bev_cells: int = typer.Option(80),
    width: int = typer.Option(32),
    val: list[str] = typer.Option(
        [], help="NAME=DATAROOT[:SPLIT] of a held-out set every run is scored on too (repeat for several)"
    ),
    tracking: bool = typer.Option(False, help="also track on the detections and score AMOTA"),
    workers: int = typer.Option(
        1, min=1, help="runs trained at once, each in its own process with its share of the cores"
    ),
    compare: list[str] = typer.Option(
        [], help="A:B, two mixes (synthetic names or real) to test against each other, paired (repeat for several)"
    ),
) -> None:
    """Train real-only and real+synthetic detectors for the same epochs over seeds; score each on the real
    validation split and on held-out sets; write results.json/.md/.png."""
    from dreamdrive.perception.experiment import iso_epoch
    from dreamdrive.perception.train import TrainConfig

    named = {}
    for item in synthetic:
        name, _, root = item.partition("=")
        if not name or not root:
            raise DreamdriveError(f"--synthetic takes NAME=DATAROOT, got {item!r}.")
        named[name] = root
    held_out = {}
    for item in val:
        name, _, where = item.partition("=")
        root, _, split = where.partition(":")
        if not name or not root:
            raise DreamdriveError(f"--val takes NAME=DATAROOT or NAME=DATAROOT:SPLIT, got {item!r}.")
        held_out[name] = (root, split or None)
    try:
        schedules = [int(v) for v in epochs.split(",")]
    except ValueError as error:
        raise DreamdriveError(f"--epochs takes comma-separated integers such as 1,2,3, got {epochs!r}.") from error
    pairs = []
    for item in compare:
        a, _, b = item.partition(":")
        if not a or not b:
            raise DreamdriveError(f"--compare takes A:B, two mix names such as generative:naive, got {item!r}.")
        pairs.append((a, b))
    config = TrainConfig(batch_size=batch_size, learning_rate=learning_rate)
    detector = _detector_config(image_size, bev_cells, width)
    iso_epoch(real, named, out, schedules, seeds, epoch_unit, config, detector,
              progress=lambda n: console.print(f"run {n}"), held_out=held_out, tracking=tracking,
              workers=workers, compare=pairs)  # fmt: skip
    console.print((out / "results.md").read_text())
    console.print(f"wrote {out / 'results.json'}, {out / 'results.md'}, {out / 'results.png'}")


metrics_app = typer.Typer(no_args_is_help=True, help="Video metrics: FID, FVD, PSNR/SSIM, cross-view consistency.")
app.add_typer(metrics_app, name="metrics")


def _write_json(data: dict, out: Path | None) -> None:
    console.print_json(json.dumps(data))
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(data, indent=1))
        console.print(f"wrote {out}")


@metrics_app.command("fid")
def metrics_fid(
    real: Path = typer.Option(..., help="the real dataset"),
    generated: Path = typer.Option(..., help="the generated dataset (the same cameras)"),
    weights: Path | None = typer.Option(None, help="Inception weights pt_inception-2015-12-05-6726825d.pth"),
    scenes: str | None = typer.Option(None, help="comma-separated scenes (default: all)"),
    max_frames: int | None = typer.Option(None, help="at most this many frames per camera and dataset"),
    cameras: str | None = typer.Option(None, help="comma-separated cameras (default: all six)"),
    proxy: bool = typer.Option(False, help="without --weights: a labelled proxy with seeded random weights"),
    out: Path | None = typer.Option(None, help="also write the figures to this JSON file"),
) -> None:
    """Per-camera FID of generated clips against real ones, and the mean over cameras."""
    from dreamdrive.metrics.video import fid

    result = fid(real, generated, weights, _items(scenes), max_frames, progress=lambda c: console.print(f"FID {c}"),
                 cameras=_items(cameras), proxy=proxy)  # fmt: skip
    _write_json(result, out)


@metrics_app.command("fvd")
def metrics_fvd(
    real: Path = typer.Option(..., help="the real dataset"),
    generated: Path = typer.Option(..., help="the generated dataset"),
    weights: Path | None = typer.Option(None, help="I3D weights: the StyleGAN-V i3d_torchscript.pt or a state dict"),
    scenes: str | None = typer.Option(None, help="comma-separated scenes (default: all)"),
    length: int = typer.Option(16, help="frames per window"),
    cameras: str | None = typer.Option(None, help="comma-separated cameras (default: all six)"),
    proxy: bool = typer.Option(False, help="without --weights: a labelled proxy with seeded random weights"),
    out: Path | None = typer.Option(None, help="also write the figures to this JSON file"),
) -> None:
    """FVD over 16-frame windows of every camera (and per camera)."""
    from dreamdrive.metrics.video import fvd

    result = fvd(real, generated, weights, _items(scenes), length, progress=lambda c: console.print(f"FVD {c}"),
                 cameras=_items(cameras), proxy=proxy)  # fmt: skip
    _write_json(result, out)


@metrics_app.command("consistency")
def metrics_consistency(
    data: Path = typer.Option(..., help="the dataset to score (generated clips)"),
    real: Path | None = typer.Option(None, help="a real dataset to score the same way, for the ratio"),
    scenes: str | None = typer.Option(None, help="comma-separated scenes (default: all)"),
    every: int = typer.Option(6, min=1, help="score every N-th frame"),
    out: Path | None = typer.Option(None, help="also write the figures to this JSON file"),
) -> None:
    """Cross-view consistency: SSIM of adjacent cameras' overlapping strips (and its ratio to real clips)."""
    from dreamdrive.metrics.video import consistency

    result = {"data": consistency(data, _items(scenes), every)}
    if real is not None:
        result["real"] = consistency(real, _items(scenes), every)
        result["ratio"] = result["data"]["score"] / result["real"]["score"]
    _write_json(result, out)


@metrics_app.command("recon")
def metrics_recon(
    real: Path = typer.Option(..., help="the real dataset"),
    generated: Path = typer.Option(..., help="its reconstruction (same scenes and frames)"),
    scenes: str | None = typer.Option(None, help="comma-separated scenes (default: all)"),
    out: Path | None = typer.Option(None, help="also write the figures to this JSON file"),
) -> None:
    """PSNR and SSIM of reconstructed frames against the real frames."""
    from dreamdrive.metrics.video import reconstruction

    _write_json(reconstruction(real, generated, _items(scenes)), out)


world_app = typer.Typer(no_args_is_help=True, help="The embedded procedural world: towns, traffic, rendering.")
assets_app = typer.Typer(no_args_is_help=True, help="The asset library (parametric meshes and your own GLB/OBJ).")
app.add_typer(world_app, name="world")
app.add_typer(assets_app, name="assets")


def _scene_progress(items, total: int, description: str):
    return track(items, total=total, description=description, console=console)


def _blocks(text: str) -> tuple[int, int]:
    try:
        columns, rows = (int(v) for v in text.lower().split("x"))
    except ValueError as error:
        raise DreamdriveError(f"--blocks takes COLUMNSxROWS such as 3x3, got {text!r}.") from error
    if columns < 2 or rows < 2:
        raise DreamdriveError(f"--blocks needs at least 2x2 intersections, got {text!r}.")
    return columns, rows


@world_app.command("build")
def world_build(
    out: Path = typer.Option(..., help="output dataroot"),
    scenes: int = typer.Option(4, min=1, help="number of scenes"),
    seconds: float = typer.Option(8.0, min=0.5, help="length of each scene in seconds"),
    seed: int = typer.Option(0, help="seed of the town, traffic and asset variants"),
    width: int = typer.Option(448, help="camera image width"),
    height: int = typer.Option(256, help="camera image height"),
    weather: str = typer.Option("clear", help="comma-separated, cycled over scenes: clear, rain, fog"),
    time_of_day: str = typer.Option("day", help="comma-separated, cycled over scenes: day, dusk, night"),
    blocks: str = typer.Option("3x3", help="intersections of the town, COLUMNSxROWS"),
    overwrite: bool = typer.Option(False, help="replace a different dataset already in --out"),
    workers: int = typer.Option(0, min=0, help="scenes built in parallel processes (0: one per CPU core)"),
) -> None:
    """Build a nuScenes-format dataset in a procedural town (resumable; the same seed gives the same bytes)."""
    from dreamdrive.world.builder import WorldConfig, build_world

    config = WorldConfig(
        scenes=scenes,
        seconds=seconds,
        seed=seed,
        width=width,
        height=height,
        weather=tuple(v.strip() for v in weather.split(",")),
        time_of_day=tuple(v.strip() for v in time_of_day.split(",")),
        blocks=_blocks(blocks),
    )
    version = build_world(
        out, config, overwrite=overwrite, progress=_scene_progress, workers=workers or os.cpu_count() or 1
    )
    console.print(f"dataset ready: {version}")


@world_app.command("map")
def world_map(
    out: Path = typer.Option(..., help="PNG to write"),
    seed: int = typer.Option(0, help="town seed"),
    blocks: str = typer.Option("3x3", help="intersections, COLUMNSxROWS"),
) -> None:
    """Draw a procedural town from above: roads, lanes, markings, crossings, sidewalks, buildings."""
    from dreamdrive.world.plots import plot_town
    from dreamdrive.world.town import make_town

    console.print(f"wrote {plot_town(make_town(seed, _blocks(blocks)), out)}")


@assets_app.command("list")
def assets_list(
    library: Path | None = typer.Option(None, help="library folder (default: $DREAMDRIVE_HOME/assets)"),
) -> None:
    """List the assets: the parametric library (written on first use) and those you added."""
    from dreamdrive.world.assets import AssetLibrary

    lib = AssetLibrary(library)
    lib.ensure_builtin()
    table = Table("id", "class", "width", "length", "height", "source", title=f"assets in {lib.root}")
    for info in lib.list():
        table.add_row(info.asset_id, info.detection_class, *(f"{v:.2f}" for v in info.size), info.source)
    console.print(table)


@assets_app.command("add")
def assets_add(
    mesh: Path = typer.Argument(..., help="a GLB, glTF or OBJ file"),
    detection_class: str = typer.Option(..., "--class", help="one of the 10 nuScenes detection classes"),
    asset_id: str | None = typer.Option(None, "--id", help="id in the library (default: user-FILENAME)"),
    up: str = typer.Option("+y", help="the mesh's up axis (+x, -x, +y, -y, +z, -z)"),
    forward: str = typer.Option("+x", help="the mesh's forward axis"),
    size: str | None = typer.Option(
        None, help="fit exactly to WIDTH,LENGTH,HEIGHT metres (default: scale to the class's length)"
    ),
    library: Path | None = typer.Option(None, help="library folder"),
) -> None:
    """Import your own mesh as an asset, turned to x forward / z up and sized for its class."""
    from dreamdrive.world.assets import AssetLibrary

    dims = None
    if size is not None:
        try:
            dims = tuple(float(v) for v in size.split(","))
            assert len(dims) == 3 and min(dims) > 0
        except (ValueError, AssertionError) as error:
            raise DreamdriveError(f"--size takes three positive numbers WIDTH,LENGTH,HEIGHT, got {size!r}.") from error
    asset = AssetLibrary(library).add(mesh, detection_class, asset_id, up=up, forward=forward, size=dims)
    console.print(f"added {asset.info.asset_id} ({asset.info.detection_class}, size {asset.info.size})")


@assets_app.command("show")
def assets_show(
    asset_id: str = typer.Argument(..., help="asset id (see `dreamdrive assets list`)"),
    out: Path = typer.Option(..., help="PNG to write"),
    library: Path | None = typer.Option(None, help="library folder"),
) -> None:
    """Render an asset from eight angles (a turntable) to a PNG."""
    from dreamdrive.world.assets import AssetLibrary
    from dreamdrive.world.plots import turntable

    lib = AssetLibrary(library)
    lib.ensure_builtin()
    console.print(f"wrote {turntable(lib.get(asset_id), out)}")


hdmap_app = typer.Typer(no_args_is_help=True, help="DriveDreamer-2's HD-map generator: trajectories in, HD map out.")
app.add_typer(hdmap_app, name="hdmap")


def _seed_range(text: str) -> list[int]:
    """'0-59' or '1,4,9' as a list of seeds."""
    try:
        if "-" in text:
            first, last = (int(v) for v in text.split("-"))
            return list(range(first, last + 1))
        return [int(v) for v in text.split(",")]
    except ValueError as error:
        raise DreamdriveError(f"--towns takes FIRST-LAST or seeds a,b,c such as 0-59, got {text!r}.") from error


@hdmap_app.command("train")
def hdmap_train(
    out: Path = typer.Option(..., help="run folder (resumes if it holds the same run)"),
    preset: str = typer.Option("tiny", help="tiny (this CPU) or base (GPUs)"),
    condition: str | None = typer.Option(None, help="controlnet or concat (default: the preset's)"),
    towns: str = typer.Option("0-59", help="procedural town seeds to train on, FIRST-LAST or a,b,c"),
    per_town: int = typer.Option(40, min=1, help="training pairs per town"),
    steps: int = typer.Option(2000, min=1),
    batch_size: int = typer.Option(16, min=1),
    learning_rate: float = typer.Option(2e-4),
    save_every: int = typer.Option(100, min=1),
    seed: int = typer.Option(0),
) -> None:
    """Train the HD-map generator on procedural towns and their traffic (resumable; a finished run is kept)."""
    from dataclasses import replace

    from dreamdrive.models.hdmap import PRESETS
    from dreamdrive.pipelines.hdmap import train_hdmap
    from dreamdrive.train.loop import LoopConfig

    if preset not in PRESETS:
        raise DreamdriveError(f"--preset {preset!r} must be one of {list(PRESETS)}.")
    config = PRESETS[preset] if condition is None else replace(PRESETS[preset], condition=condition)
    loop = LoopConfig(steps=steps, learning_rate=learning_rate, save_every=save_every, seed=seed)
    bar = _step_progress("training")
    model = train_hdmap(out, preset, _seed_range(towns), per_town, batch_size, loop, config,
                        progress=lambda step, total, loss: bar(step, total, {"loss": loss}),
                        pairs_progress=_scene_progress)  # fmt: skip
    console.print(f"model: {model}")


@hdmap_app.command("generate")
def hdmap_generate(
    scenario: Path = typer.Option(..., help="a folder that `dreamdrive scenario` wrote"),
    out: Path = typer.Option(..., help="output folder: one sample_K folder per sample"),
    samples: int = typer.Option(4, min=1, help="maps to generate (seeds SEED, SEED+1, ...)"),
    seed: int = typer.Option(0),
    model: Path | None = typer.Option(None, help="a model or run folder (default: the shipped tiny model)"),
) -> None:
    """Generate HD maps that fit a scenario's trajectories: raster, vector map (JSON) and pictures per sample."""
    from dreamdrive.pipelines.hdmap import generate_for_scenario

    for folder in generate_for_scenario(scenario, out, samples, seed, model):
        console.print(f"wrote {folder} (hdmap.png, hdmap.json, trajectories.png, overlay.png)")


vae_app = typer.Typer(no_args_is_help=True, help="The world model's latent autoencoder: train, reconstruct.")
app.add_typer(vae_app, name="vae")


def _dataroots(text: str) -> list[Path]:
    roots = [Path(part) for part in text.split(",") if part]
    if not roots:
        raise DreamdriveError("--data takes DATAROOT[,DATAROOT...], got nothing.")
    return roots


@vae_app.command("train")
def vae_train(
    data: str = typer.Option(..., help="nuScenes-format dataroots, DATAROOT[,DATAROOT]"),
    out: Path = typer.Option(..., help="run folder (resumes if it holds the same run)"),
    preset: str = typer.Option("tiny", help="tiny (this CPU) or base (GPUs)"),
    split: str = typer.Option("proc_train", help="the split to train on ('all': every scene)"),
    steps: int = typer.Option(3000, min=1),
    batch_size: int = typer.Option(16, min=1),
    crop: int = typer.Option(48, min=8, help="side of the random square crops trained on, pixels"),
    learning_rate: float = typer.Option(1e-3),
    ema_decay: float = typer.Option(0.99, help="of the weights' moving average that is saved (0: the last weights)"),
    save_every: int = typer.Option(200, min=1),
    seed: int = typer.Option(0),
) -> None:
    """Train the autoencoder on the camera frames of datasets (resumable; a finished run is kept)."""
    from dreamdrive.pipelines.vae import train_vae
    from dreamdrive.train.loop import LoopConfig

    loop = LoopConfig(steps=steps, learning_rate=learning_rate, ema_decay=ema_decay, save_every=save_every,
                      seed=seed)  # fmt: skip
    bar = _step_progress("training")
    model = train_vae(out, _dataroots(data), preset, None if split == "all" else split, batch_size, crop, loop,
                      progress=lambda step, total, loss: bar(step, total, {"loss": loss}),
                      frames_progress=_scene_progress)  # fmt: skip
    console.print(f"model: {model}")


@vae_app.command("recon")
def vae_recon(
    data: Path = typer.Option(..., help="a nuScenes-format dataroot"),
    out: Path = typer.Option(..., help="folder for recon.json and recon.png"),
    model: Path | None = typer.Option(None, help="an autoencoder, run or AutoencoderKL folder (default: shipped)"),
    split: str = typer.Option("all", help="the split to reconstruct ('all': every scene)"),
    every: int = typer.Option(12, min=1, help="every N-th camera frame"),
) -> None:
    """Reconstruct a dataset's camera frames: PSNR and SSIM, and a picture of real over reconstructed."""
    from dreamdrive.pipelines.vae import recon_dataset

    scores = recon_dataset(data, out, model, None if split == "all" else split, every)
    console.print(f"PSNR {scores['psnr']:.2f} dB, SSIM {scores['ssim']:.3f} over {scores['images']} images; "
                  f"wrote {out / 'recon.png'}")  # fmt: skip


video_app = typer.Typer(no_args_is_help=True, help="The UniMVM multi-view video model: train, generate.")
app.add_typer(video_app, name="video")


@video_app.command("train")
def video_train(
    data: str = typer.Option(..., help="nuScenes-format dataroots, DATAROOT[,DATAROOT]"),
    out: Path = typer.Option(..., help="run folder (resumes if it holds the same run)"),
    vae: Path | None = typer.Option(None, help="the autoencoder (default: shipped)"),
    preset: str = typer.Option("tiny", help="tiny (this CPU) or base (GPUs)"),
    split: str = typer.Option("proc_train", help="the split to train on ('all': every scene)"),
    steps: int = typer.Option(4000, min=1),
    batch_size: int = typer.Option(4, min=1),
    learning_rate: float = typer.Option(3e-4),
    ema_decay: float = typer.Option(0.99, help="of the weights' moving average that is saved (0: the last weights)"),
    save_every: int = typer.Option(100, min=1),
    seed: int = typer.Option(0),
) -> None:
    """Train the video model on datasets' scenes, their latents cached once (resumable; a finished run is kept)."""
    from dreamdrive.pipelines.video import train_video
    from dreamdrive.train.loop import LoopConfig

    loop = LoopConfig(steps=steps, learning_rate=learning_rate, ema_decay=ema_decay, save_every=save_every,
                      seed=seed)  # fmt: skip
    bar = _step_progress("training")
    model = train_video(out, _dataroots(data), vae, preset, None if split == "all" else split, batch_size, loop,
                        progress=lambda step, total, loss: bar(step, total, {"loss": loss}),
                        scenes_progress=_scene_progress)  # fmt: skip
    console.print(f"model: {model}")


@video_app.command("generate")
def video_generate(
    data: Path = typer.Option(..., help="a nuScenes-format dataroot"),
    scene: str = typer.Option(..., help="the scene whose layouts condition the clip"),
    out: Path = typer.Option(..., help="output folder: dataset/, video.mp4, real_vs_generated.png"),
    model: Path | None = typer.Option(None, help="a video model or run folder (default: shipped)"),
    vae: Path | None = typer.Option(None, help="the autoencoder (default: shipped)"),
    mask: str = typer.Option("first-frame", help="what is given: none, first-frame or front-view"),
    frames: int | None = typer.Option(None, min=1, help="model frames to generate (default: the whole scene)"),
    steps: int = typer.Option(30, min=1, help="Euler steps"),
    cfg: float = typer.Option(2.0, help="classifier-free guidance scale"),
    seed: int = typer.Option(0),
    overwrite: bool = typer.Option(False, help="replace a different dataset in OUT/dataset"),
) -> None:
    """Generate a multi-view clip of a scene from its map and box layouts, written as a nuScenes-format dataset."""
    from dreamdrive.pipelines.video import generate_video

    record = generate_video(data, scene, out, model, vae, mask, frames, steps, cfg, seed, overwrite,
                            progress=lambda items: track(items, description="windows", console=console))  # fmt: skip
    console.print(f"{record['frames']} frames x 6 views; wrote {record['dataset']}, {out / 'video.mp4'} and "
                  f"{out / 'real_vs_generated.png'}")  # fmt: skip


MAP_HELP = (
    "generated (an HD map generated from the trajectories), road (the scenario's own road or junction), "
    "town, town:SEED, or nuscenes:DATAROOT:LOCATION"
)


VIDEO_HELP = "model (UniMVM draws the frames) or world (the procedural renderer draws them: the oracle)"


def _generate_options(map_spec, mask, model, vae, hdmap_model, seconds, frames, seed, steps, cfg, translator, video):
    from dreamdrive.pipelines.generate import GenerateOptions

    paths = [str(p) if p is not None else None for p in (model, vae, hdmap_model)]
    return GenerateOptions(map_spec, mask, *paths, seconds, frames, seed, steps, cfg, translator, video)


@app.command()
def generate(
    prompt: str = typer.Argument(..., help='what should happen, e.g. "a truck cuts in on a rainy night"'),
    out: Path = typer.Option(..., help="output folder: dataset/, video.mp4, bev.png, frames.png, script.py"),
    map_spec: str = typer.Option("generated", "--map", help=MAP_HELP),
    mask: str = typer.Option("none", help="none (layouts and text only) or first-frame (the renderer's first frame)"),
    model: Path | None = typer.Option(None, help="a video model or run folder (default: shipped)"),
    vae: Path | None = typer.Option(None, help="the autoencoder (default: shipped)"),
    hdmap_model: Path | None = typer.Option(None, help="for --map generated: an HD-map model (default: shipped)"),
    seconds: float | None = typer.Option(None, help="how long the scenario lasts (default: as its script says)"),
    frames: int | None = typer.Option(None, min=1, help="at most this many model frames (default: all)"),
    seed: int = typer.Option(0, help="seed of the scenario (scenery, map) and of the video's noise"),
    steps: int = typer.Option(30, min=1, help="Euler steps of the video model"),
    cfg: float = typer.Option(2.0, help="classifier-free guidance scale"),
    translator: str = typer.Option("offline", help="offline, tuned, openai or llama"),
    video: str = typer.Option("model", help=VIDEO_HELP),
    overwrite: bool = typer.Option(False, help="replace a different dataset in OUT/dataset"),
) -> None:
    """Text to multi-view video with exact 3D boxes: prompt -> script -> trajectories -> HD map -> layouts ->
    UniMVM video, written as a nuScenes-format dataset (DriveDreamer-2, end to end)."""
    from dreamdrive.pipelines.generate import generate_from_prompt

    options = _generate_options(map_spec, mask, model, vae, hdmap_model, seconds, frames, seed, steps, cfg, translator,
                                video)  # fmt: skip
    windows = lambda items: track(items, description="windows", console=console)  # noqa: E731
    record = generate_from_prompt(prompt, out, options, overwrite, progress=windows)
    console.print(f"[bold]{record['description']}[/bold]  ({record['scene']}, {record['frames']} frames x 6 views)")
    for line in record["report"]:
        console.print(f"validation: {line}")
    timings = ", ".join(f"{name} {value:.1f} s" for name, value in record["seconds"].items())
    console.print(f"stages: {timings}")
    for name in ("dataset", "video.mp4", "bev.png", "frames.png", "script.py", "scenario.json"):
        console.print(f"wrote {out / name}")


@app.command()
def synth(
    out: Path = typer.Option(..., help="output folder: items/, dataset/ (all items merged), report.json"),
    prompts: Path | None = typer.Option(None, help="a UTF-8 text file of prompts, one a line ('#': a comment)"),
    insert: Path | None = typer.Option(
        None,
        help='a file of insertion jobs, one JSON object a line: {"data": DATAROOT, "class": "car", "auto": 1, '
        '"mode": "naive"} (keys as `dreamdrive insert` options: data, scenes, asset, class, at, auto, distance, side, '
        "mode, seed, steps, cfg)",
    ),  # fmt: skip
    workers: int = typer.Option(2, min=1, help="items run at once (CPUs of the local Ray cluster)"),
    ray_address: str | None = typer.Option(None, "--ray", help="a Ray cluster's address (default: start a local one)"),
    map_spec: str = typer.Option("generated", "--map", help=MAP_HELP),
    mask: str = typer.Option("none", help="none or first-frame"),
    model: Path | None = typer.Option(None, help="a video model or run folder (default: shipped)"),
    vae: Path | None = typer.Option(None, help="the autoencoder (default: shipped)"),
    hdmap_model: Path | None = typer.Option(None, help="for --map generated: an HD-map model (default: shipped)"),
    seconds: float | None = typer.Option(None, help="how long each scenario lasts (default: as its script says)"),
    frames: int | None = typer.Option(None, min=1, help="at most this many model frames per item"),
    seed: int = typer.Option(0, help="seed of every item (insertion jobs: unless the job names its own)"),
    steps: int = typer.Option(30, min=1, help="Euler steps of the video model"),
    cfg: float = typer.Option(2.0, help="classifier-free guidance scale"),
    translator: str = typer.Option("offline", help="offline, tuned, openai or llama"),
    video: str = typer.Option("model", help=VIDEO_HELP),
) -> None:
    """Synthesise many prompts (or insertion jobs) as Ray tasks and merge them into one nuScenes-format dataset
    with the split `synthetic`. Items are named by their content, so a rerun skips what is done; a killed worker's
    item is retried; an item with bad input fails alone, listed in OUT/report.json. Needs Ray: the package's
    `scale` extra."""
    from rich.progress import Progress

    from dreamdrive.pipelines.synth import read_items
    from dreamdrive.pipelines.synth import synth as run_synth

    items = read_items(prompts, insert)
    options = _generate_options(map_spec, mask, model, vae, hdmap_model, seconds, frames, seed, steps, cfg, translator,
                                video)  # fmt: skip
    with Progress(console=console) as bar:
        task = bar.add_task("items", total=len(items))
        report = run_synth(items, out, options, workers, ray_address,
                           progress=lambda done, total: bar.update(task, completed=done, total=total))  # fmt: skip
        bar.update(task, completed=len(items))
    failed = [row for row in report["items"] if "error" in row]
    if failed:
        table = Table("line", "item", "error", title=f"{len(failed)} of {len(items)} items failed")
        for row in failed:
            table.add_row(str(row["line"]), row["item"][:60], row["error"])
        console.print(table)
    console.print(f"{report['done']} of {len(items)} items done; dataset: {report.get('dataset', 'none')}; "
                  f"report: {out / 'report.json'}")  # fmt: skip
    if not report["done"]:
        raise typer.Exit(1)


def main() -> None:
    """Entry point: user errors (bad options included) are printed as one line without a traceback and exit with
    status 2."""
    # bad options arrive as UsageError subclasses: typer's own (it vendors click from 0.2x) or click's
    from typer import Abort

    try:
        from typer._click.exceptions import ClickException, NoArgsIsHelpError, UsageError
    except ImportError:
        from click.exceptions import ClickException, NoArgsIsHelpError, UsageError

    err = Console(stderr=True, soft_wrap=True)
    try:
        code = app(standalone_mode=False)
    except NoArgsIsHelpError as error:  # a command group named alone: its help
        error.show()
        sys.exit(2)
    except UsageError as error:
        command = error.ctx.command_path if error.ctx is not None else "dreamdrive"
        message = error.format_message().rstrip(".")
        err.print(f"[bold red]error:[/bold red] {command}: {message}. See `{command} --help`.", highlight=False)
        sys.exit(2)
    except ClickException as error:
        err.print(f"[bold red]error:[/bold red] {error.format_message()}", highlight=False)
        sys.exit(error.exit_code)
    except Abort:
        err.print("[bold red]aborted[/bold red]")
        sys.exit(1)
    except DreamdriveError as error:
        err.print(f"[bold red]error:[/bold red] {error}", highlight=False)
        sys.exit(2)
    except OSError as error:  # a path the user named cannot be read or written (missing, read-only, disk full)
        where = f" {error.filename}" if error.filename else ""
        err.print(
            f"[bold red]error:[/bold red] cannot use{where}: {error.strerror or error}; check that the path exists "
            "and is writable, and that the disk has room.",
            highlight=False,
        )
        sys.exit(2)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
