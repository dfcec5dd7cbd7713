"""LoRA fine-tuning on the curated pairs, with a tiny randomly initialised model built here."""

import json
import subprocess
import sys

import pytest

from dreamdrive.scenario.curated import curated_pairs
from dreamdrive.scenario.finetune import FinetuneConfig, finetune

CONFIG = FinetuneConfig(steps=12, batch_size=4, learning_rate=5e-3, rank=4, alpha=8, max_length=160, save_every=4)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    """A 2-layer Llama with a word-level tokenizer trained on the pairs, saved as a local HF folder."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    folder = tmp_path_factory.mktemp("tiny-llm")
    from dreamdrive.scenario.curated import SYSTEM_PROMPT

    texts = [SYSTEM_PROMPT, "System: User: Assistant:"] + [p + " " + s for p, s in curated_pairs()]
    tokenizer = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.train_from_iterator(texts, trainers.WordLevelTrainer(special_tokens=["[UNK]", "[PAD]", "</s>"]))
    fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer, unk_token="[UNK]", pad_token="[PAD]", eos_token="</s>")
    fast.save_pretrained(folder)
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(fast),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=512,
    )
    LlamaForCausalLM(config).save_pretrained(folder)
    return folder


def test_loss_falls_and_the_adapter_loads(tiny_model, tmp_path):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    run = finetune(tiny_model, tmp_path / "run", CONFIG)
    state = json.loads((run / "checkpoint" / "state.json").read_text())
    losses = state["losses"]
    assert state["step"] == 12 and len(losses) == 12
    assert sum(losses[-3:]) / 3 < sum(losses[:3]) / 3  # it learns
    adapter = run / "checkpoint" / "adapter"
    assert (adapter / "adapter_config.json").is_file()
    base = AutoModelForCausalLM.from_pretrained(tiny_model, local_files_only=True)
    tuned = PeftModel.from_pretrained(base, adapter)
    tokens = AutoTokenizer.from_pretrained(tiny_model)("ego ( speed", return_tensors="pt")
    with torch.no_grad():
        plain = AutoModelForCausalLM.from_pretrained(tiny_model, local_files_only=True)(**tokens).logits
        adapted = tuned(**tokens).logits
    assert not torch.allclose(plain, adapted)  # the adapter changes the model


def test_resume_after_a_crash_gives_the_same_run(tiny_model, tmp_path):
    straight = finetune(tiny_model, tmp_path / "straight", CONFIG)

    def crash_after_six(steps):
        for step in steps:
            if step == 6:
                raise KeyboardInterrupt  # killed mid-run: the checkpoint from step 4 stays
            yield step

    with pytest.raises(KeyboardInterrupt):
        finetune(tiny_model, tmp_path / "resumed", CONFIG, progress=crash_after_six)
    assert json.loads((tmp_path / "resumed" / "checkpoint" / "state.json").read_text())["step"] == 4
    resumed = finetune(tiny_model, tmp_path / "resumed", CONFIG)
    a = json.loads((straight / "checkpoint" / "state.json").read_text())["losses"]
    b = json.loads((resumed / "checkpoint" / "state.json").read_text())["losses"]
    assert b == pytest.approx(a, abs=1e-4)
    stamp = (resumed / "checkpoint" / "state.json").stat().st_mtime_ns
    finetune(tiny_model, tmp_path / "resumed", CONFIG)  # finished: a no-op
    assert (resumed / "checkpoint" / "state.json").stat().st_mtime_ns == stamp


def test_cli_refuses_a_folder_that_is_no_model(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "dreamdrive.cli",
            "scenario",
            "finetune",
            "--model",
            str(tmp_path),
            "--out",
            str(tmp_path / "run"),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2 and "neither a GGUF file nor a local Hugging Face model folder" in result.stderr
