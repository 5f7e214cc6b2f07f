"""TRL adapter: a GRPOTrainer whose rewards come from a vote over each whole group.

TRL calls reward functions on each process's local slice of the generation batch, and a user's
`num_generations` rollouts may straddle two processes. So this trainer never votes inside a reward
function: it overrides `_calculate_rewards`, gathers every process's completion texts and user ids,
scores the full batch group by group (`group.score_batch`), and returns the already-gathered reward
matrix that TRL expects (TRL then computes group advantages and takes this process's slice).

Imports trl at module level: import this module lazily (the CLI does).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence

import torch
from accelerate.utils import gather_object
from trl import GRPOConfig, GRPOTrainer

from confprofile.models import device_args
from confprofile.rl.config import RLConfig
from confprofile.rl.group import GroupScoring, score_batch
from confprofile.rl.voting import Prior
from confprofile.taxonomy import Taxonomy


class GroupTerm:
    """A named reward column. TRL needs one callable per column; the values come from the group vote.

    Calling it directly would score a process-local slice, which is exactly what must not happen,
    so it refuses.
    """

    def __init__(self, name: str):
        self.__name__ = name

    def __call__(self, *args, **kwargs):
        raise RuntimeError(f"reward term {self.__name__!r} is computed over whole groups by GroupVoteGRPOTrainer")


def completion_text(completion) -> str:
    """The text of a completion: a plain string, or the content of a conversational message list."""
    if isinstance(completion, str):
        return completion
    return "".join(str(m.get("content", "")) for m in completion if isinstance(m, dict))


class GroupVoteGRPOTrainer(GRPOTrainer):
    """GRPO with group-vote rewards, post-rollout group filtering and counters for the monitors."""

    def __init__(self, *args, taxonomy: Taxonomy, scoring: GroupScoring, priors: Mapping[str, Prior] | None = None, **kwargs):
        kwargs.setdefault("reward_funcs", [GroupTerm(t) for t in scoring.terms])
        super().__init__(*args, **kwargs)
        self.taxonomy, self.scoring, self.priors = taxonomy, scoring, dict(priors or {})
        self.rollouts_generated = 0  # every completion generated, all processes
        self.group_counts: Counter[str] = Counter()  # groups seen / kept / dropped by reason
        self.last_stats: dict[str, float] = {}

    def _gather_objects(self, values: list) -> list:
        """All processes' values in process order (the global batch order TRL uses for groups)."""
        return gather_object(values)

    def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list):
        mode = "train" if self.model.training else "eval"
        group_size = self.num_generations if mode == "train" else self.num_generations_eval
        texts = self._gather_objects([completion_text(c) for c in completions])
        user_ids = self._gather_objects([str(x["user_id"]) for x in inputs])
        scores = score_batch(texts, user_ids, group_size, self.taxonomy, self.scoring, self.priors)
        if mode == "train":
            self.rollouts_generated += len(texts)
            self.group_counts["groups"] += len(scores.drop_reasons)
            for reason in scores.drop_reasons:
                self.group_counts[f"dropped_{reason}" if reason else "kept"] += 1
        self.last_stats = scores.stats
        for name, value in scores.stats.items():
            self._metrics[mode][f"rl/{name}"].append(value)
        return torch.tensor(scores.rewards, dtype=torch.float32, device=self.accelerator.device)


def prompt_dataset(users: Sequence, taxonomy: Taxonomy, max_user_tokens: int):
    """A `datasets.Dataset` of conversational prompts (system + user) with a `user_id` column.

    Rendered exactly as `distill.build_sft_records` and `predict.predict` do (same variant, same
    budget and token estimate), so RL trains on the prompts the student saw in SFT and will see later.
    """
    from datasets import Dataset

    from confprofile.prompts import student_messages

    rows = [{"prompt": student_messages(u, taxonomy, max_user_tokens), "user_id": str(u.user_id)} for u in users]
    return Dataset.from_list(rows)


def grpo_args(config: RLConfig, output_dir: str, n_processes: int = 1) -> GRPOConfig:
    """TRL arguments for a config; the machine-dependent ones from `models.device_args`."""
    return GRPOConfig(
        output_dir=output_dir,
        num_generations=config.num_generations,
        per_device_train_batch_size=config.users_per_step * config.num_generations,
        gradient_accumulation_steps=1,
        num_train_epochs=config.num_train_epochs,
        max_steps=config.max_steps,
        learning_rate=config.learning_rate,
        lr_scheduler_type="cosine",
        warmup_steps=0.05,
        temperature=config.temperature,
        max_completion_length=config.max_completion_length,
        beta=config.beta,
        reward_weights=[config.reward_weights[t] for t in config.scoring().terms],
        seed=config.seed,
        data_seed=config.seed,
        logging_steps=config.logging_steps,
        save_strategy="steps",
        save_steps=config.save_steps,
        save_total_limit=2,
        report_to=[],
        **device_args(),
        use_vllm=config.use_vllm,
        vllm_mode=config.vllm_mode,
        vllm_gpu_memory_utilization=config.vllm_gpu_memory_utilization,
        remove_unused_columns=False,
        disable_tqdm=False,
    )
