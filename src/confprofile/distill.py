"""Stage 1c: distil the pseudo-labels into a student LLM with confidence-weighted SFT.

1. `build_sft_records`: one chat record per user (the compact `student` prompt, the rendered user data,
   and an assistant turn = short rationale + JSON profile with the aggregated confidences) and a `weight`
   from the pseudo-label confidences, so that users the teachers agreed on teach more.
2. `train_student`: TRL's SFTTrainer with a per-sequence weighted loss on the assistant tokens only,
   optional LoRA (PEFT), gradient accumulation, checkpoints and resume. Students: `tiny` (a small Qwen3
   built from config, tokenizer trained on these records), `smollm2`, or any local HF directory.

Not-kept pseudo-labels (`kept == False`, low agreement or confidence) are handled by `not_kept`:
- `mask` (default): the dimension's target becomes `{"label": "unknown", "confidence": 0.0}`, so the
  student learns to abstain where the teachers were unsure, and the dimension adds nothing to the weight;
- `drop`: a record with any not-kept dimension is left out;
- `keep`: not-kept labels stay in the target with their (low) confidences and count in the weight.
With `mask` or `drop`, a record whose dimensions are all not kept is left out (it would teach only abstentions).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path


from confprofile.errors import InputError
from confprofile.files import atomic_write_json, staged_dir
from confprofile.prompts import STUDENT_MAX_USER_TOKENS
from confprofile.registry import Registry
from confprofile.taxonomy import UNKNOWN, Taxonomy

STUDENT_NOTE = "confprofile_student.json"  # written last into a finished student directory
RATIONALE_CHARS = 160  # the SFT target's rationale line: cites the strongest evidence, cheap to generate

# ---- SFT records ----------------------------------------------------------------------------------

# weight functions: confidences of the kept dimensions of one user -> that record's weight
WEIGHT_FNS: Registry[Callable[[Sequence[float]], float]] = Registry("weight function")
WEIGHT_FNS.register("mean_confidence")(lambda cs: sum(cs) / len(cs) if cs else 0.0)
WEIGHT_FNS.register("min_confidence")(lambda cs: min(cs) if cs else 0.0)
WEIGHT_FNS.register("geometric_mean")(lambda cs: math.exp(sum(math.log(max(c, 1e-6)) for c in cs) / len(cs)) if cs else 0.0)
WEIGHT_FNS.register("uniform")(lambda cs: 1.0)

NOT_KEPT_MODES = ("mask", "drop", "keep")


def _clip(text: str, limit: int) -> str:
    text = " ".join(str(text or "").split())
    return text if len(text) <= limit else text[: limit - 3].rstrip() + "..."


def build_target(labels: dict[str, dict], taxonomy: Taxonomy, rationale: bool = True) -> str:
    """The assistant turn: `Rationale: dim: why; ...` (most confident first, RATIONALE_CHARS at most),
    then the JSON profile with label and confidence per dimension."""
    from confprofile.prompts import format_answer

    profile, reasons = {}, []
    for dim in taxonomy.dimension_names:
        entry = labels.get(dim, {"label": UNKNOWN, "confidence": 0.0})
        profile[dim] = {"label": entry["label"], "confidence": round(float(entry["confidence"]), 2)}
        if rationale and entry.get("rationale") and entry["label"] != UNKNOWN:
            reasons.append((-entry["confidence"], f"{dim}: {_clip(entry['rationale'], RATIONALE_CHARS // 2)}"))
    line = "; ".join(text for _, text in sorted(reasons))  # most confident dimensions first
    return format_answer(profile, _clip(line, RATIONALE_CHARS) if line else None)


@dataclass
class SFTRecordConfig:
    """How pseudo-labels become SFT records (`build_sft_records`): the `sft` part of an LLM student's config."""

    weight_fn: str = field(default="mean_confidence", metadata={"help": "Record weight from the kept confidences (a name in WEIGHT_FNS)."})
    not_kept: str = field(default="mask", metadata={"help": "Not-kept pseudo-labels: 'mask' (target unknown), 'drop' (drop the record), 'keep' (keep label + confidence)."})
    rationale: bool = field(default=True, metadata={"help": "Put a short rationale line before the JSON profile (off for the tiny student)."})


