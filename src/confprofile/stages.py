"""One function per pipeline stage, each reading and writing the run directory's files, and `STAGES`,
the one table that declares them: the function, the stages whose files it reads and the config
section it depends on (together its fingerprint), and the folder of resumable work it keeps.

`pipeline.run` runs the table in order; each function returns the files it wrote (relative to the
run directory) so a rerun can check they still exist. Layout of a run directory:

    train/users.jsonl            label-free training users
    train/gold.jsonl             only with a supervised upper bound (flagged, evaluation side)
    test/users.jsonl             held-out users (optional); test/gold.jsonl is read by `evaluate` only
    unlabeled/users.jsonl        users no teacher labels: the encoder student's vocabulary and stage 2's pool
    features/embeddings.npz      the encoder student's cached sentence embeddings (shared by its stages)
    answers.parquet              every teacher answer (train + test users)
    pseudo_labels.parquet        the configured aggregate: what the student learns from
    aggregates/<variant>.parquet the other voting variants, for the stage table
    sft.jsonl (LLM students), student/, student_rl/, supervised/   students
    predictions/<stage>.parquet  test-user predictions of every stage
    profiles.parquet, profiles.jsonl   every user's profile from the final student (see `profiles`)
    metrics.json                 evaluation (only with held-out gold)
    checks.json, report.html     label-free checks and the report
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from confprofile.files import atomic_write_json, atomic_write_jsonl, atomic_write_parquet
from confprofile.taxonomy import Taxonomy

if TYPE_CHECKING:  # pandas loads inside the stages that use it
    import pandas as pd

# Voting variants shown in the stage table: (file name, aggregator, calibrators)
TABLE_VARIANTS = [
    ("majority_vote", "majority", []),
    ("weighted_vote", "weighted", []),
    ("weighted_vote_calibrated", "weighted", ["label_prior", "confidence", "class_balance", "group_confidence"]),
    ("dawid_skene_calibrated", "dawid_skene", ["label_prior", "confidence", "class_balance", "group_confidence"]),
]


def _taxonomy(run) -> Taxonomy:
    return Taxonomy.load(run.config.taxonomy)


def _users(run, split: str) -> list:
    """The users of one set of the run (train, test or unlabeled); a set the data stage left empty has none."""
    from confprofile.data import load_users

    path = run.path(f"{split}/users.jsonl")
    return load_users(path) if path.exists() else []


# ---------------------------------------------------------------- data
def run_data(run) -> list[str]:
    """The users (and any gold) -> train / test / unlabeled users of the run (see `split`)."""
    from confprofile.split import split_sizes, write_data

    outputs = write_data(run.dir, run.config.data, run.config.label)
    sizes = split_sizes(run.dir)
    print(f"  {sizes['train']} users for the teachers, {sizes['test']} held out, {sizes['unlabeled']} for the student alone"
          + ("" if run.path("test/gold.jsonl").exists() else " (no gold: evaluation will be skipped)"))
    return outputs


# ---------------------------------------------------------------- stage 1a
def run_label(run) -> list[str]:
    from confprofile.label import default_teachers_path, label_users
    from confprofile.teachers.base import load_teacher_configs

    configs = run.config.teachers or load_teacher_configs(default_teachers_path())
    users = _users(run, "train") + _users(run, "test")
    answers = label_users(users, _taxonomy(run), configs, run.path("answers.cache.sqlite"), redact=run.config.privacy.redact)
    atomic_write_parquet(run.path("answers.parquet"), answers)
    return ["answers.parquet"]


# ---------------------------------------------------------------- stage 1b
def run_aggregate(run) -> list[str]:
    """Label-free: teacher calibration and class balance are fitted on train + test answers together
    (no gold is involved, so this is transductive but not a leak)."""
    import pandas as pd

    from confprofile.aggregate import aggregate, teacher_predictions
    from confprofile.aggregate.known_shares import load_label_shares
    from confprofile.aggregate.pseudo_labels import run_aggregation

    taxonomy = _taxonomy(run)
    answers = pd.read_parquet(run.path("answers.parquet"))
    cfg = run.config.aggregate
    shares = load_label_shares(cfg.label_shares, taxonomy) if cfg.label_shares else None
    pseudo, summary = run_aggregation(answers, taxonomy=taxonomy, method=cfg.method, calibrate=cfg.calibrate,
                                      label_shares=shares, **cfg.options)
    atomic_write_parquet(run.path("pseudo_labels.parquet"), pseudo)
    atomic_write_json(run.path("aggregate_summary.json"), json.loads(summary.to_json(orient="records")))
    outputs = ["pseudo_labels.parquet", "aggregate_summary.json"]
    for name, method, calibrate in TABLE_VARIANTS:
        frame = aggregate(answers, taxonomy=taxonomy, method=method, calibrate=calibrate)
        atomic_write_parquet(run.path(f"aggregates/{name}.parquet"), frame)
        outputs.append(f"aggregates/{name}.parquet")
    for teacher, frame in teacher_predictions(answers, taxonomy=taxonomy).items():
        atomic_write_parquet(run.path(f"aggregates/teacher_{teacher}.parquet"), frame)
        outputs.append(f"aggregates/teacher_{teacher}.parquet")
    return outputs


# ---------------------------------------------------------------- stage 1c
# `distill` is the student's config: EncoderStudentConfig (the CPU default: frozen MiniLM + lexical
# features, one head per dimension) or LLMStudentConfig (`tiny`, `smollm2`, an HF dir).
def _is_encoder(run) -> bool:
    from confprofile.student.config import config_family

    return config_family(run.config.distill) == "encoder"


def _new_student(run):
    from confprofile.student import EncoderStudent, LLMStudent

    if _is_encoder(run):
        return EncoderStudent(_taxonomy(run), run.config.distill, cache_path=run.path("features/embeddings.npz"))
    return LLMStudent(_taxonomy(run), run.config.distill)


def _open_student(run, name: str):
    from confprofile.student import open_student

    return open_student(run.path(name), cache_path=run.path("features/embeddings.npz"), taxonomy=_taxonomy(run),
                        config=run.config.distill)


def _pool(run) -> list:
    """Every user a student may learn from without labels: train users plus the unlabeled ones."""
    return _users(run, "train") + _users(run, "unlabeled")


def _fit_and_predict(run, targets: pd.DataFrame, name: str, **fit_options) -> list[str]:
    """Fit the configured student on `targets` of the train users into `name/`, then predict the test users."""
    student = _new_student(run)
    student.fit(_users(run, "train"), targets, work_dir=run.path(name), vocabulary_users=_pool(run), **fit_options)
    student.save(run.path(name))
    return [name, *_predict_test(run, student, name)]


def _predict_test(run, student, name: str) -> list[str]:
    """Predictions of the held-out users, for the stage table (none when nothing is held out)."""
    test = _users(run, "test")
    if not test:
        return []
    predictions = student.predict(test, model_name=name)
    atomic_write_parquet(run.path(f"predictions/{name}.parquet"), predictions)
    return [f"predictions/{name}.parquet"]


def run_distill(run) -> list[str]:
    import pandas as pd

    pseudo = pd.read_parquet(run.path("pseudo_labels.parquet"))
    if _is_encoder(run):
        return _fit_and_predict(run, pseudo, "student")
    records = _new_student(run).sft_records(_users(run, "train"), pseudo)
    atomic_write_jsonl(run.path("sft.jsonl"), records)
    return ["sft.jsonl", *_fit_and_predict(run, pseudo, "student", records=records)]


# ---------------------------------------------------------------- stage 2
def run_rl(run) -> list[str]:
    """Stage 2 from `run.config.rl`, already built over the student family's defaults (None: skipped)."""
    import pandas as pd

    config = run.config.rl
    if config is None:
        return []
    pseudo = pd.read_parquet(run.path("pseudo_labels.parquet"))
    if _is_encoder(run):
        from confprofile.rl.encoder_policy import train_encoder_stage2

        summary = train_encoder_stage2(_open_student(run, "student"), _pool(run), run.path("student_rl"), config, pseudo=pseudo)
    else:
        from confprofile.rl.command import train_rl

        # resumes an interrupted run's checkpoints; `mark_started` discards them when the config changed
        summary = train_rl(run.path("student"), _users(run, "train"), run.path("student_rl"), config, pseudo=pseudo, resume=True)
    atomic_write_json(run.path("rl_summary.json"), summary)
    shutil.copyfile(run.path("student_rl/rl_log.jsonl"), run.path("rl_log.jsonl"))
    return ["rl_summary.json", "rl_log.jsonl", "student_rl", *_predict_test(run, _open_student(run, "student_rl"), "student_rl")]


