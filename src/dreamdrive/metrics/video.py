"""FID, FVD, PSNR/SSIM and cross-view consistency of generated clips against real ones.

- FID per camera: Inception pool features of every camera frame of the chosen scenes
  (images in [0, 1]), Fréchet distance between the real and generated sets; the
  mean over cameras is reported beside them, as driving papers do.
- FVD: I3D features of 16-frame windows (consecutive camera frames, one window per
  16 frames, per camera), Fréchet distance between the sets.
- PSNR and SSIM (torchmetrics) between generated and real frames of the same scene
  and time, for reconstruction modes.
- Cross-view consistency: adjacent cameras of the ring see the same far scene in the
  strip where their fields of view overlap. The strip of one camera is warped into
  its neighbour by the rotation-only (infinite-depth) homography K_b R_ba K_a^-1 and
  compared with SSIM; the score is the mean over pairs and frames. It is computed on
  the generated clips and on the real ones, and reported with their ratio.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np
import torch

from dreamdrive.core.errors import DreamdriveError
from dreamdrive.files import load_image
from dreamdrive.metrics.networks import PROXY_SEED, load_network, proxy_network
from dreamdrive.nusc.reader import NuscDataset


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """Fréchet distance between two Gaussians, in float64.

    The trace of the matrix square root of sigma1 sigma2 is the sum of the square roots of its eigenvalues,
    which are real and non-negative for covariances: one eigenvalue solve instead of a Schur-based `sqrtm`
    (for 2048 features, seconds instead of minutes). Round-off below zero is clipped.
    """
    mu1, mu2 = np.atleast_1d(np.float64(mu1)), np.atleast_1d(np.float64(mu2))
    sigma1, sigma2 = np.atleast_2d(np.float64(sigma1)), np.atleast_2d(np.float64(sigma2))
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape:
        raise DreamdriveError(f"feature statistics of different sizes: {mu1.shape} and {mu2.shape}.")
    eigenvalues = np.linalg.eigvals(sigma1 @ sigma2)
    trace_sqrt = float(np.sqrt(np.clip(eigenvalues.real, 0, None)).sum())
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * trace_sqrt)


def statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    features = np.asarray(features, np.float64)
    if len(features) < 2:
        raise DreamdriveError(f"need at least 2 feature vectors for a covariance, got {len(features)}.")
    return features.mean(axis=0), np.cov(features, rowvar=False)


def _clips(dataroot: str | Path, scenes: list[str] | None):

    dataset = NuscDataset(dataroot)
    chosen = scenes or dataset.scene_names
    unknown = [s for s in chosen if s not in dataset.scene_names]
    if unknown:
        raise DreamdriveError(f"no scenes {unknown} in {dataroot}.")
    for scene in chosen:
        yield dataset.clip(scene, check_files=False)


def _read(source, size: tuple[int, int] | None = None) -> np.ndarray:
    """An image as (H, W, 3) uint8 RGB, resized to `size` (width, height) when given."""

    image = load_image(source)
    if size is not None and (image.shape[1], image.shape[0]) != size:
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    return image


def camera_frames(dataroot, scenes=None, every: int = 1) -> dict[str, Iterator[np.ndarray]]:
    """Every `every`-th camera frame of the chosen scenes, per camera, as RGB arrays (generators)."""
    clips = list(_clips(dataroot, scenes))
    names = clips[0].rig.names

    def frames(channel: str):
        for clip in clips:
            for frame in clip.frames[::every]:
                yield _read(frame.images[channel])

    return {channel: frames(channel) for channel in names}


@torch.no_grad()
def _features(network, batches: Iterator[torch.Tensor]) -> np.ndarray:
    out = [network(batch).double().cpu().numpy() for batch in batches]
    if not out:
        raise DreamdriveError("no frames to compute features of.")
    return np.concatenate(out)


def _image_batches(frames: Iterator[np.ndarray], batch: int, limit: int | None) -> Iterator[torch.Tensor]:
    buffer = []
    for k, image in enumerate(frames):
        if limit is not None and k >= limit:
            break
        buffer.append(torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float() / 255.0)
        if len(buffer) == batch:
            yield torch.stack(buffer)
            buffer = []
    if buffer:
        yield torch.stack(buffer)


def _network(kind: str, weights, proxy: bool):
    """The standard network from `weights`, or with `proxy` and no weights the seeded random one; its label."""
    if weights is None and proxy:
        return proxy_network(kind), f"proxy: {kind} architecture, random weights (seed {PROXY_SEED})"
    return load_network(kind, weights), f"standard: {Path(weights).name}"


def fid(real, generated, weights, scenes=None, max_frames: int | None = None, batch: int = 16,
        progress: Callable[[str], None] | None = None, cameras: list[str] | None = None,
        proxy: bool = False) -> dict:  # fmt: skip
    """Per-camera FID of the generated dataset against the real one (every camera, or `cameras`), and their mean.
    Without `weights` and with `proxy`, the Inception architecture with seeded random weights is used and the
    result is labelled a proxy (`network`)."""

    network, label = _network("inception", weights, proxy)
    real_frames, fake_frames = camera_frames(real, scenes), camera_frames(generated, scenes)
    per_camera = {}
    unknown = sorted(set(cameras or ()) - set(real_frames))
    if unknown:
        raise DreamdriveError(f"no cameras {unknown} in {real}; it has {sorted(real_frames)}.")
    for channel in cameras or list(real_frames):
        if progress is not None:
            progress(channel)
        a = statistics(_features(network, _image_batches(real_frames[channel], batch, max_frames)))
        b = statistics(_features(network, _image_batches(fake_frames[channel], batch, max_frames)))
        per_camera[channel] = frechet_distance(*a, *b)
    return {"per_camera": per_camera, "mean": float(np.mean(list(per_camera.values()))), "network": label}


def _windows(dataroot, scenes, length: int, size: tuple[int, int]) -> dict[str, Iterator[torch.Tensor]]:
    """Per camera, 16-frame windows (3, T, H, W) in [-1, 1], non-overlapping, from consecutive camera frames."""
    clips = list(_clips(dataroot, scenes))

    def windows(channel: str):
        for clip in clips:
            for start in range(0, len(clip.frames) - length + 1, length):
                frames = [_read(f.images[channel], size) for f in clip.frames[start : start + length]]
                video = torch.from_numpy(np.stack(frames)).float() / 127.5 - 1.0  # (T, H, W, 3)
                yield video.permute(3, 0, 1, 2)

    return {channel: windows(channel) for channel in clips[0].rig.names}


def fvd(real, generated, weights, scenes=None, length: int = 16, size: tuple[int, int] = (224, 224),
        max_clips: int | None = None, progress: Callable[[str], None] | None = None,
        cameras: list[str] | None = None, proxy: bool = False) -> dict:  # fmt: skip
    """FVD over 16-frame windows of every camera (or `cameras`; all their windows in one set), and per camera.
    Without `weights` and with `proxy`, a proxy as in `fid`."""

    network, label = _network("i3d", weights, proxy)
    sets = {}
    for name, root in (("real", real), ("generated", generated)):
        sets[name] = {}
        for channel, windows in _windows(root, scenes, length, size).items():
            if cameras is not None and channel not in cameras:
                continue
            if progress is not None:
                progress(f"{name} {channel}")
            batches = (w[None] for k, w in enumerate(windows) if max_clips is None or k < max_clips)
            sets[name][channel] = _features(network, batches)
    per_camera = {}
    for channel in sets["real"]:
        if len(sets["real"][channel]) > 1 and len(sets["generated"][channel]) > 1:
            per_camera[channel] = frechet_distance(
                *statistics(sets["real"][channel]), *statistics(sets["generated"][channel])
            )
    every_real = np.concatenate(list(sets["real"].values()))
    every_fake = np.concatenate(list(sets["generated"].values()))
    return {"fvd": frechet_distance(*statistics(every_real), *statistics(every_fake)), "per_camera": per_camera,
            "windows": {"real": len(every_real), "generated": len(every_fake)}, "network": label}  # fmt: skip


def reconstruction(real, generated, scenes=None) -> dict:
    """PSNR and SSIM (torchmetrics, data range 1) of generated frames against the real frames of the same scene,
    frame index and camera."""
    from torchmetrics.functional.image import peak_signal_noise_ratio, structural_similarity_index_measure

    psnr, ssim = [], []
    for real_clip, fake_clip in zip(_clips(real, scenes), _clips(generated, scenes)):
        if len(real_clip.frames) != len(fake_clip.frames):
            raise DreamdriveError(f"scene {real_clip.name} has {len(real_clip.frames)} frames in one dataset and "
                                  f"{len(fake_clip.frames)} in the other.")  # fmt: skip
        for a, b in zip(real_clip.frames, fake_clip.frames):
            for channel in real_clip.rig.names:
                x = torch.from_numpy(_read(a.images[channel])).permute(2, 0, 1)[None].float() / 255
                y = torch.from_numpy(_read(b.images[channel], (x.shape[3], x.shape[2]))).permute(2, 0, 1)[None]
                y = y.float() / 255
                psnr.append(float(peak_signal_noise_ratio(y, x, data_range=1.0)))
                ssim.append(float(structural_similarity_index_measure(y, x, data_range=1.0)))
    return {"psnr": float(np.mean(psnr)), "ssim": float(np.mean(ssim)), "frames": len(psnr)}


def overlap_pairs(rig) -> list[tuple[str, str]]:
    """Adjacent cameras of the ring (each with the next, the last with the first)."""
    names = list(rig.names)
    return [(names[k], names[(k + 1) % len(names)]) for k in range(len(names))]


def strip_consistency(image_a: np.ndarray, image_b: np.ndarray, camera_a, camera_b) -> float | None:
    """SSIM between camera b's image and camera a's image warped into b (far-scene homography), over the pixels
    of b that a also sees; None when the two fields of view do not overlap."""
    from torchmetrics.functional.image import structural_similarity_index_measure

    rotation_b_a = (camera_b.cam_T_ego @ camera_a.ego_T_cam).rotation
    homography = camera_b.intrinsic @ rotation_b_a @ np.linalg.inv(camera_a.intrinsic)
    height, width = camera_b.height, camera_b.width
    warped = cv2.warpPerspective(image_a, homography, (width, height), flags=cv2.INTER_LINEAR)
    seen = cv2.warpPerspective(np.ones(image_a.shape[:2], np.uint8), homography, (width, height)) > 0
    # only where a's rays point forward in b (the homography also maps points behind the camera)
    columns = np.flatnonzero(seen.any(axis=0))
    if len(columns) < 8:
        return None
    window = slice(columns.min(), columns.max() + 1)
    x = torch.from_numpy(np.ascontiguousarray(warped[:, window])).permute(2, 0, 1)[None].float() / 255
    y = torch.from_numpy(np.ascontiguousarray(image_b[:, window])).permute(2, 0, 1)[None].float() / 255
    mask = torch.from_numpy(seen[:, window])
    x = torch.where(mask, x, y)  # pixels a does not see count as agreeing; the score is over the strip
    return float(structural_similarity_index_measure(x, y, data_range=1.0))


def consistency(dataroot, scenes=None, every: int = 6) -> dict:
    """Mean cross-view consistency over adjacent camera pairs and every `every`-th frame."""
    scores: dict[str, list[float]] = {}
    for clip in _clips(dataroot, scenes):
        for frame in clip.frames[::every]:
            for a, b in overlap_pairs(clip.rig):
                score = strip_consistency(_read(frame.images[a]), _read(frame.images[b]), clip.rig[a], clip.rig[b])
                if score is not None:
                    scores.setdefault(f"{a}->{b}", []).append(score)
    if not scores:
        raise DreamdriveError(f"no adjacent cameras of {dataroot} overlap; consistency needs overlapping views.")
    per_pair = {pair: float(np.mean(values)) for pair, values in scores.items()}
    return {"score": float(np.mean(list(per_pair.values()))), "per_pair": per_pair}


def region_scores(reference: np.ndarray, images: np.ndarray, regions: dict[str, np.ndarray]) -> dict[str, dict]:
    """PSNR and SSIM of `images` against `reference` (N, H, W, 3) uint8 inside each region (N, H, W) bool.

    PSNR comes from the mean squared error over the region's pixels (data range 1; capped at 100 dB where they
    are equal). SSIM is torchmetrics' full SSIM map (Gaussian window 11, sigma 1.5) averaged over the region.
    A region with no pixel scores None.
    """
    from torchmetrics.functional.image import structural_similarity_index_measure

    if reference.shape != images.shape or any(m.shape != reference.shape[:3] for m in regions.values()):
        raise DreamdriveError(f"region scores need images and masks of one shape, got {reference.shape}, "
                              f"{images.shape} and {[m.shape for m in regions.values()]}.")  # fmt: skip
    x = torch.from_numpy(reference).permute(0, 3, 1, 2).float() / 255
    y = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255
    _, full = structural_similarity_index_measure(y, x, data_range=1.0, return_full_image=True, reduction="none")
    ssim_map = full.mean(dim=1).numpy()  # (N, H, W), channels averaged
    error = ((y - x) ** 2).mean(dim=1).numpy()
    out = {}
    for name, mask in regions.items():
        if not mask.any():
            out[name] = None
            continue
        mse = float(error[mask].mean())
        psnr = 100.0 if mse <= 1e-10 else float(10 * np.log10(1.0 / mse))
        out[name] = {"psnr": psnr, "ssim": float(ssim_map[mask].mean()), "pixels": int(mask.sum())}
    return out
