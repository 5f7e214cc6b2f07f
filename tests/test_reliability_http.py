"""HTTP faults the openai teacher must survive: the ones tests/test_openai_teacher.py does not inject.

Connection resets, truncated bodies, non-JSON bodies, hangs past the timeout, and a Retry-After far
beyond the backoff cap. Transient faults are retried (each costs exactly one extra request) with
bounded waits; a fault that never heals becomes an `error` row with its error text, and the CLI run
still completes and reports it.
"""

from __future__ import annotations

import asyncio
import json
import socket
import struct
import time

import pandas as pd
import pytest
import yaml
from fake_openai import FakeOpenAIServer, messages_key

import confprofile.teachers.openai_compat as openai_compat
from confprofile.data import UserRecord
from confprofile.label import label_users
from confprofile.taxonomy import Taxonomy
from confprofile.teachers.base import TeacherConfig

TAX = Taxonomy.builtin("profilebench")
DIMS = len(TAX.dimension_names)
BACKOFF_MAX = 0.2


class FaultyServer(FakeOpenAIServer):
    """The shared fake server plus transport-level faults, picked by markers in the user message:
    RESET_ONCE / ALWAYS_RESET (TCP reset before any reply), TRUNCATED_ONCE (body cut mid-way),
    NONJSON_ONCE (200 with an HTML page), HANG_ONCE (no reply before the client's timeout),
    RETRY_AFTER_HOUR_ONCE (429 asking to wait an hour)."""

    def __init__(self, hang_s: float = 1.5, **kwargs):
        super().__init__(**kwargs)
        server, base = self, self.httpd.RequestHandlerClass

        class Handler(base):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                status, payload, headers, wait = server.respond(body)  # counts the request
                user = body["messages"][-1]["content"]
                first = server.counts[messages_key(body["messages"])] == 1
                if "ALWAYS_RESET" in user or ("RESET_ONCE" in user and first):
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    self.close_connection = True
                    self.connection.close()  # RST: the client sees a reset connection
                    return
                if "TRUNCATED_ONCE" in user and first:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload[: len(payload) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if "NONJSON_ONCE" in user and first:
                    status, payload = 200, b"<html><body>502 Bad Gateway</body></html>"
                elif "RETRY_AFTER_HOUR_ONCE" in user and first:
                    status, payload, headers = 429, b'{"error": "quota"}', {"Retry-After": "3600"}
                elif "HANG_ONCE" in user and first:
                    wait = hang_s
                if wait:
                    time.sleep(wait)
                try:
                    self._send(status, payload, headers)
                except OSError:
                    pass

        self.httpd.RequestHandlerClass = Handler


@pytest.fixture
def sleeps(monkeypatch):
    """Every backoff the teacher asks for (seconds), recorded; the wait itself is kept short."""
    asked: list[float] = []
    real_sleep = asyncio.sleep

    async def record(delay, *args, **kwargs):
        asked.append(delay)
        return await real_sleep(min(delay, 0.01), *args, **kwargs)

    monkeypatch.setattr(openai_compat.asyncio, "sleep", record)
    return asked


def _config(url: str, **params) -> TeacherConfig:
    params = {"base_url": url, "concurrency": 4, "timeout": 0.5, "max_retries": 3, "backoff_base": 0.01,
              "backoff_max": BACKOFF_MAX, **params}
    return TeacherConfig(name="remote", backend="openai", model="m", params=params)


MARKERS = ["RESET_ONCE", "TRUNCATED_ONCE", "NONJSON_ONCE", "HANG_ONCE", "RETRY_AFTER_HOUR_ONCE", "RATE_LIMIT_ONCE", "ERROR_ONCE", "plain"]


def test_transport_faults_are_retried_with_bounded_backoff(tmp_path, sleeps):
    users = [UserRecord(user_id=f"u{i}", data={"bio": f"user {i} {marker}"}) for i, marker in enumerate(MARKERS)]
    with FaultyServer() as server:
        answers = label_users(users, TAX, [_config(server.url)], tmp_path / "c.sqlite", show_progress=False)
        per_user = {marker: server.counts[messages_key(b["messages"])] for b in server.bodies
                    for i, marker in enumerate(MARKERS) if f"user {i} {marker}" in b["messages"][-1]["content"]}
    assert not (answers.parse_status == "error").any(), answers[answers.parse_status == "error"].rationale.tolist()
    assert (answers[answers.dimension == "gender"].label == "female").all()
    assert per_user == {m: (1 if m == "plain" else 2) for m in MARKERS}  # one retry per transient fault, no more
    assert sleeps and max(sleeps) <= BACKOFF_MAX  # the hour-long Retry-After is capped
    assert max(sleeps) == BACKOFF_MAX  # ...and it was honoured up to the cap, not ignored


def test_a_fault_that_never_heals_is_recorded_per_row(tmp_path, sleeps):
    users = [UserRecord(user_id="bad", data={"bio": "ALWAYS_RESET"}), UserRecord(user_id="good", data={"bio": "fine"})]
    with FaultyServer() as server:
        answers = label_users(users, TAX, [_config(server.url, max_retries=2)], tmp_path / "c.sqlite", show_progress=False)
        attempts = sorted(server.counts.values())
    bad, good = answers[answers.user_id == "bad"], answers[answers.user_id == "good"]
    assert len(bad) == DIMS and (bad.parse_status == "error").all() and bad.label.isna().all() and (bad.confidence == 0).all()
    assert bad.rationale.str.contains("gave up after 3 attempts").all(), bad.rationale.iloc[0]
    assert bad.rationale.str.contains("Error").all()  # the transport error's name is kept (ReadError, RemoteProtocolError...)
    assert not (good.parse_status == "error").any()
    assert attempts == [1, 3] and len(sleeps) == 2  # max_retries=2: 3 attempts, 2 bounded waits


def test_cli_completes_and_reports_failed_requests(tmp_path, monkeypatch, capsys):
    from test_reliability_inputs import run_cli

    users = tmp_path / "users.jsonl"
    users.write_text("".join(json.dumps({"user_id": f"u{i}", "data": {"bio": b}}) + "\n"
                             for i, b in enumerate(["ALWAYS_RESET", "TRUNCATED_ONCE", "NONJSON_ONCE", "fine"])))
    with FaultyServer() as server:
        teachers = tmp_path / "teachers.yaml"
        teachers.write_text(yaml.safe_dump({"teachers": [_config(server.url, max_retries=1, backoff_max=0.05).model_dump()]}))
        code, out, err = run_cli(monkeypatch, capsys, "label", "--users", str(users), "--teachers", str(teachers),
                                 "--out", str(tmp_path / "answers.parquet"))
    assert code == 0, err
    assert "1 request(s) failed; rerun the same command to retry them" in err
    answers = pd.read_parquet(tmp_path / "answers.parquet")
    assert set(answers[answers.parse_status == "error"].user_id) == {"u0"} and len(answers) == 4 * DIMS
