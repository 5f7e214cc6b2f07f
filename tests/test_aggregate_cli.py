"""`confprofile aggregate`: the verb, its output file, and proof that it never reads gold."""

from __future__ import annotations

import ast
import builtins
import inspect
import io
import os
import pathlib
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

import confprofile.aggregate as agg
from confprofile.cli import app
from confprofile.cli.aggregate import aggregate_command
from confprofile.errors import InputError
from teacher_simulator import SimTeacher, simulate

PACKAGE = Path(agg.__file__).parent


@pytest.fixture()
def run_dir(tmp_path):
    answers, truth = simulate(200, {"gender": 2, "occupation": 4},
                              [SimTeacher("a", 0.8), SimTeacher("b", 0.65, samples=2, abstain=0.1, missing=0.05)], seed=1)
    answers.to_parquet(tmp_path / "answers.parquet")
    (tmp_path / "gold.jsonl").write_text('{"user_id": "u0000000", "labels": {"gender": "gender_0"}}\n')
    return tmp_path


def test_aggregate_package_never_imports_a_gold_loader():
    for path in PACKAGE.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                assert node.module not in ("confprofile.data", "confprofile.evaluate"), path
                assert all("gold" not in alias.name for alias in node.names), path
            if isinstance(node, ast.Import):
                assert all(alias.name not in ("confprofile.data", "confprofile.evaluate") for alias in node.names), path
            if isinstance(node, ast.Name | ast.Attribute):
                assert "load_gold" not in ast.unparse(node), path
    for fn in (agg.aggregate, agg.run_aggregation, aggregate_command, agg.teacher_predictions):
        assert not [p for p in inspect.signature(fn).parameters if "gold" in p], fn


def test_aggregate_verb_runs_beside_gold_without_touching_it(run_dir, monkeypatch):
    touched = []

    def guard(fn):
        def wrapper(file, *args, **kwargs):
            name = os.path.basename(os.fspath(file)) if isinstance(file, str | bytes | os.PathLike) else ""
            if str(name).startswith("gold"):
                touched.append(file)
                raise AssertionError(f"label-free stage opened {file}")
            return fn(file, *args, **kwargs)
        return wrapper

    def guard_method(fn):
        def wrapper(self, *args, **kwargs):
            if self.name.startswith("gold"):
                touched.append(self)
                raise AssertionError(f"label-free stage read {self}")
            return fn(self, *args, **kwargs)
        return wrapper

    monkeypatch.chdir(run_dir)
    for module, name in [(builtins, "open"), (io, "open"), (os, "open"), (pq, "read_table"), (pd, "read_json"),
                         (pd, "read_csv"), (pd, "read_parquet")]:
        monkeypatch.setattr(module, name, guard(getattr(module, name)))
    for name in ("open", "read_text", "read_bytes"):
        monkeypatch.setattr(pathlib.Path, name, guard_method(getattr(pathlib.Path, name)))

    result = CliRunner().invoke(app, ["aggregate", "--answers", "answers.parquet", "--method", "dawid_skene",
                                      "--out", "pseudo_labels.parquet"])
    assert result.exit_code == 0, result.output + repr(result.exception)
    assert touched == []
    assert "gender" in result.output and "occupation" in result.output and "kept" in result.output
    monkeypatch.undo()
    out = pq.read_table(run_dir / "pseudo_labels.parquet").to_pandas()
    assert list(out.columns) == ["user_id", "dimension", "label", "confidence", "votes", "kept", "rationale", "method",
                                 "used_labels"]
    assert len(out) == 400 and out["method"].iloc[0] == "dawid_skene+label_prior+confidence+class_balance+group_confidence"
    assert out["confidence"].between(0, 1).all() and not out["used_labels"].any()


def test_aggregate_verb_reports_bad_input_as_input_error(tmp_path):
    runner = CliRunner()
    missing = runner.invoke(app, ["aggregate", "--answers", str(tmp_path / "nope.parquet")])
    assert isinstance(missing.exception, InputError) and "file not found" in str(missing.exception)
    (tmp_path / "bad.parquet").write_text("not parquet")
    bad = runner.invoke(app, ["aggregate", "--answers", str(tmp_path / "bad.parquet")])
    assert isinstance(bad.exception, InputError)
    pd.DataFrame({"user_id": ["u"], "teacher": ["t"]}).to_parquet(tmp_path / "narrow.parquet")
    narrow = runner.invoke(app, ["aggregate", "--answers", str(tmp_path / "narrow.parquet")])
    assert isinstance(narrow.exception, InputError) and "dimension" in str(narrow.exception)
