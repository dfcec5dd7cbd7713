"""Text to scenario, the job: prompt -> script -> trajectories -> placed and validated -> rendered -> dataset.

`from_prompt` translates a prompt, runs its script in the sandbox, places the
scenario on its own road or on a named map, and validates (and repairs) it;
`write_outputs` renders it with the procedural renderer and writes the
scenario's files and its nuScenes-format dataset.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np

from dreamdrive.core.camera import CameraRig
from dreamdrive.core.errors import DreamdriveError
from dreamdrive.core.geometry import Transform
from dreamdrive.files import atomic_write
from dreamdrive.models.hdmap import HDMapNet
from dreamdrive.nusc.mapexp import hdmap_from_expansion
from dreamdrive.nusc.writer import encode_jpeg, write_dataset
from dreamdrive.pipelines.hdmap import generated_map, load_generator
from dreamdrive.scenario.library import MAX_DURATION
from dreamdrive.scenario.llm import LlamaTranslator, OpenAITranslator
from dreamdrive.scenario.offline import translate_offline, tuned_translator
from dreamdrive.scenario.placement import place_on_map
from dreamdrive.scenario.sandbox import run_scenario_script
from dreamdrive.scenario.scene import Scenario, scenario_road, to_clip, trajectory_raster, validate_and_repair
from dreamdrive.scenario.types import Actor, RigidFrame
from dreamdrive.viz.pictures import bev_plot, save_png, write_video
from dreamdrive.world.assets import PAINT, Asset, builtin_assets
from dreamdrive.world.geometry import SEMANTIC, mesh_soup
from dreamdrive.world.render import Environment, RenderObject, make_renderer, render_frame
from dreamdrive.world.town import Town, make_town

TRANSLATORS = ("offline", "tuned", "openai", "llama")
COLOR_RGB = {
    "white": (0.9, 0.9, 0.9),
    "black": (0.1, 0.1, 0.12),
    "grey": (0.55, 0.56, 0.6),
    "silver": (0.75, 0.75, 0.78),
    "red": (0.6, 0.08, 0.08),
    "blue": (0.1, 0.2, 0.5),
    "green": (0.25, 0.3, 0.25),
    "yellow": (0.9, 0.75, 0.1),
    "orange": (0.75, 0.55, 0.2),
    "brown": (0.45, 0.3, 0.2),
}


def load_map(spec: str, seed: int) -> Town | None:
    """The map named by `spec`: "road" (None: the scenario's own road or junction), "town" or "town:SEED" (a
    procedural town), or "nuscenes:DATAROOT:LOCATION" (a nuScenes map expansion)."""
    kind, _, rest = spec.partition(":")
    if kind == "road" and not rest:
        return None
    if kind == "town":
        try:
            return make_town(int(rest) if rest else seed)
        except ValueError as error:
            raise DreamdriveError(f"--map town takes a seed, as in town:3, got {spec!r}.") from error
    if kind == "nuscenes":
        dataroot, _, location = rest.rpartition(":")
        if not dataroot or not location:
            raise DreamdriveError(f"--map nuscenes takes nuscenes:DATAROOT:LOCATION, got {spec!r}.")
        hdmap = hdmap_from_expansion(dataroot, location)
        return Town(location, hdmap, {}, {}, {}, [], {}, {}, {})
    raise DreamdriveError(f"--map {spec!r} must be road, town, town:SEED, nuscenes:DATAROOT:LOCATION or generated.")


def translate(prompt: str, translator: str = "offline") -> str:
    """The scenario script for `prompt` from the named translator."""
    if translator == "offline":
        return translate_offline(prompt)
    if translator == "tuned":  # the shipped tuned model between the parser and retrieval, behind the verifier
        return translate_offline(prompt, tuned=tuned_translator(required=True))
    if translator == "openai":
        return OpenAITranslator().translate(prompt)
    if translator == "llama":
        return LlamaTranslator().translate(prompt)
    raise DreamdriveError(f"translator {translator!r} must be one of {', '.join(TRANSLATORS)}.")


def from_prompt(
    prompt: str,
    translator: str = "offline",
    seed: int = 0,
    map_spec: str = "road",
    hdmap_model: Path | None = None,
    seconds: float | None = None,
) -> tuple[Scenario, Town]:
    """Translate `prompt`, run its script in the sandbox, place it on a road (or on the map `map_spec` names, see
    `load_map`; "generated": an HD map generated from its trajectories, by `hdmap_model` or the shipped one) and
    validate it. `seconds`: how long it lasts, whatever the script says."""
    # 1. The map first: a bad --map is refused before any translation work.
    where = resolve_map(map_spec, seed, hdmap_model)
    # 2. Prompt -> script -> trajectories.
    scenario = scenario_from_prompt(prompt, translator, seed, seconds)
    # 3. Placed on a generated map, the named map, or a road built around it; validated and repaired there.
    return scenario, place_scenario(scenario, where)


def resolve_map(map_spec: str, seed: int, hdmap_model: Path | None = None) -> HDMapNet | Town | None:
    """What `map_spec` names, ready to place scenarios on: the HD-map generator ("generated"), a town or a map
    (`load_map`), or None for each scenario's own road."""
    if map_spec == "generated":
        return load_generator(hdmap_model)
    return load_map(map_spec, seed)


def scenario_from_prompt(
    prompt: str, translator: str = "offline", seed: int = 0, seconds: float | None = None
) -> Scenario:
    """The prompt's script from the translator (lasting `seconds` if given), run in the sandbox."""
    script = translate(prompt, translator)
    if seconds is not None:
        script = with_duration(script, seconds)
    return Scenario(prompt, script, translator, seed, run_scenario_script(script))


