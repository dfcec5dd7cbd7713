"""Text to scenario on prompts no translator was made from: the held-out set, translator by translator.

    PYTHONPATH=. python benchmarks/bench_translate.py [--translators parser,retrieval,offline]
        [--endpoint URL --api-model NAME] [--on dataset|trajectories] [--limit N] [--out DIR] [--set FILE]

For every prompt of `benchmarks/translate/heldout.txt` (340 prompts in 20 kinds,
written apart from the curated pairs and the test prompts) and every translator:
the prompt is translated, its script run in the sandbox, the scenario placed on
its own road, validated and repaired, and written (`write_outputs`, frames not
rendered); the checks (`benchmarks/translate/checks.py`) then read the written
dataset's boxes. Each prompt comes out as asked (every check holds; a prompt of
kind `refuse` is as asked when it is refused), refused (an error naming why), or
wrong: accepted, with a check that fails, the defect users cannot see.

Translators: `parser` (the compositional parser alone), `retrieval` (the nearest
curated pair, the prompt's weather and time put in, refused under the
similarity threshold), `unverified` (parser, then retrieval where it cannot
place a word), `offline` (the default: the same behind the verifier, which
tries retrieved pairs in turn and refuses when none agrees), `tuned` (the
fine-tuned SmolLM2 alone, `scenario.tuned`; `--model RUN` for another adapter),
`parser+tuned` and `offline+tuned` (the tuned model between the parser and
retrieval, behind the verifier), `openai` (with
--endpoint), `llama` (the packaged GGUF under the script grammar; slow on CPU).

Prints, per translator, as asked / refused / wrong overall and per kind, and the
seconds per prompt; writes `OUT/results.json` with every prompt's outcome.
`--on trajectories` checks the script's trajectories without writing datasets
(faster; the same checks).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

from dreamdrive.core.errors import DreamdriveError
from dreamdrive.pipelines.scenario import place_scenario, write_outputs
from dreamdrive.scenario.llm import LlamaTranslator, OpenAITranslator
from dreamdrive.scenario.offline import _with_settings, translate_offline
from dreamdrive.scenario.retrieval import THRESHOLD, nearest
from dreamdrive.scenario.sandbox import run_scenario_script
from dreamdrive.scenario.scene import Scenario
from dreamdrive.scenario.translate import TranslationError
from dreamdrive.scenario.tuned import TunedTranslator

sys.path.insert(0, str(Path(__file__).parent))
from translate.checks import dataset_trajectories, failed_checks, read_set, scenario_trajectories  # noqa: E402

HELD_OUT = Path(__file__).parent / "translate" / "heldout.txt"


def retrieval_only(prompt: str) -> str:
    text, script, similarity = nearest(prompt, 1)[0]
    if similarity < THRESHOLD:
        raise TranslationError(f"the nearest curated pair {text!r} is too far off ({similarity:.2f} < {THRESHOLD}).")
    return _with_settings(script, prompt)


def translators(names: list[str], endpoint: str | None, api_model: str | None, model: Path | None = None) -> dict:
    tuned = TunedTranslator(model) if any("tuned" in name for name in names) else None
    known = {
        "parser": lambda p: translate_offline(p, retrieve=False, verify=False),
        "retrieval": retrieval_only,
        "unverified": lambda p: translate_offline(p, verify=False),
        "offline": translate_offline,
        "tuned": lambda p: tuned.translate(p),
        "parser+tuned": lambda p: translate_offline(p, retrieve=False, tuned=tuned),
        "offline+tuned": lambda p: translate_offline(p, tuned=tuned),
    }
    if "openai" in names:
        if not endpoint:
            raise SystemExit("--translators openai needs --endpoint URL")
        known["openai"] = OpenAITranslator(base_url=endpoint, model=api_model).translate
    if "llama" in names:
        known["llama"] = LlamaTranslator().translate
    unknown = set(names) - set(known)
    if unknown:
        raise SystemExit(f"unknown translators {sorted(unknown)}; known: {', '.join(known)}, openai, llama")
    return {name: known[name] for name in names}


def outcome(row: dict, translate, on: str, scratch: Path) -> dict:
    """One prompt through one translator: {"outcome": asked|refused|wrong, "failed" or "error", "seconds"}."""
    start = time.perf_counter()
    try:
        script = translate(row["prompt"])
        seconds = time.perf_counter() - start
        scenario = Scenario(row["prompt"], script, "bench", 0, run_scenario_script(script))
        town = place_scenario(scenario, None)
    except DreamdriveError as error:  # refused, with its reason
        seconds = time.perf_counter() - start
        asked = row["checks"] == ["refuse"]
        return {"outcome": "asked" if asked else "refused", "error": str(error)[:300], "seconds": seconds}
    if row["checks"] == ["refuse"]:
        return {"outcome": "wrong", "failed": ["refuse"], "script": script, "seconds": seconds}
    if on == "dataset":
        write_outputs(scenario, scratch, render=False, width=64, height=32, town=town)
        data = dataset_trajectories(scratch)
    else:
        data = scenario_trajectories(scenario.result.to_json())
    failed = failed_checks(row["checks"], data)
    return {"outcome": "wrong" if failed else "asked", "failed": failed, "script": script, "seconds": seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--translators", default="parser,retrieval,unverified,offline")
    parser.add_argument("--endpoint", default=None, help="an OpenAI-compatible endpoint for --translators openai")
    parser.add_argument("--api-model", default=None)
    parser.add_argument("--on", choices=("dataset", "trajectories"), default="dataset")
    parser.add_argument("--limit", type=int, default=None, help="the first N prompts only")
    parser.add_argument("--out", type=Path, default=None, help="write results.json here")
    parser.add_argument("--model", type=Path, default=None, help="the tuned translators' adapter (default: shipped)")
    parser.add_argument(
        "--set",
        type=Path,
        default=HELD_OUT,
        help="the prompt set (default: the held-out set; translate/dev.txt is the one to develop on)",
    )
    args = parser.parse_args()
    rows = read_set(args.set)[: args.limit]
    chosen = translators(args.translators.split(","), args.endpoint, args.api_model, args.model)
    results: dict = {}
    with tempfile.TemporaryDirectory() as scratch:
        for name, translate in chosen.items():
            results[name] = [{**row, **outcome(row, translate, args.on, Path(scratch) / "out")} for row in rows]
    print(f"# Text to scenario on {args.set.name} ({len(rows)} prompts, checked on the {args.on})")
    print(f"machine: {platform.machine()}, {platform.processor() or 'cpu'}, python {platform.python_version()}\n")
    print("| translator | as asked | refused | wrong (accepted) | s / prompt (translate) |")
    print("|---|---:|---:|---:|---:|")
    for name, outcomes in results.items():
        counts = Counter(o["outcome"] for o in outcomes)
        seconds = sum(o["seconds"] for o in outcomes) / len(outcomes)
        print(f"| {name} | " + " | ".join(f"{100 * counts[k] / len(outcomes):.1f}% ({counts[k]})"
                                         for k in ("asked", "refused", "wrong")) + f" | {seconds:.3f} |")  # fmt: skip
    kinds = list(dict.fromkeys(row["kind"] for row in rows))
    print("\nAs asked / refused / wrong, per kind:\n")
    print("| kind | prompts | " + " | ".join(results) + " |")
    print("|---|---:|" + "---:|" * len(results))
    for kind in kinds:
        cells = []
        for outcomes in results.values():
            counts = Counter(o["outcome"] for o in outcomes if o["kind"] == kind)
            cells.append(f"{counts['asked']}/{counts['refused']}/{counts['wrong']}")
        total = sum(row["kind"] == kind for row in rows)
        print(f"| {kind} | {total} | " + " | ".join(cells) + " |")
    for name, outcomes in results.items():
        failures = defaultdict(int)
        for o in outcomes:
            for check in o.get("failed", []):
                failures[check.partition("=")[0].partition(":")[0]] += 1
        ranked = sorted(failures.items(), key=lambda x: -x[1])
        print(f"\n{name}: failed checks among wrong results: " + ", ".join(f"{k} {v}" for k, v in ranked))
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "results.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
