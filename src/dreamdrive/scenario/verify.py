"""The verifier between a prompt and its script: what the prompt states, slot by slot, against what the script did.

`stated` reads the slots a prompt states plainly: weather, time of day, the ego's
own manoeuvre ("we move over to the left lane") and speed ("at 15 m/s we ..."), each actor behaviour with the
side it names ("cuts in from the right", "overtakes us on the left"), the
classes, colours and counts it names. `account` derives the same slots from the
trajectories the script produced (not from the script's words). `disagreements`
compares them, each slot on its own, and names what differs. A slot the prompt
leaves open is not checked, except weather and time of day: a scene that is not
clear and by day when the prompt asked for neither got its weather from
somewhere else (a retrieved neighbour), and that is a defect.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from dreamdrive.core.conventions import KEYFRAME_HZ
from dreamdrive.scenario.translate import (
    CLASS_WORDS,
    COVER,
    EGO_LANE_CHANGE,
    EGO_SPEED,
    EGO_STOP,
    EMPTY,
    PHRASE_CLASSES,
    SUBJECT,
    TIME_WORDS,
    WEATHER_WORDS,
    clause_behaviour,
    clause_class,
    colours,
    plain,
    split_clauses,
    stated_speed,
)
from dreamdrive.scenario.types import ScriptResult

LANE = 3.5
EGO_TURN = re.compile(
    SUBJECT + r"(?:\W+\w+){0,2}?\W+(?:turns?|turning|swings?|veers?|go|goes|going|heads?|heading|take a|takes a"
    r"|make a|makes a|hang a|hangs a|take the|takes the|take the next|takes the next|take the first"
    r"|takes the first)\s+(left|right)\b"
    r"(?! lane)"
)
NUMBERS = {"two": 2, "three": 3, "four": 4, "five": 5, "2": 2, "3": 3, "4": 4, "5": 5, "pair": 2, "couple": 2}
# The behaviours the verifier checks, by the parser vocabulary's names; sides as the prompt says them.
CHECKED = {"cut_in", "dash_out", "cross", "u_turn", "turn_left", "turn_right", "overtake", "hard_brake", "change_lane",
           "parked", "oncoming", "follow", "merge"}  # fmt: skip
SIDE_WORDS = {
    "cut_in": r"\bfrom (?:the|our) (left|right)\b|\b(left|right)(?:-hand)? lane\b|\bon the (left|right)\b",
    "merge": r"\bfrom (?:the|a) (left|right)\b|\bon the (left|right)\b|\b(left|right) side\b",
    "cross": r"\bfrom (?:the )?(left|right)\b",
    "dash_out": r"\bfrom (?:the )?(left|right)\b",
    "overtake": r"\bon (?:the|our) (left|right)\b",
    "change_lane": r"\bto the (left|right)\b|\binto the (left|right) lane\b|\bto (left|right)\b",
    "parked": r"\bon the (left|right)\b",
}


# Behaviours a scenario must not show unless the prompt asks for them (or for one that shows them too: a
# cut-in is a lane change, an overtake pulls out and cuts back in, a dash-out is a crossing behind a parked car).
SALIENT = {"cut_in", "oncoming", "overtake", "cross", "dash_out", "merge", "turn_left", "turn_right", "u_turn",
           "hard_brake", "change_lane"}  # fmt: skip
IMPLIED = {
    "cut_in": {"change_lane"},
    "change_lane": {"cut_in"},
    "overtake": {"change_lane", "cut_in"},
    "dash_out": {"cross", "parked"},
    "cross": {"dash_out"},
    "merge": {"turn_left", "turn_right", "change_lane", "cut_in"},
    "turn_left": {"change_lane"},
    "turn_right": {"change_lane"},
    "u_turn": {"turn_left", "turn_right", "oncoming", "change_lane"},
}


@dataclass
class Slots:
    """What a prompt states, or what a scenario shows."""

    weather: str | None = None
    time_of_day: str | None = None
    ego: set[str] = field(default_factory=set)  # "lane:left", "turn:right", "stop"
    behaviours: list[tuple[str, str | None]] = field(default_factory=list)  # (behaviour, side or None)
    classes: set[str] = field(default_factory=set)
    colors: set[str] = field(default_factory=set)
    counts: dict[str, int] = field(default_factory=dict)
    empty: bool = False  # the prompt asks for a road with nobody else on it
    doers: set[tuple[str, str]] = field(default_factory=set)  # (behaviour, class or colour of who does it)
    ego_speed: float | None = None  # m/s, at the start


def _ego_clause(clause: str) -> bool:
    """Whether the clause's subject is the ego: it starts with the ego's words before any other actor's."""
    subject = re.search(SUBJECT, clause)
    if not subject:
        return False
    others = [m.start() for w in CLASS_WORDS if w not in ("car", "vehicle") for m in re.finditer(rf"\b{w}\b", clause)]
    generic = r"\b(?:a|an|the|another|one|two|three) (?:\w+ )?(?:car|vehicle)\b"
    others += [m.start() for m in re.finditer(generic, clause) if not clause[m.start() :].startswith("the ego")]
    return subject.start() < min(others, default=len(clause))


