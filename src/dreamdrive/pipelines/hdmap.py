"""The HD-map generator's jobs: training pairs from any source with a map and agents, training, sampling.

A training pair is (trajectory map, HD map raster) around the ego at the start of a
window of `window_s` seconds: the trajectory map holds the ego's and every agent's
path over the window (`conditions.layout.trajectory_layout`), the raster the map's
road boundaries, lane dividers and crossings (`conditions.layout.bev_layout`).
Sources, through one interface (`window_pair`):

- procedural towns: a random town and its traffic (no rendering), exact maps,
  unlimited and seeded (`procedural_pairs`);
- any nuScenes-format dataset whose clips carry a map: the procedural builds, or
  real nuScenes with its map expansion (`clip_pairs`).

Augmentation turns the ego frame by a small random yaw (both rasters alike). Mirror
images are not used: a left-right flip makes right-hand traffic left-hand, which is
not a valid scene, and the ego always faces up.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import torch
from scipy import ndimage

from dreamdrive.conditions.layout import bev_layout, trajectory_layout
from dreamdrive.conditions.vectorize import vectorize
from dreamdrive.core.categories import detection_class
from dreamdrive.core.clip import Clip
from dreamdrive.core.conventions import CAMERA_HZ
from dreamdrive.core.errors import DreamdriveError
from dreamdrive.core.geometry import Transform
from dreamdrive.core.hdmap import MAP_CHANNELS, HDMap
from dreamdrive.diffusion.flow import flow_loss, interpolate, sample_timesteps
from dreamdrive.diffusion.samplers import euler, guided
from dreamdrive.files import atomic_write
from dreamdrive.models.hdmap import PRESETS, HDMapConfig, HDMapNet
from dreamdrive.scenario.types import ScriptResult
from dreamdrive.train.checkpoint import model_folder
from dreamdrive.train.loop import LoopConfig, Shard, train_loop
from dreamdrive.viz.pictures import save_png
from dreamdrive.world.assets import builtin_assets
from dreamdrive.world.town import make_town
from dreamdrive.world.traffic import simulate

PAIRS_FORMAT = 1
LINE_WEIGHT = 10.0  # map pixels on a line weigh this much more in the loss than empty ones (lines are sparse)
VEHICLE_HALF_WIDTH_M = 1.2  # a road boundary may not come closer than this to a vehicle's path
VEHICLE_HALF_LENGTH_M = 2.5  # nor closer than this beyond a path's ends
NOT_DRIVEN = ("pedestrian", "traffic_cone", "barrier")

Agents = list[tuple[str, np.ndarray, np.ndarray]]  # (class, (T, 2) global xy, (T,) present)


def window_pair(
    hdmap: HDMap,
    ego: np.ndarray,
    agents: Agents,
    start: int,
    frames: int,
    config: HDMapConfig,
    yaw_jitter: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """One training pair: the trajectory map (H, W, 3) uint8 and the map raster (3, H, W) uint8 in {0, 1}
    around the ego's pose at frame `start` (its yaw turned by `yaw_jitter`), over `frames` frames.

    Args:
        ego: (T, 3) the ego's global x, y, yaw per frame.
        agents: per agent its class, (T, 2) global positions and (T,) presence.
    """
    x, y, yaw = ego[start]
    global_T_ego = Transform.from_pose2d(float(x), float(y), float(yaw) + yaw_jitter)
    window = slice(start, start + frames)
    paths = [(kind, xy[window][present[window]]) for kind, xy, present in agents]
    trajectories = trajectory_layout(
        ego[window, :2], [(k, p) for k, p in paths if len(p) >= 2], global_T_ego, config.size, config.resolution
    )
    raster = bev_layout(hdmap, global_T_ego, config.patch_m, config.resolution, thickness=1).astype(np.uint8)
    return trajectories, raster


def procedural_pairs(
    town_seed: int, count: int, config: HDMapConfig, window_s: float = 8.0, yaw_jitter: float = 0.15
) -> tuple[np.ndarray, np.ndarray]:
    """`count` pairs from one procedural town and its traffic, windows starting at seeded random frames."""
    town = make_town(town_seed)
    grouped: dict[str, list] = defaultdict(list)
    for asset in builtin_assets(town_seed):
        grouped[asset.info.detection_class].append(asset)
    frames = int(round(window_s * CAMERA_HZ))
    traffic = simulate(town, dict(grouped), seed=town_seed * 7 + 1, seconds=2 * window_s)
    agents = [
        (detection_class(track.category), track.centers[:, :2], track.annotated.astype(bool))
        for track in traffic.tracks
        if detection_class(track.category) is not None
    ]
    rng = np.random.default_rng([town_seed, 1])
    starts = rng.integers(0, len(traffic.ego) - frames, count)
    jitters = rng.uniform(-yaw_jitter, yaw_jitter, count)
    pairs = [
        window_pair(town.hdmap, traffic.ego, agents, int(s), frames, config, float(j)) for s, j in zip(starts, jitters)
    ]
    return np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])


def clip_pairs(clip: Clip, config: HDMapConfig, window_s: float = 8.0, every: int = 6) -> tuple[np.ndarray, np.ndarray]:
    """Pairs from a clip with a map (any nuScenes-format dataset): a window starting every `every` frames."""
    if clip.hdmap is None:
        raise DreamdriveError(f"scene {clip.name} has no map; the HD-map generator trains on clips with one.")
    ego = np.array([[*f.global_T_ego.translation[:2], f.global_T_ego.yaw] for f in clip.frames])
    agents = []
    for agent in clip.agents:
        present = np.array([box is not None for box in agent.boxes])
        xy = np.array([box.center[:2] if box is not None else (np.nan, np.nan) for box in agent.boxes])
        kind = detection_class(agent.category)
        if kind is not None:
            agents.append((kind, xy, present))
    frames = int(round(window_s * CAMERA_HZ))
    starts = range(0, max(1, len(clip.frames) - frames + 1), every)
    pairs = [window_pair(clip.hdmap, ego, agents, s, frames, config) for s in starts]
    return np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])


def build_pairs(
    out: str | Path, towns: list[int], per_town: int, config: HDMapConfig, progress: Callable | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The procedural training pairs of `towns`, cached in `out`/pairs.npz (written atomically; a cache for
    other towns or another raster is rebuilt)."""
    out = Path(out)
    geometry = [config.size, config.patch_m]  # what the pairs depend on (not the network)
    fingerprint = hashlib.sha256(json.dumps([PAIRS_FORMAT, towns, per_town, geometry]).encode()).hexdigest()
    cache = out / "pairs.npz"
    if cache.is_file():
        with np.load(cache) as saved:
            if str(saved["fingerprint"]) == fingerprint:
                return saved["trajectories"], saved["maps"]
    items = towns if progress is None else progress(towns, len(towns), "training pairs")
    parts = [procedural_pairs(seed, per_town, config) for seed in items]
    trajectories = np.concatenate([p[0] for p in parts])
    maps = np.concatenate([p[1] for p in parts])
    buffer = io.BytesIO()
    np.savez_compressed(buffer, trajectories=trajectories, maps=maps, fingerprint=fingerprint)
    atomic_write(cache, buffer.getvalue())
    return trajectories, maps


