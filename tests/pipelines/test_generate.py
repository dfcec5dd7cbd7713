"""Text to multi-view video end to end with the shipped models: the boxes of the written dataset do what the
prompt says, the frames are not flat, neighbouring views agree at their seams about as well as real renders do,
the same prompt gives the same bytes, and bad input is refused."""

import json
from dataclasses import replace

import numpy as np
import pytest
import torch
from nuscenes.nuscenes import NuScenes

from dreamdrive.core.errors import DreamdriveError
from dreamdrive.core.geometry import Transform
from dreamdrive.files import load_image
from dreamdrive.metrics.video import consistency
from dreamdrive.nusc.reader import NuscDataset
from dreamdrive.pipelines.generate import GenerateOptions, generate_from_prompt
from dreamdrive.pipelines.scenario import from_prompt, with_duration, write_outputs
from dreamdrive.pipelines.vae import load_vae
from dreamdrive.pipelines.video import decode_latents, encode_frames
from tests.scenario.test_prompts import holds

STEPS = 3  # Euler steps: enough for structured frames, few enough for this CPU
# The project's behaviour-checked prompts (tests/scenario/prompts.py), one of each kind of behaviour.
CHECKED = [
    ("A red truck cuts in from the left on a rainy night", ["cut_in", "class=truck", "weather=rain", "time=night"]),
    ("The truck in front slams on the brakes", ["hard_brake", "class=truck"]),
    ("A man suddenly runs into the street from the right", ["dash_out"]),
    ("A car overtakes us", ["overtake"]),
    ("An oncoming truck", ["oncoming", "class=truck"]),
    ("The truck ahead switches lanes to the right", ["change_lane", "class=truck"]),
]


def dataset_trajectories(out) -> dict:
    """The written dataset's boxes and ego poses as the scenario's trajectories (road frame, x, y, yaw, speed
    per model frame), in the form the prompt checks read; the road frame from scenario.json."""
    record = json.loads((out / "scenario.json").read_text())
    frame = record["road_frame"]
    assert frame["kind"] == "rigid"
    road_T_global = Transform.from_pose2d(*frame["origin"][:2], frame["yaw"]).inverse()
    clip = NuscDataset(out / "dataset").clip(record["name"])
    times = np.array([f.timestamp for f in clip.frames]) / 1e6

    def row(pose: Transform, speed: float) -> list[float]:
        local = road_T_global @ pose
        return [*local.translation[:2], local.yaw, speed]

    ego = [row(f.global_T_ego, 0.0) for f in clip.frames]
    for k in range(len(ego)):  # the ego's speed from its positions
        a, b = max(k - 1, 0), min(k + 1, len(ego) - 1)
        ego[k][3] = float(np.hypot(*np.subtract(ego[b][:2], ego[a][:2])) / (times[b] - times[a]))
    kinds = {actor["id"]: actor for actor in record["scenario"]["actors"]}
    actors = []
    for agent in clip.agents:
        boxes = agent.boxes
        assert all(box is not None for box in boxes), f"{agent.instance_id} lacks a box on some frame"
        rows = [row(Transform.from_pose2d(*b.center[:2], b.yaw), float(np.hypot(*b.velocity[:2]))) for b in boxes]
        actor = kinds[agent.instance_id.removeprefix(record["name"] + "-")]
        actors.append({"class": actor["class"], "color": actor["color"], "state": actor["state"], "trajectory": rows})
    return {"ego": ego, "actors": actors, "hz": round(1 / np.diff(times).mean()),
            "weather": record["scenario"]["weather"], "time_of_day": record["scenario"]["time_of_day"]}  # fmt: skip


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    root = tmp_path_factory.mktemp("generate")
    outs = {}
    for k, (prompt, _) in enumerate(CHECKED):
        map_spec = "generated" if k % 2 == 0 else "road"  # the default, and the scenario's own road
        outs[prompt] = root / f"p{k}"
        generate_from_prompt(prompt, outs[prompt], GenerateOptions(map_spec=map_spec, steps=STEPS))
    return outs


@pytest.mark.slow
@pytest.mark.parametrize("prompt,checks", CHECKED, ids=[c[0] for c in CHECKED])
def test_the_generated_dataset_keeps_the_behaviour_the_prompt_asks_for(generated, prompt, checks):
    out = generated[prompt]
    NuScenes("v1.0-dreamdrive", str(out / "dataset"), verbose=False)  # the devkit loads it
    data = dataset_trajectories(out)
    assert data["hz"] == 4  # one model frame every 3 camera frames
    failed = [check for check in checks if not holds(check, data)]
    assert not failed, f"{prompt!r}: the dataset's boxes do not show {failed}"
    for name in ("video.mp4", "bev.png", "frames.png", "script.py"):
        assert (out / name).stat().st_size > 0
    record = json.loads((out / "generation.json").read_text())
    assert set(record["seconds"]) == {"translate", "map", "layouts", "video", "write"}


@pytest.mark.slow
def test_generated_frames_are_not_flat_and_move(generated):
    for prompt, out in generated.items():
        clip = NuscDataset(out / "dataset").clip(json.loads((out / "generation.json").read_text())["scene"])
        images = np.stack([[load_image(f.images[c]) for c in clip.rig.names] for f in clip.frames]).astype(float)
        assert images.std(axis=(2, 3)).mean() > 10, f"{prompt!r}: flat frames"  # grey levels within a view
        assert np.abs(images[-1] - images[0]).mean() > 3, f"{prompt!r}: the frames do not change"


