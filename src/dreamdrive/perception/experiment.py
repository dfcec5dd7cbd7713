"""The iso-epoch experiment (Dream4Drive): real-only against real + synthetic, at the same number of epochs.

For every schedule k in `epochs` (k x `epoch_unit` epochs), every seed, and every
mix (the real-only baseline and real + each synthetic dataset), a detector is
trained in its own resumable run folder and evaluated on the real dataset's
validation split, and on any held-out sets given (DriveDreamer-2's corner-case
split, say); with `tracking`, the tracker runs on the detections and AMOTA is
scored too. An epoch is one pass over the mix's samples: the real training
split once, plus the synthetic dataset's training split once (or its `ratio`),
so a mix has the same number of epochs as the baseline and
ceil((real + synthetic) / batch) steps in each (`train.py`). `results.json`
lists every run with its steps and scores; `results.md` has one table a
evaluation set in Dream4Drive's form (mean ± standard deviation over seeds, and
each mix's paired t-test against the baseline over seeds, on NDS, mAP and
AMOTA; with `compare`, also paired tests between two mixes, Dream4Drive's
generative against naive, say); `results.png` plots them against the schedule. A finished run is never
retrained, a finished evaluation never redone: killed and rerun, the experiment
picks up where it stopped, and a set added later is scored on the runs there.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from concurrent.futures import as_completed
from dataclasses import replace
from pathlib import Path

import numpy as np

from dreamdrive.core.errors import DreamdriveError
from dreamdrive.files import atomic_write, clear_scratch
from dreamdrive.metrics.detection import evaluate_detection, evaluate_tracking
from dreamdrive.nusc.reader import NuscDataset, load_devkit
from dreamdrive.perception.data import DetectorConfig, Mix
from dreamdrive.perception.predict import predict, split_refs, write_results
from dreamdrive.perception.track import track_results
from dreamdrive.perception.train import TrainConfig, epoch_size, load_model, run_steps, train
from dreamdrive.processes import process_pool, threads_per_worker
from dreamdrive.train.checkpoint import CONFIG_NAME, MODEL_DIR

COLUMNS = ("mAP", "mATE", "mAOE", "mAVE", "NDS")
TESTED = ("NDS", "mAP", "AMOTA")  # the figures each mix is tested on against the baseline


def default_split(dataroot: str | Path, role: str) -> str | None:
    """A dataset's training ('train') or validation ('val') split: `role`, `proc_<role>`, or any `*_<role>`."""

    splits = NuscDataset(dataroot).splits
    for name in (role, f"proc_{role}"):
        if name in splits:
            return name
    ending = sorted(s for s in splits if s.endswith(f"_{role}"))
    if ending:
        return ending[0]
    if role == "train":
        return None  # every scene
    raise DreamdriveError(f"{dataroot} has no validation split (one named val, proc_val or *_val); name one.")


def run_name(mix: str, schedule: int, seed: int) -> str:
    return f"{mix}-{schedule}x-seed{seed}"


