"""Each stage through its verb gives what `confprofile run` gives with the same settings: the front
doors are thin adapters over one function per stage, so their defaults cannot drift apart."""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest
from typer.testing import CliRunner

from confprofile import pipeline
from confprofile.bench.profilebench import generate
from confprofile.cli import app
from confprofile.files import atomic_write_jsonl
from confprofile.pipeline import PipelineConfig

TEACHER = {"name": "embedding", "backend": "embedding", "model": "all-minilm-l6-v2", "temperature": 0.0, "max_user_tokens": 64}
RL = {"num_train_epochs": 1, "num_generations": 4, "users_per_step": 8}


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    root = tmp_path_factory.mktemp("verbs")
    users, gold = generate(50, 43)
    atomic_write_jsonl(root / "users.jsonl", users)
    atomic_write_jsonl(root / "gold.jsonl", gold[35:])  # the users with gold are held out: 15 test users
    (root / "teachers.yaml").write_text(json.dumps({"teachers": [TEACHER]}))
    (root / "rl.yaml").write_text(json.dumps(RL))
    config = PipelineConfig.model_validate({
        "run_dir": str(root / "run"), "data": {"users": str(root / "users.jsonl"), "gold": str(root / "gold.jsonl")},
        "label": {"max_users": 30},
        "teachers": [TEACHER], "distill": {"student": "encoder"}, "rl": RL, "profiles": {"chunk_users": 20},
    })
    return root, pipeline.run(config, log=lambda line: None)


def invoke(*args: str) -> None:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output


def sorted_frame(path, keys) -> pd.DataFrame:
    return pd.read_parquet(path).sort_values(keys).reset_index(drop=True)


@pytest.mark.slow
def test_label_and_aggregate_verbs_match_the_run(finished):
    root, run = finished
    labelled = root / "labelled.jsonl"  # the teachers answer the train and the held-out users
    labelled.write_text((run / "train/users.jsonl").read_text() + (run / "test/users.jsonl").read_text())
    invoke("label", "--users", str(labelled), "--teachers", str(root / "teachers.yaml"), "--out", str(root / "answers.parquet"))
    keys = ["user_id", "teacher", "sample", "dimension"]
    pd.testing.assert_frame_equal(sorted_frame(root / "answers.parquet", keys), sorted_frame(run / "answers.parquet", keys))
    invoke("aggregate", "--answers", str(run / "answers.parquet"), "--out", str(root / "pseudo.parquet"))
    keys = ["user_id", "dimension"]
    pd.testing.assert_frame_equal(sorted_frame(root / "pseudo.parquet", keys), sorted_frame(run / "pseudo_labels.parquet", keys))


@pytest.mark.slow
def test_distill_rl_and_predict_verbs_match_the_run(finished):
    root, run = finished
    train, unlabeled = run / "train/users.jsonl", run / "unlabeled/users.jsonl"
    invoke("distill", "--student", "encoder", "--users", str(train), "--pseudo-labels", str(run / "pseudo_labels.parquet"),
           "--unlabeled", str(unlabeled), "--out", str(root / "student"))
    pool = root / "pool.jsonl"
    pool.write_text(train.read_text() + unlabeled.read_text())
    invoke("rl", "--model", str(root / "student"), "--users", str(pool), "--pseudo-labels", str(run / "pseudo_labels.parquet"),
           "--config", str(root / "rl.yaml"), "--out", str(root / "student_rl"))
    assert json.loads((root / "student_rl/rl_summary.json").read_text())["validation_scores"] == \
        json.loads((run / "rl_summary.json").read_text())["validation_scores"]
    invoke("predict", "--model", str(root / "student_rl"), "--users", str(train), "--users", str(run / "test/users.jsonl"),
           "--users", str(unlabeled), "--out", str(root / "profiles.parquet"), "--chunk-users", "20")
    verb, staged = (sorted_frame(p, ["user_id", "dimension"]) for p in (root / "profiles.parquet", run / "profiles.parquet"))
    assert len(verb) == 50 * 6
    pd.testing.assert_frame_equal(verb[["user_id", "dimension", "label", "confidence"]], staged[["user_id", "dimension", "label", "confidence"]])


@pytest.mark.slow
def test_evaluate_and_report_verbs_match_the_run(finished, tmp_path):
    root, run = finished
    invoke("evaluate", "--gold", str(run / "test/gold.jsonl"), "--pred", str(run / "predictions/student_rl.parquet"),
           "--out", str(tmp_path / "metrics.json"))
    staged = next(s for s in json.loads((run / "metrics.json").read_text())["stages"] if s["role"] == "student_stage2")
    assert json.loads((tmp_path / "metrics.json").read_text()) == staged["metrics"]
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    for name in ("report.html", "checks.json"):
        (copy / name).unlink()
    invoke("report", str(copy))
    assert json.loads((copy / "checks.json").read_text()) == json.loads((run / "checks.json").read_text())
    assert (copy / "report.html").read_text().replace(str(copy), str(run)) == (run / "report.html").read_text()


@pytest.mark.parametrize("student, options", [("tiny", ["--epochs", "2", "--batch-size", "4"]), ("smollm2", ["--lora-r", "0"])])
def test_llm_distill_verb_trains_what_the_run_would(tmp_path, monkeypatch, student, options):
    """The LLM student's SFT settings from the verb equal those of a pipeline `distill` section with the
    same values, defaults by student included (training itself is covered by tests/test_distill.py)."""
    import confprofile.cli.students as verbs
    from confprofile.student.config import student_config

    trained = []
    monkeypatch.setattr(verbs, "train_student", lambda records, out, config: trained.append(config))
    monkeypatch.setattr(verbs, "load_sft", lambda path: [])
    invoke("distill", "--sft", str(tmp_path / "sft.jsonl"), "--out", str(tmp_path / "student"), "--student", student, *options)
    section = {"student": student, **{flag.strip("-").replace("-", "_"): float(value) if flag == "--epochs" else int(value)
                                      for flag, value in zip(options[::2], options[1::2])}}
    assert trained == [student_config(section).training()]
