"""The world model's video jobs: latents and layouts of any nuScenes-format dataset, training, generation.

A scene becomes, once, its camera frames' latents (`models.vae`), its per-view map
and box layouts (`conditions.layout`) at the model's layout size, and its
description's MiniLM embedding; these are cached in the run folder
(`scenes/*.npz`), so video training never re-encodes. A training window is
`frames` model frames, one every `frame_stride` camera frames, from a random scene
and start.

UniMVM's masks (`MODES`) choose what is given clean: nothing, the first frame, or
CAM_FRONT's video. Training draws one per sample, so one model serves all three.
Generation runs window by window over a whole scene: each window after the first is
given the previous window's last frame (UniMVM's first-frame mode), and in
front-view mode the real CAM_FRONT video throughout.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from dreamdrive.conditions.layout import clip_layouts
from dreamdrive.core.camera import CAMERA_NAMES
from dreamdrive.core.clip import Clip, Frame
from dreamdrive.core.errors import DreamdriveError
from dreamdrive.diffusion.flow import flow_loss, interpolate, resolution_shift, sample_timesteps
from dreamdrive.diffusion.samplers import euler, guided
from dreamdrive.files import atomic_write, clear_scratch, load_image
from dreamdrive.models.dit import PRESETS, DiTConfig, UniMVM
from dreamdrive.nusc.reader import NuscDataset
from dreamdrive.nusc.writer import write_dataset
from dreamdrive.pipelines.vae import dataset_scenes, load_vae, to_images, to_tensor
from dreamdrive.scenario.retrieval import embed_texts
from dreamdrive.train.checkpoint import model_folder, weights_fingerprint
from dreamdrive.train.loop import LoopConfig, Shard, train_loop
from dreamdrive.viz.pictures import save_png, write_video

MODES = ("none", "first-frame", "front-view")
MODE_SHARES = (0.4, 0.4, 0.2)  # of training samples per mode
FRONT = CAMERA_NAMES.index("CAM_FRONT")
CACHE_DIR = "scenes"
CACHE_FORMAT = 1


@dataclass
class SceneTensors:
    """One scene ready for the video model.

    Args:
        latents: (F, V, C, h, w) float16, every camera frame's normalised latents, views in ring order.
        layouts: (F, V, 13, H, W) uint8 in {0, 1}, map then box layouts at the model's layout size.
        text: (384,) float32, the description's embedding.
    """

    name: str
    latents: np.ndarray
    layouts: np.ndarray
    text: np.ndarray


def check_rig(clip: Clip, where: str) -> None:
    """The video model needs the six nuScenes cameras, in ring order."""
    if tuple(clip.rig.names) != CAMERA_NAMES:
        raise DreamdriveError(f"{where}: the video model needs the cameras {list(CAMERA_NAMES)}; this scene has "
                              f"{list(clip.rig.names)}.")  # fmt: skip


def scene_images(clip: Clip, size: tuple[int, int]) -> np.ndarray:
    """(F, V, H, W, 3) uint8 camera images of every frame, resized to `size` (height, width)."""
    height, width = size
    out = np.zeros((len(clip.frames), len(clip.rig), height, width, 3), np.uint8)
    for t, frame in enumerate(clip.frames):
        for v, name in enumerate(clip.rig.names):
            image = load_image(frame.images[name])
            if image.shape[:2] != (height, width):
                image = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
            out[t, v] = image
    return out


def scene_layouts(clip: Clip, config: DiTConfig) -> np.ndarray:
    """(F, V, 13, H, W) uint8 map and box layouts of every frame, drawn for cameras resized to the layout size."""
    height, width = config.layout_size
    small = Clip(clip.name, clip.frames, clip.agents, clip.rig.resized(width, height), clip.location, clip.hdmap,
                 clip.description, clip.log_name)  # fmt: skip
    maps, boxes = clip_layouts(small)  # (V, F, 3, H, W), (V, F, 10, H, W)
    return np.concatenate([maps, boxes], 2).transpose(1, 0, 2, 3, 4).copy()


@torch.no_grad()
def encode_frames(autoencoder, images: np.ndarray, batch: int = 64) -> np.ndarray:
    """(F, V, H, W, 3) uint8 -> (F, V, C, h, w) float32 normalised latents."""
    flat = images.reshape(-1, *images.shape[2:])  # ((F V), H, W, 3)
    latents = torch.cat([autoencoder.encode(to_tensor(flat[i : i + batch])) for i in range(0, len(flat), batch)])
    return latents.reshape(*images.shape[:2], *latents.shape[1:]).numpy()


@torch.no_grad()
def decode_latents(autoencoder, latents: torch.Tensor, batch: int = 48) -> np.ndarray:
    """(F, V, C, h, w) -> (F, V, H, W, 3) uint8."""
    flat = latents.reshape(-1, *latents.shape[2:])
    images = np.concatenate([to_images(autoencoder.decode(flat[i : i + batch])) for i in range(0, len(flat), batch)])
    return images.reshape(*latents.shape[:2], *images.shape[1:])


def prepare_scene(clip: Clip, autoencoder, config: DiTConfig) -> SceneTensors:
    """A clip's latents, layouts and text embedding."""
    check_rig(clip, f"scene {clip.name}")
    latents = encode_frames(autoencoder, scene_images(clip, config.image_size)).astype(np.float16)
    return SceneTensors(clip.name, latents, scene_layouts(clip, config), embed_texts([clip.description])[0])