# ---------------------------------------------------------------- profiles
def run_profiles(run) -> list[str]:
    """The final student (stage 2 if it ran, else SFT) profiles every user of the run, in chunks."""
    import pandas as pd

    from confprofile.profiles import profile_users

    name, stage = ("student_rl", "student_stage2") if run.path("student_rl").exists() else ("student", "student_sft")
    if name == "student_rl" and json.loads(run.path("rl_summary.json").read_text()).get("chosen_epoch") == 0:
        stage = "student_sft"  # stage 2 ran but kept the SFT student: say who answered
    files = [run.path(f"{split}/users.jsonl") for split in ("train", "test", "unlabeled") if run.path(f"{split}/users.jsonl").exists()]
    student = _open_student(run, name)  # the run's embedding cache already holds every user the students saw
    pseudo = pd.read_parquet(run.path("pseudo_labels.parquet"))
    counts = profile_users(student, files, run.path("profiles.parquet"), run.config.profiles,
                           stage=stage, pseudo=pseudo, model_dir=run.path(name))
    print(f"  {counts['users']} users profiled by the {stage.replace('_', ' ')} -> profiles.parquet, profiles.jsonl")
    return ["profiles.parquet", "profiles.jsonl"]


# ---------------------------------------------------------------- supervised reference (uses gold)
def run_upper_bound(run) -> list[str]:
    """The same student recipe trained on the train users' GOLD labels: a reference, not label-free."""
    import pandas as pd

    from confprofile.data import load_gold

    if not run.config.upper_bound.enabled:
        return []
    if not run.path("train/gold.jsonl").exists():
        print("  skipped: no gold for the train users (it needs data.gold beyond the held-out users)")
        return []
    gold = load_gold(run.path("train/gold.jsonl"), _taxonomy(run))
    as_pseudo = pd.DataFrame([
        {"user_id": uid, "dimension": dim, "label": label, "confidence": 1.0, "kept": True, "rationale": ""}
        for uid, labels in gold.items() for dim, label in labels.items()
    ])
    if _is_encoder(run):
        return _fit_and_predict(run, as_pseudo, "supervised")
    records = _new_student(run).sft_records(_users(run, "train"), as_pseudo, rationale=False)
    return _fit_and_predict(run, as_pseudo, "supervised", records=records)


