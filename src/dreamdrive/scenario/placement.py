"""Where a scenario's road frame lies on a map: its own road, a procedural town, or a nuScenes location.

Scripts describe trajectories lane-relatively: x along the ego's lane from its
start, y to the left, lanes 3.5 m apart. On the scenario's own road (or
junction) that frame is a rigid transform. On another map it follows a *route*:
a chain of the map's lanes from a start lane, taking the straightest successor
at every junction. A road-frame point (x, y) goes to the route point at arc
length x - x_start, moved y metres along the route's left normal, and headings
turn with the route. `place_on_map` tries the map's lanes in a seeded order and
keeps the first route on which every vehicle stays on the drivable area.
"""

from __future__ import annotations

import numpy as np

from dreamdrive.core.errors import DreamdriveError
from dreamdrive.core.hdmap import HDMap
from dreamdrive.core.paths import arc_length
from dreamdrive.scenario.scene import check
from dreamdrive.scenario.types import ScriptResult
from dreamdrive.world.town import Town

ROUTE_MARGIN = 20.0  # metres of route before and after the scenario's extent


class RouteFrame:
    """The road frame bent along a route (N, 2) of lane centrelines; road x = `x_start` at the route's start."""

    def __init__(self, route: np.ndarray, x_start: float, lanes: list[str] = ()):
        route = np.asarray(route, np.float64)
        steps = np.linalg.norm(np.diff(route, axis=0), axis=1)
        route = route[np.concatenate([[True], steps > 1e-6])]
        self.route, self.x_start, self.lanes = route, float(x_start), list(lanes)
        self.stations = arc_length(route)
        self.headings = np.unwrap(np.arctan2(*np.diff(route, axis=0).T[::-1]))
        self.middles = (self.stations[1:] + self.stations[:-1]) / 2

    @property
    def length(self) -> float:
        return float(self.stations[-1])

    def _frame(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        s = np.asarray(x, np.float64) - self.x_start
        heading = np.interp(s, self.middles, self.headings)
        inside = np.clip(s, 0.0, self.length)
        base = np.column_stack([np.interp(inside, self.stations, self.route[:, 0]),
                                np.interp(inside, self.stations, self.route[:, 1])])  # fmt: skip
        beyond = (s - inside)[:, None]  # past either end: straight on along the end's heading
        base = base + beyond * np.column_stack([np.cos(heading), np.sin(heading)])
        return base, heading

    def poses(self, rows: np.ndarray) -> np.ndarray:
        rows = np.asarray(rows, np.float64).reshape(-1, np.shape(rows)[-1])
        base, heading = self._frame(rows[:, 0])
        left = np.column_stack([-np.sin(heading), np.cos(heading)])
        return np.column_stack([base + left * rows[:, 1:2], rows[:, 2] + heading])

    def points(self, xy: np.ndarray) -> np.ndarray:
        xy = np.asarray(xy, np.float64).reshape(-1, 2)
        return self.poses(np.column_stack([xy, np.zeros(len(xy))]))[:, :2]

    def to_json(self) -> dict:
        return {"kind": "route", "lanes": self.lanes, "x_start": self.x_start,
                "route": np.round(self.route, 3).tolist()}  # fmt: skip


def follow_route(hdmap: HDMap, start: str, length: float) -> tuple[np.ndarray, list[str]]:
    """The centreline of `start` and its straightest successors until `length` metres (or a dead end)."""
    lane = hdmap.lanes[start]
    points, chain, seen = [lane.centerline], [start], {start}
    total = arc_length(lane.centerline)[-1]
    while total < length:
        options = [s for s in lane.successors if s in hdmap.lanes and s not in seen]
        if not options:
            break
        end_heading = _end_heading(lane.centerline)
        lane = hdmap.lanes[
            min(options, key=lambda s: abs(_turn(end_heading, _start_heading(hdmap.lanes[s].centerline))))
        ]
        seen.add(lane.lane_id)
        chain.append(lane.lane_id)
        points.append(lane.centerline[1:])
        total += arc_length(lane.centerline)[-1]
    return np.vstack(points), chain


def _end_heading(line: np.ndarray) -> float:
    d = line[-1] - line[-2]
    return float(np.arctan2(d[1], d[0]))


def _start_heading(line: np.ndarray) -> float:
    d = line[1] - line[0]
    return float(np.arctan2(d[1], d[0]))


def _turn(a: float, b: float) -> float:
    return float(np.arctan2(np.sin(b - a), np.cos(b - a)))


def place_on_map(result: ScriptResult, town: Town, seed: int, tries: int = 300) -> RouteFrame:
    """A route on `town`'s map on which every vehicle of the scenario stays on the drivable area."""
    if result.junction is not None:
        raise DreamdriveError(
            "scripts with a junction drive through their own junction; place scenarios without turns on a map."
        )
    if not town.hdmap.lanes:
        raise DreamdriveError(f"the map {town.hdmap.name} has no lanes to place a scenario on.")
    x_min, x_max = result.extent()
    needed = x_max - x_min + 2 * ROUTE_MARGIN
    order = sorted(town.hdmap.lanes)
    np.random.default_rng(seed).shuffle(order)
    reasons: dict[str, int] = {}
    for lane_id in order[:tries]:
        route, chain = follow_route(town.hdmap, lane_id, needed)
        if arc_length(route)[-1] < needed:
            reasons["too short"] = reasons.get("too short", 0) + 1
            continue
        frame = RouteFrame(route, x_min - ROUTE_MARGIN, chain)
        off_road = [p for p in check(result, town, frame) if p.kind == "off_road"]
        if not off_road:
            return frame
        reasons["off the drivable area"] = reasons.get("off the drivable area", 0) + 1
    summary = ", ".join(f"{count} {why}" for why, count in reasons.items())
    raise DreamdriveError(
        f"no stretch of lanes on {town.hdmap.name} fits the scenario ({needed:.0f} m of road with room for its "
        f"lanes; tried {min(tries, len(order))} start lanes: {summary}). Use a map with wider or longer roads, or "
        "the scenario's own road."
    )
