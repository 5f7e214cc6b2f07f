"""`RLConfig`: every knob of stage 2 with its help text, TRL style (a dataclass with metadata)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

from confprofile.prompts import STUDENT_MAX_USER_TOKENS
from confprofile.rl.group import GroupScoring
from confprofile.rl.rewards import RewardParams
from confprofile.settings import from_section


# Stage-2 settings of the encoder student where a config leaves them unset (RLConfig's own defaults
# suit LLM students). Chosen on the synthetic benchmark's unlabeled users (their regenerated gold,
# 3 seeds; docs/students.md): SGD at lr 0.5 held near its start by KL (beta 0.5), the last epoch
# kept. Without the KL term, lr 1-3 lost up to .055 F1 in the first epochs; fewer than 8 views per
# user left the vote too noisy. The label-drift guard is off: with the KL term it only cut good runs
# short, and the collapse guard still stops a run that collapses.
ENCODER_DEFAULTS = {"learning_rate": 0.5, "beta": 0.5, "num_train_epochs": 8.0, "num_generations": 8, "users_per_step": 128,
                    "prior_weight": 0.5, "max_label_drift": 1.0}


def _f(default, help: str):
    if isinstance(default, (dict, list)):
        return field(default_factory=lambda: type(default)(default), metadata={"help": help})
    return field(default=default, metadata={"help": help})


@dataclass
class RLConfig:
    # ---- data and prompt
    taxonomy: str = _f("profilebench", "Taxonomy YAML path or built-in name.")
    max_user_tokens: int = _f(STUDENT_MAX_USER_TOKENS, "Token budget of the rendered user data in the prompt.")
    # ---- rollouts and optimisation
    num_generations: int = _f(4, "Rollouts per user (the group G); at least 2.")
    users_per_step: int = _f(2, "Users (groups) per optimisation step on each process.")
    num_train_epochs: float = _f(1.0, "Passes over the kept users (the rollout budget).")
    max_steps: int = _f(-1, "Stop after this many steps; -1 = follow num_train_epochs.")
    learning_rate: float = _f(2e-5, "Peak learning rate (cosine schedule, 5% warm-up).")
    temperature: float = _f(1.0, "Sampling temperature of the rollouts.")
    max_completion_length: int = _f(256, "Maximum new tokens per rollout.")
    beta: float = _f(0.0, "KL coefficient against the SFT reference; 0 loads no reference model.")
    lora_r: int = _f(0, "LoRA rank (0 = train all weights); LoRA is merged into the saved RL student.")
    lora_alpha: int = _f(16, "LoRA alpha.")
    seed: int = _f(0, "Random seed (sampling order and rollouts).")
    input_dropout: float = _f(0.2, "Encoder student: share of a user's feature values dropped in each rollout (the input noise).")
    class_balance: bool = _f(True, "Encoder student: weigh each group's advantage so the quasi labels keep the SFT student's label distribution over the pool.")
    calibration_share: float = _f(0.2, "Encoder student: share of pseudo-labelled users kept out of training to refit the confidence calibration.")
    # ---- quasi ground truth and rewards
    prior_weight: float = _f(0.0, "Weight of the stage-1 pseudo-label as a prior in the group vote (0 = pure self-consistency).")
    reward_weights: dict = _f(
        {"agreement": 1.0, "format": 0.2, "calibration": 0.2},
        "Reward terms (names in rl.rewards.REWARD_TERMS) and their weights.",
    )
    abstain_score: float = _f(0.25, "Agreement score of `unknown` against a real quasi label (agree = 1, wrong = wrong_score).")
    wrong_score: float = _f(0.0, "Agreement score of a different or unparseable label.")
    # ---- difficulty filtering
    skip_above: float | None = _f(0.9, "Skip users whose mean pseudo-label confidence is above this (too easy); None = off.")
    skip_below: float | None = _f(0.35, "Skip users whose mean pseudo-label confidence is below this (hopeless); None = off.")
    threshold_mode: str = _f("absolute", "`absolute`: skip_above/skip_below are confidences; `quantile`: they are quantiles of the users' mean confidence.")
    min_group_agreement: float = _f(0.0, "Drop groups whose mean vote strength is below this (unreliable quasi labels).")
    # ---- collapse guards
    collapse_agreement: float = _f(0.98, "Stop when mean vote strength reaches this ...")
    collapse_entropy_drop: float = _f(0.5, "... and label entropy fell by this fraction from its first value.")
    max_label_drift: float = _f(0.2, "Encoder student: stop (and restore the last epoch's weights) when the rollouts' label distribution is this far (total variation) from the SFT student's.")
    align_label_shares: bool = _f(True, "Encoder student: after stage 2, shift each head's label biases until its answers over the pool have the pseudo-labels' label shares, at the start of every epoch and at the end (student.label_shares): stage 2 re-assigns users, the aggregator keeps the label distribution. Off: the demo's stage 2 answered one gender for 95% of its users.")
    select_checkpoint: bool = _f(False, "Encoder student: keep the epoch that agrees best with the held-out pseudo-labels instead of the last. Off: agreement fell while accuracy rose once the student corrected wrong pseudo-labels (docs/students.md).")
    dev_eval_steps: int = _f(0, "Evaluate the gold dev slice every N steps (0 = off; evaluation only).")
    dev_patience: int = _f(2, "Stop after this many dev evaluations below the best dev F1 - dev_tolerance.")
    dev_tolerance: float = _f(0.02, "Dev F1 drop tolerated before counting towards patience.")
    # ---- run control
    logging_steps: int = _f(1, "Log (and write rl_log.jsonl) every N steps.")
    save_steps: int = _f(50, "Checkpoint every N steps (resume picks the last one).")
    use_vllm: bool = _f(False, "Generate with vLLM (GPU only, extra `vllm`); colocated in the trainer's process.")
    vllm_mode: str = _f("colocate", "vLLM mode: `colocate` or `server`.")
    vllm_gpu_memory_utilization: float = _f(0.3, "GPU memory share for colocated vLLM.")

    def __post_init__(self) -> None:
        if self.num_generations < 2:
            raise ValueError("num_generations must be at least 2 (GRPO compares rollouts within a group)")
        if self.threshold_mode not in {"absolute", "quantile"}:
            raise ValueError(f"threshold_mode must be 'absolute' or 'quantile', got {self.threshold_mode!r}")
        self.scoring().terms  # validate reward term names early

    def scoring(self) -> GroupScoring:
        return GroupScoring(
            weights=dict(self.reward_weights),
            params=RewardParams(self.abstain_score, self.wrong_score),
            prior_weight=self.prior_weight,
            min_group_agreement=self.min_group_agreement,
        )

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "RLConfig":
        return from_section(cls, values, "rl")

    @classmethod
    def help(cls) -> dict[str, str]:
        return {f.name: f.metadata.get("help", "") for f in fields(cls)}


def stage2_config(family: str, values: dict, max_user_tokens: int | None = None) -> RLConfig:
    """Stage 2's config for a student family: the family's defaults (`ENCODER_DEFAULTS` for the encoder
    student; an LLM student's prompt budget), then `values`. One function for the verb and the pipeline,
    so both start from the same defaults."""
    if family == "encoder":
        defaults = dict(ENCODER_DEFAULTS)
    else:
        defaults = {} if max_user_tokens is None else {"max_user_tokens": max_user_tokens}
    return RLConfig.from_dict({**defaults, **values})
