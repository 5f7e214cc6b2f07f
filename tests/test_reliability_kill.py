"""Kill safety: `kill -9` the labeller at 10 seeded random points and resume, and kill an atomic writer mid-write.

The labelling figure: every answer exists exactly once at the end, and the loopback server saw a
request twice only when it was in flight (sent, reply not yet committed) at a kill.
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import yaml
from fake_openai import FakeOpenAIServer

from confprofile.taxonomy import Taxonomy

TAX = Taxonomy.builtin("profilebench")
KILLS, USERS, CONCURRENCY, SEED = 10, 200, 4, 1234  # 200 users: 10 short runs cannot finish them all
USER_NUMBER = re.compile(r"user number (\d+)")


def _wait(predicate, proc: subprocess.Popen, what: str, limit: float = 90.0) -> None:
    deadline = time.monotonic() + limit
    while not predicate():
        assert proc.poll() is None, f"the labeller exited ({proc.returncode}) before {what}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def _committed(cache: Path) -> set[str]:
    """User ids with a successful reply in the cache; also proves the SQLite file is intact."""
    if not cache.exists():
        return set()
    with sqlite3.connect(cache) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        return {row[0] for row in db.execute("SELECT user_id FROM replies WHERE error IS NULL AND text IS NOT NULL")}


def test_label_survives_ten_kill_9_and_repeats_only_in_flight_requests(tmp_path):
    rng = random.Random(SEED)
    users = tmp_path / "users.jsonl"
    users.write_text("".join(json.dumps({"user_id": f"u{i:03d}", "data": {"bio": f"user number {i}"}}) + "\n" for i in range(USERS)))
    cache, out = tmp_path / "answers.cache.sqlite", tmp_path / "answers.parquet"
    with FakeOpenAIServer(delay_s=0.03) as server:
        teachers = tmp_path / "teachers.yaml"
        params = {"base_url": server.url, "concurrency": CONCURRENCY, "timeout": 10, "max_retries": 0}
        teachers.write_text(yaml.safe_dump({"teachers": [{"name": "remote", "backend": "openai", "model": "m", "params": params}]}))
        command = [sys.executable, "-m", "confprofile", "label", "--users", str(users), "--teachers", str(teachers), "--out", str(out)]

        def sent_users(bodies: list[dict]) -> list[str]:
            return [f"u{int(USER_NUMBER.search(b['messages'][-1]['content']).group(1)):03d}" for b in bodies]

        lost_per_kill = []
        for kill in range(KILLS):
            start = len(server.bodies)
            after = rng.randint(1, 6)  # kill once this many new requests have reached the server
            proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            _wait(lambda: len(server.bodies) - start >= after, proc, f"kill point {kill}")
            time.sleep(rng.uniform(0, 0.05))  # land anywhere: mid-request, mid-commit, between requests
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            sent_now = set(sent_users(server.bodies[start:]))
            lost = sent_now - _committed(cache)  # sent in this run, reply never committed: in flight at the kill
            assert len(lost) <= CONCURRENCY, (kill, lost)
            lost_per_kill.append(len(lost))
            assert not out.exists(), "answers.parquet appeared before the run finished"

        done = subprocess.run(command, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        answers = pd.read_parquet(out)

    assert len(answers) == USERS * len(TAX.dimension_names)
    assert not answers.duplicated(["user_id", "teacher", "sample", "dimension"]).any()
    assert set(answers.user_id) == {f"u{i:03d}" for i in range(USERS)} and not (answers.parse_status == "error").any()
    counts = pd.Series(sent_users(server.bodies)).value_counts()
    assert set(counts.index) == set(answers.user_id)
    # a request is sent again only if it was lost in flight at a kill, and then exactly once per loss
    assert int((counts - 1).sum()) == sum(lost_per_kill), (counts[counts > 1].to_dict(), lost_per_kill)
    assert sum(lost_per_kill) <= KILLS * CONCURRENCY
    print(f"kill points {KILLS}, requests lost in flight per kill {lost_per_kill}, repeats {int((counts - 1).sum())}")


WRITER = """
import sys, pyarrow as pa
from confprofile.files import atomic_write_parquet
n = int(sys.argv[2])
for version in range(1_000_000):
    table = pa.table({"version": pa.array([version] * n), "x": pa.array(range(n)), "text": pa.array(["abc" * 20] * n)})
    atomic_write_parquet(sys.argv[1], table)
    print(version, flush=True)
"""


def test_kill_during_atomic_parquet_writes_never_leaves_a_partial_file(tmp_path):
    """A writer overwrites a large Parquet file in a loop; kill -9 at random moments: the target is
    always a complete table of a single version (never torn), whatever the moment."""
    rng, target, rows = random.Random(SEED), tmp_path / "big.parquet", 150_000
    for _ in range(3):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(target), str(rows)], stdout=subprocess.PIPE, text=True)
        proc.stdout.readline()  # one version landed: the next write is under way
        time.sleep(rng.uniform(0.0, 0.3))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
        table = pq.read_table(target)  # raises on a torn file
        assert table.num_rows == rows and len(set(table.column("version").to_pylist())) == 1
    leftovers = [p.name for p in tmp_path.iterdir() if p.name != target.name]
    assert all(re.fullmatch(r"\.big\.parquet\..+\.tmp", name) for name in leftovers), leftovers  # only hidden temp files
