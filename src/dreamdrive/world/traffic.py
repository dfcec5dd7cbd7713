"""Traffic in a procedural town: IDM car following, MOBIL lane changes, signals, pedestrians, work zones.

Vehicles drive along the lane graph. A vehicle's leader is whichever vehicle
(or blocked stretch, red stop line, occupied crosswalk) is nearest ahead on any
lane of its route, so following, successor lanes and merges share one rule.
Signals are split-phase: one approach of an intersection is green at a time,
then an all-red pedestrian phase, so paths through an intersection never
cross. Pedestrians walk the sidewalk graph and use crosswalks in the
pedestrian phase. A last pass removes every agent whose footprint ever
overlaps another's (or the ego's), so no two boxes ever overlap.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from shapely import contains_xy
from shapely.geometry import Point, Polygon
from shapely.ops import unary_union

from dreamdrive.core.conventions import CAMERA_HZ
from dreamdrive.core.idm import EGO_IDM, IDM_PARAMS, IDMParams, idm_acceleration
from dreamdrive.core.paths import Path2D, footprints, footprints_apart
from dreamdrive.world.assets import Asset
from dreamdrive.world.geometry import CURB_H
from dreamdrive.world.town import Town

DT = 1.0 / CAMERA_HZ
GREEN, ALL_RED, WALK = 6.0, 2.5, 6.0  # seconds of a signal cycle
LANE_CHANGE_S = 3.0
LOOKAHEAD = 90.0
ANNOTATION_RADIUS = 75.0  # metres from the ego within which agents are annotated

# Lane-vehicle classes and their share of traffic; their IDM parameters are `core.idm.IDM_PARAMS`.
VEHICLE_MIX = {"car": 0.62, "truck": 0.12, "bus": 0.07, "motorcycle": 0.1, "bicycle": 0.09}


@dataclass
class Track:
    """One agent over the clip: per-frame centre, yaw and attribute; `annotated` marks frames near the ego."""

    instance_id: str
    category: str
    asset_id: str
    size: tuple[float, float, float]
    centers: np.ndarray  # (T, 3)
    yaws: np.ndarray  # (T,)
    attributes: list[str]
    lights: bool = False
    annotated: np.ndarray | None = None  # (T,) bool


@dataclass
class Traffic:
    """A simulated clip: times (T,) in seconds, ego poses (T, 3) as x, y, yaw, and the tracks."""

    times: np.ndarray
    ego: np.ndarray
    tracks: list[Track]


@dataclass
class _Vehicle:
    key: str
    detection: str
    asset: Asset
    lane: str
    s: float
    v: float
    v0: float  # this vehicle's desired speed (its class's, varied)
    idm: IDMParams
    route: list[str] = field(default_factory=list)
    change: tuple[str, float, float] | None = None  # (old lane, s on it when the change began, start time)
    next_decision: float = 0.0

    @property
    def length(self) -> float:
        return self.asset.info.size[1]


@dataclass
class _Pedestrian:
    key: str
    asset: Asset
    category: str
    link: tuple[str, str, Path2D, str | None]  # (from, to, path, crossing)
    s: float
    speed: float
    side: float  # metres to the right of the path, so people walking the other way pass by
    loiter: bool = False
    waiting: bool = False


class Simulation:
    """Simulates `seconds` of traffic around an ego car that starts on `ego_lane`.

    Args:
        town: the map.
        assets: asset variants by detection class.
        seed: random seed; the same seed gives the same traffic.
        seconds: clip length.
        density: vehicles per 100 m of lane near the ego.
    """

    def __init__(
        self,
        town: Town,
        assets: dict[str, list[Asset]],
        seed: int,
        seconds: float,
        density: float = 3.0,
        pedestrians: int = 22,
    ):
        self.town, self.assets, self.seconds = town, assets, seconds
        self.rng = np.random.default_rng(seed)
        self.lanes = {k: Path2D(lane.centerline) for k, lane in town.hdmap.lanes.items()}
        self.successors = {k: lane.successors for k, lane in town.hdmap.lanes.items()}
        self.road_lanes = sorted(k for k in self.lanes if ">" not in k)
        self.blocked: dict[str, list[tuple[float, float]]] = {}
        self.statics: list[Track] = []
        self.offset = {k: float(self.rng.uniform(0, 60)) for k in town.nodes}  # signal phase offsets
        self.drivable = unary_union([Polygon(p) for p in town.hdmap.drivable_areas]).buffer(0.05)
        self.crossings = [Polygon(p) for p in town.hdmap.ped_crossings]
        self._crossing_spans = self._connector_crossings()
        self.counter = 0
        self.time = 0.0
        # 1. the ego, mid-way along a road lane
        ego_lane = self.road_lanes[int(self.rng.integers(len(self.road_lanes)))]
        ego_asset = assets["car"][0]
        self.ego = _Vehicle(
            "ego",
            "car",
            ego_asset,
            ego_lane,
            self.lanes[ego_lane].length * 0.3,
            8.0,
            float(self.rng.uniform(8.5, 11.0)),
            EGO_IDM,
        )
        centre = self.lanes[ego_lane].pose(self.ego.s)[0]
        self._time_first_signal()
        self.vehicles: list[_Vehicle] = [self.ego]
        # 2. static scenery near the ego: a work zone, parked vehicles, parked bicycles
        self._work_zone(centre)
        self._parked(centre)
        # 3. moving traffic and pedestrians
        self._spawn_vehicles(centre, density)
        self.pedestrians: list[_Pedestrian] = []
        self._spawn_pedestrians(centre, pedestrians)

    # -- set-up ------------------------------------------------------------------------------

    def _key(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}{self.counter:03d}"

    def _asset(self, detection: str, rider: bool | None = None) -> Asset:
        options = [a for a in self.assets[detection] if rider is None or a.info.rider == rider]
        return options[int(self.rng.integers(len(options)))]

    def _near(self, centre: np.ndarray, radius: float) -> list[str]:
        """Road lanes passing within `radius` of `centre`, nearest first."""
        distance = {
            lane: float(np.min(np.linalg.norm(self.lanes[lane].points - centre, axis=1))) for lane in self.road_lanes
        }
        return sorted((lane for lane in self.road_lanes if distance[lane] < radius), key=lambda k: (distance[k], k))

    def _outer_lanes(self, centre: np.ndarray, radius: float) -> list[str]:
        """Road lanes near `centre` that have a lane on their left (so traffic can pass a blockage).

        The ego's own road comes first (what stands there is in view), then the others, nearest first.
        """
        ego_road = self.ego.lane.split(":")[0]
        lanes = [
            lane
            for lane in self._near(centre, radius)
            if self.town.side_lanes(lane)[0] is not None and self.town.side_lanes(lane)[1] is None
        ]
        return sorted(lanes, key=lambda lane: lane.split(":")[0] != ego_road)  # stable: keeps nearest first

    def _nearest_s(self, lane: str, centre: np.ndarray) -> float:
        path = self.lanes[lane]
        return float(path.lengths[int(np.argmin(np.linalg.norm(path.points - centre, axis=1)))])

    def _clear_of_ego(self, lane: str, start: float, end: float) -> bool:
        """Whether [start, end] on `lane` is at least 15 m from the ego (on its lane or the lanes beside it)."""
        ego_lane, ego_s = self.ego.lane, self.ego.s
        if lane != ego_lane and lane not in self.town.side_lanes(ego_lane):
            return True
        return end < ego_s - 15 or start > ego_s + 15

    def _static_track(
        self, detection: str, category: str, asset: Asset, xy: np.ndarray, yaw: float, z0: float, attribute: str
    ) -> None:
        frames = int(round(self.seconds * CAMERA_HZ)) + 1
        centre = np.array([xy[0], xy[1], z0 + asset.info.size[2] / 2])
        self.statics.append(
            Track(
                self._key("s"),
                category,
                asset.info.asset_id,
                asset.info.size,
                np.tile(centre, (frames, 1)),
                np.full(frames, yaw),
                [attribute] * frames,
            )
        )

    def _lane_point(self, lane: str, s: float, lateral: float = 0.0) -> tuple[np.ndarray, float]:
        xy, heading = self.lanes[lane].pose(s)
        return xy + lateral * np.array([-np.sin(heading), np.cos(heading)]), float(heading)

    def _work_zone(self, centre: np.ndarray) -> None:
        """Close 30 m of an outer lane with a cone taper and barriers; a digger and a worker inside."""
        # as near the ego as is safe: centred on it, else just ahead of or behind it
        candidates = [
            (lane, self._nearest_s(lane, centre) + shift)
            for lane in self._outer_lanes(centre, 150)
            for shift in (-13.0, -6.0, -20.0, 0.0, 8.0, -32.0, 20.0)
        ]
        for lane, s0 in candidates:
            length = self.lanes[lane].length
            if 3 <= s0 <= length - 29 and self._clear_of_ego(lane, s0 - 5, s0 + 30):
                break
        else:
            return
        self.blocked.setdefault(lane, []).append((s0 - 3, s0 + 32))
        # layout along the closed lane (metres from s0) so that nothing overlaps:
        # cone taper 0-8, barriers 7 and 11, worker 16, digger 19-25, cones on the lane line 10-27
        cone = self._asset("traffic_cone")
        for k in range(6):  # taper from the right edge to the lane's left edge
            xy, yaw = self._lane_point(lane, s0 + k * 1.6, -1.4 + k * 0.5)
            self._static_track("traffic_cone", "movable_object.trafficcone", cone, xy, yaw, 0.0, "")
        for k in range(4):
            xy, yaw = self._lane_point(lane, s0 + 10 + k * 5.5, 1.6)
            self._static_track("traffic_cone", "movable_object.trafficcone", cone, xy, yaw, 0.0, "")
        barrier = self._asset("barrier")
        for offset in (7.0, 11.0):  # barriers stand lengthwise: their long (width) side along the road
            xy, yaw = self._lane_point(lane, s0 + offset, -0.2)
            self._static_track("barrier", "movable_object.barrier", barrier, xy, yaw + np.pi / 2, 0.0, "")
        worker = self._asset("pedestrian")
        xy, yaw = self._lane_point(lane, s0 + 16, -0.5)
        self._static_track(
            "pedestrian", "human.pedestrian.construction_worker", worker, xy, yaw + 1.2, 0.0, "pedestrian.standing"
        )
        digger = self._asset("construction_vehicle")
        xy, yaw = self._lane_point(lane, s0 + 22, -0.2)
        self._static_track("construction_vehicle", "vehicle.construction", digger, xy, yaw, 0.0, "vehicle.parked")

    def _parked(self, centre: np.ndarray) -> None:
        """A parked trailer, cars and trucks in outer lanes; bicycles without riders on sidewalks."""
        lanes = self._outer_lanes(centre, 150)
        kinds = ["trailer", "car", "truck", "car", "trailer", "car"]
        for lane in lanes:
            if not kinds:
                break
            length = self.lanes[lane].length
            asset = self._asset(kinds[0])
            margin = 1 + asset.info.size[1] / 2
            if length < 2 * margin + 5:
                continue
            spots = [self._nearest_s(lane, centre) + shift for shift in (0.0, 15.0, -15.0, 30.0, -30.0)]
            spots = [
                s
                for s in spots
                if margin <= s <= length - margin
                and self._clear_of_ego(lane, s - asset.info.size[1], s + asset.info.size[1])
                and self._free(lane, s, asset.info.size[1] / 2 + 2.0)
            ]
            if not spots:
                continue
            s = spots[0]
            detection = kinds.pop(0)
            self.blocked.setdefault(lane, []).append((s - asset.info.size[1] / 2 - 1, s + asset.info.size[1] / 2 + 1))
            xy, yaw = self._lane_point(lane, s, -0.4)
            category = {"trailer": "vehicle.trailer", "car": "vehicle.car", "truck": "vehicle.truck"}[detection]
            self._static_track(detection, category, asset, xy, yaw, 0.0, "vehicle.parked")
        scenery = np.array([o.center for o in self.town.statics]).reshape(-1, 2)
        for lane in self._near(centre, 80)[:6]:
            road_id = lane.split(":")[0]
            road = self.town.roads[road_id]
            s = float(self.rng.uniform(10, self.lanes[lane].length - 10))
            xy, heading = self._lane_point(lane, s)
            edge = road.right_edge if lane.split(":")[1][0] == "f" else road.left_edge
            index = int(lane.split(":")[1][1:])
            lateral = -(edge - (index + 0.5) * 3.5) - 2.6  # near the sidewalk's outer edge
            bike_xy = xy + lateral * np.array([-np.sin(heading), np.cos(heading)])
            if len(scenery) and np.min(np.linalg.norm(scenery - bike_xy, axis=1)) < 2.0:
                continue
            asset = self._asset("bicycle", rider=False)
            self._static_track("bicycle", "vehicle.bicycle", asset, bike_xy, heading, CURB_H, "cycle.without_rider")

    def _add_vehicle(self, detection: str, lane: str, s: float) -> bool:
        """Put a moving vehicle on `lane` at `s` if it fits there; True if it did."""
        if detection == "bicycle" and self.town.side_lanes(lane)[1] is not None:
            return False  # cyclists keep to the outermost lane
        asset = self._asset(detection, rider=True if detection in ("bicycle", "motorcycle") else None)
        half = asset.info.size[1] / 2
        if not (half + 1 < s < self.lanes[lane].length - half - 2) or not self._free(lane, s, half + 3.0):
            return False
        if not self._clear_of_ego(lane, s - half - 2, s + half + 2):
            return False
        params = IDM_PARAMS[detection]
        v0 = params.desired_speed * float(self.rng.uniform(0.85, 1.15))
        self.vehicles.append(_Vehicle(self._key("v"), detection, asset, lane, s, v0 * 0.6, v0, params))
        return True

    def _spawn_vehicles(self, centre: np.ndarray, density: float) -> None:
        lanes = self._near(centre, 130)
        # one of each rarer class close to the ego, so that every scene shows them
        for detection in ("bus", "motorcycle", "truck", "bicycle"):
            placed = False
            for lane in lanes[:10]:
                for shift in (25.0, -22.0, 38.0, -35.0, 12.0):
                    if self._add_vehicle(detection, lane, self._nearest_s(lane, centre) + shift):
                        placed = True
                        break
                if placed:
                    break
        kinds = list(VEHICLE_MIX)
        shares = np.array([VEHICLE_MIX[k] for k in kinds])
        for lane in lanes:
            length = self.lanes[lane].length
            s = float(self.rng.uniform(2, 15))
            while s < length - 8:
                detection = kinds[int(self.rng.choice(len(kinds), p=shares / shares.sum()))]
                if not self._add_vehicle(detection, lane, s) and detection == "bicycle":
                    self._add_vehicle("car", lane, s)
                s += float(self.rng.exponential(100.0 / density)) + 8.0

    def _free(self, lane: str, s: float, clearance: float) -> bool:
        for a, b in self.blocked.get(lane, []):
            if a - clearance < s < b + clearance:
                return False
        return all(v.lane != lane or abs(v.s - s) > clearance + v.length / 2 for v in self.vehicles)

    def _spawn_pedestrians(self, centre: np.ndarray, count: int) -> None:
        graph = self.town.ped_graph
        links = [
            (a, b, Path2D(path), crossing)
            for a, items in sorted(graph.items())
            for b, path, crossing in items
            if crossing is None and np.min(np.linalg.norm(path - centre, axis=1)) < 90
        ]
        if not links:
            return
        placed: list[np.ndarray] = []
        for _ in range(count * 3):
            if len(self.pedestrians) >= count:
                break
            link = links[int(self.rng.integers(len(links)))]
            s = float(self.rng.uniform(0, link[2].length))
            side = 0.6
            xy, heading = link[2].pose(s)
            xy = xy + side * np.array([np.sin(heading), -np.cos(heading)])
            if any(np.linalg.norm(xy - p) < 2.0 for p in placed):
                continue
            placed.append(xy)
            loiter = self.rng.random() < 0.2
            self.pedestrians.append(_Pedestrian(
                self._key("p"), self._asset("pedestrian"), "human.pedestrian.adult" if self.rng.random() < 0.9
                else "human.pedestrian.child", link, s, 0.0 if loiter else float(self.rng.uniform(1.0, 1.6)),
                side, loiter))  # fmt: skip

    def _connector_crossings(self) -> dict[str, list[tuple[float, float, int]]]:
        """For each lane, the stretches (s0, s1) where it runs over crosswalk k."""
        spans: dict[str, list[tuple[float, float, int]]] = {}
        for lane, path in self.lanes.items():
            if ">" not in lane:
                continue
            s = np.arange(0.0, path.length, 0.5)
            xy, _ = path.pose(s)
            for k, crossing in enumerate(self.crossings):
                inside = contains_xy(crossing.buffer(1.5), xy[:, 0], xy[:, 1])
                if inside.any():
                    spans.setdefault(lane, []).append((float(s[inside].min()), float(s[inside].max()), k))
        return spans

    # -- signals -----------------------------------------------------------------------------

    def _cycle(self, node: str) -> tuple[int, float]:
        """(number of green slots, cycle length): a corner's two approaches share one slot (their paths never cross)."""
        approaches = len(self.town.ends[node])
        slots = 1 if approaches == 2 else approaches
        return slots, slots * (GREEN + ALL_RED) + WALK + ALL_RED

    def _phase(self, node: str) -> tuple[set[int], bool]:
        """(approach indices with green, pedestrians may cross) at the current time."""
        slots, cycle = self._cycle(node)
        t = (self.time + self.offset[node]) % cycle
        slot = int(t // (GREEN + ALL_RED))
        if slot < slots:
            if t - slot * (GREEN + ALL_RED) >= GREEN:
                return set(), False
            return ({0, 1} if len(self.town.ends[node]) == 2 else {slot}), False
        return set(), t - slots * (GREEN + ALL_RED) < WALK

    def _time_first_signal(self) -> None:
        """Set the offset of the ego's first intersection so its approach turns green as the ego arrives."""
        node, approach = self.town.approach_of[self.ego.lane]
        arrival = (self.lanes[self.ego.lane].length - self.ego.s) / max(self.ego.v, 1.0)
        slots, cycle = self._cycle(node)
        slot = 0 if len(self.town.ends[node]) == 2 else approach
        self.offset[node] = (slot * (GREEN + ALL_RED) - arrival + 1.0) % cycle

    # -- vehicles ----------------------------------------------------------------------------

    def _extend_route(self, vehicle: _Vehicle) -> None:
        while len(vehicle.route) < 4:
            last = vehicle.route[-1] if vehicle.route else vehicle.lane
            options = self.successors[last]
            vehicle.route.append(options[int(self.rng.integers(len(options)))])

    def _occupancy(self) -> dict[str, list[tuple[_Vehicle, float]]]:
        """Lane -> (vehicle, its position relative to the lane's start) for each vehicle's near route."""
        table: dict[str, list[tuple[_Vehicle, float]]] = {}
        for vehicle in self.vehicles:
            position = vehicle.s
            table.setdefault(vehicle.lane, []).append((vehicle, position))
            offset = self.lanes[vehicle.lane].length - vehicle.s
            for lane in vehicle.route[:2]:
                table.setdefault(lane, []).append((vehicle, -offset))
                offset += self.lanes[lane].length
            if vehicle.change is not None:  # still partly in the lane it is leaving
                old, s_old, _ = vehicle.change
                table.setdefault(old, []).append((vehicle, s_old + (vehicle.s - s_old)))
        return table

    def _leader(
        self, vehicle: _Vehicle, table, lane_path: list[str] | None = None, s: float | None = None
    ) -> tuple[float, float]:
        """(gap in metres, leader speed) ahead of `vehicle` along `lane_path` (default: its lane and route)."""
        lanes = lane_path or [vehicle.lane, *vehicle.route]
        s = vehicle.s if s is None else s
        best_gap, best_v = LOOKAHEAD, vehicle.v0
        passed = -s  # distance from the vehicle's centre to the start of the current lane in the list (<= 0)
        for i, lane in enumerate(lanes):
            if passed > LOOKAHEAD:
                break
            for other, position in table.get(lane, []):
                if other is vehicle:
                    continue
                gap = position - (-passed) - (vehicle.length + other.length) / 2
                if position > -passed and gap < best_gap:
                    best_gap, best_v = gap, other.v
            for a, _ in self.blocked.get(lane, []):
                gap = a + passed - vehicle.length / 2
                if -vehicle.length < gap < best_gap:
                    best_gap, best_v = max(gap, 0.0), 0.0
            length = self.lanes[lane].length
            brake = vehicle.v**2 / (2 * 5.0)
            # a red light (or a full exit) holds vehicles at the end of an approach lane
            if i + 1 < len(lanes) and ">" in lanes[i + 1]:
                node = lanes[i + 1].split(":")[0]
                approach = self.town.approach_of.get(lane)
                green, _ = self._phase(node)
                gap = length + passed - vehicle.length / 2 - 1.0
                exit_full = self._exit_full(lanes[i + 2] if i + 2 < len(lanes) else None, vehicle, table)
                if approach and (approach[1] not in green or exit_full) and gap > min(brake, 0.5) and gap < best_gap:
                    best_gap, best_v = gap, 0.0
            if ">" in lane:
                for s0, _, k in self._crossing_spans.get(lane, []):
                    gap = s0 + passed - vehicle.length / 2 - 1.0
                    if self._crossing_busy[k] and brake < gap < best_gap:
                        best_gap, best_v = gap, 0.0
            passed += length
        return best_gap, best_v

    def _exit_full(self, exit_lane: str | None, vehicle: _Vehicle, table) -> bool:
        if exit_lane is None:
            return False
        for other, position in table.get(exit_lane, []):
            if other is not vehicle and 0 <= position < vehicle.length + other.length / 2 + 4.0:
                return True
        return False

    @staticmethod
    def _idm(vehicle: _Vehicle, gap: float, leader_v: float) -> float:
        return idm_acceleration(vehicle.idm, vehicle.v, vehicle.v0, gap, leader_v)

    def _mobil(self, vehicle: _Vehicle, table) -> None:
        """Change lanes when it pays (MOBIL incentive) and the new follower need not brake hard (safety)."""
        if vehicle.change is not None or self.time < vehicle.next_decision or ">" in vehicle.lane:
            return
        vehicle.next_decision = self.time + 1.0
        length = self.lanes[vehicle.lane].length
        if vehicle.s < 8 or vehicle.s > length - 25:
            return
        current = self._idm(vehicle, *self._leader(vehicle, table))
        for target in self.town.side_lanes(vehicle.lane):
            if target is None:
                continue
            s_new = vehicle.s * self.lanes[target].length / length
            if any(a - 5 < s_new < b + 5 for a, b in self.blocked.get(target, [])):
                continue
            follower_ok, overlap = True, False
            for other, position in table.get(target, []):
                if other is vehicle:
                    continue
                if abs(position - s_new) < (vehicle.length + other.length) / 2 + 2.0:
                    overlap = True
                elif position < s_new:  # a follower in the target lane
                    gap = s_new - position - (vehicle.length + other.length) / 2
                    follower = _Vehicle(
                        "", other.detection, other.asset, target, position, other.v, other.v0, other.idm
                    )
                    if self._idm(follower, gap, vehicle.v) < -3.0:
                        follower_ok = False
            if overlap or not follower_ok:
                continue
            gain = self._idm(vehicle, *self._leader(vehicle, table, [target, *self.successors[target][:1]], s_new))
            if gain - current > 0.4:
                vehicle.change = (vehicle.lane, vehicle.s, self.time)
                vehicle.lane, vehicle.s = target, s_new
                vehicle.route = []
                self._extend_route(vehicle)
                return

    def _step_vehicles(self) -> None:
        table = self._occupancy()
        for vehicle in self.vehicles:
            self._extend_route(vehicle)
            self._mobil(vehicle, table)
        accelerations = [self._idm(v, *self._leader(v, table)) for v in self.vehicles]
        for vehicle, accel in zip(self.vehicles, accelerations):
            vehicle.v = max(0.0, vehicle.v + accel * DT)
            vehicle.s += vehicle.v * DT
            while vehicle.s > self.lanes[vehicle.lane].length:
                vehicle.s -= self.lanes[vehicle.lane].length
                vehicle.lane = vehicle.route.pop(0)
                vehicle.change = None
                self._extend_route(vehicle)
            if vehicle.change is not None and self.time - vehicle.change[2] > LANE_CHANGE_S:
                vehicle.change = None

    def _vehicle_xy(self, vehicle: _Vehicle) -> np.ndarray:
        xy, _ = self.lanes[vehicle.lane].pose(vehicle.s)
        if vehicle.change is not None:
            old, s_old, start = vehicle.change
            w = np.clip((self.time - start) / LANE_CHANGE_S, 0, 1)
            w = w * w * (3 - 2 * w)
            s_on_old = vehicle.s * self.lanes[old].length / self.lanes[vehicle.lane].length
            old_xy, _ = self.lanes[old].pose(s_on_old)
            xy = (1 - w) * old_xy + w * xy
        return xy

    # -- pedestrians -------------------------------------------------------------------------

    def _step_pedestrians(self) -> None:
        for ped in self.pedestrians:
            ped.waiting = False
            if ped.loiter:
                continue
            start, end, path, crossing = ped.link
            ahead = [
                o
                for o in self.pedestrians
                if o is not ped and o.link[0] == start and o.link[1] == end and 0 < o.s - ped.s < 1.6
            ]
            if ahead:
                ped.waiting = True
                continue
            ped.s += ped.speed * DT
            if ped.s < path.length:
                continue
            options = [item for item in self.town.ped_graph[end] if item[0] != start] or self.town.ped_graph[end]
            choice = options[int(self.rng.integers(len(options)))]
            if choice[2] is not None:  # a crossing: only in the walk phase and when no vehicle is on it
                node = choice[2].split("/")[0]
                index = self._crossing_index(choice[1])
                if not self._phase(node)[1] or self._vehicle_on_crossing(index):
                    ped.s = path.length
                    ped.waiting = True
                    continue
            ped.s -= path.length
            ped.link = (end, choice[0], Path2D(choice[1]), choice[2])

    def _crossing_index(self, path: np.ndarray) -> int:
        """The crosswalk under the middle of a crossing path."""
        middle = Point(path[len(path) // 2])
        return int(np.argmin([crossing.distance(middle) for crossing in self.crossings]))

    def _vehicle_on_crossing(self, index: int) -> bool:
        crossing = self.crossings[index].buffer(2.0)
        return any(contains_xy(crossing, *self._vehicle_xy(v)) for v in self.vehicles)

    def _ped_xy(self, ped: _Pedestrian) -> tuple[np.ndarray, float]:
        xy, heading = ped.link[2].pose(ped.s)
        return xy + ped.side * np.array([np.sin(heading), -np.cos(heading)]), float(heading)

    # -- run -----------------------------------------------------------------------------------

    def run(self) -> Traffic:
        frames = int(round(self.seconds * CAMERA_HZ)) + 1
        vehicle_xy = {v.key: np.full((frames, 2), np.nan) for v in self.vehicles}
        ped_xy = {p.key: np.full((frames, 2), np.nan) for p in self.pedestrians}
        ped_heading = {p.key: np.zeros(frames) for p in self.pedestrians}
        vehicle_speed = {v.key: np.zeros(frames) for v in self.vehicles}
        for i in range(frames):
            self.time = i * DT
            self._crossing_busy = [False] * len(self.crossings)
            for ped in self.pedestrians:
                if ped.link[3] is not None:
                    self._crossing_busy[self._crossing_index(ped.link[2].points)] = True
            for vehicle in self.vehicles:
                vehicle_xy[vehicle.key][i] = self._vehicle_xy(vehicle)
                vehicle_speed[vehicle.key][i] = vehicle.v
            for ped in self.pedestrians:
                ped_xy[ped.key][i], ped_heading[ped.key][i] = self._ped_xy(ped)
            if i + 1 < frames:
                self._step_vehicles()
                self._step_pedestrians()
        return self._tracks(frames, vehicle_xy, vehicle_speed, ped_xy, ped_heading)

    def _tracks(self, frames, vehicle_xy, vehicle_speed, ped_xy, ped_heading) -> Traffic:
        times = np.arange(frames) * DT
        ego_xy = vehicle_xy["ego"]
        ego_yaw = _headings(ego_xy, self.lanes[self.ego.lane].pose(0)[1])
        tracks: list[Track] = []
        categories = {
            "car": "vehicle.car",
            "truck": "vehicle.truck",
            "bus": "vehicle.bus.rigid",
            "motorcycle": "vehicle.motorcycle",
            "bicycle": "vehicle.bicycle",
        }
        for vehicle in self.vehicles[1:]:
            xy = vehicle_xy[vehicle.key]
            yaw = _headings(xy, 0.0)
            h = vehicle.asset.info.size[2]
            centers = np.column_stack([xy, np.full(frames, h / 2)])
            if vehicle.detection in ("bicycle", "motorcycle"):
                attributes = ["cycle.with_rider"] * frames
            else:
                attributes = ["vehicle.moving" if v > 0.3 else "vehicle.stopped" for v in vehicle_speed[vehicle.key]]
            tracks.append(
                Track(
                    vehicle.key,
                    categories[vehicle.detection],
                    vehicle.asset.info.asset_id,
                    vehicle.asset.info.size,
                    centers,
                    yaw,
                    attributes,
                    lights=True,
                )
            )
        for ped in self.pedestrians:
            xy = ped_xy[ped.key]
            speed = np.linalg.norm(np.gradient(xy, axis=0), axis=1) / DT
            states = ["pedestrian.moving" if v > 0.3 else "pedestrian.standing" for v in speed]
            on_road = contains_xy(self.drivable, xy[:, 0], xy[:, 1])
            z = np.where(on_road, 0.0, CURB_H) + ped.asset.info.size[2] / 2
            tracks.append(
                Track(
                    ped.key,
                    ped.category,
                    ped.asset.info.asset_id,
                    ped.asset.info.size,
                    np.column_stack([xy, z]),
                    ped_heading[ped.key],
                    states,
                )
            )
        tracks += self.statics
        self.removed = len(tracks)
        tracks = _remove_overlaps(tracks, np.column_stack([ego_xy, ego_yaw]), self.ego.asset.info.size)
        self.removed -= len(tracks)
        # annotate only what is near the ego; everything is still rendered
        for track in tracks:
            track.annotated = np.linalg.norm(track.centers[:, :2] - ego_xy, axis=1) <= ANNOTATION_RADIUS
        return Traffic(times, np.column_stack([ego_xy, ego_yaw]), tracks)


def _headings(xy: np.ndarray, initial: float) -> np.ndarray:
    """Heading along a trajectory (N, 2): from the motion where it moves, held where it stands."""
    step = np.zeros_like(xy)
    step[1:-1] = xy[2:] - xy[:-2]
    step[0], step[-1] = xy[1] - xy[0], xy[-1] - xy[-2]
    moving = np.linalg.norm(step, axis=1) > 0.03
    yaw = np.zeros(len(xy))
    current = initial
    first = np.flatnonzero(moving)
    if len(first):
        current = float(np.arctan2(step[first[0], 1], step[first[0], 0]))
    for i in range(len(xy)):
        if moving[i]:
            current = float(np.arctan2(step[i, 1], step[i, 0]))
        yaw[i] = current
    return yaw


def _remove_overlaps(tracks: list[Track], ego: np.ndarray, ego_size: tuple[float, float, float]) -> list[Track]:
    """Drop moving agents (then static ones) until no two footprints overlap on any frame."""
    shapes = [footprints(t.centers, t.yaws, t.size) for t in tracks]
    ego_shape = footprints(np.column_stack([ego[:, :2], np.zeros(len(ego))]), ego[:, 2], ego_size)
    alive = [True] * len(tracks)
    for i, shape in enumerate(shapes):  # nothing may touch the ego
        near = np.linalg.norm(tracks[i].centers[:, :2] - ego[:, :2], axis=1) < 20
        if near.any() and not footprints_apart(shape[near], ego_shape[near]).all():
            alive[i] = False
    for i in range(len(tracks)):
        for j in range(i + 1, len(tracks)):
            if not (alive[i] and alive[j]):
                continue
            near = np.linalg.norm(tracks[i].centers[:, :2] - tracks[j].centers[:, :2], axis=1) < 20
            if near.any() and not footprints_apart(shapes[i][near], shapes[j][near]).all():
                # scenery stays and moving agents yield; between two of a kind the later one goes
                moving = [bool(np.ptp(tracks[k].centers[:, :2], axis=0).sum() > 0) for k in (i, j)]
                if moving[0] != moving[1]:
                    alive[i if moving[0] else j] = False
                else:
                    alive[j] = False
    return [t for t, keep in zip(tracks, alive) if keep]


def simulate(town: Town, assets: dict[str, list[Asset]], seed: int, seconds: float) -> Traffic:
    """Traffic for one clip: the ego's poses and every agent's track at 12 Hz."""
    return Simulation(town, assets, seed, seconds).run()
