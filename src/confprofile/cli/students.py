"""The verbs that build, train and use a student through the `Student` interface: `confprofile sft`
(sft.jsonl for an LLM student), `confprofile distill` (an LLM student on sft.jsonl, or `--student
encoder` on users + pseudo-labels) and `confprofile predict` (profiles of a users file of any size,
streamed in chunks). The engines they drive live below them: distill.py (TRL SFT), predict.py
(batched generation), student/ (the encoder student).
"""

from __future__ import annotations

from pathlib import Path

import typer

from confprofile.distill import WEIGHT_FNS, DistillConfig, SFTRecordConfig, build_sft_records, load_sft, train_student
from confprofile.errors import InputError
from confprofile.files import atomic_write_jsonl, read_parquet_frame
from confprofile.predict import GenerationConfig
from confprofile.profiles import ProfileConfig
from confprofile.prompts import STUDENT_MAX_USER_TOKENS
from confprofile.student.base import open_student
from confprofile.student.encoder import EncoderStudent
from confprofile.student.llm import LLMStudentConfig
from confprofile.student.targets import load_pseudo
from confprofile.taxonomy import Taxonomy


def distill_command(
    sft: Path | None = typer.Option(None, help="sft.jsonl from `confprofile sft` (LLM students)."),
    out: Path = typer.Option(..., help="Student directory (HF checkpoint or LoRA adapter; checkpoints under OUT/checkpoints)."),
    student: str = typer.Option(DistillConfig.student, help="'tiny', 'smollm2', or a local HF model directory."),
    epochs: float = typer.Option(DistillConfig.epochs, help="Passes over the records."),
    lr: float | None = typer.Option(DistillConfig.lr, help="Peak learning rate (default: 1e-3 tiny, 2e-4 LoRA, 2e-5 full)."),
    batch_size: int = typer.Option(DistillConfig.batch_size, help="Sequences per step."),
    grad_accum: int = typer.Option(DistillConfig.grad_accum, help="Gradient accumulation steps."),
    lora_r: int | None = typer.Option(DistillConfig.lora_r, help="LoRA rank (default: 0 for tiny, 8 otherwise; 0 = full fine-tune)."),
    lora_alpha: int = typer.Option(DistillConfig.lora_alpha, help="LoRA alpha."),
    merge_lora: bool = typer.Option(DistillConfig.merge_lora, help="Merge LoRA on save, or keep the adapter."),
    max_length: int = typer.Option(DistillConfig.max_length, help="Longest tokenised record."),
    save_steps: int = typer.Option(DistillConfig.save_steps, help="Checkpoint every N steps."),
    resume: bool = typer.Option(DistillConfig.resume, help="Resume from the last checkpoint under OUT/checkpoints."),
    seed: int = typer.Option(DistillConfig.seed, help="Random seed."),
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
    # lr and lora_r, when not given, default by student (DistillConfig.__post_init__)
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
    chunk_users: int = typer.Option(ProfileConfig.chunk_users, min=1, help="Users per chunk: memory stays flat, and a rerun after an interrupt resumes at the first unfinished chunk."),
    engine: str = typer.Option(ProfileConfig.engine, help="local, or ray (Ray Data map_batches over a cluster; needs the `ray` extra)."),
    batch_size: int = typer.Option(GenerationConfig.batch_size, help="Users per generation batch (LLM students)."),
    samples: int = typer.Option(GenerationConfig.samples, help="1 = greedy; k > 1 = k samples with confidence-weighted self-consistency (LLM students)."),
    temperature: float = typer.Option(GenerationConfig.temperature, help="Sampling temperature when samples > 1."),
    max_new_tokens: int = typer.Option(GenerationConfig.max_new_tokens, help="Longest answer in tokens."),
    max_user_tokens: int = typer.Option(STUDENT_MAX_USER_TOKENS, help="Token budget for the rendered user data (as in `confprofile sft`)."),
) -> None:
    """Profile the users of any size of file with a distilled student, streamed in chunks, resumably."""
    from confprofile.profiles import profile_users

    llm = LLMStudentConfig(max_user_tokens=max_user_tokens, predict=GenerationConfig(batch_size, samples, temperature, max_new_tokens))
    student = open_student(model, taxonomy=Taxonomy.load(taxonomy), config=llm)  # encoders carry their own taxonomy and config
    config = ProfileConfig(chunk_users=chunk_users, engine=engine)
    counts = profile_users(student, users, out, config, stage=model.name, model_dir=model)
    typer.echo(f"{counts['users']} users -> {out} and {Path(counts['profiles_jsonl']).name}")


def sft_command(
    users: Path = typer.Option(..., help="users.jsonl (or CSV/Parquet) of the users to distil on."),
    pseudo_labels: Path = typer.Option(..., help="pseudo_labels.parquet from `confprofile aggregate`."),
    out: Path = typer.Option(..., help="Where to write sft.jsonl."),
    taxonomy: str = typer.Option("profilebench", help="Built-in taxonomy name or a taxonomy YAML path."),
    weight_fn: str = typer.Option(SFTRecordConfig.weight_fn, help=f"Record weight from the kept confidences: {', '.join(WEIGHT_FNS.names())}."),
    not_kept: str = typer.Option(SFTRecordConfig.not_kept, help="Not-kept pseudo-labels: 'mask' (target unknown), 'drop' (drop the record), 'keep' (keep label + confidence)."),
    rationale: bool = typer.Option(SFTRecordConfig.rationale, "--rationale/--no-rationale", help="Put a short rationale line before the JSON profile (off for the tiny student)."),
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
