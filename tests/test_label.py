"""Stage 1a through the reply cache: resume, retries of failed rows, kill -9, --plan, the answers table."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml
from fake_openai import FakeOpenAIServer

from confprofile.data import UserRecord
from confprofile.answers import ANSWER_COLUMNS
from confprofile.label import default_teachers_path, label_users, plan
from confprofile.taxonomy import Taxonomy
from confprofile.teachers.base import TEACHERS, Teacher, TeacherConfig, TeacherReply, load_teacher_configs

TAX = Taxonomy.builtin("profilebench")
DIMS = len(TAX.dimension_names)


def _users(n: int, marker: dict[int, str] | None = None) -> list[UserRecord]:
    marker = marker or {}
    return [UserRecord(user_id=f"u{i:03d}", data={"bio": f"user number {i} {marker.get(i, '')}".strip()}) for i in range(n)]


def _config(url: str, name: str = "remote", samples: int = 1, **params) -> TeacherConfig:
    params = {"base_url": url, "concurrency": 4, "timeout": 5, "max_retries": 1, "backoff_base": 0.01, "backoff_max": 0.05, **params}
    return TeacherConfig(name=name, backend="openai", model="m", samples=samples, params=params)


def test_answers_table_failed_rows_retry_and_full_cache_sends_nothing(tmp_path):
    users = _users(5, {3: "ALWAYS_500"})
    cache = tmp_path / "cache.sqlite"
    with FakeOpenAIServer() as server:
        configs = [_config(server.url, "a", samples=2), _config(server.url, "b", logprobs=True)]
        first = label_users(users, TAX, configs, cache, show_progress=False)
        assert list(first.columns) == list(ANSWER_COLUMNS)
        assert {c: str(t) for c, t in first.dtypes.items()} == {c: str(pd.Series(dtype=t).dtype) for c, t in ANSWER_COLUMNS.items()}
        assert len(first) == 5 * 3 * DIMS  # teacher a: 2 samples, teacher b: 1
        failed = first[first.user_id == "u003"]
        assert (failed.parse_status == "error").all() and failed.label.isna().all() and (failed.confidence == 0).all()
        assert failed.rationale.str.contains("500").all()
        ok = first[(first.user_id == "u000") & (first.dimension == "gender")]
        assert ok.label.tolist() == ["female"] * 3 and ok.confidence.tolist() == [0.8] * 3
        assert ok[ok.teacher == "b"].label_probs.notna().all() and ok[ok.teacher == "a"].label_probs.isna().all()
        assert json.loads(ok[ok.teacher == "b"].label_probs.iloc[0])["male"] > 0
        sent_first = server.total

        server.heal()
        second = label_users(users, TAX, configs, cache, show_progress=False)
        assert server.total - sent_first == 3  # only the 3 failed requests (u003 x a0, a1, b0) were sent again
        assert not (second.parse_status == "error").any()

        before = server.total
        third = label_users(users, TAX, configs, cache, show_progress=False)
        assert server.total == before  # a full cache sends 0 requests
        pd.testing.assert_frame_equal(second, third)


def test_plan_counts_without_sending(tmp_path):
    users = _users(6)
    with FakeOpenAIServer() as server:
        configs = [_config(server.url, samples=2)]
        summary = plan(users, TAX, configs, tmp_path / "none.sqlite")
        assert summary[0]["requests"] == 12 and summary[0]["to_send"] == 12 and summary[0]["prompt_tokens_est"] > 12 * 100
        label_users(users[:2], TAX, configs, tmp_path / "c.sqlite", show_progress=False)
        summary = plan(users, TAX, configs, tmp_path / "c.sqlite")
        assert (summary[0]["cached"], summary[0]["to_send"]) == (4, 8)
        assert server.total == 4  # only the label_users call sent anything
    assert not (tmp_path / "none.sqlite").exists()


class _InterruptAfter(Teacher):
    """Answers canned JSON and simulates Ctrl-C after `params.stop_after` replies."""

    def answer(self, requests, on_reply):
        for i, request in enumerate(requests):
            if i == self.config.params["stop_after"]:
                raise KeyboardInterrupt
            on_reply(request, TeacherReply('{"gender": "male"}'))


TEACHERS.register("test-interrupt")(_InterruptAfter)


def test_ctrl_c_keeps_finished_replies(tmp_path):
    users, cache = _users(5), tmp_path / "c.sqlite"
    config = TeacherConfig(name="x", backend="test-interrupt", params={"stop_after": 3})
    with pytest.raises(KeyboardInterrupt):
        label_users(users, TAX, [config], cache, show_progress=False)
    summary = plan(users, TAX, [config], cache)
    assert (summary[0]["cached"], summary[0]["to_send"]) == (3, 2)


def test_default_panel_is_packaged():
    configs = load_teacher_configs(default_teachers_path())
    assert [(c.backend, c.prompt_variant) for c in configs] == [("smollm2", "default"), ("smollm2", "concise"), ("embedding", "default")]


def _write_inputs(tmp_path: Path, url: str, n_users: int) -> tuple[Path, Path]:
    users = tmp_path / "users.jsonl"
    users.write_text("".join(json.dumps(u.model_dump()) + "\n" for u in _users(n_users)), encoding="utf-8")
    teachers = tmp_path / "teachers.yaml"
    cfg = {"name": "remote", "backend": "openai", "model": "m", "params": {"base_url": url, "concurrency": 4, "timeout": 10}}
    teachers.write_text(yaml.safe_dump({"teachers": [cfg]}), encoding="utf-8")
    return users, teachers


def _label(tmp_path: Path, users: Path, teachers: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "confprofile", "label", "--users", str(users), "--teachers", str(teachers),
            "--out", str(tmp_path / "answers.parquet"), *extra]


def test_cli_plan_sends_nothing(tmp_path):
    with FakeOpenAIServer() as server:
        users, teachers = _write_inputs(tmp_path, server.url, 3)
        out = subprocess.run(_label(tmp_path, users, teachers, "--plan"), capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        assert "remote" in out.stdout and "to send" in out.stdout
        assert server.total == 0 and not (tmp_path / "answers.parquet").exists()


def test_resume_after_kill_9(tmp_path):
    """kill -9 mid-run, rerun: every answer exactly once, nothing re-sent beyond the requests in flight."""
    n_users, concurrency = 60, 4
    with FakeOpenAIServer(delay_s=0.1) as server:
        users, teachers = _write_inputs(tmp_path, server.url, n_users)
        proc = subprocess.Popen(_label(tmp_path, users, teachers), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        while server.total < 12 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert proc.poll() is None, "the run finished before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        sent_before = server.total
        assert sent_before < n_users and not (tmp_path / "answers.parquet").exists()

        rerun = subprocess.run(_label(tmp_path, users, teachers), capture_output=True, text=True, timeout=120)
        assert rerun.returncode == 0, rerun.stderr
        answers = pd.read_parquet(tmp_path / "answers.parquet")
    assert len(answers) == n_users * DIMS
    assert not answers.duplicated(["user_id", "teacher", "sample", "dimension"]).any()
    assert set(answers.user_id) == {f"u{i:03d}" for i in range(n_users)}
    assert (answers[answers.dimension == "gender"].label == "female").all()
    assert len(server.counts) == n_users  # every request reached the server
    repeats = sum(c - 1 for c in server.counts.values())
    assert repeats <= concurrency  # only requests in flight at the kill were sent twice


def test_unknown_backend_or_variant_is_one_line_input_error(tmp_path):
    users = tmp_path / "users.jsonl"
    users.write_text(json.dumps({"user_id": "a", "data": {"bio": "x"}}) + "\n", encoding="utf-8")
    for field, entry in [("backend", {"name": "x", "backend": "nope"}), ("prompt_variant", {"name": "x", "backend": "openai", "prompt_variant": "nope"})]:
        teachers = tmp_path / "t.yaml"
        teachers.write_text(yaml.safe_dump({"teachers": [entry]}), encoding="utf-8")
        out = subprocess.run(_label(tmp_path, users, teachers, "--plan"), capture_output=True, text=True, timeout=120)
        assert out.returncode == 2 and f"teachers.0.{field}" in out.stderr and "Traceback" not in out.stderr
