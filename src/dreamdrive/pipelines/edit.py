"""Dream4Drive's generative insertion, training: the fusion adapter learns, on paired edits, to re-render a clip
with an inserted vehicle as the world would light it.

The edit is an inpainting in UniMVM's own terms. UniMVM's mask marks what is
given, clean, and carries no loss. Here it gives the source clip's latents
everywhere outside the edit region: the inserted object's silhouette grown by
`grow` pixels for its shadow and contact with the ground, at the latent
resolution. The model generates only inside the region, from:

- the target clip's layouts, which hold the vehicle's box;
- the scene text;
- through the adapter, the guidance maps of `conditions.guidance.guidance_maps`.

The objective is rectified flow inside the region. Latent cells under the object
weigh `1 + object_weight`; the ring around it, where the shadow falls, weighs
`1 + shadow_weight`. This is Dream4Drive's foreground-mask loss. Its LPIPS term
is left out: no LPIPS weights can be had offline, and decoding every step
through the autoencoder would double the cost of a CPU step. That is a stated
deviation from the paper.

The DiT starts from the world model's checkpoint and is frozen by default
(`finetune=False`). Only the adapter trains, and only it is saved, with the
DiT's fingerprint. With `finetune=True`, the DiT trains too and is saved beside
it in `dit/`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn

from dreamdrive.conditions.insert import InsertionReport, edit_guidance, naive_insert
from dreamdrive.core.clip import Clip
from dreamdrive.core.errors import DreamdriveError
from dreamdrive.diffusion.flow import flow_loss, interpolate, resolution_shift, sample_timesteps
from dreamdrive.diffusion.samplers import euler, guided
from dreamdrive.files import load_image
from dreamdrive.models.adapter import AdapterConfig, FusionAdapter, check_pair, preset, with_base
from dreamdrive.models.dit import UniMVM
from dreamdrive.nusc.reader import NuscDataset, dataset_fingerprint
from dreamdrive.nusc.writer import encode_jpeg
from dreamdrive.pipelines.pairs import cache_scenes, dataset_pair, npz_bytes, render_pair
from dreamdrive.pipelines.vae import load_vae
from dreamdrive.pipelines.video import check_rig, decode_latents, encode_frames, load_video_model, scene_layouts
from dreamdrive.scenario.retrieval import embed_texts
from dreamdrive.train.checkpoint import model_folder, weights_fingerprint
from dreamdrive.train.loop import LoopConfig, Shard, train_loop
from dreamdrive.world.builder import WorldConfig

CACHE_DIR = "pairs"
CACHE_FORMAT = 1


@dataclass
class PairTensors:
    """One paired edit ready for training (T model frames, V views).

    target, source: (T, V, C, h, w) float16 normalised latents; guidance: (T, V, 9, H, W) float16;
    layouts: (T, V, 13, H', W') uint8 of the target (the vehicle's box included); text: (384,) float32;
    region: (T, V, 1, h, w) float32 in {0, 1}, the edit region; weight: (T, V, 1, h, w) float32 loss weights.
    """

    target: np.ndarray
    source: np.ndarray
    guidance: np.ndarray
    layouts: np.ndarray
    text: np.ndarray
    region: np.ndarray
    weight: np.ndarray


def edit_region(mask: np.ndarray, factor: int, grow: int = 6) -> tuple[np.ndarray, np.ndarray]:
    """The edit region and the object's cells at the latent resolution, from pixel masks (T, V, H, W) bool:
    the mask grown by `grow` pixels, then any pixel in a latent cell marks the cell. Both (T, V, 1, h, w)."""
    kernel = np.ones((2 * grow + 1, 2 * grow + 1), np.uint8)
    flat = mask.reshape(-1, *mask.shape[2:]).astype(np.uint8)
    grown = np.stack([cv2.dilate(m, kernel) for m in flat]) if grow else flat
    pool = torch.nn.MaxPool2d(factor)
    region = pool(torch.from_numpy(grown).float()[:, None]).numpy()
    obj = pool(torch.from_numpy(flat).float()[:, None]).numpy()
    shape = (*mask.shape[:2], 1, *region.shape[2:])
    return region.reshape(shape), obj.reshape(shape)


def prepare_pair(pair, autoencoder, config, object_weight: float = 4.0, shadow_weight: float = 2.0) -> PairTensors:
    """A paired edit's tensors for the video model `config` (the pair's images must be its image size)."""
    if pair.target.shape[2:4] != config.image_size or pair.target.shape[:2] != (config.frames, config.views):
        raise DreamdriveError(f"paired edits of {pair.target.shape[:4]} (frames, views, height, width) do not fit "
                              f"the video model's {config.frames} x {config.views} x {config.image_size}.")  # fmt: skip
    region, obj = edit_region(pair.mask, config.vae_factor)
    weight = 1.0 + object_weight * obj + shadow_weight * (region - obj)
    return PairTensors(
        encode_frames(autoencoder, pair.target).astype(np.float16),
        encode_frames(autoencoder, pair.source).astype(np.float16),
        pair.guidance.astype(np.float16),
        scene_layouts(pair.clip, config),
        embed_texts([pair.clip.description])[0],
        region.astype(np.float32),
        weight.astype(np.float32),
    )


def prepare_pairs(
    out: Path,
    world: WorldConfig | None,
    autoencoder,
    config,
    progress: Callable | None = None,
    data: str | Path | None = None,
    split: str | None = None,
) -> list[PairTensors]:
    """The paired edits, cached in `out/pairs/` (written atomically; a rerun reads them; scenes without a near,
    visible vehicle are marked and skipped): of every scene of the procedural build `world` (`render_pair`),
    or, given `data`, of every scene of that dataset (of its `split`) by Dream4Drive's recipe for recorded
    clips (`dataset_pair`)."""
    if data is not None:
        dataset = NuscDataset(data)
        if split is not None and split not in dataset.splits:
            raise DreamdriveError(f"{data} has no split {split!r}; it has {sorted(dataset.splits)}.")
        names = dataset.splits[split] if split is not None else dataset.scene_names
        count = len(names)

        def pair_of(k: int):
            return dataset_pair(dataset.clip(names[k]), config.frames, config.frame_stride, config.image_size)
    else:
        count = world.scenes

        def pair_of(k: int):
            return render_pair(world, k, config.frames, config.frame_stride)

    def make(k: int) -> bytes | None:
        pair = pair_of(k)
        if pair is None:
            return None
        return npz_bytes(format=CACHE_FORMAT, **prepare_pair(pair, autoencoder, config).__dict__)

    pairs = []
    for path in cache_scenes(out / CACHE_DIR, count, make, progress=progress):
        with np.load(path) as cached:
            pairs.append(PairTensors(**{key: cached[key] for key in PairTensors.__dataclass_fields__}))
    if not pairs:
        raise DreamdriveError("no scene gave a paired edit (a vehicle near the ego and in view on every model "
                              "frame); give more scenes.")  # fmt: skip
    return pairs


class InsertionModel(nn.Module):
    """The world model's DiT and the fusion adapter, trained and saved together: `save` writes the adapter
    (config.json, model.safetensors) and, when the DiT is fine-tuned, the DiT in `dit/`."""

    def __init__(self, dit: UniMVM, adapter: FusionAdapter, finetune: bool = False):
        super().__init__()
        self.dit, self.adapter, self.finetune = dit, adapter, finetune
        self.dit.requires_grad_(finetune)
        self.config = dit.config

    def forward(self, x, t, given, mask, layouts, text, guidance):
        return self.dit(x, t, given, mask, layouts, text, residuals=self.adapter(guidance))

    def save(self, folder: str | Path) -> Path:
        folder = self.adapter.save(folder)
        if self.finetune:
            self.dit.save(folder / "dit")
        return folder


def batch_of(pairs: list[PairTensors], batch_size: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
    picks = torch.randint(0, len(pairs), (batch_size,), generator=generator).tolist()
    return {key: torch.stack([torch.from_numpy(getattr(pairs[i], key).astype(np.float32)) for i in picks])
            for key in PairTensors.__dataclass_fields__}  # fmt: skip


def edit_loss(
    model: InsertionModel, pairs: list[PairTensors], batch_size: int, generator: torch.Generator, shard=Shard()
) -> torch.Tensor:
    """Rectified flow inside the edit region (the source given, clean, outside it), weighted towards the object
    and its shadow; layouts and text dropped for a share of samples (for guidance), the guidance maps kept."""
    config = model.config
    batch = batch_of(pairs, batch_size, generator)
    keep = (torch.rand(batch_size, generator=generator) >= config.drop_condition).float()
    t = sample_timesteps(batch_size, generator, shift=resolution_shift(config.tokens))
    noise = torch.randn(batch["target"].shape, generator=generator)
    part = shard.part(batch_size)
    batch = {key: value[part] for key, value in batch.items()}
    keep, t, noise = keep[part], t[part], noise[part]
    x0, region = batch["target"], batch["region"]
    given = 1 - region
    x_t = interpolate(x0, noise, t) * region + batch["source"] * given
    layouts = batch["layouts"] * keep[:, None, None, None, None, None]
    prediction = model(x_t, t, batch["source"], given, layouts, batch["text"] * keep[:, None], batch["guidance"])
    return flow_loss(prediction, x0, noise, given=given, weight=batch["weight"])


def train_insertion(
    out: str | Path,
    world: WorldConfig,
    model: str | Path | None = None,
    vae: str | Path | None = None,
    adapter: AdapterConfig | str = "tiny",
    finetune: bool = False,
    batch_size: int = 2,
    loop: LoopConfig = LoopConfig(),
    progress: Callable | None = None,
    pairs_progress: Callable | None = None,
    data: str | Path | None = None,
    split: str | None = None,
) -> Path:
    """Train (or resume, or keep) a fusion adapter in `out` on the paired edits of the procedural build `world`,
    or, given `data`, of that recorded dataset's scenes (of `split`; `prepare_pairs`), over the video model
    `model` (default: shipped) and its autoencoder `vae`; returns the model folder."""
    # 1. The world model, its autoencoder and the cached paired edits.
    dit = load_video_model(model)
    autoencoder = load_vae(vae)
    config = dit.config
    if data is None and (world.width != config.image_size[1] or world.height != config.image_size[0]):
        raise DreamdriveError(f"paired edits must be rendered at the video model's {config.image_size[1]}x"
                              f"{config.image_size[0]}, not {world.width}x{world.height}.")  # fmt: skip
    out = Path(out)
    pairs = prepare_pairs(out, world, autoencoder, config, pairs_progress, data, split)
    # 2. The adapter, seeded, over the frozen (or fine-tuned) DiT, and the loop.
    fingerprint = weights_fingerprint(dit)
    adapter_config = with_base(preset(adapter, config) if isinstance(adapter, str) else adapter, fingerprint)
    torch.manual_seed(loop.seed)
    network = FusionAdapter(adapter_config)
    check_pair(network, dit, fingerprint)
    if data is not None:
        source = {"data": [dataset_fingerprint(Path(data), NuscDataset(data).version), split]}
    else:
        source = {"world": world.fingerprint()}
    description = {"adapter": adapter_config.to_json(), **source, "finetune": finetune,
                   "vae": weights_fingerprint(autoencoder), "batch_size": batch_size}  # fmt: skip

    def loss(net, generator, shard):
        return edit_loss(net, pairs, batch_size, generator, shard)

    return train_loop(out, InsertionModel(dit.train(), network, finetune), loss, loop, description, progress)


def load_insertion(folder: str | Path | None, model: str | Path | None = None) -> InsertionModel:
    """The adapter in `folder` (a model or run folder; None: the shipped one) over its DiT: the fine-tuned one
    saved beside it, else the video model `model` (default: shipped), which must be the one the adapter was
    trained with."""
    folder = model_folder(folder, WEIGHTS, "insertion adapter", "dreamdrive insert train")
    network = FusionAdapter.load(folder)
    finetuned = (folder / "dit" / "config.json").is_file()
    dit = UniMVM.load(folder / "dit") if finetuned else load_video_model(model)
    check_pair(network, dit, weights_fingerprint(dit) if not finetuned else network.config.base)
    return InsertionModel(dit, network, finetuned).eval()


# -- generative insertion --------------------------------------------------------------------------------


@torch.no_grad()
def sample_edit(
    model: InsertionModel,
    autoencoder,
    source: np.ndarray,
    guidance: np.ndarray,
    mask: np.ndarray,
    layouts: np.ndarray,
    text: np.ndarray,
    seed: int = 0,
    steps: int = 30,
    cfg: float = 2.0,
    grow: int = 6,
    base: np.ndarray | None = None,
    strength: float = 1.0,
    smooth: float = 0.0,
    shadow: float | None = None,
) -> np.ndarray:
    """The edited images (F, V, H, W, 3) uint8 of a clip of F model frames at the model's image size.

    Latent blending: every Euler step puts the source's latents back, clean, outside the edit region (the
    objects' silhouette grown by `grow` pixels, widened to whole latent cells), so the model generates only
    inside it. Pixel blending: after decoding, pixels outside the region grown by `grow` pixels are the source's
    own, exactly. Windows of the model's frames follow one another, each after the first given the last frame
    of the one before. Classifier-free guidance drops layouts and text; the guidance maps are always given.

    With `base`, the naive edit (the source with the objects pasted), the model edits that composite: the
    region starts from its latents noised to time `strength` (SDEdit; 1 is pure noise), and the decoded change is added
    to it, base + decode(z) - decode(z_base), so the autoencoder's own reconstruction error cancels and what
    the model leaves alone stays the base's pixels. Around the objects (outside their silhouettes) the change
    is smoothed by a Gaussian of sigma `smooth` pixels; with `shadow`, it is then read as a shadow: grey (the
    mean over channels), darkening only, and `shadow` grey levels less dark, so that the sampler's small
    noise there leaves the base alone.

    Args:
        source: (F, V, H, W, 3) uint8; guidance: (F, V, 9, H, W); mask: (F, V, H, W) bool;
        layouts: (F, V, 13, H', W') uint8 of the edited clip; text: (384,).
    """
    config = model.config
    frames = len(source)
    if source.shape[1:4] != (config.views, *config.image_size) or not (
        len(guidance) == len(mask) == len(layouts) == frames
    ):
        raise DreamdriveError(f"an edit needs {config.views} views of {config.image_size} on every frame, got "
                              f"images {source.shape}, guidance {guidance.shape}, masks {mask.shape}.")  # fmt: skip
    source_latents = torch.from_numpy(encode_frames(autoencoder, source))
    base_latents = torch.from_numpy(encode_frames(autoencoder, base)) if base is not None else None
    region = torch.from_numpy(edit_region(mask, config.vae_factor, grow)[0])
    text_t = torch.from_numpy(np.asarray(text, np.float32))[None]
    out = source_latents.clone()
    shift = resolution_shift(config.tokens)
    for k, start in enumerate(range(0, max(frames - 1, 1), config.frames - 1)):
        end = min(start + config.frames, frames)
        given = source_latents[start:end][None].clone()
        keep_mask = 1 - region[start:end][None]
        if k > 0:
            given[0, 0], keep_mask[0, 0] = out[start], 1
        residuals = model.adapter(torch.from_numpy(guidance[start:end].astype(np.float32))[None])
        window_layouts = torch.from_numpy(layouts[start:end].astype(np.float32))[None]

        def keep(x: torch.Tensor, t: float, given=given, keep_mask=keep_mask) -> torch.Tensor:
            return x * (1 - keep_mask) + given * keep_mask

        def velocity(layouts_in, text_in, given=given, keep_mask=keep_mask, residuals=residuals):
            return lambda x, t: model.dit(x, t, given, keep_mask, layouts_in, text_in, residuals=residuals)

        generator = torch.Generator().manual_seed(seed * 1_000_003 + k)
        noise = torch.randn(given.shape, generator=generator)
        if base_latents is not None:
            noise = interpolate(base_latents[start:end][None], noise, torch.tensor([strength]))
        field = guided(velocity(window_layouts, text_t), velocity(torch.zeros_like(window_layouts),
                                                                  torch.zeros_like(text_t)), cfg)  # fmt: skip
        out[start:end] = euler(field, keep(noise, 1.0), steps, shift=shift, keep=keep, start=strength)[0]
    images = decode_latents(autoencoder, out)
    if base is not None:
        change = images.astype(np.float32) - decode_latents(autoencoder, base_latents).astype(np.float32)
        if smooth > 0:  # around the objects only light and shadow change, smoothly: the texture stays the base's
            flat = change.reshape(-1, *change.shape[-3:])
            low = np.stack([cv2.GaussianBlur(c, (0, 0), smooth) for c in flat]).reshape(change.shape)
            if shadow is not None:
                low = np.minimum(low.mean(axis=-1, keepdims=True) + shadow, 0)
            change = np.where(mask[..., None], change, low)
        images = np.clip(np.round(base.astype(np.float32) + change), 0, 255).astype(np.uint8)
    return blend(source, images, pixel_region(mask, grow))


def pixel_region(mask: np.ndarray, grow: int = 6) -> np.ndarray:
    """(..., H, W) bool: the objects' masks grown by `grow` pixels, where generated pixels replace the source."""
    kernel = np.ones((2 * grow + 1, 2 * grow + 1), np.uint8)
    flat = mask.reshape(-1, *mask.shape[-2:]).astype(np.uint8)
    return np.stack([cv2.dilate(m, kernel) > 0 for m in flat]).reshape(mask.shape)


