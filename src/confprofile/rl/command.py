"""Stage 2 of an LLM student: `train_rl` (TRL GRPO; the `confprofile rl` verb is `cli/rl.py`).

Layout of `out/`: the RL-trained student (HF files + tokenizer), `checkpoints/` (TRL checkpoints,
resume picks the newest), `rl_log.jsonl` (training curves, one row per log step) and
`rl_summary.json` (config, filter counts, rollouts generated, wall time, stop reason).
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Sequence
from pathlib import Path


from confprofile.errors import InputError
from confprofile.files import atomic_write_json, staged_dir
from confprofile.rl.config import RLConfig
from confprofile.rl.filters import quantile_thresholds, select_users
from confprofile.rl.voting import summarize_pseudo

def _resume_counters(log_path: Path) -> dict:
    """The last log row of an interrupted run, to carry its counters over on resume."""
    if not log_path.exists():
        return {}
    lines = [line for line in log_path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return json.loads(lines[-1]) if lines else {}


def _save_student(trainer, tokenizer, out: Path, config: RLConfig) -> None:
    """The final policy (LoRA merged) + tokenizer into `out`, via a partial dir so a crash leaves no half model."""
    final = trainer.model.merge_and_unload() if config.lora_r > 0 else trainer.model
    with staged_dir(out, merge=True) as staged:  # checkpoints/ and the logs stay beside the model
        final.save_pretrained(str(staged))
        tokenizer.save_pretrained(str(staged))


def _lora(config: RLConfig):
    if config.lora_r <= 0:
        return None
    from peft import LoraConfig

    return LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha, target_modules="all-linear", lora_dropout=0.0, task_type="CAUSAL_LM")


def train_rl(
    model: str | Path,
    users: Sequence,
    out: str | Path,
    config: RLConfig | None = None,
    pseudo=None,
    dev_eval=None,
    resume: bool = False,
    keep_checkpoints: bool = True,
) -> dict:
    """Run confidence-guided GRPO on `model` over `users`; write the RL student to `out`; return the summary.

    `pseudo` (a pseudo_labels DataFrame) enables difficulty filtering and the vote prior. `dev_eval`
    (model, tokenizer) -> {"dev_f1", ...} is the optional gold dev monitor (evaluation only).
    """
    from transformers.trainer_utils import get_last_checkpoint

    from confprofile.models import load_student
    from confprofile.rl.guards import RLMonitor
    from confprofile.rl.trainer import GroupVoteGRPOTrainer, grpo_args, prompt_dataset
    from confprofile.taxonomy import Taxonomy

    config = config or RLConfig()
    out = Path(out)
    taxonomy = Taxonomy.load(config.taxonomy)
    mean_conf, priors = summarize_pseudo(pseudo) if pseudo is not None else ({}, {})
    skip_above, skip_below = (config.skip_above, config.skip_below) if pseudo is not None else (None, None)
    if config.threshold_mode == "quantile":
        skip_above, skip_below = quantile_thresholds(mean_conf, skip_above, skip_below)
    selection = select_users([str(u.user_id) for u in users], mean_conf, skip_above, skip_below)
    if not selection.kept:
        raise InputError(None, None, "skip_above/skip_below", f"the difficulty filter kept no users ({selection.counts()}); loosen the thresholds")
    kept = set(selection.kept)
    start = time.perf_counter()

    policy, tokenizer = load_student(model)
    dataset = prompt_dataset([u for u in users if str(u.user_id) in kept], taxonomy, config.max_user_tokens)
    checkpoints = out / "checkpoints"
    last = get_last_checkpoint(str(checkpoints)) if resume and checkpoints.is_dir() else None
    previous = _resume_counters(out / "rl_log.jsonl") if last else {}
    monitor = RLMonitor(
        out / "rl_log.jsonl",
        collapse_agreement=config.collapse_agreement,
        collapse_entropy_drop=config.collapse_entropy_drop,
        dev_eval=dev_eval,
        dev_eval_steps=config.dev_eval_steps,
        dev_patience=config.dev_patience,
        dev_tolerance=config.dev_tolerance,
        append=last is not None,
    )
    trainer = GroupVoteGRPOTrainer(
        model=policy,
        args=grpo_args(config, str(checkpoints)),
        train_dataset=dataset,
        processing_class=tokenizer,
        taxonomy=taxonomy,
        scoring=config.scoring(),
        priors=priors if config.prior_weight > 0 else None,
        callbacks=[monitor],
        peft_config=_lora(config),
    )
    monitor.trainer = trainer
    trainer.rollouts_generated = int(previous.get("rollouts_generated", 0))
    for key, value in previous.items():
        if key.startswith("groups/"):
            trainer.group_counts[key.removeprefix("groups/")] = int(value)
    trainer.train(resume_from_checkpoint=last)

    summary = {
        "model": str(model),
        "users": len(users),
        "selection": selection.counts(),
        "groups": dict(trainer.group_counts),
        "rollouts_generated": trainer.rollouts_generated,
        "steps": trainer.state.global_step,
        "wall_seconds": round(time.perf_counter() - start, 2),
        "stop_reason": monitor.stop_reason,
        "uses_gold_dev": monitor.uses_gold_dev,
        "config": config.to_dict(),
    }
    if trainer.accelerator.is_main_process:
        _save_student(trainer, tokenizer, out, config)
        if not keep_checkpoints:
            shutil.rmtree(checkpoints, ignore_errors=True)
        atomic_write_json(out / "rl_summary.json", summary)
    return summary


