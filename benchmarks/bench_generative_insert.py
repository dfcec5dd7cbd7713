"""Generative against naive insertion on held-out paired edits, where the true render exists.

    PYTHONPATH=. python benchmarks/bench_generative_insert.py --model RUN [--scenes 24 --seed 1 --out FILE.json]

Held-out scenes of the procedural world (another seed than training's) are
rendered as paired edits (`pipelines.pairs.render_pair`): the scene without one
of its vehicles (the source), with it under the scene's own light, shadows and
weather (the truth), and the vehicle pasted naively. The generative edit samples
the same frames from the source, the guidance maps and the layouts
(`pipelines.edit.sample_edit`, with `insert --mode generative`'s defaults: the
naive composite re-rendered from noise level 0.3, the change around the object
smoothed and kept as a shadow). "from noise" samples the region from pure noise instead, as the
model was trained. Every edit is scored against the truth by PSNR
and SSIM in three regions of each image: the object (its visible silhouette),
the ring around it that the edit region adds for shadow and contact (6 px at
112 x 64), and the rest. Scores are grouped by condition: clear day, clear night
and rain. "dit only" is the same sampling with an untrained adapter (its
zero-initialised residuals leave the world model alone): what the world model
inpaints without the guidance maps. Speed: seconds to edit one clip of 8
model frames x 6 views, against sampling it from pure noise in the same run
(the baseline), and the adapter's share.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch

from dreamdrive.metrics.video import region_scores
from dreamdrive.models.adapter import FusionAdapter
from dreamdrive.pipelines.edit import GenerativeOptions, InsertionModel, load_insertion, pixel_region, sample_edit
from dreamdrive.pipelines.pairs import render_pair
from dreamdrive.pipelines.vae import load_vae
from dreamdrive.pipelines.video import scene_layouts
from dreamdrive.scenario.retrieval import embed_texts
from dreamdrive.world.builder import WorldConfig


def condition(description: str) -> str:
    if "rain" in description:
        return "rain"
    return "night" if "night" in description else "day"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="the adapter's model or run folder")
    parser.add_argument("--video-model", default=None)
    parser.add_argument("--scenes", type=int, default=24)
    parser.add_argument("--seed", type=int, default=1, help="of the held-out world (training used 0)")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--cfg", type=float, default=2.0)
    parser.add_argument("--first", type=int, default=0, help="skip the scenes before this one (a tuning set)")
    parser.add_argument("--out", type=Path, default=None, help="write the figures as JSON here")
    parser.add_argument("--pictures", type=Path, default=None, help="write source|naive|generative|truth PNGs here")
    args = parser.parse_args()

    model = load_insertion(args.model, args.video_model)
    plain = InsertionModel(model.dit, FusionAdapter(model.adapter.config)).eval()  # zero residuals
    vae = load_vae(None)
    config = model.config
    world = WorldConfig(scenes=args.scenes, seconds=2.0, seed=args.seed, width=config.image_size[1],
                        height=config.image_size[0], weather=("clear", "clear", "rain"),
                        time_of_day=("day", "night"))  # fmt: skip
    methods = ("naive", "generative", "dit only", "from noise")
    options = GenerativeOptions(steps=args.steps, cfg=args.cfg)
    scores = {m: {} for m in methods}  # method -> condition -> region -> list of (psnr, ssim)
    seconds, noise_seconds, pairs = [], [], 0
    for k in range(args.first, world.scenes):
        pair = render_pair(world, k, config.frames, config.frame_stride)
        if pair is None:
            continue
        pairs += 1
        layouts = scene_layouts(pair.clip, config)
        text = embed_texts([pair.clip.description])[0]
        edit = dict(seed=0, steps=args.steps, cfg=args.cfg, base=pair.naive, strength=options.strength,
                    smooth=options.smooth, shadow=options.shadow)  # fmt: skip
        t = time.perf_counter()
        generated = sample_edit(model, vae, pair.source, pair.guidance, pair.mask, layouts, text, **edit)
        seconds.append(time.perf_counter() - t)
        plain_out = sample_edit(plain, vae, pair.source, pair.guidance, pair.mask, layouts, text, **edit)
        t = time.perf_counter()
        noise_out = sample_edit(model, vae, pair.source, pair.guidance, pair.mask, layouts, text, 0, args.steps,
                                args.cfg)  # fmt: skip
        noise_seconds.append(time.perf_counter() - t)
        grown = pixel_region(pair.mask, 6)
        flat = lambda a: a.reshape(-1, *a.shape[2:])  # noqa: E731
        regions = {"object": flat(pair.mask), "shadow ring": flat(grown & ~pair.mask), "rest": flat(~grown)}
        group = condition(pair.clip.description)
        for method, images in zip(methods, (pair.naive, generated, plain_out, noise_out)):
            for region, value in region_scores(flat(pair.target), flat(images), regions).items():
                if value is not None:
                    scores[method].setdefault(group, {}).setdefault(region, []).append((value["psnr"], value["ssim"]))
        if args.pictures is not None and k < 6:
            from dreamdrive.viz.pictures import save_png

            t_best, v_best = np.unravel_index(pair.mask.sum(axis=(2, 3)).argmax(), pair.mask.shape[:2])
            row = [pair.source, pair.naive, generated, pair.target]
            save_png(np.concatenate([r[t_best, v_best] for r in row], axis=1), args.pictures / f"{k:02d}-{group}.png")
        print(f"scene {k} ({group}): {seconds[-1]:.1f} s", flush=True)
    # The adapter's share of a clip's sampling: its residuals once per window against 2 x steps DiT passes.
    guidance = torch.from_numpy(pair.guidance.astype(np.float32))[None]
    t = time.perf_counter()
    with torch.no_grad():
        model.adapter(guidance)
    adapter_seconds = time.perf_counter() - t
    summary = {}
    for method in methods:
        for group, regions in sorted(scores[method].items()):
            for region, values in regions.items():
                values = np.array(values)
                summary.setdefault(group, {}).setdefault(region, {})[method] = {
                    "psnr": float(values[:, 0].mean()),
                    "ssim": float(values[:, 1].mean()),
                    "pairs": len(values),
                }
    record = {"pairs": pairs, "held_out_seed": args.seed, "first_scene": args.first, "steps": args.steps,
              "cfg": args.cfg, "strength": options.strength, "smooth": options.smooth, "shadow": options.shadow,
              "seconds_per_clip": float(np.median(seconds)),
              "seconds_per_clip_from_noise": float(np.median(noise_seconds)),
              "adapter_seconds_per_window": adapter_seconds,
              "clip": f"{config.frames} frames x {config.views} views at {config.image_size[1]}x{config.image_size[0]}",
              "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch threads "
                         f"{torch.get_num_threads()}", "scores": summary}  # fmt: skip
    for group, regions in summary.items():
        for region, methods_scores in regions.items():
            cells = "  ".join(f"{m}: {v['psnr']:.2f} dB / {v['ssim']:.3f}" for m, v in methods_scores.items())
            print(f"{group:6s} {region:12s} {cells}")
    print(
        f"seconds per clip: {record['seconds_per_clip']:.2f}, from pure noise [baseline] "
        f"{record['seconds_per_clip_from_noise']:.2f}"
    )
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(record, indent=1))


if __name__ == "__main__":
    main()
