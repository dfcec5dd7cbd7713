"""File helpers every layer may use: atomic writes, canonical JSON bytes and image loading.

It sits beside `core` at the bottom of the package (it imports only `core.errors`), so the
dataset writer, the world builder, training runs and pictures all write files the same way.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path

import cv2
import numpy as np

from dreamdrive.core.clip import ImageSource
from dreamdrive.core.errors import DreamdriveError


def dumps(rows: object) -> bytes:
    """Canonical JSON bytes (stable key order and float formatting; compact, so the C encoder runs)."""
    return json.dumps(rows, separators=(",", ":")).encode()


def atomic_write(path: Path, data: bytes, scratch: Path | None = None, durable: bool = True) -> None:
    """Write `data` to `path` so that readers see the old file or the whole new one, never a part.

    The bytes go to a temporary file first, in `scratch` if given (a folder on the same
    file system that the caller clears, so a killed writer leaves no stray file beside `path`).
    `durable=False` skips the fsync: for bulk files whose writer syncs once before it commits.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    folder = scratch if scratch is not None else path.parent
    folder.mkdir(parents=True, exist_ok=True)
    descriptor, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)  # unique across threads
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as error:  # a full disk or a size limit: no stray file, and the error names the file
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if error.filename is None:
            raise OSError(error.errno, error.strerror, str(path)) from error
        raise


def clear_scratch(folder: Path) -> list[Path]:
    """Remove the temporary files a killed writer left directly in `folder` (`.NAME.tmp`, `.NAME.tmp.png`, ...),
    the names `atomic_write` and the picture writers use; returns what was removed. Call it before a job
    resumes, while nothing else writes there."""
    removed = []
    if folder.is_dir():
        for path in folder.iterdir():
            if path.name.startswith(".") and (path.name.endswith(".tmp") or ".tmp." in path.name) and path.is_file():
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
                    removed.append(path)
    return removed


def load_image(source: ImageSource) -> np.ndarray:
    """An image source (a file, JPEG/PNG bytes or an array) as (H, W, 3) uint8 RGB. A JPEG cut short (no end
    marker) is refused rather than decoded into a partly grey image."""
    if isinstance(source, np.ndarray):
        return source
    what = "image bytes" if isinstance(source, bytes) else f"image {source}"
    try:
        data = source if isinstance(source, bytes) else Path(source).read_bytes()
    except OSError as error:
        raise DreamdriveError(f"cannot read {what} ({error.strerror}); check that the file exists.") from error
    if data[:2] == b"\xff\xd8" and data.rstrip(b"\x00")[-2:] != b"\xff\xd9":
        raise DreamdriveError(f"{what} is a truncated JPEG (no end marker); restore the file or write it again.")
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise DreamdriveError(f"cannot read {what}; check that the file exists and is an image.")
    return image[:, :, ::-1].copy()
