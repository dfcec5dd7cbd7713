"""The tuned translator's LoRA adapter, exported to llama.cpp, acts as it does in transformers."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from dreamdrive.core.errors import DreamdriveError
from dreamdrive.scenario.llm import default_gguf
from dreamdrive.scenario.tuned import TARGETS, adapter_folder, export_gguf_adapter

PROMPT = "<|im_start|>user\na truck cuts in from the right<|im_end|>\n<|im_start|>assistant\n"


@pytest.fixture(scope="module")
def llama():
    if importlib.util.find_spec("llama_cpp") is None:
        pytest.fail("llama-cpp-python is not installed: run `make test`, which installs it.")
    import llama_cpp

    return llama_cpp


def _last_logits(llm, text: str) -> np.ndarray:
    llm.reset()
    llm.eval(llm.tokenize(text.encode(), add_bos=False, special=True))
    return np.array(llm.scores[llm.n_tokens - 1])


@pytest.mark.slow
def test_an_exported_adapter_moves_llama_cpp_as_it_moves_transformers(llama, tmp_path):
    """A random LoRA on the dequantised SmolLM2 changes the next-token logits in transformers; exported to GGUF,
    it changes llama.cpp's logits over the quantised base the same way (correlation of the changes)."""
    import torch
    from peft import LoraConfig, get_peft_model

    from dreamdrive.scenario.finetune import load_base

    gguf = default_gguf()
    tokenizer, base = load_base(Path(gguf))
    ids = tokenizer(PROMPT, return_tensors="pt", add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        before = base(ids).logits[0, -1].numpy()
    torch.manual_seed(0)
    model = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, target_modules=list(TARGETS), lora_dropout=0.0))
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "lora_B" in name:
                parameter.normal_(0, 0.3)  # peft starts B at zero; large enough to stand above quantisation noise
        after = model(ids).logits[0, -1].numpy()
    model.save_pretrained(tmp_path / "adapter")
    exported = export_gguf_adapter(tmp_path / "adapter", tmp_path / "lora.gguf")
    plain = llama.Llama(model_path=gguf, n_ctx=128, verbose=False, logits_all=True)
    tuned = llama.Llama(model_path=gguf, lora_path=str(exported), n_ctx=128, verbose=False, logits_all=True)
    shift_hf = after - before
    shift_cpp = _last_logits(tuned, PROMPT) - _last_logits(plain, PROMPT)
    assert np.abs(shift_hf).mean() > 0.5  # the adapter does change the output (the Q4_1 base alone: ~0.17)
    assert np.corrcoef(shift_hf, shift_cpp)[0, 1] > 0.9


def test_an_adapter_of_other_layers_or_a_folder_without_one_is_refused(tmp_path):
    import json

    from safetensors.numpy import save_file

    with pytest.raises(DreamdriveError, match="holds no LoRA adapter"):
        adapter_folder(tmp_path)
    adapter = tmp_path / "adapter"  # q_proj, whose rows llama.cpp permutes: not exported
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text(json.dumps({"lora_alpha": 8}))
    name = "base_model.model.model.layers.0.self_attn.q_proj.lora_{}.weight"
    save_file({name.format("A"): np.zeros((4, 8), np.float32), name.format("B"): np.zeros((8, 4), np.float32)},
              str(adapter / "adapter_model.safetensors"))  # fmt: skip
    assert adapter_folder(adapter) == adapter
    with pytest.raises(DreamdriveError, match="self_attn.q_proj, which this export does not map"):
        export_gguf_adapter(adapter, tmp_path / "out" / "lora.gguf")
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_the_shipped_adapter_writes_what_a_prompt_asks(llama):
    import json

    from dreamdrive.scenario.sandbox import run_scenario_script
    from dreamdrive.scenario.tuned import SHIPPED, TunedTranslator
    from dreamdrive.scenario.verify import account

    settings = json.loads((SHIPPED / "adapter_config.json").read_text())
    assert not settings["base_model_name_or_path"].startswith("/")  # no path of the training machine
    translator = TunedTranslator()
    script = translator.translate("a lorry swerves into our lane from the left")
    slots = account(run_scenario_script(script))
    assert ("cut_in", "left") in slots.behaviours and slots.classes == {"truck"}, script
    assert translator.translate("a lorry swerves into our lane from the left") == script  # greedy: the same script
    assert translator.script("a giraffe crosses the road") == "refuse()\n"
