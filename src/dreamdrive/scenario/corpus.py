"""The fine-tuning corpus: scenario specs composed from the library, each written as a script and said many ways.

A spec is what a user asks for: up to three events (an actor of a class and
colour doing one manoeuvre from a side, a count of pedestrians crossing, a work
zone; or the ego's own lane change, turn or stop), the ego's speed, the weather
and the time of day. `script` writes the spec in the script language (the one
`llm.SCRIPT_GRAMMAR` describes), and `check` runs it in the sandbox and compares
the trajectories' account (`verify.account`) with the spec, slot by slot: a pair
whose scenario does not show what its spec asks for never enters the corpus.
`say` renders the same spec in words, drawn from many phrasings: subjects (we,
I, our car, the ego vehicle), synonyms of classes and manoeuvres, sides said
several ways, counts in words and digits, relative positions, weather and time
in front or behind, several actors joined in different ways. Negatives (things
the library cannot show) are paired with `REFUSAL`.

The corpus is made from these templates only; it is never made from, or checked
against, the held-out evaluation prompts (`benchmarks/translate/heldout.txt`).
`corpus_pairs(n, seed)` is deterministic: the same n and seed give the same pairs.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from dreamdrive.scenario.sandbox import ScriptRejected, run_scenario_script
from dreamdrive.scenario.verify import account

REFUSAL = "refuse()\n"  # the script language's one refusal: the scenario cannot be made with the library

# -- specs -----------------------------------------------------------------------------------------

MOVING = ("cut_in", "hard_brake", "stopped", "overtake", "oncoming", "follow", "change_lane", "turn_left",
          "turn_right", "u_turn", "merge", "slow_down", "accelerate", "drive")  # fmt: skip
VEHICLE_KINDS = ("car", "car", "car", "truck", "bus", "motorcycle")
PARKED_KINDS = ("car", "car", "truck", "bus", "trailer", "construction_vehicle")
COLOURS = ("white", "black", "grey", "silver", "red", "blue", "green", "yellow", "orange", "brown")
JUNCTION = ("turn_left", "turn_right", "u_turn", "merge", "ego_turn_left", "ego_turn_right")


@dataclass(frozen=True)
class Event:
    """One thing the prompt asks for: `what` (a manoeuvre of `kind`, or `cross`, `dash_out`, `walk`, `stand`,
    `parked`, `work_zone`, `cyclist`, `ego_lane`, `ego_turn_left`, `ego_turn_right`, `ego_stop`)."""

    what: str
    kind: str = "car"
    color: str | None = None
    side: str | None = None
    count: int = 1


@dataclass(frozen=True)
class Spec:
    events: tuple[Event, ...]
    ego_speed: float | None = None  # m/s, when the prompt says it
    weather: str | None = None
    time_of_day: str | None = None
    speed_words: str = ""  # how the prompt says the ego's speed


def random_spec(rng: random.Random) -> Spec:
    """A spec of one to three events that can share one road (at most one junction event)."""
    count = rng.choices((0, 1, 2, 3), (0.04, 0.56, 0.3, 0.1))[0]
    events: list[Event] = []
    used_junction = False
    while len(events) < count:
        event = _random_event(rng)
        junctional = event.what in JUNCTION
        if (
            (junctional and used_junction)
            or any(e.what.startswith("ego") for e in events)
            and event.what.startswith("ego")
        ):
            continue
        used_junction |= junctional
        events.append(event)
    weather = rng.choices((None, "rain", "fog", "clear"), (0.6, 0.2, 0.12, 0.08))[0]
    time_of_day = rng.choices((None, "night", "dusk", "day"), (0.6, 0.2, 0.12, 0.08))[0]
    speed, words = None, ""
    if rng.random() < 0.15 and not any(e.what in JUNCTION for e in events):
        speed, words = rng.choice(SPEEDS)
    return Spec(tuple(events), speed, weather, time_of_day, words)


SPEEDS = [(50 / 3.6, "50 km/h"), (60 / 3.6, "60 km/h"), (40 / 3.6, "40 km/h"), (30 * 0.44704, "30 mph"),
          (15.0, "15 m/s"), (12.0, "12 m/s"), (70 / 3.6, "70 km/h")]  # fmt: skip


def _random_event(rng: random.Random) -> Event:
    what = rng.choices(
        ("moving", "parked", "cross", "dash_out", "walk", "stand", "work_zone", "cyclist", "ego_lane", "ego_turn",
         "ego_stop"),
        (0.5, 0.07, 0.09, 0.06, 0.03, 0.02, 0.05, 0.05, 0.05, 0.05, 0.03),
    )[0]  # fmt: skip
    side = rng.choice(("left", "right"))
    colour = rng.choice(COLOURS) if rng.random() < 0.35 else None
    if what == "moving":
        move = rng.choice(MOVING)
        kind = rng.choice(VEHICLE_KINDS)
        if move in ("u_turn",) and kind == "bus":
            kind = "car"
        needs_side = move in ("cut_in", "change_lane", "merge") or (move == "overtake" and rng.random() < 0.4)
        return Event(move, kind, colour, side if needs_side else None)
    if what == "parked":
        return Event("parked", rng.choice(PARKED_KINDS), colour, side)
    if what in ("cross", "dash_out"):
        count = rng.choices((1, 2, 3), (0.6, 0.3, 0.1))[0] if what == "cross" else 1
        return Event(what, "pedestrian", None, side if rng.random() < 0.6 else None, count)
    if what in ("walk", "stand"):
        return Event(what, "pedestrian", None, side)
    if what == "work_zone":
        return Event("work_zone", "work_zone", None, side)
    if what == "cyclist":
        return Event("cyclist", rng.choice(("bicycle", "bicycle", "motorcycle")), None, None)
    if what == "ego_lane":
        return Event("ego_lane", "ego", None, side)
    if what == "ego_turn":
        return Event(f"ego_turn_{side}", "ego")
    return Event("ego_stop", "ego")


# -- specs as scripts ------------------------------------------------------------------------------


PLACES = (6.0, 7.5, 9.0, 10.5, 4.5)  # seconds of the ego's driving to a crossing, tried in turn


def script(spec: Spec, variant: int = 0) -> str:
    """The spec in the script language: ego first, the junction if an event needs one, each event's lines,
    the settings, save() last. `variant` moves crossings further ahead (`PLACES`), for an ego too fast or a
    sidewalk too far to cross in view."""
    ego_moves = [e for e in spec.events if e.what.startswith("ego")]
    speed = spec.ego_speed if spec.ego_speed is not None else 10.0
    lines = [f"{'me = ' if ego_moves else ''}ego(speed={speed:.2f})"]
    if any(e.what in JUNCTION for e in spec.events):
        lines.append("junction(ahead=45.0)")
    if any(e.what in JUNCTION + ("cross", "dash_out") for e in spec.events):
        lines.append("set_duration(12.0)")
    ego_stops = any(e.what == "ego_stop" for e in spec.events)
    for index, event in enumerate(spec.events, start=1):
        lines += _event_lines(event, index, speed, ego_stops, variant)
    if spec.weather:
        lines.append(f"set_weather('{spec.weather}')")
    if spec.time_of_day:
        lines.append(f"set_time_of_day('{spec.time_of_day}')")
    return "\n".join(lines + ["save()"]) + "\n"


def _event_lines(event: Event, index: int, speed: float, ego_stops: bool, variant: int) -> list[str]:
    name = f"{event.kind.split('_')[0]}{index}_1"
    colour = f", color='{event.color}'" if event.color else ""
    kind, side = f"'{event.kind}'", f"'{event.side or 'left'}'"
    what = event.what
    if what == "cut_in":
        return [f"{name} = vehicle({kind}, lane={side}, ahead=6.0, speed={speed + 2:.2f}{colour})",
                f"{name}.cut_in(at=1.0)"]  # fmt: skip
    if what in ("hard_brake", "slow_down", "change_lane"):
        line = f"{name} = vehicle({kind}, lane='ego', ahead=25.0{colour})"
        move = {"hard_brake": "hard_brake(at=2.0)", "slow_down": "brake(to=3.0, at=1.5)",
                "change_lane": f"change_lane({side}, at=1.5)"}[what]  # fmt: skip
        return [line, f"{name}.{move}"]
    if what == "stopped":
        return [f"{name} = vehicle({kind}, lane='ego', ahead=45.0, speed=0{colour})"]
    if what == "overtake":
        if event.side == "right":  # passes in the right lane and stays there
            return [f"{name} = vehicle({kind}, lane='right', ahead=-15.0, speed={speed + 4:.2f}{colour})",
                    f"{name}.keep_speed()"]  # fmt: skip
        return [f"{name} = vehicle({kind}, lane='ego', ahead=-15.0, speed={speed + 3:.2f}{colour})",
                f"{name}.overtake(at=0.5)"]  # fmt: skip
    if what == "oncoming":
        return [f"{name} = vehicle({kind}, lane='oncoming', ahead=70.0, speed=10.00{colour})"]
    if what == "follow":
        return [f"{name} = vehicle({kind}, lane='ego', ahead=-14.0{colour})"]
    if what in ("turn_left", "turn_right", "u_turn"):
        lane = "'right'" if what == "turn_right" or (what == "u_turn" and event.kind == "truck") else "'ego'"
        return [f"{name} = vehicle({kind}, lane={lane}, ahead=12.0{colour})", f"{name}.{what}()"]
    if what == "merge":
        return [f"{name} = side_road_vehicle({kind}, side={side}, distance=15.0{colour})", f"{name}.merge()"]
    if what == "accelerate":
        return [f"{name} = vehicle({kind}, lane='left', ahead=10.0{colour})", f"{name}.accelerate(to=18.00, at=1.0)"]
    if what == "drive":
        return [f"{name} = vehicle({kind}, lane={side if event.side else repr('left')}, ahead=20.0{colour})",
                f"{name}.keep_speed()"]  # fmt: skip
    if what == "parked":
        return [f"{name} = parked_vehicle({kind}, side={side}, ahead=30.0)"]
    if what in ("cross", "dash_out"):
        where = side if event.side else "'right'"
        ahead = round(3.0 * speed if ego_stops and variant == 0 else PLACES[variant % len(PLACES)] * speed)
        if what == "dash_out":
            return [f"cover{index}_1 = parked_vehicle('car', side={where}, ahead={ahead - 3:.1f})",
                    f"{name} = pedestrian(side={where}, ahead={ahead:.1f})", f"{name}.dash_out(at=0.0)"]  # fmt: skip
        lines = []
        for k in range(event.count):
            person = f"pedestrian{index}_{k + 1}"
            lines += [f"{person} = pedestrian(side={where}, ahead={ahead + 6 * k:.1f})",
                      f"{person}.cross(at={0.5 * k:.1f})"]  # fmt: skip
        return lines
    if what in ("walk", "stand"):
        return [f"{name} = pedestrian(side={side}, ahead=30.0)",
                f"{name}.{'walk(speed=1.4)' if what == 'walk' else 'stand()'}"]  # fmt: skip
    if what == "work_zone":
        return [f"work{index}_1 = work_zone(ahead=45.0, lane={side})"]
    if what == "cyclist":
        motor = event.kind == "motorcycle"
        return [f"{name} = cyclist(ahead=15.0, speed={12.0 if motor else 5.0:.2f}, motor={motor})"]
    if what == "ego_lane":
        return [f"me.change_lane({side}, at=1.0)"]
    if what.startswith("ego_turn_"):
        return [f"me.turn_{what.rsplit('_', 1)[1]}()"]
    if what == "ego_stop":
        return ["me.stop(at=1.0)"]
    raise ValueError(f"no script for event {what!r}")


# Events the account reads no behaviour for: only the settings, the ego and the pedestrian count are checked
UNREAD = {"stopped", "slow_down", "accelerate", "drive", "walk", "stand", "work_zone", "cyclist"}


def check(spec: Spec, text: str) -> list[str]:
    """How the scenario `text` produces fails to show `spec` (empty when it shows it): every asked behaviour on
    its side, the ego's manoeuvres, classes, colours, pedestrian counts, weather and time of day."""
    try:
        got = account(run_scenario_script(text))
    except ScriptRejected as error:
        return [f"rejected: {error}"]
    problems = []
    if got.weather != (spec.weather or "clear") or got.time_of_day != (spec.time_of_day or "day"):
        problems.append("settings")
    want_ego = set()
    for event in spec.events:
        if event.what == "ego_lane":
            want_ego.add(f"lane:{event.side}")
        elif event.what.startswith("ego_turn_"):
            want_ego.add(f"turn:{event.what.rsplit('_', 1)[1]}")
        elif event.what == "ego_stop":
            want_ego.add("stop")
    if want_ego - got.ego or (got.ego - want_ego) - {"stop"}:
        problems.append(f"ego {sorted(got.ego)} != {sorted(want_ego)}")
    shown = got.behaviours
    for event in spec.events:
        if event.what in UNREAD or event.what.startswith("ego"):
            continue
        sides = [s for b, s in shown if b == event.what or (event.what == "cross" and b == "dash_out")]
        if not sides or (event.side and event.side not in sides):
            problems.append(f"{event.what}:{event.side} not in {shown}")
    pedestrians = sum(e.count for e in spec.events if e.kind == "pedestrian")
    if pedestrians and got.counts.get("pedestrian", 0) != pedestrians:
        problems.append("pedestrian count")
    return problems


