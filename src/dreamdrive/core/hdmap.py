"""Vector HD map: lane dividers, road boundaries, crossings, drivable area, lane graph; the map channel order.

Its BEV raster and per-view layouts are drawn in `conditions.layout` (core stays numpy-only).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from dreamdrive.core.conventions import LANE_WIDTH
from dreamdrive.core.errors import DreamdriveError
from dreamdrive.core.geometry import check_finite

# The one channel order of every map raster: the BEV raster, the per-view map layouts, the HD-map generator.
MAP_CHANNELS: tuple[str, ...] = ("road_boundary", "lane_divider", "ped_crossing")
CLOSED_CHANNELS = frozenset({"ped_crossing"})  # polygons; the other channels are open polylines
PATCH_SIZE_M = 102.4
RESOLUTION_M = 0.2


def _polyline(points: np.ndarray | list, what: str, closed: bool = False) -> np.ndarray:
    array = check_finite(points, what)
    if array.ndim != 2 or array.shape[1] != 2 or len(array) < (3 if closed else 2):
        raise DreamdriveError(
            f"{what} must be a list of at least {3 if closed else 2} (x, y) points, got shape {array.shape}."
        )
    return array


@dataclass(frozen=True)
class Lane:
    """One lane: its centreline in driving direction and the lanes it leads into.

    Args:
        lane_id: unique name of the lane within its map.
        centerline: (N, 2) points in global metres, in the direction of travel.
        successors: ids of the lanes a vehicle can continue into.
        width: lane width in metres.
    """

    lane_id: str
    centerline: np.ndarray
    successors: tuple[str, ...] = ()
    width: float = LANE_WIDTH

    def __post_init__(self) -> None:
        object.__setattr__(self, "centerline", _polyline(self.centerline, f"centreline of lane {self.lane_id}"))
        object.__setattr__(self, "successors", tuple(self.successors))


@dataclass
class HDMap:
    """A vector HD map in global coordinates (metres).

    Args:
        name: the map's location name (nuScenes `log.location`).
        lane_dividers: polylines (N, 2) painted between lanes.
        road_boundaries: polylines (N, 2) at the edge of the road.
        ped_crossings: polygons (N, 2) of pedestrian crossings.
        drivable_areas: polygons (N, 2) of drivable surface.
        lanes: lane graph keyed by lane id.
    """

    name: str
    lane_dividers: list[np.ndarray] = field(default_factory=list)
    road_boundaries: list[np.ndarray] = field(default_factory=list)
    ped_crossings: list[np.ndarray] = field(default_factory=list)
    drivable_areas: list[np.ndarray] = field(default_factory=list)
    lanes: dict[str, Lane] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.lane_dividers = [
            _polyline(p, f"lane divider {i} of map {self.name}") for i, p in enumerate(self.lane_dividers)
        ]
        self.road_boundaries = [
            _polyline(p, f"road boundary {i} of map {self.name}") for i, p in enumerate(self.road_boundaries)
        ]
        self.ped_crossings = [
            _polyline(p, f"pedestrian crossing {i} of map {self.name}", closed=True)
            for i, p in enumerate(self.ped_crossings)
        ]
        self.drivable_areas = [
            _polyline(p, f"drivable area {i} of map {self.name}", closed=True)
            for i, p in enumerate(self.drivable_areas)
        ]
        for lane in self.lanes.values():
            missing = [s for s in lane.successors if s not in self.lanes]
            if missing:
                raise DreamdriveError(f"lane {lane.lane_id} of map {self.name} leads into unknown lanes {missing}.")

    def bounds(self) -> tuple[float, float, float, float]:
        """(x_min, y_min, x_max, y_max) over every element of the map."""
        arrays = self.lane_dividers + self.road_boundaries + self.ped_crossings + self.drivable_areas
        arrays += [lane.centerline for lane in self.lanes.values()]
        if not arrays:
            return (0.0, 0.0, 0.0, 0.0)
        stacked = np.concatenate(arrays, axis=0)
        return (*stacked.min(axis=0).tolist(), *stacked.max(axis=0).tolist())

    def layers(self) -> dict[str, list[np.ndarray]]:
        """The map's elements per raster channel, in `MAP_CHANNELS` order (crossings as open point lists)."""
        elements = {
            "road_boundary": self.road_boundaries,
            "lane_divider": self.lane_dividers,
            "ped_crossing": self.ped_crossings,
        }
        return {name: elements[name] for name in MAP_CHANNELS}

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "lane_dividers": [p.tolist() for p in self.lane_dividers],
            "road_boundaries": [p.tolist() for p in self.road_boundaries],
            "ped_crossings": [p.tolist() for p in self.ped_crossings],
            "drivable_areas": [p.tolist() for p in self.drivable_areas],
            "lanes": [
                {
                    "id": lane.lane_id,
                    "centerline": lane.centerline.tolist(),
                    "successors": list(lane.successors),
                    "width": lane.width,
                }
                for lane in self.lanes.values()
            ],
        }

    @staticmethod
    def from_json(data: dict) -> HDMap:
        try:
            lanes = {
                item["id"]: Lane(item["id"], np.asarray(item["centerline"]), tuple(item["successors"]), item["width"])
                for item in data.get("lanes", [])
            }
            return HDMap(
                name=data["name"],
                lane_dividers=[np.asarray(p) for p in data.get("lane_dividers", [])],
                road_boundaries=[np.asarray(p) for p in data.get("road_boundaries", [])],
                ped_crossings=[np.asarray(p) for p in data.get("ped_crossings", [])],
                drivable_areas=[np.asarray(p) for p in data.get("drivable_areas", [])],
                lanes=lanes,
            )
        except (KeyError, TypeError, ValueError) as error:
            raise DreamdriveError(
                f"malformed vector map: {error!r}; expected the layout HDMap.to_json writes."
            ) from error
