"""DriveDreamer-2's HD-map generator: a conditional U-Net over BEV rasters, trajectories in, HD map out.

The input is the BEV trajectory map (3 RGB channels: every agent's trajectory in its
class colour, graded in time, the ego's in white; `conditions.layout.trajectory_layout`);
the output is the velocity of a rectified flow (`diffusion.flow`) over the HD map
raster (3 channels in `core.hdmap.MAP_CHANNELS` order: road boundary, lane divider,
pedestrian crossing, scaled to [-1, 1]), ego at the centre facing up.

The trajectories enter one of two ways (`HDMapConfig.condition`):

- "controlnet": a conv encoder of the trajectory map whose features at every
  resolution are added to the U-Net's encoder features through zero-initialised
  1x1 convs, as ControlNet does (Zhang et al. 2023), so training starts from the
  unconditional network;
- "concat": the trajectory map is concatenated to the noisy map at the input.

Dropping the condition (all-zero trajectory map) in training makes classifier-free
guidance possible at sampling.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from dreamdrive.core.errors import DreamdriveError
from dreamdrive.core.hdmap import MAP_CHANNELS, PATCH_SIZE_M
from dreamdrive.models.layers import ResBlock, TimestepMLP, group_norm
from dreamdrive.train.checkpoint import JsonConfig, SavedModel

CONDITIONS = ("controlnet", "concat")


@dataclass(frozen=True)
class HDMapConfig(JsonConfig):
    """The HD-map generator's size and conditioning.

    Args:
        size: pixels on a side of the square BEV raster (a multiple of 2 ** (levels - 1)).
        patch_m: metres the raster covers on a side (resolution = patch_m / size).
        widths: channels of the U-Net at each resolution level, full resolution first.
        blocks: residual blocks per level on the way down (one more on the way up).
        condition: "controlnet" or "concat" (see the module docstring).
        cond_dim: width of the timestep conditioning vector.
        drop_condition: share of training samples whose trajectory map is dropped (for guidance).
    """

    size: int = 128
    patch_m: float = PATCH_SIZE_M
    widths: tuple[int, ...] = (16, 32, 64)
    blocks: int = 1
    condition: str = "controlnet"
    cond_dim: int = 64
    drop_condition: float = 0.1

    def __post_init__(self) -> None:
        if self.condition not in CONDITIONS:
            raise DreamdriveError(f"condition {self.condition!r} must be one of {list(CONDITIONS)}.")
        if self.size % 2 ** (len(self.widths) - 1) or self.size < 16:
            raise DreamdriveError(f"size {self.size} must be at least 16 and divide by {2 ** (len(self.widths) - 1)}.")
        if not 0 <= self.drop_condition < 1 or self.blocks < 1 or not self.widths:
            raise DreamdriveError("drop_condition must be in [0, 1), blocks at least 1 and widths non-empty.")

    @property
    def resolution(self) -> float:
        """Metres per pixel."""
        return self.patch_m / self.size


PRESETS: dict[str, HDMapConfig] = {
    "tiny": HDMapConfig(),  # 128 px over 102.4 m (0.8 m/px): trains on this CPU in about an hour
    "base": HDMapConfig(size=256, widths=(64, 128, 256, 256), blocks=2, cond_dim=256),  # 0.4 m/px, for GPUs
}


class HDMapNet(SavedModel, nn.Module):
    """The velocity network: (noisy map (B, 3, H, W), t (B,), trajectory map (B, 3, H, W)) -> (B, 3, H, W).
    `save(folder)` / `HDMapNet.load(folder)` use the checkpoint format."""

    KIND = "hdmap"
    CONFIG = HDMapConfig

    def __init__(self, config: HDMapConfig):
        super().__init__()
        self.config = config
        widths, blocks = config.widths, config.blocks
        channels = len(MAP_CHANNELS)
        self.time = TimestepMLP(config.cond_dim)
        concat = config.condition == "concat"
        self.stem = nn.Conv2d(channels + (3 if concat else 0), widths[0], 3, padding=1)
        self.down = nn.ModuleList()
        self.downsample = nn.ModuleList()
        skips = [widths[0]]
        width = widths[0]
        for level, out in enumerate(widths):
            for _ in range(blocks):
                self.down.append(ResBlock(width, out, config.cond_dim))
                width = out
                skips.append(width)
            if level < len(widths) - 1:
                self.downsample.append(nn.Conv2d(width, width, 3, stride=2, padding=1))
                skips.append(width)
        self.middle = ResBlock(width, width, config.cond_dim)
        self.up = nn.ModuleList()
        self.upsample = nn.ModuleList()
        for level, out in reversed(list(enumerate(widths))):
            for _ in range(blocks + 1):
                self.up.append(ResBlock(width + skips.pop(), out, config.cond_dim))
                width = out
            if level > 0:
                self.upsample.append(nn.Conv2d(width, width, 3, padding=1))
        self.out = nn.Sequential(group_norm(width), nn.SiLU(), nn.Conv2d(width, channels, 3, padding=1))
        nn.init.zeros_(self.out[-1].weight)
        nn.init.zeros_(self.out[-1].bias)
        self.control = ControlEncoder(widths, blocks) if not concat else None

    def forward(self, x: torch.Tensor, t: torch.Tensor, trajectories: torch.Tensor) -> torch.Tensor:
        config = self.config
        if x.shape[-2:] != (config.size, config.size) or trajectories.shape != x.shape:
            raise DreamdriveError(
                f"the HD-map model takes {config.size}x{config.size} rasters with a trajectory map of the same "
                f"shape; got {tuple(x.shape)} and {tuple(trajectories.shape)}."
            )
        cond = self.time(t)  # (B, D)
        h = self.stem(torch.cat([x, trajectories], 1) if self.control is None else x)  # (B, W0, H, W)
        controls = self.control(trajectories) if self.control is not None else None
        skips = [h]
        blocks, k = config.blocks, 0
        for level in range(len(config.widths)):
            for _ in range(blocks):
                h = self.down[k](h, cond)
                k += 1
                skips.append(h)
            if level < len(config.widths) - 1:
                h = self.downsample[level](h)  # (B, W, H / 2, W / 2)
                skips.append(h)
        if controls is not None:  # ControlNet: the trajectory features join every skip connection
            skips = [skip + control for skip, control in zip(skips, controls)]
        h = self.middle(h, cond)
        k = 0
        for i, level in enumerate(reversed(range(len(config.widths)))):
            for _ in range(blocks + 1):
                h = self.up[k](torch.cat([h, skips.pop()], 1), cond)
                k += 1
            if level > 0:
                h = self.upsample[i](F.interpolate(h, scale_factor=2.0, mode="nearest"))  # (B, W, 2H, 2W)
        return self.out(h)


class ControlEncoder(nn.Module):
    """The trajectory map encoded at every skip connection's resolution and width, each output through a
    zero-initialised 1x1 conv (so the condition starts with no effect)."""

    def __init__(self, widths: tuple[int, ...], blocks: int):
        super().__init__()
        self.stages = nn.ModuleList()
        self.zero = nn.ModuleList()
        width = widths[0]
        self.stem = nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.SiLU())
        self.zero.append(_zero_conv(width))
        for level, out in enumerate(widths):
            for _ in range(blocks):
                self.stages.append(nn.Sequential(nn.Conv2d(width, out, 3, padding=1), nn.SiLU()))
                width = out
                self.zero.append(_zero_conv(width))
            if level < len(widths) - 1:
                self.stages.append(nn.Sequential(nn.Conv2d(width, width, 3, stride=2, padding=1), nn.SiLU()))
                self.zero.append(_zero_conv(width))

    def forward(self, trajectories: torch.Tensor) -> list[torch.Tensor]:
        h = self.stem(trajectories)  # (B, W0, H, W)
        out = [self.zero[0](h)]
        for stage, zero in zip(self.stages, self.zero[1:]):
            h = stage(h)
            out.append(zero(h))
        return out


def _zero_conv(width: int) -> nn.Conv2d:
    conv = nn.Conv2d(width, width, 1)
    nn.init.zeros_(conv.weight)
    nn.init.zeros_(conv.bias)
    return conv