# ---------------------------------------------------------------- evaluation (reads gold)
def _stage_predictions(run, taxonomy: Taxonomy) -> list[tuple[str, pd.DataFrame, bool, str]]:
    """(row name, test-user predictions, label-free?, role) in the order of the stage table.

    Roles let a script compare stages without parsing names: baseline, teacher, aggregate (a voting
    variant), pseudo_labels (what the student learnt from), student_sft, student_stage2, supervised."""
    import pandas as pd

    from confprofile.baselines import keyword_predictions

    def read(name: str) -> pd.DataFrame | None:
        path = run.path(name)
        return pd.read_parquet(path) if path.exists() else None

    rows = [("keyword baseline", keyword_predictions(_users(run, "test"), taxonomy), True, "baseline")]
    for path in sorted(run.path("aggregates").glob("teacher_*.parquet")):
        rows.append((f"teacher {path.stem.removeprefix('teacher_')}", pd.read_parquet(path), True, "teacher"))
    for name, title in (("majority_vote", "majority vote"), ("weighted_vote", "confidence-weighted vote"),
                        ("weighted_vote_calibrated", "+ calibration (weighted)"),
                        ("dawid_skene_calibrated", "+ calibration (Dawid-Skene)")):
        rows.append((title, read(f"aggregates/{name}.parquet"), True, "aggregate"))
    rows += [("pseudo-labels (the student's targets)", read("pseudo_labels.parquet"), True, "pseudo_labels"),
             ("SFT student", read("predictions/student.parquet"), True, "student_sft"),
             ("stage-2 student", read("predictions/student_rl.parquet"), True, "student_stage2"),
             ("supervised upper bound (uses gold)", read("predictions/supervised.parquet"), False, "supervised")]
    if run.path("train/gold.jsonl").exists():
        from confprofile.baselines import majority_class_predictions
        from confprofile.data import read_jsonl

        train_gold = [row for _, row in read_jsonl(run.path("train/gold.jsonl"))]
        test_ids = [u.user_id for u in _users(run, "test")]
        rows.append(("majority class (uses gold)", majority_class_predictions(train_gold, test_ids, taxonomy), False, "baseline"))
    return [row for row in rows if row[1] is not None]


