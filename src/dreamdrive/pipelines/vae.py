"""The latent autoencoder's jobs: camera frames of any nuScenes-format dataset, training, reconstruction.

Training reads every camera image of the chosen scenes once into an array cached in
the run folder (`frames.npy`), then trains on random crops (the network is
convolutional: crops teach it the same, at a fraction of the cost). When the loop is
done, the latent's mean and standard deviation over the training frames are written
into the model's config, so the video model sees normalised latents.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torchmetrics.functional.image import peak_signal_noise_ratio, structural_similarity_index_measure

from dreamdrive.core.errors import DreamdriveError
from dreamdrive.files import atomic_write, load_image
from dreamdrive.models.vae import PRESETS, Autoencoder, VAEConfig, load_autoencoder
from dreamdrive.nusc.reader import NuscDataset
from dreamdrive.train.checkpoint import model_folder
from dreamdrive.train.loop import LoopConfig, Shard, train_loop
from dreamdrive.viz.pictures import save_png

FRAMES_FILE = "frames.npy"
LATENT_PENALTY = 1e-4  # keeps the unnormalised latent near unit scale


def dataset_scenes(dataroot: str | Path, split: str | None) -> tuple[NuscDataset, list[str]]:
    """A dataset and its scenes in `split` (all scenes when None)."""
    dataset = NuscDataset(dataroot)
    if split is None:
        return dataset, dataset.scene_names
    if split not in dataset.splits:
        raise DreamdriveError(f"{dataroot} has no split {split!r}; its splits are {sorted(dataset.splits)}.")
    return dataset, dataset.splits[split]


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """(N, H, W, 3) uint8 -> (N, 3, H, W) float in [-1, 1]."""
    return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float() / 127.5 - 1.0


def to_images(tensor: torch.Tensor) -> np.ndarray:
    """(N, 3, H, W) in [-1, 1] -> (N, H, W, 3) uint8."""
    return ((tensor.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()


def read_frames(
    dataroots: list[str | Path], split: str | None, size: tuple[int, int] | None, every: int = 1,
    progress: Callable | None = None,
) -> np.ndarray:  # fmt: skip
    """Every `every`-th camera frame of every camera of the chosen scenes, (N, H, W, 3) uint8, resized to
    `size` (width, height) when given; all frames must share one size."""
    images = []
    for dataroot in dataroots:
        dataset, scenes = dataset_scenes(dataroot, split)
        for scene in progress(scenes, len(scenes), f"reading {Path(dataroot).name}") if progress else scenes:
            clip = dataset.clip(scene)
            for frame in clip.frames[::every]:
                for channel in clip.rig.names:
                    image = load_image(frame.images[channel])
                    if size is not None and (image.shape[1], image.shape[0]) != size:
                        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
                    images.append(image)
    if not images:
        raise DreamdriveError(f"no camera frames in {dataroots} (split {split}); pass a dataset with camera images.")
    shapes = {image.shape for image in images}
    if len(shapes) > 1:
        raise DreamdriveError(f"the camera images have several sizes {sorted(shapes)}; pass --size WxH.")
    return np.stack(images)


def vae_loss(
    model: Autoencoder, frames: np.ndarray, batch_size: int, crop: int, generator, shard: Shard = Shard()
) -> torch.Tensor:
    """L1 + MSE of the reconstruction of random crops (this process's `shard` of the batch), with noise on the
    latent and a small latent penalty."""
    index = torch.randint(0, len(frames), (batch_size,), generator=generator).numpy()
    height, width = frames.shape[1:3]
    crop_h, crop_w = min(crop, height), min(crop, width)
    rows = torch.randint(0, height - crop_h + 1, (batch_size,), generator=generator).tolist()
    cols = torch.randint(0, width - crop_w + 1, (batch_size,), generator=generator).tolist()
    part = shard.part(batch_size)
    crops = [frames[i, r : r + crop_h, c : c + crop_w] for i, r, c in zip(index[part], rows[part], cols[part])]
    images = to_tensor(np.stack(crops))
    latent = model.encode(images)  # (B / processes, C, h, w)
    noise = torch.randn((batch_size, *latent.shape[1:]), generator=generator)[part] * model.config.latent_noise
    decoded = model.decode(latent + noise)  # (B / processes, 3, H, W)
    return F.l1_loss(decoded, images) + F.mse_loss(decoded, images) + LATENT_PENALTY * latent.pow(2).mean()


@torch.no_grad()
def latent_statistics(model: Autoencoder, frames: np.ndarray, count: int = 512, batch: int = 64) -> tuple[float, float]:
    """The raw latent's mean and standard deviation over `count` evenly spaced frames."""
    chosen = frames[np.linspace(0, len(frames) - 1, min(count, len(frames))).astype(int)]
    latents = torch.cat([model.raw_latent(to_tensor(chosen[i : i + batch])) for i in range(0, len(chosen), batch)])
    return float(latents.mean()), float(latents.std())


def train_vae(
    out: str | Path,
    dataroots: list[str | Path],
    preset: str = "tiny",
    split: str | None = "proc_train",
    batch_size: int = 16,
    crop: int = 48,
    loop: LoopConfig = LoopConfig(),
    config: VAEConfig | None = None,
    progress: Callable | None = None,
    frames_progress: Callable | None = None,
) -> Path:
    """Train (or resume, or keep) an autoencoder in `out` on the camera frames of `dataroots`; returns its model
    folder."""
    # 1. The configuration and the frames (cached in the run folder).
    if config is None:
        if preset not in PRESETS:
            raise DreamdriveError(f"preset {preset!r} must be one of {list(PRESETS)}.")
        config = PRESETS[preset]
    out = Path(out)
    cache = out / FRAMES_FILE
    if cache.is_file():
        frames = np.load(cache)
    else:
        frames = read_frames(dataroots, split, None, progress=frames_progress)
        out.mkdir(parents=True, exist_ok=True)
        scratch = out / f".{FRAMES_FILE}.tmp.npy"
        np.save(scratch, frames)
        scratch.replace(cache)
    # 2. The network, seeded, and the loop.
    torch.manual_seed(loop.seed)
    model = Autoencoder(config)
    description = {"model": config.to_json(), "data": [str(d) for d in dataroots], "split": split,
                   "batch_size": batch_size, "crop": crop}  # fmt: skip

    def loss(network, generator, shard):
        return vae_loss(network, frames, batch_size, crop, generator, shard)

    folder = train_loop(out, model, loss, loop, description, progress)
    # 3. The latent normalisation, measured on the training frames and stored with the weights.
    trained = Autoencoder.load(folder)
    if trained.config.latent_shift == 0.0 and trained.config.latent_scale == 1.0:
        trained.with_latent_statistics(*latent_statistics(trained, frames)).save(folder)
    return folder


WEIGHTS = Path(__file__).resolve().parents[1] / "weights" / "vae-tiny"


def load_vae(model: str | Path | None = None):
    """The autoencoder in `model` (a model or run folder, or a diffusers AutoencoderKL folder), else the one
    shipped in the package."""
    return load_autoencoder(model_folder(model, WEIGHTS, "autoencoder", "dreamdrive vae train"))


@torch.no_grad()
def reconstruct(model, images: np.ndarray, batch: int = 32) -> np.ndarray:
    """Images (N, H, W, 3) uint8 through the autoencoder and back."""
    out = [
        to_images(model.decode(model.encode(to_tensor(images[i : i + batch])))) for i in range(0, len(images), batch)
    ]
    return np.concatenate(out)


def reconstruction_scores(real: np.ndarray, decoded: np.ndarray) -> dict:
    """Mean PSNR (dB) and SSIM of `decoded` against `real` (N, H, W, 3) uint8, per image."""
    x = torch.from_numpy(real).permute(0, 3, 1, 2).float() / 255
    y = torch.from_numpy(decoded).permute(0, 3, 1, 2).float() / 255
    psnr = [float(peak_signal_noise_ratio(y[i : i + 1], x[i : i + 1], data_range=1.0)) for i in range(len(x))]
    ssim = float(structural_similarity_index_measure(y, x, data_range=1.0))
    return {"psnr": float(np.mean(psnr)), "ssim": ssim, "images": len(x)}


def recon_dataset(
    dataroot: str | Path, out: str | Path, model: str | Path | None = None, split: str | None = None, every: int = 12
) -> dict:
    """Reconstruct every `every`-th camera frame of a dataset; write the scores (recon.json) and a picture of
    real over reconstructed frames (recon.png)."""
    # 1. The autoencoder and the frames.
    autoencoder = load_vae(model)
    frames = read_frames([dataroot], split, None, every)
    factor = autoencoder.factor
    height, width = frames.shape[1:3]
    if height % factor or width % factor:
        raise DreamdriveError(f"the camera images are {width}x{height}; the autoencoder needs multiples of {factor}.")
    # 2. Reconstruction and scores.
    decoded = reconstruct(autoencoder, frames)
    scores = reconstruction_scores(frames, decoded)
    # 3. The record and a picture: six real frames over their reconstructions.
    out = Path(out)
    atomic_write(out / "recon.json", json.dumps(scores, indent=1).encode())
    chosen = np.linspace(0, len(frames) - 1, min(6, len(frames))).astype(int)
    picture = np.vstack([np.hstack(list(frames[chosen])), np.hstack(list(decoded[chosen]))])
    save_png(picture, out / "recon.png")
    return scores
