"""Dream4Drive's 3D-aware guidance maps from depth: surface normals and edges (and depth from LiDAR).

Conventions: images are (H, W) with pixel (row, col) covering u in [col, col+1),
v in [row, row+1), so its centre is (col + 0.5, row + 0.5); depth is the
camera-frame z in metres, 0 where nothing was seen; normals are unit vectors in
the camera frame (x right, y down, z forward) pointing towards the camera.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from dreamdrive.core.clip import Clip
from dreamdrive.core.errors import DreamdriveError
from dreamdrive.files import load_image
from dreamdrive.nusc.dense import depth_of, read_packed
from dreamdrive.nusc.schema import global_T_lidar
from dreamdrive.nusc.writer import load_points
from dreamdrive.world.geometry import SEMANTIC, fan, mesh_soup
from dreamdrive.world.render import CameraImages, Environment, RenderObject, WorldRenderer


def backproject(depth: np.ndarray, intrinsic: np.ndarray) -> np.ndarray:
    """Camera-frame points (H, W, 3) of every pixel centre at its depth."""
    height, width = depth.shape
    u = np.arange(width) + 0.5
    v = np.arange(height) + 0.5
    x = (u[None, :] - intrinsic[0, 2]) / intrinsic[0, 0] * depth
    y = (v[:, None] - intrinsic[1, 2]) / intrinsic[1, 1] * depth
    return np.stack([x, y, depth], axis=-1)


def normals_from_depth(depth: np.ndarray, intrinsic: np.ndarray, max_jump: float = 0.05) -> np.ndarray:
    """Unit normals (H, W, 3) from a depth map, 0 where there is no depth or no consistent neighbour.

    Tangents come from the one-sided difference (left or right, up or down) whose depth
    changes least, so that normals next to a depth edge are not smeared across it;
    differences that jump by more than `max_jump` of the depth count as edges.
    """
    depth = np.asarray(depth, dtype=np.float64)
    if depth.ndim != 2 or intrinsic.shape != (3, 3):
        raise DreamdriveError(f"normals need a (H, W) depth and a 3x3 intrinsic, got {depth.shape}, {intrinsic.shape}.")
    points = backproject(depth, intrinsic)
    valid = depth > 0

    def tangent(axis: int) -> tuple[np.ndarray, np.ndarray]:
        forward = np.roll(points, -1, axis=axis) - points
        backward = points - np.roll(points, 1, axis=axis)
        d_forward = np.abs(np.roll(depth, -1, axis=axis) - depth)
        d_backward = np.abs(depth - np.roll(depth, 1, axis=axis))
        ok_forward = valid & np.roll(valid, -1, axis=axis) & (d_forward <= max_jump * depth)
        ok_backward = valid & np.roll(valid, 1, axis=axis) & (d_backward <= max_jump * depth)
        if axis == 0:
            ok_forward[-1, :] = False
            ok_backward[0, :] = False
        else:
            ok_forward[:, -1] = False
            ok_backward[:, 0] = False
        use_forward = ok_forward & (~ok_backward | (d_forward <= d_backward))
        chosen = np.where(use_forward[..., None], forward, backward)
        return chosen, ok_forward | ok_backward

    du, ok_u = tangent(1)
    dv, ok_v = tangent(0)
    normal = np.cross(du, dv)
    norm = np.linalg.norm(normal, axis=-1, keepdims=True)
    good = ok_u & ok_v & (norm[..., 0] > 1e-12)
    normal = np.where(good[..., None], normal / np.maximum(norm, 1e-12), 0.0)
    facing_away = np.sum(normal * points, axis=-1) > 0  # normals point back towards the camera
    normal[facing_away] *= -1
    return normal.astype(np.float32)


def edges(rgb: np.ndarray, low: int = 100, high: int = 200) -> np.ndarray:
    """Canny edges (H, W) uint8 in {0, 255} of an RGB image."""
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise DreamdriveError(f"edges need an (H, W, 3) RGB image, got {rgb.shape}.")
    if not 0 <= low <= high:
        raise DreamdriveError(f"Canny thresholds need 0 <= low <= high, got {low}, {high}.")
    gray = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY)
    return cv2.Canny(gray, low, high)


DEPTH_SCALE = 10.0  # metres: the guidance's inverse depth is 1 / (1 + z / DEPTH_SCALE)


def guidance_maps(
    rgb: np.ndarray, depth: np.ndarray, normal: np.ndarray, obj: np.ndarray, mask: np.ndarray, blank: int = 1
) -> np.ndarray:
    """Dream4Drive's guidance of one edited view, (9, H, W) float32, channels in the adapter's order
    (`models.adapter.CONDITIONS`):

    - depth (1): the scene's inverse depth 1 / (1 + z / 10 m), 0 where nothing was seen;
    - normal (3): the scene's camera-frame unit normals;
    - edge (1): the scene's Canny edges in {0, 1};
    - object (3): the inserted objects' pixels in [0, 1], 0 elsewhere;
    - mask (1): their visible silhouette in {0, 1}.

    The scene's maps are blanked (0) where the objects show, grown by `blank` pixels, so that they say
    nothing about what the objects now hide.

    Args:
        rgb: (H, W, 3) uint8 the scene without the objects; depth: (H, W) metres; normal: (H, W, 3).
        obj: (H, W, 3) uint8 the objects' render; mask: (H, W) bool or {0, 1} where they show.
    """
    height, width = depth.shape
    for name, array, shape in (("rgb", rgb, (height, width, 3)), ("normal", normal, (height, width, 3)),
                               ("obj", obj, (height, width, 3)), ("mask", mask, (height, width))):  # fmt: skip
        if array.shape != shape:
            raise DreamdriveError(f"guidance {name} is {array.shape}, the depth {depth.shape}: they must agree.")
    shown = mask.astype(bool)
    hidden = cv2.dilate(shown.astype(np.uint8), np.ones((2 * blank + 1,) * 2, np.uint8)) > 0 if blank else shown
    keep = (~hidden).astype(np.float32)
    inverse = np.where(depth > 0, 1.0 / (1.0 + np.maximum(depth, 0) / DEPTH_SCALE), 0.0).astype(np.float32)
    maps = [
        (inverse * keep)[None],
        np.moveaxis(normal.astype(np.float32), 2, 0) * keep,
        (edges(rgb) > 0).astype(np.float32)[None] * keep,
        np.moveaxis(np.where(shown[..., None], obj, 0).astype(np.float32) / 255.0, 2, 0),
        shown.astype(np.float32)[None],
    ]
    return np.concatenate(maps, axis=0)


def angular_error_degrees(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Angle in degrees between unit normals a and b (..., 3)."""
    cosine = np.clip(np.sum(a * b, axis=-1), -1.0, 1.0)
    return np.degrees(np.arccos(cosine))