def build_sft_records(
    users,
    pseudo_labels,
    taxonomy: Taxonomy,
    *,
    weight_fn: str = SFTRecordConfig.weight_fn,
    not_kept: str = SFTRecordConfig.not_kept,
    rationale: bool = SFTRecordConfig.rationale,
    max_user_tokens: int = STUDENT_MAX_USER_TOKENS,
    count_tokens: Callable[[str], int] | None = None,
) -> list[dict]:
    """One `{"messages", "weight", "user_id"}` record per user with at least one kept pseudo-label.

    `pseudo_labels` is the pseudo_labels.parquet DataFrame; users without any row are skipped.
    """
    from confprofile.prompts import student_messages

    if not_kept not in NOT_KEPT_MODES:
        raise ValueError(f"not_kept must be one of {NOT_KEPT_MODES}, got {not_kept!r}")
    weigh = WEIGHT_FNS.get(weight_fn)
    dims = set(taxonomy.dimension_names)
    by_user: dict[str, dict[str, dict]] = {}
    for row in pseudo_labels.itertuples(index=False):
        if row.dimension in dims:
            confidence = float(row.confidence) if row.confidence is not None else 0.0
            why = getattr(row, "rationale", "")
            by_user.setdefault(str(row.user_id), {})[row.dimension] = {
                "label": row.label if isinstance(row.label, str) and row.label else UNKNOWN,
                "confidence": 0.0 if math.isnan(confidence) else min(max(confidence, 0.0), 1.0),
                "kept": bool(row.kept),
                "rationale": why if isinstance(why, str) else "",
            }
    records = []
    for user in users:
        rows = by_user.get(str(user.user_id))
        if rows and not_kept == "keep":
            rows = {dim: {**r, "kept": True} for dim, r in rows.items()}
        if not rows or not any(r["kept"] for r in rows.values()):
            continue
        if not_kept == "drop" and not all(r["kept"] for r in rows.values()):
            continue
        labels = {
            dim: r if r["kept"] else {"label": UNKNOWN, "confidence": 0.0, "rationale": ""} for dim, r in rows.items()
        }
        confidences = [r["confidence"] for r in rows.values() if r["kept"]]
        messages = student_messages(user, taxonomy, max_user_tokens, count_tokens)
        messages.append({"role": "assistant", "content": build_target(labels, taxonomy, rationale)})
        records.append({"messages": messages, "weight": float(weigh(confidences)), "user_id": str(user.user_id)})
    return records


def load_sft(path: str | Path) -> list[dict]:
    """Read sft.jsonl, checking each record's shape (InputError names the line)."""
    records = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError as exc:
                raise InputError(path, number, None, f"not valid JSON ({exc})") from None
            messages = record.get("messages")
            if not isinstance(messages, list) or not messages or messages[-1].get("role") != "assistant":
                raise InputError(path, number, "messages", "needs a list of chat messages ending with an assistant turn")
            weight = record.get("weight", 1.0)
            if not isinstance(weight, (int, float)) or isinstance(weight, bool) or not weight >= 0:
                raise InputError(path, number, "weight", f"must be a number >= 0, got {weight!r}")
            records.append({"messages": messages, "weight": float(weight), "user_id": str(record.get("user_id", number))})
    if not records:
        raise InputError(path, None, None, "no SFT records")
    return records




# ---- training -------------------------------------------------------------------------------------


