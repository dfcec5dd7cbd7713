"""Any nuScenes-format dataroot (real nuScenes included) to Clips, through the nuscenes-devkit.

Frames follow CAM_FRONT at 12 Hz; the other cameras are matched to each frame
by nearest timestamp and keep their own capture time and ego pose. Boxes come
from our sidecar (exact, every frame) when the dataset has one, and otherwise
are interpolated between key frames exactly as the devkit's
`NuScenes.get_boxes` does (linear centre, slerp rotation).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
from functools import cached_property
from pathlib import Path

import numpy as np

from dreamdrive.core.boxes import Box3D
from dreamdrive.core.camera import CAMERA_NAMES, CameraRig
from dreamdrive.core.categories import detection_class
from dreamdrive.core.clip import Agent, Clip, Frame
from dreamdrive.core.errors import DreamdriveError
from dreamdrive.core.geometry import Transform, normalize_quaternion, quat_to_yaw, slerp
from dreamdrive.core.hdmap import HDMap
from dreamdrive.nusc.check import check_files, check_shapes, check_tables
from dreamdrive.nusc.dense import read_instances
from dreamdrive.nusc.mapexp import hdmap_from_expansion
from dreamdrive.nusc.schema import LIDAR_CHANNEL, PREDEFINED_SPLITS, SIDECAR_DIR, SIDECAR_INDEX, TABLES

REFERENCE_CHANNEL = "CAM_FRONT"


def find_version(dataroot: Path) -> str:
    """The single version folder (holding scene.json) under `dataroot`."""
    if not dataroot.is_dir():
        raise DreamdriveError(f"dataroot {dataroot} is not a folder; pass the folder that holds the version folder.")
    versions = sorted(p.name for p in dataroot.iterdir() if p.is_dir() and (p / "scene.json").is_file())
    if not versions:
        raise DreamdriveError(
            f"no nuScenes version folder (one holding scene.json) in {dataroot}; pass the dataset's root folder."
        )
    if len(versions) > 1:
        raise DreamdriveError(f"{dataroot} holds several versions {versions}; name one with --version.")
    return versions[0]


def load_devkit(dataroot: str | Path, version: str | None = None):
    """The devkit's `NuScenes` over a dataroot (its one version folder unless `version` names one), with its
    failures said as what is wrong with which table."""
    from nuscenes.nuscenes import NuScenes

    dataroot = Path(dataroot)
    version = version or find_version(dataroot)
    folder = dataroot / version
    missing = [f"{table}.json" for table in TABLES if not (folder / f"{table}.json").is_file()]
    if missing:
        raise DreamdriveError(
            f"{folder} is missing the nuScenes table(s) {', '.join(missing)}; the dataset is incomplete "
            "(re-run the command that wrote it, or restore the files)."
        )
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            return NuScenes(version=version, dataroot=str(dataroot), verbose=False)
    except json.JSONDecodeError as error:
        for table in TABLES:
            try:
                json.loads((folder / f"{table}.json").read_text())
            except json.JSONDecodeError as inner:
                raise DreamdriveError(
                    f"{folder / f'{table}.json'} is not valid JSON ({inner}); restore the file."
                ) from error
        raise DreamdriveError(f"a table in {folder} is not valid JSON: {error}") from error
    except Exception as error:  # the devkit raises KeyError, TypeError... and bare Exception on bad tables
        tables = {table: json.loads((folder / f"{table}.json").read_text()) for table in TABLES}
        found = check_shapes(tables) or check_tables(_Tables(tables))
        detail = found[0] if found else repr(error)
        raise DreamdriveError(
            f"the tables in {folder} are inconsistent ({detail}); they do not link up as nuScenes requires. "
            f"Run `dreamdrive info {dataroot} --check` for every problem."
        ) from error


class _Tables:
    """Parsed tables with the devkit's attribute access (`tables.sample`), for the checks."""

    def __init__(self, tables: dict[str, list]):
        self.__dict__.update(tables)


