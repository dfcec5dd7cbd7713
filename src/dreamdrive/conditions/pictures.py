"""Pictures of a frame's conditions: layout maps and guidance maps of the six views as PNG grids."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from dreamdrive.conditions.guidance import (
    MonocularDepth,
    asset_renderer,
    edges,
    normals_from_depth,
    render_inserted,
    scene_depth,
)
from dreamdrive.conditions.insert import InsertionReport
from dreamdrive.conditions.layout import box_layout, map_layout
from dreamdrive.core.categories import DETECTION_CLASSES
from dreamdrive.core.clip import Clip
from dreamdrive.files import load_image
from dreamdrive.viz.draw import CLASS_COLORS, draw_box_wireframe
from dreamdrive.viz.pictures import GRID_ROWS, save_png, six_view_grid
from dreamdrive.world.render import Environment, RenderObject

MAP_COLORS_RGB = np.array([[255, 60, 60], [255, 255, 255], [60, 200, 255]], np.uint8)  # MAP_CHANNELS order


def _grid(tiles: dict[str, np.ndarray]) -> np.ndarray:
    rows = [np.concatenate([tiles[name] for name in row], axis=1) for row in GRID_ROWS]
    return np.concatenate(rows, axis=0)


def _colour_depth(depth: np.ndarray, far: float = 80.0) -> np.ndarray:
    scaled = np.clip(1.0 - depth / far, 0, 1) * 255
    coloured = cv2.applyColorMap(scaled.astype(np.uint8), cv2.COLORMAP_TURBO)[:, :, ::-1]
    return np.where((depth > 0)[..., None], coloured, 0).astype(np.uint8)


def condition_pictures(
    clip: Clip, index: int, out: str | Path, inserted: list | None = None, monocular: MonocularDepth | None = None
) -> list[Path]:
    """Write map layout, box layout, depth, normals and edges of frame `index` as six-view grids.

    `inserted`: (asset, global_T_object) of inserted objects present on the frame; their
    object and mask maps (the asset rendered, hidden where the scene is nearer) are written too.
    `monocular`: a `guidance.MonocularDepth` for the depth of data without a dense sidecar.
    """
    out = Path(out)
    frame = clip.frames[index]
    names = ("map", "boxes", "depth", "normal", "edges") + (("object", "mask") if inserted else ())
    tiles: dict[str, dict[str, np.ndarray]] = {k: {} for k in names}
    renderer = objects = None
    if inserted:
        renderer = asset_renderer(
            [asset for asset, _ in inserted], clip.rig.cameras[0].width, clip.rig.cameras[0].height
        )
        objects = [RenderObject(a.info.asset_id, pose, k + 1) for k, (a, pose) in enumerate(inserted)]
        renderer.prepare(frame.global_T_ego.translation, objects, Environment())
    boxes = clip.boxes_at(index)
    palette = np.array([CLASS_COLORS[name] for name in DETECTION_CLASSES], np.uint8)
    try:
        for camera in clip.rig:
            _, global_T_ego = frame.camera_pose(camera.name)
            cam_T_global = camera.cam_T_ego @ global_T_ego.inverse()
            if clip.hdmap is not None:
                layout = map_layout(clip.hdmap, camera, global_T_ego)
                tiles["map"][camera.name] = np.max(layout[..., None] * MAP_COLORS_RGB[:, None, None, :], axis=0)
            else:
                tiles["map"][camera.name] = np.zeros((camera.height, camera.width, 3), np.uint8)
            layout = box_layout(boxes, camera, cam_T_global)
            tiles["boxes"][camera.name] = np.max(layout[..., None] * palette[:, None, None, :], axis=0)
            depth = scene_depth(clip, index, camera.name, monocular)
            tiles["depth"][camera.name] = _colour_depth(depth)
            normals = normals_from_depth(depth, camera.intrinsic)
            tiles["normal"][camera.name] = (
                (normals + 1) * 127.5 * (np.linalg.norm(normals, axis=-1) > 0)[..., None]
            ).astype(np.uint8)
            tiles["edges"][camera.name] = np.repeat(edges(load_image(frame.images[camera.name]))[..., None], 3, axis=2)
            if renderer is not None:
                rendered, visible = render_inserted(
                    renderer, camera, global_T_ego @ camera.ego_T_cam, objects, depth, tolerance=0.3
                )
                tiles["object"][camera.name] = np.where(visible[..., None], rendered.rgb, 0).astype(np.uint8)
                tiles["mask"][camera.name] = np.repeat(visible[..., None].astype(np.uint8) * 255, 3, axis=2)
    finally:
        if renderer is not None:
            renderer.release()
    return [save_png(_grid(views), out / f"{clip.name}_{index:03d}_{name}.png") for name, views in tiles.items()]


def insertion_preview(
    before: Clip,
    after: Clip,
    report: InsertionReport,
    out: str | Path,
    tile_width: int = 320,
    others: Sequence[tuple[str, Clip]] = (),
) -> Path:
    """Before and after an insertion: the six-view grids at the frame where the first object shows most, and
    beside each that camera enlarged, the inserted boxes outlined after the edit. `others` are more edits of
    the same placements (label, clip), drawn between before and after (naive beside generative)."""
    best = report.best_view()
    index, channel = best.frame, best.camera
    labelled = [("before", before), *others, (f"after: {report.mode} insertion", after)]
    camera = after.rig[channel]
    _, global_T_ego = after.frames[index].camera_pose(channel)
    cam_T_global = camera.cam_T_ego @ global_T_ego.inverse()
    inserted = {item.instance_id for item in report.instances}
    rows = []
    for k, (text, clip) in enumerate(labelled):
        grid = six_view_grid(clip, index, tile_width, annotate=False)
        view = load_image(clip.frames[index].images[channel]).copy()
        if k > 0:
            for box in after.boxes_at(index):
                if box.instance_id in inserted:
                    draw_box_wireframe(view, box, camera, cam_T_global, (255, 220, 0), 1)
        height = grid.shape[0]
        row = np.concatenate([grid, cv2.resize(view, (round(view.shape[1] * height / view.shape[0]), height))], 1)
        cv2.putText(row, text, (8, row.shape[0] - 12), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (0, 0, 0), 4, cv2.LINE_AA)
        cv2.putText(row, text, (8, row.shape[0] - 12), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (255, 255, 255), 2, cv2.LINE_AA)
        rows.append(row)
    return save_png(np.concatenate(rows, axis=0), out)


def insertion_video(clips: Sequence[tuple[str, Clip]], channel: str, out: str | Path, height: int = 256) -> Path:
    """An MP4 of one camera of several versions of a clip side by side (label, clip), one video frame per
    camera frame, written atomically."""
    import imageio.v2 as imageio

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    first = clips[0][1]
    span = (first.frames[-1].timestamp - first.frames[0].timestamp) / 1e6
    fps = (len(first.frames) - 1) / span if span > 0 else 12.0
    partial = out.with_name(f".{out.stem}.partial{out.suffix}")
    with imageio.get_writer(
        partial, fps=fps, codec="libx264", quality=7, macro_block_size=16, ffmpeg_log_level="error"
    ) as writer:
        for i in range(len(first.frames)):
            tiles = []
            for text, clip in clips:
                image = load_image(clip.frames[i].images[channel])
                tile = cv2.resize(image, (round(image.shape[1] * height / image.shape[0]), height)).copy()
                cv2.putText(tile, text, (6, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 3, cv2.LINE_AA)
                cv2.putText(tile, text, (6, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 1, cv2.LINE_AA)
                tiles.append(tile)
            frame = np.concatenate(tiles, axis=1)
            writer.append_data(np.pad(frame, ((0, -frame.shape[0] % 16), (0, -frame.shape[1] % 16), (0, 0))))
    partial.replace(out)
    return out
