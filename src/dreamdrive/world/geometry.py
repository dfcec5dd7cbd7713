"""Triangle soups for the renderer: a town's ground, markings and roadside structure; asset meshes.

Every soup is flat-shaded: per-vertex position (3), normal (3), RGBA colour
(alpha = material code) and a semantic class id, as float32 rows of 11 values.
"""

from __future__ import annotations

import numpy as np
import trimesh

from dreamdrive.core.categories import DETECTION_CLASSES
from dreamdrive.core.conventions import LANE_WIDTH
from dreamdrive.core.paths import Path2D
from dreamdrive.world.assets import HEADLIGHT, MATTE, Mesh
from dreamdrive.world.town import CROSSWALK_WIDTH, SIDEWALK_WIDTH, Town, _corner, offset

# Semantic classes of the renderer's class map (0 is sky / nothing).
SEMANTIC_NAMES: tuple[str, ...] = (
    "sky", "road", "sidewalk", "lane_marking", "crossing", "building", "pole", "vegetation", "terrain",
    *DETECTION_CLASSES,
)  # fmt: skip
SEMANTIC = {name: i for i, name in enumerate(SEMANTIC_NAMES)}
BUILDING = 120  # material code: walls with windows
ROAD_Z, MARK_Z, CURB_H = 0.0, 0.012, 0.12
FLOATS_PER_VERTEX = 11


def soup(vertices: np.ndarray, faces: np.ndarray, rgba: np.ndarray, semantic: int) -> np.ndarray:
    """(F*3, 11) float32 rows of a flat-shaded triangle soup; `rgba` is per vertex (N, 4) uint8 or one colour."""
    tri = vertices[faces]  # (F, 3, 3)
    normals = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    normals /= np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)
    colors = np.asarray(rgba, dtype=np.float32) / 255.0
    colors = colors[faces].reshape(-1, 4) if colors.ndim == 2 else np.tile(colors, (len(faces) * 3, 1))
    rows = np.empty((len(faces) * 3, FLOATS_PER_VERTEX), np.float32)
    rows[:, 0:3] = tri.reshape(-1, 3)
    rows[:, 3:6] = np.repeat(normals, 3, axis=0)
    rows[:, 6:10] = colors
    rows[:, 10] = semantic
    return rows


def mesh_soup(mesh: Mesh, semantic: int) -> np.ndarray:
    return soup(mesh.vertices.astype(np.float64), mesh.faces, mesh.colors, semantic)


def _rgba(rgb: tuple[float, float, float], material: int = MATTE) -> np.ndarray:
    return np.array([*(np.asarray(rgb) * 255), material], dtype=np.float32).round()


def strip(left: np.ndarray, right: np.ndarray, z: float | np.ndarray, rgb, semantic: int, material=MATTE) -> np.ndarray:
    """A ribbon between two polylines (N, 2) of equal length, facing up."""
    n = len(left)
    zs = np.broadcast_to(np.asarray(z, dtype=np.float64), (n,))
    vertices = np.concatenate([np.column_stack([left, zs]), np.column_stack([right, zs])])
    i = np.arange(n - 1)
    faces = np.concatenate([np.stack([i, i + n, i + 1], 1), np.stack([i + 1, i + n, i + n + 1], 1)])
    faces = _face_up(vertices, faces)
    return soup(vertices, faces, _rgba(rgb, material), semantic)


def _face_up(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    tri = vertices[faces]
    up = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])[:, 2] >= 0
    return np.where(up[:, None], faces, faces[:, ::-1])


def fan(centre: np.ndarray, ring: np.ndarray, z: float, rgb, semantic: int) -> np.ndarray:
    """A star-shaped polygon as a triangle fan from `centre` (facing up)."""
    vertices = np.column_stack([np.vstack([centre, ring]), np.full(len(ring) + 1, z)])
    i = np.arange(1, len(ring) + 1)
    faces = np.stack([np.zeros_like(i), i, np.roll(i - 1, -1) + 1], 1)
    return soup(vertices, _face_up(vertices, faces), _rgba(rgb), semantic)


