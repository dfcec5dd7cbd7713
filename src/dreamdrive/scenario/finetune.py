"""LoRA fine-tuning of a local causal language model on Text-to-Script pairs.

    dreamdrive scenario finetune --model LOCAL_HF_FOLDER|FILE.gguf --out DIR [--corpus 6000] [--steps 200]

The model and tokenizer load from a local folder, or a GGUF file dequantised by
transformers (the packaged SmolLM2), never from a hub. The pairs are the
curated ones, or with `corpus` that many composed pairs (`scenario.corpus`),
built once into the run folder. Each example is the chat (system, user prompt,
assistant script) rendered with the tokenizer's chat template when it has one,
else as plain "System:/User:/Assistant:" text; the loss covers the assistant's
script only. The run folder holds the resolved
config, the LoRA adapter (peft's `adapter_config.json` + safetensors), the
optimizer state and the step, written atomically every `save_every` steps, so
a killed run resumes where it stopped; rerunning a finished run is a no-op.
"""

from __future__ import annotations

import json
import math
import pickle
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from dreamdrive.core.errors import DreamdriveError
from dreamdrive.files import atomic_write
from dreamdrive.scenario.corpus import corpus_pairs
from dreamdrive.scenario.curated import SYSTEM_PROMPT, curated_pairs


@dataclass(frozen=True)
class FinetuneConfig:
    """LoRA run settings: rank and alpha, optimisation, and how often to checkpoint."""

    steps: int = 200
    batch_size: int = 4
    learning_rate: float = 2e-4
    rank: int = 8
    alpha: int = 16
    max_length: int = 384
    save_every: int = 50
    seed: int = 0
    corpus: int = 0  # composed pairs to train on (scenario.corpus); 0: the curated pairs
    corpus_seed: int = 0
    system: str | None = None  # the system prompt of every example; None: curated.SYSTEM_PROMPT
    targets: tuple[str, ...] | None = None  # the linear layers LoRA adapts; None: the attention projections


def _render(tokenizer, messages: list[dict]) -> tuple[str, str]:
    """(prompt text up to the assistant's turn, full text) for one chat."""
    if getattr(tokenizer, "chat_template", None):
        prompt = tokenizer.apply_chat_template(messages[:-1], tokenize=False, add_generation_prompt=True)
        full = tokenizer.apply_chat_template(messages, tokenize=False)
        return prompt, full
    prompt = f"System: {messages[0]['content']}\nUser: {messages[1]['content']}\nAssistant: "
    return prompt, prompt + messages[2]["content"] + (tokenizer.eos_token or "")


def _examples(tokenizer, max_length: int, pairs, system: str) -> list[tuple[list[int], list[int]]]:
    """(input ids, labels with the prompt masked to -100) for every pair."""

    out = []
    for prompt, script in pairs:
        messages = [
            {"role": "system", "content": system},
            {"role": "user", "content": prompt},
            {"role": "assistant", "content": script},
        ]
        head, full = _render(tokenizer, messages)
        head_ids = tokenizer(head, add_special_tokens=False)["input_ids"]
        ids = tokenizer(full, add_special_tokens=False)["input_ids"][:max_length]
        labels = [-100] * min(len(head_ids), len(ids)) + ids[len(head_ids) :]
        out.append((ids, labels[: len(ids)]))
    return out


def _lora_targets(model) -> list[str]:
    """The attention projections to adapt, whatever the architecture calls them."""
    import torch

    names = {name.split(".")[-1] for name, module in model.named_modules() if isinstance(module, torch.nn.Linear)}
    for candidates in (["q_proj", "v_proj"], ["query", "value"], ["c_attn"], ["qkv_proj"], ["Wqkv"]):
        if all(c in names for c in candidates):
            return candidates
    linear = sorted(names - {"lm_head"})
    if not linear:
        raise DreamdriveError("the model has no linear layers to adapt with LoRA.")
    return linear


def training_pairs(out: Path, config: FinetuneConfig) -> list[tuple[str, str]]:
    """The run's pairs: the curated ones, or the composed corpus, written once to `out`/corpus.jsonl."""
    if not config.corpus:
        return list(curated_pairs())
    path = out / "corpus.jsonl"
    if not path.is_file():
        rows = corpus_pairs(config.corpus, config.corpus_seed)
        atomic_write(path, "".join(json.dumps({"prompt": p, "script": s}) + "\n" for p, s in rows).encode())
    return [(row["prompt"], row["script"]) for row in map(json.loads, path.read_text().splitlines())]


