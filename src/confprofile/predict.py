"""Batched student predictions: users -> predictions.parquet (user_id, dimension, label, confidence, rationale, model).

Prompts are sorted by length and generated in left-padded batches (little padding, one forward per
token for the whole batch). With `samples > 1` each user gets k sampled answers, combined per dimension
by confidence-weighted self-consistency. Output that cannot be parsed becomes abstentions
(`unknown`, confidence 0): a bad generation never stops a run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from confprofile.models import load_student
from confprofile.prompts import STUDENT_MAX_USER_TOKENS
from confprofile.rl.voting import vote_dimension, vote_weight
from confprofile.taxonomy import UNKNOWN, Taxonomy


def generate_texts(
    model,
    tokenizer,
    message_lists: Sequence[list[dict]],
    *,
    batch_size: int = 16,
    samples: int = 1,
    temperature: float = 0.7,
    max_new_tokens: int = 256,
    chat_template_kwargs: dict | None = None,
    progress: bool = True,
    seed: int = 0,
) -> list[str]:
    """Completions for chat prompts, `samples` per prompt, prompt i's at [i*samples, (i+1)*samples).

    Greedy when samples == 1, else sampled at `temperature`. Batches are length-sorted and left-padded.
    """
    import torch
    from tqdm.auto import tqdm

    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    prompts = [
        tokenizer.apply_chat_template(m, tokenize=False, add_generation_prompt=True, **(chat_template_kwargs or {}))
        for m in message_lists
    ]
    lengths = [len(tokenizer(p, add_special_tokens=False)["input_ids"]) for p in prompts]
    order = sorted(range(len(prompts)), key=lambda i: -lengths[i])
    results: list[str] = [""] * (len(prompts) * samples)
    sampling = samples > 1
    torch.manual_seed(seed)
    device = next(model.parameters()).device
    bar = tqdm(total=len(prompts), desc="generating", unit="user", disable=not progress)
    for start in range(0, len(order), batch_size):
        chunk = order[start:start + batch_size]
        enc = tokenizer([prompts[i] for i in chunk], return_tensors="pt", padding=True, add_special_tokens=False).to(device)
        with torch.no_grad():
            out = model.generate(
                **enc, max_new_tokens=max_new_tokens, do_sample=sampling, num_return_sequences=samples,
                temperature=temperature if sampling else None, top_p=None, top_k=None,
                pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
            )
        texts = tokenizer.batch_decode(out[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)
        for j, text in enumerate(texts):  # generate returns a prompt's samples back to back
            results[chunk[j // samples] * samples + j % samples] = text
        bar.update(len(chunk))
    bar.close()
    return results


def self_consistency(answers: Sequence) -> tuple[str, float, str]:
    """(label, confidence, rationale) from k ParsedAnswers of one dimension: the confidence-weighted
    vote of `rl.voting` (the same vote stage 2 trains towards, with its floor and tie rule).

    Its confidence is the winner's summed confidence divided by k (k agreeing answers at 0.7 give 0.7,
    a 2-of-4 split gives less). Unparseable samples vote for nothing; if `unknown` wins, confidence 0.
    """
    vote = vote_dimension(answers)
    if not vote.is_label:
        return UNKNOWN, 0.0, ""
    mass = sum(vote_weight(a) for a in answers if a.label is not None)
    rationale = next((a.rationale or "" for a in answers if a.label == vote.label), "")
    return vote.label, min(1.0, vote.strength * mass / len(answers)), rationale


@dataclass
class GenerationConfig:
    """How an LLM student generates its answers (`predict`): the `predict` part of its config."""

    batch_size: int = field(default=16, metadata={"help": "Users per generation batch."})
    samples: int = field(default=1, metadata={"help": "1 = greedy; k > 1 = k samples with confidence-weighted self-consistency."})
    temperature: float = field(default=0.7, metadata={"help": "Sampling temperature when samples > 1."})
    max_new_tokens: int = field(default=256, metadata={"help": "Longest answer in tokens."})
    progress: bool = field(default=True, metadata={"help": "Show a progress bar (or log lines) while generating."})


def predict(
    model_dir: str | Path,
    users,
    taxonomy: Taxonomy,
    *,
    batch_size: int = GenerationConfig.batch_size,
    samples: int = GenerationConfig.samples,
    temperature: float = GenerationConfig.temperature,
    max_new_tokens: int = GenerationConfig.max_new_tokens,
    max_user_tokens: int = STUDENT_MAX_USER_TOKENS,
    model_name: str | None = None,
    progress: bool = GenerationConfig.progress,
    seed: int = 0,
):
    """A predictions DataFrame: one row per user x dimension (abstentions where output was unparseable)."""
    import pandas as pd

    from confprofile.prompts import parse_answer, student_messages
    from confprofile.student.base import PREDICTION_COLUMNS  # here: the student package's LLM adapter imports this module

    model, tokenizer = load_student(model_dir)
    messages = [student_messages(u, taxonomy, max_user_tokens) for u in users]
    texts = generate_texts(model, tokenizer, messages, batch_size=batch_size, samples=samples, temperature=temperature,
                           max_new_tokens=max_new_tokens, progress=progress, seed=seed)
    name = model_name or Path(model_dir).name
    rows = []
    for i, user in enumerate(users):
        parsed = [parse_answer(text, taxonomy) for text in texts[i * samples:(i + 1) * samples]]
        for dim in taxonomy.dimension_names:
            label, confidence, rationale = self_consistency([p[dim] for p in parsed])
            rows.append({"user_id": str(user.user_id), "dimension": dim, "label": label,
                         "confidence": float(confidence), "rationale": rationale, "model": name})
    return pd.DataFrame(rows, columns=PREDICTION_COLUMNS)