def to_model_inputs(trajectories: np.ndarray, maps: np.ndarray | None = None) -> tuple[torch.Tensor, ...]:
    """uint8 (B, H, W, 3) trajectory maps -> (B, 3, H, W) in [0, 1]; uint8 {0, 1} maps -> [-1, 1]."""
    condition = torch.from_numpy(np.ascontiguousarray(trajectories)).permute(0, 3, 1, 2).float() / 255.0
    if maps is None:
        return (condition,)
    return condition, torch.from_numpy(maps).float() * 2 - 1


def hdmap_loss(
    model: HDMapNet, trajectories: np.ndarray, maps: np.ndarray, batch_size: int, generator, shard: Shard = Shard()
) -> torch.Tensor:
    """Rectified-flow loss of one batch drawn with `generator` (this process's `shard` of it): logit-normal t,
    condition dropped at the config's rate, line pixels weighted `LINE_WEIGHT` times."""
    index = torch.randint(0, len(maps), (batch_size,), generator=generator).numpy()
    keep = (torch.rand(batch_size, generator=generator) >= model.config.drop_condition).float()
    noise = torch.randn((batch_size, len(MAP_CHANNELS), model.config.size, model.config.size), generator=generator)
    t = sample_timesteps(batch_size, generator)
    part = shard.part(batch_size)
    condition, x0 = to_model_inputs(trajectories[index[part]], maps[index[part]])
    condition = condition * keep[part, None, None, None]
    noise, t = noise[part], t[part]
    weight = 1 + (LINE_WEIGHT - 1) * (x0 > 0).any(dim=1, keepdim=True).float()
    return flow_loss(model(interpolate(x0, noise, t), t, condition), x0, noise, weight=weight)


