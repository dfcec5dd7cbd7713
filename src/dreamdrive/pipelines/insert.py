"""The insertion job: edit chosen scenes of a nuScenes-format dataset and write them as a new dataset.

For each scene: read the clip, plan the placements (`conditions.insert.plan`),
render the assets into it in the requested mode, write the insertion report at
`dreamdrive/insertions/<scene>-<mode>.json` and the edited clip (plus the
original with `with_originals`). The job is resumable like every dataset
writer here: a finished scene is skipped, a killed run continues, and rerunning
a finished job does nothing.

Modes: "naive" (Dream4Drive's baseline, `conditions.insert.naive_insert`), "generative"
(Dream4Drive's method, `pipelines.edit.GenerativeInserter`: the naive edit's boxes, LiDAR and dense
ground truth, its images re-rendered inside the edit region by the world model with the fusion adapter)
and "oracle" (`oracle_insert`: for a dataset the world builder made, the same placements rendered by the
world's own renderer, with the scene's lighting, shadows, headlights and weather, and LiDAR scanned with
them: the upper bound that no generator can pass). The generative mode plugs in here, so that
`conditions/` never imports a model.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

from dreamdrive.conditions.insert import (
    AssetChooser,
    InsertedInstance,
    InsertionReport,
    InsertRequest,
    naive_insert,
    plan,
)
from dreamdrive.conditions.pictures import insertion_preview, insertion_video
from dreamdrive.core.clip import Agent, Clip
from dreamdrive.core.errors import DreamdriveError
from dreamdrive.core.geometry import Transform
from dreamdrive.files import atomic_write, dumps
from dreamdrive.nusc.dense import read_packed
from dreamdrive.nusc.reader import NuscDataset, dataset_fingerprint
from dreamdrive.nusc.schema import PREDEFINED_SPLITS, SIDECAR_DIR
from dreamdrive.nusc.writer import DatasetWriter
from dreamdrive.pipelines.edit import GenerativeInserter, GenerativeOptions
from dreamdrive.world.assets import Asset, AssetLibrary
from dreamdrive.world.builder import WorldBuilder, WorldConfig, world_config
from dreamdrive.world.traffic import Track, Traffic

INSERT_FORMAT = 1
MODES = ("naive", "generative", "oracle")

Progress = Callable[[Iterable, int, str], Iterable]


def insert_dataset(
    data: str | Path,
    out: str | Path,
    request: InsertRequest,
    scenes: list[str] | None = None,
    library: AssetLibrary | None = None,
    overwrite: bool = False,
    progress: Progress | None = None,
    generative: GenerativeOptions | None = None,
) -> tuple[Path, list[InsertionReport]]:
    """Insert into `scenes` (default: all) of the dataset at `data`; write the result to `out`. The generative
    mode samples as `generative` (`pipelines.edit.GenerativeOptions`; default: the shipped model) says.

    Returns the version folder written and the insertion report of every edited scene.
    """
    # 1. Check the inputs.
    data, out = Path(data), Path(out)
    if request.mode not in MODES:
        raise DreamdriveError(f"mode {request.mode!r} must be one of {list(MODES)}.")
    if out.resolve() == data.resolve():
        raise DreamdriveError("--out must be a new folder, not the source dataset (it is read while writing).")
    source = NuscDataset(data)
    scenes = list(scenes or source.scene_names)
    unknown = [s for s in scenes if s not in source.scene_names]
    if unknown:
        raise DreamdriveError(f"no scenes {unknown} in {data}; it has {source.scene_names}.")
    world = world_config(data) if request.mode == "oracle" else None
    if request.mode == "oracle":
        if world is None:
            raise DreamdriveError(f"the oracle mode renders with the world that built the dataset, and {data} was "
                                  "not built by `dreamdrive world build` (its index records no world; builds "
                                  "older than the oracle mode did not record it: rebuild them); use --mode naive "
                                  "or generative.")  # fmt: skip
        built = {world.scene_name(k): k for k in range(world.scenes)}
        foreign = [s for s in scenes if s not in built]
        if foreign:
            raise DreamdriveError(f"scenes {foreign} are not scenes of the world build of {data}; the oracle mode "
                                  "renders only those.")  # fmt: skip

    # 2. The assets, and the job's fingerprint: the same job on the same data is done once.
    library = library or AssetLibrary()
    library.ensure_builtin()
    chooser = AssetChooser(library, request)
    inserter = GenerativeInserter(generative or GenerativeOptions()) if request.mode == "generative" else None
    parts = [INSERT_FORMAT, dataset_fingerprint(data, source.version), asdict(request), chooser.fingerprint(), scenes]
    if inserter is not None:
        parts.append(inserter.fingerprint())
    fingerprint = hashlib.sha256(json.dumps(parts).encode()).hexdigest()
    writer = DatasetWriter(out, source.version)
    edited_name = {scene: f"{scene}-{request.mode}" for scene in scenes}
    report_path = {s: out / SIDECAR_DIR / "insertions" / f"{edited_name[s]}.json" for s in scenes}
    if writer.begin(fingerprint, overwrite):
        return out / source.version, [_read_report(report_path[s]) for s in scenes]
    writing = writer.dataroot  # `out`, or beside it while replacing another dataset there

    # 3. Each scene not written yet: plan, insert, write its report and clip.
    items: Iterable[str] = scenes if progress is None else progress(scenes, len(scenes), "inserting")
    for scene in items:
        scene_fingerprint = hashlib.sha256(f"{fingerprint}/{scene}".encode()).hexdigest()
        name = edited_name[scene]
        clip = None
        if not writer.has_clip(name, scene_fingerprint):
            clip = source.clip(scene)
            placements, notes = plan(clip, request, chooser)
            if not placements:
                raise DreamdriveError(f"nothing could be inserted into {scene!r}: {'; '.join(notes)}.")
            if world is not None:
                edited, report = oracle_insert(clip, placements, chooser, name, world, writing)
            elif inserter is None:
                edited, report = naive_insert(clip, placements, chooser, name, writer.options.jpeg_quality)
            else:
                edited, report, naive = inserter(clip, placements, chooser, name, writer.options.jpeg_quality,
                                                 request.seed)  # fmt: skip
                pictures = [("naive insertion", naive)]
                insertion_preview(clip, edited, report, out / "previews" / f"{name}.png", others=pictures)
                channel = report.best_view().camera
                insertion_video([("source", clip), *pictures, ("generative", edited)], channel,
                                out / "previews" / f"{name}.mp4")  # fmt: skip
            report.notes = notes
            atomic_write(writing / report_path[scene].relative_to(out), dumps(report.to_json()),
                         scratch=writer.staging / "tmp")  # fmt: skip
            writer.write_clip(edited, scene_fingerprint, {"insertions": f"insertions/{name}.json"})
        if request.with_originals and not writer.has_clip(scene, scene_fingerprint):
            writer.write_clip(clip or source.clip(scene), scene_fingerprint)

    # 4. Publish: the edited scenes (and originals) under the source's custom splits, and `insert_all`.
    names = [edited_name[s] for s in scenes] + (scenes if request.with_originals else [])
    splits = {}
    for split, members in source.splits.items():
        chosen = [s for s in members if s in edited_name]
        if chosen and split not in PREDEFINED_SPLITS:
            splits[split] = [edited_name[s] for s in chosen] + (chosen if request.with_originals else [])
    splits["insert_all"] = names
    writer.finalize(names, splits, fingerprint)
    return out / source.version, [_read_report(report_path[s]) for s in scenes]


def oracle_insert(
    clip: Clip, placements: list, chooser: AssetChooser, name: str, world: WorldConfig, out: Path
) -> tuple[Clip, InsertionReport]:
    """Scene `clip` of the world build `world` rendered again by the world's renderer with the placements
    added to its traffic, named `name`; its dense ground truth is written into the dataset at `out`. The
    inserted objects' boxes are the placements' own (as in naive insertion) with the visibility seen in the
    render; everything else is the scene as the builder renders it, so the scene's own boxes and images are
    those of the source wherever the objects neither show nor cast a shadow."""
    k = next(k for k in range(world.scenes) if world.scene_name(k) == clip.name)
    builder = WorldBuilder(out, world)
    builder.add_assets(chooser.asset(p.asset) for p in placements)
    traffic = builder.traffic(k)
    if len(traffic.times) != len(clip.frames):
        raise DreamdriveError(f"{clip.name} has {len(clip.frames)} frames but its world build renders "
                              f"{len(traffic.times)}; the dataset was edited after the build.")  # fmt: skip
    new_ids = [f"ins{j + 1}" for j in range(len(placements))]
    tracks = list(traffic.tracks)
    boxes = []
    for j, placement in enumerate(placements):
        placed = placement.boxes(clip, f"{name}-{new_ids[j]}")
        present = placement.present
        nan = np.full(3, np.nan)
        centers = np.stack([box.center if box is not None else nan for box in placed])
        attributes = [box.attributes[0] if box is not None and box.attributes else "" for box in placed]
        tracks.append(Track(new_ids[j], placement.asset.category, placement.asset.asset_id, placement.asset.size,
                            centers, np.nan_to_num(placement.track[:, 2]), attributes,
                            lights=placement.asset.detection_class != "pedestrian", annotated=present))  # fmt: skip
        boxes.append(placed)
    try:
        rendered = builder.build_clip(k, traffic=Traffic(traffic.times, traffic.ego, tracks), name=name)
    finally:
        builder.release()
    # The inserted objects' boxes as placed (naive insertion's), with the render's visibility on key frames;
    # their visible pixels per frame and view from the dense instance maps.
    index_of = {v: key for key, v in rendered.dense_instances.items()}
    visible = np.zeros((len(placements), len(clip.frames), len(clip.rig)), np.int64)
    agents = []
    for agent in rendered.agents:
        j = next((j for j, placed in enumerate(boxes) if agent.instance_id == f"{name}-{new_ids[j]}"), None)
        if j is None:
            agents.append(agent)
            continue
        merged = [replace(box, visibility=seen.visibility) if box is not None and seen is not None else box
                  for box, seen in zip(boxes[j], agent.boxes)]  # fmt: skip
        agents.append(Agent(agent.instance_id, agent.category, merged))
    for i, frame in enumerate(rendered.frames):
        for v, camera in enumerate(clip.rig):
            instance = read_packed(frame.dense[camera.name])[1]
            for j in range(len(placements)):
                visible[j, i, v] = int((instance == index_of[f"{name}-{new_ids[j]}"]).sum())
    edited = replace(rendered, agents=agents, log_name=f"{clip.log_name}-{name}",
                     description=f"{clip.description}; oracle insertion of "
                                 f"{', '.join(p.asset.asset_id for p in placements)}")  # fmt: skip
    instances = [InsertedInstance.from_placement(f"{name}-{new_ids[j]}", p, visible[j], clip)
                 for j, p in enumerate(placements)]  # fmt: skip
    return edited, InsertionReport(name, clip.name, "oracle", instances)


def write_previews(data: str | Path, out: str | Path, reports: list[InsertionReport]) -> list[Path]:
    """Before and after pictures of every edited scene, `out`/previews/<scene>.png (kept when already there)."""
    source, edited, out = NuscDataset(data), NuscDataset(out), Path(out)
    written = []
    for report in reports:
        preview = out / "previews" / f"{report.scene}.png"
        if not preview.is_file():
            insertion_preview(source.clip(report.source_scene), edited.clip(report.scene), report, preview)
        written.append(preview)
    return written


def _read_report(path: Path) -> InsertionReport:
    return InsertionReport.from_json(json.loads(path.read_text()))


def inserted_objects(
    dataroot: str | Path, clip: Clip, index: int, library: AssetLibrary
) -> list[tuple[Asset, Transform]]:
    """The objects an insertion job put into frame `index` of `clip` (from its report), as (asset, pose);
    empty for scenes that no insertion wrote."""
    path = Path(dataroot) / SIDECAR_DIR / "insertions" / f"{clip.name}.json"
    if not path.is_file():
        return []
    out = []
    for item in _read_report(path).instances:
        agent = next((a for a in clip.agents if a.instance_id == item.instance_id), None)
        if agent is not None and agent.boxes[index] is not None:
            out.append((library.get(item.asset_id), agent.boxes[index].frame_T_box))
    return out
