"""Naive insertion speed: six-view frames edited per second, with the cost of each stage.

    PYTHONPATH=. python benchmarks/bench_insert.py [--scenes 2 --seconds 4 --objects 3]

It builds a small procedural dataset (timed too: the baseline is building a frame
from scratch), then runs `insert_dataset` with `--auto N` on every scene and
reports six-view frames per second end to end (planning, compositing, LiDAR,
dense sidecars, the dataset writer). A second pass times one six-view frame's
stages alone: the guidance maps (scene depth from the sidecar, normals from
depth, Canny edges, the assets' object and mask maps), the composite, and
writing (JPEG encoding and the dense sidecar).
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

from dreamdrive.conditions.guidance import asset_renderer, edges, normals_from_depth, render_inserted
from dreamdrive.conditions.insert import AssetChooser, InsertRequest, plan
from dreamdrive.files import load_image
from dreamdrive.nusc.dense import depth_of, pack_dense, read_packed, write_packed
from dreamdrive.nusc.reader import NuscDataset
from dreamdrive.nusc.writer import encode_jpeg
from dreamdrive.pipelines.insert import insert_dataset
from dreamdrive.world.assets import AssetLibrary
from dreamdrive.world.builder import WorldConfig, build_world
from dreamdrive.world.render import Environment, RenderObject


def stage_times(dataroot: Path, library: AssetLibrary, request: InsertRequest, scratch: Path) -> dict[str, float]:
    """Seconds per six-view frame of each stage, averaged over the first scene's frames that hold an object."""
    dataset = NuscDataset(dataroot)
    clip = dataset.clip(dataset.scene_names[0])
    chooser = AssetChooser(library, request)
    placements, _ = plan(clip, request, chooser)
    boxes = [p.boxes(clip, f"b{k}") for k, p in enumerate(placements)]
    renderer = asset_renderer(
        [chooser.asset(p.asset) for p in placements], clip.rig.cameras[0].width, clip.rig.cameras[0].height
    )
    totals = {"guidance maps": 0.0, "composite": 0.0, "write": 0.0}
    frames = 0
    for i, frame in enumerate(clip.frames):
        objects = [
            RenderObject(p.asset.asset_id, boxes[k][i].frame_T_box, k + 1)
            for k, p in enumerate(placements)
            if boxes[k][i] is not None
        ]
        if not objects:
            continue
        frames += 1
        start = time.perf_counter()
        renderer.prepare(frame.global_T_ego.translation, objects, Environment())
        views = {}
        for camera in clip.rig:
            packed = read_packed(frame.dense[camera.name])
            depth = depth_of(packed)
            normals_from_depth(depth, camera.intrinsic)
            image = load_image(frame.images[camera.name])
            edges(image)
            rendered, visible = render_inserted(renderer, camera, frame.global_T_ego @ camera.ego_T_cam, objects, depth)
            views[camera.name] = (packed, image, rendered, visible)
        middle = time.perf_counter()
        edited = []
        for packed, image, rendered, visible in views.values():
            image = image.copy()
            image[visible] = rendered.rgb[visible]
            packed = packed.copy()
            pasted = pack_dense(rendered.depth, rendered.normal, rendered.instance, rendered.semantic)
            packed[:, visible] = pasted[:, visible]
            edited.append((image, packed))
        composed = time.perf_counter()
        for k, (image, packed) in enumerate(edited):
            encode_jpeg(image, 95)
            write_packed(scratch / f"{i}_{k}.npy.zst", packed, scratch / "tmp")
        written = time.perf_counter()
        totals["guidance maps"] += middle - start
        totals["composite"] += composed - middle
        totals["write"] += written - composed
    renderer.release()
    return {name: value / max(frames, 1) for name, value in totals.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenes", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--objects", type=int, default=3, help="automatic placements per clip")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-insert-"))
    config = WorldConfig(scenes=args.scenes, seconds=args.seconds, seed=0)
    start = time.perf_counter()
    build_world(work / "world", config)
    build_seconds = time.perf_counter() - start
    frames = sum(
        len(NuscDataset(work / "world").clip(s, check_files=False).frames)
        for s in NuscDataset(work / "world").scene_names
    )
    library = AssetLibrary(work / "assets")
    library.ensure_builtin()
    request = InsertRequest(classes=("car", "truck", "pedestrian", "bicycle"), auto=args.objects, seed=1)
    start = time.perf_counter()
    insert_dataset(work / "world", work / "inserted", request, library=library)
    insert_seconds = time.perf_counter() - start
    stages = stage_times(work / "world", library, request, work / "scratch")
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}")
    size = f"{config.width}x{config.height}"
    print(
        f"{args.scenes} scenes x {args.seconds} s = {frames} six-view frames at {size}, {args.objects} objects a clip"
    )
    build_rate, insert_rate = frames / build_seconds, frames / insert_seconds
    print(f"build from scratch (baseline): {build_rate:.1f} frames/s")
    print(f"naive insertion end to end:    {insert_rate:.1f} frames/s ({insert_rate / build_rate:.2f}x the build)")
    total = sum(stages.values())
    print(
        f"one six-view frame alone: {1 / total:.1f} frames/s = "
        + ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in stages.items())
    )


if __name__ == "__main__":
    main()
