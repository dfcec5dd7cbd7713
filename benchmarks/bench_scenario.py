"""The offline translator's prompts/s, and the scenario sandbox's overhead per script.

    python benchmarks/bench_scenario.py [--runs 20]

Prints prompts/s of the offline translator on the 64 test prompts (parser
only) and on paraphrases that need retrieval (after the index is built), the
time of the sandbox's static check, of a sandboxed run (check, fresh
interpreter with limits, library import, script, JSON back) and of the same
script executed directly in this process (the baseline).
"""

from __future__ import annotations

import argparse
import os
import platform
import time

from dreamdrive.scenario import library
from dreamdrive.scenario.offline import translate_offline
from dreamdrive.scenario.retrieval import nearest
from dreamdrive.scenario.sandbox import check_script, run_script

PARAPHRASES = [
    "a hatchback veers into our lane at night",
    "the lorry in front screeches to a stop",
    "a boy bolts onto the road",
    "a scooter slices into our lane in drizzle",
    "a coach heading our way",
    "a group of people walks over the road",
    "a lorry is riding on our tail",
]

SCRIPT = """
ego(speed=10)
car = vehicle("car", lane="left", ahead=8, speed=13, color="red")
car.cut_in(at=2.0)
truck = vehicle("truck", lane="right", ahead=30, speed=9)
truck.hard_brake(at=3.0)
person = pedestrian(side="right", ahead=40)
person.dash_out(at=2.5)
work_zone(ahead=70, lane="right")
set_weather("rain")
set_time_of_day("night")
save()
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    functions, methods = set(library.FUNCTIONS), set(library.METHODS)
    from tests.scenario.prompts import PROMPTS

    start = time.perf_counter()
    for _ in range(args.runs):
        for prompt, _ in PROMPTS:
            translate_offline(prompt)
    parser_rate = args.runs * len(PROMPTS) / (time.perf_counter() - start)
    start = time.perf_counter()
    nearest("warm-up")  # loads the model and embeds the curated prompts
    index_s = time.perf_counter() - start
    start = time.perf_counter()
    for prompt in PARAPHRASES:
        translate_offline(prompt)
    retrieval_rate = len(PARAPHRASES) / (time.perf_counter() - start)

    start = time.perf_counter()
    for _ in range(args.runs * 50):
        check_script(SCRIPT, functions, methods)
    check_ms = (time.perf_counter() - start) / (args.runs * 50) * 1000

    start = time.perf_counter()
    for _ in range(args.runs):
        run_script(SCRIPT, "dreamdrive.scenario.library", functions, methods)
    sandbox_ms = (time.perf_counter() - start) / args.runs * 1000

    namespace = {name: getattr(library, name) for name in library.__all__}
    code = compile(SCRIPT, "<scenario>", "exec")
    start = time.perf_counter()
    for _ in range(args.runs):
        library._reset()
        exec(code, dict(namespace))
        library.result()
    direct_ms = (time.perf_counter() - start) / args.runs * 1000

    print(f"machine: {platform.machine()} cpus={os.cpu_count()} python {platform.python_version()}")
    print(f"offline translator, parser:  {parser_rate:8.1f} prompts/s ({len(PROMPTS)} test prompts)")
    print(f"offline translator, retrieval: {retrieval_rate:6.1f} prompts/s (index built once in {index_s:.1f} s)")
    print(f"static check:                {check_ms:8.3f} ms per script")
    print(f"sandboxed run:               {sandbox_ms:8.1f} ms per script")
    print(f"in-process run [baseline]:   {direct_ms:8.1f} ms per script")
    print(
        f"sandbox overhead:            {sandbox_ms - direct_ms:8.1f} ms per script "
        f"({sandbox_ms / max(direct_ms, 1e-9):.0f}x the in-process run)"
    )


if __name__ == "__main__":
    main()