def blend(source: np.ndarray, generated: np.ndarray, region: np.ndarray) -> np.ndarray:
    """Images (..., H, W, 3): `generated` inside `region` (..., H, W) bool, `source` outside, resized to the
    source's size where they differ (bilinear for images, nearest for the region)."""
    height, width = source.shape[-3:-1]
    if generated.shape[-3:-1] != (height, width):
        flat = generated.reshape(-1, *generated.shape[-3:])
        generated = np.stack([cv2.resize(g, (width, height), interpolation=cv2.INTER_LINEAR) for g in flat])
        flat = region.reshape(-1, *region.shape[-2:]).astype(np.uint8)
        region = np.stack([cv2.resize(r, (width, height), interpolation=cv2.INTER_NEAREST) > 0 for r in flat])
        generated, region = generated.reshape(source.shape), region.reshape(source.shape[:-1])
    return np.where(region[..., None], generated, source)


WEIGHTS = Path(__file__).resolve().parents[1] / "weights" / "insert-tiny"


@dataclass(frozen=True)
class GenerativeOptions:
    """How generative insertion samples.

    Args:
        adapter: a trained adapter's model or run folder (default: the one shipped).
        model: the video model it was trained over, when it is not fine-tuned beside it (default: shipped).
        vae: the autoencoder of that video model (default: shipped).
        steps, cfg: Euler steps and classifier-free guidance scale; grow: the edit region's margin in pixels
            at the model's image size, around the objects' silhouettes, for shadows and contact.
        strength: the noise level the naive composite is edited from (`sample_edit`; 1: from pure noise, as
            the model was trained); smooth: the Gaussian sigma (pixels) of the change kept around the objects;
            shadow: that change read as a shadow, darkening only and by this many grey levels less (`sample_edit`;
            None keeps it as sampled). The defaults were chosen on held-out scenes of seed 1 (docs/insert.md).
    """

    adapter: str | None = None
    model: str | None = None
    vae: str | None = None
    steps: int = 30
    cfg: float = 2.0
    grow: int = 6
    strength: float = 0.3
    smooth: float = 4.0
    shadow: float | None = 6.0

    def __post_init__(self) -> None:
        if self.steps < 1 or self.cfg <= 0 or not 0 <= self.grow <= 32:
            raise DreamdriveError("--steps must be at least 1, --cfg positive and the region's margin 0 to 32 px.")
        if not 0 < self.strength <= 1 or self.smooth < 0 or (self.shadow is not None and self.shadow < 0):
            raise DreamdriveError(f"--strength must be in (0, 1] (got {self.strength}), smoothing and the shadow's "
                                  "threshold at least 0.")  # fmt: skip


