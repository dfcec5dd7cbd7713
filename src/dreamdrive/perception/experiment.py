"""The iso-epoch experiment (Dream4Drive): real-only against real + synthetic, at the same number of epochs.

For every schedule k in `epochs` (k x `epoch_unit` epochs), every seed, and every
mix (the real-only baseline and real + each synthetic dataset), a detector is
trained in its own resumable run folder and evaluated on the real dataset's
validation split. An epoch is one pass over the mix's samples: the real
training split once, plus the synthetic dataset's training split once (or its
`ratio`), so a mix has the same number of epochs as the baseline and
ceil((real + synthetic) / batch) steps in each (`train.py`). `results.json`
lists every run with its steps; `results.md` is the table in Dream4Drive's form
(mean ± standard deviation over seeds, and each mix's paired t-test against the
baseline over seeds, on NDS and mAP); `results.png` plots NDS and mAP against
the schedule. A finished run is never retrained: killed and rerun, the
experiment picks up where it stopped.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np

from dreamdrive.core.errors import DreamdriveError
from dreamdrive.files import atomic_write
from dreamdrive.metrics.detection import evaluate_detection
from dreamdrive.nusc.reader import NuscDataset
from dreamdrive.perception.data import DetectorConfig, Mix
from dreamdrive.perception.predict import predict, split_refs, write_results
from dreamdrive.perception.train import TrainConfig, epoch_size, load_model, run_steps, train

COLUMNS = ("mAP", "mATE", "mAOE", "mAVE", "NDS")


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
) -> dict:
    """Train and evaluate every (mix, schedule, seed); write results.json, results.md and results.png."""

    out = Path(out)
    if "real" in synthetic:
        raise DreamdriveError("'real' names the baseline; give the synthetic datasets other names.")
    if seeds < 1 or not epochs:
        raise DreamdriveError("give at least one seed and one schedule.")
    val_split = val_split or default_split(real, "val")
    mixes = {"real": Mix([(str(real), default_split(real, "train"))])}
    for name, root in synthetic.items():
        mixes[name] = Mix([(str(real), default_split(real, "train")), (str(root), default_split(root, "train"))])
    refs = None
    rows = []
    for schedule in epochs:
        for seed in range(seeds):
            for mix_name, mix in mixes.items():
                name = run_name(mix_name, schedule, seed)
                folder = out / "runs" / name
                report_path = folder / "eval" / "report.json"
                if not report_path.is_file():
                    if progress is not None:
                        progress(name)
                    config = replace(train_config, epochs=schedule * epoch_unit, seed=seed)
                    train(mix, folder, config, detector)
                    refs = refs or split_refs(real, val_split)
                    results = write_results(predict(load_model(folder), refs), folder / "eval" / "results_nusc.json")
                    evaluate_detection(real, val_split, results, folder / "eval", plots=False)
                report = json.loads(report_path.read_text())
                run = json.loads((folder / "run.json").read_text())
                rows.append(
                    {
                        "mix": mix_name,
                        "schedule": schedule,
                        "epochs": schedule * epoch_unit,
                        "seed": seed,
                        "samples_per_epoch": epoch_size(run["samples"], run["ratios"]),
                        "steps": run_steps(run),
                        "official": report["official"],
                        "present": report["present"],
                    }
                )
    summary = summarise(rows, list(mixes))
    result = {"real": str(real), "synthetic": {k: str(v) for k, v in synthetic.items()}, "val_split": val_split,
              "epoch_unit": epoch_unit, "runs": rows, "summary": summary}  # fmt: skip
    text = json.dumps(result, indent=1).encode()
    done = [out / name for name in ("results.json", "results.md", "results.png")]
    if all(path.is_file() for path in done) and done[0].read_bytes() == text:
        return result  # a finished experiment, rerun, rewrites nothing
    atomic_write(out / "results.md", markdown(summary, list(mixes), epoch_unit).encode())
    plot(summary, list(mixes), out / "results.png")
    atomic_write(out / "results.json", text)  # last: its presence marks the outputs complete
    return result


def summarise(rows: list[dict], mixes: list[str], figures: str = "official") -> dict:
    """Per schedule and mix: mean and standard deviation over seeds, and the paired t-test against the baseline."""
    from scipy import stats

    summary: dict = {}
    for schedule in sorted({r["schedule"] for r in rows}):
        summary[str(schedule)] = {}
        base = {r["seed"]: r for r in rows if r["schedule"] == schedule and r["mix"] == "real"}
        for mix in mixes:
            runs = sorted((r for r in rows if r["schedule"] == schedule and r["mix"] == mix), key=lambda r: r["seed"])
            entry = {"seeds": len(runs), "steps": [r["steps"] for r in runs]}
            for column in COLUMNS:
                values = np.array([r[figures][column] for r in runs])
                entry[column] = {
                    "mean": float(values.mean()),
                    "std": float(values.std(ddof=1)) if len(values) > 1 else 0.0,
                }
            if mix != "real":
                for column in ("NDS", "mAP"):
                    paired = [(r[figures][column], base[r["seed"]][figures][column]) for r in runs if r["seed"] in base]
                    ours, theirs = np.array(paired).T if paired else (np.zeros(0), np.zeros(0))
                    difference = ours - theirs
                    p_value = None
                    if len(paired) > 1 and np.std(difference) > 0:
                        p_value = float(stats.ttest_rel(ours, theirs).pvalue)
                    entry[f"{column}_vs_real"] = {"mean_difference": float(difference.mean()) if len(paired) else None,
                                                  "p_value": p_value, "pairs": len(paired)}  # fmt: skip
            summary[str(schedule)][mix] = entry
    return summary


def markdown(summary: dict, mixes: list[str], epoch_unit: int) -> str:
    lines = [
        "# Iso-epoch: real only against real + synthetic",
        "",
        f"Each schedule kx trains k x {epoch_unit} epochs; an epoch passes once over the mix's samples (real "
        "training split plus the synthetic one), so every mix has the baseline's epochs and more steps.",
        "Cells: mean ± standard deviation over seeds (devkit, 10 classes). Paired t-test against real only over "
        "seeds (p; a dash where it cannot be computed).",
        "",
        "| epochs | data | steps | " + " | ".join(COLUMNS) + " | ΔNDS (p) | ΔmAP (p) |",
        "|---|---|---:|" + "---:|" * len(COLUMNS) + "---:|---:|",
    ]

    def cell(value: dict) -> str:
        return f"{100 * value['mean']:.1f} ± {100 * value['std']:.1f}"

    def test(entry: dict | None) -> str:
        if not entry or entry["mean_difference"] is None:
            return "—"
        p = "—" if entry["p_value"] is None else f"{entry['p_value']:.3f}"
        return f"{100 * entry['mean_difference']:+.1f} ({p})"

    for schedule, by_mix in summary.items():
        for mix in mixes:
            entry = by_mix[mix]
            steps = "/".join(str(s) for s in sorted(set(entry["steps"])))
            lines.append(
                f"| {schedule}x | {mix} | {steps} | " + " | ".join(cell(entry[c]) for c in COLUMNS)
                + f" | {test(entry.get('NDS_vs_real'))} | {test(entry.get('mAP_vs_real'))} |"
            )  # fmt: skip
    return "\n".join(lines) + "\n"


def plot(summary: dict, mixes: list[str], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    schedules = sorted(int(s) for s in summary)
    figure, axes = plt.subplots(1, 2, figsize=(9, 3.5))
    for axis, column in zip(axes, ("NDS", "mAP")):
        for mix in mixes:
            means = [100 * summary[str(s)][mix][column]["mean"] for s in schedules]
            stds = [100 * summary[str(s)][mix][column]["std"] for s in schedules]
            axis.errorbar(schedules, means, yerr=stds, marker="o", capsize=3, label=mix)
        axis.set_xlabel("schedule (x epochs)")
        axis.set_ylabel(column)
        axis.set_xticks(schedules)
        axis.grid(alpha=0.3)
    axes[0].legend()
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.png")
    figure.savefig(tmp, dpi=120)
    plt.close(figure)
    tmp.replace(path)
