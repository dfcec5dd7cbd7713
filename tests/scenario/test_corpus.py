"""The composed fine-tuning corpus and the script grammar: every script shows its spec and fits the grammar that
decoding runs under; the corpus is deterministic and shares no prompt with the held-out evaluation set."""

import importlib.util
import random
from pathlib import Path

import pytest

from dreamdrive.scenario.corpus import REFUSAL, Event, Spec, build_corpus, check, corpus_pairs, random_spec, say, script
from dreamdrive.scenario.curated import curated_pairs
from dreamdrive.scenario.llm import SCRIPT_GRAMMAR, SCRIPT_ONLY_GRAMMAR, grammar_pattern

HELD_OUT = Path(__file__).parents[2] / "benchmarks" / "translate" / "heldout.txt"


@pytest.fixture(scope="module")
def corpus():
    return build_corpus(80, seed=5)


def test_the_corpus_is_deterministic_and_its_scripts_show_their_specs(corpus):
    pairs, stats = corpus
    assert corpus_pairs(80, seed=5) == pairs and corpus_pairs(80, seed=6) != pairs
    assert stats.pairs == 80 and stats.negatives < 20 and stats.rejected < 10
    pattern = grammar_pattern()
    for prompt, text in pairs:
        assert prompt.strip() and pattern.fullmatch(text), (prompt, text)
    assert len({p for p, _ in pairs}) > 70 and sum(s == REFUSAL for _, s in pairs) == stats.negatives


def test_specs_are_checked_against_what_their_scenarios_show():
    cut_in = Spec((Event("cut_in", "truck", "red", "right"),), weather="rain")
    assert check(cut_in, script(cut_in)) == []
    wrong_side = script(cut_in).replace("lane='right'", "lane='left'")
    assert any("cut_in:right" in problem for problem in check(cut_in, wrong_side))
    assert check(cut_in, script(cut_in).replace("set_weather('rain')\n", "")) == ["settings"]
    stop = Spec((Event("ego_stop", "ego"), Event("cross", "pedestrian", side="right", count=3)))
    assert check(stop, script(stop)) == [] and script(stop).count(".cross(") == 3
    third = "pedestrian2_3 = pedestrian(side='right', ahead=42.0)\npedestrian2_3.cross(at=1.0)\n"
    fewer = script(stop).replace(third, "")
    assert fewer != script(stop) and "pedestrian count" in check(stop, fewer)


def test_say_names_what_the_spec_holds():
    rng = random.Random(0)
    spec = Spec((Event("cut_in", "bus", "green", "left"),), time_of_day="night")
    texts = [say(spec, rng).lower() for _ in range(30)]
    assert all("green" in t and "left" in t for t in texts)
    assert len(set(texts)) > 15  # many phrasings of one spec
    specs = [random_spec(random.Random(k)) for k in range(200)]
    assert sum(len(s.events) > 1 for s in specs) > 40 and sum(s.weather is not None for s in specs) > 40


def test_no_corpus_prompt_is_a_held_out_prompt(corpus):
    held_out = {line.split("|")[1].strip().lower() for line in HELD_OUT.read_text().splitlines()
                if line.strip() and not line.startswith("#")}  # fmt: skip
    assert len(held_out) > 300
    assert not {p.lower() for p, _ in corpus[0]} & held_out


def test_the_parser_writes_in_the_grammar():
    pattern = grammar_pattern()
    for _, text in curated_pairs():
        assert pattern.fullmatch(text), text
    assert pattern.fullmatch(REFUSAL) and not grammar_pattern(SCRIPT_ONLY_GRAMMAR).fullmatch(REFUSAL)
    for hostile in ("import os\nsave()\n", "ego(speed=10.00)\nopen('x')\nsave()\n", "ego(speed=10.00)\n"):
        assert not pattern.fullmatch(hostile)


def test_llama_cpp_compiles_the_grammar():
    if importlib.util.find_spec("llama_cpp") is None:
        pytest.fail("llama-cpp-python is not installed: run `make test`, which installs it.")
    from llama_cpp import LlamaGrammar

    for grammar in (SCRIPT_GRAMMAR, SCRIPT_ONLY_GRAMMAR):
        assert LlamaGrammar.from_string(grammar, verbose=False) is not None
