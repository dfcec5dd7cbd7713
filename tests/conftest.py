"""Shared fixtures: a small hand-made dataset written once per test session."""

from __future__ import annotations

from pathlib import Path

import pytest

from dreamdrive.nusc.writer import write_dataset
from dreamdrive.viz.handmade import handmade_clips
from tests.helpers import SPLITS


@pytest.fixture(scope="session")
def clips():
    return handmade_clips(scenes=2, seconds=2.0, width=192, height=108, seed=0)


@pytest.fixture(scope="session")
def dataroot(clips, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("handmade")
    write_dataset(clips, root, splits=SPLITS)
    return root


@pytest.fixture(scope="session")
def nusc(dataroot):
    from nuscenes.nuscenes import NuScenes

    return NuScenes("v1.0-dreamdrive", str(dataroot), verbose=False)


@pytest.fixture(scope="session")
def tiny_world(tmp_path_factory):
    """A tiny procedural build (3 scenes x 1.5 s at 160x96) for the perception and metrics tests."""
    from dreamdrive.world.builder import WorldConfig, build_world

    root = tmp_path_factory.mktemp("tiny-world")
    build_world(root, WorldConfig(scenes=3, seconds=1.5, seed=4, width=160, height=96))
    return root
