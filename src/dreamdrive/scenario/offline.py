"""The offline translator: the compositional parser, with paraphrase retrieval where it cannot place a word.

`translate.parse_script` answers every prompt whose words it can place; otherwise
the nearest curated pair (`retrieval`) answers if it is close enough and agrees
with every class and behaviour the parser did recognise, with the prompt's own
weather and time of day.
"""

from __future__ import annotations

import re

from dreamdrive.scenario.retrieval import THRESHOLD, nearest
from dreamdrive.scenario.translate import (
    BEHAVIOURS,
    CLASS_WORDS,
    TIME_WORDS,
    WEATHER_WORDS,
    TranslationError,
    parse_script,
)


def translate_offline(prompt: str, retrieve: bool = True) -> str:
    """The scenario script for `prompt`, or TranslationError naming what could not be placed.

    When the parser cannot place a word, the nearest curated pair (all-MiniLM-L6-v2
    retrieval) answers instead if it is close enough; its weather and time of day are
    replaced by the prompt's own when the prompt names them.
    """
    try:
        return parse_script(prompt)
    except TranslationError as error:
        if not retrieve or "could not place" not in str(error):
            raise
        # the words the parser did recognise must agree with the pair it retrieves
        needed = _recognised_markers(prompt)
        candidates = [c for c in nearest(prompt) if all(any(m in c[1] for m in group) for group in needed)]
        if not candidates or candidates[0][2] < THRESHOLD:
            best = candidates[0] if candidates else nearest(prompt, 1)[0]
            raise TranslationError(
                f"{error} The nearest known scenario, {best[0]!r}, is too far off "
                f"(similarity {best[2]:.2f} < {THRESHOLD}, or it disagrees with the prompt)."
            ) from error
        return _with_settings(candidates[0][1], prompt)


# What a script must contain for each behaviour the parser recognises (any one of the markers).
BEHAVIOUR_MARKERS = {
    "cut_in": (".cut_in(",),
    "hard_brake": (".hard_brake(", ".stop("),
    "stopped": ("speed=0", ".stop(", ".hard_brake("),
    "overtake": (".overtake(",),
    "change_lane": (".change_lane(",),
    "cross": (".cross(", ".dash_out("),
    "dash_out": (".dash_out(",),
    "oncoming": ("lane='oncoming'",),
    "parked": ("parked_vehicle(",),
    "accelerate": (".accelerate(",),
    "slow_down": (".brake(",),
    "turn_left": (".turn_left(",),
    "turn_right": (".turn_right(",),
    "u_turn": (".u_turn(",),
    "merge": (".merge(",),
}


def _recognised_markers(prompt: str) -> list[tuple[str, ...]]:
    """Marker groups for the classes and behaviours the parser recognises anywhere in `prompt`."""
    text = prompt.lower()
    groups: list[tuple[str, ...]] = []
    for word, kind in CLASS_WORDS.items():
        if re.search(rf"\b{word}\b", text):
            groups.append(
                (f"vehicle('{kind}'", f"parked_vehicle('{kind}'", f"{kind}(")
                if kind != "pedestrian"
                else ("pedestrian(",)
            )
    for pattern, name in BEHAVIOURS:
        if name in BEHAVIOUR_MARKERS and re.search(pattern, text):
            groups.append(BEHAVIOUR_MARKERS[name])
    return list(dict.fromkeys(groups))


def _with_settings(script: str, prompt: str) -> str:
    """`script` with the weather and time of day that `prompt` names, if it names any."""
    text = prompt.lower()
    weather = next((value for word, value in WEATHER_WORDS.items() if re.search(rf"\b{word}\b", text)), None)
    time_of_day = next((value for word, value in TIME_WORDS.items() if re.search(rf"\b{word}\b", text)), None)
    lines = [
        line
        for line in script.strip().splitlines()
        if not (weather and line.startswith("set_weather(")) and not (time_of_day and line.startswith("set_time"))
    ]
    extra = ([f"set_weather({weather!r})"] if weather else []) + (
        [f"set_time_of_day({time_of_day!r})"] if time_of_day else []
    )
    return "\n".join(lines[:-1] + extra + lines[-1:]) + "\n"
