"""`predict --engine ray` / `profiles.engine: ray`: the profiles stage's chunks on a Ray cluster.

The driver keeps what needs one view: it streams and validates the users file, skips the chunks an
earlier run finished, and is the only process that writes chunk files. Workers only predict:

    driver: chunks (a window of `2 x actors` at a time) -> ray.data.from_items -> map_batches(_ProfileActor)
    actors: open the student once (shipped through the object store), predict a chunk, return its rows
    driver: iter_batches -> one chunk file per chunk of the window, as the local engine writes it

So memory stays bounded by the window, an interrupt keeps every chunk of the windows already written, and
the output is the local engine's.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import pandas as pd

from confprofile.data import UserRecord, iter_user_chunks
from confprofile.progress import ProgressLog
from confprofile.scale.ray_label import require_ray


class _ProfileActor:
    """One student per actor process, reused for every chunk it is given."""

    def __init__(self, student_ref, stage: str):
        import ray

        self.student, self.stage = ray.get(student_ref), stage

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        frames = []
        for index, users in zip(batch["index"], batch["users"]):
            chunk = [UserRecord.model_validate(u) for u in json.loads(users)]
            frames.append(self.student.predict(chunk, model_name=self.stage).assign(chunk=int(index)))
        return pd.concat(frames, ignore_index=True)


def profile_chunks_ray(student, user_files: Sequence[str | Path], parts: Path, chunk_users: int, *, stage: str,
                       write_part: Callable[[Path, pd.DataFrame], None], actors: int | None = None, address: str | None = None) -> None:
    """Predict every chunk without a `parts/<n>.parquet` on the cluster, a window of chunks at a time;
    `write_part(path, predictions)` (the local engine's writer) writes each chunk of the window whole."""
    ray = require_ray()
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(address=address, log_to_driver=False)
    ray.data.DataContext.get_current().enable_progress_bars = False
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    try:
        actors = actors or max(1, min(8, int(ray.cluster_resources().get("CPU", 1))))
        student_ref = ray.put(student)
        window: list[dict] = []

        def flush() -> None:
            source = ray.data.from_items(window, override_num_blocks=len(window))
            done = source.map_batches(_ProfileActor, fn_constructor_args=(student_ref, stage), batch_size=1, batch_format="pandas",
                                      compute=ray.data.ActorPoolStrategy(size=min(actors, len(window))))
            arrived: dict[int, list[pd.DataFrame]] = {}  # Ray may split a chunk's rows over several blocks
            for batch in done.iter_batches(batch_size=None, batch_format="pandas"):
                for index, frame in batch.groupby("chunk", sort=False):
                    arrived.setdefault(int(index), []).append(frame.drop(columns="chunk"))
            for index, frames in sorted(arrived.items()):
                predictions = pd.concat(frames, ignore_index=True)
                write_part(parts / f"{index:06d}.parquet", predictions)
                progress.advance(predictions["user_id"].nunique())
            window.clear()

        with ProgressLog(f"[profiles:ray] {stage}", unit="users") as progress:
            for index, chunk in enumerate(iter_user_chunks(user_files, chunk_users)):
                if (parts / f"{index:06d}.parquet").exists():
                    progress.advance(len(chunk))
                    continue
                window.append({"index": index, "users": json.dumps([u.model_dump() for u in chunk], default=str)})
                if len(window) >= 2 * actors:
                    flush()
            if window:
                flush()
    finally:
        if started_here:
            ray.shutdown()
