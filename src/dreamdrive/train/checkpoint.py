"""One checkpoint format for every network, and a training state that survives a kill.

A model is a folder holding `config.json` (what kind of network, the format, and its
configuration) and `model.safetensors` (the weights), written by `save_pretrained` and
read by `load_pretrained`. Weights never go through pickle: safetensors holds tensors
only, so loading a model cannot run code.

A training run keeps its resumable state with accelerate (`save_state`/`load_state`:
model, optimiser, schedule and RNG states) in `<run>/state/`, beside `trainer.json`
(epoch, position in the epoch, step, loss history). accelerate loads optimiser and
schedule files with `torch.load(weights_only=True)`, so a state file crafted to run code
is refused (`UnsafeCheckpointError`) instead of executed. The folder is swapped in whole:
a kill while saving leaves the previous state.

Run folders of the first format (pickled `checkpoint.pt` / `model.pt`) are refused with
a message that says what to do.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import shutil
from contextlib import contextmanager
from dataclasses import asdict, fields
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from dreamdrive.core.errors import DreamdriveError
from dreamdrive.files import atomic_write, clear_scratch

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
CHECKPOINT_FORMAT = 1
STATE_DIR = "state"
TRAINER_STATE = "trainer.json"
LEGACY_FILES = ("checkpoint.pt", "model.pt")
MODEL_DIR = "model"  # a run folder's finished model


class UnsafeCheckpointError(DreamdriveError):
    """A checkpoint file holds a pickle that could run code when loaded; it was not loaded."""


@contextmanager
def writing(where: Path):
    """Report safetensors' write failures (a full disk, a file size limit) as the project's error naming
    `where`; the previous files there are untouched (writes go to staging folders)."""
    try:
        yield
    except SafetensorError as error:
        raise DreamdriveError(f"cannot write {where}: {error}; check that the disk has room and the folder is "
                              "writable, then run the same command again.") from error  # fmt: skip


def weights_fingerprint(module: torch.nn.Module) -> str:
    """A short hash of a network's weights (names and bytes), to tie a run or an adapter to the exact weights
    it was made with."""
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().numpy().tobytes())
    return digest.hexdigest()[:16]


def save_pretrained(folder: str | Path, kind: str, config: dict, state_dict: dict[str, torch.Tensor]) -> Path:
    """Write a model folder: `config.json` ({"_kind", "_format"} and `config`) and `model.safetensors`.

    The two files are written to a staging folder that then replaces `folder`, so a reader
    sees the old model or the new one, never a mix.
    """
    folder = Path(folder)
    staging = folder.with_name(f".{folder.name}.staging")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    tensors = {name: tensor.detach().cpu().contiguous() for name, tensor in state_dict.items()}
    with writing(folder):
        save_file(tensors, str(staging / WEIGHTS_NAME), metadata={"format": "pt"})  # one key: a byte-stable header
    record = {"_kind": kind, "_format": CHECKPOINT_FORMAT, **config}
    atomic_write(staging / CONFIG_NAME, json.dumps(record, indent=1).encode())
    old = folder.with_name(f".{folder.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if folder.exists():
        folder.rename(old)
    staging.rename(folder)
    shutil.rmtree(old, ignore_errors=True)
    return folder


def refuse_legacy(path: str | Path) -> None:
    """Raise with what to do when `path` is (or holds) a pickled checkpoint of the first run format."""
    path = Path(path)
    legacy = [path] if path.suffix in (".pt", ".pth", ".bin", ".pkl") else [path / name for name in LEGACY_FILES]
    found = [p for p in legacy if p.is_file()]
    if found:
        raise DreamdriveError(
            f"{found[0]} is a pickled checkpoint of an older dreamdrive, which is no longer loaded (a pickle can "
            f"run code). Train again into a new run folder (or delete {path}); models are now a folder with "
            f"{CONFIG_NAME} and {WEIGHTS_NAME}."
        )


def load_pretrained(folder: str | Path, kind: str) -> tuple[dict, dict[str, torch.Tensor]]:
    """The configuration (without the "_" keys) and weights of a model folder written by `save_pretrained`."""
    folder = Path(folder)
    refuse_legacy(folder)
    config_path, weights_path = folder / CONFIG_NAME, folder / WEIGHTS_NAME
    if not config_path.is_file() or not weights_path.is_file():
        raise DreamdriveError(
            f"{folder} is not a model folder: it needs {CONFIG_NAME} and {WEIGHTS_NAME} (written by `save`)."
        )
    try:
        record = json.loads(config_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise DreamdriveError(f"{config_path} is not valid JSON ({error}); save the model again.") from error
    if not isinstance(record, dict) or record.get("_kind") != kind:
        found = record.get("_kind") if isinstance(record, dict) else None
        what = found or "model of unknown kind"
        raise DreamdriveError(f"{folder} holds a {what}, not a {kind}; pass a {kind} folder.")
    if record.get("_format") != CHECKPOINT_FORMAT:
        raise DreamdriveError(
            f"{config_path} has checkpoint format {record.get('_format')!r}; this dreamdrive reads format "
            f"{CHECKPOINT_FORMAT}. Use the dreamdrive that wrote it, or train again."
        )
    try:
        weights = load_file(str(weights_path))
    except (SafetensorError, OSError, ValueError) as error:
        raise DreamdriveError(f"{weights_path} is not a readable safetensors file ({error}); save it again.") from error
    return {k: v for k, v in record.items() if not k.startswith("_")}, weights


def load_state_dict(module: torch.nn.Module, weights: dict[str, torch.Tensor], where: str | Path) -> None:
    """Load weights into `module`, naming missing, unexpected or misshapen tensors in one clear error."""
    try:
        module.load_state_dict(weights)
    except RuntimeError as error:
        first = str(error).splitlines()[0:3]
        raise DreamdriveError(
            f"the weights in {where} do not fit the model its config describes: {' '.join(first)}"
        ) from error


class JsonConfig:
    """A frozen dataclass config that travels as JSON: tuples become lists and back; unknown keys, values of
    another type than the field's default, and values the config's own checks refuse raise DreamdriveError."""

    def to_json(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_json(cls, record: dict):
        if not isinstance(record, dict):
            raise DreamdriveError(f"a {cls.__name__} is a JSON object, got {type(record).__name__}.")
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(record) - set(known))
        if unknown:
            raise DreamdriveError(f"unknown {cls.__name__} keys {unknown}; it has {sorted(known)}.")
        for name, value in record.items():
            if not _same_kind(value, known[name].default):
                raise DreamdriveError(f"{cls.__name__} {name} = {value!r} is not of the kind of its default "
                                      f"{known[name].default!r}.")  # fmt: skip
        try:
            return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in record.items()})
        except (TypeError, ValueError, ZeroDivisionError) as error:
            raise DreamdriveError(f"{cls.__name__} {record} is not a valid configuration ({error}).") from error


def _same_kind(value, default) -> bool:
    """Whether a JSON value fits a field whose default is `default` (ints fit floats; lists fit tuples)."""
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(value, bool) and isinstance(default, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float))
    if isinstance(default, tuple):
        return isinstance(value, list) and all(_same_kind(v, default[0]) for v in value) if default else True
    return isinstance(value, type(default))


class SavedModel:
    """What a network mixes in to save and load itself in the checkpoint format: it sets `KIND` (its name in
    config.json) and `CONFIG` (its dataclass config, with `to_json` and a `from_json` that refuses unknown keys),
    keeps its config in `self.config`, and is built from it alone."""

    KIND: str
    CONFIG: type

    def save(self, folder: str | Path) -> Path:
        """Write `config.json` and `model.safetensors` into `folder`."""
        return save_pretrained(folder, self.KIND, self.config.to_json(), self.state_dict())

    @classmethod
    def load(cls, folder: str | Path, device: str = "cpu"):
        """The network saved in `folder`, in evaluation mode."""
        config, weights = load_pretrained(folder, cls.KIND)
        model = cls(cls.CONFIG.from_json(config))
        load_state_dict(model, weights, folder)
        return model.to(device).eval()


# -- the training state --------------------------------------------------------------------------------


def save_training_state(accelerator, run: str | Path, trainer: dict) -> None:
    """Save accelerate's state (prepared model, optimiser, schedule, RNG) and `trainer` into `<run>/state`,
    swapped in whole."""
    run = Path(run)
    target, staging, old = run / STATE_DIR, run / f".{STATE_DIR}.staging", run / f".{STATE_DIR}.old"
    if accelerator.is_main_process:
        shutil.rmtree(staging, ignore_errors=True)
    accelerator.wait_for_everyone()
    with writing(target):
        accelerator.save_state(str(staging), safe_serialization=True)
    if accelerator.is_main_process:
        atomic_write(staging / TRAINER_STATE, json.dumps(trainer).encode())
        shutil.rmtree(old, ignore_errors=True)
        if target.exists():
            target.rename(old)
        staging.rename(target)
        shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()


def load_training_state(accelerator, run: str | Path) -> dict | None:
    """Restore the state `save_training_state` wrote into the prepared objects; the trainer record, or None
    when the run has none yet. A kill between the two renames of a save leaves the previous state in
    `.state.old`, which is used then."""
    run = Path(run)
    target = run / STATE_DIR
    if not (target / TRAINER_STATE).is_file() and (run / f".{STATE_DIR}.old" / TRAINER_STATE).is_file():
        target = run / f".{STATE_DIR}.old"
    if not (target / TRAINER_STATE).is_file():
        return None
    try:
        accelerator.load_state(str(target))
    except pickle.UnpicklingError as error:
        raise UnsafeCheckpointError(
            f"{target} holds a file that is not a plain tensor checkpoint: loading it could run code, so it was "
            f"not loaded. Delete {target} to train this run from its start."
        ) from error
    except (OSError, RuntimeError, EOFError, KeyError, ValueError) as error:
        raise DreamdriveError(
            f"cannot restore the training state in {target} ({error}); delete it to train the run from its start."
        ) from error
    try:
        return json.loads((target / TRAINER_STATE).read_text())
    except json.JSONDecodeError as error:
        raise DreamdriveError(f"{target / TRAINER_STATE} is not valid JSON ({error}); delete {target}.") from error


def model_folder(model: str | Path | None, shipped: Path, what: str, train: str) -> Path:
    """The model folder that `model` names (a model folder, or a run folder holding one in `model/`), else
    the `shipped` one; `what` and the `train` command name the model when the package ships none."""
    folder = Path(model) if model is not None else shipped
    if (folder / MODEL_DIR / CONFIG_NAME).is_file():
        folder = folder / MODEL_DIR
    if model is None and not (folder / CONFIG_NAME).is_file():
        raise DreamdriveError(f"this dreamdrive ships no {what} yet; train one with `{train}` and pass --model RUN.")
    return folder


def clear_run_scratch(run: Path, accelerator=None) -> None:
    """Remove the scratch files a killed run left in its folder (`files.clear_scratch`), while no process
    writes there. Called without `accelerator` (before it exists) it clears only in a single-process run;
    with it, in a multi-process run, every process waits until the main one has cleared."""
    if accelerator is None:
        if os.environ.get("WORLD_SIZE", "1") == "1":
            clear_scratch(run)
    elif accelerator.num_processes > 1:
        accelerator.wait_for_everyone()  # every process is past its own writes (run.json)
        if accelerator.is_main_process:
            clear_scratch(run)
        accelerator.wait_for_everyone()
