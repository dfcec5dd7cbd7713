"""Synthesis at scale: many prompts, or insertion jobs, as Ray tasks, merged into one nuScenes-format dataset.

An item is a prompt (`generate_from_prompt` with the run's `GenerateOptions`) or an
insertion job (a JSON object of `dreamdrive insert`'s options, `insert_request`).
Each runs in its own folder `OUT/items/KEY`, KEY a hash of what it is and the
options it runs with, and is finished when its record is there (`item_result`), so
a rerun skips it. Items run as Ray tasks on a local cluster the run starts (one
CPU a task, `workers` tasks at once) or on a cluster at `address`; a worker that
dies mid-item (killed, out of memory) costs a retry, not the item. An item whose
input is bad fails alone, with its error in the report; the others finish.

At the end the finished items' scenes are merged into `OUT/dataset`, with the
split `synthetic`, and `OUT/report.json` lists every item: done or failed, and
why. A rerun of a finished run changes nothing and starts no cluster.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from dreamdrive.conditions.insert import InsertRequest
from dreamdrive.core.errors import DreamdriveError
from dreamdrive.files import atomic_write, clear_scratch
from dreamdrive.nusc.reader import NuscDataset
from dreamdrive.nusc.writer import write_dataset
from dreamdrive.pipelines.edit import GenerativeOptions
from dreamdrive.pipelines.generate import RECORD, GenerateOptions, generate_from_prompt
from dreamdrive.pipelines.insert import insert_dataset

SPLIT = "synthetic"
NOT_TEXT = "\ufffd"  # the item of a line that is not UTF-8 text
REPORT = "report.json"
INSERT_RECORD = "insertion.json"
FAILED = "failed.json"
RETRIES = 3  # a dead worker's item runs again this many times
INSERT_KEYS = {"data", "scenes", "asset", "class", "at", "auto", "distance", "side", "mode", "seed", "steps", "cfg"}


@dataclass(frozen=True)
class Item:
    """One unit of work: kind "prompt" (text: the prompt) or "insert" (text: the job as a JSON object)."""

    kind: str
    text: str
    line: int  # where it was read, for the report

    def key(self, options: GenerateOptions) -> str:
        what = [self.kind, self.text, options.to_json() if self.kind == "prompt" else options.seed]
        return hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()[:16]


def read_lines(path: str | Path, what: str) -> list[tuple[int, str | None]]:
    """The non-blank lines of a UTF-8 text file that do not start with '#', with their line numbers; a line
    that is not UTF-8 is None (its item fails alone), a file that is not text at all is refused."""
    path = Path(path)
    if not path.is_file():
        raise DreamdriveError(f"{what} file {path} does not exist.")
    data = path.read_bytes()
    lines = []
    for k, raw in enumerate(data.splitlines()):
        try:
            line = raw.decode("utf-8").strip()
        except UnicodeDecodeError:
            lines.append((k + 1, None))
            continue
        if line and not line.startswith("#"):
            lines.append((k + 1, line))
    if b"\x00" in data or (lines and all(line is None for _, line in lines)):
        raise DreamdriveError(f"{what} file {path} is not UTF-8 text (a binary file, or another encoding such as "
                              "UTF-16); save it as UTF-8, one item a line.")  # fmt: skip
    if not lines:
        raise DreamdriveError(f"{what} file {path} holds no items; write one a line.")
    return lines


def read_items(prompts: str | Path | None = None, inserts: str | Path | None = None) -> list[Item]:
    """The items of a prompts file (one prompt a line) or an insertion file (one JSON object a line)."""
    if (prompts is None) == (inserts is None):
        raise DreamdriveError("give either --prompts FILE (one prompt a line) or --insert FILE (one job a line).")
    kind, path = ("prompt", prompts) if prompts is not None else ("insert", inserts)
    return [Item(kind, line if line is not None else NOT_TEXT, k) for k, line in read_lines(path, f"{kind}s")]


def insert_request(item: Item, seed: int) -> tuple[Path, list[str] | None, InsertRequest, GenerativeOptions | None]:
    """An insertion job's dataset, scenes, request and generative options, from its JSON object (keys as
    `dreamdrive insert`'s options: data, scenes, asset, class, at, auto, distance, side, mode, seed, steps, cfg)."""
    try:
        job = json.loads(item.text)
    except json.JSONDecodeError as error:
        raise DreamdriveError(f"line {item.line} is not a JSON object ({error.msg}); write one job a line, as "
                              '{"data": "DATAROOT", "class": "car", "auto": 1}.') from error  # fmt: skip
    if not isinstance(job, dict) or "data" not in job:
        raise DreamdriveError(f'line {item.line}: a job is a JSON object with at least "data" (the dataroot).')
    unknown = sorted(set(job) - INSERT_KEYS)
    if unknown:
        raise DreamdriveError(f"line {item.line}: unknown keys {unknown}; a job may have {sorted(INSERT_KEYS)}.")
    scenes = job.get("scenes")
    scenes = scenes.split(",") if isinstance(scenes, str) else scenes
    classes = job.get("class", ())
    request = InsertRequest(
        asset=job.get("asset"),
        classes=tuple(classes.split(",") if isinstance(classes, str) else classes),
        at=tuple(job["at"]) if job.get("at") is not None else None,
        auto=job.get("auto"),
        distance=job.get("distance", "any"),
        side=job.get("side", "any"),
        mode=job.get("mode", "naive"),
        seed=int(job.get("seed", seed)),
    )
    generative = None
    if request.mode == "generative":
        generative = GenerativeOptions(steps=int(job.get("steps", 30)), cfg=float(job.get("cfg", 2.0)))
    return Path(job["data"]), scenes, request, generative


