"""From a BEV map raster back to a vector `HDMap` (DriveDreamer-2's "BEV HDMap post-process").

Per channel of `core.hdmap.MAP_CHANNELS`:

- road boundaries and lane dividers: binarise, thin to one-pixel skeletons
  (scikit-image), trace the skeleton's branches between end points and junctions
  (closed loops too), drop stubs shorter than `min_length_m`, simplify
  (Douglas-Peucker within `tolerance_px`);
- pedestrian crossings: fill the drawn outlines, take each region's contour and
  simplify it to a closed polygon.

The drivable area is the part of the raster that the road boundaries enclose
together with the places the given trajectories drive through: the connected
regions of the non-boundary pixels that hold a trajectory point. Pixels are
turned into the ego frame of the raster (forward up, left left, the ego at the
centre), then by `global_T_ego` into the global frame.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from skimage.measure import approximate_polygon, find_contours
from skimage.morphology import skeletonize

from dreamdrive.core.errors import DreamdriveError
from dreamdrive.core.geometry import Transform
from dreamdrive.core.hdmap import MAP_CHANNELS, HDMap

NEIGHBOURS = [(-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1)]


def trace_skeleton(skeleton: np.ndarray) -> list[np.ndarray]:
    """The branches of a one-pixel skeleton as (N, 2) (row, col) point lists: paths between end points and
    junctions, and closed loops (first point repeated at the end)."""
    pixels = {(int(r), int(c)) for r, c in zip(*np.nonzero(skeleton))}

    def neighbours(p):
        return [(p[0] + dr, p[1] + dc) for dr, dc in NEIGHBOURS if (p[0] + dr, p[1] + dc) in pixels]

    degree = {p: len(neighbours(p)) for p in pixels}
    nodes = {p for p, d in degree.items() if d != 2}
    # neighbouring junction pixels (a crossing of 8-connected lines has several) form one junction
    cluster = {}
    for node in sorted(nodes):
        if node in cluster:
            continue
        stack, cluster[node] = [node], node
        while stack:
            current = stack.pop()
            for q in neighbours(current):
                if q in nodes and q not in cluster:
                    cluster[q] = node
                    stack.append(q)
    used: set[frozenset] = set()
    paths = []

    def walk(start, first):
        path = [start, first]
        used.add(frozenset((start, first)))
        previous, current = start, first
        while current not in nodes:
            step = next((q for q in neighbours(current) if q != previous and frozenset((current, q)) not in used), None)
            if step is None:
                break
            used.add(frozenset((current, step)))
            path.append(step)
            previous, current = current, step
            if current == start:
                break
        return path

    for node in sorted(nodes):
        for first in neighbours(node):
            if frozenset((node, first)) in used:
                continue
            if first in nodes and cluster[first] == cluster[node]:
                used.add(frozenset((node, first)))  # inside one junction: no branch
                continue
            paths.append(walk(node, first))
    for pixel in sorted(pixels):  # loops: every pixel of degree 2, not reached from any node
        if degree[pixel] == 2 and not any(frozenset((pixel, q)) in used for q in neighbours(pixel)):
            paths.append(walk(pixel, neighbours(pixel)[0]))
    return [np.array(path, np.float64) for path in paths if len(path) >= 2]


def _to_metres(points_rc: np.ndarray, size: int, resolution: float, global_T_ego: Transform) -> np.ndarray:
    """Pixel (row, col) -> global (x, y): ego x = (H/2 - row) res, ego y = (W/2 - col) res, the inverse of
    `conditions.layout.bev_layout` (whose pixel coordinates are pixel centres)."""
    x = (size / 2 - points_rc[:, 0]) * resolution
    y = (size / 2 - points_rc[:, 1]) * resolution
    return global_T_ego.apply(np.column_stack([x, y, np.zeros(len(x))]))[:, :2]


def lines_from_channel(channel: np.ndarray, min_length_px: float, tolerance_px: float) -> list[np.ndarray]:
    """Simplified polylines (N, 2) in pixel (row, col) of one line channel."""
    skeleton = skeletonize(channel > 0)
    out = []
    for path in trace_skeleton(skeleton):
        if np.linalg.norm(np.diff(path, axis=0), axis=1).sum() < min_length_px:
            continue
        out.append(approximate_polygon(path, tolerance_px))
    return out


def polygons_from_channel(channel: np.ndarray, min_area_px: float, tolerance_px: float) -> list[np.ndarray]:
    """Closed polygons (N, 2) in pixel (row, col) of the regions a channel outlines (or fills)."""
    filled = ndimage.binary_fill_holes(channel > 0)
    labels, count = ndimage.label(filled)
    out = []
    for k in range(1, count + 1):
        region = labels == k
        if region.sum() < min_area_px:
            continue
        contours = find_contours(np.pad(region, 1).astype(np.float32), 0.5)
        ring = max(contours, key=len) - 1.0  # undo the padding
        polygon = approximate_polygon(ring, tolerance_px)
        if len(polygon) >= 4:
            out.append(polygon[:-1] if np.allclose(polygon[0], polygon[-1]) else polygon)
    return out


def drivable_mask(boundaries: np.ndarray, trajectory_pixels: np.ndarray) -> np.ndarray:
    """(H, W) bool: the connected regions of non-boundary pixels (4-connected) that hold a trajectory point."""
    free = ~ndimage.binary_dilation(boundaries > 0)
    labels, _ = ndimage.label(free)
    rows = np.clip(np.round(trajectory_pixels[:, 0]).astype(int), 0, free.shape[0] - 1)
    cols = np.clip(np.round(trajectory_pixels[:, 1]).astype(int), 0, free.shape[1] - 1)
    chosen = set(labels[rows, cols].tolist()) - {0}
    return ndimage.binary_dilation(np.isin(labels, list(chosen)))


def vectorize(
    raster: np.ndarray,
    resolution: float,
    global_T_ego: Transform | None = None,
    trajectory_points: np.ndarray | None = None,
    name: str = "generated",
    min_length_m: float = 3.0,
    tolerance_px: float = 0.75,
) -> HDMap:
    """An `HDMap` from a map raster (3, H, W) in `MAP_CHANNELS` order (any values; > 0 is drawn).

    Args:
        resolution: metres per pixel.
        global_T_ego: where the raster's ego frame lies (default: the ego frame is the global frame).
        trajectory_points: (N, 2) global positions the drivable area must hold (the trajectories the map was
            made for); without them the map has no drivable area.
    """
    raster = np.asarray(raster)
    if raster.ndim != 3 or raster.shape[0] != len(MAP_CHANNELS) or raster.shape[1] != raster.shape[2]:
        raise DreamdriveError(f"a map raster is (3, H, H) in {MAP_CHANNELS} order, got shape {raster.shape}.")
    if not (raster > 0).any():
        raise DreamdriveError("the map raster is empty: nothing to vectorise (generate it again, or another seed).")
    size = raster.shape[1]
    global_T_ego = global_T_ego or Transform.identity()
    channels = dict(zip(MAP_CHANNELS, raster))
    min_length_px = min_length_m / resolution

    def metres(points):
        return _to_metres(points, size, resolution, global_T_ego)

    boundaries = [metres(p) for p in lines_from_channel(channels["road_boundary"], min_length_px, tolerance_px)]
    dividers = [metres(p) for p in lines_from_channel(channels["lane_divider"], min_length_px, tolerance_px)]
    crossings = [metres(p) for p in polygons_from_channel(channels["ped_crossing"], 4.0, tolerance_px)]
    drivable = []
    if trajectory_points is not None and len(trajectory_points):
        local = global_T_ego.inverse().apply(
            np.column_stack([trajectory_points[:, :2], np.zeros(len(trajectory_points))])
        )
        pixels_rc = np.column_stack([size / 2 - local[:, 0] / resolution, size / 2 - local[:, 1] / resolution])
        inside = (pixels_rc >= 0).all(axis=1) & (pixels_rc < size).all(axis=1)
        mask = drivable_mask(channels["road_boundary"], pixels_rc[inside])
        drivable = [metres(p) for p in polygons_from_channel(mask, 16.0, tolerance_px)]
    return HDMap(
        name, lane_dividers=dividers, road_boundaries=boundaries, ped_crossings=crossings, drivable_areas=drivable
    )
