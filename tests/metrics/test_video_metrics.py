"""Fréchet distance against known answers; the FID and FVD networks' weights round trip; weight-free metrics."""

import numpy as np
import pytest
import torch

from dreamdrive.core.errors import DreamdriveError
from dreamdrive.metrics.networks import I3D, FIDInception, load_network
from dreamdrive.metrics.video import consistency, frechet_distance, reconstruction, strip_consistency


def test_frechet_distance_of_known_gaussians():
    # diagonal covariances: ||mu1 - mu2||^2 + sum (sqrt(s1) - sqrt(s2))^2
    mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
    s1, s2 = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 1.0])
    assert frechet_distance(mu1, np.diag(s1), mu2, np.diag(s2)) == pytest.approx(5.0 + 1 + 1 + 4, abs=1e-10)
    assert frechet_distance(mu1, np.diag(s1), mu1, np.diag(s1)) == pytest.approx(0.0, abs=1e-10)
    # full covariances against an independent float64 computation: tr sqrt(S1 S2) = sum sqrt(eig(A S2 A)), A = S1^1/2
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(6, 6)), rng.normal(size=(6, 6))
    sigma1, sigma2 = a @ a.T + 0.1 * np.eye(6), b @ b.T + 0.1 * np.eye(6)
    mu1, mu2 = rng.normal(size=6), rng.normal(size=6)
    values, vectors = np.linalg.eigh(sigma1)
    root = vectors @ np.diag(np.sqrt(values)) @ vectors.T
    trace_sqrt = np.sqrt(np.clip(np.linalg.eigvalsh(root @ sigma2 @ root), 0, None)).sum()
    expected = np.sum((mu1 - mu2) ** 2) + np.trace(sigma1) + np.trace(sigma2) - 2 * trace_sqrt
    assert frechet_distance(mu1, sigma1, mu2, sigma2) == pytest.approx(expected, rel=1e-10)


def test_inception_weights_round_trip_with_the_standard_names(tmp_path):
    torch.manual_seed(0)
    network = FIDInception().eval()
    state = network.state_dict()
    assert state["Conv2d_1a_3x3.conv.weight"].shape == (32, 3, 3, 3)
    assert state["Mixed_7c.branch3x3dbl_3b.conv.weight"].shape == (384, 384, 3, 1)
    assert state["Mixed_6e.branch7x7dbl_5.bn.running_var"].shape == (192,)
    assert state["fc.weight"].shape == (1008, 2048)
    torch.save(state, tmp_path / "pt_inception-2015-12-05-6726825d.pth")
    images = torch.rand(2, 3, 64, 96)
    with torch.no_grad():
        before = network(images)
        after = load_network("inception", tmp_path / "pt_inception-2015-12-05-6726825d.pth")(images)
    assert before.shape == (2, 2048) and torch.allclose(before, after)


def test_i3d_weights_round_trip_from_a_state_dict_and_from_torchscript(tmp_path):
    torch.manual_seed(0)
    network = I3D().eval()
    state = network.state_dict()
    assert state["Conv3d_1a_7x7.conv3d.weight"].shape == (64, 3, 7, 7, 7)
    assert state["Mixed_5c.b1b.conv3d.weight"].shape == (384, 192, 3, 3, 3)
    assert state["logits.conv3d.weight"].shape == (400, 1024, 1, 1, 1) and "logits.conv3d.bias" in state
    torch.save(state, tmp_path / "i3d.pt")
    clip = torch.rand(1, 3, 16, 224, 224) * 2 - 1
    with torch.no_grad():
        before = network(clip)
        after = load_network("i3d", tmp_path / "i3d.pt")(clip)
        torch.jit.trace(network, clip).save(str(tmp_path / "i3d_torchscript.pt"))
        scripted = load_network("i3d", tmp_path / "i3d_torchscript.pt")(clip)
    assert before.shape == (1, 400)
    assert torch.allclose(before, after, atol=1e-5) and torch.allclose(before, scripted, atol=1e-5)


def test_missing_or_wrong_weights_name_the_file_needed(tmp_path):
    with pytest.raises(DreamdriveError, match="pt_inception-2015-12-05-6726825d.pth"):
        load_network("inception", None)
    with pytest.raises(DreamdriveError, match="i3d_torchscript.pt"):
        load_network("i3d", tmp_path / "nowhere.pt")
    torch.save({"fc.weight": torch.zeros(3, 3)}, tmp_path / "other.pth")
    with pytest.raises(DreamdriveError, match="does not hold the inception network's weights"):
        load_network("inception", tmp_path / "other.pth")


def test_consistency_is_high_for_real_views_and_drops_when_a_view_comes_from_elsewhere(tiny_world):
    from dreamdrive.files import load_image
    from dreamdrive.nusc.reader import NuscDataset

    clips = [NuscDataset(tiny_world).clip(s) for s in NuscDataset(tiny_world).scene_names]
    rig = clips[0].rig
    matched, mismatched = [], []
    for a, b in (("CAM_FRONT", "CAM_FRONT_RIGHT"), ("CAM_BACK_LEFT", "CAM_FRONT_LEFT")):
        for k, clip in enumerate(clips):
            other = clips[(k + 1) % len(clips)]
            image_a = load_image(clip.frames[0].images[a])
            matched.append(strip_consistency(image_a, load_image(clip.frames[0].images[b]), rig[a], rig[b]))
            mismatched.append(strip_consistency(image_a, load_image(other.frames[0].images[b]), rig[a], rig[b]))
    assert np.mean(matched) > np.mean(mismatched) + 0.05
    report = consistency(tiny_world, every=9)
    assert 0 < report["score"] < 1 and len(report["per_pair"]) == 6


