"""Training the detector: a resumable run folder, data mixing, `accelerate` for one CPU or many GPUs.

A run folder holds `run.json` (the configurations, the data and the counts), the
rolling training state `state/` (accelerate's model, optimiser, schedule and RNG
states, and `trainer.json`: position in the epoch, step, loss history; swapped in
whole every `save_every` steps and at every epoch's end, `train.checkpoint`) and,
once training ends, `training.json` (steps and loss history) and `model/` (the
detector as `config.json` + `model.safetensors`, all evaluation needs). A run
killed at any moment and started again continues from its last state; a finished
run is not retrained. Nothing in a run folder is unpickled.

Epochs and steps: one epoch is one pass over the epoch's sample list, which
holds round(ratio x size) samples of every source (`data.epoch_order`); its
steps are ceil(samples / batch size). Adding a synthetic source to a real one
therefore keeps the number of epochs and adds the synthetic samples' steps to
each epoch, as Dream4Drive counts iso-epoch training.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from accelerate import Accelerator

from dreamdrive.core.errors import DreamdriveError
from dreamdrive.files import atomic_write
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
from dreamdrive.train.checkpoint import (
    CONFIG_NAME,
    MODEL_DIR,
    clear_run_scratch,
    load_training_state,
    refuse_legacy,
    save_training_state,
)

RUN_FORMAT = 2  # 2: safetensors model folder and accelerate state (1: pickled checkpoint.pt / model.pt)
TRAINING_RECORD = "training.json"


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


def train(
    mix: Mix,
    out: str | Path,
    config: TrainConfig = TrainConfig(),
    detector: DetectorConfig = DetectorConfig(),
    progress: Callable[[int, int, dict], None] | None = None,
) -> Path:
    """Train (or resume, or keep) the run in `out`; returns its model folder (`Detector.load` reads it).

    `progress(step, total_steps, losses)` is called after every step.
    """
    # 1. The run: its description is fixed once; another run in the same folder is refused.
    out = Path(out)
    refuse_legacy(out)
    final = out / MODEL_DIR
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
    clear_run_scratch(out)  # what a killed run left half-written (multi-process runs: below)
    if run_file.is_file():
        existing = json.loads(run_file.read_text())
        if existing != json.loads(json.dumps(description)):
            raise DreamdriveError(f"{out} holds a different run; choose another --out or delete it.")
    else:
        atomic_write(run_file, json.dumps(description, indent=1).encode())
    if (final / CONFIG_NAME).is_file():
        return final

    # 2. Data, model, optimiser and schedule, prepared by accelerate; the saved state restored into them.
    accelerator = Accelerator(cpu=not torch.cuda.is_available())
    clear_run_scratch(out, accelerator)
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
    model, optimizer, loader, schedule = accelerator.prepare(model, optimizer, loader, schedule)
    state = load_training_state(accelerator, out) or {"epoch": 0, "position": 0, "step": 0, "history": []}

    # 3. The epochs, from where the state left off; the state saved every `save_every` steps and per epoch.
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
                save_training_state(accelerator, out, state)
        count = max(state["position"], 1)
        state["history"].append({"epoch": epoch + 1, **{k: v / count for k, v in sums.items()}})
        state.update(epoch=epoch + 1, position=0, sums={})
        save_training_state(accelerator, out, state)

    # 4. The trained model and its record; the model folder's presence marks the run finished.
    if accelerator.is_main_process:
        record = {"steps": state["step"], "history": state["history"]}
        atomic_write(out / TRAINING_RECORD, json.dumps(record, indent=1).encode())
        accelerator.unwrap_model(model).save(final)
    accelerator.wait_for_everyone()
    return final


def load_model(run: str | Path, device: str = "cpu") -> Detector:
    """The trained detector of a run folder (or of its model folder)."""
    path = Path(run)
    refuse_legacy(path)
    if (path / MODEL_DIR / CONFIG_NAME).is_file():
        path = path / MODEL_DIR
    elif not (path / CONFIG_NAME).is_file():
        raise DreamdriveError(f"no trained model in {run}; train one with `dreamdrive detect train`.")
    return Detector.load(path, device)


def training_record(run: str | Path) -> dict:
    """A finished run's steps and per-epoch mean losses."""
    path = Path(run) / TRAINING_RECORD
    if not path.is_file():
        raise DreamdriveError(f"{run} has not finished training (no {TRAINING_RECORD}).")
    return json.loads(path.read_text())