def asset_maps(
    renderer, camera, global_T_cam, asset_key: str, global_T_asset, scene_depth: np.ndarray, tolerance: float = 0.05
) -> tuple[np.ndarray, np.ndarray]:
    """Dream4Drive's object and mask maps of an asset placed in a view, with the scene's occlusion.

    The asset alone is rendered (RGB, depth, silhouette); it stays visible where the scene
    shows nothing or is farther than the asset (by more than `tolerance` metres).

    Args:
        renderer: a `WorldRenderer` holding the asset's mesh under `asset_key` (and a prepared scene).
        scene_depth: (H, W) depth of the scene in this view, 0 where it is unknown or empty.
    Returns:
        object: (H, W, 3) uint8, the asset's pixels where visible, black elsewhere;
        mask: (H, W) uint8 in {0, 1}, the asset's visible silhouette.
    """
    images, visible = render_inserted(
        renderer, camera, global_T_cam, [RenderObject(asset_key, global_T_asset, 1)], scene_depth, tolerance
    )
    mask = visible.astype(np.uint8)
    obj = np.where(visible[..., None], images.rgb, 0).astype(np.uint8)
    return obj, mask


def render_inserted(renderer, camera, global_T_cam, objects: list, scene_depth: np.ndarray, tolerance: float = 0.05):
    """Render inserted objects alone in one view and find where the scene does not hide them.

    Returns the renders (`CameraImages`: RGB, depth, normals, instance = the objects' own
    indices) and the (H, W) bool mask of the pixels where an object is visible: it was hit
    and the scene there is empty, unknown (0) or not nearer by more than `tolerance` metres.
    """
    if scene_depth.shape != (camera.height, camera.width):
        raise DreamdriveError(
            f"scene depth is {scene_depth.shape[1]}x{scene_depth.shape[0]}, the camera {camera.width}x{camera.height}."
        )
    images = renderer.render(camera, global_T_cam, objects)
    return images, visible_over(images, scene_depth, tolerance)


