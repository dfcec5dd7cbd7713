"""Two processes (accelerate launch --cpu --num_processes 2, gloo) train on the global batch one process would."""

import json
import os
import subprocess
import sys

import numpy as np

CHILD = """
import sys
import torch
from dreamdrive.models.hdmap import HDMapConfig
from dreamdrive.pipelines.hdmap import train_hdmap
from dreamdrive.train.loop import LoopConfig

config = HDMapConfig(size=32, patch_m=102.4, widths=(8, 16), cond_dim=16)
loop = LoopConfig(steps=6, learning_rate=1e-3, warmup=1, save_every=3)
train_hdmap(sys.argv[1], towns=[3], per_town=8, batch_size=8, loop=loop, config=config)
"""


def test_two_processes_match_one_with_the_same_global_batch(tmp_path):
    script = tmp_path / "train.py"
    script.write_text(CHILD)
    env = {**os.environ, "PYTHONPATH": os.getcwd() + os.pathsep + os.environ.get("PYTHONPATH", "")}
    single = subprocess.run([sys.executable, str(script), str(tmp_path / "one")], env=env, capture_output=True,
                            text=True, timeout=600)  # fmt: skip
    assert single.returncode == 0, single.stderr[-2000:]
    # --multi_gpu is accelerate's multi-process launcher; without CUDA the processes run on CPU with gloo (MULTI_CPU).
    launcher = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
                "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no"]  # fmt: skip
    double = subprocess.run([*launcher, str(script), str(tmp_path / "two")], env=env, capture_output=True, text=True,
                            timeout=600)  # fmt: skip
    assert double.returncode == 0, double.stderr[-3000:]
    one_record = json.loads((tmp_path / "one" / "training.json").read_text())
    two_record = json.loads((tmp_path / "two" / "training.json").read_text())
    assert one_record["processes"] == 1 and two_record["processes"] == 2
    one, two = one_record["losses"], two_record["losses"]
    assert len(one) == len(two) == 6
    # Each process normalises its own share's loss (line pixels weigh 10x), so the mean of the two shares' losses
    # differs slightly from the loss of the whole batch; the first step (same weights) shows that difference alone.
    assert np.allclose(one, two, rtol=1e-3), (one, two)  # measured: within 1.5e-4 relative over six steps
    assert (tmp_path / "two" / "model" / "model.safetensors").is_file()