# -- specs in words --------------------------------------------------------------------------------

KIND_WORDS = {
    "car": ["car", "car", "sedan", "hatchback", "SUV", "van", "taxi", "vehicle", "saloon", "estate car", "minivan",
            "compact car", "sports car", "cab"],
    "truck": ["truck", "truck", "lorry", "pickup", "box truck", "delivery truck", "semi", "tipper truck", "HGV"],
    "bus": ["bus", "bus", "coach", "city bus", "double-decker", "school bus", "shuttle bus"],
    "motorcycle": ["motorcycle", "motorbike", "scooter", "motorcyclist", "moped"],
    "trailer": ["trailer", "trailer", "semi-trailer", "caravan trailer"],
    "construction_vehicle": ["excavator", "digger", "bulldozer", "construction vehicle", "road roller", "crane truck"],
    "bicycle": ["cyclist", "bicycle", "bike rider", "person on a bike", "bicyclist"],
}  # fmt: skip
PERSON_WORDS = ["pedestrian", "person", "man", "woman", "child", "kid", "jogger", "boy", "girl", "old man",
                "pedestrian", "someone on foot"]  # fmt: skip
PEOPLE_WORDS = ["pedestrians", "people", "children", "kids", "walkers", "pedestrians", "students"]
EGO_SUBJECTS = ["we", "we", "I", "our car", "the ego car", "the ego vehicle", "my car", "ego", "the ego"]
NUMBER_WORDS = {2: ["two", "2", "a couple of"], 3: ["three", "3"]}

