"""Controllability and realism of the world model on held-out procedural scenes, measured in one run.

    PYTHONPATH=. python benchmarks/bench_controllability.py --data HELDOUT --detector RUN --reference TRAIN \
        [--model RUN] [--vae RUN] [--steps 30] [--work DIR] [--out FILE]

HELDOUT is a procedural build from a seed training never used; RUN a detector trained
on real procedural renders (`dreamdrive detect train --data TRAIN --image-size 112x64
...`); TRAIN the training build, whose first scenes serve as a second real set.

- Controllability (issue: the world model). Every held-out scene is generated whole,
  window by window, with no content given (`none`) and from its first frame
  (`first-frame`). The detector is scored (devkit mAP and NDS) on the generated
  clips with the conditioning boxes as ground truth, and on the real renders of the
  same model frames; the figure is their ratio. Neither set has LiDAR on these
  frames, so ground truth is kept without LiDAR points (`camera_only`).
- Realism: Fréchet distances of the project's FID (Inception, per view) and FVD (I3D, 8-frame windows)
  networks. Without their standard weight files these are proxies: the same
  architectures with seeded random weights (`metrics.networks.proxy_network`). To
  read a proxy, the same distance is given for two references: real held-out
  renders against real renders of other scenes (the floor: scene-to-scene
  variation), and against the held-out renders blurred (Gaussian, sigma 1.5 px).
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from dreamdrive.metrics.networks import proxy_network
from dreamdrive.metrics.video import _features, frechet_distance, statistics
from dreamdrive.nusc.reader import NuscDataset
from dreamdrive.nusc.writer import write_dataset
from dreamdrive.pipelines.detect import evaluate_run
from dreamdrive.pipelines.vae import load_vae
from dreamdrive.pipelines.video import generate_clip, load_video_model, scene_images

MODES = ("none", "first-frame")
SPLIT = "heldout"
WINDOW = 8  # FVD window length in model frames: the video model's own window


def detection(run: Path, clips: list, folder: Path) -> dict:
    """The detector's devkit scores on `clips` written as a dataset in `folder`."""
    write_dataset(clips, folder / "dataset", splits={SPLIT: [c.name for c in clips]}, overwrite=True)
    evaluate_run(run, folder / "dataset", folder / "eval", split=SPLIT, pictures=1, camera_only=True)
    summary = json.loads((folder / "eval" / "metrics_summary.json").read_text())
    return {"mAP": summary["mean_ap"], "NDS": summary["nd_score"]}


@torch.no_grad()
def frame_features(network, images: np.ndarray, batch: int = 32) -> np.ndarray:
    """Per-frame features of images (N, H, W, 3) uint8."""
    tensors = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255.0
    return _features(network, iter(tensors.split(batch)))


@torch.no_grad()
def window_features(network, videos: list[np.ndarray]) -> np.ndarray:
    """Per-window features: non-overlapping WINDOW-frame windows of every view of every clip (T, V, H, W, 3)."""
    windows = []
    for video in videos:
        for start in range(0, len(video) - WINDOW + 1, WINDOW):
            for v in range(video.shape[1]):
                clip = torch.from_numpy(video[start : start + WINDOW, v]).float() / 127.5 - 1.0  # (T, H, W, 3)
                windows.append(clip.permute(3, 0, 1, 2))
    return _features(network, (w[None] for w in windows))


def blurred(videos: list[np.ndarray], sigma: float = 1.5) -> list[np.ndarray]:
    return [np.stack([[cv2.GaussianBlur(view, (0, 0), sigma) for view in frame] for frame in video])
            for video in videos]  # fmt: skip


def realism(sets: dict[str, list[np.ndarray]], reference: str) -> dict:
    """Proxy FID (per view, mean) and FVD of every set against `reference`."""
    inception, i3d = proxy_network("inception"), proxy_network("i3d")
    stats = {}
    for name, videos in sets.items():
        views = videos[0].shape[1]
        per_view = [statistics(frame_features(inception, np.concatenate([v[:, k] for v in videos])))
                    for k in range(views)]  # fmt: skip
        stats[name] = (per_view, statistics(window_features(i3d, videos)))
        print(f"features of {name}", flush=True)
    out = {}
    for name in sets:
        if name == reference:
            continue
        fids = [frechet_distance(*a, *b) for a, b in zip(stats[reference][0], stats[name][0], strict=True)]
        out[name] = {"fid_proxy": float(np.mean(fids)), "fvd_proxy": frechet_distance(*stats[reference][1],
                                                                                         *stats[name][1])}  # fmt: skip
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--detector", type=Path, required=True)
    parser.add_argument("--reference", type=Path, required=True)
    parser.add_argument("--model", type=Path)
    parser.add_argument("--vae", type=Path)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--work", type=Path, default=Path("bench-controllability"))
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    network, autoencoder = load_video_model(args.model), load_vae(args.vae)
    dataset = NuscDataset(args.data)
    scenes = dataset.scene_names
    start = time.perf_counter()
    generated = {mode: [generate_clip(dataset, s, network, autoencoder, mode, steps=args.steps, seed=0)
                        for s in scenes] for mode in MODES}  # fmt: skip
    seconds = time.perf_counter() - start
    real_clips = [g.real for g in generated["none"]]

    results: dict = {"machine": f"{platform.machine()}, torch threads {torch.get_num_threads()}",
                     "data": str(args.data), "scenes": len(scenes), "model_frames": [g.record["frames"] for g in
                     generated["none"]], "generation_s": seconds}  # fmt: skip
    real_scores = detection(args.detector, real_clips, args.work / "real")
    results["detection"] = {"real": real_scores}
    for mode in MODES:
        scores = detection(args.detector, [g.generated for g in generated[mode]], args.work / mode)
        results["detection"][mode] = {**scores, **{f"{k}_ratio": scores[k] / max(real_scores[k], 1e-9)
                                                   for k in ("mAP", "NDS")}}  # fmt: skip
    print(json.dumps(results["detection"], indent=1), flush=True)

    reference = NuscDataset(args.reference)
    others = []
    for name in reference.scene_names[: len(scenes)]:
        clip = reference.clip(name)
        indices = list(range(clip.key_indices[0], len(clip.frames), network.config.frame_stride))
        others.append(scene_images(clip.subset(indices, every_key=True), network.config.image_size))
    real_videos = [g.real_images for g in generated["none"]]
    sets = {"real": real_videos, "other real scenes": others, "real blurred": blurred(real_videos)}
    sets.update({f"generated {mode}": [g.images for g in generated[mode]] for mode in MODES})
    results["realism"] = realism(sets, "real")
    results["realism"]["network"] = "proxy: Inception and I3D architectures, random weights (seed 0)"
    text = json.dumps(results, indent=1)
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
