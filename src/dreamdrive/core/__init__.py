"""The data model shared by every stage of dreamdrive (numpy only)."""

from dreamdrive.core.boxes import Box3D
from dreamdrive.core.camera import CAMERA_NAMES, Camera, CameraRig
from dreamdrive.core.categories import DETECTION_CLASSES, detection_class
from dreamdrive.core.clip import Agent, Clip, Frame
from dreamdrive.core.errors import DreamdriveError
from dreamdrive.core.geometry import Transform
from dreamdrive.core.hdmap import HDMap, Lane

__all__ = [
    "Agent",
    "Box3D",
    "CAMERA_NAMES",
    "Camera",
    "CameraRig",
    "Clip",
    "DETECTION_CLASSES",
    "DreamdriveError",
    "Frame",
    "HDMap",
    "Lane",
    "Transform",
    "detection_class",
]
