"""The `openai` teacher backend against loopback servers: injected faults, and a real `transformers serve`."""

from __future__ import annotations

import json
import math
import os
import random
import shutil
from pathlib import Path
import sys
import socket
import subprocess
import time

import httpx
import pytest
from fake_openai import FakeOpenAIServer

from confprofile.prompts import build_messages, parse_answer
from confprofile.taxonomy import Taxonomy
from confprofile.teachers.base import TeacherConfig, TeacherRequest, build_teacher
from confprofile.teachers.openai_compat import backoff_delay, label_probs_from_logprobs, retry_after_seconds

TAX = Taxonomy.builtin("profilebench")


def _teacher(url: str, **params):
    params = {"base_url": url, "concurrency": 8, "timeout": 0.5, "max_retries": 3, "backoff_base": 0.01, "backoff_max": 0.1, **params}
    return build_teacher(TeacherConfig(name="t", backend="openai", model="m", temperature=0.0, params=params), TAX)


def _requests(texts: list[str]) -> list[TeacherRequest]:
    return [TeacherRequest(f"u{i}", 0, t, tuple(build_messages(t, TAX))) for i, t in enumerate(texts)]


def _answer(teacher, requests):
    replies = {}
    teacher.answer(requests, lambda req, rep: replies.__setitem__(req.user_id, rep))
    return replies


def test_retry_after_and_backoff_are_bounded():
    assert retry_after_seconds("3") == 3.0 and retry_after_seconds(None) is None and retry_after_seconds("soon") is None
    assert 0 <= retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") < 1  # a date in the past: retry now
    rng = random.Random(0)
    delays = [backoff_delay(a, 0.5, 30.0, None, rng) for a in range(12)]
    assert all(0.25 * 2**a <= d <= 0.5 * 2**a for a, d in enumerate(delays[:5]))  # equal jitter around 2^a
    assert max(delays) <= 30.0
    assert backoff_delay(0, 0.5, 30.0, 7.0, rng) == 7.0  # the server's Retry-After wins
    assert backoff_delay(0, 0.5, 30.0, 900.0, rng) == 30.0  # ...but stays bounded


def test_transient_faults_are_retried():
    markers = ["RATE_LIMIT_ONCE", "ERROR_ONCE", "SLOW_ONCE", "MALFORMED_ONCE", "plain user"]
    with FakeOpenAIServer(slow_s=2.0) as server:
        replies = _answer(_teacher(server.url), _requests(markers))
    assert len(replies) == len(markers)
    for i, marker in enumerate(markers):
        reply = replies[f"u{i}"]
        assert reply.error is None, (marker, reply.error)
        assert parse_answer(reply.text, TAX)["gender"].label == "female"
        assert reply.meta["attempts"] == (1 if marker == "plain user" else 2), marker
    assert server.total == 9


def test_permanent_failures_are_reported_not_raised():
    with FakeOpenAIServer() as server:
        replies = _answer(_teacher(server.url, max_retries=2), _requests(["ALWAYS_500", "BAD_REQUEST", "fine"]))
        assert replies["u0"].text is None and "gave up after 3 attempts" in replies["u0"].error and "500" in replies["u0"].error
        assert replies["u1"].text is None and replies["u1"].error.startswith("HTTP 400")  # not retried
        assert replies["u2"].error is None
        assert sorted(server.counts.values()) == [1, 1, 3]


def test_rate_limit_paces_request_starts():
    with FakeOpenAIServer() as server:
        start = time.monotonic()
        replies = _answer(_teacher(server.url, concurrency=8, rate_limit=50), _requests([f"user {i}" for i in range(10)]))
        elapsed = time.monotonic() - start
    assert all(r.error is None for r in replies.values())
    assert elapsed >= 9 / 50  # 10 starts at most 50/s apart: a guaranteed lower bound, not a speed measurement


def test_connection_refused_is_an_error_reply():
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    replies = _answer(_teacher(f"http://127.0.0.1:{port}/v1", max_retries=1), _requests(["x"]))
    assert replies["u0"].text is None and "ConnectError" in replies["u0"].error


def test_request_body_key_and_identity(monkeypatch):
    monkeypatch.setenv("CONFPROFILE_TEST_KEY", "sk-secret-123")
    with FakeOpenAIServer() as server:
        teacher = _teacher(server.url, api_key_env="CONFPROFILE_TEST_KEY", response_format="json_object", seed=7, extra_body={"top_k": 5})
        _answer(teacher, _requests(["a"]))
        body = server.bodies[0]
    assert body["response_format"] == {"type": "json_object"} and body["seed"] == 7 and body["top_k"] == 5
    assert body["model"] == "m" and body["max_tokens"] == 384 and body["messages"][0]["role"] == "system"
    identity = json.dumps(teacher.identity())
    assert "sk-secret" not in identity and "CONFPROFILE_TEST_KEY" not in identity
    assert "base_url" not in identity and "concurrency" not in identity  # transport settings: not part of the answer
    assert teacher.identity() == _teacher("http://elsewhere/v1", response_format="json_object", seed=7, extra_body={"top_k": 5}).identity()


