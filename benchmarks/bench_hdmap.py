"""HD-map generator quality and speed on held-out towns, against a rule-based baseline.

    PYTHONPATH=. python benchmarks/bench_hdmap.py --model RUN [--model RUN2] [--towns 1000-1019] [--per-town 5]

Held-out pairs come from procedural towns and traffic whose seeds training never
used (training uses 0-59). For each pair, each model generates a map (30 Euler
steps, guidance 2), and the rule-based baseline draws what a user would do
without a generator: a straight road along the ego's heading with enough lanes
for every vehicle path (3.5 m lanes, the centre divider between the two
directions, boundaries one metre beyond the outermost vehicle). Figures, all on
the raster (0.8 m/px at tiny):

- on drivable area: the share of vehicle footprint corners, over the window's
  frames, that lie in the drivable area (the regions between road boundaries
  that hold a vehicle path, boundary pixels excluded);
- drivable IoU: of that area with the true map's drivable area (a drivable area
  that leaks over everything would score 100% above and low here);
- divider separates: the share of opposite-direction vehicle pairs whose
  connecting segment crosses a lane divider;
- dividers inside: the share of divider pixels inside the drivable area;
- IoU per channel against the true map, with one pixel of tolerance (a lower bound:
  other maps can be right too);
- diversity: the mean pairwise IoU of the maps 4 seeds give for the same
  trajectories (lower is more diverse);
- speed: ms per map.

Each model is scored twice: as sampled, and with its road boundaries kept off the
ground the input's vehicles drive over (`sample_maps(keep_clear=driven_mask(...))`,
what `--map generated` does), named `+paths-kept-clear`.
"""

from __future__ import annotations

import argparse
import itertools
import json
import platform
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from scipy import ndimage

from dreamdrive.core.categories import detection_class
from dreamdrive.core.geometry import Transform
from dreamdrive.models.hdmap import HDMapNet
from dreamdrive.pipelines.hdmap import NOT_DRIVEN, driven_mask, load_generator, sample_maps, window_pair
from dreamdrive.world.assets import builtin_assets
from dreamdrive.world.town import make_town
from dreamdrive.world.traffic import simulate

VEHICLES = ("car", "truck", "bus", "trailer", "construction_vehicle", "motorcycle", "bicycle")


