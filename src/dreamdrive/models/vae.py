"""The world model's latent autoencoder: a small per-frame convolutional encoder and decoder.

The design follows the tiny autoencoders that stand in for Stable Diffusion's VAE
(a strided-conv encoder and an upsampling decoder of residual conv blocks, no
attention, no KL posterior): an image (B, 3, H, W) in [-1, 1] becomes a latent
(B, C, H / 8, W / 8) and back. It is deterministic; training adds a little noise to
the latent before decoding so that the decoder forgives the video model's small
errors, and a light penalty keeps the latent's scale in check.

`encode` returns the latent normalised by the config's `latent_shift` and
`latent_scale` (measured on the training data once training ends: the video model
sees zero mean, unit variance), `decode` undoes it. Users with a pretrained
diffusers `AutoencoderKL` on disk can load it behind the same two methods
(`PretrainedAutoencoder`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from dreamdrive.core.errors import DreamdriveError
from dreamdrive.train.checkpoint import JsonConfig, SavedModel


@dataclass(frozen=True)
class VAEConfig(JsonConfig):
    """The autoencoder's size.

    Args:
        latent_channels: channels of the latent.
        widths: channels at each of the four resolutions, full resolution first (8x down in three steps).
        blocks: residual blocks at each resolution.
        latent_shift, latent_scale: the latent's mean and standard deviation on the training data
            (set after training; `encode` returns (z - shift) / scale).
        latent_noise: standard deviation of the noise added to the normalised latent in training.
    """

    latent_channels: int = 4
    widths: tuple[int, ...] = (32, 48, 64, 64)
    blocks: int = 2
    latent_shift: float = 0.0
    latent_scale: float = 1.0
    latent_noise: float = 0.1

    def __post_init__(self) -> None:
        if len(self.widths) != 4 or self.blocks < 1 or self.latent_channels < 1 or self.latent_scale <= 0:
            raise DreamdriveError("a VAE config needs four widths, at least one block and channel, a positive scale.")

    @property
    def factor(self) -> int:
        """Pixels per latent cell on a side."""
        return 2 ** (len(self.widths) - 1)


PRESETS: dict[str, VAEConfig] = {
    "tiny": VAEConfig(),  # about 0.5M + 0.5M parameters: trains on this CPU in half an hour
    "base": VAEConfig(latent_channels=8, widths=(64, 128, 256, 256), blocks=3),  # about 12M + 12M, for GPUs
}


class Block(nn.Module):
    """conv-SiLU-conv with a skip; the second conv starts at zero so the block starts as identity."""

    def __init__(self, width: int):
        super().__init__()
        self.conv1 = nn.Conv2d(width, width, 3, padding=1)
        self.conv2 = nn.Conv2d(width, width, 3, padding=1)
        nn.init.zeros_(self.conv2.weight)
        nn.init.zeros_(self.conv2.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.silu(self.conv1(F.silu(x))))


class Encoder(nn.Module):
    def __init__(self, config: VAEConfig):
        super().__init__()
        widths = config.widths
        layers: list[nn.Module] = [nn.Conv2d(3, widths[0], 3, padding=1)]
        for level, width in enumerate(widths):
            if level > 0:
                layers.append(nn.Conv2d(widths[level - 1], width, 3, stride=2, padding=1))  # halve H and W
            layers += [Block(width) for _ in range(config.blocks)]
        layers += [nn.SiLU(), nn.Conv2d(widths[-1], config.latent_channels, 3, padding=1)]
        self.layers = nn.Sequential(*layers)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.layers(image)  # (B, C, H / 8, W / 8)


class Decoder(nn.Module):
    def __init__(self, config: VAEConfig):
        super().__init__()
        widths = config.widths[::-1]
        layers: list[nn.Module] = [nn.Conv2d(config.latent_channels, widths[0], 3, padding=1)]
        for level, width in enumerate(widths):
            if level > 0:
                layers += [
                    nn.Upsample(scale_factor=2.0, mode="nearest"),
                    nn.Conv2d(widths[level - 1], width, 3, padding=1),
                ]
            layers += [Block(width) for _ in range(config.blocks)]
        layers += [nn.SiLU(), nn.Conv2d(widths[-1], 3, 3, padding=1)]
        self.layers = nn.Sequential(*layers)

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        return self.layers(latent)  # (B, 3, 8 h, 8 w)


class Autoencoder(SavedModel, nn.Module):
    """Images (B, 3, H, W) in [-1, 1] (H and W multiples of 8) <-> normalised latents (B, C, H / 8, W / 8)."""

    KIND = "vae"
    CONFIG = VAEConfig

    def __init__(self, config: VAEConfig):
        super().__init__()
        self.config = config
        self.encoder = Encoder(config)
        self.decoder = Decoder(config)

    @property
    def factor(self) -> int:
        return self.config.factor

    @property
    def latent_channels(self) -> int:
        return self.config.latent_channels

    def check(self, image: torch.Tensor) -> None:
        f = self.factor
        if image.ndim != 4 or image.shape[1] != 3 or image.shape[2] % f or image.shape[3] % f:
            raise DreamdriveError(f"the autoencoder takes (B, 3, H, W) images with H and W multiples of {f}; got "
                                  f"{tuple(image.shape)}.")  # fmt: skip

    def raw_latent(self, image: torch.Tensor) -> torch.Tensor:
        """The encoder's latent before normalisation (what `latent_shift`/`latent_scale` are measured on)."""
        self.check(image)
        return self.encoder(image)

    def encode(self, image: torch.Tensor) -> torch.Tensor:
        return (self.raw_latent(image) - self.config.latent_shift) / self.config.latent_scale

    def decode(self, latent: torch.Tensor) -> torch.Tensor:
        return self.decoder(latent * self.config.latent_scale + self.config.latent_shift)

    def with_latent_statistics(self, shift: float, scale: float) -> Autoencoder:
        """This network with the latent normalisation set (the weights are shared)."""
        self.config = replace(self.config, latent_shift=float(shift), latent_scale=float(scale))
        return self