def item_result(folder: Path) -> dict | None:
    """A finished item's result: {"scenes": [...]} or, for an item whose input was refused, {"error": ...};
    None while it is not finished."""
    if (folder / FAILED).is_file():
        return json.loads((folder / FAILED).read_text())
    path = folder / RECORD if (folder / RECORD).is_file() else folder / INSERT_RECORD
    if not path.is_file():
        return None
    record = json.loads(path.read_text())
    return {"scenes": [record["scene"]] if "scene" in record else record["scenes"]}


def run_item(item: Item, folder: str, options: GenerateOptions) -> dict:
    """Run one item into `folder`; {"scenes": [...]} when done, {"error": "..."} when its input is bad (or it
    fails otherwise: the error's type and message, so one item's failure does not stop the others)."""
    folder = Path(folder)
    clear_scratch(folder)  # a killed try's scratch files; one task runs an item at a time
    try:
        if item.text == NOT_TEXT:
            raise DreamdriveError(f"line {item.line} is not UTF-8 text; save the file as UTF-8.")
        if item.kind == "prompt":
            record = generate_from_prompt(item.text, folder, options, overwrite=True)
            return {"scenes": [record["scene"]]}
        data, scenes, request, generative = insert_request(item, options.seed)
        _, reports = insert_dataset(data, folder / "dataset", request, scenes, overwrite=True, generative=generative)
        record = {"job": json.loads(item.text), "scenes": [r.scene for r in reports]}
        atomic_write(folder / INSERT_RECORD, json.dumps(record, indent=1).encode())
        return {"scenes": record["scenes"]}
    except DreamdriveError as error:  # bad input: final, so a rerun does not try it again
        result = {"error": str(error)}
        atomic_write(folder / FAILED, json.dumps(result).encode())
        return result
    except Exception as error:  # noqa: BLE001 - reported per item; the run goes on
        return {"error": f"{type(error).__name__}: {error}"}


def start_ray(workers: int, address: str | None):
    """Ray, connected: to the cluster at `address`, else to a local one of `workers` CPUs started here."""
    try:
        import ray
    except ImportError as error:
        raise DreamdriveError("synth runs on Ray, which is not installed; pip install 'dreamdrive[scale]'.") from error
    if address and address != "auto":
        probe(address)
    try:
        if address:
            ray.init(address=address, log_to_driver=False)
        else:
            ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
    except Exception as error:  # noqa: BLE001 - Ray raises ConnectionError, RuntimeError, ValueError...
        where = f"the Ray cluster at {address}" if address else "a local Ray cluster"
        raise DreamdriveError(f"cannot reach {where}: {error}. Check the address (ray status) or drop --ray to "
                              "start a local one.") from error  # fmt: skip
    return ray


def probe(address: str, timeout: float = 5.0) -> None:
    """Refuse, at once, a cluster address (HOST:PORT or ray://HOST:PORT) that nothing listens on; Ray itself
    would keep trying for minutes."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise DreamdriveError(f"--ray {address!r} must be HOST:PORT, ray://HOST:PORT or auto.")
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as error:
        raise DreamdriveError(f"cannot reach the Ray cluster at {address}: {error.strerror or error}. Check the "
                              "address (`ray status` on the head node) or drop --ray to start a local "
                              "cluster.") from error  # fmt: skip


WATCHDOG = """
import os, signal, sys, time
from pathlib import Path

def state(pid):
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None

