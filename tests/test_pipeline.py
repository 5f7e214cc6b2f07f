"""A miniature run of the whole pipeline (tiny models, a few users), resume, and the HTML report
rendered in a real headless Chromium."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from confprofile import pipeline, stages
from confprofile.errors import InputError
from confprofile.pipeline import STAGES, PipelineConfig


def mini_config(run_dir: Path) -> PipelineConfig:
    return PipelineConfig.model_validate({
        "run_dir": str(run_dir),
        "data": {"generate": {"train_users": 16, "test_users": 8, "train_seed": 11, "test_seed": 12}},
        "teachers": [
            {"name": "embedding", "backend": "embedding", "model": "all-minilm-l6-v2", "temperature": 0.0},
            {"name": "embedding-short", "backend": "embedding", "model": "all-minilm-l6-v2", "temperature": 0.0,
             "params": {"softmax_temperature": 0.2, "mix": 0.3}, "max_user_tokens": 64},
        ],
        "aggregate": {"method": "weighted", "options": {"keep_threshold": 0.0}},
        "distill": {"student": "tiny", "epochs": 1, "batch_size": 8, "tiny_hidden": 64,
                    "predict": {"batch_size": 8, "max_new_tokens": 24, "progress": False}},
        "rl": {"num_generations": 2, "users_per_step": 2, "max_steps": 1, "max_completion_length": 24,
               "skip_above": None, "skip_below": None},
        "upper_bound": {"enabled": True},
    })


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("pipeline") / "run"
    logs: list[str] = []
    pipeline.run(mini_config(run_dir), log=logs.append)
    return run_dir, logs


@pytest.mark.slow
def test_every_stage_writes_its_contract_files(finished_run):
    run_dir, logs = finished_run
    assert [line for line in logs if line.endswith("running")] == [f"[{s}] running" for s in STAGES]
    answers = pd.read_parquet(run_dir / "answers.parquet")
    assert set(answers.columns) >= {"user_id", "teacher", "sample", "dimension", "label", "confidence", "parse_status"}
    assert answers.user_id.nunique() == 24  # train + test users
    pseudo = pd.read_parquet(run_dir / "pseudo_labels.parquet")
    assert set(pseudo.columns) >= {"user_id", "dimension", "label", "confidence", "votes", "kept", "used_labels"}
    assert not pseudo.used_labels.any()
    sft = [json.loads(line) for line in (run_dir / "sft.jsonl").read_text().splitlines()]
    assert sft and all(r["messages"][-1]["role"] == "assistant" and r["weight"] >= 0 for r in sft)
    for name in ("student", "student_rl", "supervised"):
        predictions = pd.read_parquet(run_dir / f"predictions/{name}.parquet")
        assert len(predictions) == 8 * 6 and predictions.user_id.str.startswith("u12_").all()
    metrics = json.loads((run_dir / "metrics.json").read_text())
    names = [s["name"] for s in metrics["stages"]]
    for expected in ("keyword baseline", "majority vote", "confidence-weighted vote", "SFT student", "stage-2 student",
                     "supervised upper bound (uses gold)"):
        assert expected in names
    assert all(0.0 <= s["metrics"]["headline_f1"] <= 1.0 for s in metrics["stages"])
    roles = {s["name"]: s["role"] for s in metrics["stages"]}
    assert roles["SFT student"] == "student_sft" and roles["stage-2 student"] == "student_stage2"
    assert roles["supervised upper bound (uses gold)"] == "supervised" and roles["keyword baseline"] == "baseline"
    assert {"teacher", "pseudo_labels", "aggregate"} <= set(roles.values())


@pytest.mark.slow
def test_rerun_skips_finished_stages_and_from_redoes(finished_run):
    run_dir, _ = finished_run
    logs: list[str] = []
    pipeline.run(mini_config(run_dir), log=logs.append)
    assert all(line.endswith("up to date, skipped") for line in logs)
    logs.clear()
    pipeline.run(mini_config(run_dir), from_stage="evaluate", log=logs.append)
    assert "[aggregate] up to date, skipped" in logs and "[evaluate] running" in logs and "[report] running" in logs


@pytest.mark.slow
def test_interrupted_stage_resumes_without_redoing_earlier_ones(finished_run, tmp_path, monkeypatch):
    run_dir, _ = finished_run
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    state = json.loads((copy / "stages.json").read_text())
    del state["evaluate"], state["report"]  # as if killed while evaluating
    (copy / "stages.json").write_text(json.dumps(state))
    (copy / "metrics.json").unlink()
    logs: list[str] = []
    pipeline.run(mini_config(copy), log=logs.append)
    assert [line for line in logs if line.endswith("running")] == ["[evaluate] running", "[report] running"]
    assert (copy / "metrics.json").exists()


def test_changed_config_invalidates_that_stage_and_what_reads_it(tmp_path):
    config = mini_config(tmp_path / "run")
    run = pipeline.Run(config)

    def changed(edit) -> list[str]:
        before = {s: run.fingerprint(s) for s in STAGES}
        edit()
        return [s for s in STAGES if before[s] != run.fingerprint(s)]

    assert changed(lambda: setattr(config.rl, "max_steps", 2)) == ["rl", "profiles", "evaluate", "report"]  # not the supervised reference
    assert changed(lambda: setattr(config.distill, "epochs", 2)) == ["distill", "rl", "profiles", "upper_bound", "evaluate", "report"]
    assert changed(lambda: config.aggregate.options.update(keep_threshold=0.2)) == ["aggregate", "distill", "rl", "profiles", "evaluate", "report"]


def test_a_stage_that_skips_a_declared_file_stops_the_run(tmp_path, monkeypatch):
    import dataclasses

    label = next(s for s in stages.STAGES if s.name == "label")
    broken = dataclasses.replace(label, run=lambda run: ["something_else.parquet"])
    monkeypatch.setattr(stages, "STAGES", [s if s.name != "label" else broken for s in stages.STAGES])
    with pytest.raises(RuntimeError, match="label did not write answers.parquet"):
        pipeline.run(mini_config(tmp_path / "run"), log=lambda line: None)
    assert not json.loads((tmp_path / "run/stages.json").read_text())["label"]["finished"]


def test_bad_config_names_the_field(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("data:\n  generate: {train_users: many}\n")
    with pytest.raises(InputError) as err:
        PipelineConfig.from_yaml(path)
    assert "data.generate.train_users" in str(err.value)
    for section, field in (("distill: {features: {encodr: x}}", "distill.features.encodr"), ("rl: {lr: 1}", "rl.lr"),
                           ("distill: {student: tiny, sft: {rationales: false}}", "distill.sft.rationales")):
        path.write_text(section + "\n")
        with pytest.raises(InputError) as err:
            PipelineConfig.from_yaml(path)
        assert str(path) in str(err.value) and f"'{field}'" in str(err.value)
    with pytest.raises(InputError):
        pipeline.run(mini_config(tmp_path / "r"), from_stage="nonsense")


def test_label_free_stages_never_read_gold():
    """Only the stages declared to read gold (the flagged supervised reference and evaluation) load it;
    the data stage files gold beside its users without reading the labels."""
    import inspect

    assert [stage.name for stage in stages.STAGES if stage.reads_gold] == ["upper_bound", "evaluate"]
    for stage in stages.STAGES:
        source = inspect.getsource(stage.run)
        if not stage.reads_gold:
            assert "load_gold" not in source and "read_jsonl" not in source, stage.name
    for module in ("label", "aggregate", "distill", "predict"):
        root = Path(__file__).parents[1] / "src" / "confprofile"
        files = [root / f"{module}.py"] if (root / f"{module}.py").exists() else list((root / module).glob("*.py"))
        assert files and not any("load_gold" in f.read_text() for f in files), module


@pytest.mark.slow
def test_report_renders_in_headless_chromium(finished_run, tmp_path):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("chromium is not installed (make test-deps installs it)")
    run_dir, _ = finished_run
    report = run_dir / "report.html"
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run([chromium, *flags, "--dump-dom", report.as_uri()], capture_output=True, text=True, timeout=120)
    assert 'id="stage-table"' in dom.stdout and "SFT student" in dom.stdout
    shot = tmp_path / "shot.png"
    subprocess.run([chromium, *flags, f"--screenshot={shot}", "--window-size=1200,900", report.as_uri()],
                   capture_output=True, timeout=120)
    from PIL import Image

    pixels = Image.open(shot).convert("L").getextrema()
    assert pixels[0] < 100 and pixels[1] > 200  # dark text on a light page: not blank


def test_changed_config_discards_stale_training_work_but_resume_keeps_it(tmp_path):
    run = pipeline.Run(mini_config(tmp_path / "run"))
    (run.path("student") / "checkpoints").mkdir(parents=True)
    run.mark_started("distill", "fp-a", "student")  # interrupted while training with config A
    run.mark_started("distill", "fp-a", "student")  # resumed with the same config: checkpoints kept
    assert (run.path("student") / "checkpoints").exists()
    assert not run.is_done("distill", "fp-a")
    run.mark_started("distill", "fp-b", "student")  # config changed: A's checkpoints must not be resumed
    assert not run.path("student").exists()


@pytest.mark.slow
def test_encoder_student_run_learns_from_train_and_unlabeled_users(tmp_path):
    """The CPU default: the encoder student, stage 2 over train + unlabeled users, every stage's predictions."""
    config = mini_config(tmp_path / "run").model_dump()
    config["data"]["generate"]["unlabeled_users"] = 20
    config["distill"] = {"student": "encoder", "features": {"encoder_tokens": 64, "lexical_features": 2000}}
    config["rl"] = {"num_generations": 4, "users_per_step": 8, "num_train_epochs": 1, "skip_above": None, "skip_below": None}
    config["upper_bound"] = {"enabled": True}
    run_dir = pipeline.run(PipelineConfig.model_validate(config), log=lambda line: None)
    assert len((run_dir / "unlabeled/users.jsonl").read_text().splitlines()) == 20
    assert not (run_dir / "unlabeled/gold.jsonl").exists() and not (run_dir / "sft.jsonl").exists()
    summary = json.loads((run_dir / "rl_summary.json").read_text())
    assert summary["users"] == 16 + 20 and summary["rollouts_generated"] > 0
    for name in ("student", "student_rl", "supervised"):
        predictions = pd.read_parquet(run_dir / f"predictions/{name}.parquet")
        assert len(predictions) == 8 * 6 and predictions.confidence.between(0, 1).all()
    roles = {s["role"] for s in json.loads((run_dir / "metrics.json").read_text())["stages"]}
    assert {"student_sft", "student_stage2", "supervised", "pseudo_labels"} <= roles


def test_run_and_the_aggregate_verb_calibrate_alike_by_default():
    from confprofile.aggregate.pseudo_labels import DEFAULT_CALIBRATION

    assert PipelineConfig().aggregate.calibrate == list(DEFAULT_CALIBRATION)