def iso_epoch(
    real: str | Path,
    synthetic: dict[str, str | Path],
    out: str | Path,
    epochs: list[int] = (1, 2, 3),
    seeds: int = 3,
    epoch_unit: int = 1,
    train_config: TrainConfig = TrainConfig(),
    detector: DetectorConfig = DetectorConfig(),
    val_split: str | None = None,
    progress: Callable[[str], None] | None = None,
    held_out: dict[str, tuple[str | Path, str | None]] | None = None,
    tracking: bool = False,
    workers: int = 1,
    compare: list[tuple[str, str]] = (),
) -> dict:
    """Train and evaluate every (mix, schedule, seed); write results.json, results.md and results.png.

    Every run is scored on the real dataset's validation split ("val") and on each `held_out` set, NAME ->
    (dataroot, split or None for its validation split), e.g. a held-out split of corner cases; with `tracking`,
    also the tracker's AMOTA on each (`perception.track`, the devkit's tracking metrics).

    With `workers` > 1, the runs train and are scored in that many processes at once, each with its share of
    this process's threads (`threads_per_worker`). A run's weights depend on its thread count, not on the
    process that ran it: 2 workers of a 2-thread process equal 1 worker of a 1-thread process.

    Each pair (A, B) in `compare` adds paired tests of mix A against mix B (`compare_mixes`) to the results."""

    out = Path(out)
    if "real" in synthetic:
        raise DreamdriveError("'real' names the baseline; give the synthetic datasets other names.")
    if workers < 1:
        raise DreamdriveError(f"workers must be at least 1, got {workers}.")
    if seeds < 1 or not epochs:
        raise DreamdriveError("give at least one seed and one schedule.")
    if "val" in (held_out or {}):
        raise DreamdriveError("'val' names the real dataset's validation split; give the held-out sets other names.")
    sets = {"val": (Path(real), val_split or default_split(real, "val"))}
    for name, (root, split) in (held_out or {}).items():
        sets[name] = (Path(root), split or default_split(root, "val"))
    mixes = {"real": Mix([(str(real), default_split(real, "train"))])}
    for name, root in synthetic.items():
        mixes[name] = Mix([(str(real), default_split(real, "train")), (str(root), default_split(root, "train"))])
    for pair in compare:
        unknown = [name for name in pair if name not in mixes]
        if unknown or pair[0] == pair[1]:
            raise DreamdriveError(
                f"cannot compare {pair[0]!r} with {pair[1]!r}: give two different mixes of {', '.join(mixes)}."
            )
    scorer = Scorer(sets, tracking)
    clear_scratch(out)  # a killed run's partial results files; one experiment process writes here
    plan = []  # (name, schedule, seed, mix name, mix, folder, training config), in the order the table lists them
    for schedule in epochs:
        for seed in range(seeds):
            for mix_name, mix in mixes.items():
                name = run_name(mix_name, schedule, seed)
                config = replace(train_config, epochs=schedule * epoch_unit, seed=seed)
                plan.append((name, schedule, seed, mix_name, mix, out / "runs" / name, config))
    pending = [entry for entry in plan if not scorer.done(entry[5])]
    if workers > 1 and len(pending) > 1:
        threads = threads_per_worker(workers)
        with process_pool(min(workers, len(pending))) as pool:
            futures = {pool.submit(run_in_worker, mix, folder, config, detector, sets, tracking, threads): name
                       for name, _, _, _, mix, folder, config in pending}  # fmt: skip
            for future in as_completed(futures):
                future.result()
                if progress is not None:
                    progress(f"{futures[future]} done")
    else:
        for name, _, _, _, mix, folder, config in pending:
            if progress is not None:
                progress(name)
            if not (folder / MODEL_DIR / CONFIG_NAME).is_file():  # train()'s own mark of a finished run
                train(mix, folder, config, detector)
            scorer.scores(folder)
    rows = []
    for _, schedule, seed, mix_name, _, folder, _ in plan:
        run = json.loads((folder / "run.json").read_text())
        rows.append(
            {
                "mix": mix_name,
                "schedule": schedule,
                "epochs": schedule * epoch_unit,
                "seed": seed,
                "samples_per_epoch": epoch_size(run["samples"], run["ratios"]),
                "steps": run_steps(run),
                **scorer.scores(folder),
            }
        )
    names = list(mixes)
    summary = {key: summarise(rows, names, key, scorer.columns) for key in sets}
    result = {"real": str(real), "synthetic": {k: str(v) for k, v in synthetic.items()},
              "sets": {k: [str(root), split] for k, (root, split) in sets.items()}, "val_split": sets["val"][1],
              "epoch_unit": epoch_unit, "runs": rows, "summary": summary}  # fmt: skip
    if compare:
        result["comparisons"] = {key: compare_mixes(rows, compare, key, scorer.columns) for key in sets}
    text = json.dumps(result, indent=1).encode()
    done = [out / name for name in ("results.json", "results.md", "results.png")]
    if all(path.is_file() for path in done) and done[0].read_bytes() == text:
        return result  # a finished experiment, rerun, rewrites nothing
    table = markdown(summary, names, epoch_unit, sets, scorer.columns, result.get("comparisons"))
    atomic_write(out / "results.md", table.encode())
    plot(summary, names, out / "results.png", scorer.columns)
    atomic_write(out / "results.json", text)  # last: its presence marks the outputs complete
    return result


