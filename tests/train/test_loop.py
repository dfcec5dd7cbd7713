"""The shared training loop: a run killed at a step resumes to the weights of a run never stopped."""

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace

import pytest
import torch
from safetensors.torch import load_file

from dreamdrive.core.errors import DreamdriveError
from dreamdrive.models.hdmap import HDMapConfig, HDMapNet
from dreamdrive.train import loop
from dreamdrive.train.loop import LoopConfig, train_loop

CONFIG = HDMapConfig(size=16, patch_m=51.2, widths=(4, 8), blocks=1, cond_dim=8)
LOOP = LoopConfig(steps=12, learning_rate=1e-3, warmup=3, ema_decay=0.9, save_every=2)
CHILD = """
import sys
from tests.train.test_loop import run
run(sys.argv[1])
"""


def loss(model, generator, shard=None):
    x0 = torch.rand((4, 3, 16, 16), generator=generator) * 2 - 1
    condition = torch.rand((4, 3, 16, 16), generator=generator)
    noise = torch.randn((4, 3, 16, 16), generator=generator)
    t = torch.rand(4, generator=generator)
    x_t = (1 - t[:, None, None, None]) * x0 + t[:, None, None, None] * noise
    return ((model(x_t, t, condition) - (noise - x0)) ** 2).mean()


def run(out: str):
    torch.manual_seed(0)
    return train_loop(out, HDMapNet(CONFIG), loss, LOOP, {"test": 1})


def test_a_killed_run_resumes_to_the_weights_of_an_uninterrupted_one(tmp_path):
    reference = run(str(tmp_path / "reference"))
    record = json.loads((tmp_path / "reference" / "training.json").read_text())
    assert record["steps"] == 12 and len(record["losses"]) == 12
    assert (tmp_path / "reference" / "loss.png").stat().st_size > 1000
    process = subprocess.Popen([sys.executable, "-c", CHILD, str(tmp_path / "killed")], env=os.environ.copy(),
                               cwd=os.getcwd())  # fmt: skip
    trainer = tmp_path / "killed" / "state" / "trainer.json"
    deadline = time.time() + 120
    while process.poll() is None and time.time() < deadline:
        if trainer.is_file() and json.loads(trainer.read_text())["step"] >= 4:
            break
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not (tmp_path / "killed" / "model").exists()
    resumed = run(str(tmp_path / "killed"))
    a, b = load_file(str(reference / "model.safetensors")), load_file(str(resumed / "model.safetensors"))
    for name, tensor in a.items():
        assert torch.allclose(tensor, b[name], atol=1e-6), name
    losses = json.loads((tmp_path / "killed" / "training.json").read_text())["losses"]
    assert losses == pytest.approx(record["losses"], rel=1e-5)
    mtime = (reference / "model.safetensors").stat().st_mtime_ns
    assert (
        run(str(tmp_path / "reference")) == reference and (reference / "model.safetensors").stat().st_mtime_ns == mtime
    )


def test_another_run_in_the_same_folder_is_refused_and_the_same_one_goes_on(tmp_path):
    run(str(tmp_path / "run"))
    with pytest.raises(DreamdriveError, match="holds a different run"):
        train_loop(tmp_path / "run", HDMapNet(CONFIG), loss, LOOP, {"test": 2})
    with pytest.raises(DreamdriveError, match="has trained 12 steps"):
        train_loop(tmp_path / "run", HDMapNet(CONFIG), loss, replace(LOOP, steps=6), {"test": 1})
    # 12 steps, then 8 more: the same weights as 20 steps at once
    longer = replace(LOOP, steps=20)
    torch.manual_seed(0)
    extended = train_loop(tmp_path / "run", HDMapNet(CONFIG), loss, longer, {"test": 1})
    torch.manual_seed(0)
    direct = train_loop(tmp_path / "direct", HDMapNet(CONFIG), loss, longer, {"test": 1})
    a, b = load_file(str(extended / "model.safetensors")), load_file(str(direct / "model.safetensors"))
    assert all(torch.allclose(a[name], b[name], atol=1e-6) for name in a)
    assert json.loads((tmp_path / "run" / "training.json").read_text())["steps"] == 20
    with pytest.raises(DreamdriveError, match="steps and save_every"):
        LoopConfig(steps=0)


def test_a_run_killed_while_drawing_its_loss_curve_leaves_no_scratch_file_and_a_whole_curve(tmp_path, monkeypatch):
    def killed(losses, path, window=50):  # the kill lands inside the picture's write, after the state is saved
        path.with_name(f".{path.name}.tmp.png").write_bytes(b"half a PNG")
        raise KeyboardInterrupt

    trainer = tmp_path / "run" / "state" / "trainer.json"
    while not trainer.is_file() or json.loads(trainer.read_text())["step"] < LOOP.steps:
        monkeypatch.setattr(loop, "loss_curve", killed)
        with pytest.raises(KeyboardInterrupt):
            run(str(tmp_path / "run"))
        monkeypatch.undo()
    (tmp_path / "run" / ".training.json.abc123.tmp").write_bytes(b"{")  # an atomic write cut short, too
    run(str(tmp_path / "run"))  # every step is trained: it only finishes the run
    assert [p.name for p in (tmp_path / "run").iterdir() if p.name.startswith(".")] == []
    assert json.loads((tmp_path / "run" / "training.json").read_text())["steps"] == LOOP.steps
    assert (tmp_path / "run" / "loss.png").stat().st_size > 1000
