"""Text to scenario script, offline: a compositional parser over the scenario vocabulary.

The prompt is split into clauses ("a red truck cuts in from the left, and a
pedestrian dashes out on a rainy night"); each clause names at most one kind
of actor (with a count, class, colour, side, distance and speed) and what it
does, and the whole prompt may set the weather, the time of day, the ego's
speed and the duration. Every clause must be understood: a word the parser
cannot place in any clause is reported, never guessed at.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from dreamdrive.core.errors import DreamdriveError
from dreamdrive.scenario.library import TOP_SPEED, sidewalk_y

WORD_NUMBERS = {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "several": 3, "some": 2,
                "pair": 2, "couple": 2}  # fmt: skip
CLASS_WORDS = {
    "car": "car", "cars": "car", "sedan": "car", "suv": "car", "van": "car", "taxi": "car", "vehicle": "car",
    "vehicles": "car", "hatchback": "car", "truck": "truck", "trucks": "truck", "lorry": "truck", "pickup": "truck",
    "bus": "bus", "buses": "bus", "coach": "bus", "trailer": "trailer", "trailers": "trailer",
    "excavator": "construction_vehicle", "digger": "construction_vehicle", "bulldozer": "construction_vehicle",
    "motorcycle": "motorcycle", "motorcycles": "motorcycle", "motorbike": "motorcycle", "motorcyclist": "motorcycle",
    "scooter": "motorcycle", "bicycle": "bicycle", "bike": "bicycle", "bicycles": "bicycle", "cyclist": "bicycle",
    "cyclists": "bicycle", "biker": "bicycle", "pedestrian": "pedestrian", "pedestrians": "pedestrian",
    "person": "pedestrian", "people": "pedestrian", "man": "pedestrian", "woman": "pedestrian",
    "child": "pedestrian", "kid": "pedestrian", "walker": "pedestrian", "jaywalker": "pedestrian",
    "jogger": "pedestrian", "runner": "pedestrian", "boy": "pedestrian", "girl": "pedestrian",
    "schoolchild": "pedestrian", "children": "pedestrian", "kids": "pedestrian", "men": "pedestrian",
    "women": "pedestrian", "persons": "pedestrian", "joggers": "pedestrian", "minivan": "car", "coupe": "car",
    "jeep": "car", "limousine": "car", "convertible": "car", "vans": "car", "suvs": "car", "taxis": "car",
    "hgv": "truck", "semi": "truck", "tipper": "truck", "minibus": "bus", "moped": "motorcycle",
    "motorbikes": "motorcycle", "motorcyclists": "motorcycle", "scooters": "motorcycle", "bikes": "bicycle",
    "bicyclist": "bicycle", "bicyclists": "bicycle", "lorries": "truck", "coaches": "bus", "lady": "pedestrian",
    "ladies": "pedestrian", "student": "pedestrian", "students": "pedestrian", "pensioner": "pedestrian",
    "girls": "pedestrian", "boys": "pedestrian", "teenager": "pedestrian", "toddler": "pedestrian",
    "schoolchildren": "pedestrian", "crowd": "pedestrian", "passer-by": "pedestrian", "mother": "pedestrian",
    "e-bike": "bicycle", "e-bikes": "bicycle", "ebike": "bicycle", "pushbike": "bicycle", "tanker": "truck",
    "campervan": "car",
}  # fmt: skip
PHRASE_CLASSES = {
    "construction vehicle": "construction_vehicle",
    "delivery van": "car",
    "box truck": "truck",
    "dog walker": "pedestrian",
    "mountain bike": "bicycle",
    "racing bike": "bicycle",
    "18-wheeler": "truck",
    "eighteen-wheeler": "truck",
    "semi-truck": "truck",
    "tractor-trailer": "truck",
    "police car": "car",
    "camper van": "car",
    "cement mixer": "truck",
    "concrete mixer": "truck",
    "fire truck": "truck",
    "fire engine": "truck",
    "dump truck": "truck",
    "tow truck": "truck",
    "garbage truck": "truck",
    "bin lorry": "truck",
    "patrol car": "car",
    "cop car": "car",
    "work zone": "work_zone",
    "road works": "work_zone",
    "roadworks": "work_zone",
    "construction zone": "work_zone",
    "construction site": "work_zone",
    "traffic cones": "work_zone",
    "cones": "work_zone",
    "barriers": "work_zone",
}
COLORS = ("white", "black", "grey", "gray", "silver", "red", "blue", "green", "yellow", "orange", "brown")
# Behaviours: (pattern, name), tried in order; the first match in a clause wins.
BEHAVIOURS = [
    (
        r"\bmerges? (in |into traffic |onto the road )?(from|out of) (a|the) side (road|street)\b"
        r"|\bpulls? out (of|from) (a|the) side (road|street)\b|\bjoins? (the|our) road from\b"
        r"|\b(\w+ )?(out )?(from|out of) (a|the) (left |right )?side (road|street)\b"
        r"|\b(pulls?|comes?|emerges?) out of (a|the) junction\b",
        "merge",
    ),
    (
        r"\b(cuts?|cutting) in\b|\bcut-?in\b|\bswerves? in\b|\bmerges? in\b|\bsqueezes? in\b|\bslices? in"
        r"|\bveers? in|\bpulls? in (front|ahead)\b"
        r"|\b(veers?|swerves?|swings?|darts?)( suddenly| abruptly| sharply)? into (our|my|the ego's|the) lane\b"
        r"|\bcuts? (us|me) off\b|\bcutting (us|me) off\b|\bcut off by\b"
        r"|\b(swing|swerv|dart|div|jump|slip|slid|mov|pull|cut|merg|squeez|veer|com|chang|switch|shift|nos|barg"
        r"|forc|wobbl|drift|weav|creep|edg|sneak|nip|duck|lurch|steer|muscl|pop)[a-z]*\b(\s+[\w-]+){0,5}?\s+"
        r"(in front of (us|me|the ego)|into (our|my|the ego's) (lane|path)|into ours|across our bow)\b",
        "cut_in",
    ),
    (
        r"\bdash(es)? out\b|\bdarts? out\b|\b(runs?|running) out\b|\bjumps? out\b"
        r"|\b(runs?|running|chases?|chasing|goes|go) after (a|an|the|his|her|their) [a-z]+ (into|onto|across)\b"
        r"|\b(chases?|chasing) (a|an|the|his|her|their) [a-z]+ (out )?(into|onto|across)\b"
        r"|\b(appears?|emerges?|pops? out)( suddenly)? from (between|behind)\b|\bhurr(y|ies|ying) (into|onto)\b"
        r"|\bsuddenly (runs|steps|walks) into\b|\bdash\b"
        r"|\bbolts?\b|\b(darts?|sprints?|runs?|rushes?|races?|leaps?|jumps?|bursts?|steps?|dashes)( out)?"
        r" (into|across|onto|in front of)\b|\brushes? out\b|\bsteps? out\b"
        r"|\b(walks?|wanders?|comes?) out (from )?(behind|between)\b",
        "dash_out",
    ),
    (
        r"\bjaywalk|\bcross(es|ing)?\b|\bsteps? off the (kerb|curb)\b"
        r"|\b(walks?|goes|go|strolls?|hurr(y|ies)|wanders?) (over|across)\b|\bmakes? (his|her|their|its) way across\b",
        "cross",
    ),
    (r"\boncoming\b|\bthe opposite (direction|lane|way)\b|\bhead-?on\b|\bother side of the road\b", "oncoming"),
    (r"\bu[- ]?turns?\b|\bturns? (a)?round\b|\bturning (a)?round\b|\bturns? back\b", "u_turn"),
    (
        r"\bturns? left\b|\bturning left\b|\bleft turn\b|\b(hangs?|makes?|takes?) a left\b"
        r"|\btakes? the (next |first )?left\b|\b(goes|go|heads?|bears?) left (at|into|onto)\b",
        "turn_left",
    ),
    (
        r"\bturns? right\b|\bturning right\b|\bright turn\b|\b(hangs?|makes?|takes?) a right\b"
        r"|\btakes? the (next |first )?right\b|\b(goes|go|heads?|bears?) right (at|into|onto)\b",
        "turn_right",
    ),
    (
        r"\bovertak|\bpass(es|ing)? (us|the ego|me)\b|\bgoes around\b"
        r"|\b(zips?|zooms?|speeds?|races?|blows?|flies|shoots?|whizz(es)?|goes|gets?|weaves?|slips?|filters?"
        r"|squeezes?|nips?) past (us|me|the ego)\b",
        "overtake",
    ),
    (
        r"\bhard brak|\bbrakes? (hard|suddenly|abruptly|sharply)|\bslams? on the brakes|\bemergency (stop|brak)"
        r"|\bsudden(ly)? (stop|brak)|\bstops? (suddenly|abruptly)|\bbrakes\b|\bbraking\b|\bscreech"
        r"|\b(to a|comes to a) (halt|stop)\b|\bhalts?\b|\b(jams?|stamps?|stands?|hits?) on the brakes?\b"
        r"|\bstops? short\b|\bpanic[- ]brak|\bbrakes? (heavily|violently|sharply)\b|\bheavy braking\b",
        "hard_brake",
    ),
    (
        r"\bchanges? lanes?\b|\bchanging lanes?\b|\blane change\b|\bswitch(es)? lanes?\b"
        r"|\b(moves?|switch(es)?|shifts?|pulls?|goes|changes?|slides?|steers?|heads?|drifts?|veers?|wanders?|swings?"
        r"|merges?)( over| out| across)?"
        r" (in)?to the (left|right)( lane)?\b|\bpulls? out to the (left|right)\b",
        "change_lane",
    ),
    (
        r"\bbroken[- ]down\b|\bstalled\b|\bstopped\b|\bstops?\b|\bstationary\b|\bstanding still\b"
        r"|\bblocks? (the|our) lane\b|\bstands? still\b|\bsits? (in|ahead)\b|\bblock(s|ing)?\b|\bstuck\b"
        r"|\bstandstill\b|\bimmobile\b|\bnot moving\b|\bstands? (in|ahead)\b|\babandoned\b|\bdisabled\b"
        r"|\bmotionless\b|\bsits?\b(?! on (our|my) (tail|bumper))|\bhalted\b|\bstanding (in|ahead)\b",
        "stopped",
    ),
    (r"\bparked\b", "parked"),
    (
        r"\bcom(es|ing) towards?\b|\bapproach(es|ing)\b|\b(coming|comes|driving|drives|going|goes|travelling|heading"
        r"|heads) (in|from) the opposite direction\b"
        r"|\b((comes?|coming|goes|going|drives?|driving|heads?|heading) )?the other way\b|\bopposite lane\b"
        r"|\bother direction\b|\bcounterflow\b|\b(our|my) way\b"
        r"|\b((heading|heads?|coming|comes?|driving|drives?|moving|moves?|riding|rides?) )?towards (us|me)\b",
        "oncoming",
    ),
    (
        r"\bfollow(s|ing)?\b|\btailgat|\bbehind (us|me)\b|\btails?\b|\btailing\b|\bon our tail\b|\btrails?\b"
        r"|\b(we|i|the ego|our car)\b[\w' ]{0,20}\bfollowed by\b"  # not "a truck cuts in, followed by a bus"
        r"|\btrailing\b|\bsticks? to (our|my) (rear )?bumper\b|\bon (our|my) (rear )?bumper\b"
        r"|\b(sits?|sitting|stays?|staying) on (our|my) (tail|bumper)\b",
        "follow",
    ),
    (r"\baccelerat|\bspeeds? up\b", "accelerate"),
    (r"\bslows? down\b|\bdecelerat", "slow_down"),
    (r"\bwalk(s|ing)?\b|\bstroll", "walk"),
    (r"\bstand(s|ing)?\b|\bwait(s|ing)?\b", "stand"),
    (r"\bdriv(e|es|ing)\b|\brid(e|es|ing)\b|\bpedal|\bin front\b|\bmoving\b|\btravel|\bcruis", "drive"),
]
WEATHER_WORDS = {
    "rain": "rain",
    "rainy": "rain",
    "raining": "rain",
    "wet": "rain",
    "drizzle": "rain",
    "storm": "rain",
    "fog": "fog",
    "foggy": "fog",
    "mist": "fog",
    "misty": "fog",
    "haze": "fog",
    "hazy": "fog",
    "clear": "clear",
    "sunny": "clear",
    "dry": "clear",
    "downpour": "rain",
    "stormy": "rain",
    "showers": "rain",
    "thunderstorm": "rain",
    "pouring": "rain",
}
TIME_WORDS = {
    "night": "night",
    "nighttime": "night",
    "dark": "night",
    "midnight": "night",
    "dusk": "dusk",
    "sunset": "dusk",
    "evening": "dusk",
    "twilight": "dusk",
    "dawn": "dusk",
    "day": "day",
    "daytime": "day",
    "morning": "day",
    "noon": "day",
    "afternoon": "day",
    "daylight": "day",
    "sundown": "dusk",
    "nightfall": "dusk",
    "sunrise": "dusk",
}
# The ego as the subject of a lane change: "we move over to the left lane", "the ego vehicle changes to the right".
EGO_LANE_CHANGE = (
    r"^(?:\S+\s+){0,3}?(?P<subject>we|i|our car|our vehicle|my car|the ego car|the ego vehicle|the ego|ego)\s+"
    r"(?:\w+\s+){0,3}?(?:changes?|changing|switch(?:es)?|moves?|moving|pulls?|shifts?|slides?|goes|go|merges?)\b"
    r"(?:(?!\bturn).)*?\b(?P<side>left|right)\b|^ego lane change to the (?P<to>left|right)\b"
)
# The ego as a clause's subject, and the ego stopping: "we stop at the lights", "the ego vehicle comes to a halt".
SUBJECT = r"(?:\bwe\b|\bi\b|\bour (?:car|vehicle)\b|\bmy (?:car|vehicle)\b|\bthe ego(?: car| vehicle)?\b|\bego\b)"
EGO_STOP = re.compile(
    SUBJECT + r"\W+(?:\w+\W+){0,2}?(?:stop|stops|halt|halts|wait|waits|come to a (?:stop|halt)|comes to a (?:stop|halt)"
    r"|pull up|pulls up|brake to a stop|brakes to a stop)\b"
)
# A road with nobody else on it: "an empty road", "no other traffic", "nobody around".
EMPTY = (
    r"\bno (?:other )?(?:traffic|cars|vehicles|one|road users|other cars|other vehicles)(?: else)?(?: around)?\b"
    r"|\bnobody(?: else)?(?: around)?\b|\bno-one(?: else)?(?: around)?\b|\bempty\b|\bdeserted\b|\balone\b"
    r"|\bnothing(?: else)?(?: is)? (?:happening|going on)\b"
    r"|\bon (?:our|my) own\b"
)
# Speed units and their factors to m/s; SPEED_UNITS matches any of them, the longest first.
SPEED_FACTORS = {
    **dict.fromkeys(("km/h", "kmh", "kph", "kmph", "km an hour", "km per hour", "kilometres per hour",
                     "kilometers per hour"), 1 / 3.6),
    **dict.fromkeys(("mph", "miles per hour"), 0.44704),
    "m/s": 1.0,
}  # fmt: skip
SPEED_UNITS = "|".join(sorted(SPEED_FACTORS, key=len, reverse=True))
ABOUT = r"(?:\s+(?:about|around|roughly|approximately|approx|nearly|almost|a steady|a constant|some))?"
# The ego's own speed said of the ego: "we are doing 70 km/h", "while I drive at 50 mph", "at 15 m/s we ...".
SPEED = ABOUT + r"\s+\d+(?:\.\d+)?\s*(?:" + SPEED_UNITS + r")\b"  # " about 50 km/h"
EGO_SPEED = (
    SUBJECT + r"\s+(?:are\s+|am\s+|is\s+)?(?:doing|driving|going|travelling|traveling|cruising|moving|drive"
    r"|drives|go|goes|travel|travels|cruise|cruises)?(?:\s+at)?"
    + SPEED
    + r"|^(?:at|doing|going)(?: a speed of)?"
    + SPEED
    + r",?\s*(?="
    + SUBJECT
    + ")"
)
# What a person dashes out from behind: "behind a parked bus", "between two parked vans".
COVER_CLASSES = ("car", "truck", "bus", "trailer", "construction_vehicle")
COVER = (
    r"\b(?:behind|between) (?:[a-z]+ ){0,3}?("
    + "|".join(sorted((w for w, k in CLASS_WORDS.items() if k in COVER_CLASSES), key=len, reverse=True))
    + r")\b"
)
# The least speed an emergency stop starts from when the prompt gives none (m/s): slower, a hard brake is over
# within one key-frame interval and the dataset's boxes do not show it.
HARD_BRAKE_FROM = 8.0
# Words that carry no scenario meaning of their own.
FILLER = set(
    """
