import numpy as np
import pytest
import trimesh

from dreamdrive.core.categories import DETECTION_CLASSES, TYPICAL_SIZE
from dreamdrive.core.errors import DreamdriveError
from dreamdrive.world.assets import VARIANTS_PER_CLASS, AssetLibrary, builtin_assets


def test_builtin_assets_fill_their_boxes_and_vary():
    assets = builtin_assets(seed=0)
    assert len(assets) == len(DETECTION_CLASSES) * VARIANTS_PER_CLASS
    for asset in assets:
        width, length, height = asset.info.size
        # the mesh's bounds are the box: x is the length, y the width, z the height, centred
        assert np.allclose(asset.mesh.extent, [length, width, height], atol=1e-5)
        assert np.allclose(asset.mesh.vertices.min(axis=0), -asset.mesh.vertices.max(axis=0), atol=1e-5)
        typical = TYPICAL_SIZE[asset.info.detection_class]
        assert 0.6 < width / typical[0] < 1.25 and 0.85 < length / typical[1] < 1.15
    for name in DETECTION_CLASSES:
        group = [a for a in assets if a.info.detection_class == name]
        assert len({a.info.size for a in group}) == len(group)  # sizes differ
        assert len({a.mesh.colors.tobytes() for a in group}) > 1  # so do colours


def test_library_round_trip(tmp_path):
    library = AssetLibrary(tmp_path)
    library.ensure_builtin()
    infos = library.list()
    assert len(infos) == len(DETECTION_CLASSES) * VARIANTS_PER_CLASS
    original = next(a for a in builtin_assets() if a.info.asset_id == "truck-02")
    loaded = library.get("truck-02")
    assert loaded.info == original.info
    assert np.allclose(loaded.mesh.vertices, original.mesh.vertices, atol=1e-6)
    assert (loaded.mesh.colors == original.mesh.colors).all()
    # the stored GLB is y-up for other tools: its tallest extent is the truck's height along y
    scene = trimesh.load(tmp_path / "truck-02.glb", force="mesh")
    assert np.ptp(scene.vertices[:, 1]) == pytest.approx(original.info.size[2], abs=1e-4)


def test_import_user_mesh(tmp_path):
    # a van modelled y-up, nose along -z, 4 long, 1.8 wide, 2 tall, away from the origin
    mesh = trimesh.creation.box(extents=(1.8, 2.0, 4.0))
    mesh.apply_translation([5.0, 1.0, -3.0])
    path = tmp_path / "van.obj"
    mesh.export(path)
    library = AssetLibrary(tmp_path / "lib")
    asset = library.add(path, "car", up="+y", forward="-z")
    width, length, height = asset.info.size
    scale = TYPICAL_SIZE["car"][1] / 4.0  # scaled to the class's typical length, proportions kept
    assert (width, length, height) == pytest.approx((1.8 * scale, 4.0 * scale, 2.0 * scale), abs=1e-3)
    assert np.allclose(asset.mesh.vertices.mean(axis=0), 0, atol=1e-5)
    fitted = library.add(path, "truck", asset_id="van-truck", up="+y", forward="-z", size=(2.5, 7.0, 3.0))
    assert fitted.info.size == pytest.approx((2.5, 7.0, 3.0))
    assert {info.asset_id for info in library.list()} == {"user-van", "van-truck"}


def test_bad_meshes(tmp_path):
    library = AssetLibrary(tmp_path / "lib")
    with pytest.raises(DreamdriveError, match="does not exist"):
        library.add(tmp_path / "missing.glb", "car")
    points = tmp_path / "points.obj"
    points.write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\n")
    with pytest.raises(DreamdriveError, match="has no faces"):
        library.add(points, "car")
    with pytest.raises(DreamdriveError, match="unknown class"):
        library.add(points, "spaceship")
    with pytest.raises(DreamdriveError, match="two different axes"):
        library.add(points, "car", up="+x", forward="-x")
    with pytest.raises(DreamdriveError, match="no asset 'nope'"):
        library.get("nope")
