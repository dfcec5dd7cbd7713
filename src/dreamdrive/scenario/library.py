"""The trajectory function library that scenario scripts are written in (DriveDreamer-2's, extended).

A script places actors relative to the ego car on a road and gives them
manoeuvres in time; `save()` turns that into trajectories at 12 Hz. Positions
are lane-relative: x metres along the road ahead of the ego's start, lanes
counted from the ego's lane (+1 left, -1 right), oncoming lanes beyond the
centre line on the left. Every manoeuvre is kinematically feasible: speed
changes follow a cosine ramp whose peak acceleration stays within the class's
limit, and lane changes a quintic whose peak lateral acceleration does.

    ego(speed=10)
    car = vehicle("car", lane="left", ahead=8, speed=13, color="red")
    car.cut_in(at=2.0)
    set_weather("rain")
    save()

Scripts see only the names in `__all__` and the public methods of the actors
those functions return (`METHODS`); the sandbox enforces it.
"""

from __future__ import annotations

import math

import numpy as np

from dreamdrive.core.categories import DEFAULT_CATEGORY, TYPICAL_SIZE
from dreamdrive.core.conventions import CAMERA_HZ, LANE_WIDTH, TIMES_OF_DAY, WEATHERS
from dreamdrive.core.errors import DreamdriveError
from dreamdrive.core.idm import EGO_IDM, idm_acceleration
from dreamdrive.core.paths import arc_length
from dreamdrive.scenario.junction import HALF, entry_x, road_frame_junction, side_road_path, turn_path

__all__ = [
    "ego", "vehicle", "side_road_vehicle", "parked_vehicle", "pedestrian", "cyclist", "work_zone", "junction",
    "set_duration", "set_weather", "set_time_of_day", "save",
]  # fmt: skip

HZ = CAMERA_HZ
SAME_DIRECTION_LANES = (-1, 0, 1)  # right, ego, left
ONCOMING_LANES = (2, 3)
MAX_DURATION = 60.0
MAX_ACTORS = 64
VEHICLE_CLASSES = ("car", "truck", "bus", "trailer", "construction_vehicle", "motorcycle", "bicycle")
CATEGORY = DEFAULT_CATEGORY  # detection class -> the nuScenes category a generated actor gets
SIZE = TYPICAL_SIZE  # width, length, height per class
# Longitudinal and lateral acceleration limits in m/s^2, and top speeds in m/s, per class.
ACCEL = {
    "car": 3.5,
    "truck": 2.0,
    "bus": 1.8,
    "trailer": 1.5,
    "construction_vehicle": 1.5,
    "motorcycle": 4.5,
    "bicycle": 1.5,
    "pedestrian": 2.5,
}
BRAKE = {
    "car": 8.0,
    "truck": 6.0,
    "bus": 5.5,
    "trailer": 5.0,
    "construction_vehicle": 5.0,
    "motorcycle": 8.0,
    "bicycle": 5.0,
    "pedestrian": 4.0,
}
LATERAL = 2.5
TOP_SPEED = {
    "car": 35.0,
    "truck": 28.0,
    "bus": 25.0,
    "trailer": 25.0,
    "construction_vehicle": 15.0,
    "motorcycle": 40.0,
    "bicycle": 12.0,
    "pedestrian": 7.0,
}
COLORS = ("white", "black", "grey", "silver", "red", "blue", "green", "yellow", "orange", "brown")


class ScenarioError(DreamdriveError):
    """A script asked for something the library cannot do (the message says what and how to fix it)."""


