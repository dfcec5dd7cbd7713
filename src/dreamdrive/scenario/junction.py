"""The four-way junction that turning scripts drive through, in the library's road frame.

The ego's road runs along x with the library's lanes (three our way at y = -3.5,
0, 3.5; two oncoming at 7 and 10.5; its centre line at y = 5.25). A crossing road
with two lanes each way meets it at x = `ahead`. The town is built with the
procedural world's own machinery (`world.town.town_from_roads`), so its lanes,
connectors, crossings, sidewalks and drivable area are those the renderer and the
validators use; the library reads its turning paths from the same lanes.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from dreamdrive.core.conventions import LANE_WIDTH
from dreamdrive.core.geometry import Transform
from dreamdrive.core.paths import arc_length
from dreamdrive.world.town import CROSSWALK_WIDTH, Road, Town, connector_curve, town_from_roads

CENTRE_Y = 1.5 * LANE_WIDTH  # the main road's centre line in the road frame
MAIN_LANES = (3, 2)
CROSS_LANES = (2, 2)
HALF = max(*MAIN_LANES, *CROSS_LANES) * LANE_WIDTH + 4.0 + CROSSWALK_WIDTH + 1.0  # centre to the roads' ends
CROSS_LENGTH = 90.0
TURNS = ("left", "right", "u_turn")


def entry_x(ahead: float) -> float:
    """Where the ego's road ends at the junction (road frame x)."""
    return ahead - HALF


def junction_town(ahead: float, x_min: float, x_max: float, seed: int, to_global: Transform | None = None) -> Town:
    """The junction as a Town, its road-frame coordinates mapped by `to_global` (default: the road frame)."""
    to_global = to_global or Transform.identity()

    def place(points) -> np.ndarray:
        points = np.asarray(points, np.float64)
        return to_global.apply(np.column_stack([points, np.zeros(len(points))]))[:, :2]

    def line(a, b) -> np.ndarray:
        count = max(2, int(np.linalg.norm(np.subtract(b, a)) / 2.0))
        return place(np.linspace(a, b, count))

    west, east = min(x_min, ahead - HALF - 10.0), max(x_max, ahead + HALF + 10.0)
    south, north = CENTRE_Y - HALF - CROSS_LENGTH, CENTRE_Y + HALF + CROSS_LENGTH
    points = {"c": (ahead, CENTRE_Y), "w": (west, CENTRE_Y), "e": (east, CENTRE_Y), "s": (ahead, south),
              "n": (ahead, north)}  # fmt: skip
    nodes = {key: place([point])[0] for key, point in points.items()}
    roads = {
        "rw": Road("rw", "w", "c", line((west, CENTRE_Y), (ahead - HALF, CENTRE_Y)), *MAIN_LANES),
        "re": Road("re", "c", "e", line((ahead + HALF, CENTRE_Y), (east, CENTRE_Y)), *MAIN_LANES),
        "rs": Road("rs", "s", "c", line((ahead, south), (ahead, CENTRE_Y - HALF)), *CROSS_LANES),
        "rn": Road("rn", "c", "n", line((ahead, CENTRE_Y + HALF), (ahead, north)), *CROSS_LANES),
    }
    name = f"scenario-junction-{int(round(ahead))}"
    return town_from_roads(name, nodes, roads, np.random.default_rng(seed), dead_ends={"w", "e", "s", "n"})


@lru_cache(maxsize=4)
def road_frame_junction(ahead: float) -> Town:
    """The junction in the road frame with long roads (200 m past the entry both ways), built once per place:
    every turning actor of a script reads its paths from it."""
    return junction_town(ahead, -200.0, entry_x(ahead) + 200.0, 0)


def turn_path(town: Town, lane_y: float, turn: str) -> np.ndarray:
    """The path (N, 2) of a turn from the ego road's forward lane at `lane_y` (road frame): through the
    junction and along the exit lane to its end. Left and right turns keep the lane's place counted from the
    centre line (as far as the exit road has lanes); a U-turn is a half circle into the oncoming lane that is
    at least a car's turning circle away, then back along it."""
    index = int(round((CENTRE_Y - LANE_WIDTH / 2 - lane_y) / LANE_WIDTH))  # 0 next to the centre line
    incoming = town.hdmap.lanes[f"rw:f{index}"].centerline
    if turn == "u_turn":
        start = incoming[-1]
        heading = incoming[-1] - incoming[-2]
        heading /= np.linalg.norm(heading)
        left = np.array([-heading[1], heading[0]])
        outgoing = town.hdmap.lanes["rw:b1"].centerline  # the outer oncoming lane: room to turn
        width = float(np.dot(outgoing[0] - start, left))
        radius = width / 2
        angles = np.linspace(-np.pi / 2, np.pi / 2, 24)
        centre = start + heading * 2.0 + left * radius
        arc = centre + np.outer(np.cos(angles), heading) * radius + np.outer(np.sin(angles), left) * radius
        back = start + left * width
        return np.vstack([start, arc, back, outgoing[1:]])
    exit_road = "rn" if turn == "left" else "rs"
    forward = turn == "left"
    count = CROSS_LANES[0] if forward else CROSS_LANES[1]
    exit_lane = town.hdmap.lanes[f"{exit_road}:{'f' if forward else 'b'}{min(index, count - 1)}"].centerline
    return np.vstack([incoming[-1:], connector_curve(incoming, exit_lane)[1:-1], exit_lane])


def side_road_path(town: Town, side: str, distance: float, merge: bool) -> np.ndarray:
    """The path of a vehicle on the crossing road `side` of the ego's road (seen from the ego), starting
    `distance` metres before the junction in the lane next to the kerb. Merging, it turns into our direction
    (right from the right side into our rightmost lane, left from the left side into our leftmost); otherwise
    it stops where its lane meets the junction."""
    lanes = town.hdmap.lanes
    incoming = lanes["rs:f1" if side == "right" else "rn:b1"].centerline
    stations = arc_length(incoming)
    start = max(0.0, stations[-1] - distance)
    first = np.array([np.interp(start, stations, incoming[:, 0]), np.interp(start, stations, incoming[:, 1])])
    lead = np.vstack([first, incoming[stations > start]])
    if not merge:
        return lead
    exit_lane = lanes["re:f2" if side == "right" else "re:f0"].centerline
    return np.vstack([lead, connector_curve(lead, exit_lane)[1:-1], exit_lane])