# Each template: {who} (an article, colour and class: "a red truck"), {side}, {Side}; the ego's words {we}.
SAY = {
    "cut_in": [
        "{who} cuts in from the {side}",
        "{who} cuts in front of us from the {side}",
        "{who} from the {side} lane cuts in ahead of us",
        "{who} on our {side} swerves into our lane",
        "{who} merges into our lane from the {side}",
        "{who} changes into our lane from the {side}",
        "{who} pulls into our lane from the {side} just ahead",
        "cut-in from the {side}: {who}",
        "{who} in the {side} lane moves into our lane close in front",
        "{who} jumps into our lane from the {side}",
        "{who} barges in from the {side} lane",
        "{who} cuts us off from the {side}",
        "{who} veers into our lane from the {side}",
        "{who} from the {side} suddenly enters our lane ahead of us",
        "a {side} side cut-in by {bare}",
        "{who} lane-changes in front of us from the {side}",
        "{who} comes over from the {side} lane into ours",
    ],
    "hard_brake": [
        "{the} ahead brakes hard",
        "{the} in front slams on the brakes",
        "{the} ahead of us stops suddenly",
        "{the} in front of us does an emergency stop",
        "{the} ahead brakes abruptly",
        "the lead vehicle, {bare}, brakes hard",
        "{the} in front jams on the brakes",
        "{the} ahead hits the brakes hard",
        "sudden braking by {the} ahead",
        "{the} we are following brakes sharply",
        "{the} in front of us comes to a sudden stop",
    ],
    "stopped": [
        "{who} is stopped in our lane",
        "a stopped {bare} blocks our lane",
        "{who} stands still in our lane ahead",
        "{who} has broken down in our lane",
        "a stalled {bare} ahead in our lane",
        "{who} is stationary in our lane",
        "a broken-down {bare} sits in our lane",
        "our lane is blocked by a stopped {bare}",
    ],
    "overtake": [
        "{who} overtakes us",
        "{who} passes us",
        "{who} overtakes the ego",
        "{who} overtakes us on the {side}",
        "{who} passes us on the {side}",
        "{who} comes from behind and overtakes us",
        "{who} speeds past us on the {side}",
        "we get overtaken by {who}",
        "{who} zooms past us",
        "{who} races past us on the {side}",
    ],
    "oncoming": [
        "an oncoming {bare}",
        "{who} comes towards us in the other lane",
        "{who} drives in the opposite direction",
        "{who} approaches from the opposite direction",
        "oncoming traffic: {who}",
        "{who} heads towards us",
        "{who} in the oncoming lane",
        "{who} coming the other way",
    ],
    "follow": [
        "{who} follows us",
        "{who} is behind us",
        "{who} tailgates us",
        "{who} drives behind us",
        "{who} follows close behind",
        "{who} stays behind us",
        "{who} is following the ego",
    ],
    "change_lane": [
        "{the} ahead changes lanes to the {side}",
        "{the} in front moves to the {side} lane",
        "{the} ahead switches to the {side} lane",
        "{the} ahead of us changes lane to the {side}",
        "{the} in front pulls out to the {side}",
        "{the} ahead shifts over to the {side} lane",
    ],
    "turn_left": [
        "{the} ahead turns left at the intersection",
        "{the} in front turns left at the junction",
        "{the} ahead makes a left turn at the crossroads",
        "{the} ahead of us goes left at the intersection",
        "at the junction {the} in front turns left",
    ],
    "turn_right": [
        "{the} ahead turns right at the junction",
        "{the} in front turns right at the intersection",
        "{the} ahead makes a right turn",
        "{the} ahead of us takes a right at the crossroads",
        "at the intersection {the} ahead turns right",
    ],
    "u_turn": [
        "{the} ahead makes a u-turn",
        "{the} in front does a U-turn at the junction",
        "{the} ahead turns around at the intersection",
        "{the} ahead of us makes a u turn",
    ],
    "merge": [
        "{who} merges from the side road on the {side}",
        "{who} pulls out of a side street on the {side}",
        "{who} joins our road from a side road on the {side}",
        "{who} comes out of the side road on the {side}",
        "from a side street on the {side}, {who} merges into traffic",
        "{who} enters the road from the {side} side road",
    ],
    "slow_down": ["{the} ahead slows down", "{the} in front decelerates", "{the} ahead of us slows"],
    "accelerate": ["{who} next to us accelerates", "{who} in the left lane speeds up", "{who} accelerates away"],
    "drive": [
        "{who} drives in the {side} lane",
        "{who} ahead in the {side} lane",
        "{who} drives beside us on the {side}",
        "{who} cruises in the {side} lane",
    ],  # fmt: skip
    "parked": [
        "a parked {bare} on the {side}",
        "{who} is parked on the {side} side of the road",
        "{who} parked at the {side} kerb",
        "a {bare} parked on the {side} shoulder",
        "{who} sits parked on the {side}",
        "there is a parked {bare} on the {side}",
    ],
    "cross": [
        "{person} crosses the road",
        "{person} crosses the street ahead",
        "{person} walks across the road",
        "{person} crosses in front of us",
        "{person} crosses the road from the {side}",
        "{person} walks across the street from the {side}",
        "{person} steps onto the road and crosses",
    ],
    "cross_many": [
        "{n} {people} cross the road",
        "{n} {people} cross the street ahead",
        "{n} {people} walk across the road",
        "{n} {people} cross from the {side}",
        "{n} {people} cross in front of us",
    ],
    "dash_out": [
        "{person} dashes out from behind a parked car",
        "{person} runs out into the road",
        "{person} suddenly runs into the road from the {side}",
        "{person} darts out from the {side}",
        "{person} jumps out between parked cars",
        "{person} runs out from the {side} in front of us",
        "{person} bolts into the street",
    ],
    "walk": [
        "{person} walks on the {side} sidewalk",
        "{person} walks along the {side} pavement",
        "{person} strolls on the {side}",
    ],  # fmt: skip
    "stand": [
        "{person} stands on the {side}",
        "{person} waits on the {side} sidewalk",
        "{person} is standing at the {side} curb",
    ],  # fmt: skip
    "work_zone": [
        "a work zone ahead on the {side}",
        "roadworks ahead in the {side} lane",
        "traffic cones close the {side} lane",
        "a construction zone on the {side}",
        "the {side} lane is coned off ahead",
        "road works on the {side}",
    ],
    "cyclist": [
        "{person} rides ahead of us",
        "{person} rides on the right",
        "{person} ahead on the road",
        "{person} in front of us",
    ],  # fmt: skip
    "ego_lane": [
        "{we} change lanes to the {side}",
        "{we} move over to the {side} lane",
        "{we} switch to the {side} lane",
        "{we} change to the {side} lane",
        "{we} pull into the {side} lane",
        "{we} shift to the {side} lane",
        "{we} merge into the {side} lane",
    ],
    "ego_turn": [
        "{we} turn {side} at the intersection",
        "{we} turn {side} at the junction",
        "{we} take a {side} at the crossroads",
        "{we} make a {side} turn at the intersection",
        "{we} go {side} at the junction",
    ],
    "ego_stop": [
        "{we} stop",
        "{we} come to a stop",
        "{we} stop and wait",
        "{we} halt",
        "{we} wait at the crossing",
        "{we} stop at the crossing",
    ],  # fmt: skip
}
WEATHER_SAY = {
    "rain": ["in the rain", "in heavy rain", "on a rainy day", "while it rains", "in a downpour", "in drizzle",
             "on wet roads", "in the pouring rain"],
    "fog": ["in the fog", "in thick fog", "on a foggy day", "in mist", "in dense fog"],
    "clear": ["on a clear day", "in clear weather", "on a sunny day", "in dry weather"],
}  # fmt: skip
TIME_SAY = {
    "night": ["at night", "at midnight", "in the dark", "late at night", "after dark", "at nighttime"],
    "dusk": ["at dusk", "at sunset", "in the evening", "at twilight", "at dawn"],
    "day": ["during the day", "in daylight", "in the afternoon", "in the morning", "at noon"],
}
BOTH_SAY = {("rain", "night"): ["on a rainy night", "on a wet night"], ("fog", "night"): ["on a foggy night"],
            ("rain", "dusk"): ["on a rainy evening"], ("fog", "dusk"): ["on a foggy evening"]}  # fmt: skip