def held_out_cases(towns: list[int], per_town: int, model: HDMapNet, window_s: float = 8.0):
    """(trajectory map, true raster, true drivable mask, vehicle footprints per frame in pixels, headings, the
    driven mask the generator may be given) per case."""
    config = model.config
    frames = int(round(window_s * 12))
    cases = []
    for seed in towns:
        town = make_town(seed)
        grouped: dict[str, list] = {}
        for asset in builtin_assets(seed):
            grouped.setdefault(asset.info.detection_class, []).append(asset)
        traffic = simulate(town, grouped, seed=seed * 7 + 1, seconds=2 * window_s)
        rng = np.random.default_rng([seed, 2])
        tracks = [(detection_class(t.category), t) for t in traffic.tracks]
        agents = [(kind, t.centers[:, :2], t.annotated.astype(bool)) for kind, t in tracks if kind is not None]
        for start in rng.integers(0, len(traffic.ego) - frames, per_town):
            trajectories, raster = window_pair(town.hdmap, traffic.ego, agents, int(start), frames, config)
            x, y, yaw = traffic.ego[start]
            ego_T_global = Transform.from_pose2d(float(x), float(y), float(yaw)).inverse()
            truth_drivable = _rasterise_polygons(
                town.hdmap.drivable_areas, ego_T_global, config.size, config.resolution
            )
            window = range(int(start), int(start) + frames)
            paths = [traffic.ego[list(window), :2]] + [
                track.centers[[i for i in window if track.annotated[i]], :2]
                for kind, track in tracks
                if kind is not None and kind not in NOT_DRIVEN and track.annotated[window].any()
            ]
            local = [ego_T_global.apply(np.column_stack([p, np.zeros(len(p))]))[:, :2] for p in paths]
            clear = driven_mask(local, config)
            footprints, movers = [], []
            for kind, track in tracks:
                if kind not in VEHICLES or not track.annotated[window].any():
                    continue
                present = [i for i in window if track.annotated[i]]
                width, length, _ = track.size
                corners = []
                for i in present:
                    c, s = np.cos(track.yaws[i]), np.sin(track.yaws[i])
                    for a, b in ((1, 1), (1, -1), (-1, -1), (-1, 1)):
                        corners.append(
                            track.centers[i, :2] + a * length / 2 * np.array([c, s]) + b * width / 2 * np.array([-s, c])
                        )
                footprints.append(_pixels(np.array(corners), ego_T_global, config))
                middle = present[len(present) // 2]
                movers.append(
                    (
                        middle,
                        _pixels(track.centers[middle : middle + 1, :2], ego_T_global, config)[0],
                        track.yaws[middle],
                    )
                )
            ego_corners = _pixels(traffic.ego[list(window), :2], ego_T_global, config)
            cases.append((trajectories, raster, truth_drivable, footprints + [ego_corners], movers, clear))
    return cases


def _pixels(xy: np.ndarray, ego_T_global: Transform, config) -> np.ndarray:
    local = ego_T_global.apply(np.column_stack([xy, np.zeros(len(xy))]))
    return np.column_stack(
        [config.size / 2 - local[:, 0] / config.resolution, config.size / 2 - local[:, 1] / config.resolution]
    )


def _rasterise_polygons(polygons, ego_T_global, size, resolution) -> np.ndarray:
    mask = np.zeros((size, size), np.uint8)
    for polygon in polygons:
        local = ego_T_global.apply(np.column_stack([polygon, np.zeros(len(polygon))]))
        pts = np.column_stack([size / 2 - local[:, 1] / resolution, size / 2 - local[:, 0] / resolution])
        cv2.fillPoly(mask, [np.round(pts * 16).astype(np.int32)], 1, cv2.LINE_8, shift=4)
    return mask.astype(bool)


def drivable(raster: np.ndarray, footprints: list[np.ndarray]) -> np.ndarray:
    """Regions between road boundaries (boundary pixels excluded) that hold a vehicle path point."""
    free = raster[0] == 0
    labels, _ = ndimage.label(free)
    points = np.vstack(footprints)
    rows = np.clip(np.round(points[:, 0]).astype(int), 0, free.shape[0] - 1)
    cols = np.clip(np.round(points[:, 1]).astype(int), 0, free.shape[1] - 1)
    inside = (points >= 0).all(axis=1) & (points < free.shape[0]).all(axis=1)
    chosen = set(labels[rows[inside], cols[inside]].tolist()) - {0}
    return np.isin(labels, list(chosen))


def baseline(footprints: list[np.ndarray], movers, size: int, resolution: float) -> np.ndarray:
    """The rule-based map: a straight road along the ego's heading holding every vehicle path."""
    raster = np.zeros((3, size, size), np.uint8)
    points = np.vstack(footprints)
    inside = (points >= 0).all(axis=1) & (points < size).all(axis=1)
    lateral = (size / 2 - points[inside, 1]) * resolution  # metres to the left of the ego
    lane = 3.5
    left = np.ceil((lateral.max() + 1.0 - lane / 2) / lane) * lane + lane / 2
    right = np.floor((lateral.min() - 1.0 + lane / 2) / lane) * lane - lane / 2
    for y in (left, right):
        raster[0, :, int(round(size / 2 - y / resolution)) % size] = 1
    for y in np.arange(right + lane, left, lane):
        raster[1, :, int(round(size / 2 - y / resolution)) % size] = 1
    return raster


def scores(raster: np.ndarray, truth: np.ndarray, truth_drivable: np.ndarray, footprints, movers) -> dict:
    area = drivable(raster, footprints)
    points = np.vstack(footprints)
    inside = (points >= 0).all(axis=1) & (points < raster.shape[1]).all(axis=1)
    rows, cols = np.round(points[inside]).astype(int).T.clip(0, raster.shape[1] - 1)
    on_area = float(area[rows, cols].mean()) if len(rows) else 1.0
    union = (area | truth_drivable).sum()
    dividers = ndimage.binary_dilation(raster[1] > 0)
    separated, pairs = 0, 0
    for (_, a, yaw_a), (_, b, yaw_b) in itertools.combinations(movers, 2):
        if np.cos(yaw_a - yaw_b) > -0.5:
            continue
        pairs += 1
        line = np.linspace(a, b, 64).round().astype(int)
        ok = (line >= 0).all(axis=1) & (line < raster.shape[1]).all(axis=1)
        separated += bool(dividers[line[ok, 0], line[ok, 1]].any())
    iou = {}
    for k, name in enumerate(("boundary", "divider", "crossing")):
        a, b = raster[k] > 0, truth[k] > 0
        if not b.any() and not a.any():
            continue
        hit_a = (a & ndimage.binary_dilation(b)).sum()
        hit_b = (b & ndimage.binary_dilation(a)).sum()
        iou[name] = (hit_a + hit_b) / max(a.sum() + b.sum(), 1)
    return {
        "on_drivable": on_area,
        "drivable_iou": float((area & truth_drivable).sum() / union) if union else 0.0,
        "divider_separates": separated / pairs if pairs else None,
        "dividers_inside": float((raster[1] > 0)[area].sum() / max((raster[1] > 0).sum(), 1)),
        **{f"iou_{k}": float(v) for k, v in iou.items()},
    }


def mean_scores(rows: list[dict]) -> dict:
    keys = sorted({k for row in rows for k in row})
    return {k: float(np.mean([r[k] for r in rows if r.get(k) is not None])) for k in keys}


def diversity(model: HDMapNet, trajectories: np.ndarray) -> float:
    maps = [sample_maps(model, trajectories[None], seed)[0] > 0 for seed in range(4)]
    ious = [(a & b).sum() / max((a | b).sum(), 1) for a, b in itertools.combinations(maps, 2)]
    return float(np.mean(ious))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", action="append", default=[], help="model or run folder (repeatable)")
    parser.add_argument("--towns", default="1000-1019")
    parser.add_argument("--per-town", type=int, default=5)
    parser.add_argument("--out", type=Path, default=None, help="also write the figures as JSON")
    args = parser.parse_args()
    first, last = (int(v) for v in args.towns.split("-"))
    models = {path: load_generator(path) for path in args.model} or {"shipped": load_generator(None)}
    reference = next(iter(models.values()))
    cases = held_out_cases(list(range(first, last + 1)), args.per_town, reference)
    print(f"machine: {platform.machine()}, torch threads {torch.get_num_threads()}; {len(cases)} held-out cases, "
          f"towns {args.towns}")  # fmt: skip
    results = {"cases": len(cases)}
    base = [scores(baseline(f, m, reference.config.size, reference.config.resolution), r, d, f, m)
            for _, r, d, f, m, _ in cases]  # fmt: skip
    results["baseline"] = mean_scores(base)
    for (name, model), paths_kept in itertools.product(models.items(), (False, True)):
        rows, seconds = [], 0.0
        for trajectories, raster, truth_drivable, footprints, movers, clear in cases:
            start = time.perf_counter()
            generated = sample_maps(model, trajectories[None], seed=0, keep_clear=clear[None] if paths_kept else None)[
                0
            ]
            seconds += time.perf_counter() - start
            rows.append(scores(generated, raster, truth_drivable, footprints, movers))
        name = f"{name}+paths-kept-clear" if paths_kept else name
        figures = mean_scores(rows)
        figures["ms_per_map"] = 1000 * seconds / len(cases)
        figures["diversity_iou_4_seeds"] = float(
            np.mean([diversity(model, c[0]) for c in cases[:: max(1, len(cases) // 8)]])
        )
        results[str(name)] = figures
    for name, figures in results.items():
        if isinstance(figures, dict):
            print(name, " ".join(f"{k}={v:.3f}" for k, v in figures.items()))
    if args.out:
        args.out.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
