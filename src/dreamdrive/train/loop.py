"""One training loop for the project's generative networks: accelerate, EMA, resume after a kill, a loss curve.

A run folder holds:

- `run.json`: the resolved configuration. Another run in the same folder is
  refused; the same run with another step count goes on from where it ended, or
  stops where its saved state is (the learning rate is constant after its
  warm-up, so either equals a run given that count from the start);
- `state/`: accelerate's state of the model, its EMA copy, the optimiser and the
  schedule, and `trainer.json` (step and loss history), saved every `save_every`
  steps (`train.checkpoint`);
- `loss.png`, and when done `model/` (the EMA weights in the checkpoint format)
  and `training.json`.

Each step's batch and noise come from a generator seeded by (seed, step), so a run
killed at any step and started again reaches the weights of a run never stopped.

With several processes (`accelerate launch --num_processes N`, gloo on CPU), every
process draws the same global batch from that generator and computes the loss on
its own share (`Shard`); the gradients are averaged across processes, so N
processes train on the global batch one process would (up to how each share's loss
is normalised).
"""

from __future__ import annotations

import copy
import json
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from accelerate import Accelerator
from matplotlib.figure import Figure
from torch import nn

from dreamdrive.core.errors import DreamdriveError
from dreamdrive.files import atomic_write
from dreamdrive.train.checkpoint import (
    CONFIG_NAME,
    MODEL_DIR,
    clear_run_scratch,
    load_training_state,
    save_training_state,
)

TRAINING_RECORD = "training.json"


@dataclass(frozen=True)
class Shard:
    """This process's share of a global batch: process `rank` of `count`."""

    rank: int = 0
    count: int = 1

    def part(self, batch_size: int) -> slice:
        """The slice of a global batch of `batch_size` this process computes."""
        if batch_size % self.count:
            raise DreamdriveError(f"the batch size {batch_size} must divide by the {self.count} processes.")
        share = batch_size // self.count
        return slice(self.rank * share, (self.rank + 1) * share)


Loss = Callable[[nn.Module, torch.Generator, Shard], torch.Tensor]


@dataclass(frozen=True)
class LoopConfig:
    """How to train.

    Args:
        steps: optimiser steps.
        learning_rate: AdamW's, after a linear warm-up of `warmup` steps.
        ema_decay: of the weights' exponential moving average (the model that is saved).
        save_every: steps between saved states (and one at the end).
        grad_clip: the gradient norm's bound.
        seed: of the weights' initialisation and of every step's batch and noise.
    """

    steps: int = 2000
    learning_rate: float = 2e-4
    weight_decay: float = 0.0
    warmup: int = 100
    ema_decay: float = 0.999
    save_every: int = 100
    grad_clip: float = 1.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.steps < 1 or self.learning_rate <= 0 or self.save_every < 1 or not 0 <= self.ema_decay < 1:
            raise DreamdriveError("steps and save_every must be at least 1, the learning rate positive, ema in [0, 1).")


def step_generator(seed: int, step: int) -> torch.Generator:
    """The generator of one step's batch and noise: a function of (seed, step) alone."""
    return torch.Generator().manual_seed(seed * 1_000_003 + step)