@dataclass
class DistillConfig:
    """Knobs of the SFT student. The learning rate and LoRA rank default by student (`__post_init__`)."""

    student: str = field(default="tiny", metadata={"help": "'tiny' (Qwen3 from config, tokenizer trained on the SFT texts), 'smollm2', or a local HF dir."})
    epochs: float = field(default=5.0, metadata={"help": "Passes over the SFT records."})
    lr: float | None = field(default=None, metadata={"help": "Peak learning rate (cosine schedule, 5% warmup); None: 1e-3 tiny, 2e-4 LoRA, 2e-5 full fine-tune."})
    warmup: float = field(default=0.05, metadata={"help": "Warmup as a fraction of the steps (a constant LR collapsed tiny students: docs/cpu.md)."})
    batch_size: int = field(default=8, metadata={"help": "Sequences per device step."})
    grad_accum: int = field(default=1, metadata={"help": "Steps accumulated per optimiser update."})
    lora_r: int | None = field(default=None, metadata={"help": "LoRA rank; 0 trains all parameters; None: 0 for tiny, 8 otherwise."})
    lora_alpha: int = field(default=16, metadata={"help": "LoRA scaling alpha."})
    lora_targets: str = field(default="all-linear", metadata={"help": "Comma-separated module names for LoRA, or 'all-linear'."})
    merge_lora: bool = field(default=True, metadata={"help": "Merge LoRA into the base on save (else save the adapter + a note of its base)."})
    max_length: int | None = field(default=2048, metadata={"help": "Longest tokenised record; longer ones are truncated (keep_start)."})
    seed: int = field(default=0, metadata={"help": "Seed for init, shuffling and dropout."})
    save_steps: int = field(default=200, metadata={"help": "Checkpoint every N optimiser steps (under OUT/checkpoints)."})
    resume: bool = field(default=True, metadata={"help": "Continue from the last checkpoint in OUT/checkpoints if there is one."})
    normalize_weights: bool = field(default=True, metadata={"help": "Rescale record weights to mean 1, so the LR means the same as unweighted SFT."})
    tiny_hidden: int = field(default=128, metadata={"help": "Hidden size of the tiny student."})
    tiny_layers: int = field(default=2, metadata={"help": "Layers of the tiny student."})
    tiny_vocab: int = field(default=1024, metadata={"help": "BPE vocabulary of the tiny student's tokenizer."})
    logging_steps: int = field(default=10, metadata={"help": "Log the loss every N steps."})
    max_steps: int = field(default=-1, metadata={"help": "Stop after N optimiser steps (-1: run all epochs)."})

    def __post_init__(self) -> None:
        """The student-dependent defaults: a tiny student from scratch trains all weights fast; a
        pretrained one gets LoRA at a gentler rate (full fine-tuning, gentler still)."""
        tiny = self.student.lower() == "tiny"
        if self.lora_r is None:
            self.lora_r = 0 if tiny else 8
        if self.lr is None:
            self.lr = 1e-3 if tiny else 2e-4 if self.lora_r else 2e-5


def _weighted_trainer_class():
    """SFTTrainer whose loss is the weight-scaled mean over sequences of each one's assistant-token NLL."""
    import torch
    from trl import SFTTrainer

    class WeightedSFTTrainer(SFTTrainer):
        loss_is_scaled_for_ga = False  # our loss is a per-micro-batch mean: Trainer divides by the GA steps

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            weights = inputs.pop("weight", None)
            outputs = model(**inputs, use_cache=False, fused_lm_head=True)  # per-token log-probs, 0 where label -100
            tokens = outputs.label_mask.sum(-1)
            per_sequence = -outputs.log_probs.sum(-1) / tokens.clamp(min=1)
            if weights is None:
                weights = torch.ones_like(per_sequence)
            loss = (weights.to(per_sequence) * per_sequence).mean()
            mode = "train" if model.training else "eval"
            valid = tokens.sum().clamp(min=1)
            self._metrics[mode]["mean_token_accuracy"].append((outputs.is_top1.sum() / valid).item())
            self._metrics[mode]["entropy"].append((outputs.entropy.detach().sum() / valid).item())
            return (loss, outputs) if return_outputs else loss

    return WeightedSFTTrainer


class WeightedCollator:
    """TRL's language-modelling collator, plus a `weight` tensor carried from the dataset column."""

    def __init__(self, pad_token_id: int):
        from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

        self.base = DataCollatorForLanguageModeling(pad_token_id=pad_token_id)

    def __call__(self, examples: list[dict]) -> dict:
        import torch

        batch = self.base([{k: ex[k] for k in ("input_ids", "labels") if k in ex} for ex in examples])
        batch["weight"] = torch.tensor([float(ex.get("weight", 1.0)) for ex in examples], dtype=torch.float32)
        return batch


def _record_text(record: dict) -> str:
    return "\n".join(m["content"] for m in record["messages"])


def _fingerprint(records: list[dict]) -> str:
    import hashlib

    return hashlib.sha256(json.dumps(records, sort_keys=True).encode()).hexdigest()[:16]


def _last_checkpoint(directory: Path) -> str | None:
    steps = [(int(p.name.split("-")[-1]), p) for p in directory.glob("checkpoint-*") if p.name.split("-")[-1].isdigit()]
    return str(max(steps)[1]) if steps else None