def prepare_scenes(
    out: Path, dataroots: list[Path], split: str | None, autoencoder, config: DiTConfig,
    progress: Callable | None = None,
) -> list[SceneTensors]:  # fmt: skip
    """Every chosen scene's tensors, cached in `out/scenes/` (written atomically; a rerun reads them)."""
    scenes = []
    for k, dataroot in enumerate(dataroots):
        dataset, names = dataset_scenes(dataroot, split)
        for name in progress(names, len(names), f"encoding {Path(dataroot).name}") if progress else names:
            path = out / CACHE_DIR / f"{k}-{name}.npz"
            if not path.is_file():
                tensors = prepare_scene(dataset.clip(name), autoencoder, config)
                path.parent.mkdir(parents=True, exist_ok=True)
                scratch = path.with_name(f".{path.stem}.tmp.npz")
                np.savez_compressed(scratch, latents=tensors.latents, layouts=tensors.layouts, text=tensors.text,
                                    format=CACHE_FORMAT)  # fmt: skip
                scratch.replace(path)
            with np.load(path) as cached:
                scenes.append(SceneTensors(name, cached["latents"], cached["layouts"], cached["text"]))
    span = config.frame_stride * (config.frames - 1) + 1
    if not any(len(s.latents) >= span for s in scenes):
        raise DreamdriveError(f"no scene in {dataroots} has the {span} camera frames a training window needs.")
    return scenes


def mode_mask(modes: list[str], config: DiTConfig, frames: int) -> torch.Tensor:
    """(B, T, V, 1, h, w) UniMVM masks: 1 where content is given (the first frame, or CAM_FRONT's video)."""
    mask = torch.zeros(len(modes), frames, config.views, 1, *config.latent_size)
    for b, mode in enumerate(modes):
        if mode == "first-frame":
            mask[b, 0] = 1
        elif mode == "front-view":
            mask[b, :, FRONT] = 1
        elif mode != "none":
            raise DreamdriveError(f"mask mode {mode!r} must be one of {list(MODES)}.")
    return mask


