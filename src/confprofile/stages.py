"""One function per pipeline stage, each reading and writing the run directory's files.

`pipeline.run` calls `run_<stage>(run)` in order; each returns the files it wrote (relative to
the run directory) so a rerun can check they still exist. Layout of a run directory:

    train/users.jsonl            label-free training users
    train/gold.jsonl             only with a supervised upper bound (flagged, evaluation side)
    test/users.jsonl             held-out users; test/gold.jsonl is read by `evaluate` only
    answers.parquet              every teacher answer (train + test users)
    pseudo_labels.parquet        the configured aggregate: what the student learns from
    aggregates/<variant>.parquet the other voting variants, for the stage table
    sft.jsonl, student/, student_rl/, supervised/   students
    predictions/<stage>.parquet  test-user predictions of every stage
    metrics.json, report.html    evaluation
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd

from confprofile.files import atomic_write_json, atomic_write_jsonl, atomic_write_parquet
from confprofile.taxonomy import Taxonomy

# Voting variants shown in the stage table: (file name, aggregator, calibrators)
TABLE_VARIANTS = [
    ("majority_vote", "majority", []),
    ("weighted_vote", "weighted", []),
    ("weighted_vote_calibrated", "weighted", ["confidence", "class_balance"]),
    ("dawid_skene_calibrated", "dawid_skene", ["confidence", "class_balance"]),
]


def _taxonomy(run) -> Taxonomy:
    return Taxonomy.load(run.config.taxonomy)


def _users(run, split: str):
    from confprofile.data import load_users

    return load_users(run.path(f"{split}/users.jsonl"))


def _texts(users) -> list[str]:
    from confprofile.data import render_user

    return [render_user(u) for u in users]


# ---------------------------------------------------------------- data
def run_data(run) -> list[str]:
    """Generate a synthetic split, or copy the configured files into the run directory."""
    data = run.config.data
    outputs = ["train/users.jsonl", "test/users.jsonl"]
    if data.generate is not None:
        from confprofile.bench.profilebench import write_split

        g = data.generate
        write_split(run.path("train"), g.train_users, g.train_seed, g.difficulty)
        write_split(run.path("test"), g.test_users, g.test_seed, g.difficulty)
        return outputs + ["train/gold.jsonl", "test/gold.jsonl"]
    from confprofile.data import load_users

    for split, users_path, gold_path in (("train", data.train_users, data.train_gold), ("test", data.test_users, data.test_gold)):
        if users_path is None:
            raise ValueError(f"data.{split}_users is required when data.generate is not set")
        users = load_users(users_path)  # validates before copying
        atomic_write_jsonl(run.path(f"{split}/users.jsonl"), [u.model_dump() for u in users])
        if gold_path is not None:
            shutil.copyfile(gold_path, run.path(f"{split}/gold.jsonl"))
            outputs.append(f"{split}/gold.jsonl")
    return outputs


# ---------------------------------------------------------------- stage 1a
def run_label(run) -> list[str]:
    from confprofile.synthesize import default_teachers_path, label_users
    from confprofile.teachers.base import load_teacher_configs

    configs = run.config.teachers or load_teacher_configs(default_teachers_path())
    users = _users(run, "train") + _users(run, "test")
    answers = label_users(users, _taxonomy(run), configs, run.path("answers.cache.sqlite"))
    atomic_write_parquet(run.path("answers.parquet"), answers)
    return ["answers.parquet"]


# ---------------------------------------------------------------- stage 1b
def run_aggregate(run) -> list[str]:
    """Label-free: teacher calibration and class balance are fitted on train + test answers together
    (no gold is involved, so this is transductive but not a leak)."""
    from confprofile.aggregate import aggregate, teacher_predictions

    taxonomy = _taxonomy(run)
    answers = pd.read_parquet(run.path("answers.parquet"))
    cfg = run.config.aggregate
    pseudo = aggregate(answers, taxonomy=taxonomy, method=cfg.method, calibrate=cfg.calibrate, **cfg.options)
    atomic_write_parquet(run.path("pseudo_labels.parquet"), pseudo)
    outputs = ["pseudo_labels.parquet"]
    for name, method, calibrate in TABLE_VARIANTS:
        frame = aggregate(answers, taxonomy=taxonomy, method=method, calibrate=calibrate)
        atomic_write_parquet(run.path(f"aggregates/{name}.parquet"), frame)
        outputs.append(f"aggregates/{name}.parquet")
    for teacher, frame in teacher_predictions(answers, taxonomy=taxonomy).items():
        atomic_write_parquet(run.path(f"aggregates/teacher_{teacher}.parquet"), frame)
        outputs.append(f"aggregates/teacher_{teacher}.parquet")
    return outputs