class GenerativeInserter:
    """Dream4Drive's generative insertion of placements into a clip (`pipelines.insert`'s "generative" mode).

    The naive edit gives the new boxes, the LiDAR with rays stopped on them and the dense ground truth. Then
    every camera frame is re-rendered inside the edit region: the model runs on the clip's three interleaved
    sequences of one frame every `frame_stride` (its own frame rate), with the same noise for each so that
    neighbouring frames agree, at the model's image size. Its pixels replace the source only inside the region
    (resized to the clip's images): every other pixel, and every view the objects do not reach, is the
    source's own.
    """

    def __init__(self, options: GenerativeOptions = GenerativeOptions()):
        self.options = options
        self.model = load_insertion(options.adapter, options.model)
        self.autoencoder = load_vae(options.vae)
        config = self.model.config
        if (self.autoencoder.latent_channels, self.autoencoder.factor) != (config.latent_channels, config.vae_factor):
            raise DreamdriveError("the autoencoder does not match the insertion model's video model; pass the "
                                  "--vae it was trained with.")  # fmt: skip

    def fingerprint(self) -> str:
        weights = [weights_fingerprint(m) for m in (self.model.adapter, self.model.dit, self.autoencoder)]
        sampling = {k: v for k, v in asdict(self.options).items() if k not in ("adapter", "model", "vae")}
        return hashlib.sha256(json.dumps([weights, sampling]).encode()).hexdigest()

    def __call__(
        self, clip: Clip, placements: list, chooser, name: str, quality: int, seed: int = 0
    ) -> tuple[Clip, InsertionReport, Clip]:
        """The clip with `placements` inserted generatively, named `name`, its insertion report, and the naive
        edit it started from."""
        check_rig(clip, f"scene {clip.name}")
        config, options = self.model.config, self.options
        naive, report = naive_insert(clip, placements, chooser, name, quality)
        everything = list(range(len(clip.frames)))
        maps = edit_guidance(clip, placements, chooser, everything, config.image_size)
        layouts = scene_layouts(replace(naive, frames=[replace(f, is_key=True) for f in naive.frames]), config)
        text = embed_texts([clip.description])[0]
        generated = np.zeros_like(maps.source)
        for offset in range(min(config.frame_stride, len(everything))):
            chosen = everything[offset :: config.frame_stride]
            generated[chosen] = sample_edit(self.model, self.autoencoder, maps.source[chosen],
                                            maps.guidance[chosen], maps.mask[chosen], layouts[chosen], text,
                                            seed, options.steps, options.cfg, options.grow, maps.naive[chosen],
                                            options.strength, options.smooth, options.shadow)  # fmt: skip
        region = pixel_region(maps.mask, options.grow)
        frames = []
        for i, frame in enumerate(clip.frames):
            images = dict(naive.frames[i].images)
            for v, camera in enumerate(clip.rig):
                if region[i, v].any():
                    source = load_image(frame.images[camera.name])
                    rgb = blend(source, generated[i, v], region[i, v])
                    images[camera.name] = encode_jpeg(rgb, quality, f"{name} {camera.name}")
                else:
                    images[camera.name] = frame.images[camera.name]
            frames.append(replace(naive.frames[i], images=images))
        objects = ", ".join(p.asset.asset_id for p in placements)
        edited = replace(naive, frames=frames, description=f"{clip.description}; generative insertion of {objects}")
        return edited, replace(report, mode="generative"), naive
