"""A clip's pictures: BEV plot (PNG), six-view grid with projected boxes and map (PNG), video (MP4/GIF)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

import cv2
import numpy as np

from dreamdrive.core.categories import DETECTION_CLASSES, detection_class
from dreamdrive.core.clip import Clip
from dreamdrive.core.errors import DreamdriveError
from dreamdrive.core.geometry import Transform
from dreamdrive.files import atomic_write, load_image
from dreamdrive.viz.draw import CLASS_COLORS, MAP_COLORS, draw_box_wireframe, draw_polyline_3d

# Display layout: the front cameras above, the back cameras below, each row left to right as seen from the car.
GRID_ROWS: tuple[tuple[str, ...], ...] = (
    ("CAM_FRONT_LEFT", "CAM_FRONT", "CAM_FRONT_RIGHT"),
    ("CAM_BACK_LEFT", "CAM_BACK", "CAM_BACK_RIGHT"),
)
EGO_SIZE = (1.73, 4.08)  # width, length of the nuScenes Renault Zoe


def _map_polylines(clip: Clip) -> list[tuple[str, np.ndarray]]:
    if clip.hdmap is None:
        return []
    hdmap = clip.hdmap
    return (
        [("road_boundary", p) for p in hdmap.road_boundaries]
        + [("lane_divider", p) for p in hdmap.lane_dividers]
        + [("ped_crossing", np.vstack([p, p[:1]])) for p in hdmap.ped_crossings]
    )


def annotated_view(clip: Clip, index: int, channel: str, thickness: int = 2, map_range: float = 60.0) -> np.ndarray:
    """One camera image of frame `index` with the map (near the ego) and the boxes drawn in."""
    frame = clip.frames[index]
    camera = clip.rig[channel]
    image = load_image(frame.images[channel]).copy()
    _, global_T_ego = frame.camera_pose(channel)
    cam_T_global = camera.cam_T_ego @ global_T_ego.inverse()
    ego_xy = global_T_ego.translation[:2]
    for name, line in _map_polylines(clip):
        near = np.linalg.norm(line - ego_xy, axis=1) < map_range + np.linalg.norm(np.diff(line, axis=0), axis=1).max(
            initial=0
        )
        if near.any():
            points = np.column_stack([line, np.zeros(len(line))])
            draw_polyline_3d(image, points, camera, cam_T_global, MAP_COLORS[name], max(1, thickness - 1))
    for box in clip.boxes_at(index):
        if box.project(camera, cam_T_global) is not None:
            draw_box_wireframe(image, box, camera, cam_T_global, CLASS_COLORS[detection_class(box.category)], thickness)
    return image


def six_view_grid(
    clip: Clip, index: int, tile_width: int | None = None, labels: bool = True, annotate: bool = True
) -> np.ndarray:
    """Frame `index` as a 2x3 grid (front row over back row), with boxes and map drawn unless `annotate` is off."""
    tiles = []
    for row in GRID_ROWS:
        row_tiles = []
        for channel in row:
            if channel in clip.rig.names:
                tile = (
                    annotated_view(clip, index, channel)
                    if annotate
                    else load_image(clip.frames[index].images[channel]).copy()
                )
            else:
                camera = clip.rig.cameras[0]
                tile = np.zeros((camera.height, camera.width, 3), np.uint8)
            if tile_width and tile.shape[1] != tile_width:
                tile = cv2.resize(
                    tile, (tile_width, round(tile.shape[0] * tile_width / tile.shape[1])), interpolation=cv2.INTER_AREA
                )
            if labels:
                scale = max(0.35, tile.shape[1] / 900)
                cv2.putText(
                    tile, channel, (8, int(24 * scale) + 4), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 3, cv2.LINE_AA
                )
                cv2.putText(
                    tile,
                    channel,
                    (8, int(24 * scale) + 4),
                    cv2.FONT_HERSHEY_SIMPLEX,
                    scale,
                    (255, 255, 255),
                    1,
                    cv2.LINE_AA,
                )
            row_tiles.append(tile)
        height = min(t.shape[0] for t in row_tiles)
        tiles.append(np.concatenate([t[:height] for t in row_tiles], axis=1))
    return np.concatenate(tiles, axis=0)


def _ego_T_global(clip: Clip, index: int) -> Transform:
    return clip.frames[index].global_T_ego.inverse()


def bev_plot(clip: Clip, index: int, out: str | Path, radius: float = 50.0) -> Path:
    """A BEV plot of frame `index` in the ego frame: map, boxes, whole-clip trajectories, ego. Writes a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Polygon as PolygonPatch

    ego_T_global = _ego_T_global(clip, index)

    def to_ego(xy: np.ndarray) -> np.ndarray:
        return ego_T_global.apply(np.column_stack([xy, np.zeros(len(xy))]))[:, :2]

    def plot_xy(xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return -xy[:, 1], xy[:, 0]  # ego left to the left of the page, forward up

    fig, ax = plt.subplots(figsize=(8, 8), dpi=110)
    if clip.hdmap is not None:
        for polygon in clip.hdmap.drivable_areas:
            ax.add_patch(PolygonPatch(np.column_stack(plot_xy(to_ego(polygon))), facecolor="0.92", edgecolor="none"))
        for polygon in clip.hdmap.ped_crossings:
            ax.add_patch(
                PolygonPatch(np.column_stack(plot_xy(to_ego(polygon))), facecolor="#bfe6ff", edgecolor="#3c9fd8")
            )
        for line in clip.hdmap.lane_dividers:
            ax.plot(*plot_xy(to_ego(line)), color="0.55", lw=1, ls=(0, (6, 4)))
        for line in clip.hdmap.road_boundaries:
            ax.plot(*plot_xy(to_ego(line)), color="#d62728", lw=1.5)
    seen = set()
    for agent in clip.agents:
        track = np.array([b.center[:2] for b in agent.boxes if b is not None])
        name = detection_class(agent.category)
        color = np.array(CLASS_COLORS[name]) / 255
        if len(track) > 1:
            ax.plot(*plot_xy(to_ego(track)), color=color, lw=0.8, alpha=0.6)
        box = agent.boxes[index]
        if box is None:
            continue
        corners = to_ego(box.corners()[[0, 1, 5, 4], :2])  # bottom outline: front-left, front-right, back...
        label = name if name not in seen else None
        seen.add(name)
        ax.add_patch(
            PolygonPatch(
                np.column_stack(plot_xy(corners)), facecolor=(*color, 0.35), edgecolor=color, lw=1.2, label=label
            )
        )
        ax.plot(*plot_xy(corners[:2]), color=color, lw=2.5)  # front edge
    ego_track = np.array([f.global_T_ego.translation[:2] for f in clip.frames])
    ax.plot(*plot_xy(to_ego(ego_track)), color="k", lw=1.5, ls="--", label="ego path")
    width, length = EGO_SIZE
    ego = np.array(
        [[length / 2, width / 2], [length / 2, -width / 2], [-length / 2, -width / 2], [-length / 2, width / 2]]
    )
    ax.add_patch(PolygonPatch(np.column_stack(plot_xy(ego)), facecolor="k", edgecolor="k", label="ego"))
    ax.set_xlim(-radius, radius)
    ax.set_ylim(-radius, radius)
    ax.set_aspect("equal")
    ax.set_xlabel("ego -y (right) [m]")
    ax.set_ylabel("ego x (forward) [m]")
    timestamp = clip.frames[index].timestamp
    ax.set_title(f"{clip.name}  frame {index}  t={timestamp}  ({clip.location})", fontsize=10)
    order = {n: i for i, n in enumerate(DETECTION_CLASSES)}
    handles, names = ax.get_legend_handles_labels()
    pairs = sorted(zip(handles, names), key=lambda hn: order.get(hn[1], 99))
    ax.legend([h for h, _ in pairs], [n for _, n in pairs], loc="upper right", fontsize=7, framealpha=0.85)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, bbox_inches="tight")
    plt.close(fig)
    return out