JOINS = [", and ", " and ", "; ", ", while ", ". Meanwhile, ", ", then ", " while ", ". ", " as "]
OPENERS = ["", "", "", "", "Scenario: ", "Generate a clip where ", "Show ", "Make a scene in which ",
           "I need a scenario: ", "Simulate ", "Create a video: "]  # fmt: skip


def say(spec: Spec, rng: random.Random) -> str:
    """The spec in words, one phrasing drawn for each part."""
    clauses = [_say_event(event, rng) for event in spec.events]
    if not clauses:
        clauses = [rng.choice(["no traffic, just cruise", "an empty road", "we drive on an empty road",
                               "just us on the road", "nothing happens, we drive along", "a quiet road with no "
                               "other traffic", "drive straight with no other vehicles"])]  # fmt: skip
    text = clauses[0]
    for clause in clauses[1:]:
        text += rng.choice(JOINS) + clause
    setting = _say_setting(spec, rng)
    if spec.speed_words:
        text = rng.choice([f"while we drive at {spec.speed_words}, {text}", f"{text}, ego at {spec.speed_words}",
                           f"{text} while we go {spec.speed_words}"])  # fmt: skip
    if setting:
        text = f"{setting[0].upper()}{setting[1:]}, {text}" if rng.random() < 0.35 else f"{text} {setting}"
    opener = rng.choice(OPENERS)
    if opener and not text.startswith("I "):
        text = opener + text[0].lower() + text[1:]
    if rng.random() < 0.5:
        text = text[0].upper() + text[1:]
    return text