class NuscDataset:
    """A nuScenes-format dataset on disk, read through the devkit.

    Args:
        dataroot: the folder holding the version folder, `samples/`, `sweeps/` and `maps/`.
        version: the version folder name; found automatically when there is only one.
    """

    def __init__(self, dataroot: str | Path, version: str | None = None):
        self.dataroot = Path(dataroot)
        self.version = version or find_version(self.dataroot)
        self.nusc = load_devkit(self.dataroot, self.version)
        shapes = check_shapes({table: getattr(self.nusc, table) for table in TABLES})
        if shapes:
            raise DreamdriveError(f"{self.dataroot / self.version} is not sound: {shapes[0].rstrip('.')}; run "
                                  f"`dreamdrive info {self.dataroot} --check` to list every problem.")  # fmt: skip
        self.sidecar = self._load_sidecar()
        self._sound = False  # the tables' links and values checked (once, before the first clip is read)
        self._maps: dict[str, HDMap | None] = {}

    def _load_sidecar(self) -> dict | None:
        path = self.dataroot / SIDECAR_DIR / SIDECAR_INDEX
        if not path.is_file():
            return None
        try:
            index = json.loads(path.read_text())
        except json.JSONDecodeError as error:
            raise DreamdriveError(f"{path} is not valid JSON ({error}); delete it to read the tables alone.") from error
        return index if index.get("version") == self.version else None

    # -- summary ---------------------------------------------------------------------------

    @property
    def scene_names(self) -> list[str]:
        return [scene["name"] for scene in self.nusc.scene]

    def scene_record(self, name: str) -> dict:
        for scene in self.nusc.scene:
            if scene["name"] == name:
                return scene
        raise DreamdriveError(f"no scene named {name!r} in {self.dataroot}; its scenes are {self.scene_names}.")

    @cached_property
    def splits(self) -> dict[str, list[str]]:
        """Custom splits from splits.json, plus the official splits that name scenes of this dataset."""
        from nuscenes.utils.splits import create_splits_scenes

        names = set(self.scene_names)
        out = {}
        for split, scenes in create_splits_scenes().items():
            if split in PREDEFINED_SPLITS and names & set(scenes):
                out[split] = [s for s in scenes if s in names]
        path = self.dataroot / self.version / "splits.json"
        if path.is_file():
            try:
                custom = json.loads(path.read_text())
            except json.JSONDecodeError as error:
                raise DreamdriveError(f"{path} is not valid JSON ({error}).") from error
            out.update({split: list(scenes) for split, scenes in custom.items()})
        return out

    def summary(self) -> dict:
        """Version, scenes, sample and sweep counts, cameras, class counts and splits."""
        nusc = self.nusc
        camera_data = [sd for sd in nusc.sample_data if sd["sensor_modality"] == "camera"]
        cameras = {}
        for sd in camera_data:
            cameras.setdefault(sd["channel"], (sd["width"], sd["height"]))
        classes: dict[str, int] = {}
        for ann in nusc.sample_annotation:
            name = detection_class(ann["category_name"]) or f"({ann['category_name']})"
            classes[name] = classes.get(name, 0) + 1
        return {
            "dataroot": str(self.dataroot),
            "version": self.version,
            "scenes": [
                {"name": s["name"], "samples": s["nbr_samples"], "description": s["description"]} for s in nusc.scene
            ],
            "samples": len(nusc.sample),
            "sweeps": sum(1 for sd in camera_data if not sd["is_key_frame"]),
            "camera_frames": len(camera_data),
            "cameras": {c: cameras[c] for c in CAMERA_NAMES if c in cameras},
            "annotations": len(nusc.sample_annotation),
            "classes": dict(sorted(classes.items(), key=lambda kv: -kv[1])),
            "splits": {name: len(scenes) for name, scenes in self.splits.items()},
            "sidecar": self.sidecar is not None,
        }

    def problems(self, files: bool = False) -> list[str]:
        """Every problem in the tables (and with `files`, the files sample_data names); see `nusc.check`."""
        found = check_tables(self.nusc)
        return found + check_files(self.nusc, self.dataroot) if files else found

    def check(self) -> None:
        """Raise DreamdriveError when the tables have a problem, naming the first and how many there are."""
        if self._sound:
            return
        found = self.problems()
        if found:
            more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
            raise DreamdriveError(f"{self.dataroot / self.version} is not sound: {found[0].rstrip('.')}{more}; run "
                                  f"`dreamdrive info {self.dataroot} --check` to list every problem.")  # fmt: skip
        self._sound = True

    # -- clips -----------------------------------------------------------------------------

    def _chain(self, first_token: str) -> list[dict]:
        """All sample_data of one sensor in a scene, from the first to the last, in time order."""
        nusc = self.nusc
        record = nusc.get("sample_data", first_token)
        scene = nusc.get("sample", record["sample_token"])["scene_token"]

        def same_scene(token: str) -> bool:
            return (
                bool(token)
                and nusc.get("sample", nusc.get("sample_data", token)["sample_token"])["scene_token"] == scene
            )

        while same_scene(record["prev"]):
            record = nusc.get("sample_data", record["prev"])
        chain = [record]
        while same_scene(record["next"]):
            record = nusc.get("sample_data", record["next"])
            chain.append(record)
        return chain

    def _pose(self, table: str, record: dict) -> Transform:
        try:
            return Transform.from_quat(record["rotation"], record["translation"])
        except DreamdriveError as error:
            raise DreamdriveError(f"{table} {record['token']} in {self.dataroot / self.version}: {error}") from error

    def _image_path(self, sd: dict, check: bool) -> Path:
        path = self.dataroot / sd["filename"]
        if check and not path.is_file():
            raise DreamdriveError(
                f"sample_data {sd['token']} points at {path}, which does not exist; restore the image or "
                "re-write the dataset."
            )
        return path

    def clip(self, scene_name: str, boxes: str = "auto", check_files: bool = True) -> Clip:
        """The scene `scene_name` as a Clip.

        Args:
            boxes: "auto" (sidecar when present, else interpolation), "sidecar" or "interpolate".
            check_files: raise if an image the tables name is missing.
        """
        if boxes not in ("auto", "sidecar", "interpolate"):
            raise DreamdriveError(f"boxes must be 'auto', 'sidecar' or 'interpolate', got {boxes!r}.")
        nusc = self.nusc
        scene = self.scene_record(scene_name)
        self.check()
        first_sample = nusc.get("sample", scene["first_sample_token"])
        channels = [c for c in CAMERA_NAMES if c in first_sample["data"]]
        if REFERENCE_CHANNEL not in channels:
            raise DreamdriveError(f"scene {scene_name} has no {REFERENCE_CHANNEL} images; dreamdrive needs it.")
        chains = {c: self._chain(first_sample["data"][c]) for c in channels}

        # 1. The rig, from the calibrations of the first frame.
        calibs = {c: nusc.get("calibrated_sensor", chains[c][0]["calibrated_sensor_token"]) for c in channels}
        try:
            rig = CameraRig.from_calibrated_sensors(
                calibs, {c: (chains[c][0]["width"], chains[c][0]["height"]) for c in channels}
            )
        except DreamdriveError as error:
            raise DreamdriveError(f"calibrated_sensor of scene {scene_name}: {error}") from error

        # 2. Frames along CAM_FRONT; other cameras matched by nearest time.
        frames = []
        stamps = {c: np.array([sd["timestamp"] for sd in chains[c]]) for c in channels}
        for sd in chains[REFERENCE_CHANNEL]:
            timestamp = sd["timestamp"]
            pose = self._pose("ego_pose", nusc.get("ego_pose", sd["ego_pose_token"]))
            images, camera_poses = {}, {}
            for channel in channels:
                other = chains[channel][int(np.argmin(np.abs(stamps[channel] - timestamp)))]
                images[channel] = str(self._image_path(other, check_files))
                if channel != REFERENCE_CHANNEL:
                    other_pose = self._pose("ego_pose", nusc.get("ego_pose", other["ego_pose_token"]))
                    if other["timestamp"] != timestamp or not np.allclose(other_pose.matrix, pose.matrix, atol=1e-9):
                        camera_poses[channel] = (other["timestamp"], other_pose)
            lidar = lidar_pose = None
            if sd["is_key_frame"]:
                sample_data = nusc.get("sample", sd["sample_token"])["data"]
                lidar_sd = nusc.get("sample_data", sample_data[LIDAR_CHANNEL]) if LIDAR_CHANNEL in sample_data else None
                if lidar_sd is not None and (self.dataroot / lidar_sd["filename"]).is_file():
                    lidar = str(self.dataroot / lidar_sd["filename"])
                    lidar_pose = self._pose("ego_pose", nusc.get("ego_pose", lidar_sd["ego_pose_token"])) @ self._pose(
                        "calibrated_sensor", nusc.get("calibrated_sensor", lidar_sd["calibrated_sensor_token"])
                    )
            frames.append(Frame(timestamp, pose, images, bool(sd["is_key_frame"]), lidar, camera_poses, lidar_pose))
        dense_instances = self._attach_dense(scene_name, frames, channels)

        # 3. Boxes: exact from the sidecar, or interpolated as the devkit does.
        sidecar_path = self._sidecar_boxes_path(scene_name)
        if boxes == "sidecar" and sidecar_path is None:
            raise DreamdriveError(f"scene {scene_name} has no per-frame box sidecar; read with boxes='interpolate'.")
        if sidecar_path is not None and boxes != "interpolate":
            agents = self._sidecar_agents(sidecar_path, frames)
            self._check_sidecar(scene_name, chains[REFERENCE_CHANNEL], agents, sidecar_path)
        else:
            agents = self._interpolated_agents(chains[REFERENCE_CHANNEL])

        log = nusc.get("log", scene["log_token"])
        return Clip(
            name=scene_name,
            frames=frames,
            agents=agents,
            rig=rig,
            location=log["location"],
            hdmap=self.hdmap(log["location"]),
            description=scene["description"],
            log_name=log["logfile"],
            dense_instances=dense_instances,
        )

    def _attach_dense(self, scene_name: str, frames: list[Frame], channels: list[str]) -> dict[int, str]:
        """Point every frame at its dense ground truth, where the sidecar index lists it for the scene (the
        files are read when used); returns the scene's instance table."""
        entry = (self.sidecar or {}).get("scenes", {}).get(scene_name, {})
        if "dense" not in entry:
            return {}
        folder = self.dataroot / SIDECAR_DIR / entry["dense"]
        for frame in frames:
            for channel in channels:
                path = folder / channel / f"{frame.timestamp}.npy.zst"
                if path.is_file():
                    frame.dense[channel] = str(path)
        return read_instances(folder)

    def _sidecar_boxes_path(self, scene_name: str) -> Path | None:
        if not self.sidecar or scene_name not in self.sidecar.get("scenes", {}):
            return None
        path = self.dataroot / SIDECAR_DIR / self.sidecar["scenes"][scene_name]["boxes"]
        if not path.is_file():
            raise DreamdriveError(f"the sidecar index names {path}, which does not exist; re-write the dataset.")
        return path

    def _sidecar_agents(self, path: Path, frames: list[Frame]) -> list[Agent]:
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as error:
            raise DreamdriveError(f"{path} is not valid JSON ({error}).") from error
        by_time = {entry["timestamp"]: entry["boxes"] for entry in data["frames"]}
        agents: dict[str, Agent] = {}
        for i, frame in enumerate(frames):
            for item in by_time.get(frame.timestamp, []):
                box = _box_from_sidecar(item, path)
                agent = agents.setdefault(box.instance_id, Agent(box.instance_id, box.category, [None] * len(frames)))
                agent.boxes[i] = box
        return list(agents.values())

    def _check_sidecar(self, scene_name: str, reference_chain: list[dict], agents: list[Agent], path: Path) -> None:
        """The sidecar's key-frame boxes must be the tables' annotations (and those must be valid)."""
        for i, sd in enumerate(reference_chain):
            if not sd["is_key_frame"]:
                continue
            anns = [self.nusc.get("sample_annotation", t) for t in self.nusc.get("sample", sd["sample_token"])["anns"]]
            table = sorted(tuple(np.round(self._annotation_box(a, velocity=np.zeros(2)).center, 6)) for a in anns)
            side = sorted(tuple(np.round(a.boxes[i].center, 6)) for a in agents if a.boxes[i] is not None)
            if table != side:
                raise DreamdriveError(
                    f"{path} disagrees with the sample_annotation table on key frame {i} of scene {scene_name} "
                    "(the tables were edited after writing); read with boxes='interpolate' or re-write the dataset."
                )

    def _annotation_box(self, ann: dict, velocity: np.ndarray | None = None) -> Box3D:
        where = f"sample_annotation {ann['token']} in {self.dataroot / self.version}"
        try:
            rotation = normalize_quaternion(ann["rotation"], f"rotation of {where}")
            if velocity is None:
                velocity = self.nusc.box_velocity(ann["token"])[:2]
            velocity = np.nan_to_num(np.asarray(velocity, dtype=np.float64))  # the devkit gives NaN for lone boxes
            attributes = tuple(self.nusc.get("attribute", t)["name"] for t in ann["attribute_tokens"])
            return Box3D(
                center=np.asarray(ann["translation"], dtype=np.float64),
                size=np.asarray(ann["size"], dtype=np.float64),
                yaw=quat_to_yaw(rotation),
                category=ann["category_name"],
                instance_id=ann["instance_token"],
                velocity=velocity,
                attributes=attributes[:1],
                num_lidar_pts=ann["num_lidar_pts"],
                num_radar_pts=ann["num_radar_pts"],
                visibility=ann["visibility_token"] or None,
            )
        except DreamdriveError as error:
            raise DreamdriveError(f"{where}: {error}") from error

    def _interpolated_agents(self, reference_chain: list[dict]) -> list[Agent]:
        """Boxes on every frame, as `NuScenes.get_boxes` would give them for each CAM_FRONT image."""
        nusc = self.nusc
        agents: dict[str, Agent] = {}
        cache: dict[str, Box3D] = {}

        def box_of(ann: dict) -> Box3D:
            if ann["token"] not in cache:
                cache[ann["token"]] = self._annotation_box(ann)
            return cache[ann["token"]]

        n = len(reference_chain)
        for i, sd in enumerate(reference_chain):
            current = nusc.get("sample", sd["sample_token"])
            current_anns = [nusc.get("sample_annotation", t) for t in current["anns"]]
            if sd["is_key_frame"] or not current["prev"]:
                boxes = [box_of(ann) for ann in current_anns]
            else:
                previous = nusc.get("sample", current["prev"])
                previous_by_instance = {
                    nusc.get("sample_annotation", t)["instance_token"]: nusc.get("sample_annotation", t)
                    for t in previous["anns"]
                }
                t0, t1 = previous["timestamp"], current["timestamp"]
                alpha = (max(t0, min(t1, sd["timestamp"])) - t0) / (t1 - t0)
                boxes = []
                for ann in current_anns:
                    before = previous_by_instance.get(ann["instance_token"])
                    boxes.append(box_of(ann) if before is None else _interpolate(box_of(before), box_of(ann), alpha))
            for box in boxes:
                agent = agents.setdefault(box.instance_id, Agent(box.instance_id, box.category, [None] * n))
                agent.boxes[i] = box
        return list(agents.values())

    # -- maps ------------------------------------------------------------------------------

    def hdmap(self, location: str) -> HDMap | None:
        """The vector map of `location`: our sidecar, else the devkit's map expansion, else None."""
        if location not in self._maps:
            self._maps[location] = self._load_map(location)
        return self._maps[location]

    def _load_map(self, location: str) -> HDMap | None:
        if self.sidecar and location in self.sidecar.get("maps", {}):
            path = self.dataroot / SIDECAR_DIR / self.sidecar["maps"][location]
            try:
                return HDMap.from_json(json.loads(path.read_text()))
            except (OSError, json.JSONDecodeError) as error:
                raise DreamdriveError(f"cannot read the vector map {path}: {error}") from error
        expansion = self.dataroot / "maps" / "expansion" / f"{location}.json"
        if expansion.is_file():
            return hdmap_from_expansion(self.dataroot, location)
        return None


