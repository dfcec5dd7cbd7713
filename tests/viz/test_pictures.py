import cv2
import numpy as np
import pytest

from dreamdrive.core.categories import detection_class
from dreamdrive.nusc.reader import NuscDataset
from dreamdrive.viz.draw import CLASS_COLORS
from dreamdrive.viz.pictures import annotated_view, bev_plot, six_view_grid, video_frame, write_video


@pytest.fixture(scope="module")
def clip(dataroot):
    return NuscDataset(dataroot).clip("handmade-0000")


def test_six_view_grid_layout(clip):
    grid = six_view_grid(clip, 0)
    assert grid.shape == (2 * 108, 3 * 192, 3)


def test_boxes_are_drawn_where_they_project(clip):
    # the front camera sees a truck ahead: its wireframe colour appears inside the projected outline
    index = 0
    camera = clip.rig["CAM_FRONT"]
    cam_T_global = camera.cam_T_ego @ clip.frames[index].global_T_ego.inverse()
    view = annotated_view(clip, index, "CAM_FRONT", thickness=1)
    truck = next(b for b in clip.boxes_at(index) if detection_class(b.category) == "truck")
    outline = truck.project(camera, cam_T_global)
    mask = np.zeros(view.shape[:2], np.uint8)
    cv2.fillPoly(mask, [np.round(outline).astype(np.int32)], 1)
    color = np.array(CLASS_COLORS["truck"])
    hits = np.all(np.abs(view.astype(int) - color) < 30, axis=2)
    assert hits[mask.astype(bool)].sum() > 10
    assert hits[~cv2.dilate(mask, np.ones((5, 5), np.uint8)).astype(bool)].sum() < hits[mask.astype(bool)].sum()


def test_bev_plot_png(clip, tmp_path):
    out = bev_plot(clip, 5, tmp_path / "bev.png")
    image = cv2.imread(str(out))
    assert image is not None and min(image.shape[:2]) > 400


def test_video_has_one_frame_per_camera_frame(clip, tmp_path):
    import imageio.v2 as imageio

    out = write_video(clip, tmp_path / "clip.mp4", tile_width=96)
    reader = imageio.get_reader(out)
    assert reader.count_frames() == len(clip.frames)
    assert reader.get_meta_data()["fps"] == pytest.approx(12.0, rel=0.01)
    reader.close()
    gif = write_video(clip, tmp_path / "clip.gif", tile_width=64)
    assert len(imageio.mimread(gif)) == len(clip.frames)
    assert video_frame(clip, 0, 96).shape[0] % 16 == 0