@pytest.mark.slow
def test_neighbouring_views_agree_at_their_seams_about_as_well_as_real_renders(generated, tmp_path):
    # the real renders: the same scenarios on their own roads, by the procedural renderer at the model's size
    prompts = [prompt for k, (prompt, _) in enumerate(CHECKED) if k % 2 == 1]
    scores = []
    for k, prompt in enumerate(prompts):
        scenario, town = from_prompt(prompt, map_spec="road")
        write_outputs(scenario, tmp_path / f"real{k}", width=112, height=64, town=town)
        real = consistency(tmp_path / f"real{k}" / "dataset", every=12)["score"]
        fake = consistency(generated[prompt] / "dataset", every=4)["score"]
        scores.append((real, fake))
    real, fake = np.mean(scores, axis=0)
    assert fake > real - 0.1, f"seam SSIM {fake:.3f} generated against {real:.3f} real"


def test_the_same_prompt_and_seed_give_the_same_bytes_and_a_rerun_writes_nothing(tmp_path):
    options = GenerateOptions(map_spec="road", seconds=1.75, steps=2, seed=3)
    prompt = "A bus squeezes in front of us from the right"
    generate_from_prompt(prompt, tmp_path / "a", options)
    generate_from_prompt(prompt, tmp_path / "b", options)

    def files(root):
        return {p.relative_to(root): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}

    a, b = files(tmp_path / "a"), files(tmp_path / "b")
    assert a.keys() == b.keys()
    assert [name for name in a if a[name] != b[name]] == [next(n for n in a if n.name == "generation.json")]
    times = {p: p.stat().st_mtime_ns for p in (tmp_path / "a").rglob("*")}
    again = generate_from_prompt(prompt, tmp_path / "a", options)
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "a").rglob("*")} == times
    assert again["frames"] == 8  # 1.75 s at 12 Hz, one model frame every 3 camera frames


def test_first_frame_mode_starts_from_the_renderers_view(tmp_path):
    options = GenerateOptions(map_spec="road", mask="first-frame", seconds=1.75, steps=2)
    prompt = "A cyclist on the right"
    record = generate_from_prompt(prompt, tmp_path / "ff", options)
    scenario, town = from_prompt(prompt, map_spec="road", seconds=1.75)
    write_outputs(scenario, tmp_path / "real", width=112, height=64, town=town)
    real = NuscDataset(tmp_path / "real" / "dataset").clip(scenario.name)
    fake = NuscDataset(tmp_path / "ff" / "dataset").clip(record["scene"])
    views = real.rig.names

    def frame(clip, t):
        return np.stack([load_image(clip.frames[t].images[c]) for c in views])[None]

    # the first frame is the render through the shipped autoencoder, kept clean; later frames are generated
    autoencoder = load_vae()
    expected = decode_latents(autoencoder, torch.from_numpy(encode_frames(autoencoder, frame(real, 0))))[0]
    assert np.abs(frame(fake, 0)[0].astype(float) - expected).mean() < 2  # JPEG's rounding
    assert np.abs(frame(fake, -1)[0].astype(float) - expected).mean() > 4


def test_the_oracle_renders_the_same_scenario_on_the_same_frames(tmp_path):
    options = GenerateOptions(map_spec="road", video="world", seconds=1.75, seed=2)
    prompt = "A white van brakes hard in front of us at dusk"
    record = generate_from_prompt(prompt, tmp_path / "oracle", options)
    model = generate_from_prompt(prompt, tmp_path / "model", replace(options, video="model", steps=1))
    assert record["source_frames"] == model["source_frames"] and set(record["seconds"]) >= {"video", "write"}
    scenario, town = from_prompt(prompt, map_spec="road", seconds=1.75, seed=2)
    write_outputs(scenario, tmp_path / "real", width=112, height=64, town=town)
    real = NuscDataset(tmp_path / "real" / "dataset").clip(scenario.name)
    oracle = NuscDataset(tmp_path / "oracle" / "dataset").clip(record["scene"])
    generated = NuscDataset(tmp_path / "model" / "dataset").clip(model["scene"])
    assert [f.timestamp for f in oracle.frames] == [f.timestamp for f in generated.frames]
    for t, k in enumerate(record["source_frames"]):  # every model frame is the renderer's frame
        for channel in real.rig.names:
            rendered, drawn = load_image(real.frames[k].images[channel]), load_image(oracle.frames[t].images[channel])
            assert np.abs(rendered.astype(float) - drawn).mean() < 1.0
    boxes = lambda clip: [[b.center.round(3).tolist() for b in a.boxes] for a in clip.agents]  # noqa: E731
    assert boxes(oracle) == boxes(generated)  # the same boxes as the generated clip


def test_the_duration_is_set_before_save_and_out_of_range_is_refused():
    script = "ego(speed=10)\nset_duration(12.0)\nsave()\n"
    assert with_duration(script, 2.5).splitlines()[-2:] == ["set_duration(2.5)", "save()"]
    with pytest.raises(DreamdriveError, match="between 1 and"):
        with_duration(script, 0.5)
    with pytest.raises(DreamdriveError, match="save()"):
        with_duration("ego(speed=10)\n", 2.0)


@pytest.mark.parametrize(
    "options,prompt,match",
    [
        (dict(mask="front-view"), "a car cuts in", "--mask"),
        (dict(map_spec="moon"), "a car cuts in", "--map"),
        (dict(mask="first-frame"), "a car cuts in", "procedural roads only"),
        (dict(video="world"), "a car cuts in", "procedural roads only"),
        (dict(video="film"), "a car cuts in", "--video"),
        (dict(map_spec="road"), "xyzzy plugh", "could not place"),
        (dict(map_spec="road"), "  ", "empty"),
    ],
)
def test_bad_input_gets_one_clear_error(options, prompt, match, tmp_path):
    with pytest.raises(DreamdriveError, match=match):
        generate_from_prompt(prompt, tmp_path / "out", GenerateOptions(steps=1, seconds=1.5, **options))
    assert not (tmp_path / "out" / "dataset").exists()
