"""`confprofile label --engine ray`: spread teacher requests over a Ray cluster with Ray Data.

The driver does what needs one view of everything: it renders users, computes each request's
cache key, drops the requests the cache already answered, and is the *only* process that writes
the SQLite cache. Workers (Ray actors, one teacher per actor) only talk to the engine:

    driver: jobs -> pending (not in cache) -> ray.data.from_items -> map_batches(_TeacherActor)
    actors: build the teacher once, answer a batch, return the raw replies
    driver: iter_batches -> ReplyCache.put each reply as it arrives -> answers table from the cache

So the no-repeat guarantee is the single-process one (a cached request is never dispatched), an
interrupt keeps every reply that reached the driver, SQLite never sees concurrent writers (it would
not work on the shared file systems clusters use anyway), and the answers table is parsed by the
very code `label_users` uses, so both engines produce the same table.

HTTP teachers (`openai`): stateless Ray tasks on Ray's warm worker processes, each building a cheap
client per batch and running the backend's own async concurrency against the server(s). GPU
teachers (`vllm`): one actor per GPU (`num_gpus=1`), each loading one engine once for the whole
run; scale with the cluster's GPU count (docs/scale-out.md).
"""

from __future__ import annotations

import json
import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from confprofile.answers import answer_rows, answers_frame, label_jobs
from confprofile.cache import ReplyCache, request_key
from confprofile.errors import MissingExtraError
from confprofile.progress import ProgressLog
from confprofile.prompts import build_messages
from confprofile.taxonomy import Taxonomy
from confprofile.teachers.base import TeacherConfig, TeacherReply, TeacherRequest, build_teacher

GPU_BACKENDS = {"vllm"}  # backends whose actors each take one GPU by default


@dataclass
class RayLabelConfig:
    """How requests are spread over the cluster; none of it changes an answer or a cache key."""

    address: str | None = field(default=None, metadata={"help": "Ray cluster address; None: RAY_ADDRESS or a new local cluster."})
    actors: int | None = field(default=None, metadata={"help": "Parallel workers per teacher; None: one actor per GPU for GPU backends, else min(8, cluster CPUs / num_cpus)."})
    batch_size: int = field(default=32, metadata={"help": "Requests per map_batches call; an HTTP actor runs a batch concurrently."})
    num_cpus: float = field(default=1.0, metadata={"help": "CPUs reserved per actor (HTTP actors mostly wait: 0.25 packs more)."})
    num_gpus: float | None = field(default=None, metadata={"help": "GPUs per actor; None: 1 for GPU backends (vllm), else 0."})
    use_actors: bool = field(default=False, metadata={"help": "Actors even without GPUs (a teacher costly to build); default: stateless tasks."})


def require_ray():
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise MissingExtraError("ray", "ray", "Labelling with --engine ray") from None
    return ray


def _answer_batch(teacher, batch):
    """Answer one pyarrow batch of requests with `teacher`; return the raw replies as a pyarrow table.

    Rows carry the rendered user text only; the chat messages are rebuilt here exactly as `label`
    builds them, which keeps the shared system prompt out of the object store. The rebuilt request
    must hash to the driver's key, so a reply can never be cached under another request's key.
    """
    import pyarrow as pa

    rows, identity = batch.to_pylist(), teacher.identity()
    requests, replies = [], {}
    for r in rows:
        messages = tuple(build_messages(r["user_text"], teacher.taxonomy, teacher.config.prompt_variant))
        if request_key(identity, messages, r["sample"]) != r["key"]:  # never answer under another request's key
            replies[r["user_id"], r["sample"]] = TeacherReply(None, error="worker built a different prompt than the driver (mixed confprofile versions?)")
            continue
        requests.append(TeacherRequest(r["user_id"], r["sample"], r["user_text"], messages))
    teacher.answer(requests, lambda request, reply: replies.__setitem__((request.user_id, request.sample), reply))
    out = {name: [] for name in ["key", "user_id", "sample", "text", "error", "label_probs", "meta"]}
    for row in rows:
        reply = replies.get((row["user_id"], row["sample"])) or TeacherReply(None, error="the teacher returned no reply")
        out["key"].append(row["key"])
        out["user_id"].append(row["user_id"])
        out["sample"].append(row["sample"])
        out["text"].append(reply.text)
        out["error"].append(reply.error)
        out["label_probs"].append(json.dumps(reply.label_probs) if reply.label_probs else None)
        out["meta"].append(json.dumps(reply.meta, default=str) if reply.meta else None)
    types = {"sample": pa.int64()}
    return pa.table({k: pa.array(v, type=types.get(k, pa.string())) for k, v in out.items()})


def _answer_task(batch, config: dict, taxonomy: dict):
    """Stateless task: a cheap teacher (an HTTP client) built per batch, on Ray's warm worker processes."""
    teacher = build_teacher(TeacherConfig.model_validate(config), Taxonomy.model_validate(taxonomy))
    try:
        return _answer_batch(teacher, batch)
    finally:
        teacher.close()


