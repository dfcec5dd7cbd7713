"""The data model shared by every stage of dreamdrive (numpy only).

Names are loaded on first use, so that importing one light module (such as
`dreamdrive.core.errors` in a sandboxed script's interpreter) does not pull in
the rest.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "Agent": "clip", "Box3D": "boxes", "CAMERA_NAMES": "camera", "Camera": "camera", "CameraRig": "camera",
    "Clip": "clip", "DETECTION_CLASSES": "categories", "DreamdriveError": "errors", "Frame": "clip",
    "HDMap": "hdmap", "Lane": "hdmap", "Transform": "geometry", "detection_class": "categories",
}  # fmt: skip
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'dreamdrive.core' has no attribute {name!r}")
    return getattr(importlib.import_module(f"dreamdrive.core.{_EXPORTS[name]}"), name)
