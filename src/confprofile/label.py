"""Stage 1a: users x teachers x samples -> answers.parquet, through a resumable reply cache.

For each teacher: render every user within the teacher's token budget, build the chat messages of
its prompt variant, skip requests whose reply is already cached, send the rest, and store each reply
the moment it arrives. Then every cached reply is parsed into the long answers table
(docs/architecture.md). A rerun sends only what is missing or failed before.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path


from confprofile.answers import answer_rows, answers_frame, label_jobs
from confprofile.cache import ReplyCache
from confprofile.errors import InputError
from confprofile.progress import ProgressLog
from confprofile.taxonomy import Taxonomy
from confprofile.teachers.base import TeacherConfig, TeacherReply, TeacherRequest, build_teacher

def default_teachers_path() -> Path:
    return Path(str(resources.files("confprofile") / "configs" / "teachers_default.yaml"))


def redact_users(users) -> list:
    """Users whose data has emails, phone numbers, ID-like numbers and IPs replaced by placeholders
    (privacy.redact_value); ids stay, as they never reach a teacher."""
    from confprofile.data import UserRecord
    from confprofile.privacy import redact_value

    return [UserRecord(user_id=u.user_id, data=redact_value(u.data)) for u in users]


def label_users(users, taxonomy: Taxonomy, teacher_configs: list[TeacherConfig], cache_path: str | Path, *,
                show_progress: bool = True, redact: bool = False):
    """Label `users` with every teacher through the cache; returns the answers table (one row per
    user x teacher x sample x dimension; failed requests appear with parse_status `error`).
    `redact`: strip PII from the user data before any teacher sees it (see `redact_users`)."""
    users = redact_users(users) if redact else list(users)
    rows: list[dict] = []
    total = len(users) * sum(c.samples for c in teacher_configs)
    with ReplyCache(cache_path) as cache, ProgressLog("[label]", total, "requests", enabled=show_progress) as progress:
        counts = {"cached": 0, "failed": 0}
        for config in teacher_configs:
            progress.describe(f"[label] {config.name}")
            teacher = build_teacher(config, taxonomy)
            try:
                jobs = label_jobs(teacher, users, taxonomy)
                cached = cache.get_many([job.key for job in jobs])
                pending = [job for job in jobs if not (job.key in cached and cached[job.key].ok)]
                counts["cached"] += len(jobs) - len(pending)
                progress.advance(len(jobs) - len(pending), **counts)
                by_request = {(job.request.user_id, job.request.sample): job for job in pending}

                def on_reply(request: TeacherRequest, reply: TeacherReply, name: str = config.name) -> None:
                    cache.put(by_request[request.user_id, request.sample].key, name, request.user_id, request.sample, reply)
                    counts["failed"] += reply.error is not None or (reply.text is None and reply.label_probs is None)
                    progress.advance(1, **counts)

                if pending:
                    teacher.answer([job.request for job in pending], on_reply)
            finally:
                teacher.close()
            final = cache.get_many([job.key for job in jobs])
            for job in jobs:
                rows.extend(answer_rows(config, job, final.get(job.key), taxonomy))
    return answers_frame(rows)


def check_configs(configs: list[TeacherConfig], path: Path) -> None:
    """Unknown backends or prompt variants are input errors, reported before any work starts."""
    import confprofile.teachers  # noqa: F401  (registers the built-in backends)
    from confprofile.prompts import PROMPT_VARIANTS
    from confprofile.teachers.base import TEACHERS

    for i, config in enumerate(configs):
        if config.backend not in TEACHERS:
            raise InputError(path, None, f"teachers.{i}.backend", f"unknown backend {config.backend!r}; known: {', '.join(TEACHERS.names())}")
        if config.prompt_variant not in PROMPT_VARIANTS:
            raise InputError(path, None, f"teachers.{i}.prompt_variant", f"unknown prompt variant {config.prompt_variant!r}; known: {', '.join(PROMPT_VARIANTS.names())}")


def plan(users, taxonomy: Taxonomy, teacher_configs: list[TeacherConfig], cache_path: str | Path | None = None) -> list[dict]:
    """Per teacher: requests in total, already cached, to send, and estimated tokens. Sends nothing."""
    from confprofile.render import approx_tokens

    users = list(users)
    summary = []
    cache = ReplyCache(cache_path) if cache_path is not None and Path(cache_path).exists() else None
    try:
        for config in teacher_configs:
            teacher = build_teacher(config, taxonomy)
            try:
                jobs = label_jobs(teacher, users, taxonomy)
            finally:
                teacher.close()
            done = cache.get_many([j.key for j in jobs]) if cache else {}
            todo = [j for j in jobs if not (j.key in done and done[j.key].ok)]
            prompt_tokens = sum(approx_tokens(m["content"]) for j in todo for m in j.request.messages)
            summary.append({
                "teacher": config.name, "backend": config.backend, "requests": len(jobs), "cached": len(jobs) - len(todo),
                "to_send": len(todo), "prompt_tokens_est": prompt_tokens,
                "max_completion_tokens": len(todo) * config.max_new_tokens,
            })
    finally:
        if cache:
            cache.close()
    return summary


