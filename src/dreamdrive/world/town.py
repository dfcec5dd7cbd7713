"""Procedural towns: a jittered grid of intersections joined by curved multi-lane roads.

A town is an `HDMap` (lanes with their connectivity, dividers, boundaries,
crossings, drivable area) plus what the map does not hold: sidewalks, a
pedestrian path graph, signal phases and roadside structure (buildings,
street lights, trees). Node jitter makes the roads gentle S-curves, and a few
removed grid edges make T junctions and corners.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from shapely.geometry import Polygon
from shapely.ops import unary_union

from dreamdrive.core.conventions import LANE_WIDTH
from dreamdrive.core.errors import DreamdriveError
from dreamdrive.core.hdmap import HDMap, Lane
from dreamdrive.core.paths import Path2D

SIDEWALK_WIDTH = 3.0
CROSSWALK_WIDTH = 4.0
ORIGIN = 100.0  # towns live in positive coordinates so the nuScenes map mask covers them


def bezier(
    p0: np.ndarray, p1: np.ndarray, p2: np.ndarray, p3: np.ndarray, step: float = 1.0, samples: int | None = None
) -> np.ndarray:
    """Points (N, 2) along a cubic Bezier curve, about `step` metres apart (or exactly `samples` points)."""
    length = np.linalg.norm(p1 - p0) + np.linalg.norm(p2 - p1) + np.linalg.norm(p3 - p2)
    count = samples if samples is not None else max(2, int(np.ceil(length / step)) + 1)
    t = np.linspace(0.0, 1.0, count)[:, None]
    return (1 - t) ** 3 * p0 + 3 * (1 - t) ** 2 * t * p1 + 3 * (1 - t) * t**2 * p2 + t**3 * p3


def polyline_normals(points: np.ndarray) -> np.ndarray:
    """Unit left normals (N, 2) of a polyline (N, 2)."""
    tangents = np.gradient(points, axis=0)
    tangents /= np.linalg.norm(tangents, axis=1, keepdims=True)
    return np.stack([-tangents[:, 1], tangents[:, 0]], axis=1)


def offset(points: np.ndarray, distance: float) -> np.ndarray:
    """The polyline shifted `distance` metres to its left (negative: right)."""
    return points + distance * polyline_normals(points)


@dataclass
class Road:
    """A road between two intersections; its centreline runs from `start` to `end`."""

    road_id: str
    start: str
    end: str
    centerline: np.ndarray
    forward_lanes: int
    backward_lanes: int

    def lane_id(self, forward: bool, index: int) -> str:
        return f"{self.road_id}:{'f' if forward else 'b'}{index}"

    def lane_line(self, forward: bool, index: int) -> np.ndarray:
        """Centreline of lane `index` (0 next to the road's centre line) in its driving direction."""
        if forward:
            return offset(self.centerline, -(index + 0.5) * LANE_WIDTH)
        return offset(self.centerline, (index + 0.5) * LANE_WIDTH)[::-1]

    @property
    def left_edge(self) -> float:
        return self.backward_lanes * LANE_WIDTH

    @property
    def right_edge(self) -> float:
        return self.forward_lanes * LANE_WIDTH


@dataclass
class RoadEnd:
    """A road where it meets an intersection, seen from the intersection looking out along the road."""

    road: Road
    at_start: bool
    point: np.ndarray  # centreline point at the intersection edge
    direction: np.ndarray  # unit vector out of the intersection
    left: np.ndarray  # boundary point to the left of `direction`
    right: np.ndarray

    @property
    def angle(self) -> float:
        return float(np.arctan2(self.direction[1], self.direction[0]))

    def incoming_lanes(self) -> list[tuple[str, int]]:
        """(lane id, index) of the lanes that drive into the intersection here."""
        road = self.road
        if self.at_start:
            return [(road.lane_id(False, k), k) for k in range(road.backward_lanes)]
        return [(road.lane_id(True, k), k) for k in range(road.forward_lanes)]

    def outgoing_lanes(self) -> list[tuple[str, int]]:
        road = self.road
        if self.at_start:
            return [(road.lane_id(True, k), k) for k in range(road.forward_lanes)]
        return [(road.lane_id(False, k), k) for k in range(road.backward_lanes)]


@dataclass(frozen=True)
class StaticObject:
    """Roadside structure: kind is 'building', 'streetlight' or 'tree'; size is (width, length, height)."""

    kind: str
    center: tuple[float, float]
    size: tuple[float, float, float]
    yaw: float
    color: tuple[float, float, float]


@dataclass
class Town:
    """A procedural town.

    Args:
        name: the map location name (also the HD map's name).
        hdmap: lanes, dividers, boundaries, crossings, drivable area.
        nodes: intersection centres by node id.
        roads: roads by id.
        ends: per node, its road ends sorted counter-clockwise.
        sidewalks: sidewalk polygons (N, 2).
        ped_graph: pedestrian paths: node id -> list of (neighbour, polyline (N, 2), crossing node or None).
        ped_points: position of each pedestrian graph node.
        approach_of: lane id of every lane entering an intersection -> (node id, approach index).
        statics: buildings, street lights, trees.
    """

    name: str
    hdmap: HDMap
    nodes: dict[str, np.ndarray]
    roads: dict[str, Road]
    ends: dict[str, list[RoadEnd]]
    sidewalks: list[np.ndarray]
    ped_graph: dict[str, list[tuple[str, np.ndarray, str | None]]]
    ped_points: dict[str, np.ndarray]
    approach_of: dict[str, tuple[str, int]]
    statics: list[StaticObject] = field(default_factory=list)

    def side_lanes(self, lane_id: str) -> tuple[str | None, str | None]:
        """(left, right) neighbours of a road lane in the same direction, for lane changes (None: no lane)."""
        if ">" in lane_id:
            return None, None  # no lane changes inside intersections
        road_id, code = lane_id.split(":")
        road, forward, index = self.roads[road_id], code[0] == "f", int(code[1:])
        count = road.forward_lanes if forward else road.backward_lanes
        left = road.lane_id(forward, index - 1) if index > 0 else None
        right = road.lane_id(forward, index + 1) if index + 1 < count else None
        return left, right


def _grid_edges(rng: np.random.Generator, nx: int, ny: int) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    edges = [((i, j), (i + 1, j)) for i in range(nx - 1) for j in range(ny)]
    edges += [((i, j), (i, j + 1)) for i in range(nx) for j in range(ny - 1)]
    # Remove a few edges to make T junctions, keeping every node at degree >= 2 and the grid connected.
    rng.shuffle(edges)
    kept = list(edges)
    for edge in edges[: max(1, (nx * ny) // 4)]:
        trial = [e for e in kept if e != edge]
        degree: dict[tuple[int, int], int] = {}
        for a, b in trial:
            degree[a] = degree.get(a, 0) + 1
            degree[b] = degree.get(b, 0) + 1
        if all(degree.get((i, j), 0) >= 2 for i in range(nx) for j in range(ny)) and _connected(trial, nx * ny):
            kept = trial
    return sorted(kept)


def _connected(edges: list, n_nodes: int) -> bool:
    neighbours: dict = {}
    for a, b in edges:
        neighbours.setdefault(a, []).append(b)
        neighbours.setdefault(b, []).append(a)
    start = next(iter(neighbours))
    seen, stack = {start}, [start]
    while stack:
        for other in neighbours[stack.pop()]:
            if other not in seen:
                seen.add(other)
                stack.append(other)
    return len(seen) == n_nodes


def make_town(seed: int = 0, blocks: tuple[int, int] = (3, 3), spacing: float = 100.0, name: str | None = None) -> Town:
    """A town of `blocks` intersections (columns, rows), `spacing` metres apart, jittered by the seed."""
    nx, ny = blocks
    if nx < 2 or ny < 2 or spacing < 50:
        raise DreamdriveError(f"a town needs at least 2x2 intersections at least 50 m apart, got {blocks}, {spacing}.")
    rng = np.random.default_rng(seed)
    name = name or f"proc-town-{seed}"
    jitter = spacing * 0.08
    nodes = {
        f"n{i}_{j}": np.array([ORIGIN + i * spacing, ORIGIN + j * spacing]) + rng.uniform(-jitter, jitter, 2)
        for i in range(nx)
        for j in range(ny)
    }
    edges = _grid_edges(rng, nx, ny)

    # 1. Roads: lane counts, then the intersection half-size each node needs, then the curves.
    lane_counts = {edge: (2, 2) if rng.random() < 0.7 else (1, 1) for edge in edges}
    half_size = {key: 0.0 for key in nodes}
    for (a, b), (forward, backward) in lane_counts.items():
        for node in (a, b):
            key = f"n{node[0]}_{node[1]}"
            half_size[key] = max(half_size[key], max(forward, backward) * LANE_WIDTH + 4.0)
    roads: dict[str, Road] = {}
    for (a, b), (forward, backward) in lane_counts.items():
        start, end = f"n{a[0]}_{a[1]}", f"n{b[0]}_{b[1]}"
        axis = np.array([1.0, 0.0]) if b[0] > a[0] else np.array([0.0, 1.0])
        p0 = nodes[start] + axis * (half_size[start] + CROSSWALK_WIDTH + 1.0)
        p3 = nodes[end] - axis * (half_size[end] + CROSSWALK_WIDTH + 1.0)
        length = np.linalg.norm(p3 - p0)
        centerline = bezier(p0, p0 + axis * length / 3, p3 - axis * length / 3, p3)
        road_id = f"r{len(roads)}"
        roads[road_id] = Road(road_id, start, end, centerline, forward, backward)

    return town_from_roads(name, nodes, roads, rng)


def town_from_roads(
    name: str,
    nodes: dict[str, np.ndarray],
    roads: dict[str, Road],
    rng: np.random.Generator,
    dead_ends: set[str] = frozenset(),
) -> Town:
    """A town from intersection centres and the roads between them (each ending at its nodes' intersection
    edge): road ends, lanes and connectors through the intersections, markings, crossings, drivable area,
    sidewalks, pedestrian paths and roadside structure. Nodes in `dead_ends` are where roads simply stop
    (no intersection is built there)."""
    # 2. Road ends around each node, counter-clockwise.
    ends: dict[str, list[RoadEnd]] = {key: [] for key in nodes}
    for road in roads.values():
        for at_start in (True, False):
            line = road.centerline if at_start else road.centerline[::-1]
            direction = (line[1] - line[0]) / np.linalg.norm(line[1] - line[0])
            normal = np.array([-direction[1], direction[0]])
            left_w = road.right_edge if not at_start else road.left_edge
            right_w = road.left_edge if not at_start else road.right_edge
            # Seen from the node looking out: at the start the forward lanes are on the right.
            end = RoadEnd(road, at_start, line[0], direction, line[0] + normal * left_w, line[0] - normal * right_w)
            ends[road.start if at_start else road.end].append(end)
    for key in ends:
        ends[key].sort(key=lambda e: e.angle)
    ends = {key: value for key, value in ends.items() if key not in dead_ends}

    # 3. Lanes on roads, then connectors through each intersection.
    lanes: dict[str, Lane] = {}
    successors: dict[str, list[str]] = {}
    for road in roads.values():
        for forward, count in ((True, road.forward_lanes), (False, road.backward_lanes)):
            for k in range(count):
                lanes[road.lane_id(forward, k)] = Lane(road.lane_id(forward, k), road.lane_line(forward, k))
                successors[road.lane_id(forward, k)] = []
    approach_of: dict[str, tuple[str, int]] = {}
    for key, node_ends in ends.items():
        for a_index, incoming in enumerate(node_ends):
            n_in = len(incoming.incoming_lanes())
            for in_id, in_k in incoming.incoming_lanes():
                approach_of[in_id] = (key, a_index)
                targets = []  # (outgoing lane id) by the usual rules
                fallback = []  # any exit, for a lane the rules leave stranded (outer lane at a corner)
                for outgoing in node_ends:
                    if outgoing is incoming:
                        continue
                    turn = np.degrees(np.arctan2(*_cross_dot(-incoming.direction, outgoing.direction)))
                    out_lanes = outgoing.outgoing_lanes()
                    n_out = len(out_lanes)
                    fallback.append(out_lanes[min(in_k, n_out - 1)][0])
                    if abs(turn) < 45:  # straight on: keep the lane index
                        targets.append(out_lanes[min(in_k, n_out - 1)][0])
                    elif turn > 0 and in_k == 0:  # left turns from the innermost lane into the innermost lane
                        targets.append(out_lanes[0][0])
                    elif turn < 0 and in_k == n_in - 1:  # right turns from the outermost into the outermost
                        targets.append(out_lanes[n_out - 1][0])
                for out_id in targets or fallback:
                    connector = f"{key}:{in_id}>{out_id}"
                    lanes[connector] = Lane(
                        connector, connector_curve(lanes[in_id].centerline, lanes[out_id].centerline)
                    )
                    successors[in_id].append(connector)
                    successors[connector] = [out_id]
    lanes = {k: Lane(k, lane.centerline, tuple(successors[k]), LANE_WIDTH) for k, lane in lanes.items()}

    # 4. Markings, boundaries, crossings, drivable area, sidewalks.
    dividers, boundaries, crossings, drivable, sidewalks = [], [], [], [], []
    for road in roads.values():
        line = road.centerline
        dividers.append(line)  # the centre line between the two directions
        dividers += [offset(line, -k * LANE_WIDTH) for k in range(1, road.forward_lanes)]
        dividers += [offset(line, k * LANE_WIDTH) for k in range(1, road.backward_lanes)]
        left, right = offset(line, road.left_edge), offset(line, -road.right_edge)
        boundaries += [left, right]
        drivable.append(np.vstack([left, right[::-1]]))
        sidewalks.append(np.vstack([left, offset(line, road.left_edge + SIDEWALK_WIDTH)[::-1]]))
        sidewalks.append(np.vstack([offset(line, -road.right_edge - SIDEWALK_WIDTH), right[::-1]]))
    for node_ends in ends.values():
        ring = []
        for i, end in enumerate(node_ends):
            following = node_ends[(i + 1) % len(node_ends)]
            corner = _corner(end, following)
            boundaries.append(corner)
            ring += [end.right, end.left, *corner[1:-1]]
            outer = _corner(end, following, SIDEWALK_WIDTH)
            sidewalks.append(np.vstack([corner, outer[::-1]]))
            # Crossing: a band across the road just outside the intersection box.
            normal = np.array([-end.direction[1], end.direction[0]])
            near, far = end.point - end.direction * (CROSSWALK_WIDTH + 0.5), end.point - end.direction * 0.5
            width_left = np.dot(end.left - end.point, normal)
            width_right = np.dot(end.right - end.point, normal)
            crossings.append(
                np.array(
                    [
                        near + normal * width_right,
                        far + normal * width_right,
                        far + normal * width_left,
                        near + normal * width_left,
                    ]
                )
            )
        drivable.append(np.asarray(ring))
    # Road polygons start at the crossing's far edge: extend the drivable area over the crossings.
    drivable += crossings
    hdmap = HDMap(name, dividers, boundaries, crossings, drivable, lanes)
    ped_graph, ped_points = _pedestrian_graph(ends)
    town = Town(name, hdmap, nodes, roads, ends, sidewalks, ped_graph, ped_points, approach_of)
    town.statics = _roadside(rng, town)
    return town


def connector_curve(in_line: np.ndarray, out_line: np.ndarray) -> np.ndarray:
    """A smooth path through an intersection from the end of one lane to the start of another."""
    p0, p3 = in_line[-1], out_line[0]
    d_in = (in_line[-1] - in_line[-2]) / np.linalg.norm(in_line[-1] - in_line[-2])
    d_out = (out_line[1] - out_line[0]) / np.linalg.norm(out_line[1] - out_line[0])
    reach = 0.45 * np.linalg.norm(p3 - p0)
    return bezier(p0, p0 + d_in * reach, p3 - d_out * reach, p3, step=0.5)


def _cross_dot(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """(sin, cos) of the signed angle from a to b."""
    return float(a[0] * b[1] - a[1] * b[0]), float(np.dot(a, b))


def _corner(end: RoadEnd, following: RoadEnd, outward: float = 0.0) -> np.ndarray:
    """The curb from `end`'s left edge round to `following`'s right edge, moved `outward` metres away."""
    n_end = np.array([-end.direction[1], end.direction[0]])
    n_next = np.array([-following.direction[1], following.direction[0]])
    p0 = end.left + n_end * outward
    p3 = following.right - n_next * outward
    reach = 0.5 * np.linalg.norm(p3 - p0)
    # a fixed count, so that a curb and its sidewalk's outer edge pair up point by point
    return bezier(p0, p0 - end.direction * reach, p3 - following.direction * reach, p3, samples=40)


def _pedestrian_graph(ends: dict[str, list[RoadEnd]]):
    """Sidewalk centrelines along roads and round corners, and crossings over each road end."""
    graph: dict[str, list[tuple[str, np.ndarray, str | None]]] = {}
    points: dict[str, np.ndarray] = {}

    def link(a: str, b: str, path: np.ndarray, crossing: str | None = None) -> None:
        graph.setdefault(a, []).append((b, path, crossing))
        graph.setdefault(b, []).append((a, path[::-1], crossing))
        points[a], points[b] = path[0], path[-1]

    mid = SIDEWALK_WIDTH / 2
    for key, node_ends in ends.items():
        for i, end in enumerate(node_ends):
            following = node_ends[(i + 1) % len(node_ends)]
            corner = _corner(end, following, mid)
            link(f"{key}/{i}/L", f"{key}/{(i + 1) % len(node_ends)}/R", corner)
            # crossing over this road end, along the middle of its crosswalk
            normal = np.array([-end.direction[1], end.direction[0]])
            centre = end.point - end.direction * (CROSSWALK_WIDTH / 2 + 0.5)
            a = centre + normal * (np.dot(end.left - end.point, normal) + mid)
            b = centre + normal * (np.dot(end.right - end.point, normal) - mid)
            # from the sidewalk corner point along the curb to the crosswalk, over it, and back
            path = np.vstack([end.left + normal * mid, np.linspace(a, b, 10), end.right - normal * mid])
            link(f"{key}/{i}/L", f"{key}/{i}/R", path, crossing=f"{key}/{i}")
    # sidewalks along each road: from one node's road end to the other's
    index = {(id(e.road), e.at_start): (key, i) for key, node_ends in ends.items() for i, e in enumerate(node_ends)}
    for key, node_ends in ends.items():
        for i, end in enumerate(node_ends):
            if not end.at_start:
                continue
            road = end.road
            if (id(road), False) not in index:  # the road ends without an intersection
                continue
            other_key, j = index[(id(road), False)]
            left = offset(road.centerline, road.left_edge + mid)
            right = offset(road.centerline, -road.right_edge - mid)
            # at the start, 'left' seen from the node is the road's left; at the far end the sides swap
            link(f"{key}/{i}/L", f"{other_key}/{j}/R", left)
            link(f"{key}/{i}/R", f"{other_key}/{j}/L", right)
    return graph, points


def _roadside(rng: np.random.Generator, town: Town) -> list[StaticObject]:
    """Street lights at the curb every 30 m, trees between them, buildings set back behind the sidewalks."""
    keep_out = unary_union([Polygon(p).buffer(0.5) for p in town.hdmap.drivable_areas + town.sidewalks])
    statics: list[StaticObject] = []
    taken: list[Polygon] = []
    palette = [(0.62, 0.58, 0.52), (0.55, 0.48, 0.42), (0.7, 0.7, 0.68), (0.5, 0.52, 0.58), (0.66, 0.6, 0.5)]
    for road in town.roads.values():
        path = Path2D(road.centerline)

        def frame_at(s: float, path: Path2D = path) -> tuple[np.ndarray, np.ndarray, float]:
            point, heading = path.pose(s)
            return point, np.array([-np.sin(heading), np.cos(heading)]), float(heading)

        for side, edge in ((1.0, road.left_edge), (-1.0, road.right_edge)):
            for s in np.arange(5.0, path.length, 30.0):
                point, normal, yaw = frame_at(s)
                statics.append(
                    StaticObject(
                        "streetlight",
                        tuple(point + side * normal * (edge + 0.6)),
                        (0.3, 0.3, 7.0),
                        yaw if side < 0 else yaw + np.pi,  # its left, where the arm reaches, faces the road
                        (0.3, 0.3, 0.32),
                    )
                )
                if s + 15 < path.length and rng.random() < 0.6:
                    point, normal, _ = frame_at(s + 15)
                    statics.append(
                        StaticObject(
                            "tree",
                            tuple(point + side * normal * (edge + SIDEWALK_WIDTH - 0.8)),
                            (2.5, 2.5, float(rng.uniform(4, 7))),
                            0.0,
                            (0.2, 0.45, 0.2),
                        )
                    )
            s = float(rng.uniform(0, 10))
            while s < path.length:
                point, normal, yaw = frame_at(s)
                width, depth = float(rng.uniform(10, 22)), float(rng.uniform(8, 16))
                centre = point + side * normal * (edge + SIDEWALK_WIDTH + 2.0 + depth / 2)
                polygon = Polygon(_rectangle(centre, depth, width, yaw))
                if not polygon.intersects(keep_out) and not any(polygon.intersects(t) for t in taken):
                    taken.append(polygon.buffer(1.0))
                    color = palette[int(rng.integers(len(palette)))]
                    statics.append(
                        StaticObject("building", tuple(centre), (depth, width, float(rng.uniform(6, 24))), yaw, color)
                    )
                s += width + float(rng.uniform(2, 8))
    return statics


def _rectangle(centre: np.ndarray, width: float, length: float, yaw: float) -> np.ndarray:
    """Corners (4, 2) of a rectangle with `length` along `yaw` and `width` across it."""
    c, s = np.cos(yaw), np.sin(yaw)
    along, across = np.array([c, s]) * length / 2, np.array([-s, c]) * width / 2
    return np.array(
        [centre + along + across, centre + along - across, centre - along - across, centre - along + across]
    )
