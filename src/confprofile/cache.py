"""Resumable reply cache for teacher requests (SQLite, WAL).

One row per request, keyed by a hash of everything that changes the answer: the teacher's identity
(backend, model, sampling parameters; never secrets), the chat messages, the sample index and the
answer schema version. Each reply is committed as it arrives, so a crash or kill -9 loses at most the
requests in flight. Failed requests are stored with their error and retried by the next run.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from confprofile.teachers.base import TeacherReply

SCHEMA_VERSION = 1  # bump when the prompt layout or answer schema changes: old replies stop matching

_DDL = """
CREATE TABLE IF NOT EXISTS replies (
    key TEXT PRIMARY KEY,
    teacher TEXT NOT NULL,
    user_id TEXT NOT NULL,
    sample INTEGER NOT NULL,
    text TEXT,
    label_probs TEXT,
    error TEXT,
    meta TEXT,
    attempts INTEGER NOT NULL DEFAULT 1,
    created REAL NOT NULL,
    updated REAL NOT NULL
)
"""


def request_key(identity: dict[str, Any], messages: Iterable[dict], sample: int) -> str:
    payload = {"identity": identity, "messages": list(messages), "sample": sample, "schema": SCHEMA_VERSION}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, ensure_ascii=False, default=str).encode()).hexdigest()


@dataclass
class CachedReply:
    text: str | None
    label_probs: dict[str, dict[str, float]] | None
    error: str | None

    @property
    def ok(self) -> bool:
        return self.error is None and (self.text is not None or self.label_probs is not None)


class ReplyCache:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, timeout=60)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")  # with WAL: durable across process kills
        self._db.execute(_DDL)
        self._db.commit()

    def get_many(self, keys: list[str]) -> dict[str, CachedReply]:
        found: dict[str, CachedReply] = {}
        for i in range(0, len(keys), 500):
            chunk = keys[i : i + 500]
            rows = self._db.execute(
                f"SELECT key, text, label_probs, error FROM replies WHERE key IN ({','.join('?' * len(chunk))})", chunk
            )
            for key, text, probs, error in rows:
                found[key] = CachedReply(text, json.loads(probs) if probs else None, error)
        return found

    def put(self, key: str, teacher: str, user_id: str, sample: int, reply: TeacherReply) -> None:
        """Store (or replace a failed) reply and commit at once."""
        now = time.time()
        probs = json.dumps(reply.label_probs, sort_keys=True) if reply.label_probs else None
        meta = json.dumps(reply.meta, default=str) if reply.meta else None
        self._db.execute(
            """INSERT INTO replies (key, teacher, user_id, sample, text, label_probs, error, meta, created, updated)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
               ON CONFLICT(key) DO UPDATE SET text=excluded.text, label_probs=excluded.label_probs,
                 error=excluded.error, meta=excluded.meta, attempts=attempts + 1, updated=excluded.updated""",
            (key, teacher, user_id, sample, reply.text, probs, reply.error, meta, now, now),
        )
        self._db.commit()

    def count(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM replies").fetchone()[0]

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> "ReplyCache":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