def bev_canvas(clip: Clip, index: int, size: int, radius: float = 50.0) -> np.ndarray:
    """A fast BEV picture (size, size, 3) RGB of frame `index` for video frames."""
    canvas = np.full((size, size, 3), 255, np.uint8)
    ego_T_global = _ego_T_global(clip, index)
    scale = size / (2 * radius)

    def pixels(xy: np.ndarray) -> np.ndarray:
        ego = ego_T_global.apply(np.column_stack([xy, np.zeros(len(xy))]))
        return np.round(np.stack([size / 2 - ego[:, 1] * scale, size / 2 - ego[:, 0] * scale], 1) * 16).astype(np.int32)

    if clip.hdmap is not None:
        for polygon in clip.hdmap.drivable_areas:
            cv2.fillPoly(canvas, [pixels(polygon)], (235, 235, 235), cv2.LINE_AA, 4)
        for name, line in _map_polylines(clip):
            cv2.polylines(
                canvas,
                [pixels(line)],
                False,
                MAP_COLORS[name] if name != "lane_divider" else (150, 150, 150),
                1,
                cv2.LINE_AA,
                4,
            )
    for box in clip.boxes_at(index):
        outline = pixels(box.corners()[[0, 1, 5, 4], :2])
        color = CLASS_COLORS[detection_class(box.category)]
        cv2.fillPoly(canvas, [outline], color, cv2.LINE_AA, 4)
        cv2.polylines(canvas, [outline[:2]], False, (0, 0, 0), 1, cv2.LINE_AA, 4)
    half = np.array(EGO_SIZE) / 2 * scale  # (width, length) -> (columns, rows)
    ego = np.round(
        np.array([[size / 2 - half[0], size / 2 - half[1]], [size / 2 + half[0], size / 2 + half[1]]])
    ).astype(int)
    cv2.rectangle(canvas, tuple(ego[0]), tuple(ego[1]), (0, 0, 0), -1)
    return canvas