def _interpolate(before: Box3D, after: Box3D, alpha: float) -> Box3D:
    """The box a fraction `alpha` of the way from `before` to `after` (linear centre, slerp yaw)."""
    center = before.center + alpha * (after.center - before.center)
    yaw = quat_to_yaw(slerp(before.quaternion, after.quaternion, alpha))
    velocity = before.velocity + alpha * (after.velocity - before.velocity)
    return Box3D(
        center=center,
        size=after.size,
        yaw=yaw,
        category=after.category,
        instance_id=after.instance_id,
        velocity=velocity,
        attributes=after.attributes,
        num_lidar_pts=None,
        num_radar_pts=0,
        visibility=after.visibility,
    )


def _box_from_sidecar(item: dict, path: Path) -> Box3D:
    try:
        return Box3D(
            center=np.asarray(item["translation"]),
            size=np.asarray(item["size"]),
            yaw=float(item["yaw"]),
            category=item["category"],
            instance_id=item["instance_id"],
            velocity=np.asarray(item["velocity"]),
            attributes=tuple(item["attributes"]),
            num_lidar_pts=item["num_lidar_pts"],
            num_radar_pts=item["num_radar_pts"],
            visibility=item["visibility"],
        )
    except (KeyError, TypeError) as error:
        raise DreamdriveError(f"{path}: malformed box entry ({error!r}).") from error
    except DreamdriveError as error:
        raise DreamdriveError(f"{path}: {error}") from error


def dataset_fingerprint(dataroot: Path, version: str) -> str:
    """A finished dataset's own fingerprint, else a digest of its tables' sizes and times."""
    index = dataroot / SIDECAR_DIR / "index.json"
    if index.is_file():
        value = json.loads(index.read_text()).get("fingerprint")
        if value:
            return value
    stats = [(p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in sorted((dataroot / version).glob("*.json"))]
    return hashlib.sha256(json.dumps(stats).encode()).hexdigest()
