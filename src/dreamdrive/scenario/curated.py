"""The curated Text-to-Script pairs: canonical prompts over the whole library, and paraphrases.

Canonical prompts are composed from templates (every behaviour, class, colour,
side, weather and time of day, and their combinations); their scripts come from
the offline parser, so every pair runs. Paraphrases are written by hand with
words the parser does not know ("a sedan veers into our lane") and point at the
canonical prompt they mean; the offline translator finds them by retrieval, and
fine-tuning learns from them. `export_jsonl` writes the chat format.
"""

from __future__ import annotations

import json
from functools import lru_cache
from itertools import product
from pathlib import Path

from dreamdrive.files import atomic_write
from dreamdrive.scenario.translate import parse_script

SYSTEM_PROMPT = (
    "You write driving scenario scripts in Python for the dreamdrive trajectory library. Use only these "
    "functions: ego, vehicle, side_road_vehicle, parked_vehicle, pedestrian, cyclist, work_zone, junction, "
    "set_duration, set_weather, set_time_of_day, save; and the actors' methods keep_speed, accelerate, brake, "
    "hard_brake, stop, change_lane, cut_in, overtake, turn_left, turn_right, u_turn, merge, walk, cross, dash_out, "
    "stand. Always call ego() first and save() last. Reply with the script only."
)

BEHAVIOUR_TEMPLATES = {
    "cut_in": ["a {color}{kind} cuts in from the {side}", "a {color}{kind} merges in front of us from the {side}"],
    "hard_brake": ["the {color}{kind} ahead brakes hard", "the {color}{kind} in front slams on the brakes"],
    "overtake": ["a {color}{kind} overtakes us"],
    "oncoming": ["an oncoming {color}{kind}"],
    "stopped": ["a stopped {color}{kind} blocks our lane"],
    "follow": ["a {color}{kind} follows us"],
    "change_lane": ["the {color}{kind} ahead changes lanes to the {side}"],
    "parked": ["a parked {color}{kind} on the {side}"],
    "accelerate": ["a {color}{kind} on the {side} accelerates"],
    "slow_down": ["the {color}{kind} ahead slows down"],
    "drive": ["a {color}{kind} drives on the {side}"],
    "turn_left": ["the {color}{kind} ahead turns left at the intersection"],
    "turn_right": ["the {color}{kind} ahead turns right at the junction"],
    "u_turn": ["the {color}{kind} ahead makes a u-turn"],
    "merge": ["a {color}{kind} merges from the side road on the {side}"],
}
PEDESTRIAN_TEMPLATES = [
    "a pedestrian crosses the road",
    "a pedestrian dashes out from behind a parked car",
    "two pedestrians cross the street",
    "a child runs out into the road",
    "a pedestrian walks on the {side} sidewalk",
    "a person stands on the {side}",
]
OTHER_TEMPLATES = [
    "a work zone ahead on the {side}",
    "a cyclist on the right",
    "a motorcyclist rides ahead",
    "traffic cones ahead",
    "we turn left at the intersection",
    "we turn right at the junction",
    "we make a u-turn at the intersection",
]
SETTINGS = [
    "",
    " on a rainy night",
    " in the fog",
    " at dusk",
    " at night",
    " in the rain",
    " on a sunny day",
    " for 12 seconds",
    ", a 15-second clip",
]
FOLLOW_UPS = [", and then stops", ", and then brakes hard", ", and then changes lanes"]

