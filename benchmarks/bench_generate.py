"""Text to video on this machine: seconds from prompt to written dataset by stage, and `synth`'s scaling on Ray.

    PYTHONPATH=. python benchmarks/bench_generate.py [--prompts 8] [--steps 30] [--out FILE.json]

1. Prompt to dataset: each of `--repeats` prompts (the project's behaviour-checked
   ones) becomes a 6-view, 8-frame clip (`--seconds 1.75`: 22 camera frames, one
   model frame every 3, one window) with the default options (`--map generated`,
   `--mask none`, 30 Euler steps); the seconds of each stage (translate, map,
   layouts, video, write) from generation.json, mean over the prompts, after one
   warm-up run that loads the models.
2. Ray scaling: `--prompts` prompts through `synth` with 1 and with 2 workers (a
   local cluster each, started inside the timed span), items per minute and the
   efficiency 2 workers reach against 1 (ideal: 1.0). The baseline is the 1-worker
   run, measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

from dreamdrive.pipelines.generate import STAGES, GenerateOptions, generate_from_prompt
from dreamdrive.pipelines.synth import Item, synth
from tests.scenario.prompts import PROMPTS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--prompts", type=int, default=8, help="items per synth run")
    parser.add_argument("--repeats", type=int, default=4, help="prompts timed stage by stage")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    prompts = [prompt for prompt, _ in PROMPTS[1::4]]
    options = GenerateOptions(seconds=1.75, steps=args.steps)
    result: dict = {"machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
                    "options": options.to_json()}  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        # 1. Stage by stage.
        generate_from_prompt(prompts[-1], root / "warm-up", options)
        stages = []
        for k, prompt in enumerate(prompts[: args.repeats]):
            record = generate_from_prompt(prompt, root / f"stage{k}", options)
            assert record["frames"] == 8
            stages.append([record["seconds"].get(name, 0.0) for name in STAGES])
        mean = np.mean(stages, axis=0)
        result["stages_s"] = {name: round(float(v), 2) for name, v in zip(STAGES, mean) if v > 0}
        result["prompt_to_dataset_s"] = round(float(mean.sum()), 2)
        print("prompt to dataset:", result["stages_s"], "total", result["prompt_to_dataset_s"], "s")
        # 2. Ray scaling.
        items = [Item("prompt", prompt, k + 1) for k, prompt in enumerate(prompts[: args.prompts])]
        rates = {}
        for workers in (1, 2):
            start = time.perf_counter()
            report = synth(items, root / f"synth{workers}", options, workers=workers)
            seconds = time.perf_counter() - start
            assert report["done"] == len(items), report
            rates[workers] = len(items) / seconds * 60
            print(f"{workers} worker(s): {len(items)} items in {seconds:.1f} s, {rates[workers]:.2f} items/min")
        result["synth"] = {"items": len(items), "items_per_min": {str(w): round(r, 2) for w, r in rates.items()},
                           "efficiency_2_workers": round(rates[2] / (2 * rates[1]), 3)}  # fmt: skip
    print(json.dumps(result, indent=1))
    if args.out:
        args.out.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