def run_in_worker(mix, folder, config, detector, sets, tracking, threads) -> None:
    """One run in a worker process: trained unless finished, then scored on every set."""
    import torch

    torch.set_num_threads(threads)
    if not (folder / MODEL_DIR / CONFIG_NAME).is_file():
        train(mix, folder, config, detector)
    Scorer(sets, tracking).scores(folder)


class Scorer:
    """A run's scores on each evaluation set, each written once into the run folder (`eval/` for "val",
    `eval-NAME/` for a held-out set; the tracker's in their `tracking/`), so a killed experiment resumes."""

    def __init__(self, sets: dict[str, tuple[Path, str]], tracking: bool):
        self.sets = sets
        self.tracking = tracking
        self.columns = (*COLUMNS, "AMOTA") if tracking else COLUMNS
        self._refs: dict[str, list] = {}
        self._devkits: dict[str, object] = {}
        self._camera_only: dict[str, bool] = {}

    def devkit(self, name: str):
        """The set's devkit tables, loaded once for every run's evaluations."""
        if name not in self._devkits:
            self._devkits[name] = load_devkit(self.sets[name][0])
        return self._devkits[name]

    def camera_only(self, name: str) -> bool:
        """Whether the set is camera-only (generated or scenario clips: no box has a LiDAR point counted), so that
        its boxes are scored rather than dropped by the devkit's filter on LiDAR points."""
        if name not in self._camera_only:
            self._camera_only[name] = not any(box["num_lidar_pts"] > 0 for box in self.devkit(name).sample_annotation)
        return self._camera_only[name]

    def folder(self, run: Path, name: str) -> Path:
        return run / ("eval" if name == "val" else f"eval-{name}")

    def reports(self, run: Path, name: str) -> list[Path]:
        folder = self.folder(run, name)
        return [folder / "report.json", *([folder / "tracking" / "report.json"] if self.tracking else [])]

    def done(self, run: Path) -> bool:
        return all(path.is_file() for name in self.sets for path in self.reports(run, name))

    def scores(self, run: Path) -> dict:
        """{"official": ..., "present": ... (the devkit's figures on "val"), "scores": {set: {column: value}}},
        evaluating what is not yet evaluated."""
        scores = {}
        model = None
        for name, (root, split) in self.sets.items():
            folder = self.folder(run, name)
            if not (folder / "report.json").is_file():
                clear_scratch(folder)  # what a killed evaluation left; this process is the only writer
                if name not in self._refs:
                    self._refs[name] = split_refs(root, split)
                model = model or load_model(run)
                results = write_results(predict(model, self._refs[name]), folder / "results_nusc.json")
                evaluate_detection(root, split, results, folder, plots=False, nusc=self.devkit(name),
                                   camera_only=self.camera_only(name))  # fmt: skip
            report = json.loads((folder / "report.json").read_text())
            scores[name] = {column: report["official"][column] for column in COLUMNS}
            if self.tracking:
                tracked = folder / "tracking"
                if not (tracked / "report.json").is_file():
                    clear_scratch(tracked)
                    detections = json.loads((folder / "results_nusc.json").read_text())["results"]
                    tracks = track_results(detections, self.devkit(name))
                    results = write_results(tracks, tracked / "results_tracking.json")
                    evaluate_tracking(root, split, results, tracked, camera_only=self.camera_only(name))
                scores[name]["AMOTA"] = json.loads((tracked / "report.json").read_text())["official"]["amota"]
            if name == "val":
                official, present = report["official"], report["present"]
        return {"official": official, "present": present, "scores": scores}