def stated(prompt: str) -> Slots:
    """The slots a prompt states plainly (see the module's docstring)."""
    text = plain(prompt.lower())
    slots = Slots()
    weathers, times = WEATHER_WORDS, TIME_WORDS
    slots.weather = next((v for w, v in weathers.items() if re.search(rf"\b{w}\b", text)), None)
    slots.time_of_day = next((v for w, v in times.items() if re.search(rf"\b{w}\b", text)), None)
    slots.empty = bool(re.search(EMPTY, text))
    for clause in split_clauses(prompt):
        clause = re.sub(EMPTY, " ", clause)
        if doing := re.search(EGO_SPEED, clause):  # "while we are doing 70 km/h", "at 15 m/s we ..."
            slots.ego_speed = stated_speed(doing.group(0))[0]
            clause = (clause[: doing.start()] + " " + clause[doing.end() :]).strip()  # as the parser reads on
        if _ego_clause(clause):
            if m := EGO_TURN.search(clause):
                slots.ego.add(f"turn:{m.group(1)}")
                continue
            if m := re.search(EGO_LANE_CHANGE, clause):
                slots.ego.add(f"lane:{m.group('side') or m.group('to')}")
                continue
            if EGO_STOP.search(clause):
                slots.ego.add("stop")
                continue  # else the ego is the object: "we get overtaken by a bus"
        behaviour = clause_behaviour(clause, clause_class(clause))
        if behaviour == "overtake" and clause_class(clause) is None and slots.behaviours[-1:] == [("follow", None)]:
            slots.behaviours.pop()  # "a truck follows us and then overtakes": the follower passes, as the parser has it
        if behaviour in CHECKED:
            side = None
            if behaviour in SIDE_WORDS and (m := re.search(SIDE_WORDS[behaviour], clause)):
                side = next(g for g in m.groups() if g)
            slots.behaviours.append((behaviour, side))
            doer = re.sub(COVER, " ", clause) if behaviour == "dash_out" else clause  # not the parked red bus
            kind = clause_class(doer)  # "a red truck cuts in": the truck, and the red one, is who cuts in
            if kind not in (None, "car", "pedestrian"):
                slots.doers.add((behaviour, kind))
            slots.doers.update((behaviour, color) for color in colours(doer)[:1])
    for phrase, value in PHRASE_CLASSES.items():
        if phrase in text and value != "work_zone":
            slots.classes.add(value)
    for word, value in CLASS_WORDS.items():
        if value != "car" and re.search(rf"\b{word}\b", text):
            slots.classes.add(value)
    slots.colors = set(colours(text))
    for m in re.finditer(rf"\b({'|'.join(NUMBERS)})\s+([a-z]+)(?:\s+([a-z]+))?", text):
        for word in m.groups()[1:]:  # "two pedestrians", "three white cars"
            kind = CLASS_WORDS.get(word or "")
            if kind and (kind != "car" or word in ("cars", "vehicles")):
                slots.counts[kind] = NUMBERS[m.group(1)]
                break
    return slots


def _side(y: float) -> str:
    return "left" if y > 0 else "right"


def _lane_changes(y: np.ndarray) -> list[str]:
    """The sides of the lane changes along a path's lateral positions (lane centres LANE apart)."""
    lanes = np.round(np.asarray(y) / LANE)
    steps = np.diff(lanes)
    return [_side(step) for step in steps[steps != 0]]


