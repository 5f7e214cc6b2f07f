"""The verbs that build, train and use a student through the `Student` interface: `confprofile sft`
(sft.jsonl for an LLM student), `confprofile distill` (an LLM student on sft.jsonl, or `--student
encoder` on users + pseudo-labels) and `confprofile predict` (profiles of a users file of any size,
streamed in chunks). The engines they drive live below them: distill.py (TRL SFT), predict.py
(batched generation), student/ (the encoder student).
"""

from __future__ import annotations

from pathlib import Path

import typer

from confprofile.distill import WEIGHT_FNS, DistillConfig, build_sft_records, load_sft, train_student
from confprofile.errors import InputError
from confprofile.files import atomic_write_jsonl, read_parquet_frame
from confprofile.prompts import STUDENT_MAX_USER_TOKENS
from confprofile.student.base import open_student
from confprofile.student.encoder import EncoderStudent
from confprofile.student.targets import load_pseudo
from confprofile.taxonomy import Taxonomy


def distill_command(
    sft: Path | None = typer.Option(None, help="sft.jsonl from `confprofile sft` (LLM students)."),
    out: Path = typer.Option(..., help="Student directory (HF checkpoint or LoRA adapter; checkpoints under OUT/checkpoints)."),
    student: str = typer.Option("tiny", help="'tiny', 'smollm2', or a local HF model directory."),
    epochs: float = typer.Option(5.0, help="Passes over the records."),
    lr: float | None = typer.Option(None, help="Peak learning rate (default: 1e-3 tiny, 2e-4 LoRA, 2e-5 full)."),
    batch_size: int = typer.Option(8, help="Sequences per step."),
    grad_accum: int = typer.Option(1, help="Gradient accumulation steps."),
    lora_r: int | None = typer.Option(None, help="LoRA rank (default: 0 for tiny, 8 otherwise; 0 = full fine-tune)."),
    lora_alpha: int = typer.Option(16, help="LoRA alpha."),
    merge_lora: bool = typer.Option(True, help="Merge LoRA on save, or keep the adapter."),
    max_length: int = typer.Option(2048, help="Longest tokenised record."),
    save_steps: int = typer.Option(200, help="Checkpoint every N steps."),
    resume: bool = typer.Option(True, help="Resume from the last checkpoint under OUT/checkpoints."),
    seed: int = typer.Option(0, help="Random seed."),
    users: Path | None = typer.Option(None, help="Encoder student: the pseudo-labelled users (users.jsonl / CSV / Parquet)."),
    pseudo_labels: Path | None = typer.Option(None, "--pseudo-labels", help="Encoder student: pseudo_labels.parquet."),
    unlabeled: Path | None = typer.Option(None, help="Encoder student: more users (no labels) for its lexical vocabulary."),
    taxonomy: str = typer.Option("profilebench", help="Encoder student: built-in taxonomy name or YAML path."),
) -> None:
    """Confidence-weighted SFT of a student: an LLM on sft.jsonl, or `--student encoder` on users + pseudo-labels."""
    if student == "encoder":
        from confprofile.data import load_users

        if users is None or pseudo_labels is None:
            raise InputError(None, None, "--users/--pseudo-labels", "the encoder student learns from users and their pseudo-labels")
        train = load_users(users)
        model = EncoderStudent(Taxonomy.load(taxonomy), cache_path=out / "embeddings.npz")
        model.fit(train, load_pseudo(pseudo_labels), vocabulary_users=train + (load_users(unlabeled) if unlabeled else []))
        model.save(out)
        typer.echo(f"student -> {out}")
        return
    if sft is None:
        raise InputError(None, None, "--sft", "an LLM student learns from sft.jsonl (see `confprofile sft`)")
    tiny = student.lower() == "tiny"
    lora_r = (0 if tiny else 8) if lora_r is None else lora_r
    lr = lr if lr is not None else (1e-3 if tiny else 2e-4 if lora_r else 2e-5)
    config = DistillConfig(student=student, epochs=epochs, lr=lr, batch_size=batch_size, grad_accum=grad_accum,
                           lora_r=lora_r, lora_alpha=lora_alpha, merge_lora=merge_lora, max_length=max_length,
                           save_steps=save_steps, resume=resume, seed=seed)
    train_student(load_sft(sft), out, config)
    typer.echo(f"student -> {out}")


