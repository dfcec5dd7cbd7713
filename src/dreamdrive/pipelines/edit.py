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

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn

from dreamdrive.core.errors import DreamdriveError
from dreamdrive.diffusion.flow import flow_loss, interpolate, resolution_shift, sample_timesteps
from dreamdrive.models.adapter import AdapterConfig, FusionAdapter, check_pair, preset, with_base
from dreamdrive.models.dit import UniMVM
from dreamdrive.pipelines.pairs import cache_scenes, npz_bytes, render_pair
from dreamdrive.pipelines.vae import load_vae
from dreamdrive.pipelines.video import encode_frames, load_video_model, scene_layouts
from dreamdrive.scenario.retrieval import embed_texts
from dreamdrive.train.checkpoint import weights_fingerprint
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
    out: Path, world: WorldConfig, autoencoder, config, progress: Callable | None = None
) -> list[PairTensors]:
    """Every scene's paired edit of the build `world`, cached in `out/pairs/` (written atomically; a rerun reads
    them; scenes without a near, visible vehicle are marked and skipped)."""

    def make(k: int) -> bytes | None:
        pair = render_pair(world, k, config.frames, config.frame_stride)
        if pair is None:
            return None
        return npz_bytes(format=CACHE_FORMAT, **prepare_pair(pair, autoencoder, config).__dict__)

    pairs = []
    for path in cache_scenes(out / CACHE_DIR, world.scenes, make, progress=progress):
        with np.load(path) as cached:
            pairs.append(PairTensors(**{key: cached[key] for key in PairTensors.__dataclass_fields__}))
    if not pairs:
        raise DreamdriveError("no scene of the build gave a paired edit (a vehicle near the ego and in view); "
                              "build more scenes.")  # fmt: skip
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
) -> Path:
    """Train (or resume, or keep) a fusion adapter in `out` on the paired edits of the procedural build `world`,
    over the video model `model` (default: shipped) and its autoencoder `vae`; returns the model folder."""
    # 1. The world model, its autoencoder and the cached paired edits.
    dit = load_video_model(model)
    autoencoder = load_vae(vae)
    config = dit.config
    if world.width != config.image_size[1] or world.height != config.image_size[0]:
        raise DreamdriveError(f"paired edits must be rendered at the video model's {config.image_size[1]}x"
                              f"{config.image_size[0]}, not {world.width}x{world.height}.")  # fmt: skip
    out = Path(out)
    pairs = prepare_pairs(out, world, autoencoder, config, pairs_progress)
    # 2. The adapter, seeded, over the frozen (or fine-tuned) DiT, and the loop.
    fingerprint = weights_fingerprint(dit)
    adapter_config = with_base(preset(adapter, config) if isinstance(adapter, str) else adapter, fingerprint)
    torch.manual_seed(loop.seed)
    network = FusionAdapter(adapter_config)
    check_pair(network, dit, fingerprint)
    description = {"adapter": adapter_config.to_json(), "world": world.fingerprint(), "finetune": finetune,
                   "vae": weights_fingerprint(autoencoder), "batch_size": batch_size}  # fmt: skip

    def loss(net, generator, shard):
        return edit_loss(net, pairs, batch_size, generator, shard)

    return train_loop(out, InsertionModel(dit.train(), network, finetune), loss, loop, description, progress)


def load_insertion(folder: str | Path, model: str | Path | None = None) -> InsertionModel:
    """The adapter in `folder` over its DiT: the fine-tuned one saved beside it, else the video model `model`
    (default: shipped), which must be the one the adapter was trained with."""
    folder = Path(folder)
    if (folder / "model" / "config.json").is_file():
        folder = folder / "model"
    network = FusionAdapter.load(folder)
    finetuned = (folder / "dit" / "config.json").is_file()
    dit = UniMVM.load(folder / "dit") if finetuned else load_video_model(model)
    check_pair(network, dit, weights_fingerprint(dit) if not finetuned else network.config.base)
    return InsertionModel(dit, network, finetuned).eval()
