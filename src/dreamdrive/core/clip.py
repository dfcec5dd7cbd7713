"""A multi-view driving clip: frames, agents with a box on every frame, the map and the rig."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from dreamdrive.core.boxes import Box3D
from dreamdrive.core.camera import CameraRig
from dreamdrive.core.errors import DreamdriveError
from dreamdrive.core.geometry import Transform
from dreamdrive.core.hdmap import HDMap

# An image is a file on disk, an (H, W, 3) uint8 RGB array, or the bytes of an encoded JPEG.
ImageSource = str | Path | np.ndarray | bytes
# A point cloud is a nuScenes .pcd.bin file or an (N, 5) float32 array (x, y, z, intensity, ring) in the LiDAR frame.
PointsSource = str | Path | np.ndarray
# Dense ground truth of one camera frame (`nusc.dense`): a sidecar file, its bytes, or the packed (4, H, W)
# uint16 array.
DenseSource = str | Path | np.ndarray | bytes


@dataclass
class Frame:
    """One camera frame of all cameras.

    Args:
        timestamp: microseconds.
        global_T_ego: the ego pose at `timestamp`.
        images: image per camera channel.
        is_key: True on the 2 Hz annotated key frames (nuScenes samples).
        lidar: the LIDAR_TOP sweep at this frame, or None.
        camera_poses: for cameras captured at another moment than `timestamp` (real nuScenes
            cameras fire as the LiDAR sweeps past them): channel -> (timestamp, global_T_ego).
        lidar_pose: global_T_lidar of the sweep (its own ego pose and mounting); None: the
            default mounting (`nusc.schema.DEFAULT_EGO_T_LIDAR`) at `global_T_ego`.
        dense: dense ground truth per camera channel (depth, instance, normal, semantic; see
            `nusc.dense`), where the dataset has it: the procedural world's, or an edit's.
    """

    timestamp: int
    global_T_ego: Transform
    images: dict[str, ImageSource]
    is_key: bool = False
    lidar: PointsSource | None = None
    camera_poses: dict[str, tuple[int, Transform]] = field(default_factory=dict)
    lidar_pose: Transform | None = None
    dense: dict[str, DenseSource] = field(default_factory=dict)

    def camera_pose(self, channel: str) -> tuple[int, Transform]:
        """(timestamp, global_T_ego) at which `channel` captured its image."""
        return self.camera_poses.get(channel, (self.timestamp, self.global_T_ego))


@dataclass
class Agent:
    """One object across a clip.

    Args:
        instance_id: unique within the clip.
        category: full nuScenes category name.
        boxes: one entry per frame of the clip, in the global frame; None where the
            object is not in the scene (before it appears or after it leaves).
    """

    instance_id: str
    category: str
    boxes: list[Box3D | None]

    def span(self) -> tuple[int, int]:
        """Indices of the first and last frame on which the agent has a box."""
        present = [i for i, box in enumerate(self.boxes) if box is not None]
        return present[0], present[-1]


@dataclass
class Clip:
    """A scene: frames in time order, the agents in it, the rig that filmed it and its map.

    Args:
        name: scene name, unique within a dataset (nuScenes `scene.name`).
        frames: camera frames, strictly increasing timestamps, at least one key frame.
        agents: the annotated objects; every agent has one box slot per frame.
        rig: the cameras (intrinsics, extrinsics, image size).
        location: the map location (nuScenes `log.location`).
        hdmap: the vector map of `location`, if known.
        description: free text (nuScenes `scene.description`).
        log_name: the recording's name (nuScenes `log.logfile`); defaults to `name`.
        dense_instances: instance index of the frames' dense ground truth -> agent instance id.
    """

    name: str
    frames: list[Frame]
    agents: list[Agent]
    rig: CameraRig
    location: str
    hdmap: HDMap | None = None
    description: str = ""
    log_name: str = ""
    dense_instances: dict[int, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.log_name = self.log_name or self.name

    @property
    def key_indices(self) -> list[int]:
        return [i for i, frame in enumerate(self.frames) if frame.is_key]

    def subset(self, indices: list[int], every_key: bool = False) -> Clip:
        """The clip on the frames `indices` (increasing), with each agent's boxes on those frames; agents with
        no box left are dropped. `every_key` marks every kept frame a key frame (annotated), as a clip resampled
        to a model's frame rate is."""
        increasing = all(b > a for a, b in zip(indices, indices[1:]))
        if not indices or not increasing or not 0 <= indices[0] <= indices[-1] < len(self.frames):
            raise DreamdriveError(f"clip {self.name!r}: frame indices must increase within 0..{len(self.frames) - 1}.")
        agents = [Agent(a.instance_id, a.category, [a.boxes[i] for i in indices]) for a in self.agents]
        frames = [replace(self.frames[i], is_key=True) if every_key else self.frames[i] for i in indices]
        return replace(
            self,
            frames=frames,
            agents=[a for a in agents if any(box is not None for box in a.boxes)],
        )

    def boxes_at(self, index: int) -> list[Box3D]:
        """The boxes present on frame `index`."""
        return [agent.boxes[index] for agent in self.agents if agent.boxes[index] is not None]

    def validate(self) -> None:
        """Raise DreamdriveError if the clip breaks an invariant the writer and renderers rely on."""
        where = f"clip {self.name!r}"
        if not self.name or "/" in self.name:
            raise DreamdriveError(f"{where}: a scene name must be non-empty and contain no '/'.")
        if not self.frames:
            raise DreamdriveError(f"{where} has no frames.")
        times = np.array([frame.timestamp for frame in self.frames], dtype=np.int64)
        if np.any(np.diff(times) <= 0):
            raise DreamdriveError(f"{where}: frame timestamps must strictly increase.")
        if not self.key_indices:
            raise DreamdriveError(f"{where} has no key frame; mark the 2 Hz annotated frames is_key=True.")
        for i, frame in enumerate(self.frames):
            missing = [name for name in self.rig.names if name not in frame.images]
            if missing:
                raise DreamdriveError(f"{where}: frame {i} has no image for {missing}.")
        ids = [agent.instance_id for agent in self.agents]
        if len(set(ids)) != len(ids):
            raise DreamdriveError(f"{where}: instance ids must be unique, got duplicates.")
        for agent in self.agents:
            if len(agent.boxes) != len(self.frames):
                raise DreamdriveError(
                    f"{where}: agent {agent.instance_id} has {len(agent.boxes)} box slots "
                    f"for {len(self.frames)} frames."
                )
            present = [box for box in agent.boxes if box is not None]
            if not any(agent.boxes[i] is not None for i in self.key_indices):
                raise DreamdriveError(f"{where}: agent {agent.instance_id} has no box on any key frame.")
            if any(box.category != agent.category or box.instance_id != agent.instance_id for box in present):
                raise DreamdriveError(
                    f"{where}: boxes of agent {agent.instance_id} must carry its category and instance id."
                )
