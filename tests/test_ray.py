"""`label --engine ray`: same answers as the single-process path, no cached request sent twice.

One local Ray cluster (`ray.init(num_cpus=2)`) for the module; Ray's start-up takes several seconds
on a small machine, hence `slow`. The teacher is the `openai` backend against a loopback server.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections import Counter

import pandas as pd
import pytest
import typer
import yaml
from typer.testing import CliRunner

from confprofile.data import UserRecord
from confprofile.files import atomic_write_jsonl
from confprofile.errors import MissingExtraError
from confprofile.taxonomy import Taxonomy
from confprofile.teachers.base import TeacherConfig
from fake_openai import FakeOpenAIServer


class VaryingServer(FakeOpenAIServer):
    """Answers depend on the request (messages, model, seed), so a mix-up between users shows."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.sent: Counter[str] = Counter()

    def respond(self, body):
        ident = json.dumps([body["messages"], body.get("model"), body.get("seed")], sort_keys=True)
        digest = int(hashlib.sha256(ident.encode()).hexdigest(), 16)
        with self._lock:
            self.sent[ident] += 1
        status, payload, headers, wait = super().respond(body)
        if status == 200:
            reply = json.loads(payload)
            answer = {"gender": {"label": ["male", "female"][digest % 2], "confidence": (digest % 90 + 10) / 100, "rationale": f"r{digest % 997}"},
                      "age_group": {"label": ["18-24", "25_34", "unknown"][digest % 3], "confidence": "high"}}
            reply["choices"][0]["message"]["content"] = json.dumps(answer)
            payload = json.dumps(reply).encode()
        return status, payload, headers, wait


def _users(n: int) -> list[UserRecord]:
    return [UserRecord(user_id=f"u{i:02d}", data={"bio": f"user number {i}", "searches": [f"query {i}", f"topic {i % 3}"]}) for i in range(n)]


def _teachers(url: str) -> list[TeacherConfig]:
    params = {"base_url": url, "concurrency": 4, "max_retries": 1, "backoff_base": 0.01, "seed": 7}
    return [TeacherConfig(name="a", backend="openai", model="model-a", samples=2, params=params),
            TeacherConfig(name="b", backend="openai", model="model-b", prompt_variant="concise", params=params)]


def _sorted(frame):
    return frame.sort_values(["teacher", "user_id", "sample", "dimension"]).reset_index(drop=True)


def test_missing_ray_is_a_clear_error(monkeypatch):
    from confprofile.scale.ray_label import require_ray

    monkeypatch.setitem(sys.modules, "ray", None)  # makes `import ray` fail
    with pytest.raises(MissingExtraError, match=r"pip install 'confprofile\[ray\]'"):
        require_ray()


@pytest.fixture(scope="module")
def ray_cluster():
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.mark.slow
def test_ray_path_matches_local_repeats_nothing_and_retries_failures(ray_cluster, tmp_path):
    from confprofile.scale.ray_label import RayLabelConfig, label_users_ray
    from confprofile.cli.label import label_command
    from confprofile.label import label_users

    taxonomy = Taxonomy.builtin("profilebench")
    users = _users(11) + [UserRecord(user_id="bad", data={"bio": "ALWAYS_500"})]
    config = RayLabelConfig(actors=2, num_cpus=0.5, batch_size=4, use_actors=True)  # the GPU (vLLM) layout; the CLI run below uses tasks
    with VaryingServer() as server:
        teachers = _teachers(server.url)  # 3 requests per user: teacher a x 2 samples + teacher b
        # a single-process run labels the first 5 users; Ray must then send only the rest
        label_users(users[:5], taxonomy, teachers, tmp_path / "shared.sqlite", show_progress=False)
        assert server.total == 5 * 3
        first = label_users_ray(users, taxonomy, teachers, tmp_path / "shared.sqlite", ray_config=config, show_progress=False)
        bad_requests = 3 * (1 + teachers[0].params["max_retries"])  # each of bad's 3 requests: a try + a retry
        assert server.total == 11 * 3 + bad_requests
        assert set(first.loc[first.parse_status == "error", "user_id"]) == {"bad"}
        assert all(n == 1 for ident, n in server.sent.items() if "ALWAYS_500" not in ident)  # nothing sent twice
        # after the server heals, a rerun (this time through `confprofile label --engine ray`) sends only the failed requests
        server.heal()
        atomic_write_jsonl(tmp_path / "users.jsonl", [u.model_dump() for u in users])
        (tmp_path / "teachers.yaml").write_text(yaml.safe_dump({"teachers": [t.model_dump() for t in teachers]}))
        cli = typer.Typer()
        cli.command()(label_command)
        result = CliRunner().invoke(cli, ["--users", str(tmp_path / "users.jsonl"), "--teachers", str(tmp_path / "teachers.yaml"),
                                          "--cache", str(tmp_path / "shared.sqlite"), "--out", str(tmp_path / "answers.parquet"), "--engine", "ray"])
        assert result.exit_code == 0, result.output
        assert server.total == 11 * 3 + bad_requests + 3
        second = pd.read_parquet(tmp_path / "answers.parquet")
        # the single-process path on a fresh cache gives the same table
        local = label_users(users, taxonomy, teachers, tmp_path / "local.sqlite", show_progress=False)

    assert len(second) == 12 * 3 * len(taxonomy.dimensions)
    assert (second.parse_status != "error").all()
    pd.testing.assert_frame_equal(_sorted(second), _sorted(local), check_dtype=False)
    ok = first.user_id != "bad"  # the first Ray run already matched on every user it could answer
    assert _sorted(first[ok]).equals(_sorted(local[local.user_id != "bad"]))
    assert second.loc[second.dimension == "gender", "label"].nunique() == 2  # answers really vary by request


@pytest.mark.slow
def test_ray_profiles_match_the_local_engine_and_resume(ray_cluster, tmp_path):
    """`engine: ray` writes the local engine's profiles, and skips the chunks already finished."""
    from confprofile.profiles import ProfileConfig, profile_users
    from test_student import lexical_student, noisy_pseudo, planted

    users, gold = planted(90, 3)
    atomic_write_jsonl(tmp_path / "users.jsonl", [u.model_dump() for u in users])
    student = lexical_student().fit(users, noisy_pseudo(gold, 0.8, 3))
    local = profile_users(student, [tmp_path / "users.jsonl"], tmp_path / "local/profiles.parquet", ProfileConfig(chunk_users=20), stage="s")
    parts = tmp_path / "ray/profiles.parquet.parts"
    profile_users(student, [tmp_path / "users.jsonl"], tmp_path / "ray/profiles.parquet", ProfileConfig(chunk_users=20, engine="ray"), stage="s")
    (parts / "000001.parquet").unlink()
    finished = (parts / "000002.parquet").stat().st_mtime_ns
    profile_users(student, [tmp_path / "users.jsonl"], tmp_path / "ray/profiles.parquet", ProfileConfig(chunk_users=20, engine="ray"), stage="s")
    assert (parts / "000001.parquet").exists() and (parts / "000002.parquet").stat().st_mtime_ns == finished
    assert local["users"] == 90
    assert pd.read_parquet(tmp_path / "ray/profiles.parquet").equals(pd.read_parquet(tmp_path / "local/profiles.parquet"))
    assert (tmp_path / "ray/profiles.jsonl").read_text() == (tmp_path / "local/profiles.jsonl").read_text()
