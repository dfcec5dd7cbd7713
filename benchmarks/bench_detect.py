"""Detector speed: training samples per second, and evaluation time per 1,000 samples.

    PYTHONPATH=. python benchmarks/bench_detect.py [--data DATAROOT] [--steps 40] [--batch-size 4]

Without --data it builds a small procedural dataset (4 scenes x 4 s). Training
is timed over --steps steps after 5 warm-up steps (the CPU default detector:
224x128 images, 80x80 BEV). Evaluation is split in two: the detector's forward
pass and decoding over the validation key frames (prediction), and the
nuscenes-devkit's DetectionEval on the written results; both are scaled to
1,000 samples. The baseline is the forward pass alone (inference samples/s),
against which training's cost is stated.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import torch

from dreamdrive.metrics.detection import evaluate_detection
from dreamdrive.perception.data import DetectionDataset, DetectorConfig, scene_samples
from dreamdrive.perception.experiment import default_split
from dreamdrive.perception.model import Detector, detection_loss, parameter_count
from dreamdrive.perception.predict import predict, split_refs, write_results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=4)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-detect-"))
    data = args.data
    if data is None:
        from dreamdrive.world.builder import WorldConfig, build_world

        data = work / "world"
        build_world(data, WorldConfig(scenes=4, seconds=4.0, seed=0))
    config = DetectorConfig()
    torch.manual_seed(0)
    model = Detector(config)
    refs = scene_samples(data, default_split(data, "train"), every_frame=True)
    dataset = DetectionDataset(refs, config)
    loader = torch.utils.data.DataLoader(dataset, batch_size=args.batch_size, shuffle=True)
    optimizer = torch.optim.AdamW(model.parameters(), 1e-3)
    batches = iter(loader)
    elapsed, samples = 0.0, 0
    for step in range(5 + args.steps):
        try:
            batch = next(batches)
        except StopIteration:
            batches = iter(loader)
            batch = next(batches)
        start = time.perf_counter()
        loss = detection_loss(*model(batch["images"], batch["intrinsics"], batch["ref_T_cam"]), batch)["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step >= 5:
            elapsed += time.perf_counter() - start
            samples += len(batch["index"])
    train_rate = samples / elapsed
    model.eval()
    val = split_refs(data, default_split(data, "val"))
    start = time.perf_counter()
    results = write_results(predict(model, val, args.batch_size), work / "results_nusc.json")
    predict_seconds = time.perf_counter() - start
    start = time.perf_counter()
    evaluate_detection(data, default_split(data, "val"), results, work / "eval", plots=False)
    eval_seconds = time.perf_counter() - start
    infer_rate = len(val) / predict_seconds
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
          f"threads {torch.get_num_threads()}")  # fmt: skip
    print(f"detector: {parameter_count(model) / 1e6:.2f} M parameters, images "
          f"{config.image_size[0]}x{config.image_size[1]} x 6, BEV {config.bev_cells}x{config.bev_cells}")  # fmt: skip
    print(f"training: {train_rate:.2f} samples/s (batch {args.batch_size}; data loading excluded)")
    print(f"prediction (baseline, forward + decode + loading): {infer_rate:.2f} samples/s "
          f"= {1000 / infer_rate:.0f} s per 1,000 samples; training costs {infer_rate / train_rate:.1f}x")  # fmt: skip
    print(f"devkit DetectionEval: {eval_seconds:.2f} s for {len(val)} samples = "
          f"{1000 * eval_seconds / len(val):.0f} s per 1,000 samples")  # fmt: skip
    print(f"evaluation total: {1000 * (predict_seconds + eval_seconds) / len(val):.0f} s per 1,000 samples")


if __name__ == "__main__":
    main()