a an the and then while when as with of in on at to from into onto by for its it their our we us me my ego i is are
be being there this that which who just so very quite really suddenly slowly quickly fast slow city street road
lane lanes scene scenario video clip drive driving car's road's time weather during under heavy light busy through
ahead front behind side left right meters metres meter metre m km/h kmh mph m/s per hour second seconds s long
after before about around near close far next other another same abruptly sudden makes make does do lead
leading between traffic into onto out up down across over our there's here sides way sidewalk sidewalks
pavement curb kerb roadside shoulder edge intersection junction crossroads corner lights
sharply sharp thick dense old young elderly little small big large performs perform doing done past guy someone
somebody driver drivers get gets getting got crosswalk zebra closely tight tightly dangerously aggressively
aggressive reckless careless impatient speeding unexpectedly without warning sudden there's it's
dead hard quick rapid rapidly hurriedly also here some be been has have had having now briefly let lets allow
allows just chasing chases ball football going along show generate create render simulate need want please
give produce where signalling signaling indicating indicator pram stroller pushchair buggy umbrella bag backpack
phone quiet happening calm peaceful hazards hazard warning foot group his her their meet meets encounter
encounters see sees spot spots ordinary normal regular typical usual articulated being nowhere which both all alongside
approximately roughly approx steady constant
what if imagine suppose speed looking rider riders courier delivery
""".split()
)


class TranslationError(DreamdriveError):
    """The prompt could not be turned into a scenario; the message names what could not be placed."""


@dataclass
class Clause:
    """One actor group and what it does."""

    kind: str  # a vehicle class, "pedestrian" or "work_zone"
    count: int = 1
    behaviour: str = "drive"
    color: str | None = None
    side: str | None = None  # left or right
    ahead: float | None = None
    speed: float | None = None  # m/s
    words: list[str] = field(default_factory=list)
    then: list[str] = field(default_factory=list)  # behaviours that follow ("... and then brakes hard")
    told: bool = True  # whether the clause said what the actor does (else it drives, or a pedestrian stands)


def stated_speed(text: str) -> tuple[float | None, str]:
    """The first speed in `text` in m/s, and the text without it."""
    match = re.search(rf"(\d+(?:\.\d+)?)\s*({SPEED_UNITS})\b", text)
    if not match:
        return None, text
    return float(match.group(1)) * SPEED_FACTORS[match.group(2)], text[: match.start()] + text[match.end() :]


def _distance(text: str) -> tuple[float | None, str]:
    match = re.search(r"(\d+(?:\.\d+)?)\s*(m|meters?|metres?)\b(\s+(ahead|in front|behind|back))?", text)
    if not match:
        return None, text
    value = float(match.group(1))
    if match.group(4) in ("behind", "back"):
        value = -value
    return value, text[: match.start()] + text[match.end() :]


CONTRACTIONS = {r"\bwe're\b": "we are", r"\bi'm\b": "i am", r"\bit's\b": "it is", r"\bthere's\b": "there is",
                r"\bthat's\b": "that is", r"\bwe've\b": "we have", r"\bwe'll\b": "we will",
                r"\b([a-z]+)'s (\w+ing|being|parked|stopped|stationary)\b": r"\1 is \2"}  # fmt: skip


# A person on a bicycle or motorcycle is the rider's vehicle: "a man on a bike" is a cyclist, "a courier on a
# moped" a motorcycle.
RIDER = (
    r"\b(?:[a-z]+ )?(?:man|woman|guy|boy|girl|kid|child|person|rider|courier|teenager|someone|lady|men|women|people)"
    r" on (?:a|an|the|his|her|their) (?=(?:[a-z-]+ )?(?:bicycles?|bikes?|e-bikes?|motorcycles?|motorbikes?|mopeds?"
    r"|scooters?)\b)"
)


# The shade of a colour ("a dark blue car"), and "dark" said of a vehicle's paint ("a dark car"), not the night.
SHADE = re.compile(
    rf"\b(?:dark|light|bright|pale|deep|metallic)[ -](?=(?:{'|'.join(COLORS)})\b)"
    rf"|\bdark (?=(?:{'|'.join(CLASS_WORDS)})\b)"
)


def plain(text: str) -> str:
    """`text` as the parser and the verifier read it: each person on a two-wheeler named by the two-wheeler ("a
    man on a bike" -> "a bike"), and no shades ("a dark blue car" is blue; "a dark car" is not by night)."""
    return re.sub(RIDER, "", SHADE.sub("", text))


def colours(text: str) -> list[str]:
    """The colours `text` names, in the order it names them ("gray" as "grey"; traffic lights are not colours)."""
    text = re.sub(r"\b(?:red|green|amber|yellow) (?:traffic )?lights?\b", "lights", text)
    named = sorted((m.start(), c) for c in COLORS for m in re.finditer(rf"\b{c}\b", text))
    return list(dict.fromkeys("grey" if c == "gray" else c for _, c in named))


def split_clauses(prompt: str) -> list[str]:
    text = plain(prompt.lower().strip())
    text = re.sub(r"[\u2018\u2019]", "'", text)
    for short, long in CONTRACTIONS.items():  # "we're overtaken", "a van's following us"
        text = re.sub(short, long, text)
    text = re.sub(r"\b(left|right)-hand\b", r"\1", text)
    ours = r"\b(in front of|ahead of) (?:the|our|my) (?:car|vehicle)\b(?!\s+(?:ahead|in front|behind))"
    text = re.sub(ours, r"\1 us", text)  # "jumps out in front of the car": the ego's car
    text = re.sub(r"(^|[.,;!?]\s*|\b(?:and|then) )(?=(?:change|switch|move|pull|merge|turn|take|make|stop)\b)",
                  r"\1we ", text)  # fmt: skip
    text = re.sub(r"\b(left|right)-(lane|side)\b", r"\1 \2", text)
    text = re.sub(r"[!?;]", ".", text)
    parts = re.split(r"\.\s*|,\s*(?:and\s+|then\s+|while\s+)?|\s+(?:and then|then|while|and|as|when)\s+", text)
    return [p.strip(" ,.") for p in parts if p and p.strip(" ,.")]


def parse(prompt: str) -> tuple[list[Clause], dict]:
    """Clauses and scene settings (weather, time_of_day, ego_speed, duration) of a prompt."""
    if not isinstance(prompt, str) or not prompt.strip():
        raise TranslationError("the prompt is empty; describe the scenario, e.g. 'a truck cuts in on a rainy night'.")
    if len(prompt) > 2000:
        raise TranslationError("the prompt is longer than 2000 characters; describe one scenario at a time.")
    settings: dict = {}
    clauses: list[Clause] = []
    unplaced: list[str] = []
    crash = r"\b(crash(es|ing)?|collid(e|es|ing)|collision|hits?|rear-?ends?|smash(es)? into)\b"
    if re.search(crash, prompt.lower()):
        settings["crash"] = True  # the ego drives on regardless, so the crash asked for happens
    for part in split_clauses(prompt):
        part = re.sub(crash, " ", part)
        if doing := re.search(EGO_SPEED, part):  # "while we are doing 70 km/h"
            settings["ego_speed"] = stated_speed(doing.group(0))[0]
            part = (part[: doing.start()] + " " + part[doing.end() :]).strip()
        if re.search(EMPTY, part):
            settings["empty"] = True  # no actor but the ego, unless other clauses add some
            part = re.sub(EMPTY, " ", part)
        stop = EGO_STOP.search(part)
        if stop and not any(re.search(rf"\b{word}\b", part[: stop.start()]) for word in CLASS_WORDS):
            settings["ego_stop"] = True  # "we stop at the lights"; "we stop to let a child cross" goes on
            _ego_settings(part, settings)
            part = part[stop.end() :]
            if not any(re.search(rf"\b{word}\b", part) for word in CLASS_WORDS):
                continue
        turn = next((name for pattern, name in BEHAVIOURS if name in TURNS and re.search(pattern, part)), None)
        if (
            turn
            and re.search(r"\b(we|ego|i|our car|the ego car)\b", part)
            and not any(re.search(rf"\b{word}\b", part) for word in CLASS_WORDS if word not in ("car", "vehicle"))
        ):
            settings["ego_turn"] = turn  # "we turn left at the junction"
            _ego_settings(part, settings)
            continue
        lane_change = re.search(EGO_LANE_CHANGE, part)
        before = part[: lane_change.start("subject")] if lane_change and lane_change.group("subject") else ""
        if lane_change and not any(re.search(rf"\b{word}\b", before) for word in CLASS_WORDS):
            settings["ego_lane"] = lane_change.group("side") or lane_change.group("to")  # "we move over to the left"
            _ego_settings(part, settings)
            continue
        ego_clause = re.search(r"\b(we|ego|i|our car|the ego car)\b.*\b(driv|going|travel|at)\b", part)
        speed, rest = stated_speed(part)
        distance, rest = _distance(rest)
        for word, value in WEATHER_WORDS.items():
            if re.search(rf"\b{word}\b", rest):
                settings["weather"] = value
                rest = re.sub(rf"\b{word}\b", " ", rest)
        for word, value in TIME_WORDS.items():
            if re.search(rf"\b{word}\b", rest):
                settings["time_of_day"] = value
                rest = re.sub(rf"\b{word}\b", " ", rest)
        duration = re.search(
            r"\bfor (\d+)\s*(s|sec|secs|seconds)\b|\b(\d+)[- ](s|sec|second)[- ](long|clip|scenario)\b", rest
        )
        if duration:
            settings["duration"] = float(duration.group(1) or duration.group(3))
            rest = rest[: duration.start()] + rest[duration.end() :]
        kind = None
        for phrase, value in PHRASE_CLASSES.items():
            if phrase in rest:
                kind = kind or value
                rest = rest.replace(phrase, " ")
        words = re.findall(r"[a-z\-']+|\d+", rest)
        count = 1
        color = None
        # the vehicle a person dashes out from behind is the cover, not the actor: its class, colour and count
        # ("steps out from between two parked vans") are not the person's
        actor_part = re.sub(COVER, " ", rest) if clause_behaviour(rest) == "dash_out" else rest
        for word in re.findall(r"[a-z\-']+|\d+", actor_part):
            if kind is None and word in CLASS_WORDS:
                kind = CLASS_WORDS[word]
            if word in COLORS:
                color = "grey" if word == "gray" else word
            if word in WORD_NUMBERS and word not in ("a", "an"):
                count = WORD_NUMBERS[word]
            if word.isdigit() and int(word) <= 5:
                count = int(word)
        behaviour = clause_behaviour(rest, kind)
        if kind is None and not clauses and behaviour is None and speed is not None:
            ego_clause = True  # "drive at 40 km/h"
        if kind is not None and kind != "pedestrian" and behaviour == "stand":
            behaviour = "stopped"  # "a car waits in our lane"
        if kind is None and behaviour == "drive" and not re.search(r"\b(in front|ahead|another|other)\b", rest):
            ego_clause = True  # "just cruising at 50 km/h": the ego's own driving
        if ego_clause and kind is None:
            if speed is not None:
                settings["ego_speed"] = speed
            continue
        if kind is None and behaviour is None and clauses and (distance is not None or speed is not None):
            # "..., 30 m ahead" or "..., at 50 km/h": more about the previous actor
            clauses[-1].ahead = distance if distance is not None else clauses[-1].ahead
            clauses[-1].speed = speed if speed is not None else clauses[-1].speed
            unplaced += words_left(words)
            continue
        if kind is None and clauses and not clauses[-1].told and behaviour not in (None, "drive", "walk", "stand"):
            # "black sedan, cut-in", "a pedestrian steps off the kerb and crosses": the previous actor's behaviour
            previous = clauses[-1]
            previous.behaviour, previous.told = clause_behaviour(rest, previous.kind), True
            previous.side = previous.side or _side_of(rest)
            continue
        if kind is None and clauses and behaviour is None and not words_left(words) and (side := _side_of(rest)):
            clauses[-1].side = clauses[-1].side or side  # "..., left": the previous actor's side
            continue
        if kind is None and clauses and clauses[-1].behaviour == "follow" and behaviour == "overtake":
            clauses[-1].behaviour = "overtake"  # "a truck follows us and then overtakes": the follower passes
            clauses[-1].side = _side_of(rest) or clauses[-1].side
            continue
        if (
            kind is None
            and clauses
            and not ego_clause
            and behaviour in ("hard_brake", "stopped", "change_lane", "slow_down", "accelerate")
        ):
            clauses[-1].then.append(behaviour)  # "and then brakes hard": the same actor goes on
            continue
        if kind is None:
            if behaviour is None:
                unplaced += words_left(words)
                continue
            kind = "pedestrian" if behaviour in ("dash_out", "cross", "walk", "stand") else "car"
        side = _side_of(rest)
        if distance is None and re.search(r"\bbehind\b", rest) and behaviour != "dash_out":
            distance = -15.0
        clause = Clause(
            kind,
            count,
            behaviour or ("stand" if kind == "pedestrian" else "drive"),
            color,
            side,
            distance,
            speed,
            words,
            told=behaviour not in (None, "drive"),
        )
        known = set(CLASS_WORDS) | set(COLORS) | set(WORD_NUMBERS) | FILLER | set(WEATHER_WORDS) | set(TIME_WORDS)
        leftovers = [w for w in words if w not in known and not w.isdigit() and w not in _behaviour_words(rest)]
        unplaced += leftovers
        clauses.append(clause)
    if unplaced:
        raise TranslationError(
            f"could not place {', '.join(repr(w) for w in dict.fromkeys(unplaced))} in the scenario vocabulary "
            "(actors: cars, trucks, buses, trailers, construction vehicles, motorcycles, cyclists, pedestrians, "
            "work zones; behaviours: cut in, change lanes, overtake, brake, stop, oncoming, follow, turn left or "
            "right, U-turn, merge from a side road, cross, dash out; weather and time of day)."
        )
    if not clauses and not settings:
        raise TranslationError(f"nothing in {prompt!r} describes actors, behaviours, weather or time of day.")
    return clauses, settings


def _ego_settings(part: str, settings: dict) -> None:
    """The speed, weather and time of day of a clause about the ego's own manoeuvre ("... on a rainy night")."""
    speed, _ = stated_speed(part)
    if speed is not None:
        settings["ego_speed"] = speed
    for words, key in ((WEATHER_WORDS, "weather"), (TIME_WORDS, "time_of_day")):
        value = next((v for w, v in words.items() if re.search(rf"\b{w}\b", part)), None)
        if value is not None:
            settings[key] = value


def clause_behaviour(clause: str, kind: str | None = None) -> str | None:
    """The behaviour a clause names (the first of BEHAVIOURS to match), for an actor of class `kind`: a person who
    "darts in front of us" dashes out."""
    behaviour = next((name for pattern, name in BEHAVIOURS if re.search(pattern, clause)), None)
    if behaviour == "cut_in" and kind is None and re.search(r"\b(jump|leap|run|ran|sprint|dash|step|walk)", clause):
        return "dash_out"  # "someone jumps out in front of us": on foot
    return "dash_out" if kind == "pedestrian" and behaviour == "cut_in" else behaviour


def clause_class(clause: str) -> str | None:
    """The first actor class a clause names."""
    return next((CLASS_WORDS[w] for w in re.findall(r"[a-z\-']+", clause) if w in CLASS_WORDS), None)


def _side_of(text: str) -> str | None:
    if across := re.search(r"\bfrom (?:the )?(left|right) to (?:the )?(?:left|right)\b", text):
        return across.group(1)  # "walks across from right to left": the side it starts on
    sided = re.sub(r"\bright (in front|ahead|behind|next|there|away)\b", " ", text)  # "right" as in "just"
    return "left" if re.search(r"\bleft\b", sided) else ("right" if re.search(r"\bright\b", sided) else None)


def words_left(words: list[str]) -> list[str]:
    """The words of a clause that carry meaning of their own."""
    return [w for w in words if w not in FILLER and w not in WORD_NUMBERS and not w.isdigit()]


def _behaviour_words(clause: str) -> set[str]:
    """The whole words that behaviour phrases in the clause touch ("overtak" covers "overtakes")."""
    covered: set[str] = set()
    for pattern, _ in BEHAVIOURS:
        for match in re.finditer(pattern, clause):
            start, end = match.span()
            while start > 0 and clause[start - 1].isalpha():
                start -= 1
            while end < len(clause) and (clause[end].isalpha() or clause[end] in "-'"):
                end += 1
            covered.update(re.findall(r"[a-z\-']+", clause[start:end]))
    return covered


def to_script(clauses: list[Clause], settings: dict) -> str:
    """The scenario script for parsed clauses (deterministic: same clauses, same text)."""
    reactive = ", reactive=False" if settings.get("crash") else ""
    ego_turn, ego_lane, ego_stop = settings.get("ego_turn"), settings.get("ego_lane"), settings.get("ego_stop")
    named = "me = " if ego_turn or ego_lane or ego_stop else ""
    lines = [f"{named}ego(speed={settings.get('ego_speed', 10.0):.2f}{reactive})"]
    if ego_lane:
        lines.append(f"me.change_lane({ego_lane!r}, at=1.0)")
    if ego_stop and not ego_turn:
        lines.append("me.stop(at=1.0)")
    turners = [c for c in clauses if c.behaviour in TURNS or c.behaviour == "merge"]
    if ego_turn or turners:  # the junction lies beyond every turning actor's start
        furthest = max([12.0 * (c.count - 1) + (c.ahead or 12.0) for c in turners if c.behaviour != "merge"] + [0.0])
        lines.append(f"junction(ahead={max(45.0, furthest + 35.0):.1f})")
    if ego_turn:
        lines.append(f"me.{ego_turn}()")
    if "duration" in settings:
        lines.append(f"set_duration({settings['duration']:.1f})")
    elif ego_turn or turners or any(c.kind == "pedestrian" and c.side == "left" and c.behaviour == "cross"
                                    for c in clauses):  # fmt: skip
        lines.append("set_duration(12.0)")  # long enough to drive through the junction, or to cross from the left
    for n, clause in enumerate(clauses):
        for k in range(clause.count):
            name = f"{clause.kind.split('_')[0]}{n + 1}_{k + 1}"
            lines += _actor_lines(clause, name, k, settings.get("ego_speed", 10.0), bool(ego_stop))
            for step, follow_up in enumerate(clause.then):
                at = 4.0 + 2.0 * step + k
                lines.append(FOLLOW_UPS[follow_up].format(name=name, at=at))
    if "weather" in settings:
        lines.append(f"set_weather({settings['weather']!r})")
    if "time_of_day" in settings:
        lines.append(f"set_time_of_day({settings['time_of_day']!r})")
    lines.append("save()")
    return "\n".join(lines) + "\n"


def _actor_lines(clause: Clause, name: str, k: int, ego_speed: float, ego_stops: bool = False) -> list[str]:
    spacing = 12.0 * k
    color = f", color={clause.color!r}" if clause.color and clause.kind not in ("pedestrian", "bicycle") else ""
    speed = clause.speed
    b = clause.behaviour
    if clause.kind == "work_zone":
        ahead, lane = (clause.ahead or 45.0) + spacing, clause.side or "right"
        lines = [f"{name} = work_zone(ahead={ahead:.1f}, lane={lane!r})"]
        if any(CLASS_WORDS.get(w) == "construction_vehicle" for w in clause.words):  # "roadworks with a digger"
            digger = f"digger{name} = vehicle('construction_vehicle', lane={lane!r}, ahead={ahead + 30.0:.1f}, speed=0)"
            lines.append(digger)  # at the closure's far end, beyond its barriers
        return lines
    if clause.kind == "pedestrian":
        side = clause.side or "right"
        ahead = (clause.ahead or 30.0) + spacing * 0.3
        farther = abs(sidewalk_y(side)) - abs(sidewalk_y("right"))  # the left sidewalk is across the road
        if b == "dash_out" and clause.ahead is None:
            # timed so the person reaches the ego's lane about 14 m ahead of it (the dash takes about 2 s from
            # the right, at 3 m/s)
            ahead = ego_speed * (1.0 + k + 2.0 + farther / 3.0) + 14.0
        if b == "cross" and clause.ahead is None:
            # a crossing the cameras see: the person reaches the ego's lane (6.75 m from the curb at 1.4 m/s,
            # about 4.8 s, from the right) about 14 m ahead of the ego, not after it has passed
            ahead = ego_speed * (0.5 + k + 4.8 + farther / 1.4) + 14.0
            if ego_stops:  # in front of the ego, which stops from 1 s on
                ahead = 3.0 * ego_speed + 8.0 + 2.0 * k
        if b == "dash_out":
            named = re.search(COVER, " ".join(clause.words))  # "from behind a parked bus": what hides the person
            cover = CLASS_WORDS[named.group(1)] if named else "car"
            tint = "".join(f", color={c!r}" for c in colours(named.group(0) if named else "")[:1])
            return [
                f"cover{name} = parked_vehicle({cover!r}, side={side!r}, ahead={ahead - 3:.1f}{tint})",
                f"{name} = pedestrian(side={side!r}, ahead={ahead:.1f})",
                f"{name}.dash_out(at={1.0 + k:.1f})",
            ]
        if b == "cross":
            return [f"{name} = pedestrian(side={side!r}, ahead={ahead:.1f})", f"{name}.cross(at={0.5 + k:.1f})"]
        if b == "walk":
            return [f"{name} = pedestrian(side={side!r}, ahead={ahead:.1f})", f"{name}.walk(speed=1.4)"]
        return [f"{name} = pedestrian(side={side!r}, ahead={ahead:.1f})", f"{name}.stand()"]
    riding = b in ("drive", "walk", "stand", None)  # a rider who just rides: at the right edge of the road
    if (clause.kind == "bicycle" and riding) or (clause.kind == "motorcycle" and riding and clause.side != "left"):
        motor = clause.kind == "motorcycle"
        default = 12.0 if motor else 5.0
        return [
            f"{name} = cyclist(ahead={(clause.ahead or 15.0) + spacing:.1f}, speed={speed or default:.2f}, "
            f"motor={motor})"
        ]
    kind = clause.kind
    if b == "merge":  # from the side road into our direction, a few seconds after the start
        return [
            f"{name} = side_road_vehicle({kind!r}, side={clause.side or 'right'!r}, distance={15.0 + spacing:.1f}"
            f"{_speed_arg(speed)}{color})",
            f"{name}.merge()",
        ]
    if b in TURNS:  # left turns from the left lane, right turns from the right one, U-turns from ours (room)
        lane = {"turn_left": "left", "turn_right": "right", "u_turn": "ego"}[b]
        if b == "u_turn" and kind in ("truck", "construction_vehicle"):
            lane = "right"  # long vehicles need the widest circle
        return [
            f"{name} = vehicle({kind!r}, lane={lane!r}, ahead={(clause.ahead or 12.0) + spacing:.1f}"
            f"{_speed_arg(speed)}{color})",
            f"{name}.{b}()",
        ]
    if b == "cut_in":
        side = clause.side or "left"
        return [
            f"{name} = vehicle({kind!r}, lane={side!r}, ahead={(clause.ahead or 6.0) + spacing:.1f}, "
            f"speed={speed or min(ego_speed + 2.0, TOP_SPEED[kind]):.2f}{color})",
            f"{name}.cut_in(at={1.0 + 2 * k:.1f})",
        ]
    if b == "overtake" and clause.side == "right":  # passes us in the lane on our right, faster than us
        return [
            f"{name} = vehicle({kind!r}, lane='right', ahead={(clause.ahead or -15.0) - spacing:.1f}, "
            f"speed={speed or min(ego_speed + 6.0, TOP_SPEED[kind]):.2f}{color})",
            f"{name}.keep_speed()",
        ]
    if b == "overtake":
        return [
            f"{name} = vehicle({kind!r}, lane='ego', ahead={(clause.ahead or -15.0) - spacing:.1f}, "
            f"speed={speed or min(ego_speed + 3.0, TOP_SPEED[kind]):.2f}{color})",
            f"{name}.overtake(at={0.5 + 2 * k:.1f})",
        ]
    if b == "hard_brake":  # from at least HARD_BRAKE_FROM unless told: a stop from a crawl is over between key frames
        speed = speed if speed is not None else (None if ego_speed >= HARD_BRAKE_FROM else HARD_BRAKE_FROM)
        return [
            # 2.5 s ahead of the ego at least: closer, the ego's car-following brakes from the start, below the
            # speed the prompt gives it
            f"{name} = vehicle({kind!r}, lane={clause.side or 'ego'!r}, "
            f"ahead={(clause.ahead or max(25.0, 2.5 * ego_speed)) + spacing:.1f}{_speed_arg(speed)}{color})",
            f"{name}.hard_brake(at={2.0 + k:.1f})",
        ]
    if b == "change_lane":
        side = clause.side or "left"
        start = "ego" if side == "left" else "ego"
        return [
            f"{name} = vehicle({kind!r}, lane={start!r}, ahead={(clause.ahead or 25.0) + spacing:.1f}"
            f"{_speed_arg(speed)}{color})",
            f"{name}.change_lane({side!r}, at={1.5 + k:.1f})",
        ]
    if b in ("stopped", "parked"):
        if b == "parked":
            return [
                f"{name} = parked_vehicle({kind!r}, side={clause.side or 'right'!r}, "
                f"ahead={(clause.ahead or 30.0) + spacing:.1f}{color})"
            ]
        return [
            f"{name} = vehicle({kind!r}, lane={clause.side or 'ego'!r}, ahead={(clause.ahead or 45.0) + spacing:.1f}, "
            f"speed=0{color})"
        ]
    if b == "oncoming":
        return [
            f"{name} = vehicle({kind!r}, lane='oncoming', ahead={(clause.ahead or 70.0) + spacing:.1f}, "
            f"speed={speed or 10.0:.2f}{color})"
        ]
    if b == "follow":
        return [
            f"{name} = vehicle({kind!r}, lane='ego', ahead={(clause.ahead or -14.0) - spacing:.1f}"
            f"{_speed_arg(speed)}{color})"
        ]
    if b == "accelerate":
        return [
            f"{name} = vehicle({kind!r}, lane={clause.side or 'left'!r}, ahead={(clause.ahead or 10.0) + spacing:.1f}"
            f"{_speed_arg(speed)}{color})",
            f"{name}.accelerate(to={min(30.0, (speed or 10.0) + 8):.2f}, at=1.0)",
        ]
    if b == "slow_down":
        return [
            f"{name} = vehicle({kind!r}, lane={clause.side or 'ego'!r}, ahead={(clause.ahead or 25.0) + spacing:.1f}"
            f"{_speed_arg(speed)}{color})",
            f"{name}.brake(to=3.0, at=1.5)",
        ]
    lane = clause.side or "left"
    return [
        f"{name} = vehicle({kind!r}, lane={lane!r}, ahead={(clause.ahead or 20.0) + spacing:.1f}"
        f"{_speed_arg(speed)}{color})",
        f"{name}.keep_speed()",
    ]


TURNS = ("turn_left", "turn_right", "u_turn")
FOLLOW_UPS = {
    "hard_brake": "{name}.hard_brake(at={at:.1f})",
    "stopped": "{name}.stop(at={at:.1f})",
    "slow_down": "{name}.brake(to=3.0, at={at:.1f})",
    "accelerate": "{name}.accelerate(to=20.0, at={at:.1f})",
    "change_lane": "{name}.change_lane('left', at={at:.1f})",
}


def _speed_arg(speed: float | None) -> str:
    return "" if speed is None else f", speed={speed:.2f}"


def parse_script(prompt: str) -> str:
    """The parser's script for `prompt`, or TranslationError naming what it could not place (no retrieval:
    `offline.translate_offline` adds it)."""
    clauses, settings = parse(prompt)
    return to_script(clauses, settings)