def test_reconstruction_of_a_dataset_by_itself_is_perfect(tiny_world):
    from dreamdrive.nusc.reader import NuscDataset

    frames = len(NuscDataset(tiny_world).clip("proc-004-0000").frames)
    result = reconstruction(tiny_world, tiny_world, ["proc-004-0000"])
    assert result["ssim"] == pytest.approx(1.0, abs=1e-4) and result["psnr"] > 60 and result["frames"] == frames * 6


@pytest.mark.slow
def test_fid_of_a_dataset_against_itself_is_near_zero_and_against_another_is_not(tiny_world, tmp_path):
    from dreamdrive.metrics.video import camera_frames, fid
    from dreamdrive.world.builder import WorldConfig, build_world

    torch.manual_seed(0)
    network = FIDInception()
    # random weights give near-constant features; calibrate the batch norms on real frames so that they vary
    for module in network.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.momentum = None
    frames = [next(iter(camera_frames(tiny_world)["CAM_FRONT"]))] + list(camera_frames(tiny_world)["CAM_BACK"])[:7]
    with torch.no_grad():
        network.train()(torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).float() / 255)
    torch.save(network.state_dict(), tmp_path / "inception.pth")
    other = tmp_path / "other"
    build_world(other, WorldConfig(scenes=1, seconds=0.5, seed=9, width=160, height=96, time_of_day=("night",)))
    same = fid(tiny_world, tiny_world, tmp_path / "inception.pth", ["proc-004-0000"], max_frames=4,
               cameras=["CAM_FRONT"])  # fmt: skip
    assert set(same["per_camera"]) == {"CAM_FRONT"} and abs(same["mean"]) < 1e-3
    different = fid(tiny_world, other, tmp_path / "inception.pth", max_frames=4, cameras=["CAM_FRONT"])
    assert different["mean"] > 100 * max(abs(same["mean"]), 1e-6)


@pytest.mark.slow
def test_fvd_of_a_dataset_against_itself_is_near_zero_and_against_another_is_not(tiny_world, tmp_path):
    from dreamdrive.metrics.video import _windows, fvd
    from dreamdrive.world.builder import WorldConfig, build_world

    torch.manual_seed(0)
    network = I3D()
    for module in network.modules():  # calibrated batch norms, so that random weights give varied features
        if isinstance(module, torch.nn.BatchNorm3d):
            module.momentum = None
    clips = [w for channel, windows in _windows(tiny_world, None, 16, (112, 112)).items() for w in windows][:4]
    with torch.no_grad():
        network.train()(torch.stack(clips))
    torch.save(network.state_dict(), tmp_path / "i3d.pt")
    other = tmp_path / "other"
    build_world(other, WorldConfig(scenes=3, seconds=1.5, seed=11, width=160, height=96, time_of_day=("night",)))
    same = fvd(tiny_world, tiny_world, tmp_path / "i3d.pt", cameras=["CAM_FRONT"])
    assert same["windows"] == {"real": 3, "generated": 3} and abs(same["fvd"]) < 1e-3
    different = fvd(tiny_world, other, tmp_path / "i3d.pt", cameras=["CAM_FRONT"])
    assert different["fvd"] > 1000 * max(abs(same["fvd"]), 1e-9) and set(different["per_camera"]) == {"CAM_FRONT"}


def test_proxy_networks_are_seeded_keep_the_signal_and_are_labelled(tiny_world, tmp_path):
    from dreamdrive.metrics.networks import proxy_network
    from dreamdrive.metrics.video import camera_frames, fid

    a, b = proxy_network("inception").state_dict(), proxy_network("inception").state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)  # same seed, same weights
    assert not torch.equal(a["Conv2d_1a_3x3.conv.weight"], proxy_network("inception", seed=1).state_dict()[
        "Conv2d_1a_3x3.conv.weight"])  # fmt: skip
    frames = list(camera_frames(tiny_world)["CAM_FRONT"])[:3] + list(camera_frames(tiny_world)["CAM_BACK"])[:3]
    images = torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).float() / 255
    with torch.no_grad():
        features = proxy_network("inception")(images)
        clips = proxy_network("i3d")(torch.rand(2, 3, 8, 64, 112) * 2 - 1)
    # He-initialised layers keep the scale: features neither vanish nor collapse to one vector
    assert features.abs().mean() > 1e-2 and (features - features.mean(0)).abs().mean() > 1e-3 * features.abs().mean()
    assert clips.abs().mean() > 1e-2 and not torch.allclose(clips[0], clips[1])
    with pytest.raises(DreamdriveError, match="--proxy"):
        fid(tiny_world, tiny_world, None, max_frames=2, cameras=["CAM_FRONT"])
    same = fid(tiny_world, tiny_world, None, max_frames=4, cameras=["CAM_FRONT"], proxy=True)
    assert same["network"].startswith("proxy") and abs(same["mean"]) < 1e-6