def box(
    centre: tuple[float, float, float],
    size: tuple[float, float, float],
    yaw: float,
    rgb,
    semantic: int,
    material: int = MATTE,
) -> np.ndarray:
    """An oriented box: size (width, length, height) with length along yaw, `centre` at its base centre."""
    width, length, height = size
    mesh = trimesh.creation.box(extents=(length, width, height))
    transform = trimesh.transformations.rotation_matrix(yaw, [0, 0, 1])
    transform[:3, 3] = [centre[0], centre[1], centre[2] + height / 2]
    mesh.apply_transform(transform)
    return soup(np.asarray(mesh.vertices), np.asarray(mesh.faces), _rgba(rgb, material), semantic)


def _dashes(line: np.ndarray, width: float, dash: float, gap: float, rgb, z: float) -> list[np.ndarray]:
    """Dashed marking along a polyline."""
    path = Path2D(line)
    pieces = []
    for s0 in np.arange(1.0, path.length - dash, dash + gap):
        s = np.linspace(s0, s0 + dash, 4)
        points, _ = path.pose(s)
        pieces.append(strip(offset(points, width / 2), offset(points, -width / 2), z, rgb, SEMANTIC["lane_marking"]))
    return pieces


def town_soup(town: Town) -> np.ndarray:
    """Everything static in a town as one triangle soup in global coordinates."""
    asphalt, curb, walk, grass = (0.23, 0.23, 0.24), (0.62, 0.61, 0.58), (0.55, 0.53, 0.5), (0.30, 0.42, 0.22)
    white, yellow = (0.92, 0.92, 0.9), (0.93, 0.75, 0.15)
    parts = []
    x0, y0, x1, y1 = town.hdmap.bounds()
    margin = 400.0
    ground = np.array(
        [[x0 - margin, y0 - margin], [x1 + margin, y0 - margin], [x1 + margin, y1 + margin], [x0 - margin, y1 + margin]]
    )
    parts.append(fan(ground.mean(axis=0), ground, -0.02, grass, SEMANTIC["terrain"]))
    for road in town.roads.values():
        line = road.centerline
        left, right = offset(line, road.left_edge), offset(line, -road.right_edge)
        parts.append(strip(left, right, ROAD_Z, asphalt, SEMANTIC["road"]))
        for edge, sign in ((road.left_edge, 1.0), (road.right_edge, -1.0)):
            inner, outer = offset(line, sign * edge), offset(line, sign * (edge + SIDEWALK_WIDTH))
            parts.append(strip(inner, outer, CURB_H, walk, SEMANTIC["sidewalk"]))
            parts.append(_curb_face(inner, outer, CURB_H, curb))
        # markings: double yellow centre line, dashed white between lanes of one direction
        for shift in (-0.12, 0.12):
            centre = offset(line, shift)
            parts.append(strip(offset(centre, 0.06), offset(centre, -0.06), MARK_Z, yellow, SEMANTIC["lane_marking"]))
        for k in range(1, road.forward_lanes):
            parts += _dashes(offset(line, -k * LANE_WIDTH), 0.15, 3.0, 6.0, white, MARK_Z)
        for k in range(1, road.backward_lanes):
            parts += _dashes(offset(line, k * LANE_WIDTH), 0.15, 3.0, 6.0, white, MARK_Z)
    for key, node_ends in town.ends.items():
        ring = []
        for i, end in enumerate(node_ends):
            following = node_ends[(i + 1) % len(node_ends)]
            corner = _corner(end, following)
            ring += [end.right, end.left, *corner[1:-1]]
            outer = _corner(end, following, SIDEWALK_WIDTH)
            parts.append(strip(corner, outer, CURB_H, walk, SEMANTIC["sidewalk"]))
            parts.append(_curb_face(corner, outer, CURB_H, curb))
            parts += _zebra(end, np.array([-end.direction[1], end.direction[0]]), white)
        parts.append(fan(town.nodes[key], np.asarray(ring), ROAD_Z - 0.001, asphalt, SEMANTIC["road"]))
    for obj in town.statics:
        parts += _static(obj)
    return np.concatenate(parts)


