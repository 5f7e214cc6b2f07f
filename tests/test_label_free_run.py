"""Label-free by default: a users file alone gives every user a profile and a report without gold;
gold for a subset is held out and evaluated; profiles stream in chunks and resume after an interrupt."""

from __future__ import annotations

import gc
import json
import shutil
import subprocess
import tracemalloc

import pandas as pd
import pytest
from typer.testing import CliRunner

from confprofile import pipeline
from confprofile.bench.profilebench import generate
from confprofile.cli import app
from confprofile.data import UserRecord
from confprofile.errors import InputError
from confprofile.files import atomic_write_jsonl
from confprofile.pipeline import PipelineConfig
from confprofile.profiles import ProfileConfig, profile_users
from confprofile.split import assign_splits
from confprofile.student.base import prediction_frame
from confprofile.taxonomy import Taxonomy
from test_reliability_inputs import run_cli

N_USERS, DIMENSIONS = 60, 6


@pytest.fixture(scope="module")
def users_file(tmp_path_factory):
    root = tmp_path_factory.mktemp("users")
    users, gold = generate(N_USERS, 41)
    atomic_write_jsonl(root / "users.jsonl", users)
    atomic_write_jsonl(root / "gold.jsonl", gold[:20])  # gold for a third of the users
    return root


def label_free_config(run_dir, users_file, **data) -> dict:
    return {
        "run_dir": str(run_dir),
        "data": {"users": str(users_file / "users.jsonl"), **data},
        "label": {"max_users": 30},
        "teachers": [{"name": "embedding", "backend": "embedding", "model": "all-minilm-l6-v2", "temperature": 0.0,
                      "max_user_tokens": 64}],
        "distill": {"student": "encoder", "features": {"encoder": "", "lexical_features": 2000}},
        "rl": {"num_train_epochs": 1, "num_generations": 4, "users_per_step": 8, "skip_above": None, "skip_below": None},
        "profiles": {"chunk_users": 16},
    }