def _keyframe_speeds(rows: np.ndarray, hz: int) -> np.ndarray:
    """Speeds on the key frames as a written dataset gives them: displacement between the neighbouring key frames
    over their time (the devkit's annotation velocity), so a stop too short to span key frames is smoothed away."""
    step = max(hz // KEYFRAME_HZ, 1)
    keys = rows[::step, :2]
    last = len(keys) - 1
    before, after = np.maximum(np.arange(len(keys)) - 1, 0), np.minimum(np.arange(len(keys)) + 1, last)
    span = np.maximum(after - before, 1) * step / hz
    return np.linalg.norm(keys[after] - keys[before], axis=1) / span


def _turned(rows: np.ndarray) -> float:
    """Degrees the heading turns from the first row to the last (positive: left)."""
    return float(np.degrees(np.unwrap(rows[:, 2])[-1] - rows[0, 2]))


def account(result: ScriptResult) -> Slots:
    """The slots the trajectories show: each actor's behaviours (with the side they happen on), the ego's own
    manoeuvres, classes, colours, counts, weather and time of day."""
    ego = np.asarray(result.ego.rows, dtype=float)
    hz = result.hz
    slots = Slots(weather=result.weather, time_of_day=result.time_of_day, ego_speed=float(ego[0, 3]))
    if abs(_turned(ego)) < 45:
        slots.ego.update(f"lane:{side}" for side in _lane_changes(ego[:, 1]))
    elif abs(_turned(ego)) < 135:
        slots.ego.add(f"turn:{_side(_turned(ego))}")
    if ego[:, 3].min() < 0.3:
        slots.ego.add("stop")
    for actor in result.actors:
        kind = actor.kind
        if kind in ("traffic_cone", "barrier"):
            continue
        rows = np.asarray(actor.trajectory.rows, dtype=float)
        slots.classes.add(kind)
        slots.counts[kind] = slots.counts.get(kind, 0) + 1
        if actor.color:
            slots.colors.add(actor.color)
        gap, lateral = rows[:, 0] - ego[:, 0], rows[:, 1] - ego[:, 1]
        inside = np.flatnonzero(np.abs(lateral) < LANE / 2)
        shows = []
        if kind == "pedestrian":
            if len(inside) and gap[inside[0]] > 2:  # into the ego's lane, ahead of it
                shows.append(("cross", _side(lateral[0])))
                if np.abs(np.diff(rows[:, 1])).max() * hz > 2.5:
                    shows.append(("dash_out", _side(lateral[0])))
            slots.behaviours += shows
            slots.doers.update((b, who) for b, _ in shows for who in (kind, actor.color) if who)
            continue
        lanes = np.round(lateral / LANE)
        entered = np.flatnonzero((lanes[1:] == 0) & (np.abs(lanes[:-1]) == 1)) + 1
        for k in entered:  # from a neighbouring lane into the ego's, ahead of it and close
            if 0 < gap[k] < 30 and (lanes[k : k + hz] == 0).all():
                shows.append(("cut_in", _side(lateral[k - 1])))
        keys = _keyframe_speeds(rows, hz)  # a hard brake that the dataset's key frames show, to a stop
        if rows[0, 3] > 1 and keys[-1] < 0.1 and len(keys) > 1 and (-np.diff(keys) * KEYFRAME_HZ).max() > 4:
            shows.append(("hard_brake", None))
        if actor.state == "parked":
            shows.append(("parked", _side(rows[0, 1])))
        passing = int(np.argmax(gap >= 0))  # beside the ego in another lane, not through it (a tailgater)
        if gap[0] < 0 < gap[-1] and np.cos(rows[-1, 2]) > 0.5 and abs(lateral[passing]) > LANE / 2:
            shows.append(("overtake", _side(lateral[passing])))
        if rows[-1, 0] < rows[0, 0] - 5 and np.cos(rows[0, 2]) < -0.5:
            shows.append(("oncoming", None))
        if gap[0] < 0 and (np.abs(lateral) < LANE / 2).all():  # behind in the ego's lane (one that closes in
            shows.append(("follow", None))  # too fast is slowed to the ego's speed by the validators afterwards)
        turned = _turned(rows)
        if abs(turned) < 45:
            shows += [("change_lane", side) for side in _lane_changes(rows[:, 1])]
        if abs(np.sin(rows[0, 2])) > 0.7 and abs(np.sin(rows[-1, 2])) < 0.3:
            shows.append(("merge", _side(rows[0, 1])))
        elif 60 < abs(turned) < 135:
            shows.append((f"turn_{_side(turned)}", None))
        if abs(turned) > 150:
            shows.append(("u_turn", None))
        slots.behaviours += shows
        slots.doers.update((b, who) for b, _ in shows for who in (kind, actor.color) if who)
    return slots


def disagreements(prompt: str, result: ScriptResult) -> list[str]:
    """Each slot on which the scenario contradicts the prompt, said plainly; empty when they agree."""
    want, got = stated(prompt), account(result)
    problems = []
    for slot, default in (("weather", "clear"), ("time_of_day", "day")):
        asked, shown = getattr(want, slot) or default, getattr(got, slot)
        if asked != shown:
            problems.append(f"{slot.replace('_', ' ')}: the prompt asks for {asked}, the scenario has {shown}")
    if want.ego_speed is not None and abs(want.ego_speed - got.ego_speed) > 0.05 * want.ego_speed + 0.1:
        problems.append(f"ego speed: the prompt asks for {want.ego_speed:.1f} m/s, the scenario starts the ego at "
                        f"{got.ego_speed:.1f} m/s")  # fmt: skip
    for manoeuvre in sorted(want.ego - got.ego):
        problems.append(f"ego: the prompt has the ego {_ego_words(manoeuvre)}, the scenario does not")
    for manoeuvre in sorted((got.ego - want.ego) - {"stop"}):
        problems.append(f"ego: the scenario has the ego {_ego_words(manoeuvre)}, which the prompt does not ask for")
    for behaviour, side in want.behaviours:
        sides = [s for b, s in got.behaviours if b == behaviour or (behaviour == "cross" and b == "dash_out")]
        if not sides:
            problems.append(f"behaviour: the prompt asks for {_words(behaviour)}, no actor in the scenario does it")
        elif side and side not in sides:
            problems.append(f"side: the prompt asks for {_words(behaviour)} on the {side}, the scenario has it on "
                            f"the {sides[0]}")  # fmt: skip
    for behaviour, who in sorted(want.doers):
        done = {w for b, w in got.doers if b == behaviour or (behaviour == "cross" and b == "dash_out")}
        if done and who not in done:
            problems.append(f"who: the prompt has a {who.replace('_', ' ')} {_words(behaviour)}, the scenario has "
                            f"it done by {', '.join(sorted(w.replace('_', ' ') for w in done))}")  # fmt: skip
    asked = {b for b, _ in want.behaviours}
    allowed = asked.union(*(IMPLIED.get(b, set()) for b in asked))
    for behaviour in sorted({b for b, _ in got.behaviours if b in SALIENT} - allowed):
        problems.append(f"behaviour: the scenario has {_words(behaviour)}, which the prompt does not ask for")
    if "cut_in" in asked and not asked & {"change_lane", "overtake", "merge", "turn_left", "turn_right", "u_turn"}:
        # the one lane change a cut-in allows is the one into the ego's lane, away from the side it comes from
        into = {"right" if side == "left" else "left" for b, side in got.behaviours if b == "cut_in"}
        for side in sorted({s for b, s in got.behaviours if b == "change_lane"} - into):
            problems.append(f"behaviour: the scenario has a lane change to the {side} besides the cut-in, which "
                            "the prompt does not ask for")  # fmt: skip
    if want.empty and not want.classes and got.classes:
        problems.append(f"empty road: the prompt asks for no other traffic, the scenario has "
                        f"{', '.join(sorted(k.replace('_', ' ') for k in got.classes))}")  # fmt: skip
    for kind in sorted(want.classes - got.classes):
        problems.append(f"class: the prompt names a {kind.replace('_', ' ')}, the scenario has none")
    moving = {k for k in got.classes if k not in ("car", "pedestrian")} - want.classes  # "someone", "a jogger"
    for kind in sorted(moving):
        problems.append(f"class: the scenario has a {kind.replace('_', ' ')}, which the prompt does not name")
    for color in sorted(want.colors - got.colors):
        problems.append(f"colour: the prompt asks for {color}, no actor in the scenario is {color}")
    for color in sorted(got.colors - want.colors):
        problems.append(f"colour: the scenario has a {color} actor, which the prompt does not ask for")
    for kind, number in sorted(want.counts.items()):
        if got.counts.get(kind, 0) != number:
            problems.append(f"count: the prompt asks for {number} {kind.replace('_', ' ')}s, the scenario has "
                            f"{got.counts.get(kind, 0)}")  # fmt: skip
    return problems


def _words(behaviour: str) -> str:
    return behaviour.replace("_", " ").replace("turn left", "a left turn").replace("turn right", "a right turn")


def _ego_words(manoeuvre: str) -> str:
    kind, _, side = manoeuvre.partition(":")
    return {"lane": f"change lanes to the {side}", "turn": f"turn {side}", "stop": "stop"}[kind]
