"""End-to-end speed of the procedural-world builder, beside the raw renderer frame rate.

    python benchmarks/bench_world.py [--workers 2 --scenes 2 --seconds 5 --width 448 --height 256 --time-of-day day]

End to end counts everything a build does per camera frame: traffic simulation,
rendering the six cameras, the LiDAR on key frames, JPEG encoding, the dense
sidecar (depth, normal, instance, class; zstd-compressed), visibility, and the
dataset writer. The raw renderer rate renders the same frames' six cameras with nothing
else (the baseline the builder's overhead is measured against).
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import tempfile
import time

from dreamdrive.core.camera import CameraRig
from dreamdrive.core.geometry import Transform
from dreamdrive.world.builder import WorldBuilder, WorldConfig, _headlights, _objects, build_world, hash_seed
from dreamdrive.world.render import Environment
from dreamdrive.world.traffic import simulate


def raw_render_rate(config: WorldConfig, frames: int) -> float:
    """Camera frames per second of the renderer alone, on the first scene's traffic."""
    builder = WorldBuilder(tempfile.mkdtemp(), config)
    renderer = builder.renderer()
    traffic = simulate(builder.town, builder.assets, hash_seed(config.seed, 0), frames / 12)
    rig = CameraRig.default(config.width, config.height)
    environment = Environment(config.time_of_day[0], config.weather[0])
    start = time.perf_counter()
    for i in range(len(traffic.times)):
        global_T_ego = Transform.from_pose2d(*traffic.ego[i])
        objects = _objects(traffic, i)
        renderer.prepare(global_T_ego.translation, objects, environment, _headlights(traffic, i, global_T_ego))
        for camera in rig:
            renderer.render(camera, global_T_ego @ camera.ego_T_cam, objects)
    elapsed = time.perf_counter() - start
    renderer.release()
    return len(traffic.times) * len(rig) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenes", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--width", type=int, default=448)
    parser.add_argument("--height", type=int, default=256)
    parser.add_argument("--time-of-day", default="day")
    parser.add_argument("--weather", default="clear")
    parser.add_argument("--workers", type=int, default=1, help="scenes built in parallel processes")
    args = parser.parse_args()
    config = WorldConfig(
        scenes=args.scenes,
        seconds=args.seconds,
        width=args.width,
        height=args.height,
        time_of_day=tuple(args.time_of_day.split(",")),
        weather=tuple(args.weather.split(",")),
    )
    frames_per_scene = int(round(config.seconds * 12)) + 1
    camera_frames = config.scenes * frames_per_scene * 6
    root = tempfile.mkdtemp(prefix="dreamdrive-world-")
    try:
        start = time.perf_counter()
        build_world(root, config, workers=args.workers)
        build_s = time.perf_counter() - start
    finally:
        shutil.rmtree(root, ignore_errors=True)
    raw = raw_render_rate(config, frames_per_scene)
    end_to_end = camera_frames / build_s
    print(f"machine: {platform.machine()} cpus={os.cpu_count()} python {platform.python_version()}")
    print(
        f"build: {config.scenes} scenes x {config.seconds:g} s at {config.width}x{config.height}, "
        f"{config.time_of_day} / {config.weather}: {camera_frames} camera frames in {build_s:.1f} s"
    )
    print(f"end-to-end:          {end_to_end:6.1f} camera-frames/s")
    print(f"raw renderer [base]: {raw:6.1f} camera-frames/s  (end-to-end is {end_to_end / raw:.2f}x of it)")
    print(f"10 scenes x 20 s (14,400 camera frames) would take {14400 / end_to_end / 60:.1f} min")


if __name__ == "__main__":
    main()
