"""The typed contracts of a scenario: what a script produces, where its road frame lies, what validation found.

A script runs in the sandbox against `scenario.library` and returns JSON; the host
reads it into a `ScriptResult` (`ScriptResult.from_json`) and every later stage
(validation, placement, rendering, insertion along a script) works on these
types, never on the raw dict. `to_json` gives back the same JSON, so a
scenario's `scenario.json` keeps its format.

Road frame: x metres along the ego's lane from its start, y metres to the left,
lanes `lane_width` apart; yaw in radians from +x, counter-clockwise; speeds in m/s.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from dreamdrive.core.errors import DreamdriveError
from dreamdrive.core.geometry import Transform


@dataclass
class Trajectory:
    """Poses at the scenario's rate, one row a frame: (x m, y m, yaw rad, speed m/s) in the road frame.

    Rows stay Python floats (rounded to 1e-6 by the library and by repairs), so a
    scenario written to JSON has the same bytes however often it is read and written.
    """

    rows: list[list[float]]

    def __post_init__(self) -> None:
        if not self.rows:
            raise DreamdriveError("a trajectory needs at least one row of (x, y, yaw, speed).")
        bad = next((row for row in self.rows if len(row) != 4), None)
        if bad is not None:
            raise DreamdriveError(f"a trajectory's rows are (x, y, yaw, speed), four values; got {bad!r}.")

    def __len__(self) -> int:
        return len(self.rows)

    def array(self) -> np.ndarray:
        """(N, 4) float64 copy of the rows."""
        return np.asarray(self.rows, np.float64)

    @property
    def start(self) -> list[float]:
        return self.rows[0]


@dataclass
class Actor:
    """One scripted road user.

    Args:
        actor_id: the script's name for it (unique in the scenario).
        kind: its detection class ("car", "pedestrian", ...).
        category: the full nuScenes category.
        size: (width, length, height) in metres.
        trajectory: its poses, one per frame.
        color: a colour word of `pipelines.scenario.COLOR_RGB`, or None.
        state: "parked" for parked vehicles, else None.
        slowed: validation lowered its speed to the ego's (so it does not run into the ego from behind).
        shifted: metres validation moved it along its road to clear an overlap.
    """

    actor_id: str
    kind: str
    category: str
    size: tuple[float, float, float]
    trajectory: Trajectory
    color: str | None = None
    state: str | None = None
    slowed: bool = False
    shifted: int = 0

    @classmethod
    def from_json(cls, record: dict) -> Actor:
        try:
            return cls(
                record["id"],
                record["class"],
                record["category"],
                tuple(float(v) for v in record["size"]),
                Trajectory([list(map(float, row)) for row in record["trajectory"]]),
                record.get("color"),
                record.get("state"),
                bool(record.get("slowed", False)),
                int(record.get("shifted", 0)),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise DreamdriveError(f"a scenario actor record is malformed ({error!r}): {str(record)[:200]}") from error

    def to_json(self) -> dict:
        record = {
            "id": self.actor_id,
            "class": self.kind,
            "category": self.category,
            "size": list(self.size),
            "color": self.color,
            "state": self.state,
            "trajectory": self.trajectory.rows,
        }
        if self.slowed:
            record["slowed"] = True
        if self.shifted:
            record["shifted"] = self.shifted
        return record


@dataclass
class ScriptResult:
    """What a scenario script produced: the ego's and every actor's trajectory, and the scene's settings.

    Args:
        duration: seconds.
        hz: frames per second of the trajectories (the camera rate).
        frames: rows of every trajectory (duration * hz + 1).
        weather, time_of_day: as `core.conventions.WEATHERS`, `core.conventions.TIMES_OF_DAY`.
        lane_width: metres between lane centres.
        junction: metres ahead of the ego's start at which the four-way junction's centre lies, or None.
        ego: the ego's trajectory.
        actors: the other road users.
    """

    duration: float
    hz: int
    frames: int
    weather: str
    time_of_day: str
    lane_width: float
    junction: float | None
    ego: Trajectory
    actors: list[Actor] = field(default_factory=list)

    @classmethod
    def from_json(cls, record: dict) -> ScriptResult:
        """From the library's `result()` (the sandbox's JSON reply, or `scenario.json`'s "scenario")."""
        try:
            return cls(
                record["duration"],
                int(record["hz"]),
                int(record["frames"]),
                record["weather"],
                record["time_of_day"],
                float(record["lane_width"]),
                record.get("junction"),
                Trajectory([list(map(float, row)) for row in record["ego"]]),
                [Actor.from_json(actor) for actor in record["actors"]],
            )
        except (KeyError, TypeError, ValueError) as error:
            raise DreamdriveError(f"a scenario record is malformed ({error!r}); run the script again.") from error

    def to_json(self) -> dict:
        return {
            "duration": self.duration,
            "hz": self.hz,
            "frames": self.frames,
            "weather": self.weather,
            "time_of_day": self.time_of_day,
            "lane_width": self.lane_width,
            "junction": self.junction,
            "ego": self.ego.rows,
            "actors": [actor.to_json() for actor in self.actors],
        }

    def actor(self, actor_id: str) -> Actor:
        for actor in self.actors:
            if actor.actor_id == actor_id:
                return actor
        raise DreamdriveError(f"the scenario has no actor {actor_id!r}.")

    def extent(self) -> tuple[float, float]:
        """The smallest and largest road-frame x that the ego or any actor reaches (metres)."""
        xs = [row[0] for row in self.ego.rows] + [row[0] for actor in self.actors for row in actor.trajectory.rows]
        return min(xs), max(xs)


