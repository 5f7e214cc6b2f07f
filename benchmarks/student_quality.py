"""Students against their teachers, stage by stage (prints figures, asserts nothing).

    python benchmarks/student_quality.py                          # synthetic x 3 seeds + blogs + pan19
    python benchmarks/student_quality.py --sets synthetic --seeds 0 1 2 --panel demo

Every set runs the real pipeline (`confprofile run`) into `--work/<set>` with the encoder student:
teachers label the train users and the test users, the student also sees `unlabeled` users no
teacher labelled, and every row of the stage table is measured on the same test users. Reruns
resume from the run directories (the label cache, finished stages), so only changed stages cost time.

Sets: `synthetic` (ProfileBench, one run per seed) and the real development sets read from
`../shared/datasets/<name>` (users.jsonl, gold.jsonl, taxonomy.yaml); the project ships none of that
data, and a missing set is reported and skipped. A real set is split by a seeded shuffle into
`--test-users` test users, `--train-users` teacher-labelled users and the rest unlabeled.

Printed per set: F1, class-macro F1 and ECE of the best single teacher (picked by test F1), the
pseudo-labels, the SFT and stage-2 students and the supervised reference; means with standard errors
over the synthetic seeds; the paired stage-2 - SFT difference; and users/s of the teacher panel
(the label stage's first run in a run directory) beside the student's prediction (features from scratch).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from pathlib import Path

import devsets
from confprofile import pipeline
from confprofile.data import load_users, read_jsonl
from confprofile.files import atomic_write_jsonl
from confprofile.pipeline import PipelineConfig
from confprofile.student import open_student

ROLES = [("best teacher", "teacher"), ("pseudo-labels", "pseudo_labels"), ("SFT student", "student_sft"),
         ("stage-2 student", "student_stage2"), ("supervised (gold)", "supervised")]


def demo_sections() -> dict:
    raw = PipelineConfig.from_yaml(pipeline.demo_config_path()).model_dump()
    return {key: raw[key] for key in ("teachers", "aggregate", "distill", "rl")}


def panel(name: str, sections: dict) -> list[dict]:
    teachers = sections["teachers"]
    if name == "demo":
        return teachers
    embedding = [t for t in teachers if t["backend"] == "embedding"]
    if name == "packaged":
        return embedding + [devsets.SMOLLM2]
    if name == "self-trained":
        return [{**t, "params": {**(t.get("params") or {}), **devsets.fitted_params(head=True)}} for t in embedding]
    return embedding


def synthetic_config(work: Path, seed: int, args, sections: dict) -> PipelineConfig:
    return PipelineConfig.model_validate({
        **sections, "run_dir": str(work / f"synthetic-{seed}"), "seed": seed, "teachers": panel(args.panel, sections),
        "data": {"generate": {"train_users": args.synthetic_train, "test_users": args.synthetic_test,
                              "unlabeled_users": args.synthetic_unlabeled, "train_seed": 100 + seed,
                              "test_seed": 200 + seed, "unlabeled_seed": 300 + seed}},
    })


def real_config(work: Path, name: str, args, sections: dict) -> PipelineConfig | None:
    source = Path(args.datasets) / name
    if not (source / "users.jsonl").exists():
        print(f"{name}: {source} not found, skipped")
        return None
    split = work / f"{name}-split"
    if not (split / "test_gold.jsonl").exists():
        users = [json.loads(line) for line in (source / "users.jsonl").read_text(encoding="utf-8").splitlines() if line.strip()]
        gold = {row["user_id"]: row for _, row in read_jsonl(source / "gold.jsonl")}
        random.Random(args.split_seed).shuffle(users)
        parts = {"test": users[:args.test_users], "train": users[args.test_users:args.test_users + args.train_users],
                 "unlabeled": users[args.test_users + args.train_users:]}
        for part, rows in parts.items():
            atomic_write_jsonl(split / f"{part}_users.jsonl", rows)
        for part in ("test", "train"):
            atomic_write_jsonl(split / f"{part}_gold.jsonl", [gold[u["user_id"]] for u in parts[part] if u["user_id"] in gold])
    return PipelineConfig.model_validate({
        **sections, "run_dir": str(work / name), "taxonomy": str(source / "taxonomy.yaml"), "teachers": panel(args.panel, sections),
        "data": {"train_users": str(split / "train_users.jsonl"), "test_users": str(split / "test_users.jsonl"),
                 "test_gold": str(split / "test_gold.jsonl"), "train_gold": str(split / "train_gold.jsonl"),
                 "unlabeled_users": str(split / "unlabeled_users.jsonl")},
    })


def measure(config: PipelineConfig) -> dict:
    run_dir = pipeline.run(config, log=lambda line: print(f"  {line}", flush=True))
    stages = json.loads((run_dir / "metrics.json").read_text())["stages"]
    rows = {}
    for title, role in ROLES:
        candidates = [s for s in stages if s["role"] == role]
        if candidates:
            best = max(candidates, key=lambda s: s["metrics"]["headline_f1"])
            rows[title] = {k: best["metrics"][k] for k in ("headline_f1", "macro_f1", "ece")}
    test = load_users(run_dir / "test/users.jsonl")
    student = open_student(run_dir / "student_rl")  # no embedding cache: the encoder runs for real
    started = time.perf_counter()
    student.predict(test)
    rows["speed"] = {"teacher users/s": teacher_speed(run_dir), "student users/s": len(test) / (time.perf_counter() - started)}
    return rows


def teacher_speed(run_dir: Path) -> float:
    """Users/s of the label stage the first time it ran in `run_dir` (kept in teacher_speed.json): a
    rerun reads the label cache, which times the cache, not the teachers."""
    note = run_dir / "teacher_speed.json"
    if not note.exists():
        labelled = len(load_users(run_dir / "train/users.jsonl")) + len(load_users(run_dir / "test/users.jsonl"))
        seconds = json.loads((run_dir / "stages.json").read_text())["label"]["seconds"]
        note.write_text(json.dumps({"users_per_second": labelled / seconds}))
    return json.loads(note.read_text())["users_per_second"]


def mean_se(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{statistics.mean(values):.3f} ± {statistics.stdev(values) / len(values) ** 0.5:.3f}"


def report(name: str, results: list[dict]) -> None:
    print(f"\n{name} ({len(results)} run{'s' if len(results) > 1 else ''})")
    print(f"{'stage':20} {'F1':>15} {'macro F1':>15} {'ECE':>15}")
    for title, _ in ROLES:
        if all(title in r for r in results):
            cells = [mean_se([r[title][k] for r in results if r[title][k] is not None] or [float('nan')]) for k in ("headline_f1", "macro_f1", "ece")]
            print(f"{title:20} {cells[0]:>15} {cells[1]:>15} {cells[2]:>15}")
    if all("stage-2 student" in r and "SFT student" in r for r in results):
        diff = [r["stage-2 student"]["headline_f1"] - r["SFT student"]["headline_f1"] for r in results]
        print(f"stage 2 - SFT F1 (paired): {mean_se(diff)}")
    teacher = [r["speed"]["teacher users/s"] for r in results]
    student = [r["speed"]["student users/s"] for r in results]
    print(f"teacher panel {statistics.mean(teacher):.2f} users/s, student {statistics.mean(student):.1f} users/s "
          f"({statistics.mean(student) / statistics.mean(teacher):.1f}x)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sets", nargs="+", default=["synthetic", "blogs", "pan19"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--panel", choices=["demo", "embedding", "packaged", "self-trained"], default="embedding",
                        help="demo: the demo's packaged panel; embedding: its embedding teachers only; packaged: "
                             "those and SmolLM2, a teacher of another model (an independent group); "
                             "self-trained: the embedding teachers with refined prototypes and a self-trained head")
    parser.add_argument("--fit-targets", choices=["posterior", "label"], default=None,
                        help="distill.fit_targets of the encoder student (default: the demo config's)")
    parser.add_argument("--work", default="/tmp/confprofile-student-quality", help="Run directories (resumable).")
    parser.add_argument("--datasets", default=str(devsets.DATASETS))
    parser.add_argument("--synthetic-train", type=int, default=400)
    parser.add_argument("--synthetic-test", type=int, default=300)
    parser.add_argument("--synthetic-unlabeled", type=int, default=1500)
    parser.add_argument("--train-users", type=int, default=1000, help="Teacher-labelled users of a real set.")
    parser.add_argument("--test-users", type=int, default=1000)
    parser.add_argument("--split-seed", type=int, default=0)
    args = parser.parse_args()
    work, sections = Path(args.work), demo_sections()
    if args.fit_targets:
        sections["distill"] = {**sections["distill"], "fit_targets": args.fit_targets}
    for name in args.sets:
        if name == "synthetic":
            report("synthetic ProfileBench", [measure(synthetic_config(work, seed, args, sections)) for seed in args.seeds])
            continue
        config = real_config(work, name, args, sections)
        if config is not None:
            report(name, [measure(config)])


if __name__ == "__main__":
    main()
