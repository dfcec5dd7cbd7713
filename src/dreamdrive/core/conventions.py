"""Numbers and names every layer shares, defined once: sensor rates, lane width, weathers and times of day."""

from __future__ import annotations

KEYFRAME_HZ = 2  # annotated key frames (nuScenes samples) per second
CAMERA_HZ = 12  # camera frames per second; scenario trajectories use the same rate
LANE_WIDTH = 3.5  # metres between lane centres, in the procedural world and the scenario library
WEATHERS: tuple[str, ...] = ("clear", "rain", "fog")
TIMES_OF_DAY: tuple[str, ...] = ("day", "dusk", "night")