class RoadFrame(Protocol):
    """Where a scenario's road frame lies in the global frame (`frames.RigidFrame`, `placement.RouteFrame`)."""

    def poses(self, rows: np.ndarray) -> np.ndarray:
        """(N, 3) global x, y, yaw of road-frame rows (x, y, yaw, ...)."""

    def points(self, xy: np.ndarray) -> np.ndarray:
        """(N, 2) global x, y of road-frame points."""

    def to_json(self) -> dict: ...


@dataclass(frozen=True)
class Problem:
    """One thing validation found wrong with a scenario.

    Args:
        kind: "overlap" (two footprints meet), "off_road" (a vehicle leaves the drivable area) or
            "too_fast" (faster than its class can go).
        actors: the actor ids concerned ("ego" for the ego), two for an overlap.
        time: seconds from the start at which an overlap first happens.
        detail: the class of a "too_fast" actor.
    """

    kind: str
    actors: tuple[str, ...]
    time: float | None = None
    detail: str = ""

    def __str__(self) -> str:
        if self.kind == "overlap":
            return f"{self.actors[0]} and {self.actors[1]} overlap at {self.time:.2f} s"
        if self.kind == "off_road":
            return f"{self.actors[0]} leaves the drivable area"
        return f"{self.actors[0]} is faster than a {self.detail} can go"


class RigidFrame:
    """The road frame as a rigid transform (the scenario's own road or junction)."""

    def __init__(self, global_T_road: Transform):
        self.global_T_road = global_T_road

    def poses(self, rows: np.ndarray) -> np.ndarray:
        """(N, 3) global x, y, yaw of road-frame rows (x, y, yaw, ...)."""
        rows = np.asarray(rows, np.float64).reshape(-1, np.shape(rows)[-1])
        xy = self.global_T_road.apply(np.column_stack([rows[:, :2], np.zeros(len(rows))]))[:, :2]
        return np.column_stack([xy, rows[:, 2] + self.global_T_road.yaw])

    def points(self, xy: np.ndarray) -> np.ndarray:
        xy = np.asarray(xy, np.float64).reshape(-1, 2)
        return self.global_T_road.apply(np.column_stack([xy, np.zeros(len(xy))]))[:, :2]

    def to_json(self) -> dict:
        return {"kind": "rigid", "origin": self.global_T_road.translation.tolist(), "yaw": self.global_T_road.yaw}