def summarise(rows: list[dict], mixes: list[str], key: str = "val", columns: tuple[str, ...] = COLUMNS) -> dict:
    """Per schedule and mix, on evaluation set `key`: mean and standard deviation over seeds, and the paired
    t-test against the baseline (on NDS, mAP and AMOTA when scored)."""
    summary: dict = {}
    for schedule in sorted({r["schedule"] for r in rows}):
        summary[str(schedule)] = {}
        base = {r["seed"]: r["scores"][key] for r in rows if r["schedule"] == schedule and r["mix"] == "real"}
        for mix in mixes:
            runs = sorted((r for r in rows if r["schedule"] == schedule and r["mix"] == mix), key=lambda r: r["seed"])
            entry = {"seeds": len(runs), "steps": [r["steps"] for r in runs]}
            for column in columns:
                values = np.array([r["scores"][key][column] for r in runs])
                entry[column] = {
                    "mean": float(values.mean()),
                    "std": float(values.std(ddof=1)) if len(values) > 1 else 0.0,
                }
            if mix != "real":
                for column in [c for c in TESTED if c in columns]:
                    pairs = [(r["scores"][key][column], base[r["seed"]][column]) for r in runs if r["seed"] in base]
                    entry[f"{column}_vs_real"] = paired_test(pairs)
            summary[str(schedule)][mix] = entry
    return summary


def paired_test(pairs: list[tuple[float, float]]) -> dict:
    """Mean difference of (ours, theirs) pairs and the two-sided paired t-test's p-value (None with under two
    pairs or differences that do not vary)."""
    from scipy import stats

    ours, theirs = np.array(pairs, dtype=float).T if pairs else (np.zeros(0), np.zeros(0))
    difference = ours - theirs
    p_value = None
    if len(pairs) > 1 and np.std(difference) > 0:
        p_value = float(stats.ttest_rel(ours, theirs).pvalue)
    return {"mean_difference": float(difference.mean()) if len(pairs) else None, "p_value": p_value,
            "pairs": len(pairs)}  # fmt: skip


def compare_mixes(
    rows: list[dict], pairs: list[tuple[str, str]], key: str = "val", columns: tuple[str, ...] = COLUMNS
) -> dict:
    """Mix A against mix B on evaluation set `key`, for each (A, B) in `pairs`: per schedule, the paired t-test
    over seeds; under "all", over every (schedule, seed) both ran, a test of a difference that holds across
    schedules. On NDS, mAP and AMOTA when scored."""
    scores = {(r["mix"], r["schedule"], r["seed"]): r["scores"][key] for r in rows}
    schedules = sorted({r["schedule"] for r in rows})
    out: dict = {}
    for a, b in pairs:
        both = sorted((s, seed) for m, s, seed in scores if m == a and (b, s, seed) in scores)
        entry: dict = {}
        for which in [*map(str, schedules), "all"]:
            runs = [(s, seed) for s, seed in both if which in ("all", str(s))]
            entry[which] = {column: paired_test([(scores[(a, *run)][column], scores[(b, *run)][column])
                                                 for run in runs])
                            for column in TESTED if column in columns}  # fmt: skip
        out[f"{a}:{b}"] = entry
    return out