def tree(pid):
    found, queue = set(), [pid]
    while queue:
        for path in Path(f"/proc/{queue.pop()}/task").glob("*/children"):
            try:
                children = [int(c) for c in path.read_text().split()]
            except OSError:
                continue
            found.update(children)
            queue += children
    return found

parent, seen = int(sys.argv[1]), set()
while state(parent) not in (None, "Z"):
    seen |= tree(parent) - {os.getpid()}
    time.sleep(0.2)
for pid in seen:
    try:
        if Path(f"/proc/{pid}/cmdline").read_bytes().startswith((b"ray::", b"/")):
            os.kill(pid, signal.SIGKILL)
    except OSError:
        pass
"""


def guard_cluster() -> subprocess.Popen | None:
    """A watchdog for the local cluster this process started (Linux): should this process die without shutting
    Ray down (killed), it kills the cluster's processes, whose agents would otherwise linger for minutes."""
    if not Path("/proc/self/task").is_dir():
        return None
    return subprocess.Popen([sys.executable, "-c", WATCHDOG, str(os.getpid())], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip


def run_items(
    items: list[Item], folders: list[Path], options: GenerateOptions, workers: int, address: str | None,
    progress: Callable[[int, int], None] | None = None,
) -> list[dict]:  # fmt: skip
    """Run the items as Ray tasks; each one's result (`run_item`), in order."""
    ray = start_ray(workers, address)
    watchdog = guard_cluster() if not address else None
    try:
        task = ray.remote(num_cpus=1, max_retries=RETRIES)(run_item)
        futures = [task.remote(item, str(folder), options) for item, folder in zip(items, folders)]
        results: dict = {}
        pending = list(futures)
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            for future in ready:
                try:
                    results[future] = ray.get(future)
                except Exception as error:  # noqa: BLE001 - a worker that died on every retry
                    results[future] = {"error": f"the worker died on every one of {RETRIES + 1} tries: {error}"}
            if progress:
                progress(len(results), len(futures))
        return [results[future] for future in futures]
    finally:
        ray.shutdown()
        if watchdog is not None:
            watchdog.kill()
            watchdog.wait()


def synth(
    items: list[Item], out: str | Path, options: GenerateOptions = GenerateOptions(), workers: int = 2,
    address: str | None = None, progress: Callable[[int, int], None] | None = None,
) -> dict:  # fmt: skip
    """Run `items` (see the module's docstring) and merge the finished ones into `out`/dataset; returns the
    report written to `out`/report.json."""
    if workers < 1:
        raise DreamdriveError(f"--workers must be at least 1, got {workers}.")
    out = Path(out)
    clear_scratch(out)  # a killed run's partial report; the workers write in the items' folders only
    # 1. Each item's folder, named by its content; the same item twice is run once.
    keys = [item.key(options) for item in items]
    unique = dict(zip(keys, items))
    folder = {key: out / "items" / key for key in unique}
    # 2. The items not yet done, on Ray.
    done = {key: item_result(folder[key]) for key in unique}
    todo = [key for key, result in done.items() if result is None]
    if todo:
        results = run_items([unique[k] for k in todo], [folder[k] for k in todo], options, workers, address, progress)
        done.update(zip(todo, results))
    # 3. The report, and the finished items merged.
    rows = [{"line": item.line, "kind": item.kind, "item": item.text, "key": key, **done[key]}
            for key, item in zip(keys, items)]  # fmt: skip
    finished = [key for key in unique if "scenes" in done[key]]
    report = {"items": rows, "done": sum("scenes" in r for r in rows), "failed": sum("error" in r for r in rows)}
    if finished:
        report["dataset"] = str(merge([folder[key] for key in finished], out / "dataset"))
    text = json.dumps(report, indent=1).encode()
    if not (out / REPORT).is_file() or (out / REPORT).read_bytes() != text:  # a rerun that did nothing writes nothing
        atomic_write(out / REPORT, text)
    return report


def merge(folders: list[Path], dataroot: Path) -> Path:
    """One nuScenes-format dataset of every scene the finished items in `folders` wrote, split `synthetic`; an
    insertion item's scenes are named after the item (`SCENE-KEY`), so that two edits of a scene can coexist."""
    clips = []
    for folder in folders:
        dataset = NuscDataset(folder / "dataset")
        for scene in item_result(folder)["scenes"]:
            clip = dataset.clip(scene)
            if (folder / INSERT_RECORD).is_file():
                clip = replace(clip, name=f"{scene}-{folder.name[:8]}")
            clips.append(clip)
    names = [clip.name for clip in clips]
    return write_dataset(clips, dataroot, splits={SPLIT: names}, overwrite=True)
