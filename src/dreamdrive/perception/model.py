"""The multi-view camera 3D detector: residual image backbone, bilinear voxel lifting, BEV encoder, CenterPoint head.

- Backbone: ResNet-18's first three stages (torchvision's layer names, so that its
  weights load when `width` is 64) and a small FPN to one stride-4 (or 8) map.
- View transformer (Simple-BEV): the centre of every voxel of a grid around the ego
  is projected into every camera with its intrinsics and pose; features are sampled
  bilinearly there and averaged over the cameras that see the voxel; the height
  layers are stacked into channels.
- BEV encoder: residual blocks at full, half and quarter resolution, merged back to full.
- Head (CenterPoint): a class heatmap and, per cell, offset, height, log size,
  sin/cos yaw and velocity; decoding takes heatmap peaks (3x3 max-pool NMS).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from dreamdrive.core.errors import DreamdriveError
from dreamdrive.perception.data import DetectorConfig
from dreamdrive.train.checkpoint import SavedModel

RESNET_PARTS = ("conv1", "bn1", "layer1", "layer2", "layer3")
REG_WEIGHTS = (1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.2, 0.2)  # offset x, y, z, log w, l, h, sin, cos, vx, vy


class BasicBlock(nn.Module):
    def __init__(self, inplanes: int, planes: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = None
        if stride != 1 or inplanes != planes:
            self.downsample = nn.Sequential(nn.Conv2d(inplanes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)), inplace=True)
        out = self.bn2(self.conv2(out))
        return F.relu(out + (x if self.downsample is None else self.downsample(x)), inplace=True)


def _stage(inplanes: int, planes: int, stride: int) -> nn.Sequential:
    return nn.Sequential(BasicBlock(inplanes, planes, stride), BasicBlock(planes, planes))


class Backbone(nn.Module):
    """ResNet-18 stages 1-3 (channel widths w, 2w, 4w) and an FPN merge to `out_channels` at stride `stride`
    (4 or 8): the finer map costs little here, since the lifting samples a fixed number of voxels."""

    def __init__(self, width: int, out_channels: int, stride: int = 4):
        super().__init__()
        if stride not in (4, 8):
            raise DreamdriveError(f"the backbone's feature stride must be 4 or 8, got {stride}.")
        self.stride = stride
        self.conv1 = nn.Conv2d(3, width, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = _stage(width, width, 1)
        self.layer2 = _stage(width, 2 * width, 2)
        self.layer3 = _stage(2 * width, 4 * width, 2)
        self.lateral1 = nn.Conv2d(width, out_channels, 1) if stride == 4 else None
        self.lateral2 = nn.Conv2d(2 * width, out_channels, 1)
        self.lateral3 = nn.Conv2d(4 * width, out_channels, 1)
        self.smooth = nn.Sequential(
            nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False), nn.BatchNorm2d(out_channels), nn.ReLU(True)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c1 = self.layer1(self.maxpool(F.relu(self.bn1(self.conv1(x)), inplace=True)))
        c2 = self.layer2(c1)
        c3 = self.layer3(c2)
        merged = self.lateral2(c2) + F.interpolate(self.lateral3(c3), size=c2.shape[-2:], mode="bilinear")
        if self.lateral1 is not None:
            merged = self.lateral1(c1) + F.interpolate(merged, size=c1.shape[-2:], mode="bilinear")
        return self.smooth(merged)

    def load_weights(self, path: str | Path) -> int:
        """Initialise from a local ResNet state dict (torchvision names, e.g. resnet18's); returns tensors loaded."""
        path = Path(path)
        if not path.is_file():
            raise DreamdriveError(f"backbone weights {path} do not exist.")
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as error:  # torch raises several types for a file that is not a state dict
            raise DreamdriveError(f"cannot read backbone weights {path}: {error}") from error
        for key in ("state_dict", "model"):
            if isinstance(state, dict) and key in state and isinstance(state[key], dict):
                state = state[key]
        own = {k: v for k, v in self.state_dict().items() if k.split(".")[0] in RESNET_PARTS}
        usable = {k: v for k, v in state.items() if k in own and tuple(v.shape) == tuple(own[k].shape)}
        if len(usable) != len(own):
            raise DreamdriveError(
                f"{path} fits {len(usable)} of the backbone's {len(own)} ResNet tensors (width "
                f"{self.conv1.out_channels}); ResNet-18 weights need width 64."
            )
        self.load_state_dict(usable, strict=False)
        return len(usable)


class Lifter(nn.Module):
    """Bilinear lifting of image features onto a voxel grid (Simple-BEV)."""

    def __init__(self, config: DetectorConfig):
        super().__init__()
        self.config = config
        centres = -config.bev_range + (np.arange(config.bev_cells) + 0.5) * config.cell
        z, y, x = np.meshgrid(np.array(config.z_levels), centres, centres, indexing="ij")
        voxels = np.stack([x.ravel(), y.ravel(), z.ravel(), np.ones(x.size)], axis=0)
        self.register_buffer("voxels", torch.from_numpy(voxels.astype(np.float32)), persistent=False)

    def forward(self, features: torch.Tensor, intrinsics: torch.Tensor, ref_T_cam: torch.Tensor) -> torch.Tensor:
        """features (B, V, C, h, w); intrinsics for the input images; returns (B, C * Z, Y, X)."""
        batch, views, channels, h, w = features.shape
        width, height = self.config.image_size
        cam = torch.linalg.inv(ref_T_cam) @ self.voxels  # (B, V, 4, N)
        depth = cam[:, :, 2]
        pixels = intrinsics @ cam[:, :, :3]
        u = pixels[:, :, 0] / depth.clamp(min=1e-3)
        v = pixels[:, :, 1] / depth.clamp(min=1e-3)
        grid = torch.stack([u / width * 2 - 1, v / height * 2 - 1], dim=-1)  # (B, V, N, 2)
        valid = (depth > 0.1) & (grid.abs() <= 1).all(dim=-1)
        sampled = F.grid_sample(
            features.reshape(batch * views, channels, h, w),
            grid.reshape(batch * views, 1, -1, 2),
            mode="bilinear",
            padding_mode="zeros",
            align_corners=False,
        ).reshape(batch, views, channels, -1)
        weight = valid.unsqueeze(2).to(sampled.dtype)
        volume = (sampled * weight).sum(1) / weight.sum(1).clamp(min=1.0)  # (B, C, N)
        levels, cells = len(self.config.z_levels), self.config.bev_cells
        return volume.reshape(batch, channels * levels, cells, cells)


class BEVEncoder(nn.Module):
    def __init__(self, in_channels: int, channels: int):
        super().__init__()
        self.reduce = nn.Sequential(
            nn.Conv2d(in_channels, channels, 1, bias=False), nn.BatchNorm2d(channels), nn.ReLU(True)
        )
        self.level1 = BasicBlock(channels, channels)
        self.level2 = _stage(channels, 2 * channels, 2)
        self.level3 = _stage(2 * channels, 4 * channels, 2)
        self.up_quarter = nn.Conv2d(4 * channels, 2 * channels, 1)
        self.merge_half = BasicBlock(2 * channels, 2 * channels)
        self.up_half = nn.Conv2d(2 * channels, channels, 1)
        self.merge_full = BasicBlock(channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        full = self.level1(self.reduce(x))
        half = self.level2(full)
        quarter = self.level3(half)
        half = self.merge_half(half + F.interpolate(self.up_quarter(quarter), size=half.shape[-2:], mode="bilinear"))
        return self.merge_full(full + F.interpolate(self.up_half(half), size=full.shape[-2:], mode="bilinear"))


class CenterHead(nn.Module):
    def __init__(self, channels: int, classes: int):
        super().__init__()

        def branch(out: int) -> nn.Sequential:
            return nn.Sequential(
                nn.Conv2d(channels, channels, 3, 1, 1, bias=False), nn.BatchNorm2d(channels), nn.ReLU(True),
                nn.Conv2d(channels, out, 1),
            )  # fmt: skip

        self.heatmap = branch(classes)
        self.heatmap[-1].bias.data.fill_(-2.19)  # a prior of 0.1 on every cell
        self.regression = branch(10)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.heatmap(x), self.regression(x)


class Detector(SavedModel, nn.Module):
    """The detector (see the module docstring), built from its `DetectorConfig`; `save(folder)` and
    `Detector.load(folder)` use the project's checkpoint format (`train.checkpoint`)."""

    KIND = "detector"
    CONFIG = DetectorConfig

    def __init__(self, config: DetectorConfig):
        super().__init__()
        self.config = config
        feature_channels = max(32, config.width)
        self.backbone = Backbone(config.width, feature_channels, config.feature_stride)
        self.lifter = Lifter(config)
        self.bev = BEVEncoder(feature_channels * len(config.z_levels), config.bev_channels)
        self.head = CenterHead(config.bev_channels, len(config.classes))

    def forward(self, images: torch.Tensor, intrinsics: torch.Tensor, ref_T_cam: torch.Tensor):
        """images (B, V, 3, H, W), intrinsics of those images, ref_T_cam -> heatmap logits (B, C, Y, X) and
        regression (B, 10, Y, X). Sampling is in normalised image coordinates, so the features' stride does not
        enter the geometry."""
        batch, views = images.shape[:2]
        features = self.backbone(images.flatten(0, 1))
        features = features.reshape(batch, views, *features.shape[1:])
        return self.head(self.bev(self.lifter(features, intrinsics, ref_T_cam)))


def focal_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """CenterNet's penalty-reduced focal loss, normalised by the number of centres."""
    prob = torch.sigmoid(logits).clamp(1e-4, 1 - 1e-4)
    positive = target.eq(1).float()
    negative_weight = torch.pow(1 - target, 4)
    pos = torch.log(prob) * torch.pow(1 - prob, 2) * positive
    neg = torch.log(1 - prob) * torch.pow(prob, 2) * negative_weight * (1 - positive)
    return -(pos.sum() + neg.sum()) / positive.sum().clamp(min=1.0)


def detection_loss(heatmap: torch.Tensor, regression: torch.Tensor, batch: dict) -> dict[str, torch.Tensor]:
    """Heatmap focal loss plus weighted L1 of the regression at the object centres."""
    hm = focal_loss(heatmap, batch["heatmap"])
    b, channels = regression.shape[:2]
    flat = regression.reshape(b, channels, -1).transpose(1, 2)  # (B, Y*X, 10)
    predicted = torch.gather(flat, 1, batch["target_index"].unsqueeze(-1).expand(-1, -1, channels))
    mask = batch["target_mask"].unsqueeze(-1)
    weights = torch.tensor(REG_WEIGHTS, device=regression.device)
    reg = (torch.abs(predicted - batch["target"]) * mask * weights).sum() / mask.sum().clamp(min=1.0)
    return {"loss": hm + 0.25 * reg, "heatmap": hm, "regression": reg}


@torch.no_grad()
def decode(heatmap: torch.Tensor, regression: torch.Tensor, config: DetectorConfig, top: int = 300,
           threshold: float = 0.03) -> list[np.ndarray]:  # fmt: skip
    """Per sample, (K, 11) boxes in the reference frame: class, score, x, y, z, w, l, h, yaw, vx, vy."""
    heat = torch.sigmoid(heatmap)
    peaks = heat * (F.max_pool2d(heat, 3, 1, 1) == heat)
    batch, classes, cells, _ = heat.shape
    scores, flat = peaks.reshape(batch, -1).topk(min(top, classes * cells * cells))
    out = []
    for b in range(batch):
        keep = scores[b] > threshold
        index = flat[b][keep]
        kind = index // (cells * cells)
        cell_index = index % (cells * cells)
        cy, cx = cell_index // cells, cell_index % cells
        reg = regression[b].reshape(10, -1)[:, cell_index].T
        x = (cx.float() + reg[:, 0]) * config.cell - config.bev_range
        y = (cy.float() + reg[:, 1]) * config.cell - config.bev_range
        size = torch.exp(reg[:, 3:6].clamp(max=4.0))
        yaw = torch.atan2(reg[:, 6], reg[:, 7])
        boxes = torch.stack(
            [
                kind.float(),
                scores[b][keep],
                x,
                y,
                reg[:, 2],
                size[:, 0],
                size[:, 1],
                size[:, 2],
                yaw,
                reg[:, 8],
                reg[:, 9],
            ],
            dim=1,
        )
        out.append(boxes.cpu().numpy())
    return out


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def check_finite_loss(loss: torch.Tensor, step: int) -> None:
    if not math.isfinite(float(loss.detach())):
        raise DreamdriveError(f"the training loss became {float(loss)} at step {step}; lower the learning rate.")