def train_student(records: list[dict], out: str | Path, config: DistillConfig | None = None, callbacks: list | None = None) -> Path:
    """Confidence-weighted SFT of `config.student` on `records`; the finished model lands in `out`.

    `out/checkpoints/` holds resumable checkpoints, `out/base/` the tiny student's initial model; the
    final model (or LoRA adapter) and tokenizer are written into `out/` and `confprofile_student.json` last.
    `callbacks`: extra transformers TrainerCallbacks (progress, early stop, tests).
    """
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig

    from confprofile.models import CHATML_TEMPLATE, device_args, resolve_student

    config = config or DistillConfig()
    out = Path(out)
    note = out / STUDENT_NOTE
    done = {"config": asdict(config), "records": _fingerprint(records)}
    if config.resume and note.exists() and {k: json.loads(note.read_text()).get(k) for k in done} == done:
        return out  # finished earlier on the same records and settings: a rerun of the pipeline does no work
    out.mkdir(parents=True, exist_ok=True)
    base = resolve_student(  # a resumed run reuses the tiny student's tokenizer and init
        config.student, [_record_text(r) for r in records], out / "base", reuse=config.resume,
        hidden=config.tiny_hidden, layers=config.tiny_layers, vocab_size=config.tiny_vocab, seed=config.seed,
    )

    on_gpu = torch.cuda.is_available()
    tokenizer = AutoTokenizer.from_pretrained(base)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    template = tokenizer.chat_template if isinstance(tokenizer.chat_template, str) else ""
    if "<|im_start|>" in template and "{% generation %}" not in template and "think" not in template:
        tokenizer.chat_template = CHATML_TEMPLATE  # plain ChatML (SmolLM2): add the assistant-loss markers
    # frozen LoRA bases may sit in bf16; trained weights stay fp32 (bf16 autocast on GPU, plain fp32 on CPU)
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.bfloat16 if on_gpu and config.lora_r else torch.float32)

    weights = [r["weight"] for r in records]
    scale = sum(weights) / len(weights) if config.normalize_weights and sum(weights) > 0 else 1.0
    dataset = Dataset.from_list([{"messages": r["messages"], "weight": r["weight"] / scale} for r in records])

    peft_config = None
    if config.lora_r > 0:
        from peft import LoraConfig

        targets = config.lora_targets if config.lora_targets == "all-linear" else config.lora_targets.split(",")
        peft_config = LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha, target_modules=targets,
                                 lora_dropout=0.0, task_type="CAUSAL_LM")
    checkpoints = out / "checkpoints"
    args = SFTConfig(
        output_dir=str(checkpoints),
        num_train_epochs=config.epochs,
        max_steps=config.max_steps,
        learning_rate=config.lr,
        lr_scheduler_type="cosine",
        warmup_steps=config.warmup,  # a float < 1 is a ratio of the total steps
        per_device_train_batch_size=config.batch_size,
        gradient_accumulation_steps=config.grad_accum,
        max_length=config.max_length,
        assistant_only_loss=True,
        remove_unused_columns=False,  # keep `weight` for the collator
        **device_args(),
        seed=config.seed,
        data_seed=config.seed,
        save_steps=config.save_steps,
        save_total_limit=2,
        logging_steps=config.logging_steps,
        report_to="none",
        dataset_num_proc=None,
        disable_tqdm=False,
    )
    trainer = _weighted_trainer_class()(
        model=model, args=args, train_dataset=dataset, processing_class=tokenizer,
        data_collator=WeightedCollator(tokenizer.pad_token_id), peft_config=peft_config, callbacks=callbacks,
    )
    resume_from = _last_checkpoint(checkpoints) if config.resume else None
    trainer.train(resume_from_checkpoint=resume_from)
    _save_final(trainer, tokenizer, out, base, {**done, "steps": trainer.state.global_step})
    return out


def _save_final(trainer, tokenizer, out: Path, base: Path, note: dict) -> None:
    """Write the model (merged, adapter, or plain) + tokenizer via a partial dir, then the note last."""
    model = trainer.model
    lora, merge = note["config"]["lora_r"] > 0, note["config"]["merge_lora"]
    adapter = lora and not merge
    if lora and merge:
        model = model.merge_and_unload()
    (out / STUDENT_NOTE).unlink(missing_ok=True)  # unfinished until the note is back
    for stale in ("adapter_config.json", "adapter_model.safetensors", "model.safetensors"):
        (out / stale).unlink(missing_ok=True)
    with staged_dir(out, merge=True) as staged:  # checkpoints/ stays beside the model
        model.save_pretrained(staged)
        tokenizer.save_pretrained(staged)
    atomic_write_json(out / STUDENT_NOTE, {"base": str(Path(base).resolve()), "adapter": adapter, **note})