# Paraphrases in words the parser does not know, with the canonical prompt each means.
PARAPHRASES = {
    "a sedan veers into our lane": "a car cuts in from the left",
    "a car abruptly swings into our lane from the left": "a car cuts in from the left",
    "some vehicle shoves its way in ahead of us": "a car cuts in from the left",
    "a truck barges into our lane from the right": "a truck cuts in from the right",
    "a lorry forces its way in front of us": "a truck cuts in from the left",
    "a bus nudges into our lane": "a bus cuts in from the left",
    "a van dives in front of us from the right lane": "a car cuts in from the right",
    "a motorbike weaves into our lane": "a motorcycle cuts in from the left",
    "the lead car jams on its brakes": "the car ahead brakes hard",
    "the vehicle in front stomps on the brakes": "the car ahead brakes hard",
    "the truck ahead screeches to a halt": "the truck ahead brakes hard",
    "the bus in front halts abruptly": "the bus ahead brakes hard",
    "the car ahead of us decelerates violently": "the car ahead brakes hard",
    "a kid bolts into the street": "a child runs out into the road",
    "a pedestrian sprints into the road from between parked cars": "a pedestrian dashes out from behind a parked car",
    "a person rushes out onto the carriageway": "a pedestrian dashes out from behind a parked car",
    "someone steps off the curb right in front of us": "a pedestrian dashes out from behind a parked car",
    "a toddler wanders into the roadway": "a child runs out into the road",
    "a pedestrian strolls over the zebra crossing": "a pedestrian crosses the road",
    "people make their way over the street": "two pedestrians cross the street",
    "a man ambles across the carriageway": "a pedestrian crosses the road",
    "a car zooms past us on the left": "a car overtakes us",
    "a motorbike blasts past the ego": "a motorcycle overtakes us",
    "a speeding truck gets around us": "a truck overtakes us",
    "a lorry heading our way in the other lane": "an oncoming truck",
    "a coach heading towards us from the far side": "an oncoming bus",
    "opposing traffic: a sedan": "an oncoming car",
    "a disabled vehicle sits in our lane": "a stopped car blocks our lane",
    "a truck has broken down dead ahead": "a stopped truck blocks our lane",
    "a stranded bus occupies our lane": "a stopped bus blocks our lane",
    "a car hugs our rear bumper": "a car follows us",
    "a truck rides our tail": "a truck follows us",
    "the car ahead shifts over to the left lane": "the car ahead changes lanes to the left",
    "the lorry in front moves across to the right lane": "the truck ahead changes lanes to the right",
    "roadworks close the right lane": "a work zone ahead on the right",
    "a lane is shut for maintenance ahead": "a work zone ahead on the right",
    "orange cones narrow the road ahead": "traffic cones ahead",
    "a bicyclist pedals along the right edge": "a cyclist on the right",
    "a guy on a bike ahead of us": "a cyclist on the right",
    "a biker cruises ahead": "a motorcyclist rides ahead",
    "a delivery truck is parked at the kerb": "a parked truck on the right",
    "a sedan sits parked by the kerb": "a parked car on the right",
    "a car squeezes in ahead during a downpour": "a car cuts in from the left in the rain",
    "a truck cuts across into our lane in pea-soup fog": "a truck cuts in from the left in the fog",
    "late at night a van swerves into our path": "a car cuts in from the left at night",
    "at sundown the bus ahead stops dead": "the bus ahead brakes hard at dusk",
    "in a drizzle a child bolts out": "a child runs out into the road in the rain",
    "after dark a jaywalker strolls over": "a pedestrian crosses the road at night",
    "in thick mist a lorry comes our way": "an oncoming truck in the fog",
    "a motorbike squeezes past in the evening": "a motorcycle overtakes us at dusk",
    "a wrecked car blocks the lane on a stormy night": "a stopped car blocks our lane on a rainy night",
    "a taxi tailgates us after sunset": "a car follows us at dusk",
    "an excavator is parked at the roadside": "a parked construction vehicle on the right",
    "a tractor-trailer is parked on the shoulder": "a parked trailer on the right",
    "a cyclist bolts across the road": "a pedestrian dashes out from behind a parked car",
    "a pickup lurches in ahead of us": "a truck cuts in from the left",
    "an articulated bus pulls in ahead": "a bus cuts in from the left",
    "the van in front emergency-stops": "the car ahead brakes hard",
    "a family walks over the road": "two pedestrians cross the street",
    "an elderly man totters across": "a pedestrian crosses the road",
    "the sedan ahead swings left at the crossroads": "the car ahead turns left at the intersection",
    "a lorry in front peels off right at the junction": "the truck ahead turns right at the junction",
    "the taxi ahead spins round to go back the way it came": "the car ahead makes a u-turn",
    "the bus ahead veers off to the left at the lights": "the bus ahead turns left at the intersection",
    "we swing left at the crossroads": "we turn left at the intersection",
    "a van noses out of a side street on the right": "a car merges from the side road on the right",
    "a lorry emerges from the side road on the left": "a truck merges from the side road on the left",
}


def _canonical_prompts() -> list[str]:
    prompts = []
    kinds = ["car", "truck", "bus", "motorcycle"]
    colours = ["", "red ", "white ", "black ", "blue "]
    for behaviour, templates in BEHAVIOUR_TEMPLATES.items():
        for template, kind, colour, side in product(templates, kinds, colours[:3], ["left", "right"]):
            if kind == "motorcycle" and behaviour in ("parked", "stopped"):
                continue
            if kind == "bus" and behaviour == "u_turn":  # too long to turn round in the junction
                continue
            prompts.append(template.format(color=colour, kind=kind, side=side))
    for template, side in product(PEDESTRIAN_TEMPLATES + OTHER_TEMPLATES, ["left", "right"]):
        prompts.append(template.format(side=side))
    prompts = list(dict.fromkeys(prompts))
    # combinations with weather and time of day
    combined = [prompt + SETTINGS[i % len(SETTINGS)] for i, prompt in enumerate(prompts)]
    pairs_of_two = [f"{a}, and {b}" for a, b in zip(prompts[::7], prompts[3::7])]
    drivers = [p for p in prompts if p.endswith(("cuts in from the left", "overtakes us", "follows us"))]
    follow_ups = [driver + FOLLOW_UPS[i % len(FOLLOW_UPS)] for i, driver in enumerate(drivers[:24])]
    return list(dict.fromkeys(combined + pairs_of_two + follow_ups))


@lru_cache(maxsize=1)
def curated_pairs() -> tuple[tuple[str, str], ...]:
    """(prompt, script) pairs: every canonical prompt and every paraphrase (which takes its canonical's script)."""
    pairs = [(prompt, parse_script(prompt)) for prompt in _canonical_prompts()]
    pairs += [(paraphrase, parse_script(canonical)) for paraphrase, canonical in PARAPHRASES.items()]
    return tuple(pairs)


def export_jsonl(out: str | Path) -> Path:
    """Write the pairs as chat-format JSONL (system, user: prompt, assistant: script) for fine-tuning."""
    lines = [
        json.dumps(
            {
                "messages": [
                    {"role": "system", "content": SYSTEM_PROMPT},
                    {"role": "user", "content": prompt},
                    {"role": "assistant", "content": script},
                ]
            }
        )
        for prompt, script in curated_pairs()
    ]
    out = Path(out)
    atomic_write(out, ("\n".join(lines) + "\n").encode())
    return out
