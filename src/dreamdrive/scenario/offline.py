"""The offline translator: the compositional parser, with paraphrase retrieval, behind the verifier.

`translate.parse_script` answers every prompt whose words it can place, if the
verifier (`verify`) finds its scenario agrees with the prompt; otherwise the
nearest curated pairs (`retrieval`) are tried in turn: close enough, agreeing
with every class and behaviour the parser did recognise, with the prompt's own
weather and time of day, and passing the verifier. Else the prompt is refused,
naming what could not be placed or the slot that disagrees.
"""

from __future__ import annotations

import importlib.util
import re
from functools import lru_cache

from dreamdrive.scenario.corpus import REFUSAL
from dreamdrive.scenario.retrieval import THRESHOLD, nearest
from dreamdrive.scenario.sandbox import ScriptRejected, run_scenario_script
from dreamdrive.scenario.translate import (
    BEHAVIOURS,
    CLASS_WORDS,
    TranslationError,
    parse_script,
)
from dreamdrive.scenario.tuned import SHIPPED, TunedTranslator
from dreamdrive.scenario.verify import disagreements, stated

CANDIDATES = 5  # retrieved pairs the verifier tries, nearest first


def tuned_translator(required: bool = False):
    """The shipped tuned translator (`scenario.tuned`), made once; None where llama-cpp-python or the adapter is
    missing, or (`required`) TranslationError saying what to install."""
    model = _shipped_tuned()
    if model is None and required:
        TunedTranslator()  # raises, naming what is missing
    return model


@lru_cache(maxsize=1)
def _shipped_tuned():
    if importlib.util.find_spec("llama_cpp") is None or not (SHIPPED / "adapter_model.safetensors").is_file():
        return None
    return TunedTranslator()


def translate_offline(prompt: str, retrieve: bool = True, verify: bool = True, tuned=False) -> str:
    """The scenario script for `prompt`, or TranslationError naming what could not be placed or what disagrees.

    The parser answers first. When it cannot place a word, or (with `verify`) its scenario contradicts the prompt
    on a slot (`verify.disagreements`: weather, time, the ego's manoeuvre, a behaviour or its side, a class,
    colour or count), the nearest curated pairs (all-MiniLM-L6-v2 retrieval) are tried in turn, each with the
    prompt's own weather and time of day; the first that is close enough and agrees answers. If none does, the
    prompt is refused with the slot that disagrees: a scenario that is not what was asked is never returned.
    """
    problems: list[str] = []
    try:
        script = parse_script(prompt)
        problems = _disagreements(prompt, script) if verify else []
        if not problems:
            return script
        error = TranslationError(f"the scenario the parser wrote disagrees with the prompt ({'; '.join(problems)}).")
    except TranslationError as parse_error:
        if "could not place" not in str(parse_error):
            raise
        error = parse_error
    model = tuned_translator() if tuned is True else (tuned or None)  # True: the shipped model; or a translator
    if model is not None:
        script = model.script(prompt)
        if script != REFUSAL:
            try:
                found = _disagreements(prompt, script) if verify else []
            except ScriptRejected as rejected:
                found = [f"the tuned model's script failed: {rejected}"]
            if not found:
                return script
            problems = problems or found
    if not retrieve:
        raise error
    # the words the parser did recognise must agree with the pair it retrieves
    needed = _recognised_markers(prompt)
    candidates = [c for c in nearest(prompt) if all(any(m in c[1] for m in group) for group in needed)]
    close = [c for c in candidates if c[2] >= THRESHOLD][:CANDIDATES]
    for _text, script, _ in close:
        script = _with_settings(script, prompt)
        found = _disagreements(prompt, script) if verify else []
        if not found:
            return script
        problems = problems or found
    if not close:
        best = candidates[0] if candidates else nearest(prompt, 1)[0]
        raise TranslationError(
            f"{error} The nearest known scenario, {best[0]!r}, is too far off "
            f"(similarity {best[2]:.2f} < {THRESHOLD}, or it disagrees with the prompt)."
        ) from error
    raise TranslationError(
        f"no scenario agrees with the prompt: {'; '.join(problems)}. Rephrase, or ask for what the scenario "
        "vocabulary has (docs/scenario.md)."
    ) from error


def _disagreements(prompt: str, script: str) -> list[str]:
    """How the scenario the script produces contradicts the prompt (`verify.disagreements`)."""
    return disagreements(prompt, run_scenario_script(script))


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
    """`script` (a retrieved neighbour's) with the weather, time of day and colour that `prompt` names in place of
    the neighbour's: the prompt's weather and time or none (clear, by day), and the one colour it names on the
    script's one vehicle."""
    asked = stated(prompt)
    weather, time_of_day, colors = asked.weather, asked.time_of_day, set(asked.colors)
    # the neighbour's weather and time of day are not asked for: the prompt's own, or clear and by day
    lines = [line for line in script.strip().splitlines() if not line.startswith(("set_weather(", "set_time"))]
    extra = ([f"set_weather({weather!r})"] if weather else []) + (
        [f"set_time_of_day({time_of_day!r})"] if time_of_day else []
    )
    lines = [re.sub(r",\s*color=['\"]\w+['\"]", "", line) for line in lines]  # a neighbour's colours are not asked for
    movers = [k for k, line in enumerate(lines) if re.search(r"\b(side_road_)?vehicle\(", line)]
    plain = len(movers) == 1 and re.fullmatch(r"\s*\w+\s*=\s*(side_road_)?vehicle\([^()]*\)\s*", lines[movers[0]])
    if len(colors) == 1 and plain and "color=" not in lines[movers[0]]:
        # the one vehicle takes the one colour the prompt names ("a white lorry ...")
        lines[movers[0]] = re.sub(r"\)(\s*)$", f", color={colors.pop()!r})\\1", lines[movers[0]])
    return "\n".join(lines[:-1] + extra + lines[-1:]) + "\n"
