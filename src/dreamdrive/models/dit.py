"""UniMVM: DriveDreamer-2's unified multi-view video model, as a diffusion transformer over latents.

The six views of one time step, in ring order (CAM_FRONT_LEFT, CAM_FRONT,
CAM_FRONT_RIGHT, CAM_BACK_RIGHT, CAM_BACK, CAM_BACK_LEFT), are laid side by side
along the width into one wide latent frame, so spatial attention sees every view at
once and cross-view consistency needs no cross-view parameters. Each block attends
over the wide frame of one time step, then over time at each position, then applies
an MLP, each modulated by adaLN-zero (Peebles and Xie, "Scalable Diffusion Models
with Transformers", 2023) from the timestep and the pooled scene text.

What the network sees per view and frame, concatenated along channels:

- the noisy latent (C);
- UniMVM's mask (1) and the given latents under it (C): nothing, the first frame, or
  one view's video; given content is clean (t = 0) and carries no loss;
- the layouts (map 3 + boxes 10 channels, `conditions.layout`), encoded by a small
  strided-conv encoder down to the latent's resolution.

Positions: rows by sine-cosine; columns by sine-cosine of the angle around the ring
with integer frequencies, so the back-left view's right edge sits next to the front-
left view's left edge; a learned embedding per view; sine-cosine over frames.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from dreamdrive.core.errors import DreamdriveError
from dreamdrive.models.layers import TimestepMLP
from dreamdrive.train.checkpoint import JsonConfig, SavedModel

MAP_LAYOUT_CHANNELS = 3
BOX_LAYOUT_CHANNELS = 10
TEXT_DIM = 384  # the packaged MiniLM's sentence embedding


@dataclass(frozen=True)
class DiTConfig(JsonConfig):
    """The video model's size and what it was trained on.

    Args:
        views, frames: views in the ring and frames per window.
        latent_channels: of the autoencoder; latent_size: (h, w) of one view's latent.
        vae_factor: image pixels per latent cell (the autoencoder's); image size = latent_size * vae_factor.
        frame_stride: source camera frames (12 Hz) per model frame.
        patch: latent cells per token on a side.
        hidden, depth, heads, mlp_ratio: the transformer.
        layout_factor: layout pixels per latent cell (layouts are max-pooled to latent_size * layout_factor).
        layout_width: channels of the layout encoder and of its output.
        drop_condition: share of training samples whose layouts and text are dropped (for guidance).
    """

    views: int = 6
    frames: int = 8
    latent_channels: int = 4
    latent_size: tuple[int, int] = (8, 14)
    vae_factor: int = 8
    frame_stride: int = 3
    patch: int = 2
    hidden: int = 128
    depth: int = 6
    heads: int = 4
    mlp_ratio: float = 4.0
    layout_factor: int = 4
    layout_width: int = 32
    drop_condition: float = 0.1

    def __post_init__(self) -> None:
        h, w = self.latent_size
        if h % self.patch or w % self.patch:
            raise DreamdriveError(f"latent size {self.latent_size} must divide by the patch {self.patch}.")
        if self.hidden % self.heads or self.hidden % 4:
            raise DreamdriveError(f"hidden {self.hidden} must divide by the heads {self.heads} and by 4.")
        if self.layout_factor < 1 or self.layout_factor & (self.layout_factor - 1):
            raise DreamdriveError(f"layout_factor {self.layout_factor} must be a power of two.")
        if self.views < 1 or self.frames < 1 or self.depth < 1 or not 0 <= self.drop_condition < 1:
            raise DreamdriveError("views, frames and depth must be at least 1 and drop_condition in [0, 1).")

    @property
    def image_size(self) -> tuple[int, int]:
        """(height, width) of one view's image."""
        return self.latent_size[0] * self.vae_factor, self.latent_size[1] * self.vae_factor

    @property
    def layout_size(self) -> tuple[int, int]:
        return self.latent_size[0] * self.layout_factor, self.latent_size[1] * self.layout_factor

    @property
    def tokens(self) -> int:
        """Tokens in one window: frames x wide-frame patches."""
        h, w = self.latent_size
        return self.frames * (h // self.patch) * (self.views * w // self.patch)


PRESETS: dict[str, DiTConfig] = {
    # 6 views of 64 x 112 px (8 x 14 latents), 8 frames at 4 Hz: trains on this CPU in about an hour
    "tiny": DiTConfig(),
    # DriveDreamer-2's setting: 6 views of 256 x 448 px, 8 frames; 32 x 56 latents, 2 x 2 patches, for GPUs
    "base": DiTConfig(
        latent_channels=8,
        latent_size=(32, 56),
        frame_stride=1,
        hidden=768,
        depth=16,
        heads=12,
        layout_factor=8,
        layout_width=64,
    ),  # fmt: skip
}


def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """x (B, N, D) scaled and shifted by (B, D) vectors."""
    return x * (1 + scale[:, None]) + shift[:, None]


class Attention(nn.Module):
    """Multi-head self-attention over the middle axis of (B, N, D)."""

    def __init__(self, hidden: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(hidden, 3 * hidden)
        self.out = nn.Linear(hidden, hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = rearrange(self.qkv(x), "b n (three h d) -> three b h n d", three=3, h=self.heads)
        y = F.scaled_dot_product_attention(q, k, v)  # (B, heads, N, D / heads)
        return self.out(rearrange(y, "b h n d -> b n (h d)"))


class Block(nn.Module):
    """Spatial attention over a wide frame, temporal attention at each position, MLP; adaLN-zero modulated."""

    def __init__(self, hidden: int, heads: int, mlp_ratio: float):
        super().__init__()
        self.norm_spatial = nn.LayerNorm(hidden, elementwise_affine=False, eps=1e-6)
        self.spatial = Attention(hidden, heads)
        self.norm_temporal = nn.LayerNorm(hidden, elementwise_affine=False, eps=1e-6)
        self.temporal = Attention(hidden, heads)
        self.norm_mlp = nn.LayerNorm(hidden, elementwise_affine=False, eps=1e-6)
        inner = int(hidden * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(hidden, inner), nn.GELU(approximate="tanh"), nn.Linear(inner, hidden))
        self.modulation = nn.Sequential(nn.SiLU(), nn.Linear(hidden, 9 * hidden))
        nn.init.zeros_(self.modulation[-1].weight)  # adaLN-zero: every block starts as the identity
        nn.init.zeros_(self.modulation[-1].bias)

    def forward(self, x: torch.Tensor, cond: torch.Tensor, frames: int) -> torch.Tensor:
        # x: ((B T), N, D); cond: (B, D)
        mods = self.modulation(cond).repeat_interleave(frames, dim=0).chunk(9, dim=1)  # 9 x ((B T), D)
        x = x + mods[2][:, None] * self.spatial(modulate(self.norm_spatial(x), mods[0], mods[1]))
        tokens = x.shape[1]
        h = rearrange(modulate(self.norm_temporal(x), mods[3], mods[4]), "(b t) n d -> (b n) t d", t=frames)
        h = rearrange(self.temporal(h), "(b n) t d -> (b t) n d", n=tokens)
        x = x + mods[5][:, None] * h
        return x + mods[8][:, None] * self.mlp(modulate(self.norm_mlp(x), mods[6], mods[7]))


class LayoutEncoder(nn.Module):
    """Layouts (N, 13, h * f, w * f) -> features (N, width, h, w): a conv, then log2(f) stride-2 convs."""

    def __init__(self, factor: int, width: int):
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(MAP_LAYOUT_CHANNELS + BOX_LAYOUT_CHANNELS, width, 3, padding=1), nn.SiLU()]
        for _ in range(int(math.log2(factor))):
            layers += [nn.Conv2d(width, width, 3, stride=2, padding=1), nn.SiLU()]
        layers.append(nn.Conv2d(width, width, 1))
        self.layers = nn.Sequential(*layers)

    def forward(self, layouts: torch.Tensor) -> torch.Tensor:
        return self.layers(layouts)


def ring_position_embedding(rows: int, columns: int, hidden: int) -> torch.Tensor:
    """(rows * columns, hidden): half the features sine-cosine of the row, half of the column's angle around
    the ring at integer frequencies spread geometrically from 1 to columns / 4 (integers, so the last column
    neighbours the first; well below columns / 2, so neighbours stay closer than columns far apart)."""
    quarter = hidden // 4
    row = torch.arange(rows, dtype=torch.float64)[:, None]
    frequencies = torch.exp(-math.log(100.0) * torch.arange(quarter, dtype=torch.float64) / quarter)  # (Q,)
    row_features = torch.cat([torch.sin(row * frequencies), torch.cos(row * frequencies)], 1)  # (rows, 2Q)
    angle = 2 * math.pi * torch.arange(columns, dtype=torch.float64)[:, None] / columns
    harmonics = torch.round(torch.logspace(0, math.log10(max(columns / 4, 1)), quarter, dtype=torch.float64))
    column_features = torch.cat([torch.sin(angle * harmonics), torch.cos(angle * harmonics)], 1)  # (columns, 2Q)
    grid = torch.cat(
        [row_features[:, None].expand(rows, columns, -1), column_features[None].expand(rows, columns, -1)], 2
    )  # (rows, columns, 4Q)
    return grid.reshape(rows * columns, 4 * quarter).float()


def frame_embedding(frames: int, hidden: int) -> torch.Tensor:
    """(frames, hidden) sine-cosine features of the frame index."""
    position = torch.arange(frames, dtype=torch.float64)[:, None]
    frequencies = torch.exp(-math.log(10_000.0) * torch.arange(hidden // 2, dtype=torch.float64) / (hidden // 2))
    return torch.cat([torch.sin(position * frequencies), torch.cos(position * frequencies)], 1).float()


class UniMVM(SavedModel, nn.Module):
    """The velocity network.

    forward(x, t, given, mask, layouts, text):
        x: (B, T, V, C, h, w) noisy latents; t: (B,) timesteps in [0, 1];
        given: (B, T, V, C, h, w) clean latents (read where mask is 1); mask: (B, T, V, 1, h, w) in {0, 1};
        layouts: (B, T, V, 13, h * f, w * f) in [0, 1] (map then box channels; f = layout_factor);
        text: (B, 384) the scene description's embedding (zeros: none);
        residuals: optional {block index: ((B T), N, D)} added to the tokens before that block (an adapter's
            injection, `models.adapter`).
    returns the velocity (B, T, V, C, h, w).
    """

    KIND = "unimvm"
    CONFIG = DiTConfig

    def __init__(self, config: DiTConfig):
        super().__init__()
        self.config = config
        c, d, p = config.latent_channels, config.hidden, config.patch
        h, w = config.latent_size
        self.layout_encoder = LayoutEncoder(config.layout_factor, config.layout_width)
        self.patchify = nn.Conv2d(2 * c + 1 + config.layout_width, d, p, stride=p)
        self.register_buffer("position", ring_position_embedding(h // p, config.views * w // p, d), persistent=False)
        self.register_buffer("frame_position", frame_embedding(config.frames, d), persistent=False)
        self.view_embedding = nn.Parameter(torch.randn(config.views, d) * 0.02)
        self.time = TimestepMLP(d)
        self.text = nn.Sequential(nn.Linear(TEXT_DIM, d), nn.SiLU(), nn.Linear(d, d))
        self.blocks = nn.ModuleList(Block(d, config.heads, config.mlp_ratio) for _ in range(config.depth))
        self.norm_out = nn.LayerNorm(d, elementwise_affine=False, eps=1e-6)
        self.modulation_out = nn.Sequential(nn.SiLU(), nn.Linear(d, 2 * d))
        self.out = nn.Linear(d, p * p * c)
        for layer in (self.modulation_out[-1], self.out):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def check(self, x: torch.Tensor, layouts: torch.Tensor) -> None:
        config = self.config
        expected = (config.views, config.latent_channels, *config.latent_size)
        if x.ndim != 6 or (x.shape[2], *x.shape[3:]) != expected or x.shape[1] > config.frames:
            raise DreamdriveError(
                f"UniMVM ({config.views} views, up to {config.frames} frames, latents {config.latent_channels} x "
                f"{config.latent_size}) got latents of shape {tuple(x.shape)}."
            )
        layout_shape = (config.views, MAP_LAYOUT_CHANNELS + BOX_LAYOUT_CHANNELS, *config.layout_size)
        if tuple(layouts.shape[2:]) != layout_shape or layouts.shape[:2] != x.shape[:2]:
            raise DreamdriveError(f"layouts must be (B, T, *{layout_shape}), got {tuple(layouts.shape)}.")

    def forward(
        self,
        x: torch.Tensor,
        t: torch.Tensor,
        given: torch.Tensor,
        mask: torch.Tensor,
        layouts: torch.Tensor,
        text: torch.Tensor,
        residuals: dict[int, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        self.check(x, layouts)
        config = self.config
        batch, frames, views = x.shape[:3]
        h, w = config.latent_size
        p = config.patch
        # 1. Per view and frame: noisy latent, mask, given latents and layout features, on the latent grid.
        features = self.layout_encoder(rearrange(layouts, "b t v c y x -> (b t v) c y x"))  # ((B T V), L, h, w)
        inputs = torch.cat(
            [
                rearrange(x, "b t v c y x -> (b t v) c y x"),
                rearrange(mask, "b t v c y x -> (b t v) c y x"),
                rearrange(given * mask, "b t v c y x -> (b t v) c y x"),
                features,
            ],
            1,
        )  # ((B T V), 2C + 1 + L, h, w)
        # 2. The wide frame of each time step, patchified into tokens, with ring, view and frame positions.
        wide = rearrange(inputs, "(b t v) c y x -> (b t) c y (v x)", b=batch, t=frames)  # ((B T), ., h, V w)
        tokens = rearrange(self.patchify(wide), "n d y x -> n (y x) d")  # ((B T), N, D), N = h/p * V w/p
        view_of_column = torch.arange(views * w // p, device=x.device) // (w // p)  # (V w/p,)
        views_embedded = self.view_embedding[view_of_column].repeat(h // p, 1)  # (N, D), row-major like tokens
        frame_positions = self.frame_position[:frames].repeat(batch, 1)[:, None]  # ((B T), 1, D)
        tokens = tokens + self.position + views_embedded + frame_positions
        # 3. The conditioning vector: timestep and scene text.
        cond = self.time(t) + self.text(text)  # (B, D)
        # 4. The blocks.
        residuals = residuals or {}
        for index, block in enumerate(self.blocks):
            if index in residuals:
                tokens = tokens + residuals[index]
            tokens = block(tokens, cond, frames)  # ((B T), N, D)
        # 5. Back to latents per view and frame.
        shift, scale = self.modulation_out(cond).repeat_interleave(frames, dim=0).chunk(2, dim=1)
        out = self.out(modulate(self.norm_out(tokens), shift, scale))  # ((B T), N, p p C)
        out = rearrange(out, "n (y x) (p q c) -> n c (y p) (x q)", y=h // p, p=p, q=p)  # ((B T), C, h, V w)
        return rearrange(out, "(b t) c y (v x) -> b t v c y x", b=batch, v=views)