def visible_over(images: CameraImages, scene_depth: np.ndarray, tolerance: float = 0.05) -> np.ndarray:
    """(H, W) bool: where rendered objects show over a scene of depth `scene_depth` (hit, and the scene there
    is empty, unknown (0) or not nearer by more than `tolerance` metres)."""
    nearer = (scene_depth > 0) & (scene_depth < images.depth - tolerance)
    return (images.instance > 0) & ~nearer


def asset_renderer(assets, width: int, height: int):
    """A renderer holding assets (one or a list) over an empty world (a single far-away ground patch).

    Call `prepare` with the objects and the place they are near before rendering, so that
    their shadow map covers them.
    """
    assets = assets if isinstance(assets, (list, tuple)) else [assets]
    far = 1e5  # the renderer needs some world geometry: a tiny patch out of every view
    ground = fan(
        np.array([far, far]),
        np.array([[-1.0, -1.0], [1.0, -1.0], [1.0, 1.0], [-1.0, 1.0]]) + far,
        -50.0,
        (0.5, 0.5, 0.5),
        SEMANTIC["terrain"],
    )
    meshes = {a.info.asset_id: mesh_soup(a.mesh, SEMANTIC[a.info.detection_class]) for a in assets}
    renderer = WorldRenderer(ground, meshes, width, height)
    renderer.prepare(np.zeros(3), [], Environment())
    return renderer


def scene_depth(clip: Clip, index: int, channel: str, monocular: MonocularDepth | None = None) -> np.ndarray:
    """Depth (H, W) of one camera frame: its dense ground truth (`Frame.dense`, exact in the procedural world);
    else, with a `monocular` model, its prediction (aligned to the LiDAR returns in view when the model is
    relative); else LiDAR projected and densified."""
    frame = clip.frames[index]
    if channel in frame.dense:
        return depth_of(read_packed(frame.dense[channel], f"dense ground truth of {clip.name} {channel}"))
    camera = clip.rig[channel]
    projection = _lidar_projection(clip, index, channel)
    if monocular is not None:
        return monocular.predict(load_image(frame.images[channel]), projection)
    if projection is None:
        return np.zeros((camera.height, camera.width), np.float32)
    return lidar_depth(projection, camera)


def _lidar_projection(clip, index: int, channel: str):
    """The LiDAR sweep nearest in time to frame `index`, projected into `channel` (None without LiDAR)."""
    frame = clip.frames[index]
    lidar_frame = min(
        (i for i, f in enumerate(clip.frames) if f.lidar is not None),
        key=lambda i: abs(clip.frames[i].timestamp - frame.timestamp),
        default=None,
    )
    if lidar_frame is None:
        return None
    sweep = clip.frames[lidar_frame]
    global_points = global_T_lidar(sweep).apply(_sweep_points(sweep.lidar, f"LiDAR of {clip.name}"))
    _, global_T_ego = frame.camera_pose(channel)
    return clip.rig[channel].project_ego(global_T_ego.inverse().apply(global_points))


def _sweep_points(source, what: str) -> np.ndarray:
    """The (N, 3) points of a sweep; a file is read once while it is unchanged (the six cameras of a frame, and
    the frames around a key frame, share its sweep)."""
    if isinstance(source, np.ndarray):
        return load_points(source, what)[:, :3]
    try:
        stat = os.stat(source)
    except OSError:
        return load_points(source, what)[:, :3]  # a missing file: load_points says so
    return _read_sweep(str(source), stat.st_mtime_ns, stat.st_size, what)


@lru_cache(maxsize=8)
def _read_sweep(path: str, mtime_ns: int, size: int, what: str) -> np.ndarray:
    """A sweep file's points, cached by path, time and size (read-only: the callers share it)."""
    points = load_points(path, what)[:, :3]
    points.flags.writeable = False
    return points


