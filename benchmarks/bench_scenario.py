"""The scenario sandbox's overhead per script, against running the same script in-process.

    python benchmarks/bench_scenario.py [--runs 20]

Prints the time of the static check alone, of a sandboxed run (check, fresh
interpreter with limits, library import, script, JSON back) and of the same
script executed directly in this process (the baseline).
"""

from __future__ import annotations

import argparse
import os
import platform
import time

from dreamdrive.scenario import library
from dreamdrive.scenario.sandbox import check_script, run_script

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
    print(f"static check:                {check_ms:8.3f} ms per script")
    print(f"sandboxed run:               {sandbox_ms:8.1f} ms per script")
    print(f"in-process run [baseline]:   {direct_ms:8.1f} ms per script")
    print(
        f"sandbox overhead:            {sandbox_ms - direct_ms:8.1f} ms per script "
        f"({sandbox_ms / max(direct_ms, 1e-9):.0f}x the in-process run)"
    )


if __name__ == "__main__":
    main()