def predict_command(
    model: Path = typer.Option(..., help="Student directory from `confprofile distill` or `rl` (encoder student, full LLM or LoRA adapter)."),
    users: list[Path] = typer.Option(..., help="users.jsonl (or CSV/Parquet) to profile; repeat for several files."),
    out: Path = typer.Option(..., help="Where to write the profiles (Parquet; a .jsonl twin with one user a line beside it)."),
    taxonomy: str = typer.Option("profilebench", help="Built-in taxonomy name or a taxonomy YAML path (LLM students)."),
    chunk_users: int = typer.Option(10000, min=1, help="Users per chunk: memory stays flat, and a rerun after an interrupt resumes at the first unfinished chunk."),
    engine: str = typer.Option("local", help="local, or ray (Ray Data map_batches over a cluster; needs the `ray` extra)."),
    batch_size: int = typer.Option(16, help="Users per generation batch (LLM students)."),
    samples: int = typer.Option(1, help="1 = greedy; k > 1 = k samples with confidence-weighted self-consistency (LLM students)."),
    temperature: float = typer.Option(0.7, help="Sampling temperature when samples > 1."),
    max_new_tokens: int = typer.Option(256, help="Longest answer in tokens."),
    max_user_tokens: int = typer.Option(STUDENT_MAX_USER_TOKENS, help="Token budget for the rendered user data (as in `confprofile sft`)."),
) -> None:
    """Profile the users of any size of file with a distilled student, streamed in chunks, resumably."""
    from confprofile.profiles import ProfileConfig, profile_users

    options = {"max_user_tokens": max_user_tokens, "predict": {"batch_size": batch_size, "samples": samples,
               "temperature": temperature, "max_new_tokens": max_new_tokens}}
    student = open_student(model, taxonomy=Taxonomy.load(taxonomy), options=options)  # encoders carry their own taxonomy
    config = ProfileConfig.from_dict({"chunk_users": chunk_users, "engine": engine})
    counts = profile_users(student, users, out, config, stage=model.name, model_dir=model)
    typer.echo(f"{counts['users']} users -> {out} and {Path(counts['profiles_jsonl']).name}")


def sft_command(
    users: Path = typer.Option(..., help="users.jsonl (or CSV/Parquet) of the users to distil on."),
    pseudo_labels: Path = typer.Option(..., help="pseudo_labels.parquet from `confprofile aggregate`."),
    out: Path = typer.Option(..., help="Where to write sft.jsonl."),
    taxonomy: str = typer.Option("profilebench", help="Built-in taxonomy name or a taxonomy YAML path."),
    weight_fn: str = typer.Option("mean_confidence", help=f"Record weight from the kept confidences: {', '.join(WEIGHT_FNS.names())}."),
    not_kept: str = typer.Option("mask", help="Not-kept pseudo-labels: 'mask' (target unknown), 'drop' (drop the record), 'keep' (keep label + confidence)."),
    rationale: bool = typer.Option(True, "--rationale/--no-rationale", help="Put a short rationale line before the JSON profile (off for the tiny student)."),
    max_user_tokens: int = typer.Option(STUDENT_MAX_USER_TOKENS, help="Token budget for the rendered user data."),
) -> None:
    """Build sft.jsonl (chat messages + weight) from users and their pseudo-labels."""
    from confprofile.data import load_users

    table = read_parquet_frame(pseudo_labels, {"user_id", "dimension", "label", "confidence", "kept"}, layout="pseudo_labels.parquet")
    records = build_sft_records(
        load_users(users), table, Taxonomy.load(taxonomy),
        weight_fn=weight_fn, not_kept=not_kept, rationale=rationale, max_user_tokens=max_user_tokens,
    )
    if not records:
        raise InputError(pseudo_labels, None, "kept", "no user in --users has a kept pseudo-label")
    atomic_write_jsonl(out, records)
    typer.echo(f"{len(records)} SFT records -> {out}")
