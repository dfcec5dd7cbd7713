"""Plane geometry of paths and footprints (numpy only): arc lengths, polylines by arc length, box footprints.

Shared by the procedural world's traffic, the scenario library and validators, and the
insertion planner.
"""

from __future__ import annotations

import numpy as np


def arc_length(points: np.ndarray) -> np.ndarray:
    """Cumulative length (N,) along a polyline."""
    return np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(points, axis=0), axis=1))])


class Path2D:
    """A polyline parameterised by arc length: positions and headings at any distance along it."""

    def __init__(self, points: np.ndarray):
        self.points = np.asarray(points, dtype=np.float64)
        self.lengths = arc_length(self.points)
        segments = np.diff(self.points, axis=0)
        self.headings = np.arctan2(segments[:, 1], segments[:, 0])

    @property
    def length(self) -> float:
        return float(self.lengths[-1])

    def pose(self, s: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
        """(xy (..., 2), heading (...)) at distances `s`, clamped to the path."""
        s = np.clip(np.asarray(s, dtype=np.float64), 0.0, self.length)
        x = np.interp(s, self.lengths, self.points[:, 0])
        y = np.interp(s, self.lengths, self.points[:, 1])
        segment = np.clip(np.searchsorted(self.lengths, s, side="right") - 1, 0, len(self.headings) - 1)
        return np.stack([x, y], axis=-1), self.headings[segment]


def footprints(centers: np.ndarray, yaws: np.ndarray, size: tuple[float, float, float]) -> np.ndarray:
    """(T, 4, 2) corners of a track's footprint on each frame."""
    width, length, _ = size
    c, s = np.cos(yaws), np.sin(yaws)
    along = np.stack([c, s], -1)[:, None, :] * (np.array([1, 1, -1, -1])[None, :, None] * length / 2)
    across = np.stack([-s, c], -1)[:, None, :] * (np.array([1, -1, -1, 1])[None, :, None] * width / 2)
    return centers[:, None, :2] + along + across


def footprints_apart(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(T,) whether two convex quadrilaterals (T, 4, 2) are apart on each frame (separating axis test)."""
    apart = np.zeros(len(a), dtype=bool)
    for poly in (a, b):
        edges = np.roll(poly, -1, axis=1) - poly
        normals = np.stack([-edges[..., 1], edges[..., 0]], -1)  # (T, 4, 2)
        for k in range(4):
            n = normals[:, k : k + 1, :]
            pa, pb = np.sum(a * n, -1), np.sum(b * n, -1)
            apart |= (pa.max(1) < pb.min(1)) | (pb.max(1) < pa.min(1))
    return apart