@pytest.mark.slow
def test_a_users_file_alone_profiles_every_user_with_a_label_free_report(users_file, tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text(json.dumps(label_free_config(tmp_path / "run", users_file)))  # JSON is YAML
    result = CliRunner().invoke(app, ["run", str(config)])
    assert result.exit_code == 0, result.output
    run_dir = tmp_path / "run"
    profiles = pd.read_parquet(run_dir / "profiles.parquet")
    assert len(profiles) == N_USERS * DIMENSIONS and not profiles.duplicated(["user_id", "dimension"]).any()
    assert profiles.user_id.nunique() == N_USERS and profiles.confidence.between(0, 1).all()
    kept_sft = json.loads((run_dir / "rl_summary.json").read_text())["chosen_epoch"] == 0
    assert (profiles.stage == ("student_sft" if kept_sft else "student_stage2")).all()
    assert profiles.pseudo_label.notna().sum() == 30 * DIMENSIONS  # the users the teachers labelled keep theirs
    lines = (run_dir / "profiles.jsonl").read_text().splitlines()
    assert len(lines) == N_USERS and set(json.loads(lines[0])["profile"]) == set(profiles.dimension)
    assert not (run_dir / "metrics.json").exists() and "skipped: no held-out users with gold" in result.output
    checks = json.loads((run_dir / "checks.json").read_text())
    assert checks["profiled_users"] == N_USERS and checks["teacher_reliability"] and checks["teacher_agreement"]
    report = (run_dir / "report.html").read_text()
    assert "Label-free checks" in report and 'id="stage-table"' not in report
    assert_renders_in_chromium(run_dir / "report.html", tmp_path)


def assert_renders_in_chromium(report, tmp_path) -> str:
    """The report in a real headless Chromium at 1,400 px: every table fits, and the page is not blank."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("chromium is not installed (make test-deps installs it)")
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--window-size=1400,900",
             f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run([chromium, *flags, "--dump-dom", report.as_uri()], capture_output=True, text=True, timeout=120).stdout
    widest = float(dom.split('data-widest-table="')[1].split('"')[0])
    assert 0 < widest <= 1400
    shot = tmp_path / "shot.png"
    subprocess.run([chromium, *flags, f"--screenshot={shot}", report.as_uri()], capture_output=True, timeout=120)
    from PIL import Image

    darkest, lightest = Image.open(shot).convert("L").getextrema()
    assert darkest < 100 and lightest > 200  # dark text on a light page
    return dom


@pytest.mark.slow
def test_gold_for_a_subset_is_held_out_of_training_and_alone_evaluated(users_file, tmp_path):
    config = PipelineConfig.model_validate(label_free_config(tmp_path / "run", users_file, gold=str(users_file / "gold.jsonl")))
    run_dir = pipeline.run(config, log=lambda line: None)
    gold_ids = {json.loads(line)["user_id"] for line in (users_file / "gold.jsonl").read_text().splitlines()}
    train_ids = {json.loads(line)["user_id"] for line in (run_dir / "train/users.jsonl").read_text().splitlines()}
    test_ids = {json.loads(line)["user_id"] for line in (run_dir / "test/users.jsonl").read_text().splitlines()}
    assert test_ids == gold_ids and not train_ids & gold_ids and len(train_ids) == 30
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert {s["metrics"]["n_users"] for s in metrics["stages"]} == {20}
    assert pd.read_parquet(run_dir / "profiles.parquet").user_id.nunique() == N_USERS
    dom = assert_renders_in_chromium(run_dir / "report.html", tmp_path)
    assert "Label-free checks" in dom and 'id="stage-table"' in dom


@pytest.mark.parametrize("data, words", [
    ({}, "data.users"),
    ({"users": "/nonexistent/users.jsonl"}, "file not found"),
    ({"train_users": "a.jsonl", "users": "b.jsonl"}, "data.users replaces"),
])
def test_missing_users_or_a_bad_data_section_is_one_line_and_exit_2(tmp_path, monkeypatch, capsys, data, words):
    config = tmp_path / "run.yaml"
    config.write_text(json.dumps({"run_dir": str(tmp_path / "run"), "data": data}))
    code, _, err = run_cli(monkeypatch, capsys, "run", str(config))
    assert code == 2 and words in err and len(err.strip().splitlines()) == 1


def test_splits_hold_out_gold_users_and_cap_what_the_teachers_label():
    ids = [f"u{i}" for i in range(10)]
    splits = assign_splits(ids, {"u1", "u2"}, None, 3, seed=0)
    assert splits["test"] == ["u1", "u2"] and len(splits["train"]) == 3 and len(splits["unlabeled"]) == 5
    assert sorted(splits["train"] + splits["test"] + splits["unlabeled"]) == sorted(ids)
    assert assign_splits(ids, set(), 0.3, 0.5, seed=0)["test"].__len__() == 3
    assert assign_splits(ids, set(), None, None, seed=0) == {"train": ids, "test": [], "unlabeled": []}


class CountingStudent:
    """Predicts a fixed label; counts the users it was asked about; can be told to fail at a chunk."""

    def __init__(self, fail_at_call: int | None = None):
        self.taxonomy = Taxonomy.builtin()
        self.calls, self.users_seen, self.first_user, self.fail_at_call = 0, 0, None, fail_at_call

    def predict(self, users, model_name):
        self.calls += 1
        if self.calls == self.fail_at_call:
            raise KeyboardInterrupt  # what a kill between chunks leaves behind
        self.users_seen += len(users)
        self.first_user = self.first_user or users[0].user_id
        dims = self.taxonomy.dimension_names
        n = len(users)
        labels = {d: [self.taxonomy.dimension(d).label_names[0]] * n for d in dims}
        return prediction_frame([u.user_id for u in users], self.taxonomy, labels, {d: [0.5] * n for d in dims}, model_name)


def write_users(path, n: int) -> None:
    atomic_write_jsonl(path, [UserRecord(user_id=f"u{i:05d}", data={"bio": f"user {i}"}).model_dump() for i in range(n)])


def test_profiles_resume_after_an_interrupt_without_redoing_chunks_and_write_every_user_once(tmp_path):
    write_users(tmp_path / "users.jsonl", 100)
    config = ProfileConfig(chunk_users=10)
    with pytest.raises(KeyboardInterrupt):
        profile_users(CountingStudent(fail_at_call=4), [tmp_path / "users.jsonl"], tmp_path / "profiles.parquet", config, stage="s")
    assert len(list((tmp_path / "profiles.parquet.parts").glob("*.parquet"))) == 3 and not (tmp_path / "profiles.parquet").exists()
    resumed = CountingStudent()
    counts = profile_users(resumed, [tmp_path / "users.jsonl"], tmp_path / "profiles.parquet", config, stage="s")
    assert resumed.calls == 7 and resumed.users_seen == 70 and resumed.first_user == "u00030"  # the three finished chunks are not redone
    profiles = pd.read_parquet(tmp_path / "profiles.parquet")
    assert counts["users"] == 100 and profiles.groupby("user_id").size().eq(len(Taxonomy.builtin().dimension_names)).all()
    assert profiles.user_id.nunique() == 100
    other = CountingStudent()  # other settings (chunk size) discard the old chunks instead of mixing them in
    profile_users(other, [tmp_path / "users.jsonl"], tmp_path / "profiles.parquet", ProfileConfig(chunk_users=25), stage="s")
    assert other.calls == 4
    model = tmp_path / "model"
    model.mkdir()
    (model / "heads.pt").write_text("v1")
    profile_users(CountingStudent(), [tmp_path / "users.jsonl"], tmp_path / "profiles.parquet", ProfileConfig(chunk_users=25), stage="s", model_dir=model)
    (model / "heads.pt").write_text("v2, retrained in place")
    retrained = CountingStudent()
    profile_users(retrained, [tmp_path / "users.jsonl"], tmp_path / "profiles.parquet", ProfileConfig(chunk_users=25), stage="s", model_dir=model)
    assert retrained.calls == 4  # a model rewritten at the same path does not reuse the old chunks


def test_a_user_id_repeated_across_chunks_is_an_input_error(tmp_path):
    write_users(tmp_path / "a.jsonl", 30)
    with pytest.raises(InputError, match="30 user_id.*appear more than once.*u00000"):
        profile_users(CountingStudent(), [tmp_path / "a.jsonl", tmp_path / "a.jsonl"], tmp_path / "profiles.parquet",
                      ProfileConfig(chunk_users=8), stage="s")


def test_profiles_memory_does_not_grow_with_the_number_of_chunks(tmp_path):
    def peak(n_users: int) -> int:
        write_users(tmp_path / f"{n_users}.jsonl", n_users)
        gc.collect()
        tracemalloc.start()
        profile_users(CountingStudent(), [tmp_path / f"{n_users}.jsonl"], tmp_path / f"out{n_users}/profiles.parquet",
                      ProfileConfig(chunk_users=50), stage="s")
        _, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        return top

    peak(100)  # imports and first-call caches are not what this measures
    small, large = peak(1000), peak(8000)  # 20 chunks vs 160 chunks of the same size
    per_user = (large - small) / 7000
    assert per_user < 100  # bytes; holding the profiles themselves would cost > 6 rows x 100 B per user
