"""The curated pairs, their chat-format export, and retrieval for paraphrases."""

import json
import re

import pytest

from dreamdrive.scenario import library
from dreamdrive.scenario.curated import curated_pairs, export_jsonl
from dreamdrive.scenario.offline import translate_offline
from dreamdrive.scenario.sandbox import run_script
from dreamdrive.scenario.translate import TranslationError


def test_pairs_cover_the_whole_library():
    pairs = curated_pairs()
    assert len(pairs) >= 300
    used = {name for _, script in pairs for name in re.findall(r"(\w+)\(", script)}
    assert set(library.FUNCTIONS) | set(library.METHODS) <= used


def test_every_curated_script_runs():
    functions, methods = set(library.FUNCTIONS), set(library.METHODS)
    for prompt, script in curated_pairs()[::25]:  # a sample: each run takes a fresh interpreter
        result = run_script(script, "dreamdrive.scenario.library", functions, methods)
        assert result["frames"] > 1, prompt


def test_chat_jsonl_export(tmp_path):
    path = export_jsonl(tmp_path / "pairs.jsonl")
    lines = path.read_text().splitlines()
    assert len(lines) == len(curated_pairs())
    record = json.loads(lines[0])
    assert [m["role"] for m in record["messages"]] == ["system", "user", "assistant"]
    assert record["messages"][2]["content"].startswith("ego(")


# Paraphrases the parser cannot read (none is a curated prompt), and a marker their script must hold.
PARAPHRASES = [
    ("a hatchback veers into our lane at night", ".cut_in(", "set_time_of_day('night')"),
    ("the lorry in front screeches to a stop", "vehicle('truck'", ".hard_brake("),
    ("a boy bolts onto the road", ".dash_out(", None),
    ("a scooter slices into our lane in drizzle", ".cut_in(", "set_weather('rain')"),
    ("a coach heading our way", "lane='oncoming'", "vehicle('bus'"),
    ("a group of people walks over the road", ".cross(", None),
    ("a lorry is riding on our tail", "vehicle('truck'", "ahead=-"),
    ("a youngster bolts out into the road at dusk", ".dash_out(", "set_time_of_day('dusk')"),
]


@pytest.mark.parametrize("prompt, first, second", PARAPHRASES)
def test_paraphrases_by_retrieval(prompt, first, second):
    assert prompt not in dict(curated_pairs())
    script = translate_offline(prompt)
    assert first in script and (second is None or second in script), script


@pytest.mark.parametrize("prompt", ["a dragon flies over the bridge", "an ambulance zips past the moon"])
def test_far_off_prompts_are_refused(prompt):
    with pytest.raises(TranslationError, match="too far off|could not place"):
        translate_offline(prompt)
