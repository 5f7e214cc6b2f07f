"""Collapse guards: log the training curves to `rl_log.jsonl` and stop RL before it degenerates.

Label-free RL can reward itself into a corner: the policy learns to give one confident answer to
every user, all rollouts agree, and the vote happily confirms it. Signs: within-group agreement
near 1 while the label entropy across users falls. The monitor stops on that pattern. If a small
gold dev slice is given (evaluation only; every log row then says `uses_gold_dev: true`), it also
stops when dev F1 keeps falling.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from pathlib import Path

from transformers import TrainerCallback

DevEval = Callable[[object, object], dict[str, float]]  # (model, tokenizer) -> {"dev_f1": ..., ...}


def collapse_reason(agreements: Sequence[float], entropies: Sequence[float], agreement_threshold: float, entropy_drop: float) -> str | None:
    """'collapse' when the latest agreement >= threshold and entropy fell by `entropy_drop` from its first value."""
    if not agreements or not entropies:
        return None
    first, last = entropies[0], entropies[-1]
    if agreements[-1] >= agreement_threshold and first > 0 and last <= first * (1 - entropy_drop):
        return f"collapse: agreement {agreements[-1]:.3f} >= {agreement_threshold}, entropy {first:.3f} -> {last:.3f}"
    return None


def dev_stop_reason(dev_f1: Sequence[float], patience: int, tolerance: float) -> str | None:
    """'dev F1 falling' when the last `patience` evaluations all lie below best - tolerance."""
    if patience <= 0 or len(dev_f1) <= patience:
        return None
    best = max(dev_f1[:-patience])
    recent = dev_f1[-patience:]
    if all(f < best - tolerance for f in recent):
        return f"dev F1 falling: best {best:.3f}, last {patience}: {', '.join(f'{f:.3f}' for f in recent)}"
    return None


class RLMonitor(TrainerCallback):
    """Writes one JSON line per log step; requests a stop on collapse or falling dev F1."""

    def __init__(
        self,
        log_path: str | Path,
        *,
        collapse_agreement: float,
        collapse_entropy_drop: float,
        dev_eval: DevEval | None = None,
        dev_eval_steps: int = 0,
        dev_patience: int = 2,
        dev_tolerance: float = 0.02,
        append: bool = False,
    ):
        self.log_path = Path(log_path)
        self.collapse_agreement, self.collapse_entropy_drop = collapse_agreement, collapse_entropy_drop
        self.dev_eval, self.dev_eval_steps = dev_eval, dev_eval_steps
        self.dev_patience, self.dev_tolerance = dev_patience, dev_tolerance
        self.trainer = None  # set after the trainer exists: counters live there
        self.agreements: list[float] = []
        self.entropies: list[float] = []
        self.dev_f1: list[float] = []
        self.pending_dev: dict[str, float] = {}
        self.stop_reason: str | None = None
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        if not append:
            self.log_path.write_text("", encoding="utf-8")

    @property
    def uses_gold_dev(self) -> bool:
        return self.dev_eval is not None and self.dev_eval_steps > 0

    def on_step_end(self, args, state, control, model=None, processing_class=None, **kwargs):
        if not self.uses_gold_dev or state.global_step % self.dev_eval_steps:
            return control
        self.pending_dev = {k: float(v) for k, v in self.dev_eval(model, processing_class).items()}
        self.dev_f1.append(self.pending_dev["dev_f1"])
        reason = dev_stop_reason(self.dev_f1, self.dev_patience, self.dev_tolerance)
        if reason and not self.stop_reason:
            self.stop_reason = reason
            control.should_training_stop = True
        return control

    def on_log(self, args, state, control, logs=None, **kwargs):
        logs = dict(logs or {})
        if "rl/agreement" in logs and logs["rl/agreement"] is not None:
            self.agreements.append(logs["rl/agreement"])
            self.entropies.append(logs["rl/entropy"])
            reason = collapse_reason(self.agreements, self.entropies, self.collapse_agreement, self.collapse_entropy_drop)
            if reason and not self.stop_reason:
                self.stop_reason = reason
                control.should_training_stop = True
        row = {"step": state.global_step, "epoch": state.epoch, **logs, **self.pending_dev, "uses_gold_dev": self.uses_gold_dev}
        self.pending_dev = {}
        if self.trainer is not None:
            row["rollouts_generated"] = self.trainer.rollouts_generated
            row.update({f"groups/{k}": v for k, v in sorted(self.trainer.group_counts.items())})
        if self.stop_reason:
            row["stop_reason"] = self.stop_reason
        with open(self.log_path, "a", encoding="utf-8") as out:
            out.write(json.dumps({k: _jsonable(v) for k, v in row.items()}) + "\n")
        return control


def _jsonable(value):
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None
    return value