def video_frame(clip: Clip, index: int, tile_width: int = 320) -> np.ndarray:
    """The six-view grid with a BEV panel on its right; sides padded to multiples of 16 for H.264."""
    grid = six_view_grid(clip, index, tile_width)
    panel = bev_canvas(clip, index, grid.shape[0])
    frame = np.concatenate([grid, panel], axis=1)
    pad_h, pad_w = -frame.shape[0] % 16, -frame.shape[1] % 16
    return np.pad(frame, ((0, pad_h), (0, pad_w), (0, 0)))


def write_video(
    clip: Clip,
    out: str | Path,
    tile_width: int = 320,
    fps: float | None = None,
    progress: Callable[[Iterable], Iterable] | None = None,
) -> Path:
    """Write the clip as MP4 (H.264, one video frame per camera frame) or GIF, chosen by `out`'s suffix."""
    import imageio.v2 as imageio

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if fps is None:
        span = (clip.frames[-1].timestamp - clip.frames[0].timestamp) / 1e6
        fps = (len(clip.frames) - 1) / span if span > 0 else 12.0
    indices = range(len(clip.frames))
    if out.suffix.lower() == ".gif":
        frames = [video_frame(clip, i, tile_width) for i in (progress(indices) if progress else indices)]
        imageio.mimsave(out, frames, duration=1000.0 / fps, loop=0)
    elif out.suffix.lower() == ".mp4":
        with imageio.get_writer(
            out, fps=fps, codec="libx264", quality=7, macro_block_size=16, ffmpeg_log_level="error"
        ) as writer:
            for i in progress(indices) if progress else indices:
                writer.append_data(video_frame(clip, i, tile_width))
    else:
        raise DreamdriveError(f"video output {out} must end in .mp4 or .gif.")
    return out


def save_png(image: np.ndarray, out: str | Path) -> Path:
    """Write an RGB image as PNG, atomically: a killed writer leaves the old file or none, never a part (jobs
    that keep finished pictures would otherwise keep a truncated one)."""
    out = Path(out)
    encoded, data = cv2.imencode(".png", np.ascontiguousarray(image[:, :, ::-1]))
    if not encoded:
        raise DreamdriveError(f"cannot encode the picture {out} as PNG (shape {image.shape}).")
    atomic_write(out, data.tobytes(), durable=False)
    return out
