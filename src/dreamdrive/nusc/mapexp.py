"""The devkit's nuScenes map expansion (maps/expansion/<location>.json) as a vector HDMap."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import numpy as np
from shapely.geometry import MultiPolygon, Polygon
from shapely.ops import unary_union

from dreamdrive.core.errors import DreamdriveError
from dreamdrive.core.hdmap import HDMap, Lane

LANE_RESOLUTION_M = 0.5


def _exteriors(geometry) -> list[np.ndarray]:
    """Exterior and interior rings of a (multi)polygon as (N, 2) arrays."""
    polygons = geometry.geoms if isinstance(geometry, MultiPolygon) else [geometry]
    rings = []
    for polygon in polygons:
        if polygon.is_empty:
            continue
        rings.append(np.asarray(polygon.exterior.coords)[:, :2])
        rings.extend(np.asarray(interior.coords)[:, :2] for interior in polygon.interiors)
    return rings


def hdmap_from_expansion(dataroot: str | Path, location: str) -> HDMap:
    """Read one location's map expansion through `NuScenesMap` into an HDMap.

    Road boundaries are the outlines of the union of road segments and lanes (as
    MapTR-style vector maps take them); lane centrelines are the devkit's
    discretised arcline paths of lanes and lane connectors, with their outgoing links.
    """
    from nuscenes.map_expansion.map_api import NuScenesMap

    try:
        with contextlib.redirect_stdout(io.StringIO()):
            nmap = NuScenesMap(dataroot=str(dataroot), map_name=location)
    except Exception as error:  # the devkit raises bare Exceptions and asserts for bad maps
        raise DreamdriveError(
            f"cannot load the map expansion of {location} under {Path(dataroot) / 'maps' / 'expansion'}: {error!r}"
        ) from error

    def line(record: dict) -> np.ndarray:
        return np.asarray(nmap.extract_line(record["line_token"]).coords)[:, :2]

    dividers = [line(r) for r in nmap.lane_divider + nmap.road_divider]
    road = unary_union([nmap.extract_polygon(r["polygon_token"]) for r in nmap.road_segment + nmap.lane])
    crossings = [
        np.asarray(nmap.extract_polygon(r["polygon_token"]).exterior.coords)[:-1, :2] for r in nmap.ped_crossing
    ]
    drivable = []
    for record in nmap.drivable_area:
        for token in record["polygon_tokens"]:
            drivable.append(np.asarray(nmap.extract_polygon(token).exterior.coords)[:-1, :2])

    lane_tokens = [r["token"] for r in nmap.lane + nmap.lane_connector]
    paths = nmap.discretize_lanes(lane_tokens, LANE_RESOLUTION_M) if lane_tokens else {}
    lanes = {}
    for token in lane_tokens:
        points = np.asarray(paths.get(token, []), dtype=np.float64).reshape(-1, 3)[:, :2]
        if len(points) < 2:
            continue
        lanes[token] = Lane(token, points, tuple(nmap.get_outgoing_lane_ids(token)))
    for token, lane in lanes.items():  # drop links to lanes without geometry
        lanes[token] = Lane(token, lane.centerline, tuple(s for s in lane.successors if s in lanes), lane.width)
    return HDMap(
        name=location,
        lane_dividers=[d for d in dividers if len(d) >= 2],
        road_boundaries=[r for r in _exteriors(road) if len(r) >= 2]
        if isinstance(road, (Polygon, MultiPolygon))
        else [],
        ped_crossings=[c for c in crossings if len(c) >= 3],
        drivable_areas=[d for d in drivable if len(d) >= 3],
        lanes=lanes,
    )