def training_batch(
    scenes: list[SceneTensors], config: DiTConfig, batch_size: int, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Latents (B, T, V, C, h, w), layouts (B, T, V, 13, H, W) float and text (B, 384) of random windows."""
    span = config.frame_stride * (config.frames - 1) + 1
    eligible = [s for s in scenes if len(s.latents) >= span]
    latents, layouts, texts = [], [], []
    for pick in torch.randint(0, len(eligible), (batch_size,), generator=generator).tolist():
        scene = eligible[pick]
        start = int(torch.randint(0, len(scene.latents) - span + 1, (1,), generator=generator))
        window = slice(start, start + span, config.frame_stride)
        latents.append(torch.from_numpy(scene.latents[window].astype(np.float32)))
        layouts.append(torch.from_numpy(scene.layouts[window].astype(np.float32)))
        texts.append(torch.from_numpy(scene.text))
    return torch.stack(latents), torch.stack(layouts), torch.stack(texts)


def video_loss(
    model: UniMVM, scenes: list[SceneTensors], batch_size: int, generator: torch.Generator, shard: Shard = Shard()
) -> torch.Tensor:
    """Rectified flow over random windows (this process's `shard` of the batch), each with a random UniMVM mask
    (given content clean, no loss there) and, for a share of them, no layouts and no text (for classifier-free
    guidance)."""
    config = model.config
    x0, layouts, text = training_batch(scenes, config, batch_size, generator)
    picks = torch.multinomial(torch.tensor(MODE_SHARES), batch_size, replacement=True, generator=generator)
    mask = mode_mask([MODES[i] for i in picks.tolist()], config, config.frames)
    keep = (torch.rand(batch_size, generator=generator) >= config.drop_condition).float()
    layouts = layouts * keep[:, None, None, None, None, None]
    text = text * keep[:, None]
    t = sample_timesteps(batch_size, generator, shift=resolution_shift(config.tokens))
    noise = torch.randn(x0.shape, generator=generator)
    part = shard.part(batch_size)
    x0, layouts, text, mask, t, noise = x0[part], layouts[part], text[part], mask[part], t[part], noise[part]
    x_t = interpolate(x0, noise, t) * (1 - mask) + x0 * mask
    return flow_loss(model(x_t, t, x0, mask, layouts, text), x0, noise, given=mask)


def train_video(
    out: str | Path,
    dataroots: list[str | Path],
    vae: str | Path | None = None,
    preset: str = "tiny",
    split: str | None = "proc_train",
    batch_size: int = 4,
    loop: LoopConfig = LoopConfig(),
    config: DiTConfig | None = None,
    progress: Callable | None = None,
    scenes_progress: Callable | None = None,
) -> Path:
    """Train (or resume, or keep) a UniMVM video model in `out` on the scenes of `dataroots`; returns its model
    folder."""
    # 1. The configuration, matched to the autoencoder, and the cached scenes.
    if config is None:
        if preset not in PRESETS:
            raise DreamdriveError(f"preset {preset!r} must be one of {list(PRESETS)}.")
        config = PRESETS[preset]
    autoencoder = load_vae(vae)
    if (autoencoder.latent_channels, autoencoder.factor) != (config.latent_channels, config.vae_factor):
        raise DreamdriveError(f"the autoencoder has {autoencoder.latent_channels} latent channels at "
                              f"{autoencoder.factor}x; the {preset} video model needs {config.latent_channels} at "
                              f"{config.vae_factor}x. Pass a matching --vae.")  # fmt: skip
    out = Path(out)
    scenes = prepare_scenes(out, [Path(d) for d in dataroots], split, autoencoder, config, scenes_progress)
    # 2. The network, seeded, and the loop.
    torch.manual_seed(loop.seed)
    model = UniMVM(config)
    description = {"model": config.to_json(), "data": [str(d) for d in dataroots], "split": split,
                   "vae": weights_fingerprint(autoencoder), "batch_size": batch_size}  # fmt: skip

    def loss(network, generator, shard):
        return video_loss(network, scenes, batch_size, generator, shard)

    def pictures(ema: UniMVM, step: int) -> None:  # the first scene's first window, given its first frame
        scene = scenes[0]
        window = slice(0, config.frame_stride * (config.frames - 1) + 1, config.frame_stride)
        real = scene.latents[window].astype(np.float32)
        latents = generate_latents(ema, scene.layouts[window], scene.text, "first-frame", real, steps=10)
        real_images = decode_latents(autoencoder, torch.from_numpy(real))
        save_png(side_by_side(real_images, decode_latents(autoencoder, latents)), out / "samples" / f"{step:06d}.png")

    return train_loop(out, model, loss, loop, description, progress, on_save=pictures)


# -- generation ----------------------------------------------------------------------------------------------


@torch.no_grad()
def sample_window(
    model: UniMVM,
    given: torch.Tensor,
    mask: torch.Tensor,
    layouts: torch.Tensor,
    text: torch.Tensor,
    generator: torch.Generator,
    steps: int = 30,
    guidance: float = 2.0,
) -> torch.Tensor:
    """Latents (B, T, V, C, h, w) for one window: Euler over the rectified flow with classifier-free guidance
    (layouts and text dropped for the unconditional velocity), given content put back clean after every step."""
    noise = torch.randn(given.shape, generator=generator)

    def keep(x: torch.Tensor, t: float) -> torch.Tensor:
        return x * (1 - mask) + given * mask

    velocity = guided(
        lambda x, t: model(x, t, given, mask, layouts, text),
        lambda x, t: model(x, t, given, mask, torch.zeros_like(layouts), torch.zeros_like(text)),
        guidance,
    )
    shift = resolution_shift(model.config.tokens)
    return euler(velocity, keep(noise, 1.0), steps, shift=shift, keep=keep)


def generate_latents(
    model: UniMVM,
    layouts: np.ndarray,
    text: np.ndarray,
    mode: str,
    real: np.ndarray | None,
    seed: int = 0,
    steps: int = 30,
    guidance: float = 2.0,
    progress: Callable | None = None,
) -> torch.Tensor:
    """(F, V, C, h, w) latents of a whole scene of F model frames, window by window, each window after the first
    given the last frame of the one before.

    Args:
        layouts: (F, V, 13, H, W) uint8; text: (384,).
        mode: "none", "first-frame" (real[0] given) or "front-view" (real[:, CAM_FRONT] given throughout).
        real: (F, V, C, h, w) the real latents the mode reads (None for "none").
    """
    config = model.config
    frames = len(layouts)
    out = torch.zeros(frames, config.views, config.latent_channels, *config.latent_size)
    real_t = torch.from_numpy(np.asarray(real, np.float32)) if real is not None else None
    starts = list(range(0, max(frames - 1, 1), config.frames - 1))
    for k, start in enumerate(progress(starts) if progress else starts):
        end = min(start + config.frames, frames)
        length = end - start
        mask = mode_mask(["front-view" if mode == "front-view" else "none"], config, length)
        given = torch.zeros(1, length, *out.shape[1:])
        if mode == "front-view":
            given[0, :, FRONT] = real_t[start:end, FRONT]
        if k > 0:
            mask[0, 0] = 1
            given[0, 0] = out[start]
        elif mode == "first-frame":
            mask[0, 0] = 1
            given[0, 0] = real_t[0]
        window_layouts = torch.from_numpy(layouts[start:end].astype(np.float32))[None]
        generator = torch.Generator().manual_seed(seed * 1_000_003 + k)
        text_t = torch.from_numpy(np.asarray(text, np.float32))[None]
        out[start:end] = sample_window(model, given, mask, window_layouts, text_t, generator, steps, guidance)[0]
    return out


WEIGHTS = Path(__file__).resolve().parents[1] / "weights" / "unimvm-tiny"


def load_video_model(model: str | Path | None = None) -> UniMVM:
    """The video model in `model` (a model or run folder), else the one shipped in the package."""
    return UniMVM.load(model_folder(model, WEIGHTS, "video model", "dreamdrive video train"))


@dataclass
class GeneratedClip:
    """A generated clip beside the real one it stands for: the real clip's model frames (`real`, every one a
    key frame), the generated clip on the same frames, poses and boxes, both as images (T, V, H, W, 3)."""

    real: Clip
    generated: Clip
    real_images: np.ndarray
    images: np.ndarray
    record: dict


def generate_clip(
    dataset: NuscDataset,
    scene: str,
    network: UniMVM,
    autoencoder,
    mode: str = "first-frame",
    frames: int | None = None,
    steps: int = 30,
    guidance: float = 2.0,
    seed: int = 0,
    progress: Callable | None = None,
) -> GeneratedClip:
    """Generate `scene`'s clip conditioned on its layouts (and its first frame or CAM_FRONT video, as `mode`
    says), on the scene's model frames: one every `frame_stride` camera frames from the first key frame."""
    # 1. Check inputs: the mode, the scene and its cameras.
    if mode not in MODES:
        raise DreamdriveError(f"--mask {mode!r} must be one of {list(MODES)}.")
    if steps < 1 or guidance <= 0 or (frames is not None and frames < 1):
        raise DreamdriveError("--steps and --frames must be at least 1 and --cfg positive.")
    check_pair(network, autoencoder)
    source = dataset.clip(scene)
    check_rig(source, f"scene {scene} of {dataset.dataroot}")
    # 2. The model frames, each annotated.
    clip, indices = model_frames(source, network.config, frames)
    # 3. Conditions (layouts, text, the real frames the mode gives), sampling and decoding.
    real_images = scene_images(clip, network.config.image_size)
    layouts = scene_layouts(clip, network.config)
    text = embed_texts([clip.description])[0]
    images = generate_images(network, autoencoder, layouts, text, mode, real_images, seed, steps, guidance, progress)
    # 4. The generated clip: the real clip's poses, boxes and map, the generated images.
    record = {"scene": scene, "mask": mode, "frames": len(indices), "steps": steps, "cfg": guidance, "seed": seed,
              "frame_stride": network.config.frame_stride, "source_frames": indices}  # fmt: skip
    return GeneratedClip(with_images(clip, real_images), with_images(clip, images), real_images, images, record)