def _zebra(end, normal: np.ndarray, rgb) -> list[np.ndarray]:

    left_w = float(np.dot(end.left - end.point, normal))
    right_w = float(np.dot(end.right - end.point, normal))
    near = end.point - end.direction * (CROSSWALK_WIDTH + 0.5)
    far = end.point - end.direction * 0.5
    stripes = []
    for w in np.arange(right_w + 0.3, left_w - 0.5, 1.0):
        a, b = near + normal * w, far + normal * w
        stripes.append(
            strip(np.array([a, b]), np.array([a + normal * 0.5, b + normal * 0.5]), MARK_Z, rgb, SEMANTIC["crossing"])
        )
    return stripes


def _curb_face(line: np.ndarray, outer: np.ndarray, height: float, rgb) -> np.ndarray:
    """The vertical face of a curb under a polyline (N, 2), from the road up to the sidewalk, facing away from
    the sidewalk's `outer` edge (N, 2): the renderer culls back faces, and the road is where it is seen from."""
    n = len(line)
    vertices = np.concatenate([np.column_stack([line, np.zeros(n)]), np.column_stack([line, np.full(n, height)])])
    i = np.arange(n - 1)
    faces = np.concatenate([np.stack([i, i + 1, i + n], 1), np.stack([i + 1, i + n + 1, i + n], 1)])
    tri = vertices[faces]
    normal = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])[:, :2]
    away = np.tile((line[:-1] + line[1:]) / 2 - (outer[:-1] + outer[1:]) / 2, (2, 1))
    faces = np.where((np.sum(normal * away, axis=1) >= 0)[:, None], faces, faces[:, ::-1])
    return soup(vertices, faces, _rgba(rgb), SEMANTIC["sidewalk"])


def _static(obj) -> list[np.ndarray]:
    x, y = obj.center
    if obj.kind == "building":
        return [box((x, y, 0.0), obj.size, obj.yaw, obj.color, SEMANTIC["building"], BUILDING)]
    if obj.kind == "tree":
        width, _, height = obj.size
        canopy = trimesh.creation.icosphere(subdivisions=1, radius=width / 2)
        canopy.apply_scale([1.0, 1.0, 1.3])
        canopy.apply_translation([x, y, height - width * 0.55])
        return [
            box((x, y, CURB_H), (0.3, 0.3, height - width), 0.0, (0.3, 0.22, 0.15), SEMANTIC["vegetation"]),
            soup(np.asarray(canopy.vertices), np.asarray(canopy.faces), _rgba(obj.color), SEMANTIC["vegetation"]),
        ]
    # street light: pole, an arm over the road, a lamp head (emissive at night)
    _, _, height = obj.size
    arm_dir = np.array([-np.sin(obj.yaw), np.cos(obj.yaw)])  # a street light's yaw is set so its left faces the road
    head = np.array([x, y]) + arm_dir * 1.5
    return [
        box((x, y, CURB_H), (0.18, 0.18, height), obj.yaw, obj.color, SEMANTIC["pole"]),
        box(
            (*(np.array([x, y]) + arm_dir * 0.75), height - 0.1),
            (1.5, 0.1, 0.1),
            obj.yaw + np.pi / 2,
            obj.color,
            SEMANTIC["pole"],
        ),
        box(
            (head[0], head[1], height - 0.35), (0.35, 0.6, 0.25), obj.yaw, (1.0, 0.85, 0.6), SEMANTIC["pole"], HEADLIGHT
        ),
    ]


def lamp_positions(town: Town) -> np.ndarray:
    """(N, 3) positions of the street lights' lamp heads."""
    out = []
    for obj in town.statics:
        if obj.kind == "streetlight":
            arm = np.array([-np.sin(obj.yaw), np.cos(obj.yaw)])
            head = np.array(obj.center) + arm * 1.5
            out.append([head[0], head[1], obj.size[2] - 0.45])
    return np.asarray(out).reshape(-1, 3)


__all__ = ["SEMANTIC", "SEMANTIC_NAMES", "lamp_positions", "mesh_soup", "town_soup"]