class _TeacherActor:
    """Actor: one teacher (a GPU engine) per actor process, loaded once and reused across batches."""

    def __init__(self, config: dict, taxonomy: dict):
        self.teacher = build_teacher(TeacherConfig.model_validate(config), Taxonomy.model_validate(taxonomy))

    def __call__(self, batch):
        return _answer_batch(self.teacher, batch)


def _actors_and_gpus(config: TeacherConfig, ray_config: RayLabelConfig, resources: dict) -> tuple[int, float]:
    gpus = ray_config.num_gpus if ray_config.num_gpus is not None else (1.0 if config.backend in GPU_BACKENDS else 0.0)
    if ray_config.actors:
        return ray_config.actors, gpus
    if gpus > 0:
        return max(1, int(resources.get("GPU", 0) // gpus)), gpus
    return max(1, min(8, int(resources.get("CPU", 1) // max(ray_config.num_cpus, 1e-3)))), gpus


def _dispatch(ray, config: TeacherConfig, taxonomy: Taxonomy, pending: list, cache: ReplyCache, ray_config: RayLabelConfig, on_done) -> None:
    """Answer `pending` jobs on the cluster; store each reply in the cache as it reaches the driver."""
    actors, gpus = _actors_and_gpus(config, ray_config, ray.cluster_resources())
    items = [{"key": job.key, "user_id": job.request.user_id, "sample": job.request.sample, "user_text": job.request.user_text}
             for job in pending]
    batches = math.ceil(len(items) / ray_config.batch_size)
    actors = max(1, min(actors, batches))  # an idle actor would still cost a process (or a GPU engine)
    blocks = max(1, min(len(items), max(actors * 2, batches)))
    payload = {"config": config.model_dump(), "taxonomy": taxonomy.model_dump()}
    common = {"batch_size": ray_config.batch_size, "batch_format": "pyarrow", "num_cpus": ray_config.num_cpus, "num_gpus": gpus}
    key_env = config.params.get("api_key_env")
    if key_env and key_env in os.environ:  # workers on other nodes do not share the driver's environment
        common["runtime_env"] = {"env_vars": {key_env: os.environ[key_env]}}
    source = ray.data.from_items(items, override_num_blocks=blocks)
    if gpus > 0 or ray_config.use_actors:
        dataset = source.map_batches(_TeacherActor, fn_constructor_kwargs=payload, compute=ray.data.ActorPoolStrategy(size=actors), **common)
    else:
        dataset = source.map_batches(_answer_task, fn_kwargs=payload, compute=ray.data.TaskPoolStrategy(size=actors), **common)
    for batch in dataset.iter_batches(batch_size=None, batch_format="pyarrow"):
        for row in batch.to_pylist():
            probs = json.loads(row["label_probs"]) if row["label_probs"] else None
            meta = json.loads(row["meta"]) if row["meta"] else {}
            reply = TeacherReply(row["text"], error=row["error"], label_probs=probs, meta=meta)
            cache.put(row["key"], config.name, row["user_id"], int(row["sample"]), reply)
            on_done(reply)


def label_users_ray(users, taxonomy: Taxonomy, teacher_configs: list[TeacherConfig], cache_path: str | Path,
                    *, ray_config: RayLabelConfig | None = None, show_progress: bool = True):
    """`label_users` on a Ray cluster: same arguments, same cache, same answers table."""
    ray = require_ray()
    ray_config = ray_config or RayLabelConfig()
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(address=ray_config.address, log_to_driver=False)
    ray.data.DataContext.get_current().enable_progress_bars = False  # the driver shows one bar of its own
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    users = list(users)
    rows: list[dict] = []
    try:
        total = len(users) * sum(c.samples for c in teacher_configs)
        with ReplyCache(cache_path) as cache, ProgressLog("[label:ray]", total, "requests", enabled=show_progress) as progress:
            counts = {"cached": 0, "failed": 0}
            for config in teacher_configs:
                teacher = build_teacher(config, taxonomy)  # on the driver only for keys and token counts
                try:
                    jobs = label_jobs(teacher, users, taxonomy)
                finally:
                    teacher.close()
                cached = cache.get_many([job.key for job in jobs])
                pending = [job for job in jobs if not (job.key in cached and cached[job.key].ok)]
                counts["cached"] += len(jobs) - len(pending)
                progress.describe(f"[label:ray] {config.name}")
                progress.advance(len(jobs) - len(pending), **counts)

                def on_done(reply: TeacherReply) -> None:
                    counts["failed"] += reply.error is not None or (reply.text is None and reply.label_probs is None)
                    progress.advance(1, **counts)

                if pending:
                    _dispatch(ray, config, taxonomy, pending, cache, ray_config, on_done)
                final = cache.get_many([job.key for job in jobs])
                for job in jobs:
                    rows.extend(answer_rows(config, job, final.get(job.key), taxonomy))
    finally:
        if started_here:
            ray.shutdown()
    return answers_frame(rows)