class PretrainedAutoencoder(nn.Module):
    """A diffusers `AutoencoderKL` from a local folder (its `config.json` and weights), behind `encode`/`decode`
    with the same conventions: images in [-1, 1], latents multiplied by its `scaling_factor`. The posterior's
    mean is the latent (deterministic)."""

    def __init__(self, folder: str | Path):
        super().__init__()
        try:
            from diffusers import AutoencoderKL
        except ImportError as error:
            raise DreamdriveError(
                "loading a pretrained AutoencoderKL needs diffusers: pip install diffusers."
            ) from error
        try:
            self.vae = AutoencoderKL.from_pretrained(str(folder)).eval()
        except (OSError, ValueError) as error:
            raise DreamdriveError(f"{folder} holds no diffusers AutoencoderKL ({error}).") from error
        self.scaling = float(self.vae.config.scaling_factor)
        self.latent_channels = int(self.vae.config.latent_channels)
        self.factor = 2 ** (len(self.vae.config.block_out_channels) - 1)

    def encode(self, image: torch.Tensor) -> torch.Tensor:
        return self.vae.encode(image).latent_dist.mean * self.scaling

    def decode(self, latent: torch.Tensor) -> torch.Tensor:
        return self.vae.decode(latent / self.scaling).sample


def load_autoencoder(folder: str | Path) -> Autoencoder | PretrainedAutoencoder:
    """The project's autoencoder saved in `folder`, or a diffusers AutoencoderKL there (its config names
    `_class_name: AutoencoderKL`)."""
    path = Path(folder) / "config.json"
    if not path.is_file():
        raise DreamdriveError(f"{folder} holds no config.json; pass an autoencoder folder (`dreamdrive vae train`).")
    try:
        record = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise DreamdriveError(f"{path} is not valid JSON ({error}).") from error
    if isinstance(record, dict) and record.get("_class_name") == "AutoencoderKL":
        return PretrainedAutoencoder(folder)
    return Autoencoder.load(folder)
