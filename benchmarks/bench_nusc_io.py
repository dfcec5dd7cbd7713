"""Write and read throughput of the nuScenes-format writer and reader, beside the devkit's own load time.

    python benchmarks/bench_nusc_io.py [--scenes 10 --seconds 20 --width 320 --height 180]

Prints samples (2 Hz key frames) per second and camera images per second for
writing, for loading the tables (`NuScenes(...)` alone, the baseline, and our
`NuscDataset`, which wraps it), and for reading every scene back as a Clip
(boxes from the sidecar, and interpolated as the devkit does).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import platform
import shutil
import tempfile
import time
from pathlib import Path

from dreamdrive.nusc.reader import NuscDataset
from dreamdrive.nusc.writer import write_dataset
from dreamdrive.viz.handmade import handmade_clips


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenes", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--width", type=int, default=320)
    parser.add_argument("--height", type=int, default=180)
    args = parser.parse_args()

    clips = handmade_clips(args.scenes, args.seconds, args.width, args.height, seed=0, paint=False)
    samples = sum(len(c.key_indices) for c in clips)
    images = sum(len(c.frames) for c in clips) * 6
    root = Path(tempfile.mkdtemp(prefix="dreamdrive-bench-"))
    try:
        _, write_s = timed(lambda: write_dataset(clips, root))
        _, noop_s = timed(lambda: write_dataset(clips, root))

        from nuscenes.nuscenes import NuScenes

        with contextlib.redirect_stdout(io.StringIO()):
            _, devkit_s = timed(lambda: NuScenes("v1.0-dreamdrive", str(root), verbose=False))
        dataset, ours_s = timed(lambda: NuscDataset(root))
        _, sidecar_s = timed(lambda: [dataset.clip(c.name) for c in clips])
        _, interp_s = timed(lambda: [dataset.clip(c.name, boxes="interpolate") for c in clips])
    finally:
        shutil.rmtree(root, ignore_errors=True)

    print(
        f"machine: {platform.machine()} {platform.processor() or ''} cpus={__import__('os').cpu_count()} "
        f"python {platform.python_version()}"
    )
    print(
        f"data: {args.scenes} scenes x {args.seconds:g} s, {samples} samples, {images} camera images "
        f"at {args.width}x{args.height}"
    )
    rows = [
        ("write dataset", write_s),
        ("rerun write (no-op check)", noop_s),
        ("devkit NuScenes() load [baseline]", devkit_s),
        ("NuscDataset() load", ours_s),
        ("read all clips (sidecar boxes)", sidecar_s),
        ("read all clips (interpolated boxes)", interp_s),
    ]
    print(f"{'step':38s} {'seconds':>9s} {'samples/s':>10s} {'images/s':>10s} {'x devkit load':>14s}")
    for name, seconds in rows:
        print(
            f"{name:38s} {seconds:9.3f} {samples / seconds:10.1f} {images / seconds:10.1f} {seconds / devkit_s:14.2f}"
        )


if __name__ == "__main__":
    main()