def check_pair(network: UniMVM, autoencoder) -> None:
    """The autoencoder must be the one the video model's latents come from."""
    config = network.config
    if (autoencoder.latent_channels, autoencoder.factor) != (config.latent_channels, config.vae_factor):
        raise DreamdriveError("the autoencoder does not match the video model (latent channels or scale); "
                              "pass the --vae the model was trained with.")  # fmt: skip


def model_frames(source: Clip, config: DiTConfig, frames: int | None = None) -> tuple[Clip, list[int]]:
    """The clip on the model's frames, each a key frame: one every `frame_stride` camera frames from the first
    key frame (the first `frames` of them), and their indices in `source`."""
    first = source.key_indices[0]
    indices = list(range(first, len(source.frames), config.frame_stride))[: frames or None]
    return source.subset(indices, every_key=True), indices


def generate_images(
    network: UniMVM,
    autoencoder,
    layouts: np.ndarray,
    text: np.ndarray,
    mode: str,
    real_images: np.ndarray | None,
    seed: int = 0,
    steps: int = 30,
    guidance: float = 2.0,
    progress: Callable | None = None,
) -> np.ndarray:
    """(F, V, H, W, 3) uint8 generated frames for (F, V, 13, H, W) layouts and a text embedding; `real_images`
    (F, V, H, W, 3) gives what the mode reads (its first frame for "first-frame"; None for "none")."""
    real = None
    if mode == "first-frame":
        real = encode_frames(autoencoder, real_images[:1])
    elif mode == "front-view":
        real = encode_frames(autoencoder, real_images)
    latents = generate_latents(network, layouts, text, mode, real, seed, steps, guidance, progress)
    return decode_latents(autoencoder, latents)