def train_loop(
    out: str | Path,
    model: nn.Module,
    loss_fn: Loss,
    config: LoopConfig,
    description: dict,
    progress: Callable[[int, int, float], None] | None = None,
    on_save: Callable[[nn.Module, int], None] | None = None,
) -> Path:
    """Train `model` (with `save(folder)`) by minimising `loss_fn(model, generator, shard)`; returns its model
    folder.

    `description` (JSON) is stored as `run.json` with the loop's config; a run folder holding a different one is
    refused. `progress(step, steps, loss)` follows every step; `on_save(ema_model, step)` every saved state
    (sample pictures).
    """
    # 1. The run folder: one run per folder, a finished run kept.
    out = Path(out)
    final = out / MODEL_DIR
    record = json.loads(json.dumps({"loop": asdict(config), **description}))
    run_file = out / "run.json"
    clear_run_scratch(out)  # what a killed run left half-written (multi-process runs: below)
    if run_file.is_file():
        existing = json.loads(run_file.read_text())
        if _without_steps(existing) != _without_steps(record):
            raise DreamdriveError(f"{out} holds a different run; choose another --out or delete it.")
        done = _steps_done(out)
        if config.steps < done:
            raise DreamdriveError(f"{out} has trained {done} steps; give at least as many to continue or finish it.")
        if existing["loop"]["steps"] != config.steps:  # constant learning rate after warm-up: go on, or stop here
            shutil.rmtree(final, ignore_errors=True)
    text = json.dumps(record, indent=1).encode()
    if not run_file.is_file() or run_file.read_bytes() != text:  # a finished run, rerun, rewrites nothing
        atomic_write(run_file, text)
    if (final / CONFIG_NAME).is_file():
        return final

    # 2. Model, EMA copy, optimiser and schedule, prepared by accelerate; the saved state restored into them.
    accelerator = Accelerator(cpu=not torch.cuda.is_available())
    clear_run_scratch(out, accelerator)
    ema = copy.deepcopy(model).requires_grad_(False)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: min(1.0, (step + 1) / max(config.warmup, 1)))
    model, optimizer, schedule = accelerator.prepare(model, optimizer, schedule)
    ema = accelerator.prepare_model(ema, evaluation_mode=True)  # saved with the state, never wrapped for DDP
    if accelerator.unwrap_model(model) is not model:  # wrapped for DDP: losses still read the network's config
        model.config = accelerator.unwrap_model(model).config
    state = load_training_state(accelerator, out) or {"step": 0, "losses": [], "seconds": 0.0}
    shard = Shard(accelerator.process_index, accelerator.num_processes)

    # 3. The steps, from where the state left off.
    started = time.perf_counter() - state["seconds"]
    while state["step"] < config.steps:
        model.train()
        loss = loss_fn(model, step_generator(config.seed, state["step"]), shard)
        if not torch.isfinite(loss):
            raise DreamdriveError(f"the loss is not finite at step {state['step']}; lower the learning rate.")
        optimizer.zero_grad(set_to_none=True)
        accelerator.backward(loss)
        accelerator.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()
        schedule.step()
        _update_ema(accelerator.unwrap_model(ema), accelerator.unwrap_model(model), config.ema_decay)
        state["step"] += 1
        state["losses"].append(float(accelerator.reduce(loss.detach(), "mean") if shard.count > 1 else loss.detach()))
        if progress is not None:
            progress(state["step"], config.steps, state["losses"][-1])
        if state["step"] % config.save_every == 0 or state["step"] == config.steps:
            state["seconds"] = time.perf_counter() - started
            save_training_state(accelerator, out, state)
            if accelerator.is_main_process:
                loss_curve(state["losses"], out / "loss.png")
                if on_save is not None:
                    on_save(accelerator.unwrap_model(ema), state["step"])

    # 4. The EMA model and the run's record; the model folder's presence marks the run finished.
    if accelerator.is_main_process:
        loss_curve(state["losses"], out / "loss.png")  # again: a run killed while drawing it resumes here
        losses = state["losses"]
        tail = losses[-max(1, len(losses) // 20) :]
        summary = {"steps": state["step"], "seconds": round(state["seconds"], 1), "final_loss": sum(tail) / len(tail),
                   "processes": shard.count}  # fmt: skip
        atomic_write(out / TRAINING_RECORD, json.dumps({**summary, "losses": losses}).encode())
        accelerator.unwrap_model(ema).save(final)
    accelerator.wait_for_everyone()
    return final


def _steps_done(out: Path) -> int:
    """Steps a run folder has trained: its record when finished, else its saved state's, else 0."""
    for path, key in ((out / TRAINING_RECORD, "steps"), (out / "state" / "trainer.json", "step")):
        if path.is_file():
            return int(json.loads(path.read_text())[key])
    return 0


def _without_steps(record: dict) -> dict:
    return {**record, "loop": {k: v for k, v in record["loop"].items() if k != "steps"}}


@torch.no_grad()
def _update_ema(ema: nn.Module, model: nn.Module, decay: float) -> None:
    for average, value in zip(ema.parameters(), model.parameters()):
        average.lerp_(value.detach(), 1 - decay)
    for average, value in zip(ema.buffers(), model.buffers()):
        average.copy_(value)


def loss_curve(losses: list[float], path: Path, window: int = 50) -> Path:
    """The loss per step and its running mean over `window` steps, log scale, as a PNG."""
    figure = Figure(figsize=(6, 3.2), dpi=100)
    axis = figure.subplots()
    steps = range(1, len(losses) + 1)
    axis.plot(steps, losses, color="#9db4d0", linewidth=0.6, label="step")
    if len(losses) >= window:
        running = [sum(losses[i - window : i]) / window for i in range(window, len(losses) + 1)]
        axis.plot(range(window, len(losses) + 1), running, color="#1f4e8c", linewidth=1.4, label=f"mean of {window}")
    axis.set_yscale("log")
    axis.set_xlabel("step")
    axis.set_ylabel("loss")
    axis.legend(loc="upper right", fontsize=8)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    scratch = path.with_name(f".{path.name}.tmp.png")
    figure.savefig(scratch)
    scratch.replace(path)
    return path