def markdown(
    summary: dict,
    mixes: list[str],
    epoch_unit: int,
    sets: dict[str, tuple[Path, str]],
    columns: tuple[str, ...],
    comparisons: dict | None = None,
) -> str:
    """One table a evaluation set, in Dream4Drive's form."""
    tested = [c for c in TESTED if c in columns]
    lines = [
        "# Iso-epoch: real only against real + synthetic",
        "",
        f"Each schedule kx trains k x {epoch_unit} epochs; an epoch passes once over the mix's samples (real "
        "training split plus the synthetic one), so every mix has the baseline's epochs and more steps.",
        "Cells: mean ± standard deviation over seeds (devkit, 10 classes"
        + ("; AMOTA: the tracker on the detections, 7 classes" if "AMOTA" in columns else "")
        + "). Paired t-test against real only over seeds (p; a dash where it cannot be computed).",
    ]

    def cell(value: dict) -> str:
        return f"{100 * value['mean']:.1f} ± {100 * value['std']:.1f}"

    def test(entry: dict | None) -> str:
        if not entry or entry["mean_difference"] is None:
            return "—"
        p = "—" if entry["p_value"] is None else f"{entry['p_value']:.3f}"
        return f"{100 * entry['mean_difference']:+.1f} ({p})"

    for key, (root, split) in sets.items():
        what = "the real dataset's validation split" if key == "val" else "held-out set"
        lines += [
            "",
            f"## {key}: {what} `{split}` of `{root}`",
            "",
            "| epochs | data | steps | " + " | ".join(columns) + " | " + " | ".join(f"Δ{c} (p)" for c in tested) + " |",
            "|---|---|---:|" + "---:|" * (len(columns) + len(tested)),
        ]
        for schedule, by_mix in summary[key].items():
            for mix in mixes:
                entry = by_mix[mix]
                steps = "/".join(str(s) for s in sorted(set(entry["steps"])))
                lines.append(
                    f"| {schedule}x | {mix} | {steps} | " + " | ".join(cell(entry[c]) for c in columns)
                    + " | " + " | ".join(test(entry.get(f"{c}_vs_real")) for c in tested) + " |"
                )  # fmt: skip
        if comparisons:
            lines += [
                "",
                f"Between mixes on {key}: the first mix's figure minus the second's (p: paired t-test over seeds; "
                "all: over every schedule and seed).",
                "",
                "| mixes | epochs | " + " | ".join(f"Δ{c} (p)" for c in tested) + " |",
                "|---|---|" + "---:|" * len(tested),
            ]
            for pair, by_schedule in comparisons[key].items():
                for which, entry in by_schedule.items():
                    label = which if which == "all" else f"{which}x"
                    lines.append(f"| {pair.replace(':', ' − ')} | {label} | "
                                 + " | ".join(test(entry[c]) for c in tested) + " |")  # fmt: skip
    return "\n".join(lines) + "\n"


def plot(summary: dict, mixes: list[str], path: Path, columns: tuple[str, ...] = COLUMNS) -> None:
    """NDS, mAP (and AMOTA) against the schedule, one row of panels a evaluation set."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [c for c in TESTED if c in columns]
    figure, axes = plt.subplots(len(summary), len(shown), figsize=(4.5 * len(shown) + 1.5, 3.5 * len(summary)),
                                squeeze=False, layout="constrained")  # fmt: skip
    for row, (key, by_schedule) in zip(axes, summary.items()):
        schedules = sorted(int(s) for s in by_schedule)
        for axis, column in zip(row, shown):
            for mix in mixes:
                means = [100 * by_schedule[str(s)][mix][column]["mean"] for s in schedules]
                stds = [100 * by_schedule[str(s)][mix][column]["std"] for s in schedules]
                axis.errorbar(schedules, means, yerr=stds, marker="o", capsize=3, label=mix)
            axis.set_xlabel("schedule (x epochs)")
            axis.set_ylabel(column)
            axis.set_title(key)
            axis.set_xticks(schedules)
            axis.grid(alpha=0.3)
    figure.legend(*axes[0][0].get_legend_handles_labels(), loc="outside right upper")  # beside the data, not on it
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp.png")  # a scratch name files.clear_scratch removes
    figure.savefig(tmp, dpi=120)
    plt.close(figure)
    tmp.replace(path)
