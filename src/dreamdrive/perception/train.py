"""Training the detector: a resumable run folder, data mixing, `accelerate` for one CPU or many GPUs.

A run folder holds `run.json` (the configurations, the data and the counts), the
rolling `checkpoint.pt` (model, optimiser, schedule, position in the epoch,
loss history; written atomically every `save_every` steps and at every epoch's
end) and, once training ends, `model.pt` (the weights and the detector
configuration, all evaluation needs). A run killed at any moment and started
again continues from its last checkpoint; a finished run is not retrained.

Epochs and steps: one epoch is one pass over the epoch's sample list, which
holds round(ratio x size) samples of every source (`data.epoch_order`); its
steps are ceil(samples / batch size). Adding a synthetic source to a real one
therefore keeps the number of epochs and adds the synthetic samples' steps to
each epoch, as Dream4Drive counts iso-epoch training.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from dreamdrive.core.errors import DreamdriveError
from dreamdrive.nusc.schema import atomic_write
from dreamdrive.perception.data import (
    Augment,
    DetectionDataset,
    DetectorConfig,
    Mix,
    SampleRef,
    epoch_order,
    scene_samples,
)
from dreamdrive.perception.model import Detector, check_finite_loss, detection_loss

RUN_FORMAT = 1


@dataclass(frozen=True)
class TrainConfig:
    """How to train.

    Args:
        epochs: passes over the epoch's sample list.
        batch_size: samples per step (per process under `accelerate`).
        learning_rate: peak of the one-cycle schedule (AdamW).
        every_frame: learn from every camera frame (datasets with a box on every frame), not only key frames.
        backbone_weights: a local ResNet state dict to start the backbone from (width 64 for ResNet-18).
        save_every: steps between checkpoints (and one at every epoch's end).
        workers: data loader processes (0: load in the training process).
    """

    epochs: int = 20
    batch_size: int = 4
    learning_rate: float = 2e-3
    weight_decay: float = 1e-2
    seed: int = 0
    every_frame: bool = False
    backbone_weights: str | None = None
    save_every: int = 50
    workers: int = 0

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1 or self.learning_rate <= 0:
            raise DreamdriveError("epochs and batch size must be at least 1 and the learning rate positive.")


def epoch_size(sizes: list[int], ratios: list[float]) -> int:
    """Samples in one epoch: round(ratio x size) of every source (`data.epoch_order`)."""
    return sum(round(r * n) for n, r in zip(sizes, ratios))


def run_steps(run: dict) -> int:
    """The optimiser steps of a whole run, from its run.json: epochs x ceil(epoch size / batch size)."""
    train = run["train"]
    return train["epochs"] * math.ceil(epoch_size(run["samples"], run["ratios"]) / train["batch_size"])


class EpochSampler(torch.utils.data.Sampler):
    """The indices of one epoch in `data.epoch_order`'s order; `set_epoch` moves on."""

    def __init__(self, sizes: list[int], ratios: list[float], seed: int):
        self.sizes, self.ratios, self.seed = sizes, ratios, seed
        self.offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(int)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        order = epoch_order(self.sizes, self.ratios, self.seed, self.epoch)
        return iter([int(self.offsets[s] + i) for s, i in order])

    def __len__(self) -> int:
        return epoch_size(self.sizes, self.ratios)


def _save(path: Path, payload: dict) -> None:
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    atomic_write(path, buffer.getvalue())


def train(
    mix: Mix,
    out: str | Path,
    config: TrainConfig = TrainConfig(),
    detector: DetectorConfig = DetectorConfig(),
    progress: Callable[[int, int, dict], None] | None = None,
) -> Path:
    """Train (or resume, or keep) the run in `out`; returns the path of `model.pt`.

    `progress(step, total_steps, losses)` is called after every step.
    """
    from accelerate import Accelerator

    out = Path(out)
    final = out / "model.pt"
    refs_by_source = [scene_samples(root, split, config.every_frame) for root, split in mix.sources]
    for (root, split), refs in zip(mix.sources, refs_by_source):
        if not refs:
            raise DreamdriveError(f"{root} split {split!r} holds no samples to train on.")
    sizes = [len(r) for r in refs_by_source]
    description = {
        "format": RUN_FORMAT,
        "sources": [[str(root), split] for root, split in mix.sources],
        "ratios": mix.ratios,
        "samples": sizes,
        "train": asdict(config),
        "detector": detector.to_json(),
    }
    run_file = out / "run.json"
    if run_file.is_file():
        existing = json.loads(run_file.read_text())
        if existing != json.loads(json.dumps(description)):
            raise DreamdriveError(f"{out} holds a different run; choose another --out or delete it.")
    else:
        atomic_write(run_file, json.dumps(description, indent=1).encode())
    if final.is_file():
        return final

    accelerator = Accelerator(cpu=not torch.cuda.is_available())
    torch.manual_seed(config.seed)
    refs: list[SampleRef] = [ref for group in refs_by_source for ref in group]
    dataset = DetectionDataset(refs, detector, Augment(), seed=config.seed)
    sampler = EpochSampler(sizes, mix.ratios, config.seed)
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=config.batch_size, sampler=sampler, num_workers=config.workers, drop_last=False
    )
    steps_per_epoch = math.ceil(len(sampler) / config.batch_size)
    total_steps = steps_per_epoch * config.epochs
    model = Detector(detector)
    if config.backbone_weights:
        model.backbone.load_weights(config.backbone_weights)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=config.learning_rate, total_steps=total_steps, pct_start=0.3, div_factor=10.0
    )
    state = {"epoch": 0, "position": 0, "step": 0, "history": []}
    checkpoint = out / "checkpoint.pt"
    if checkpoint.is_file():
        saved = torch.load(checkpoint, map_location="cpu", weights_only=False)
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        schedule.load_state_dict(saved["schedule"])
        torch.set_rng_state(saved["torch_rng"])
        state = saved["state"]
    model, optimizer, loader = accelerator.prepare(model, optimizer, loader)

    def save() -> None:
        if accelerator.is_main_process:
            payload = {
                "model": accelerator.unwrap_model(model).state_dict(),
                "optimizer": optimizer.state_dict(),
                "schedule": schedule.state_dict(),
                "torch_rng": torch.get_rng_state(),
                "state": state,
            }
            _save(checkpoint, payload)
        accelerator.wait_for_everyone()

    while state["epoch"] < config.epochs:
        epoch = state["epoch"]
        sampler.set_epoch(epoch)
        dataset.epoch = epoch
        model.train()
        batches = accelerator.skip_first_batches(loader, state["position"]) if state["position"] else loader
        if hasattr(batches, "set_epoch"):  # accelerate's loaders count epochs themselves and tell the sampler
            batches.set_epoch(epoch)
        sums: dict[str, float] = state.get("sums", {})
        for batch in batches:
            heatmap, regression = model(batch["images"], batch["intrinsics"], batch["ref_T_cam"])
            losses = detection_loss(heatmap, regression, batch)
            check_finite_loss(losses["loss"], state["step"])
            optimizer.zero_grad(set_to_none=True)
            accelerator.backward(losses["loss"])
            accelerator.clip_grad_norm_(model.parameters(), 35.0)
            optimizer.step()
            schedule.step()
            state["step"] += 1
            state["position"] += 1
            for name, value in losses.items():
                sums[name] = sums.get(name, 0.0) + float(value.detach())
            state["sums"] = sums
            if progress is not None:
                progress(state["step"], total_steps, {k: float(v.detach()) for k, v in losses.items()})
            if state["position"] % config.save_every == 0 and state["position"] < steps_per_epoch:
                save()
        count = max(state["position"], 1)
        state["history"].append({"epoch": epoch + 1, **{k: v / count for k, v in sums.items()}})
        state.update(epoch=epoch + 1, position=0, sums={})
        save()
    if accelerator.is_main_process:
        _save(final, {"model": accelerator.unwrap_model(model).state_dict(), "detector": detector.to_json(),
                      "history": state["history"], "steps": state["step"]})  # fmt: skip
    accelerator.wait_for_everyone()
    return final


def load_model(run: str | Path, device: str = "cpu") -> Detector:
    """The trained detector of a run folder (or a model.pt file)."""
    path = Path(run)
    path = path / "model.pt" if path.is_dir() else path
    if not path.is_file():
        raise DreamdriveError(f"no trained model at {path}; train one with `dreamdrive detect train`.")
    saved = torch.load(path, map_location=device, weights_only=False)
    model = Detector(DetectorConfig.from_json(saved["detector"]))
    model.load_state_dict(saved["model"])
    return model.to(device).eval()