def _number(value, what: str, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ScenarioError(f"{what} must be a number, got {value!r}.")
    if not low <= value <= high:
        raise ScenarioError(f"{what} must be between {low:g} and {high:g}, got {value:g}.")
    return float(value)


def _lane(lane) -> int:
    names = {"ego": 0, "same": 0, "left": 1, "right": -1, "oncoming": 2, "far_left": 2}
    if isinstance(lane, str):
        if lane not in names:
            raise ScenarioError(f"lane {lane!r} must be one of {sorted(names)} or a lane number -1..3.")
        return names[lane]
    index = int(_number(lane, "lane", -1, 3))
    if index != lane:
        raise ScenarioError(f"lane numbers are whole numbers, got {lane!r}.")
    return index


class _Scene:
    """What the script has said so far (module state: one scene per script run)."""

    def __init__(self) -> None:
        self.duration = 8.0
        self.weather = "clear"
        self.time_of_day = "day"
        self.ego: Actor | None = None
        self.ego_reactive = True
        self.junction: float | None = None  # x of the four-way junction's centre, when there is one
        self.actors: list[Actor] = []
        self.saved: dict | None = None


_scene = _Scene()


def _reset() -> None:
    """Start a new scene (for callers running several scripts in one process, such as tests)."""
    global _scene
    _scene = _Scene()


class Actor:
    """Something that moves (or stands) in the scene; manoeuvres are queued and integrated by `save()`."""

    def __init__(self, kind: str, x: float, lane: float, speed: float, color: str | None = None):
        self.kind = kind
        self.x0, self.y0, self.speed0 = x, lane * LANE_WIDTH, speed
        self.heading = math.pi if lane in ONCOMING_LANES else 0.0
        self.color = color
        self.speed_events: list[tuple[float, float, float]] = []  # (start, target speed, acceleration)
        self.lateral_events: list[tuple[float, float, float]] = []  # (start, target y, duration)
        self.walks: list[tuple[float, float, float]] = []  # (start, target y, speed): pedestrians crossing
        self.parked = False
        self.turn: str | None = None  # "left", "right", "u_turn" or "merge" at the junction
        self.side_road: tuple[str, float] | None = None  # (side, metres before the junction) on the crossing road
        self.actor_id = f"{kind}-{len(_scene.actors) + 1}"

    # -- longitudinal ----------------------------------------------------------------------

    def keep_speed(self, at: float = 0.0) -> Actor:
        """Hold the current speed from `at` seconds (a no-op marker that documents intent)."""
        _number(at, "at", 0, MAX_DURATION)
        return self

    def accelerate(self, to: float, at: float = 0.0, rate: float | None = None) -> Actor:
        """Speed up to `to` m/s starting at `at` seconds, at most `rate` m/s^2 (default: a comfortable one)."""
        limit = ACCEL[self.kind]
        rate = _number(rate, "rate", 0.1, limit) if rate is not None else limit * 0.6
        self.speed_events.append(
            (_number(at, "at", 0, MAX_DURATION), _number(to, "speed", 0, TOP_SPEED[self.kind]), rate)
        )
        return self

    def brake(self, to: float = 0.0, at: float = 0.0, rate: float | None = None) -> Actor:
        """Slow down to `to` m/s starting at `at` seconds (default rate: a firm brake; `hard=` via rate)."""
        limit = BRAKE[self.kind]
        rate = _number(rate, "rate", 0.1, limit) if rate is not None else limit * 0.5
        self.speed_events.append(
            (_number(at, "at", 0, MAX_DURATION), _number(to, "speed", 0, TOP_SPEED[self.kind]), rate)
        )
        return self

    def hard_brake(self, at: float = 0.0) -> Actor:
        """An emergency stop starting at `at` seconds."""
        return self.brake(0.0, at, BRAKE[self.kind])

    def stop(self, at: float = 0.0) -> Actor:
        """Come to a comfortable stop starting at `at` seconds."""
        return self.brake(0.0, at)

    # -- lateral ---------------------------------------------------------------------------

    def change_lane(self, direction: str = "left", at: float = 0.0, duration: float | None = None) -> Actor:
        """Move one lane left or right starting at `at` seconds over `duration` seconds (default: comfortable)."""
        if direction not in ("left", "right"):
            raise ScenarioError(f"a lane change goes 'left' or 'right', got {direction!r}.")
        target = self._lateral_at_end() + (LANE_WIDTH if direction == "left" else -LANE_WIDTH)
        if round(target / LANE_WIDTH) not in SAME_DIRECTION_LANES + ONCOMING_LANES:
            raise ScenarioError(f"{self.actor_id} has no lane to its {direction} to change into.")
        return self._lateral(target, at, duration)

    def cut_in(self, at: float = 1.0, duration: float | None = None) -> Actor:
        """Change into the ego's lane (from either side) starting at `at` seconds."""
        if abs(self._lateral_at_end()) < 0.1:
            raise ScenarioError(f"{self.actor_id} is already in the ego's lane; spawn it in lane 'left' or 'right'.")
        return self._lateral(0.0, at, duration)

    def overtake(self, at: float = 0.0, extra_speed: float = 5.0, hold: float = 4.0) -> Actor:
        """Pull out to the left, pass `extra_speed` m/s faster for `hold` seconds, and pull back in."""
        at = _number(at, "at", 0, MAX_DURATION)
        self.change_lane("left", at)
        self.accelerate(min(TOP_SPEED[self.kind], self._speed_at_end() + extra_speed), at)
        back = at + _lane_change_time(LANE_WIDTH) + _number(hold, "hold", 0.5, 30)
        self.change_lane("right", back)
        return self

    def turn_left(self) -> Actor:
        """Turn left at the junction ahead (one is placed 30 m ahead, or past the actor, if the script has none)."""
        return self._turn("left")

    def turn_right(self) -> Actor:
        """Turn right at the junction ahead."""
        return self._turn("right")

    def u_turn(self) -> Actor:
        """Turn round at the junction ahead into the far oncoming lane."""
        return self._turn("u_turn")

    def merge(self) -> Actor:
        """From a side road, turn into our direction of the ego's road at the junction and join its traffic."""
        if self.side_road is None:
            raise ScenarioError(f"{self.actor_id} is not on a side road; merge() is for side_road_vehicle(...).")
        if self.turn is not None:
            raise ScenarioError(f"{self.actor_id} already merges; one turn per actor.")
        self.turn = "merge"
        return self

    def _turn(self, kind: str) -> Actor:
        if self.side_road is not None:
            raise ScenarioError(f"{self.actor_id} is on a side road; it can only merge() into the ego's road.")
        if self.heading != 0.0 or isinstance(self, Pedestrian) or self.kind in ("traffic_cone", "barrier"):
            raise ScenarioError(f"{self.actor_id} cannot turn: only vehicles driving our way turn at the junction.")
        if self.turn is not None:
            raise ScenarioError(f"{self.actor_id} already turns {self.turn}; one turn per actor.")
        if kind == "u_turn" and SIZE[self.kind][1] > 8.0:
            raise ScenarioError(
                f"a {self.kind} is too long to turn round in this junction; U-turns are for cars, motorcycles, "
                "bicycles and trucks up to 8 m."
            )
        if _scene.junction is None:
            junction(max(30.0, round(self.x0 + 35.0)))
        if self.x0 > entry_x(_scene.junction) - 2.0:
            raise ScenarioError(
                f"{self.actor_id} starts at {self.x0:g} m, past the junction's entry; place the junction further "
                f"ahead (junction(ahead=...)) or the actor nearer."
            )
        self.turn = kind
        return self

    def _lateral(self, target: float, at: float, duration: float | None) -> Actor:
        if self.side_road is not None:
            raise ScenarioError(f"{self.actor_id} is on a side road with one lane each way; it cannot change lanes.")
        shift = abs(target - self._lateral_at_end())
        shortest = _lane_change_time(shift)
        duration = shortest if duration is None else _number(duration, "duration", shortest, 20)
        self.lateral_events.append((_number(at, "at", 0, MAX_DURATION), target, duration))
        return self

    def _lateral_at_end(self) -> float:
        return self.lateral_events[-1][1] if self.lateral_events else self.y0

    def _speed_at_end(self) -> float:
        return self.speed_events[-1][1] if self.speed_events else self.speed0

    # -- trajectory --------------------------------------------------------------------------

    def trajectory(self, frames: int) -> list[list[float]]:
        """[x, y, yaw, speed] per frame in the road frame."""
        if self.turn is not None or self.side_road is not None:
            return self._turning_trajectory(frames)
        dt = 1.0 / HZ
        times = [i * dt for i in range(frames)]
        speeds = [self._speed(t) for t in times]
        lateral = [self._y(t) for t in times]
        direction = math.cos(self.heading)
        xs, x = [], self.x0
        for i in range(frames):
            xs.append(x)
            x += direction * speeds[i] * dt
        out = [[round(xs[i], 6), round(lateral[i], 6), 0.0, round(speeds[i], 6)] for i in range(frames)]
        _set_headings(out, self.heading)
        return out

    def _turning_trajectory(self, frames: int) -> list[list[float]]:
        """Along the lane to the junction, through it on the turn's path, then along the exit lane: the scripted
        speeds, capped where the path bends so that the lateral acceleration stays within LATERAL, with the
        class's comfortable deceleration before the bend and acceleration after it."""
        lane_y = self._lateral_at_end()
        if self.turn == "u_turn" and SIZE[self.kind][1] > 5.0 and lane_y > -LANE_WIDTH / 2:
            raise ScenarioError(
                f"a {self.kind} needs the widest circle to turn round: start its U-turn from lane 'right'."
            )
        entry = entry_x(_scene.junction)
        town = road_frame_junction(_scene.junction)
        if self.side_road is not None:
            side, distance = self.side_road
            path = side_road_path(town, side, distance, self.turn == "merge")
        else:
            bend = turn_path(town, lane_y, self.turn)
            path = np.vstack([np.array([[self.x0, lane_y], [entry, lane_y]]), bend[1:]])
        steps = np.linalg.norm(np.diff(path, axis=0), axis=1)
        keep = np.concatenate([[True], steps > 1e-6])
        path = path[keep]
        stations = arc_length(path)
        headings = np.unwrap(np.arctan2(*np.diff(path, axis=0).T[::-1]))
        curvature = np.zeros(len(path))
        curvature[1:-1] = np.abs(np.diff(headings)) / np.maximum((stations[2:] - stations[:-2]) / 2, 1e-6)
        cap = np.sqrt(LATERAL / np.maximum(curvature, 1e-9))
        brake, accel = BRAKE[self.kind] * 0.4, ACCEL[self.kind] * 0.6
        for i in range(len(cap) - 2, -1, -1):  # slow down in time for the bend
            cap[i] = min(cap[i], math.sqrt(cap[i + 1] ** 2 + 2 * brake * (stations[i + 1] - stations[i])))
        for i in range(1, len(cap)):  # and speed up gently after it
            cap[i] = min(cap[i], math.sqrt(cap[i - 1] ** 2 + 2 * accel * (stations[i] - stations[i - 1])))
        dt = 1.0 / HZ
        out, s, along = [], 0.0, []
        for i in range(frames):
            t = i * dt
            along.append(s)
            speed = min(self._speed(t), float(np.interp(s, stations, cap)))
            if s >= stations[-1] - 1e-6:  # the end of the exit lane: it stops there
                speed = 0.0
            if s < stations[1] and self.side_road is None:  # before the junction: lane changes still apply
                x, y = self.x0 + s, self._y(t)
            else:
                if abs(self._y(t) - lane_y) > 0.05:
                    raise ScenarioError(f"{self.actor_id} reaches the junction while still changing lanes; "
                                        "change lanes earlier or place the junction further ahead.")  # fmt: skip
                x, y = float(np.interp(s, stations, path[:, 0])), float(np.interp(s, stations, path[:, 1]))
            out.append([round(x, 6), round(y, 6), 0.0, round(speed, 6)])
            s = min(s + speed * dt, stations[-1])
        _set_headings(out, self.heading)
        middles = (stations[1:] + stations[:-1]) / 2
        for row, distance in zip(out, along):  # from the junction on, the path's own heading (also when stopped)
            if distance >= stations[1] or self.side_road is not None:
                heading = float(np.interp(distance, middles, headings))
                row[2] = round(math.atan2(math.sin(heading), math.cos(heading)), 6)
        return out

    def _speed(self, t: float) -> float:
        speed = self.speed0
        for start, target, rate in sorted(self.speed_events):
            if t <= start:
                break
            change = target - speed
            span = math.pi * abs(change) / (2 * rate) if change else 0.0  # cosine ramp: peak acceleration = rate
            if span == 0 or t >= start + span:
                speed = target
            else:
                speed += change * (1 - math.cos(math.pi * (t - start) / span)) / 2
                break
        return speed

    def _y(self, t: float) -> float:
        if self.walks:  # a crossing walk: speed up at ACCEL, hold the speed, slow down at the far side
            start, target, speed = self.walks[0]
            return self.y0 + math.copysign(
                _trapezoid(abs(target - self.y0), speed, ACCEL[self.kind], t - start), target - self.y0
            )
        y = self.y0
        for start, target, duration in sorted(self.lateral_events):
            if t <= start:
                break
            s = min(1.0, (t - start) / duration)
            y = y + (target - y) * (10 * s**3 - 15 * s**4 + 6 * s**5)  # quintic: zero speed and acceleration at ends
            if s < 1.0:
                break
        return y


def _trapezoid(distance: float, speed: float, accel: float, t: float) -> float:
    """Distance covered after `t` s of a move over `distance` with constant `accel` ramps and top `speed`."""
    if t <= 0:
        return 0.0
    ramp = speed / accel
    if distance < speed * ramp:  # too short to reach full speed: a triangle
        ramp = math.sqrt(distance / accel)
        speed = accel * ramp
    cruise = (distance - speed * ramp) / speed
    if t < ramp:
        return 0.5 * accel * t * t
    if t < ramp + cruise:
        return 0.5 * speed * ramp + speed * (t - ramp)
    left = max(0.0, 2 * ramp + cruise - t)
    return distance - 0.5 * accel * left * left


def _set_headings(path: list[list[float]], still: float) -> None:
    """Fill each [x, y, yaw, speed] row's yaw from the path (central differences); `still` where it stands."""
    for i in range(len(path)):
        j0, j1 = max(i - 1, 0), min(i + 1, len(path) - 1)
        dx, dy = path[j1][0] - path[j0][0], path[j1][1] - path[j0][1]
        path[i][2] = round(math.atan2(dy, dx), 6) if abs(dx) + abs(dy) > 1e-6 else still


def _lane_change_time(shift: float) -> float:
    """The shortest lane change over `shift` metres whose quintic peak lateral acceleration stays within LATERAL."""
    return max(2.5, math.sqrt(5.7735 * shift / LATERAL))  # peak of the quintic's second derivative: 5.7735


class Pedestrian(Actor):
    """A person on a sidewalk who can walk along it, cross the road or dash out."""

    def walk(self, speed: float = 1.4, at: float = 0.0) -> Pedestrian:
        """Walk along the sidewalk at `speed` m/s from `at` seconds."""
        return self.accelerate(_number(speed, "speed", 0.3, 3.0), at, rate=1.5)

    def cross(self, at: float = 0.0, speed: float = 1.4) -> Pedestrian:
        """Cross the road to the far sidewalk at `speed` m/s, starting at `at` seconds."""
        far = sidewalk_y("left" if self.y0 < 0 else "right")
        self.walks.append((_number(at, "at", 0, MAX_DURATION), far, _number(speed, "speed", 0.3, 7.0)))
        return self

    def dash_out(self, at: float = 0.0) -> Pedestrian:
        """Run out into the road at 3 m/s (from behind whatever stands at the curb)."""
        return self.cross(at, speed=3.0)

    def stand(self) -> Pedestrian:
        """Stay where they are."""
        return self


def sidewalk_y(side: str) -> float:
    """The lateral position (road frame, metres, left positive) of the sidewalk on `side`."""
    return (-1.5 * LANE_WIDTH - 1.5) if side == "right" else ((ONCOMING_LANES[-1] + 0.5) * LANE_WIDTH + 1.5)


def _add(actor: Actor) -> Actor:
    if len(_scene.actors) >= MAX_ACTORS:
        raise ScenarioError(f"a scene holds at most {MAX_ACTORS} actors.")
    _scene.actors.append(actor)
    return actor


# -- the functions scripts call -------------------------------------------------------------


def ego(speed: float = 10.0, reactive: bool = True) -> Actor:
    """The ego car, in its lane at the origin, at `speed` m/s; its manoeuvres are an Actor's.

    A reactive ego (the default) brakes for whatever is in its path; `reactive=False` drives
    the script regardless (for prompts that ask for a crash).
    """
    if _scene.ego is not None:
        raise ScenarioError("ego() was called twice; a scene has one ego car.")
    _scene.ego = Actor("car", 0.0, 0, _number(speed, "ego speed", 0, TOP_SPEED["car"]))
    _scene.ego.actor_id = "ego"
    _scene.ego_reactive = bool(reactive)
    return _scene.ego


def vehicle(
    kind: str = "car", lane="left", ahead: float = 20.0, speed: float | None = None, color: str | None = None
) -> Actor:
    """A vehicle of class `kind` in `lane`, `ahead` metres in front of the ego's start (negative: behind).

    Its speed defaults to the ego's; oncoming vehicles drive the other way.
    """
    if kind not in VEHICLE_CLASSES:
        raise ScenarioError(f"vehicle kind {kind!r} must be one of {VEHICLE_CLASSES}.")
    if color is not None and color not in COLORS:
        raise ScenarioError(f"colour {color!r} must be one of {COLORS}.")
    default = _scene.ego.speed0 if _scene.ego is not None else 10.0
    speed = _number(default if speed is None else speed, "speed", 0, TOP_SPEED[kind])
    return _add(Actor(kind, _number(ahead, "ahead", -200, 200), _lane(lane), speed, color))


def side_road_vehicle(
    kind: str = "car", side: str = "right", distance: float = 15.0, speed: float = 8.0, color: str | None = None
) -> Actor:
    """A vehicle on the crossing road to the `side` of the ego's road, `distance` metres before the junction,
    driving towards it; it stops there unless it `merge()`s (the junction is placed if the script has none)."""
    if kind not in VEHICLE_CLASSES or kind in ("trailer",):
        raise ScenarioError(
            f"side-road vehicle kind {kind!r} must be one of {VEHICLE_CLASSES[:2] + VEHICLE_CLASSES[3:]}."
        )
    if side not in ("right", "left"):
        raise ScenarioError(f"side must be 'right' or 'left', got {side!r}.")
    if color is not None and color not in COLORS:
        raise ScenarioError(f"colour {color!r} must be one of {COLORS}.")
    if _scene.junction is None:
        junction(45.0)
    actor = _add(Actor(kind, 0.0, 0, _number(speed, "speed", 0, TOP_SPEED[kind]), color))
    actor.side_road = (side, _number(distance, "distance", 0, 80))
    return actor


def parked_vehicle(kind: str = "car", side: str = "right", ahead: float = 20.0, color: str | None = None) -> Actor:
    """A vehicle parked at the curb on `side` ('right', or 'left' across the road), `ahead` metres on."""
    if side not in ("right", "left"):
        raise ScenarioError(f"side must be 'right' or 'left', got {side!r}.")
    lane = -1 if side == "right" else ONCOMING_LANES[-1]
    actor = vehicle(kind, lane, ahead, 0.0, color)
    actor.y0 += -0.5 if side == "right" else 0.5
    actor.parked = True
    return actor


def pedestrian(side: str = "right", ahead: float = 20.0, speed: float = 0.0) -> Pedestrian:
    """A pedestrian on the `side` sidewalk, `ahead` metres on, walking along it at `speed` m/s."""
    if side not in ("right", "left"):
        raise ScenarioError(f"side must be 'right' or 'left', got {side!r}.")
    actor = Pedestrian("pedestrian", _number(ahead, "ahead", -200, 200), 0, _number(speed, "speed", 0, 3.0))
    actor.y0 = sidewalk_y(side)
    return _add(actor)


def cyclist(ahead: float = 15.0, speed: float = 5.0, motor: bool = False) -> Actor:
    """A bicycle (or motorcycle) near the right edge of the rightmost lane, `ahead` metres on."""
    actor = vehicle("motorcycle" if motor else "bicycle", -1, ahead, speed)
    actor.y0 -= 1.0
    return actor


def work_zone(ahead: float = 40.0, lane="right", length: float = 25.0) -> list[Actor]:
    """Close `length` metres of `lane` from `ahead` metres on with a cone taper and barriers."""
    lane = _lane(lane)
    start = _number(ahead, "ahead", -200, 200)
    length = _number(length, "length", 8, 100)
    items = []
    for k in range(5):  # taper across the lane
        cone = _add(Actor("traffic_cone", start + k * 2.0, lane, 0.0))
        cone.y0 += -1.4 + k * 0.7
        items.append(cone)
    for offset in range(10, int(length), 6):
        items.append(_add(Actor("barrier", start + offset, lane, 0.0)))
    return items


def junction(ahead: float = 30.0) -> None:
    """A four-way junction whose centre is `ahead` metres in front of the ego's start (turns happen there)."""
    if _scene.junction is not None:
        raise ScenarioError("the scene already has a junction; a scene has at most one.")
    _scene.junction = _number(ahead, "junction distance", HALF + 5.0, 200)


def set_duration(seconds: float) -> None:
    """How long the scenario lasts (default 8 s)."""
    _scene.duration = _number(seconds, "duration", 1, MAX_DURATION)


def set_weather(weather: str) -> None:
    """clear, rain or fog."""
    if weather not in WEATHERS:
        raise ScenarioError(f"weather {weather!r} must be one of {WEATHERS}.")
    _scene.weather = weather


def set_time_of_day(time_of_day: str) -> None:
    """day, dusk or night."""
    if time_of_day not in TIMES_OF_DAY:
        raise ScenarioError(f"time of day {time_of_day!r} must be one of {TIMES_OF_DAY}.")
    _scene.time_of_day = time_of_day


def save() -> None:
    """Integrate every actor's manoeuvres into trajectories; the scenario is what `result()` returns."""
    if _scene.ego is None:
        raise ScenarioError("the script never called ego(); every scenario needs the ego car.")
    frames = int(round(_scene.duration * HZ)) + 1
    trajectories = {actor.actor_id: actor.trajectory(frames) for actor in _scene.actors}
    actors = []
    for actor in _scene.actors:
        attributes = "parked" if actor.parked else None
        actors.append({
            "id": actor.actor_id, "class": actor.kind, "category": CATEGORY[actor.kind],
            "size": list(SIZE[actor.kind]), "color": actor.color, "state": attributes,
            "trajectory": trajectories[actor.actor_id],
        })  # fmt: skip
    _scene.saved = {
        "duration": _scene.duration, "hz": HZ, "frames": frames, "weather": _scene.weather,
        "time_of_day": _scene.time_of_day, "lane_width": LANE_WIDTH, "junction": _scene.junction,
        "ego": _reactive_ego(_scene.ego.trajectory(frames), trajectories)
        if _scene.ego_reactive and _scene.ego.turn is None else _scene.ego.trajectory(frames),
        "actors": actors,
    }  # fmt: skip


def _reactive_ego(planned: list[list[float]], trajectories: dict[str, list[list[float]]]) -> list[list[float]]:
    """The ego drives its scripted speeds as desired speeds, but follows traffic in its path (`core.idm`, with the
    ego's parameters; a scripted speed of 0 brakes as hard as a car can).

    Whatever is ahead of the ego and overlaps its lateral corridor (a vehicle that cut in,
    a stopped car, a pedestrian on the road) is its leader; the ego brakes at most as hard
    as a car can, so an obstacle that appears too late is still hit (and reported).
    """
    dt = 1.0 / HZ
    ego_w, ego_l = SIZE["car"][0], SIZE["car"][1]
    kinds = {actor.actor_id: actor.kind for actor in _scene.actors}
    x, speed = planned[0][0], planned[0][3]
    out = []
    for i, (_, y, _, desired) in enumerate(planned):
        gap, leader_speed = 1e9, desired
        for actor_id, trajectory in trajectories.items():
            ax, ay, ayaw, aspeed = trajectory[i]
            width, length, _ = SIZE[kinds[actor_id]]
            along = abs(math.cos(ayaw)) * length + abs(math.sin(ayaw)) * width  # extent along the road
            across = abs(math.sin(ayaw)) * length + abs(math.cos(ayaw)) * width
            if abs(ay - y) < (across + ego_w) / 2 + 0.3 and ax > x:
                actor_gap = ax - x - (along + ego_l) / 2
                if actor_gap < gap:
                    gap, leader_speed = actor_gap, aspeed * math.cos(ayaw)
        accel = idm_acceleration(EGO_IDM, speed, max(desired, 0.5), gap, leader_speed)
        if desired == 0.0:
            accel = -BRAKE["car"]
        out.append([round(x, 6), round(y, 6), 0.0, round(speed, 6)])
        speed = max(0.0, speed + accel * dt)
        x += speed * dt
    _set_headings(out, 0.0)
    return out


def result() -> dict:
    """The saved scenario (the sandbox reads it after the script ran)."""
    if _scene.saved is None:
        raise ScenarioError("the script never called save().")
    return _scene.saved


METHODS: frozenset[str] = frozenset(
    name for cls in (Actor, Pedestrian) for name in vars(cls) if not name.startswith("_") and callable(vars(cls)[name])
) - {"trajectory"}
FUNCTIONS: frozenset[str] = frozenset(__all__)
