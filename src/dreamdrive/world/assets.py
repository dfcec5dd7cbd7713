"""The asset library (our DriveObj3D): parametric meshes for every class, and users' own GLB/OBJ.

Asset meshes live in their object frame: x forward (the box's length axis), y
left, z up, origin at the centre of the bounding box, which equals the
annotation box (width, length, height) exactly, so that boxes and pixels agree.
Vertex colours are RGBA; alpha names the material the renderer uses (matte,
paint, glass, headlight, taillight, skin). Stored GLBs follow glTF (y up).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import trimesh

from dreamdrive.core.categories import DEFAULT_CATEGORY, DETECTION_CLASSES, TYPICAL_SIZE
from dreamdrive.core.errors import DreamdriveError
from dreamdrive.files import atomic_write

# Material codes carried in the vertex colour's alpha channel.
MATTE, PAINT, GLASS, HEADLIGHT, TAILLIGHT, SKIN = 255, 230, 200, 180, 160, 140
VARIANTS_PER_CLASS = 6
AXES = {"+x": (0, 1.0), "-x": (0, -1.0), "+y": (1, 1.0), "-y": (1, -1.0), "+z": (2, 1.0), "-z": (2, -1.0)}


@dataclass(frozen=True)
class Mesh:
    """A triangle mesh with RGBA vertex colours (alpha = material code)."""

    vertices: np.ndarray  # (N, 3) float32, object frame
    faces: np.ndarray  # (M, 3) int32
    colors: np.ndarray  # (N, 4) uint8

    @property
    def extent(self) -> np.ndarray:
        return self.vertices.max(axis=0) - self.vertices.min(axis=0)


@dataclass(frozen=True)
class AssetInfo:
    """What the library records of an asset (the JSON beside its GLB)."""

    asset_id: str
    detection_class: str
    category: str
    size: tuple[float, float, float]  # width, length, height in metres
    forward_axis: str  # of the stored GLB: always "+x" (imports are turned to it); its up axis is glTF's +y
    source: str
    rider: bool = False


@dataclass(frozen=True)
class Asset:
    info: AssetInfo
    mesh: Mesh


class _Builder:
    """Collects coloured boxes, cylinders and spheres in a unit frame, then fits them to a size."""

    def __init__(self) -> None:
        self.parts: list[trimesh.Trimesh] = []

    def add(self, mesh: trimesh.Trimesh, rgb: tuple[float, float, float], material: int = MATTE) -> None:
        color = np.array([*(np.clip(rgb, 0, 1) * 255), material], dtype=np.uint8)
        mesh.visual = trimesh.visual.ColorVisuals(mesh, vertex_colors=np.tile(color, (len(mesh.vertices), 1)))
        self.parts.append(mesh)

    def box(self, lo, hi, rgb, material=MATTE) -> None:
        lo, hi = np.asarray(lo, float), np.asarray(hi, float)
        self.add(
            trimesh.creation.box(extents=hi - lo, transform=trimesh.transformations.translation_matrix((lo + hi) / 2)),
            rgb,
            material,
        )

    def wheel(self, x, y, radius, width, rgb=(0.08, 0.08, 0.08)) -> None:
        rotate = trimesh.transformations.rotation_matrix(np.pi / 2, [1, 0, 0])
        place = trimesh.transformations.translation_matrix([x, y, radius])
        self.add(trimesh.creation.cylinder(radius=radius, height=width, sections=14, transform=place @ rotate), rgb)

    def cylinder(self, centre, radius, height, rgb, material=MATTE, sections=14) -> None:
        place = trimesh.transformations.translation_matrix(centre)
        self.add(
            trimesh.creation.cylinder(radius=radius, height=height, sections=sections, transform=place), rgb, material
        )

    def sphere(self, centre, radius, rgb, material=MATTE) -> None:
        sphere = trimesh.creation.icosphere(subdivisions=1, radius=radius)
        sphere.apply_translation(centre)
        self.add(sphere, rgb, material)

    def fit(self, size: tuple[float, float, float]) -> Mesh:
        """Scale the parts so their bounds are exactly (width, length, height), centred on the origin."""
        mesh = trimesh.util.concatenate(self.parts)
        lo, hi = mesh.bounds
        width, length, height = size
        scale = np.array([length, width, height]) / (hi - lo)
        vertices = (mesh.vertices - (lo + hi) / 2) * scale
        return Mesh(
            vertices.astype(np.float32), mesh.faces.astype(np.int32), np.asarray(mesh.visual.vertex_colors, np.uint8)
        )


def _vehicle_colour(rng: np.random.Generator) -> tuple[float, float, float]:
    palette = [
        (0.85, 0.85, 0.85),
        (0.1, 0.1, 0.12),
        (0.55, 0.56, 0.6),
        (0.6, 0.08, 0.08),
        (0.1, 0.2, 0.5),
        (0.9, 0.9, 0.92),
        (0.25, 0.3, 0.25),
        (0.75, 0.55, 0.2),
    ]
    return palette[int(rng.integers(len(palette)))]


def _car(b: _Builder, rng: np.random.Generator, style: int) -> None:
    paint = _vehicle_colour(rng)
    # unit frame: x in [-0.5, 0.5] (front +), y in [-0.5, 0.5], z in [0, 1]
    body_top = [0.5, 0.55, 0.62, 0.5][style % 4]
    b.box([-0.5, -0.5, 0.12], [0.5, 0.5, body_top], paint, PAINT)
    b.box([0.47, -0.48, 0.04], [0.5, 0.48, 0.14], (0.12, 0.12, 0.12))  # bumpers and skirts reach down low
    b.box([-0.5, -0.48, 0.04], [-0.47, 0.48, 0.14], (0.12, 0.12, 0.12))
    cabin_front, cabin_back = [(0.2, -0.32), (0.22, -0.45), (0.3, -0.48), (0.45, -0.5)][style % 4]
    b.box([cabin_back, -0.44, body_top], [cabin_front, 0.44, 0.94], (0.12, 0.15, 0.18), GLASS)
    b.box([cabin_back + 0.02, -0.42, 0.94], [cabin_front - 0.02, 0.42, 1.0], paint, PAINT)
    for x in (0.32, -0.32):
        for y in (0.42, -0.42):
            b.wheel(x, y, 0.17, 0.16)
    for y in (0.32, -0.32):
        b.box([0.49, y - 0.1, body_top - 0.15], [0.5, y + 0.1, body_top - 0.05], (1.0, 0.97, 0.85), HEADLIGHT)
        b.box([-0.5, y - 0.1, body_top - 0.15], [-0.49, y + 0.1, body_top - 0.05], (0.8, 0.05, 0.05), TAILLIGHT)


def _truck(b: _Builder, rng: np.random.Generator, style: int) -> None:
    cab = _vehicle_colour(rng)
    cargo = [(0.85, 0.85, 0.82), (0.3, 0.35, 0.5), (0.7, 0.2, 0.1), (0.9, 0.8, 0.3)][style % 4]
    b.box([0.22, -0.48, 0.1], [0.5, 0.48, 0.78], cab, PAINT)
    b.box([0.38, -0.45, 0.5], [0.5, 0.45, 0.75], (0.12, 0.15, 0.18), GLASS)
    b.box([-0.5, -0.5, 0.14], [0.2, 0.5, 1.0], cargo, PAINT if style % 2 else MATTE)
    b.box([0.3, -0.46, 0.78], [0.5, 0.46, 1.0], cab, PAINT)  # roof deflector up to the cargo box's height
    b.box([0.46, -0.48, 0.02], [0.5, 0.48, 0.12], (0.15, 0.15, 0.15))  # bumper
    b.box([-0.5, -0.45, 0.02], [-0.47, 0.45, 0.14], (0.15, 0.15, 0.15))  # underride guard
    for x in (0.36, -0.2, -0.36):
        for y in (0.4, -0.4):
            b.wheel(x, y, 0.09, 0.14)
    for y in (0.33, -0.33):
        b.box([0.49, y - 0.08, 0.2], [0.5, y + 0.08, 0.27], (1.0, 0.97, 0.85), HEADLIGHT)
        b.box([-0.5, y - 0.08, 0.15], [-0.49, y + 0.08, 0.22], (0.8, 0.05, 0.05), TAILLIGHT)


def _bus(b: _Builder, rng: np.random.Generator, style: int) -> None:
    paint = [(0.9, 0.75, 0.1), (0.15, 0.35, 0.7), (0.8, 0.1, 0.1), (0.92, 0.92, 0.92)][style % 4]
    b.box([-0.5, -0.5, 0.08], [0.5, 0.5, 1.0], paint, PAINT)
    b.box([0.48, -0.48, 0.015], [0.5, 0.48, 0.09], (0.12, 0.12, 0.12))  # bumpers
    b.box([-0.5, -0.48, 0.015], [-0.48, 0.48, 0.09], (0.12, 0.12, 0.12))
    b.box([-0.45, -0.505, 0.5], [0.49, 0.505, 0.85], (0.12, 0.15, 0.18), GLASS)
    b.box([0.495, -0.45, 0.4], [0.505, 0.45, 0.88], (0.12, 0.15, 0.18), GLASS)
    for x in (0.33, -0.3):
        for y in (0.42, -0.42):
            b.wheel(x, y, 0.08, 0.12)
    for y in (0.35, -0.35):
        b.box([0.5, y - 0.07, 0.15], [0.505, y + 0.07, 0.21], (1.0, 0.97, 0.85), HEADLIGHT)
        b.box([-0.505, y - 0.07, 0.15], [-0.5, y + 0.07, 0.21], (0.8, 0.05, 0.05), TAILLIGHT)


def _trailer(b: _Builder, rng: np.random.Generator, style: int) -> None:
    paint = [(0.85, 0.85, 0.82), (0.5, 0.5, 0.55), (0.2, 0.4, 0.3), (0.7, 0.3, 0.1)][style % 4]
    b.box([-0.5, -0.5, 0.15], [0.45, 0.5, 1.0], paint, MATTE)
    b.box([0.45, -0.05, 0.18], [0.5, 0.05, 0.24], (0.2, 0.2, 0.2))  # hitch
    for x in (-0.3, -0.4):
        for y in (0.4, -0.4):
            b.wheel(x, y, 0.075, 0.13)
    b.box([0.25, -0.3, 0.0], [0.28, -0.27, 0.15], (0.2, 0.2, 0.2))  # landing legs
    b.box([0.25, 0.27, 0.0], [0.28, 0.3, 0.15], (0.2, 0.2, 0.2))
    for y in (0.38, -0.38):
        b.box([-0.505, y - 0.06, 0.17], [-0.5, y + 0.06, 0.23], (0.8, 0.05, 0.05), TAILLIGHT)


def _construction(b: _Builder, rng: np.random.Generator, style: int) -> None:
    yellow = [(0.95, 0.7, 0.05), (0.95, 0.55, 0.05), (0.85, 0.75, 0.1)][style % 3]
    b.box([-0.5, -0.45, 0.0], [0.3, -0.25, 0.2], (0.1, 0.1, 0.1))  # tracks
    b.box([-0.5, 0.25, 0.0], [0.3, 0.45, 0.2], (0.1, 0.1, 0.1))
    b.box([-0.45, -0.5, 0.2], [0.25, 0.5, 0.5], yellow, PAINT)
    b.box([-0.15, -0.4, 0.5], [0.15, 0.1, 0.85], yellow, PAINT)  # cab
    b.box([0.14, -0.38, 0.55], [0.16, 0.08, 0.82], (0.12, 0.15, 0.18), GLASS)
    b.box([0.1, 0.15, 0.45], [0.5, 0.3, 1.0], yellow, PAINT)  # boom
    b.box([0.4, 0.1, 0.0], [0.5, 0.35, 0.3], (0.3, 0.3, 0.3))  # bucket


def _pedestrian(b: _Builder, rng: np.random.Generator, style: int) -> None:
    shirt = tuple(rng.uniform(0.1, 0.9, 3))
    trousers = [(0.1, 0.12, 0.25), (0.2, 0.2, 0.2), (0.4, 0.35, 0.3), (0.15, 0.15, 0.15)][style % 4]
    skin = [(0.93, 0.78, 0.65), (0.75, 0.55, 0.4), (0.45, 0.3, 0.2)][style % 3]
    if style % 5 == 4:  # high-visibility vest (construction worker look)
        shirt = (0.95, 0.6, 0.05)
    # mid-stride, so that feet and hands reach the front and back of the box
    b.box([0.0, -0.28, 0.06], [0.22, -0.04, 0.48], trousers)
    b.box([-0.22, 0.04, 0.06], [0.0, 0.28, 0.48], trousers)
    b.box([0.0, -0.28, 0.0], [0.5, -0.06, 0.06], (0.1, 0.1, 0.1))  # shoes
    b.box([-0.5, 0.06, 0.0], [0.0, 0.28, 0.06], (0.1, 0.1, 0.1))
    b.box([-0.2, -0.35, 0.46], [0.2, 0.35, 0.82], shirt)
    b.box([-0.4, -0.5, 0.5], [-0.05, -0.36, 0.8], shirt)  # arms swinging
    b.box([0.05, 0.36, 0.5], [0.4, 0.5, 0.8], shirt)
    b.sphere([0.0, 0.0, 0.905], 0.095, skin, SKIN)


def _cycle(b: _Builder, rng: np.random.Generator, style: int, motor: bool, rider: bool) -> None:
    frame = _vehicle_colour(rng) if motor else tuple(rng.uniform(0.1, 0.9, 3))
    tyre = (0.05, 0.05, 0.05)
    radius = 0.22 if motor else 0.28
    for x in (0.5 - radius, -0.5 + radius):
        b.wheel(x, 0.0, radius, 0.14 if motor else 0.08, tyre)
    bar = 0.62 if rider else 0.95  # handlebar height: below the rider's shoulders, or the top of a riderless cycle
    if motor:
        b.box([-0.3, -0.25, 0.25], [0.3, 0.25, 0.5], frame, PAINT)
        b.box([0.42, -0.1, 0.38], [0.45, 0.1, 0.45], (1.0, 0.97, 0.85), HEADLIGHT)
    else:
        b.box([-0.25, -0.06, 0.3], [0.25, 0.06, 0.36], frame)
    b.box([0.28, -0.04, 0.35], [0.34, 0.04, bar], (0.2, 0.2, 0.2))  # steering column
    b.box([0.3, -0.5, bar - 0.04], [0.4, 0.5, bar], (0.2, 0.2, 0.2))  # handlebar and mirrors set the width
    bags = [(0.1, 0.1, 0.1), (0.55, 0.15, 0.1), (0.15, 0.3, 0.6)][style % 3]
    b.box([-0.5, -0.5, 0.3], [-0.22, 0.5, 0.55], bags)  # panniers
    if rider:
        shirt = tuple(rng.uniform(0.1, 0.9, 3))
        b.box([-0.25, -0.4, 0.45], [0.05, 0.4, 0.85], shirt)  # torso and shoulders
        b.box([0.05, -0.42, 0.62], [0.32, -0.3, 0.7], shirt)  # arms to the handlebar
        b.box([0.05, 0.3, 0.62], [0.32, 0.42, 0.7], shirt)
        b.sphere([-0.08, 0.0, 0.915], 0.085, (0.9, 0.75, 0.6), SKIN)
    else:
        b.box([-0.3, -0.08, 0.9], [-0.12, 0.08, 0.95], (0.1, 0.1, 0.1))  # saddle, up by the handlebar


def _cone(b: _Builder, rng: np.random.Generator, style: int) -> None:
    orange = [(1.0, 0.42, 0.05), (1.0, 0.3, 0.02), (0.95, 0.52, 0.1)][style % 3]
    b.box([-0.5, -0.5, 0.0], [0.5, 0.5, 0.06], (0.15, 0.15, 0.15))
    cone = trimesh.creation.cone(radius=0.32, height=0.94, sections=16)
    cone.apply_translation([0, 0, 0.06])
    b.add(cone, orange)
    for z, radius in [(0.55, 0.18)] if style % 2 else [(0.45, 0.21), (0.65, 0.14)]:  # one or two reflective bands
        b.cylinder([0, 0, z], radius, 0.1, (0.95, 0.95, 0.95), MATTE, 16)


def _barrier(b: _Builder, rng: np.random.Generator, style: int) -> None:
    # a barrier is long across its heading: nuScenes sizes it 2.5 m wide and 0.5 m long
    if style % 2:  # concrete jersey barrier
        b.box([-0.5, -0.5, 0.0], [0.5, 0.5, 0.25], (0.72, 0.72, 0.7))
        b.box([-0.3, -0.5, 0.25], [0.3, 0.5, 1.0], (0.72, 0.72, 0.7))
    else:  # striped plank barrier on feet
        for y in (-0.42, 0.42):
            b.box([-0.5, y - 0.04, 0.0], [0.5, y + 0.04, 0.1], (0.2, 0.2, 0.2))
            b.box([-0.05, y - 0.03, 0.0], [0.05, y + 0.03, 0.7], (0.9, 0.9, 0.9))
        for k in range(8):
            y0 = -0.5 + k / 8
            color = (0.85, 0.1, 0.1) if k % 2 else (0.95, 0.95, 0.95)
            b.box([-0.12, y0, 0.62], [0.12, y0 + 1 / 8, 1.0], color)


_MAKERS = {
    "car": _car, "truck": _truck, "bus": _bus, "trailer": _trailer, "construction_vehicle": _construction,
    "pedestrian": _pedestrian, "traffic_cone": _cone, "barrier": _barrier,
}  # fmt: skip


def parametric_asset(detection_class: str, variant: int, seed: int = 0) -> Asset:
    """Variant `variant` of a class: its shape style, colours and size (within about 10% of typical) from the seed."""
    if detection_class not in DETECTION_CLASSES:
        raise DreamdriveError(f"unknown class {detection_class!r}; use one of {list(DETECTION_CLASSES)}.")
    rng = np.random.default_rng([seed, DETECTION_CLASSES.index(detection_class), variant])
    width, length, height = TYPICAL_SIZE[detection_class]
    scale = rng.uniform(0.9, 1.1, 3)
    rider = detection_class in ("motorcycle", "bicycle") and variant % 3 != 2
    if detection_class in ("motorcycle", "bicycle") and not rider:
        scale[2] *= 0.75  # no rider: the box ends at the handlebars
    size = (round(width * scale[0], 3), round(length * scale[1], 3), round(height * scale[2], 3))
    builder = _Builder()
    if detection_class in ("motorcycle", "bicycle"):
        _cycle(builder, rng, variant, detection_class == "motorcycle", rider)
    else:
        _MAKERS[detection_class](builder, rng, variant)
    info = AssetInfo(
        asset_id=f"{detection_class}-{variant:02d}", detection_class=detection_class,
        category=DEFAULT_CATEGORY[detection_class], size=size, forward_axis="+x",
        source=f"parametric:{detection_class}/{variant}/seed{seed}", rider=rider,
    )  # fmt: skip
    return Asset(info, builder.fit(size))


def builtin_assets(seed: int = 0, variants: int = VARIANTS_PER_CLASS) -> list[Asset]:
    """The parametric library: `variants` assets of each of the 10 classes."""
    return [parametric_asset(name, v, seed) for name in DETECTION_CLASSES for v in range(variants)]


def default_library_root() -> Path:
    return Path(os.environ.get("DREAMDRIVE_HOME", Path.home() / ".cache" / "dreamdrive")) / "assets"


class AssetLibrary:
    """A folder of assets: `<id>.glb` (mesh, vertex colours) and `<id>.json` (AssetInfo)."""

    def __init__(self, root: str | Path | None = None):
        self.root = Path(root) if root is not None else default_library_root()

    def ensure_builtin(self, seed: int = 0) -> None:
        """Write the parametric assets that are not in the library yet."""
        for asset in builtin_assets(seed):
            if not (self.root / f"{asset.info.asset_id}.json").is_file():
                self.save(asset)

    def save(self, asset: Asset) -> None:

        self.root.mkdir(parents=True, exist_ok=True)
        # glTF is y-up: store (x, y, z) as (x, z, -y), so viewers show the asset upright, front along +x
        vertices = asset.mesh.vertices[:, [0, 2, 1]] * np.array([1.0, 1.0, -1.0], np.float32)
        y_up = trimesh.Trimesh(vertices, asset.mesh.faces, vertex_colors=asset.mesh.colors, process=False)
        glb = trimesh.exchange.gltf.export_glb(trimesh.Scene(y_up))
        atomic_write(self.root / f"{asset.info.asset_id}.glb", glb)
        atomic_write(self.root / f"{asset.info.asset_id}.json", json.dumps(asdict(asset.info), indent=1).encode())

    def list(self) -> list[AssetInfo]:
        infos = []
        for path in sorted(self.root.glob("*.json")):
            try:
                data = json.loads(path.read_text())
                infos.append(AssetInfo(**{**data, "size": tuple(data["size"])}))
            except (json.JSONDecodeError, TypeError) as error:
                raise DreamdriveError(
                    f"{path} is not an asset record ({error}); delete it or re-add the asset."
                ) from error
        return infos

    def get(self, asset_id: str) -> Asset:
        infos = {info.asset_id: info for info in self.list()}
        if asset_id not in infos:
            raise DreamdriveError(
                f"no asset {asset_id!r} in {self.root}; `dreamdrive assets list` shows the ids ({len(infos)} assets)."
            )
        return Asset(infos[asset_id], load_mesh(self.root / f"{asset_id}.glb", up="+y", forward="+x"))

    def add(
        self,
        path: str | Path,
        detection_class: str,
        asset_id: str | None = None,
        up: str = "+y",
        forward: str = "+x",
        size: tuple[float, float, float] | None = None,
    ) -> Asset:
        """Import a user's GLB/OBJ as an asset of `detection_class`.

        The mesh is turned so that `forward` and `up` (its own axes, e.g. "+x", "-z")
        become +x and +z, centred, and scaled uniformly to the class's typical
        length, or fitted exactly to `size` (width, length, height) when given.
        """
        if detection_class not in DETECTION_CLASSES:
            raise DreamdriveError(f"unknown class {detection_class!r}; use one of {list(DETECTION_CLASSES)}.")
        mesh = load_mesh(Path(path), up=up, forward=forward)
        extent = mesh.extent.astype(np.float64)  # (length, width, height) on (x, y, z)
        if size is None:
            scale = np.full(3, TYPICAL_SIZE[detection_class][1] / extent[0])
        else:
            scale = np.array([size[1], size[0], size[2]]) / extent
        vertices = mesh.vertices * scale
        fitted = Mesh(vertices.astype(np.float32), mesh.faces, mesh.colors)
        length, width, height = (fitted.extent.astype(np.float64)).tolist()
        asset_id = asset_id or f"user-{Path(path).stem}"
        info = AssetInfo(
            asset_id,
            detection_class,
            DEFAULT_CATEGORY[detection_class],
            (round(width, 4), round(length, 4), round(height, 4)),
            "+x",
            f"file:{Path(path).name}",
        )
        asset = Asset(info, fitted)
        self.save(asset)
        return asset


def load_mesh(path: Path, up: str, forward: str) -> Mesh:
    """A GLB/OBJ file as a Mesh turned to x forward and z up, centred on its bounding box."""
    if not path.is_file():
        raise DreamdriveError(f"mesh file {path} does not exist.")
    if up not in AXES or forward not in AXES or AXES[up][0] == AXES[forward][0]:
        raise DreamdriveError(f"up {up!r} and forward {forward!r} must be two different axes among {list(AXES)}.")
    try:
        loaded = trimesh.load(path, force="mesh", process=False)
    except Exception as error:  # trimesh raises many types for broken files
        raise DreamdriveError(f"cannot read the mesh {path}: {error}") from error
    if not isinstance(loaded, trimesh.Trimesh) or len(loaded.faces) == 0:
        raise DreamdriveError(f"the mesh {path} has no faces; give a file with triangle geometry.")
    vertices = np.asarray(loaded.vertices, dtype=np.float64)
    if not np.all(np.isfinite(vertices)) or np.ptp(vertices, axis=0).min() <= 0:
        raise DreamdriveError(f"the mesh {path} has non-finite or flat geometry.")
    # rows of `turn` are the new x (forward), y (left = up x forward), z (up) in the file's axes
    f_axis, f_sign = AXES[forward]
    u_axis, u_sign = AXES[up]
    new_x = np.zeros(3)
    new_x[f_axis] = f_sign
    new_z = np.zeros(3)
    new_z[u_axis] = u_sign
    turn = np.stack([new_x, np.cross(new_z, new_x), new_z])
    vertices = vertices @ turn.T
    vertices -= (vertices.min(axis=0) + vertices.max(axis=0)) / 2
    visual = loaded.visual
    try:
        # textured meshes are baked to vertex colours; coloured ones are taken as they are
        colors = np.asarray((visual if visual.kind == "vertex" else visual.to_color()).vertex_colors, dtype=np.uint8)
    except Exception:  # textures that cannot be baked: plain grey
        colors = np.tile(np.array([160, 160, 160, MATTE], np.uint8), (len(vertices), 1))
    if colors.shape != (len(vertices), 4):
        colors = np.tile(np.array([160, 160, 160, MATTE], np.uint8), (len(vertices), 1))
    return Mesh(vertices.astype(np.float32), np.asarray(loaded.faces, dtype=np.int32), colors)
