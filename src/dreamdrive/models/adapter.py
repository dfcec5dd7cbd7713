"""Dream4Drive's multi-condition fusion adapter: 3D-aware guidance maps steer the UniMVM video DiT.

Per view and frame the adapter reads five guidance maps at the image's resolution,
stacked along channels in `CONDITIONS` order (a config may keep a subset, for
ablations):

- depth (1): the scene's inverse depth 1 / (1 + z / 10 m), blanked (0) where the
  inserted object covers it;
- normal (3): the scene's camera-frame unit normals, blanked there too;
- edge (1): the scene's edges, blanked there too;
- object (3): the inserted asset's rendered pixels in [0, 1], black elsewhere;
- mask (1): the inserted asset's visible silhouette.

Each condition has its own light encoder: a conv, then stride-2 convs down to the
DiT's token grid (image pixels per token = vae_factor x patch), then a 1x1 conv to
the DiT's width. The encoded conditions are fused per token, either by learned
weights (a softmax over one logit per condition) or by attention across the
conditions (a learned query per token position's content; `fusion`). A shared MLP
mixes the fused features, and one zero-initialised linear layer per chosen DiT
block turns them into a residual added to that block's input tokens, so an
untrained adapter leaves the DiT exactly as it was (as ControlNet's zero
convolutions do).

The adapter knows the DiT it was trained against: its geometry, and the weights'
fingerprint (`base`), which loading checks so that an adapter is never paired with
another world model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch
from einops import rearrange
from torch import nn

from dreamdrive.core.errors import DreamdriveError
from dreamdrive.models.dit import DiTConfig, UniMVM
from dreamdrive.train.checkpoint import JsonConfig, SavedModel

CONDITIONS: dict[str, int] = {"depth": 1, "normal": 3, "edge": 1, "object": 3, "mask": 1}
FUSIONS = ("weights", "attention")


@dataclass(frozen=True)
class AdapterConfig(JsonConfig):
    """The adapter's size, its conditions, and the DiT it plugs into.

    Args:
        views, frames, latent_size, vae_factor, patch, hidden, depth: the DiT's (`DiTConfig`).
        conditions: the guidance maps read, a subset of `CONDITIONS` in that order.
        width: channels of each condition's encoder.
        fusion: "weights" (learned per-condition weights) or "attention" (attention across conditions per token).
        blocks: the DiT blocks that get a residual.
        base: fingerprint of the DiT weights the adapter was trained with ("" until training sets it).
    """

    views: int = 6
    frames: int = 8
    latent_size: tuple[int, int] = (8, 14)
    vae_factor: int = 8
    patch: int = 2
    hidden: int = 128
    depth: int = 6
    conditions: tuple[str, ...] = tuple(CONDITIONS)
    width: int = 32
    fusion: str = "weights"
    blocks: tuple[int, ...] = (0, 1, 2)
    base: str = ""

    def __post_init__(self) -> None:
        unknown = [c for c in self.conditions if c not in CONDITIONS]
        if unknown or not self.conditions or len(set(self.conditions)) != len(self.conditions):
            raise DreamdriveError(f"adapter conditions {list(self.conditions)} must be distinct names from "
                                  f"{list(CONDITIONS)}.")  # fmt: skip
        if self.fusion not in FUSIONS:
            raise DreamdriveError(f"adapter fusion {self.fusion!r} must be one of {list(FUSIONS)}.")
        if (
            not self.blocks
            or any(not 0 <= b < self.depth for b in self.blocks)
            or len(set(self.blocks)) != len(self.blocks)
        ):
            raise DreamdriveError(f"adapter blocks {list(self.blocks)} must be distinct, in 0..{self.depth - 1}.")
        stride = self.vae_factor * self.patch
        if stride & (stride - 1):
            raise DreamdriveError(f"pixels per token {stride} must be a power of two.")

    @classmethod
    def for_dit(cls, dit: DiTConfig, **overrides) -> AdapterConfig:
        """An adapter config that fits `dit`, with `overrides` (conditions, width, fusion, blocks, base); the
        blocks default to the first half of the DiT's."""
        geometry = {"views": dit.views, "frames": dit.frames, "latent_size": dit.latent_size,
                    "vae_factor": dit.vae_factor, "patch": dit.patch, "hidden": dit.hidden, "depth": dit.depth,
                    "blocks": tuple(range(max(1, dit.depth // 2)))}  # fmt: skip
        return cls(**{**geometry, **overrides})

    @property
    def channels(self) -> int:
        """Guidance channels read per view and frame."""
        return sum(CONDITIONS[c] for c in self.conditions)

    @property
    def image_size(self) -> tuple[int, int]:
        return self.latent_size[0] * self.vae_factor, self.latent_size[1] * self.vae_factor


def preset(name: str, dit: DiTConfig) -> AdapterConfig:
    """`tiny` (for this CPU: the first half of the blocks) or `base` (every fourth block of a paper-scale DiT)."""
    if name == "tiny":
        return AdapterConfig.for_dit(dit, width=32)
    if name == "base":
        return AdapterConfig.for_dit(dit, width=128, blocks=tuple(range(0, dit.depth, 4)))
    raise DreamdriveError(f"adapter preset {name!r} must be 'tiny' or 'base'.")


class ConditionEncoder(nn.Module):
    """One guidance map (N, c, H, W) -> token features (N, D, H / s, W / s), s = pixels per token."""

    def __init__(self, channels: int, width: int, stride: int, hidden: int):
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(channels, width, 3, padding=1), nn.SiLU()]
        for _ in range(int(math.log2(stride))):
            layers += [nn.Conv2d(width, width, 3, stride=2, padding=1), nn.SiLU()]
        layers.append(nn.Conv2d(width, hidden, 1))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class FusionAdapter(SavedModel, nn.Module):
    """forward(guidance) -> {block index: residual ((B T), N, D)} for `UniMVM.forward(..., residuals=...)`.

    guidance: (B, T, V, channels, H, W), the maps of `config.conditions` stacked in that order, H x W the
    DiT's image size.
    """

    KIND = "fusion-adapter"
    CONFIG = AdapterConfig

    def __init__(self, config: AdapterConfig):
        super().__init__()
        self.config = config
        d, stride = config.hidden, config.vae_factor * config.patch
        self.encoders = nn.ModuleDict(
            {name: ConditionEncoder(CONDITIONS[name], config.width, stride, d) for name in config.conditions}
        )
        k = len(config.conditions)
        self.condition_embedding = nn.Parameter(torch.zeros(k, d))
        if config.fusion == "weights":
            self.logits = nn.Parameter(torch.zeros(k))  # equal weights at the start
        else:
            self.query = nn.Linear(d, d)
            self.key = nn.Linear(d, d)
        self.mix = nn.Sequential(nn.LayerNorm(d), nn.Linear(d, d), nn.SiLU(), nn.Linear(d, d))
        self.inject = nn.ModuleDict({str(b): nn.Linear(d, d) for b in config.blocks})
        for layer in self.inject.values():  # zero start: the DiT is unchanged until the adapter learns
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def check(self, guidance: torch.Tensor) -> None:
        config = self.config
        expected = (config.views, config.channels, *config.image_size)
        if guidance.ndim != 6 or tuple(guidance.shape[2:]) != expected or guidance.shape[1] > config.frames:
            raise DreamdriveError(f"the adapter ({list(config.conditions)}) needs guidance (B, T, *{expected}) with "
                                  f"T <= {config.frames}, got {tuple(guidance.shape)}.")  # fmt: skip

    def fusion_weights(self, features: torch.Tensor | None = None) -> torch.Tensor:
        """The weight of each condition: (K,) for learned weights; for attention, the mean over `features`'
        tokens of the attention, (K,) (features: ((B T), N, K, D))."""
        if self.config.fusion == "weights":
            return torch.softmax(self.logits, 0)
        if features is None:
            raise DreamdriveError("attention fusion weighs conditions per token: pass the encoded features.")
        return self._attention(features).mean(dim=(0, 1))

    def _attention(self, features: torch.Tensor) -> torch.Tensor:
        """((B T), N, K, D) -> ((B T), N, K): per token, softmax over conditions of query . key."""
        query = self.query(features.mean(dim=2, keepdim=True))  # ((B T), N, 1, D)
        scores = (query * self.key(features)).sum(-1) / math.sqrt(features.shape[-1])  # ((B T), N, K)
        return torch.softmax(scores, dim=-1)

    def encode(self, guidance: torch.Tensor) -> torch.Tensor:
        """Guidance (B, T, V, channels, H, W) -> per-condition token features ((B T), N, K, D)."""
        self.check(guidance)
        batch, frames = guidance.shape[:2]
        maps = rearrange(guidance, "b t v c y x -> (b t v) c y x")
        features, start = [], 0
        for k, name in enumerate(self.config.conditions):
            width = CONDITIONS[name]
            encoded = self.encoders[name](maps[:, start : start + width])  # ((B T V), D, h/p, w/p)
            start += width
            tokens = rearrange(encoded, "(b t v) d y x -> (b t) (y v x) d", b=batch, t=frames)  # DiT token order
            features.append(tokens + self.condition_embedding[k])
        return torch.stack(features, dim=2)  # ((B T), N, K, D)

    def forward(self, guidance: torch.Tensor) -> dict[int, torch.Tensor]:
        features = self.encode(guidance)  # ((B T), N, K, D)
        if self.config.fusion == "weights":
            fused = torch.einsum("nskd,k->nsd", features, torch.softmax(self.logits, 0))
        else:
            fused = torch.einsum("nskd,nsk->nsd", features, self._attention(features))
        fused = fused + self.mix(fused)  # ((B T), N, D)
        return {int(b): layer(fused) for b, layer in self.inject.items()}


def check_pair(adapter: FusionAdapter, dit: UniMVM, fingerprint: str) -> None:
    """Refuse an adapter that does not fit `dit` (geometry) or was trained with other DiT weights."""
    expected = AdapterConfig.for_dit(dit.config)
    config = adapter.config
    fields = ("views", "frames", "latent_size", "vae_factor", "patch", "hidden", "depth")
    wrong = [f for f in fields if getattr(config, f) != getattr(expected, f)]
    if wrong:
        raise DreamdriveError(f"the adapter was made for another video model ({', '.join(wrong)} differ); pass the "
                              f"--model it was trained with.")  # fmt: skip
    if config.base and config.base != fingerprint:
        raise DreamdriveError(f"the adapter was trained with the video model {config.base}, not {fingerprint}; pass "
                              f"the --model it was trained with.")  # fmt: skip


def with_base(config: AdapterConfig, fingerprint: str) -> AdapterConfig:
    return replace(config, base=fingerprint)
