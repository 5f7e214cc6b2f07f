"""Label shares known from outside the answers (aggregate.known_shares): read, checked, and used as the prior."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from confprofile.aggregate.base import encode
from confprofile.aggregate.calibration import LabelPriorCorrection
from confprofile.aggregate.known_shares import load_label_shares
from confprofile.aggregate.pseudo_labels import run_aggregation, teacher_predictions
from confprofile.cli import app
from confprofile.errors import InputError
from confprofile.pipeline import PipelineConfig, Run
from confprofile.stages import run_aggregate
from confprofile.taxonomy import Dimension, Label, Taxonomy
from teacher_simulator import SimTeacher, simulate

TRUE_SHARES = {"d": {"d_0": 0.7, "d_1": 0.2, "d_2": 0.1}}
TAXONOMY = Taxonomy(name="t", dimensions=[Dimension(name="d", labels=[Label(name=f"d_{j}") for j in range(3)]),
                                          Dimension(name="e", labels=[Label(name="male"), Label(name="female")])])


@pytest.fixture(scope="module")
def weak_panel():
    """Three weak teachers (accuracy .45-.5, errors spread evenly) on a 70 / 20 / 10 truth."""
    teachers = [SimTeacher("a", 0.5), SimTeacher("b", 0.45), SimTeacher("c", 0.45)]
    answers, truth = simulate(3000, {"d": 3}, teachers, priors={"d": np.array([0.7, 0.2, 0.1])}, seed=3)
    return answers, truth.set_index("user_id")["label"]


def shares_of(pseudo) -> np.ndarray:
    return pseudo["label"].value_counts(normalize=True).reindex(list(TRUE_SHARES["d"]), fill_value=0).to_numpy()


def test_known_shares_replace_the_flat_prior_weak_teachers_imply(weak_panel):
    answers, truth = weak_panel
    true = np.array(list(TRUE_SHARES["d"].values()))
    estimated, est_summary = run_aggregation(answers)
    known, summary = run_aggregation(answers, label_shares=TRUE_SHARES)
    accuracy = lambda p: float((p["label"].to_numpy() == truth.reindex(p["user_id"]).to_numpy()).mean())  # noqa: E731
    assert 0.5 * np.abs(shares_of(estimated) - true).sum() > 0.15  # the errors flatten the estimated prior
    assert np.abs(shares_of(known) - true).max() < 0.02
    assert accuracy(known) > accuracy(estimated) + 0.1
    assert summary["prior_source"].tolist() == ["known"] and est_summary["prior_source"].tolist() == ["estimated"]
    # the confidences are stated under the same prior: without that shift they under-state the labels more
    labels_only, _ = run_aggregation(answers, calibrator_options={"class_balance": {"targets": TRUE_SHARES}})
    assert (labels_only["label"] == known["label"]).all()
    gap = lambda p: abs(p["confidence"].mean() - accuracy(p))  # noqa: E731
    assert gap(known) < gap(labels_only) - 0.1


def test_shares_are_normalised_and_labels_read_like_answers():
    shares = load_label_shares({"e": {"Male": 3, "female": 1}}, TAXONOMY)
    assert shares == {"e": {"male": 0.75, "female": 0.25}}


@pytest.mark.parametrize("raw, field, words", [
    ({"x": {"a": 1}}, "label_shares.x", "not a dimension"),
    ({"e": {"male": 1, "robot": 1}}, "label_shares.e.robot", "not a label"),
    ({"e": {"male": -0.5, "female": 1}}, "label_shares.e.male", ">= 0"),
    ({"d": {1317: 1, "d_0": 1, "d_1": 1, "d_2": 1}}, "label_shares.d.1317", "quote labels"),
    ({"e": {"male": "lots", "female": 1}}, "label_shares.e.male", ">= 0"),
    ({"e": {"male": 1}}, "label_shares.e", "'female'"),
    ({"e": {"male": 0, "female": 0}}, "label_shares.e", "sum to 0"),
    ({"e": [0.5, 0.5]}, "label_shares.e", "mapping"),
    ([0.5], "label_shares", "mapping"),
])
def test_bad_shares_name_the_field(raw, field, words):
    with pytest.raises(InputError) as err:
        load_label_shares(raw, TAXONOMY)
    assert err.value.field == field and words in err.value.message


def test_shares_need_the_class_balance_step(weak_panel):
    with pytest.raises(InputError, match="class_balance"):
        run_aggregation(weak_panel[0], calibrate=["label_prior", "confidence"], label_shares=TRUE_SHARES)


def test_aggregate_verb_takes_a_shares_file_and_names_a_bad_one(weak_panel, tmp_path):
    answers = tmp_path / "answers.parquet"
    weak_panel[0].to_parquet(answers)
    TAXONOMY.to_yaml(tmp_path / "taxonomy.yaml")
    base = ["aggregate", "--answers", str(answers), "--taxonomy", str(tmp_path / "taxonomy.yaml"), "--out", str(tmp_path / "p.parquet")]
    (tmp_path / "shares.yaml").write_text(json.dumps(TRUE_SHARES))
    result = CliRunner().invoke(app, [*base, "--label-shares", str(tmp_path / "shares.yaml")])
    assert result.exit_code == 0, result.output
    assert np.abs(shares_of(pd.read_parquet(tmp_path / "p.parquet")) - list(TRUE_SHARES["d"].values())).max() < 0.02
    (tmp_path / "bad.yaml").write_text("d: {d_0: 0.5, d_9: 0.5}\n")
    result = CliRunner().invoke(app, [*base, "--label-shares", str(tmp_path / "bad.yaml")])
    assert isinstance(result.exception, InputError)  # `confprofile` (cli.main) prints it as one line, exit 2
    assert "bad.yaml" in str(result.exception) and "label_shares.d.d_9" in str(result.exception)


def test_the_aggregate_stage_reads_the_configured_shares_and_reruns_when_they_change(weak_panel, tmp_path):
    shares_file = tmp_path / "shares.yaml"
    shares_file.write_text(json.dumps(TRUE_SHARES))
    TAXONOMY.to_yaml(tmp_path / "taxonomy.yaml")
    config = PipelineConfig.model_validate({"run_dir": str(tmp_path / "run"), "taxonomy": str(tmp_path / "taxonomy.yaml"),
                                            "data": {"users": "users.jsonl"}, "aggregate": {"label_shares": str(shares_file)}})
    run = Run(config)
    weak_panel[0].to_parquet(run.path("answers.parquet"))
    run_aggregate(run)
    assert np.abs(shares_of(pd.read_parquet(run.path("pseudo_labels.parquet"))) - list(TRUE_SHARES["d"].values())).max() < 0.02
    before = run.fingerprint("aggregate")
    shares_file.write_text(json.dumps({"d": {"d_0": 0.4, "d_1": 0.4, "d_2": 0.2}}))
    assert run.fingerprint("aggregate") != before


def test_a_scoring_teacher_told_the_shares_answers_under_them():
    rng = np.random.default_rng(4)
    truth = (rng.random(3000) < 0.2).astype(int)  # 80 / 20
    p_b = 1 / (1 + np.exp(-(np.where(truth == 1, 0.6, -0.6) + rng.normal(0, 1, 3000))))
    answers = pd.DataFrame({"user_id": [f"u{i:04d}" for i in range(3000)], "teacher": "scorer", "sample": 0, "dimension": "e",
                            "label": np.where(p_b > 0.5, "female", "male"), "confidence": np.maximum(p_b, 1 - p_b), "rationale": "",
                            "label_probs": [json.dumps({"male": 1 - p, "female": p}) for p in p_b]})
    enc = encode(answers, TAXONOMY)
    plain = teacher_predictions(LabelPriorCorrection().fit_transform(enc))["scorer"]
    told = teacher_predictions(LabelPriorCorrection(label_shares={"e": {"male": 0.8, "female": 0.2}}).fit_transform(enc))["scorer"]
    gold = np.where(truth == 1, "female", "male")
    accuracy = lambda p: float((p.sort_values("user_id")["label"].to_numpy() == gold).mean())  # noqa: E731
    assert (told["label"] == "female").mean() < (plain["label"] == "female").mean() - 0.2
    assert accuracy(told) > accuracy(plain) + 0.1