def _say_setting(spec: Spec, rng: random.Random) -> str:
    key = (spec.weather, spec.time_of_day)
    if key in BOTH_SAY and rng.random() < 0.5:
        return rng.choice(BOTH_SAY[key])
    parts = []
    if spec.weather:
        parts.append(rng.choice(WEATHER_SAY[spec.weather]))
    if spec.time_of_day:
        parts.append(rng.choice(TIME_SAY[spec.time_of_day]))
    rng.shuffle(parts)
    return " ".join(parts)


def _say_event(event: Event, rng: random.Random) -> str:
    what = event.what
    side = event.side or "left"
    if what.startswith("ego_turn_"):
        side, what = what.rsplit("_", 1)[1], "ego_turn"
    if what == "cross" and event.count > 1:
        what = "cross_many"
    templates = SAY[what]
    if not event.side and what not in ("ego_turn",):
        templates = [t for t in templates if "{side}" not in t] or templates
    bare = rng.choice(KIND_WORDS.get(event.kind, ["car"]))
    if event.color:
        bare = f"{event.color} {bare}"
    article = "an" if bare[0] in "aeiou" or bare.startswith(("SUV", "HGV")) else "a"
    person = rng.choice(KIND_WORDS["bicycle"] if event.kind == "bicycle" else
                        KIND_WORDS["motorcycle"] if event.kind == "motorcycle" else PERSON_WORDS)  # fmt: skip
    person_article = "an" if person[0] in "aeiou" else "a"
    if person == "someone on foot":
        person_article = ""
    count = event.count if event.count > 1 else 2
    words = {
        "who": f"{article} {bare}",
        "bare": bare,
        "the": f"the {bare}",
        "side": side,
        "person": f"{person_article} {person}".strip(),
        "people": rng.choice(PEOPLE_WORDS),
        "n": rng.choice(NUMBER_WORDS[min(count, 3)]),
        "we": rng.choice(EGO_SUBJECTS),
    }
    return rng.choice(templates).format(**words)


