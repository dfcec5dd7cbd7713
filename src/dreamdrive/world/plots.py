"""Pictures of procedural towns."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dreamdrive.core.camera import Camera
from dreamdrive.core.geometry import Transform
from dreamdrive.world.geometry import SEMANTIC, fan, mesh_soup
from dreamdrive.world.render import Environment, RenderObject, WorldRenderer
from dreamdrive.world.town import Town, _rectangle


def plot_town(town: Town, out: str | Path, lanes: bool = True) -> Path:
    """A top view of the whole town: roads, markings, crossings, sidewalks, lanes, roadside structure (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Polygon as PolygonPatch

    hdmap = town.hdmap
    fig, ax = plt.subplots(figsize=(11, 11), dpi=120)
    for polygon in town.sidewalks:
        ax.add_patch(PolygonPatch(polygon, facecolor="#d9d4c7", edgecolor="none"))
    for polygon in hdmap.drivable_areas:
        ax.add_patch(PolygonPatch(polygon, facecolor="#8c8c8c", edgecolor="none"))
    for polygon in hdmap.ped_crossings:
        ax.add_patch(PolygonPatch(polygon, facecolor="#f2f2f2", edgecolor="#3c9fd8", lw=0.6, hatch="||"))
    for line in hdmap.lane_dividers:
        ax.plot(line[:, 0], line[:, 1], color="#ffd34d", lw=0.8)
    for line in hdmap.road_boundaries:
        ax.plot(line[:, 0], line[:, 1], color="#d62728", lw=1.0)
    if lanes:
        for lane in hdmap.lanes.values():
            c = lane.centerline
            connector = ">" in lane.lane_id
            ax.plot(c[:, 0], c[:, 1], color="#1f77b4" if not connector else "#17becf", lw=0.5, alpha=0.8)
            mid = len(c) // 2
            if len(c) > 2:
                ax.annotate(
                    "",
                    xy=c[min(mid + 1, len(c) - 1)],
                    xytext=c[mid],
                    arrowprops=dict(arrowstyle="->", color="#1f77b4", lw=0.6),
                )
    colors = {"building": None, "streetlight": "#222222", "tree": "#2e7d32"}
    for obj in town.statics:
        corners = _rectangle(np.array(obj.center), obj.size[0], obj.size[1], obj.yaw)
        ax.add_patch(PolygonPatch(corners, facecolor=colors[obj.kind] or obj.color, edgecolor="#555555", lw=0.3))
    for key, point in town.nodes.items():
        ax.text(point[0], point[1], key, fontsize=6, ha="center", va="center", color="white")
    x0, y0, x1, y1 = hdmap.bounds()
    ax.set_xlim(x0 - 30, x1 + 30)
    ax.set_ylim(y0 - 30, y1 + 30)
    ax.set_aspect("equal")
    ax.set_facecolor("#b7c9a8")
    ax.set_title(
        f"{town.name}: {len(town.roads)} roads, {len(hdmap.lanes)} lanes and connectors, "
        f"{len(hdmap.ped_crossings)} crossings",
        fontsize=10,
    )
    ax.set_xlabel("x [m]")
    ax.set_ylabel("y [m]")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, bbox_inches="tight")
    plt.close(fig)
    return out


def turntable(asset, out: str | Path, tile: int = 256, views: int = 8) -> Path:
    """The asset rendered from `views` angles around it, on a ground plane, as one PNG strip of two rows."""
    import cv2

    ground = fan(
        np.zeros(2),
        np.array([[-60.0, -60.0], [60.0, -60.0], [60.0, 60.0], [-60.0, 60.0]]),
        0.0,
        (0.55, 0.55, 0.55),
        SEMANTIC["road"],
    )
    renderer = WorldRenderer(ground, {"asset": mesh_soup(asset.mesh, SEMANTIC[asset.info.detection_class])}, tile, tile)
    width, length, height = asset.info.size
    objects = [RenderObject("asset", Transform.from_pose2d(0.0, 0.0, 0.0, height / 2), 1, lights=True)]
    radius = 1.6 * max(width, length, height) + 1.0
    focal = tile / (2 * np.tan(np.radians(25)))
    intrinsic = np.array([[focal, 0, tile / 2], [0, focal, tile / 2], [0, 0, 1.0]])
    renderer.prepare(np.zeros(3), objects, Environment("day", "clear", sun_azimuth=2.2))
    tiles = []
    try:
        for k in range(views):
            azimuth = 2 * np.pi * k / views
            eye = np.array([radius * np.cos(azimuth), radius * np.sin(azimuth), 0.45 * radius])
            target = np.array([0.0, 0.0, height / 2])
            forward = (target - eye) / np.linalg.norm(target - eye)
            right = np.cross(forward, [0.0, 0.0, 1.0])
            right /= np.linalg.norm(right)
            down = np.cross(forward, right)
            camera = Camera("turntable", intrinsic, Transform.identity(), tile, tile)
            images = renderer.render(camera, Transform(np.stack([right, down, forward], axis=1), eye), objects)
            tiles.append(images.rgb.copy())
    finally:
        renderer.release()
    rows = [np.concatenate(tiles[: views // 2], axis=1), np.concatenate(tiles[views // 2 :], axis=1)]
    picture = np.concatenate(rows, axis=0)
    label = f"{asset.info.asset_id}  ({asset.info.detection_class}, w {width:.2f} l {length:.2f} h {height:.2f} m)"
    cv2.putText(picture, label, (8, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(picture, label, (8, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 1, cv2.LINE_AA)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(out), picture[:, :, ::-1])
    return out