@torch.no_grad()
def validation_loss(
    model: HDMapNet, trajectories: np.ndarray, maps: np.ndarray, times=(0.1, 0.3, 0.5, 0.7, 0.9), seed: int = 0
) -> float:
    """The training loss on held-out pairs at fixed timesteps and noise (conditions kept): a deterministic
    figure to compare models and conditioning schemes at the same budget."""
    generator = torch.Generator().manual_seed(seed)
    total = 0.0
    for start in range(0, len(maps), 16):
        condition, x0 = to_model_inputs(trajectories[start : start + 16], maps[start : start + 16])
        weight = 1 + (LINE_WEIGHT - 1) * (x0 > 0).any(dim=1, keepdim=True).float()
        for t in times:
            noise = torch.randn(x0.shape, generator=generator)
            steps = torch.full((len(x0),), t)
            prediction = model(interpolate(x0, noise, steps), steps, condition)
            total += float(flow_loss(prediction, x0, noise, weight=weight)) * len(x0)
    return total / (len(maps) * len(times))


def train_hdmap(
    out: str | Path,
    preset: str = "tiny",
    towns: list[int] | None = None,
    per_town: int = 40,
    batch_size: int = 16,
    loop: LoopConfig = LoopConfig(),
    config: HDMapConfig | None = None,
    progress: Callable | None = None,
    pairs_progress: Callable | None = None,
) -> Path:
    """Train (or resume, or keep) an HD-map generator in `out`; returns its model folder."""
    # 1. The configuration and the training pairs (cached in the run folder).
    if config is None:
        if preset not in PRESETS:
            raise DreamdriveError(f"preset {preset!r} must be one of {list(PRESETS)}.")
        config = PRESETS[preset]
    towns = list(range(60)) if towns is None else towns
    trajectories, maps = build_pairs(out, towns, per_town, config, pairs_progress)
    # 2. The network, seeded, and the loop.
    torch.manual_seed(loop.seed)
    model = HDMapNet(config)
    description = {"model": config.to_json(), "towns": towns, "per_town": per_town, "batch_size": batch_size}

    def loss(network, generator, shard):
        return hdmap_loss(network, trajectories, maps, batch_size, generator, shard)

    return train_loop(out, model, loss, loop, description, progress)


@torch.no_grad()
def sample_maps(
    model: HDMapNet,
    trajectories: np.ndarray,
    seed: int = 0,
    steps: int = 30,
    guidance: float = 2.0,
    min_component: int = 6,
    keep_clear: np.ndarray | None = None,
) -> np.ndarray:
    """HD map rasters (B, 3, H, W) uint8 in {0, 1} for trajectory maps (B, H, W, 3) uint8: Euler over the
    rectified flow with classifier-free guidance, thresholded at 0, then specks (8-connected pieces of fewer
    than `min_component` pixels) dropped; the same seed gives the same maps.

    `keep_clear` (B, H, W) bool, where given, marks the ground vehicles drive over (`driven_mask`): no road
    boundary may cross it, so boundary pixels there are erased (DriveDreamer-2's rule that every trajectory
    lies on the road, kept by construction rather than hoped for)."""
    (condition,) = to_model_inputs(trajectories)
    generator = torch.Generator().manual_seed(seed)
    size = model.config.size
    noise = torch.randn((len(condition), 3, size, size), generator=generator)
    velocity = guided(
        lambda x, t: model(x, t, condition), lambda x, t: model(x, t, torch.zeros_like(condition)), guidance
    )
    maps = (euler(velocity, noise, steps) > 0).to(torch.uint8).numpy()
    if keep_clear is not None:
        if keep_clear.shape != (len(maps), size, size):
            raise DreamdriveError(
                f"keep_clear has shape {keep_clear.shape}, the maps {(len(maps), size, size)}; draw it with "
                "driven_mask at the model's raster size."
            )
        maps[:, 0][keep_clear] = 0
    return np.stack([[drop_specks(channel, min_component) for channel in sample] for sample in maps])