def _model_source(model: Path) -> dict:
    """transformers' arguments for a local Hugging Face folder or a GGUF file; a clear error for anything else."""
    if model.suffix == ".gguf" and model.is_file():
        return {"pretrained_model_name_or_path": model.parent, "gguf_file": model.name}
    if (model / "config.json").is_file():
        return {"pretrained_model_name_or_path": model, "local_files_only": True}
    raise DreamdriveError(f"{model} is neither a GGUF file nor a local Hugging Face model folder (config.json).")


def load_base(model: Path):
    """(tokenizer, causal LM) from a local Hugging Face folder or a GGUF file (dequantised to float32)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    where = _model_source(model)
    tokenizer = AutoTokenizer.from_pretrained(**where)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    return tokenizer, AutoModelForCausalLM.from_pretrained(**where)


def _load_optimizer_state(path: Path) -> dict:
    """An optimizer state saved by `_save`, read without running any code a crafted file may hold."""
    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise DreamdriveError(
            f"{path} is not a plain tensor checkpoint: loading it could run code, so it was not loaded. Delete "
            f"{path.parent} to fine-tune from the start."
        ) from error


def _save(out: Path, model, optimizer, step: int, losses: list[float]) -> None:
    """Write the adapter, optimizer and step into a fresh folder, then swap it in (atomic for readers)."""
    import torch

    staging = out / ".checkpoint-staging"
    shutil.rmtree(staging, ignore_errors=True)
    model.save_pretrained(staging / "adapter")
    torch.save(optimizer.state_dict(), staging / "optimizer.pt")
    (staging / "state.json").write_text(json.dumps({"step": step, "losses": losses}))
    final = out / "checkpoint"
    old = out / ".checkpoint-old"
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        final.rename(old)
    staging.rename(final)
    shutil.rmtree(old, ignore_errors=True)


def finetune(
    model_dir: str | Path, out: str | Path, config: FinetuneConfig = FinetuneConfig(), progress: Callable | None = None
) -> Path:
    """Fine-tune a LoRA adapter on the curated pairs; returns the run folder (adapter in `checkpoint/adapter`)."""
    import torch
    from peft import LoraConfig, PeftModel, get_peft_model

    model_dir, out = Path(model_dir), Path(out)
    _model_source(model_dir)  # refused before the run folder is made
    out.mkdir(parents=True, exist_ok=True)
    config_path = out / "config.json"
    resolved = json.loads(json.dumps({"model": str(model_dir.resolve()), **asdict(config)}))  # tuples as lists
    if config_path.exists() and json.loads(config_path.read_text()) != resolved:
        raise DreamdriveError(f"{out} holds a run with another configuration; choose another --out.")
    config_path.write_text(json.dumps(resolved, indent=1))

    torch.manual_seed(config.seed)
    tokenizer, base = load_base(model_dir)
    checkpoint = out / "checkpoint"
    step, losses = 0, []
    if (checkpoint / "state.json").is_file():
        state = json.loads((checkpoint / "state.json").read_text())
        step, losses = state["step"], state["losses"]
        model = PeftModel.from_pretrained(base, checkpoint / "adapter", is_trainable=True)
    else:
        lora = LoraConfig(
            r=config.rank,
            lora_alpha=config.alpha,
            lora_dropout=0.0,
            target_modules=list(config.targets) if config.targets else _lora_targets(base),
            task_type="CAUSAL_LM",
        )
        model = get_peft_model(base, lora)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=config.learning_rate)
    if (checkpoint / "optimizer.pt").is_file():
        optimizer.load_state_dict(_load_optimizer_state(checkpoint / "optimizer.pt"))
    if step >= config.steps:
        return out

    examples = _examples(tokenizer, config.max_length, training_pairs(out, config), config.system or SYSTEM_PROMPT)
    generator = torch.Generator().manual_seed(config.seed)
    order = torch.randperm(len(examples), generator=generator).tolist() * math.ceil(
        config.steps * config.batch_size / len(examples) + 1
    )
    model.train()
    steps = range(step, config.steps)
    for current in progress(steps) if progress else steps:
        batch = [examples[i] for i in order[current * config.batch_size : (current + 1) * config.batch_size]]
        width = max(len(ids) for ids, _ in batch)
        pad = tokenizer.pad_token_id
        ids = torch.tensor([x + [pad] * (width - len(x)) for x, _ in batch])
        labels = torch.tensor([y + [-100] * (width - len(y)) for _, y in batch])
        mask = torch.tensor([[1] * len(x) + [0] * (width - len(x)) for x, _ in batch])
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(round(loss.item(), 6))
        if (current + 1) % config.save_every == 0 or current + 1 == config.steps:
            _save(out, model, optimizer, current + 1, losses)
    return out