def run_evaluate(run) -> list[str]:
    from confprofile.data import load_gold
    from confprofile.evaluate import comparison_table, evaluate, print_comparison

    if not run.path("test/gold.jsonl").exists():
        print("  skipped: no held-out users with gold (data.gold); the report shows the label-free checks")
        return []
    taxonomy = _taxonomy(run)
    gold = load_gold(run.path("test/gold.jsonl"), taxonomy)
    stages = []
    for name, frame, label_free, role in _stage_predictions(run, taxonomy):
        frame = frame[frame["user_id"].astype(str).isin(gold)]
        stages.append({"name": name, "role": role, "label_free": label_free, "metrics": evaluate(gold, frame, taxonomy)})
    teachers = [s for s in stages if s["role"] == "teacher"]
    notes = ["All rows are measured on the same held-out test users; their gold is read only here.",
             "Teacher calibration and class balance are fitted on teacher answers of train + test users "
             "without labels (transductive, label-free)."]
    if teachers:
        best = max(teachers, key=lambda s: s["metrics"]["headline_f1"])
        notes.append(f"Best single teacher: {best['name']} (picked by test F1, an optimistic reference).")
    by_name = {s["name"]: s["metrics"]["headline_f1"] for s in stages}
    supervised = by_name.get("supervised upper bound (uses gold)")
    student = max((s["metrics"]["headline_f1"] for s in stages if s["role"] in ("student_sft", "student_stage2")), default=None)
    if supervised and student is not None:
        notes.append(f"Label-free / supervised F1 ratio (best student / upper bound): {student / supervised:.2f}.")
    distributions = {}
    if run.path("aggregate_summary.json").exists():
        for row in json.loads(run.path("aggregate_summary.json").read_text()):
            distributions[row["dimension"]] = {"before": row["before"], "after": row["after"]}
    atomic_write_json(run.path("metrics.json"), {"stages": stages, "notes": notes, "label_distributions": distributions})
    print_comparison(comparison_table({s["name"]: s["metrics"] for s in stages}), title="Stage by stage on the test users")
    for line in notes:
        print(line)
    return ["metrics.json"]


def run_report(run) -> list[str]:
    from confprofile.report import write_report

    write_report(run.dir)
    return ["report.html", "checks.json"]


# ---------------------------------------------------------------- the stage table
@dataclass(frozen=True)
class Stage:
    """A stage: its function, the stages whose files it reads, the config it depends on, the files it
    always writes when it runs (`writes`; `pipeline.run` checks them; its function returns those and
    the ones that depend on the data, such as test predictions), the folder of resumable work it keeps
    (training checkpoints, finished chunks; discarded when its fingerprint changes) and whether it
    reads gold (tests/test_pipeline.py holds every other stage to that). A stage's fingerprint covers
    its config and the fingerprints of what it reads, so a change reruns exactly the stages downstream
    of it."""

    name: str
    run: Callable
    reads: tuple[str, ...]
    config: Callable
    writes: tuple[str, ...]
    work_dir: str | None = None
    reads_gold: bool = False


def _label_config(c):
    return (c.teachers, c.taxonomy, *([c.privacy] if c.privacy.redact else []))  # privacy only when on: older runs keep their fingerprints


STAGES = [
    Stage("data", run_data, (), lambda c: (c.data, c.label), ("train/users.jsonl",)),
    Stage("label", run_label, ("data",), _label_config, ("answers.parquet",)),
    Stage("aggregate", run_aggregate, ("label",), lambda c: c.aggregate, ("pseudo_labels.parquet", "aggregate_summary.json")),
    Stage("distill", run_distill, ("data", "aggregate"), lambda c: c.distill, ("student",), "student"),
    Stage("rl", run_rl, ("data", "aggregate", "distill"), lambda c: c.rl, ("rl_summary.json", "rl_log.jsonl", "student_rl"), "student_rl"),
    Stage("profiles", run_profiles, ("data", "aggregate", "distill", "rl"), lambda c: c.profiles,
          ("profiles.parquet", "profiles.jsonl"), "profiles.parquet.parts"),
    Stage("upper_bound", run_upper_bound, ("data",), lambda c: (c.taxonomy, c.distill, c.upper_bound), ("supervised",),
          "supervised", reads_gold=True),
    Stage("evaluate", run_evaluate, ("data", "aggregate", "distill", "rl", "upper_bound"), lambda c: c.taxonomy,
          ("metrics.json",), reads_gold=True),
    Stage("report", run_report, ("aggregate", "rl", "profiles", "evaluate"), lambda c: None, ("report.html", "checks.json")),
]
