"""The world model's figures on held-out procedural scenes, and its speed, measured in one run.

    PYTHONPATH=. python benchmarks/bench_world_model.py --data HELDOUT [--vae RUN] [--model RUN] \
        [--frames 8] [--steps 30] [--out FILE]

HELDOUT is a procedural build from a seed training never used (the shipped models
were trained on seed 0; `dreamdrive world build --out HELDOUT --scenes 4 --seed 1
--width 112 --height 64 --weather clear,rain --time-of-day day,night`).

- Autoencoder: PSNR (dB) and SSIM of every 6th camera frame through the
  autoencoder and back.
- Video, per UniMVM mode, over each held-out scene's first `--frames` model
  frames: PSNR and SSIM of the generated views against the real render, on the
  content that was not given (first-frame: frames 2..T; front-view: the five
  other views; none: everything); and, for scale, the same scores of the
  autoencoder's reconstruction (the ceiling) and of a clip that repeats the
  first real frame (what a model that copies the given frame gets).
- Cross-view consistency (`metrics.video.consistency`: agreement of adjacent
  views in their overlapping strips) of generated clips, as a ratio to the same
  score on the real renders of the same frames.
- Speed: training windows per second at batch 4; achieved GFLOP/s of a training
  step (FLOPs counted by torch's FlopCounterMode) as a share of torch's own
  1024 x 1024 fp32 matmul GFLOP/s measured in the same run [baseline]; seconds to
  sample one 6-view x 8-frame window per Euler step count (guidance 2: two
  network calls per step); peak resident memory.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from dreamdrive.metrics.video import consistency
from dreamdrive.nusc.reader import NuscDataset
from dreamdrive.nusc.writer import write_dataset
from dreamdrive.pipelines.vae import load_vae, read_frames, reconstruct, reconstruction_scores
from dreamdrive.pipelines.video import (
    FRONT,
    generate_video,
    load_video_model,
    mode_mask,
    prepare_scenes,
    sample_window,
    scene_images,
    video_loss,
)


def generated_region(mode: str, frames: int, views: int) -> np.ndarray:
    """(T, V) bool: the views and frames a mode generates."""
    region = np.ones((frames, views), bool)
    if mode == "first-frame":
        region[0] = False
    elif mode == "front-view":
        region[:, FRONT] = False
    return region


def scores_on(real: np.ndarray, fake: np.ndarray, region: np.ndarray) -> dict:
    """PSNR/SSIM of fake against real (T, V, H, W, 3) over the (T, V) region."""
    return reconstruction_scores(real[region], fake[region])


def video_figures(data: Path, vae, model, frames: int, steps: int, work: Path) -> dict:
    dataset = NuscDataset(data)
    autoencoder = load_vae(vae)
    config = load_video_model(model).config
    results: dict = {}
    for mode in ("first-frame", "front-view", "none"):
        rows, copy_rows, ceiling_rows, ratios = [], [], [], []
        for scene in dataset.scene_names:
            out = work / mode / scene
            record = generate_video(data, scene, out, model, vae, mode, frames, steps, 2.0, seed=0)
            real_clip = dataset.clip(scene).subset(record["source_frames"], every_key=True)
            real = scene_images(real_clip, config.image_size)
            fake = scene_images(NuscDataset(out / "dataset").clip(scene), config.image_size)
            region = generated_region(mode, len(real), real.shape[1])
            rows.append(scores_on(real, fake, region))
            copy = np.repeat(real[:1], len(real), axis=0)
            copy_rows.append(scores_on(real, copy, region))
            recon = reconstruct(autoencoder, real.reshape(-1, *real.shape[2:])).reshape(real.shape)
            ceiling_rows.append(scores_on(real, recon, region))
            generated_score = consistency(out / "dataset", every=1)["score"]
            ratios.append((generated_score, _real_consistency(real_clip, work / "real" / scene)))
        results[mode] = {
            "psnr": float(np.mean([r["psnr"] for r in rows])),
            "ssim": float(np.mean([r["ssim"] for r in rows])),
            "copy_first_frame_psnr": float(np.mean([r["psnr"] for r in copy_rows])),
            "copy_first_frame_ssim": float(np.mean([r["ssim"] for r in copy_rows])),
            "autoencoder_ceiling_psnr": float(np.mean([r["psnr"] for r in ceiling_rows])),
            "cross_view_consistency": float(np.mean([g for g, _ in ratios])),
            "cross_view_consistency_real": float(np.mean([r for _, r in ratios])),
        }
        results[mode]["cross_view_ratio"] = results[mode]["cross_view_consistency"] / max(
            results[mode]["cross_view_consistency_real"], 1e-9
        )
    return results


def _real_consistency(clip, folder: Path) -> float:
    """Consistency of the real frames the generated clip stands for (written as their own small dataset)."""
    write_dataset([clip], folder, splits={"real": [clip.name]})
    return consistency(folder, every=1)["score"]


def speed(model, work: Path, data: Path, vae) -> dict:
    network = load_video_model(model)
    config = network.config
    scenes = prepare_scenes(work / "speed", [data], None, load_vae(vae), config)
    network.train()
    optimizer = torch.optim.AdamW(network.parameters(), lr=1e-5)

    def step(k: int) -> None:
        loss = video_loss(network, scenes, 4, torch.Generator().manual_seed(k))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    step(0)
    with FlopCounterMode(display=False) as counter:
        step(1)
    flops = counter.get_total_flops()
    start = time.perf_counter()
    repeats = 5
    for k in range(repeats):
        step(2 + k)
    seconds = (time.perf_counter() - start) / repeats
    a, b = torch.randn(1024, 1024), torch.randn(1024, 1024)
    torch.mm(a, b)
    start = time.perf_counter()
    for _ in range(20):
        torch.mm(a, b)
    matmul = 20 * 2 * 1024**3 / (time.perf_counter() - start) / 1e9
    network.eval()
    sampling = {}
    shape = (1, config.frames, config.views, config.latent_channels, *config.latent_size)
    layouts = torch.zeros(1, config.frames, config.views, 13, *config.layout_size)
    for steps in (10, 30):
        start = time.perf_counter()
        sample_window(network, torch.zeros(shape), mode_mask(["none"], config, config.frames), layouts,
                      torch.zeros(1, 384), torch.Generator().manual_seed(0), steps)  # fmt: skip
        sampling[f"sample_s_{steps}_steps"] = time.perf_counter() - start
    return {
        "train_windows_per_s": 4 / seconds,
        "train_step_s": seconds,
        "train_gflop_per_step": flops / 1e9,
        "achieved_gflop_s": flops / seconds / 1e9,
        "matmul_gflop_s": matmul,
        "share_of_matmul": flops / seconds / 1e9 / matmul,
        **sampling,
        "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="held-out procedural dataroot")
    parser.add_argument("--vae", type=Path, default=None)
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--out", type=Path, default=None, help="also write the figures as JSON")
    args = parser.parse_args()
    torch.manual_seed(0)
    print(f"machine: {platform.machine()}, torch threads {torch.get_num_threads()}; held-out {args.data}")
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        autoencoder = load_vae(args.vae)
        frames = read_frames([args.data], None, None, every=6)
        results = {"autoencoder": reconstruction_scores(frames, reconstruct(autoencoder, frames))}
        results["video"] = video_figures(args.data, args.vae, args.model, args.frames, args.steps, work)
        results["speed"] = speed(args.model, work, args.data, args.vae)
    print(json.dumps(results, indent=1))
    if args.out:
        args.out.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
