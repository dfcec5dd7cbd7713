"""The held-out set's behaviour checks, independent of the translators: what the written scenario shows.

A check reads trajectories in the road frame (x ahead along the ego's road, y to
the left; rows x, y, yaw, speed at `hz`), from the written dataset
(`dataset_trajectories`) or straight from the scenario (`scenario_trajectories`).
Behaviour checks may name a side (`cut_in:left`); `class=`, `color=` bind to the
actor doing the prompt's one actor behaviour; unless the prompt asks for weather
or a time of day, the scene must be clear and by day (a neighbour's details are a
defect, not a bonus).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from dreamdrive.core.geometry import Transform
from dreamdrive.nusc.reader import NuscDataset

LANE = 3.5
STATIC = ("traffic_cone", "barrier")
ACTOR_BEHAVIOURS = {"cut_in", "hard_brake", "stopped", "parked", "cross", "dash_out", "overtake", "oncoming",
                    "follow", "change_lane", "turn", "u_turn", "merge"}  # fmt: skip


def read_set(path: str | Path) -> list[dict]:
    """The held-out prompts: {"kind", "prompt", "checks"} from lines KIND | PROMPT | CHECKS."""
    rows = []
    for line in Path(path).read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            kind, prompt, checks = (part.strip() for part in line.split("|"))
            rows.append({"kind": kind, "prompt": prompt, "checks": checks.split()})
    return rows


def scenario_trajectories(result: dict) -> dict:
    """A script result (`ScriptResult.to_json`) in the form the checks read."""
    return {
        "hz": result["hz"],
        "ego": result["ego"],
        "actors": [{k: a[k] for k in ("class", "color", "state", "trajectory")} for a in result["actors"]],
        "weather": result["weather"],
        "time_of_day": result["time_of_day"],
    }


def dataset_trajectories(out: str | Path) -> dict:
    """The boxes and ego poses of the dataset `write_outputs` wrote in `out`, on its key frames, back in the
    scenario's road frame (from scenario.json), with each box's speed from its velocity."""
    out = Path(out)
    record = json.loads((out / "scenario.json").read_text())
    frame = record["road_frame"]
    road_T_global = Transform.from_pose2d(*frame["origin"][:2], frame["yaw"]).inverse()
    clip = NuscDataset(out / "dataset").clip(record["name"])
    keys = [k for k, f in enumerate(clip.frames) if f.is_key]
    times = np.array([clip.frames[k].timestamp for k in keys]) / 1e6

    def row(pose: Transform, speed: float) -> list[float]:
        local = road_T_global @ pose
        return [*local.translation[:2], local.yaw, speed]

    ego = [row(clip.frames[k].global_T_ego, 0.0) for k in keys]
    for k in range(len(ego)):  # the ego's speed from its positions
        a, b = max(k - 1, 0), min(k + 1, len(ego) - 1)
        ego[k][3] = float(np.hypot(*np.subtract(ego[b][:2], ego[a][:2])) / (times[b] - times[a]))
    kinds = {actor["id"]: actor for actor in record["scenario"]["actors"]}
    actors = []
    for agent in clip.agents:
        boxes = [agent.boxes[k] for k in keys]
        if any(box is None for box in boxes):
            raise AssertionError(f"{agent.instance_id} lacks a box on a key frame")
        rows = [row(Transform.from_pose2d(*b.center[:2], b.yaw), float(np.hypot(*b.velocity[:2]))) for b in boxes]
        actor = kinds[agent.instance_id.removeprefix(record["name"] + "-")]
        actors.append({"class": actor["class"], "color": actor["color"], "state": actor["state"], "trajectory": rows})
    return {"ego": ego, "actors": actors, "hz": round(1 / np.diff(times).mean()),
            "weather": record["scenario"]["weather"], "time_of_day": record["scenario"]["time_of_day"]}  # fmt: skip


def _side(y: float) -> str:
    return "left" if y > 0 else "right"


def _yaw_change(t: np.ndarray) -> float:
    return float(np.degrees(np.unwrap(t[:, 2])[-1] - t[0, 2]))


def doers(check: str, data: dict) -> list[int]:
    """Indices of the actors that show an actor behaviour check (`cut_in`, `cross:left`, ...)."""
    ego = np.asarray(data["ego"], dtype=float)
    hz = data["hz"]
    name, _, side = check.partition(":")
    out = []
    for k, actor in enumerate(data["actors"]):
        t = np.asarray(actor["trajectory"], dtype=float)
        kind = actor["class"]
        vehicle = kind not in ("pedestrian", *STATIC)
        gap = t[:, 0] - ego[:, 0]
        lateral = t[:, 1] - ego[:, 1]
        inside = np.flatnonzero(np.abs(lateral) < LANE / 2)
        shown = None  # the side the behaviour happens on
        if name == "cut_in" and vehicle:  # from a neighbouring lane into the ego's, ahead and close
            start = t[0, 1] - ego[0, 1]
            if abs(abs(start) - LANE) < 0.8 and len(inside) and abs(lateral[-1]) < 0.6 and 0 < gap[inside[0]] < 30:
                shown = _side(start)
        elif name == "hard_brake" and vehicle:
            if t[0, 3] > 1 and t[-1, 3] < 0.1 and (-np.diff(t[:, 3]) * hz).max() > 4:
                shown = "any"
        elif name == "stopped" and vehicle:  # still, in the ego's lane, ahead
            if t[:, 3].max() < 0.1 and abs(t[0, 1] - ego[0, 1]) < LANE / 2 and gap[0] > 0:
                shown = "any"
        elif name == "parked" and vehicle:
            if actor.get("state") == "parked":
                shown = _side(t[0, 1])
        elif name in ("cross", "dash_out") and kind == "pedestrian":  # into the ego's lane, ahead of the ego
            if len(inside) and gap[inside[0]] > 2:
                if name == "cross" or np.abs(np.diff(t[:, 1])).max() * hz > 2.5:
                    shown = _side(t[0, 1] - ego[0, 1])
        elif name == "overtake" and vehicle:  # from behind to ahead, the same way
            if gap[0] < 0 < gap[-1] and np.cos(t[-1, 2]) > 0.5:
                passing = int(np.flatnonzero(gap >= 0)[0])
                shown = _side(lateral[passing])
        elif name == "oncoming" and vehicle:
            if t[-1, 0] < t[0, 0] - 5 and np.cos(t[0, 2]) < -0.5:
                shown = "any"
        elif name == "follow" and vehicle:  # behind the ego, in its lane, all along
            if (gap < 0).all() and (np.abs(lateral) < LANE / 2).all():
                shown = "any"
        elif name == "change_lane" and vehicle:
            shift = t[-1, 1] - t[0, 1]
            if abs(shift) > 0.9 * LANE and abs(_yaw_change(t)) < 45:
                shown = _side(shift)
        elif name == "turn" and vehicle:
            change = _yaw_change(t)
            if 60 < abs(change) < 135:
                shown = _side(change)
        elif name == "u_turn" and vehicle:
            if abs(_yaw_change(t)) > 150:
                shown = "any"
        elif name == "merge" and vehicle:  # from a crossing road onto the ego's
            if abs(np.sin(t[0, 2])) > 0.7 and abs(np.sin(t[-1, 2])) < 0.3:
                shown = _side(t[0, 1])
        if shown is not None and (not side or side == shown):
            out.append(k)
    return out


def holds(check: str, data: dict, bound: list[int] | None = None) -> bool:
    """Whether the trajectories show `check`; `bound`: the actors that `class=` and `color=` must be among."""
    ego = np.asarray(data["ego"], dtype=float)
    name, _, side = check.partition(":")
    if name in ACTOR_BEHAVIOURS:
        return bool(doers(check, data))
    actors = [a for k, a in enumerate(data["actors"]) if bound is None or k in bound]
    if name == "ego_change_lane":
        shift = ego[-1, 1] - ego[0, 1]
        return abs(shift) > 0.9 * LANE and _side(shift) == side
    if name == "ego_turn":
        change = _yaw_change(ego)
        return 60 < abs(change) < 135 and _side(change) == side
    if name == "ego_stop":
        return ego[:, 3].max() > 1 and ego[:, 3].min() < 0.3
    if name == "ego_only":
        return not data["actors"]
    if name == "work_zone":
        return sum(a["class"] == "traffic_cone" for a in data["actors"]) >= 3
    key, value = check.split("=")
    if key == "weather":
        return data["weather"] == value
    if key == "time":
        return data["time_of_day"] == value
    if key == "class":
        return any(a["class"] == value for a in actors)
    if key == "color":
        return any(a.get("color") == value for a in actors)
    if key == "count":
        kind, number = value.split(":")
        return sum(a["class"] == kind for a in data["actors"]) == int(number)
    if key == "ego_speed":
        return abs(ego[0, 3] - float(value)) < 0.3
    raise ValueError(f"unknown check {check!r}")


def failed_checks(checks: list[str], data: dict) -> list[str]:
    """The checks (with the implicit clear weather and daytime) that the trajectories do not show."""
    checks = list(checks)
    if not any(c.startswith("weather=") for c in checks):
        checks.append("weather=clear")
    if not any(c.startswith("time=") for c in checks):
        checks.append("time=day")
    behaviours = [c for c in checks if c.partition(":")[0] in ACTOR_BEHAVIOURS]
    bound = None
    if len(behaviours) == 1:  # "a red truck cuts in": the red truck is the one cutting in
        bound = doers(behaviours[0], data)
    return [c for c in checks if not holds(c, data, bound if c.startswith(("class=", "color=")) else None)]
