"""The answers table and the requests that fill it, shared by both labelling engines.

`label_jobs` renders each user for a teacher and keys each request for the reply cache;
`answer_rows` parses a cached reply into rows of the long answers table (docs/architecture.md);
`answers_frame` gives the table its column types. `label` (one process) and
`scale.ray_label` (a Ray cluster) both build on these, so both engines write the same table.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from confprofile.cache import request_key
from confprofile.prompts import build_messages, parse_answer
from confprofile.taxonomy import Taxonomy
from confprofile.teachers.base import Teacher, TeacherRequest

ANSWER_COLUMNS = {  # column -> dtype of answers.parquet
    "user_id": "str", "teacher": "str", "sample": "int32", "dimension": "str", "label": "str",
    "confidence": "float64", "rationale": "str", "parse_status": "str", "label_probs": "str", "model": "str",
}



@dataclass
class LabelJob:
    request: TeacherRequest
    key: str


def label_jobs(teacher: Teacher, users, taxonomy: Taxonomy) -> list[LabelJob]:
    """One request per user and sample, rendered within the teacher's token budget, with its cache key."""
    from confprofile.render import render_user

    config = teacher.config
    count_tokens = getattr(teacher, "count_tokens", None)  # a backend with a tokenizer may offer exact counts
    identity = teacher.identity()
    jobs = []
    for user in users:
        text = render_user(user, config.max_user_tokens, count_tokens, taxonomy.fields)
        messages = tuple(build_messages(text, taxonomy, config.prompt_variant))
        for sample in range(config.samples):
            request = TeacherRequest(user.user_id, sample, text, messages)
            jobs.append(LabelJob(request, request_key(identity, messages, sample)))
    return jobs


def model_of(config) -> str | None:
    """The `model` column: `backend:model` of a teacher config, so that aggregation can tell which teachers
    are views of one model (their agreement is no evidence); None where a backend names no model."""
    return f"{config.backend}:{config.model}" if config.model else None


def answer_rows(config, job: LabelJob, cached, taxonomy: Taxonomy) -> list[dict]:
    """A cached reply (or its absence) -> one answers-table row per dimension of teacher `config`; never raises."""
    if cached is None or not cached.ok:
        error = "not answered" if cached is None else f"error: {cached.error}"
        parsed = {d: None for d in taxonomy.dimension_names}
    else:
        error, parsed = None, parse_answer(cached.text, taxonomy)
    rows = []
    for dim in taxonomy.dimension_names:
        answer = parsed[dim]
        probs = cached.label_probs.get(dim) if cached is not None and cached.ok and cached.label_probs else None
        rows.append({
            "user_id": job.request.user_id, "teacher": config.name, "sample": job.request.sample, "dimension": dim,
            "label": answer.label if answer else None,
            "confidence": answer.confidence if answer else 0.0,
            "rationale": answer.rationale if answer else error,
            "parse_status": answer.status if answer else "error",
            "label_probs": json.dumps(probs, sort_keys=True) if probs else None,
            "model": model_of(config),
        })
    return rows


def answers_frame(rows: list[dict]):
    import pandas as pd

    dtypes = dict(ANSWER_COLUMNS)
    if int(pd.__version__.split(".")[0]) < 3:  # pandas 2 has no nullable "str"; astype(str) would turn None into "None"
        dtypes = {c: "string" if t == "str" else t for c, t in dtypes.items()}
    return pd.DataFrame(rows, columns=list(ANSWER_COLUMNS)).astype(dtypes)