# -- negatives -------------------------------------------------------------------------------------

NEGATIVES = [
    "a spaceship lands on the road", "an elephant walks across the highway", "a plane lands on the motorway",
    "the car flies over the traffic", "a train crosses our path at the level crossing", "a horse gallops beside us",
    "we drive underwater", "a meteor hits the road ahead", "a boat sails down the street", "make me a sandwich",
    "what is the capital of France", "write a poem about cars", "a helicopter hovers over the junction",
    "a dinosaur chases us", "snow covers the road", "we drive through a blizzard", "a tank rolls down the street",
    "a cow stands in the road", "a dog runs across the road", "a deer jumps out in front of us",
    "an ambulance with flashing lights overtakes us", "a tram crosses the intersection", "hail falls on the road",
    "the road is flooded", "a tornado approaches", "a skateboarder rolls past", "a horse-drawn cart ahead",
    "we drive on the beach", "twenty cars race each other", "a rocket launches", "a zebra crosses the road",
    "the traffic lights turn red", "a police car chases a suspect", "a kangaroo hops across", "drive me to work",
    "a balloon floats across the road", "play some music", "we reverse into a parking space",
    "a car drives on the sidewalk", "a crowd of fifty people", "sandstorm in the desert", "a sheep blocks the lane",
]  # fmt: skip