def with_images(clip: Clip, pictures: np.ndarray) -> Clip:
    """The clip with (F, V, H, W, 3) images in place of its frames' images, its rig resized to theirs."""
    height, width = pictures.shape[2:4]
    frames = [
        Frame(
            f.timestamp,
            f.global_T_ego,
            {name: pictures[t, v] for v, name in enumerate(clip.rig.names)},
            is_key=f.is_key,
            camera_poses=f.camera_poses,
        )  # fmt: skip
        for t, f in enumerate(clip.frames)
    ]
    return Clip(clip.name, frames, clip.agents, clip.rig.resized(width, height), clip.location, clip.hdmap,
                clip.description, clip.log_name)  # fmt: skip


def generate_video(
    data: str | Path,
    scene: str,
    out: str | Path,
    model: str | Path | None = None,
    vae: str | Path | None = None,
    mode: str = "first-frame",
    frames: int | None = None,
    steps: int = 30,
    guidance: float = 2.0,
    seed: int = 0,
    overwrite: bool = False,
    progress: Callable | None = None,
) -> dict:
    """Generate a scene's clip conditioned on its layouts (and its first frame or CAM_FRONT video, as `mode`
    says) and write `out`/dataset (nuScenes format), `out`/video.mp4 and `out`/real_vs_generated.png."""
    network = load_video_model(model)
    autoencoder = load_vae(vae)
    dataset = NuscDataset(data)
    out = Path(out)
    dataroot = out / "dataset"
    # A rerun of a finished generation with the same inputs is a no-op: generation.json is written last.
    inputs = {"data": str(Path(data).resolve()), "model": weights_fingerprint(network),
              "vae": weights_fingerprint(autoencoder), "frames": frames}  # fmt: skip
    done = out / "generation.json"
    if done.is_file():
        record = json.loads(done.read_text())
        wanted = {"scene": scene, "mask": mode, "steps": steps, "cfg": guidance, "seed": seed, "inputs": inputs}
        if all(record.get(k) == v for k, v in wanted.items()):
            return {**record, "dataset": str(dataroot)}
    clear_scratch(out)  # what a killed generation left beside its outputs
    result = generate_clip(dataset, scene, network, autoencoder, mode, frames, steps, guidance, seed, progress)
    write_dataset([result.generated], dataroot, dataset.version, {"generated": [scene]}, overwrite=overwrite)
    write_video(result.generated, out / "video.mp4", tile_width=network.config.image_size[1] * 2)
    save_png(side_by_side(result.real_images, result.images), out / "real_vs_generated.png")
    record = {**result.record, "inputs": inputs}
    atomic_write(done, json.dumps(record, indent=1).encode())
    return {**record, "dataset": str(dataroot)}


def side_by_side(real: np.ndarray, generated: np.ndarray, rows: int = 3) -> np.ndarray:
    """For `rows` frames spread over the clip: the six real views above the six generated ones."""
    picks = np.linspace(0, len(real) - 1, min(rows, len(real))).astype(int)
    strips = []
    for t in picks:
        strips += [
            np.hstack(list(real[t])),
            np.hstack(list(generated[t])),
            np.full((4, real.shape[3] * real.shape[1], 3), 255, np.uint8),
        ]
    return np.vstack(strips[:-1])