def with_duration(script: str, seconds: float) -> str:
    """The script with a `set_duration(seconds)` call just before its closing `save()`."""
    if not 1 <= seconds <= MAX_DURATION:
        raise DreamdriveError(f"--seconds must be between 1 and {MAX_DURATION:g}, got {seconds:g}.")
    lines = script.rstrip().splitlines()
    if not lines or lines[-1].strip() != "save()":
        raise DreamdriveError("the scenario script does not end with save(), so its duration cannot be set; "
                              "drop --seconds or fix the script.")  # fmt: skip
    return "\n".join([*lines[:-1], f"set_duration({float(seconds)!r})", "save()"]) + "\n"


def place_scenario(scenario: Scenario, where: HDMapNet | Town | None) -> Town:
    """Place the scenario (`resolve_map`'s result: on an HD map generated from its trajectories, on the town or
    map, or on a road built around it), validate and repair it there; the town it is on."""
    seed = scenario.seed
    if isinstance(where, HDMapNet):  # a map of its own, named after the scenario (maps of one name are one map)
        global_T_road = scenario.road_frame().global_T_road
        hdmap, _, _ = generated_map(scenario.result, global_T_road, where, seed, name=f"generated-{scenario.name}")
        town = Town(hdmap.name, hdmap, {}, {}, {}, [], {}, {}, {})
        scenario.frame = RigidFrame(global_T_road)
    elif where is not None:
        town = where
        scenario.frame = place_on_map(scenario.result, town, seed)
    else:
        town = scenario_road(scenario.result, seed)
        name = f"{town.name}-{scenario.name.removeprefix('scenario-')}"
        town = replace(town, name=name, hdmap=replace(town.hdmap, name=name))
    validate_and_repair(scenario, town)
    return town


def write_outputs(
    scenario: Scenario, out: Path, render: bool = True, width: int = 448, height: int = 256, town: Town | None = None
) -> Path:
    """scenario.json, script.py, bev.png, trajectory_map.png and dataset/ (rendered when `render`; a map without
    the procedural world's roads, such as a nuScenes location, is not rendered: its frames stay grey)."""
    # 1. The scenario and its script.
    out = Path(out)
    town = town or scenario_road(scenario.result, scenario.seed)
    render = render and bool(town.roads)
    atomic_write(out / "scenario.json", json.dumps(scenario.to_json(town), indent=1).encode())
    atomic_write(out / "script.py", scenario.script.encode())
    # 2. The clip: rendered frames, or grey ones where the map has no roads to draw.
    rig = CameraRig.default(width, height)
    images = render_scenario(scenario, town, rig) if render else None
    clip = to_clip(scenario, town, rig, images)
    # 3. Pictures, the dataset and the video.
    bev_plot(clip, len(clip.frames) // 2, out / "bev.png", radius=60.0)
    save_png(trajectory_raster(scenario.result), out / "trajectory_map.png")
    write_dataset([clip], out / "dataset", splits={"scenario": [clip.name]}, overwrite=True)
    if render:
        write_video(clip, out / "scenario.mp4")
    return out


def render_scenario(scenario: Scenario, town: Town, rig: CameraRig, frames: list[int] | None = None) -> list[dict]:
    """Six-camera JPEG frames of the scenario (or of its `frames`) with the procedural renderer (the builder's
    assets and lights)."""
    result = scenario.result
    assets = {a.info.asset_id: a for a in builtin_assets(scenario.seed)}
    chosen = {actor.actor_id: pick_asset(actor, assets) for actor in result.actors}
    meshes = {
        key: mesh_soup(assets[key].mesh, SEMANTIC[assets[key].info.detection_class]) for key in set(chosen.values())
    }
    if not meshes:
        meshes = {"car-00": mesh_soup(assets["car-00"].mesh, SEMANTIC["car"])}
    renderer = make_renderer(town, meshes, rig.cameras[0].width, rig.cameras[0].height)
    environment = Environment(result.time_of_day, result.weather, sun_azimuth=2.0)
    frame = scenario.road_frame()
    ego_poses = frame.poses(result.ego.array())
    actor_poses = [frame.poses(actor.trajectory.array()) for actor in result.actors]
    rendered = []
    try:
        for i in range(result.frames) if frames is None else frames:
            global_T_ego = Transform.from_pose2d(*ego_poses[i])
            objects = []
            for k, actor in enumerate(result.actors):
                height = assets[chosen[actor.actor_id]].info.size[2]
                pose = Transform.from_pose2d(*actor_poses[k][i], height / 2)
                objects.append(RenderObject(chosen[actor.actor_id], pose, k + 1, lights=True))
            views = render_frame(renderer, rig, global_T_ego, objects, environment)
            rendered.append({channel: encode_jpeg(images.rgb, 92) for channel, images in views.items()})
    finally:
        renderer.release()
    return rendered


def pick_asset(actor: Actor, assets: dict[str, Asset]) -> str:
    """The variant of the actor's class whose body colour is nearest the requested one (else the first)."""
    options = sorted(key for key, asset in assets.items() if asset.info.detection_class == actor.kind)
    if not options:
        raise DreamdriveError(f"no asset for class {actor.kind!r}.")
    if not actor.color:
        return options[0]
    wanted = np.array(COLOR_RGB[actor.color])

    def distance(key: str) -> float:
        colors = assets[key].mesh.colors
        paint = colors[colors[:, 3] == PAINT][:, :3]
        return float(np.linalg.norm(paint.mean(axis=0) / 255 - wanted)) if len(paint) else 9.0

    return min(options, key=distance)