def negative(rng: random.Random) -> str:
    text = rng.choice(NEGATIVES)
    if rng.random() < 0.3:
        text = f"{text} {rng.choice(TIME_SAY['night'] + WEATHER_SAY['rain'])}"
    return text[0].upper() + text[1:] if rng.random() < 0.5 else text


# -- the corpus ------------------------------------------------------------------------------------


@dataclass
class CorpusStats:
    pairs: int = 0
    rejected: int = 0
    negatives: int = 0
    problems: list[str] = field(default_factory=list)


def corpus_pairs(n: int = 6000, seed: int = 0, negative_share: float = 0.06) -> list[tuple[str, str]]:
    """`n` (prompt, script) pairs, every script checked against its spec (see the module's docstring)."""
    pairs, _ = build_corpus(n, seed, negative_share)
    return pairs


def first_passing(spec: Spec, stats: CorpusStats) -> str | None:
    """The first variant of the spec's script whose scenario shows the spec; None (counted) if none does."""
    tries = len(PLACES) if any(e.what in ("cross", "dash_out") for e in spec.events) else 1
    for variant in range(tries):
        text = script(spec, variant)
        problems = check(spec, text)
        if not problems:
            return text
    stats.rejected += 1
    stats.problems.append(f"{spec}: {problems}")
    return None


def build_corpus(n: int, seed: int, negative_share: float = 0.06) -> tuple[list[tuple[str, str]], CorpusStats]:
    rng = random.Random(seed)
    stats = CorpusStats()
    pairs: list[tuple[str, str]] = []
    checked: dict[Spec, str | None] = {}
    while len(pairs) < n:
        if rng.random() < negative_share:
            pairs.append((negative(rng), REFUSAL))
            stats.negatives += 1
            continue
        spec = random_spec(rng)
        if spec not in checked:
            checked[spec] = first_passing(spec, stats)
        if checked[spec] is not None:
            pairs.append((say(spec, rng), checked[spec]))
    stats.pairs = len(pairs)
    return pairs, stats