class MonocularDepth:
    """A depth-estimation network from a local folder (transformers' `AutoModelForDepthEstimation`: DPT,
    Depth Anything, ZoeDepth, ...), for datasets without dense depth.

    Args:
        folder: a saved model and image processor (`save_pretrained`); nothing is downloaded.
        metric: the model predicts metres (ZoeDepth, metric Depth Anything). Otherwise its output is
            taken as relative inverse depth and aligned to the LiDAR returns in view by a least-squares
            scale and shift in inverse depth (at least `MIN_ANCHORS` returns are needed).
    """

    MIN_ANCHORS = 20

    def __init__(self, folder: str | Path, metric: bool = False, device: str = "cpu"):
        folder = Path(folder)
        if not (folder / "config.json").is_file():
            raise DreamdriveError(
                f"{folder} holds no depth model (config.json missing); save one there with "
                "`model.save_pretrained(folder)` and its image processor with `processor.save_pretrained(folder)`."
            )
        from transformers import AutoImageProcessor, AutoModelForDepthEstimation

        try:
            self.processor = AutoImageProcessor.from_pretrained(folder, local_files_only=True)
            self.model = AutoModelForDepthEstimation.from_pretrained(folder, local_files_only=True).eval().to(device)
        except (OSError, ValueError) as error:
            raise DreamdriveError(f"cannot load a depth-estimation model from {folder}: {error}") from error
        self.metric = metric
        self.device = device

    def raw(self, rgb: np.ndarray) -> np.ndarray:
        """The network's output (H, W) at the image's size."""
        import torch

        inputs = self.processor(images=rgb, return_tensors="pt").to(self.device)
        with torch.no_grad():
            predicted = self.model(**inputs).predicted_depth
        resized = torch.nn.functional.interpolate(
            predicted[:, None].float(), size=rgb.shape[:2], mode="bilinear", align_corners=False
        )
        return resized[0, 0].cpu().numpy().astype(np.float32)

    def predict(self, rgb: np.ndarray, projection=None) -> np.ndarray:
        """Metric depth (H, W) of an image; `projection` (LiDAR in this view) anchors a relative model."""
        output = self.raw(rgb)
        if self.metric:
            return np.clip(output, 0.0, None)
        if projection is None or projection.in_image.sum() < self.MIN_ANCHORS:
            raise DreamdriveError(
                f"a relative depth model needs at least {self.MIN_ANCHORS} LiDAR returns in view to be made "
                "metric; give a metric model (metric=True) or data with LIDAR_TOP."
            )
        ok = projection.in_image
        rows = projection.pixels[ok, 1].astype(int)
        cols = projection.pixels[ok, 0].astype(int)
        return align_inverse_depth(output, rows, cols, projection.depth[ok])


def align_inverse_depth(
    relative: np.ndarray, rows: np.ndarray, cols: np.ndarray, depth: np.ndarray, far: float = 250.0
) -> np.ndarray:
    """Metric depth from a relative inverse-depth map: the least-squares scale a and shift b with
    a * relative + b = 1 / depth at the anchor pixels, then depth = 1 / (a * relative + b), clipped to [0.5, far]."""
    values = relative[rows, cols].astype(np.float64)
    design = np.column_stack([values, np.ones_like(values)])
    (a, b), *_ = np.linalg.lstsq(design, 1.0 / np.asarray(depth, np.float64), rcond=None)
    inverse = a * relative.astype(np.float64) + b
    return np.clip(1.0 / np.maximum(inverse, 1.0 / far), 0.5, far).astype(np.float32)


def lidar_depth(projection, camera, fill: int = 5) -> np.ndarray:
    """A LiDAR projection (`Camera.project_ego`) as a depth map: nearest point per pixel, holes filled by
    dilating inverse depth (a `fill` x `fill` window), so that far points never overwrite near ones."""
    depth = np.zeros((camera.height, camera.width), np.float32)
    ok = projection.in_image
    rows = projection.pixels[ok, 1].astype(int)
    cols = projection.pixels[ok, 0].astype(int)
    values = projection.depth[ok]
    order = np.argsort(-values)  # far first, so the nearest point of a pixel is written last
    depth[rows[order], cols[order]] = values[order]
    inverse = np.where(depth > 0, 1.0 / np.maximum(depth, 1e-3), 0.0).astype(np.float32)
    inverse = cv2.dilate(inverse, np.ones((fill, fill), np.uint8))  # the nearest neighbour wins a hole
    return np.where(inverse > 0, 1.0 / np.maximum(inverse, 1e-6), 0.0).astype(np.float32)