def driven_mask(
    paths: list[np.ndarray],
    config: HDMapConfig,
    half_width_m: float = VEHICLE_HALF_WIDTH_M,
    half_length_m: float = VEHICLE_HALF_LENGTH_M,
) -> np.ndarray:
    """The raster pixels (H, W) bool that vehicles cover driving along `paths` ((N, 2) x, y in metres in the
    ego frame, forward and left): each path stroked `half_width_m` to either side and drawn on
    `half_length_m` beyond both ends along its end directions."""
    mask = np.zeros((config.size, config.size), np.uint8)
    thickness = 2 * int(np.ceil(half_width_m / config.resolution)) + 1
    for path in paths:
        path = np.asarray(path, np.float64)[:, :2]
        keep = np.r_[True, np.linalg.norm(np.diff(path, axis=0), axis=1) > 1e-6]
        path = path[keep]
        if len(path) >= 2:
            start, end = path[1] - path[0], path[-1] - path[-2]
            path = np.vstack(
                [
                    path[0] - half_length_m * start / np.linalg.norm(start),
                    path,
                    path[-1] + half_length_m * end / np.linalg.norm(end),
                ]
            )
        pixels = np.column_stack(
            [config.size / 2 - path[:, 1] / config.resolution, config.size / 2 - path[:, 0] / config.resolution]
        )  # (col, row)
        cv2.polylines(mask, [np.round(pixels * 16).astype(np.int32)], False, 1, thickness, cv2.LINE_8, shift=4)
        if len(path) == 1:
            cv2.circle(mask, tuple(np.round(pixels[0]).astype(int)), thickness // 2, 1, -1)
    return mask.astype(bool)


def drop_specks(channel: np.ndarray, min_component: int) -> np.ndarray:
    """A binary channel without its 8-connected pieces of fewer than `min_component` pixels."""
    if min_component <= 1:
        return channel
    labels, count = ndimage.label(channel, structure=np.ones((3, 3)))
    sizes = np.bincount(labels.ravel(), minlength=count + 1)
    keep = sizes >= min_component
    keep[0] = False
    return keep[labels].astype(np.uint8)


# -- generation -------------------------------------------------------------------------------------------

WEIGHTS = Path(__file__).resolve().parents[1] / "weights" / "hdmap-tiny"


def load_generator(model: str | Path | None = None) -> HDMapNet:
    """The HD-map generator in `model` (a model folder or a run folder), else the checkpoint shipped in the
    package."""
    return HDMapNet.load(model_folder(model, WEIGHTS, "HD-map generator", "dreamdrive hdmap train --out RUN"))


def scenario_trajectories(result: ScriptResult, config: HDMapConfig) -> tuple[np.ndarray, Transform, list[np.ndarray]]:
    """A scenario's trajectory map (H, W, 3) uint8 around the ego's first pose, that pose in the road frame, and
    the paths (N, 2) in the road frame that its vehicles and the ego drive along (the road must hold them)."""
    x, y, yaw, _ = result.ego.start
    road_T_ego = Transform.from_pose2d(x, y, yaw)
    ego = result.ego.array()
    agents = [(actor.kind, actor.trajectory.array()[:, :2]) for actor in result.actors]
    trajectories = trajectory_layout(ego[:, :2], agents, road_T_ego, config.size, config.resolution)
    driven = [ego[:, :2]] + [xy for kind, xy in agents if kind not in NOT_DRIVEN]
    return trajectories, road_T_ego, driven


def _in_frame(frame_T_road: Transform, paths: list[np.ndarray]) -> list[np.ndarray]:
    return [frame_T_road.apply(np.column_stack([p[:, :2], np.zeros(len(p))]))[:, :2] for p in paths]


def generated_map(
    result: ScriptResult, global_T_road: Transform, model: HDMapNet, seed: int = 0, steps: int = 30,
    name: str | None = None,
) -> tuple[HDMap, np.ndarray, np.ndarray]:  # fmt: skip
    """An HD map that fits a scenario's trajectories, in the global frame (the road frame laid by
    `global_T_road`), with the trajectory map and the raster it was made from; named `name` (default:
    generated-SEED)."""
    trajectories, road_T_ego, driven = scenario_trajectories(result, model.config)
    clear = driven_mask(_in_frame(road_T_ego.inverse(), driven), model.config)
    raster = sample_maps(model, trajectories[None], seed, steps, keep_clear=clear[None])[0]
    points = np.vstack(_in_frame(global_T_road, driven))
    frame = global_T_road @ road_T_ego
    hdmap = vectorize(raster, model.config.resolution, frame, points, name=name or f"generated-{seed}")
    return hdmap, trajectories, raster


def generate_for_scenario(
    scenario_dir: str | Path, out: str | Path, samples: int = 4, seed: int = 0, model: str | Path | None = None
) -> list[Path]:
    """HD maps for a scenario folder that `dreamdrive scenario` wrote: for sample k (seed + k), `out`/sample_k/
    with hdmap.png (channels road_boundary, lane_divider, ped_crossing as R, G, B), trajectories.png (the
    input), hdmap.json (polylines and polygons in metres in the ego's first-pose frame) and overlay.png."""
    # 1. The scenario's trajectories.
    path = Path(scenario_dir) / "scenario.json"
    if not path.is_file():
        raise DreamdriveError(f"{scenario_dir} holds no scenario.json; pass a folder that `dreamdrive scenario` wrote.")
    try:
        result = ScriptResult.from_json(json.loads(path.read_text())["scenario"])
    except (json.JSONDecodeError, KeyError, TypeError) as error:
        raise DreamdriveError(f"{path} holds no scenario trajectories ({error!r}); write it again.") from error
    generator = load_generator(model)
    config = generator.config
    # 2. Each sample: the raster, its vector map in the ego frame, and pictures.
    trajectories, road_T_ego, driven = scenario_trajectories(result, config)
    ego_paths = _in_frame(road_T_ego.inverse(), driven)
    ego_points = np.vstack(ego_paths)
    clear = driven_mask(ego_paths, config)
    written = []
    for k in range(samples):
        folder = Path(out) / f"sample_{k}"
        raster = sample_maps(generator, trajectories[None], seed + k, keep_clear=clear[None])[0]
        hdmap = vectorize(raster, config.resolution, None, ego_points, name=f"sample-{seed + k}")
        record = {
            "resolution_m": config.resolution,
            "size_px": config.size,
            "frame": "ego at the first pose",
            **hdmap.to_json(),
        }
        atomic_write(folder / "hdmap.json", json.dumps(record).encode())
        save_png(np.ascontiguousarray(raster.transpose(1, 2, 0) * 255), folder / "hdmap.png")
        save_png(trajectories, folder / "trajectories.png")
        save_png(map_overlay(raster, trajectories), folder / "overlay.png")
        written.append(folder)
    return written


def map_overlay(raster: np.ndarray, trajectories: np.ndarray) -> np.ndarray:
    """The map in grey tones (boundaries white, dividers grey, crossings blue) under the coloured trajectories."""
    picture = np.zeros((*raster.shape[1:], 3), np.uint8)
    for channel, colour in zip(raster, ((255, 255, 255), (120, 120, 120), (60, 120, 255))):
        picture[channel > 0] = colour
    drawn = trajectories.max(axis=2) > 0
    picture[drawn] = trajectories[drawn]
    return picture