def test_missing_api_key_env_is_an_input_error(monkeypatch):
    from confprofile.errors import InputError

    monkeypatch.delenv("CONFPROFILE_NO_SUCH_KEY", raising=False)
    with pytest.raises(InputError, match="CONFPROFILE_NO_SUCH_KEY"):
        _teacher("http://x/v1", api_key_env="CONFPROFILE_NO_SUCH_KEY")


def test_logprobs_give_label_probabilities():
    with FakeOpenAIServer() as server:
        replies = _answer(_teacher(server.url, logprobs=True), _requests(["a"]))
        assert server.bodies[0]["logprobs"] is True and server.bodies[0]["top_logprobs"] == 5
    probs = replies["u0"].label_probs
    assert probs["gender"]["female"] == pytest.approx(math.exp(-0.05))
    assert probs["gender"]["male"] == pytest.approx(math.exp(-3.0))  # the runner-up token names 'male'
    assert probs["age_group"] == {"25_34": pytest.approx(math.exp(-0.05 * 3))}  # 25, -, 34: three tokens
    assert replies["u0"].meta["label_prob"]["gender"] == pytest.approx(math.exp(-0.05))


def test_logprobs_alternatives_that_name_no_single_label_are_ignored():
    text = '{"life_stage": {"label": "parent_young_children"}}'
    tokens = [{"token": t, "logprob": -0.1} for t in ['{"', "life_stage", '":', ' {"', "label", '":', ' "', "parent", "_young_children", '"}}']]
    tokens[7]["top_logprobs"] = [{"token": "parent", "logprob": -0.1}, {"token": "single", "logprob": -2.0}, {"token": "p", "logprob": -4.0}]
    assert "".join(t["token"] for t in tokens) == text
    probs, chosen = label_probs_from_logprobs(tokens, TAX)
    assert set(probs["life_stage"]) == {"parent_young_children", "single"}  # "p" is ambiguous: two parent_* labels
    assert chosen["life_stage"] == pytest.approx(math.exp(-0.2))


# ---- a real OpenAI-compatible server --------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def transformers_server():
    cli = shutil.which("transformers", path=str(Path(sys.executable).parent)) or shutil.which("transformers")
    if cli is None:
        pytest.fail("the `transformers` CLI is missing: pip install 'transformers[serving]'")
    from confprofile.models import smollm2_dir

    model_dir = smollm2_dir()
    port = _free_port()
    log = open(os.devnull, "w")
    proc = subprocess.Popen(
        [cli, "serve", str(model_dir), "--host", "127.0.0.1", "--port", str(port), "--device", "cpu"],
        stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            if proc.poll() is not None:
                pytest.fail(f"transformers serve exited with {proc.returncode}")
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("transformers serve did not come up within 180 s")
            time.sleep(0.5)
        yield url + "/v1", str(model_dir)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.mark.slow
def test_real_transformers_serve_end_to_end(transformers_server, tmp_path):
    """Two users through a real `transformers serve` (SmolLM2) into the answers table."""
    from confprofile.data import UserRecord
    from confprofile.label import label_users

    url, model = transformers_server
    # the compact student prompt and 8 new tokens keep this short on a busy CPU; the JSON will be cut off
    config = TeacherConfig(name="served", backend="openai", model=model, prompt_variant="student", temperature=0.0,
                           max_new_tokens=8, params={"base_url": url, "concurrency": 2, "timeout": 600, "max_retries": 1})
    users = [UserRecord(user_id="a", data={"bio": "Mother of two, nurse at the city hospital."}),
             UserRecord(user_id="b", data={"bio": "Retired engineer, loves fishing with grandkids."})]
    answers = label_users(users, TAX, [config], tmp_path / "cache.sqlite", show_progress=False)
    assert len(answers) == 2 * len(TAX.dimension_names)
    assert set(answers.user_id) == {"a", "b"} and not (answers.parse_status == "error").any(), answers.rationale.tolist()
    import sqlite3

    texts = [row[0] for row in sqlite3.connect(tmp_path / "cache.sqlite").execute("SELECT text FROM replies")]
    assert len(texts) == 2 and all(isinstance(t, str) and t.strip() for t in texts)  # real generated text kept raw
