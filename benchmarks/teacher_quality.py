"""Quality and speed of single teachers on synthetic ProfileBench users (prints figures, asserts nothing).

    python benchmarks/teacher_quality.py --users 200 --seed 2 --difficulty 0.5 \
        --teachers smollm2:default,smollm2:concise,embedding

A teacher spec is `backend[:prompt_variant]` or a teachers YAML file. Each teacher labels the users
through a fresh reply cache (so the timing is real work) and is scored against gold with
`evaluate.evaluate`: per-dimension F1, coverage and ECE of sample 0. For teachers with label
distributions a second row shows the label-free prior correction (divide each label's probability
by its mean over these users, renormalise): the class-balance calibration that aggregation applies.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import pandas as pd

from confprofile.bench.profilebench import generate
from confprofile.data import UserRecord
from confprofile.evaluate import evaluate
from confprofile.synthesize import label_users
from confprofile.taxonomy import Taxonomy
from confprofile.teachers.base import TeacherConfig, load_teacher_configs


def teacher_configs(spec: str) -> list[TeacherConfig]:
    if spec.endswith((".yaml", ".yml")):
        return load_teacher_configs(spec)
    configs = []
    for item in spec.split(","):
        backend, _, variant = item.strip().partition(":")
        configs.append(TeacherConfig(name=f"{backend}/{variant or 'default'}", backend=backend,
                                     model=backend if backend == "smollm2" else "", prompt_variant=variant or "default",
                                     temperature=0.0))
    return configs


def prior_corrected(answers: pd.DataFrame) -> pd.DataFrame:
    """Argmax of p(label) / mean_users p(label), renormalised: removes a teacher's label prior."""
    rows = []
    for dim, part in answers.groupby("dimension"):
        probs = pd.DataFrame([json.loads(p) for p in part["label_probs"]], index=part.index)
        adjusted = probs / probs.mean(axis=0)
        adjusted = adjusted.div(adjusted.sum(axis=1), axis=0)
        best = adjusted.idxmax(axis=1)
        rows.append(pd.DataFrame({"user_id": part["user_id"], "dimension": dim, "label": best,
                                  "confidence": adjusted.max(axis=1)}))
    return pd.concat(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--seed", type=int, default=2)
    parser.add_argument("--difficulty", type=float, default=0.5)
    parser.add_argument("--teachers", default="smollm2:default,smollm2:concise,embedding")
    parser.add_argument("--taxonomy", default="profilebench")
    args = parser.parse_args()

    taxonomy = Taxonomy.load(args.taxonomy)
    raw_users, raw_gold = generate(args.users, args.seed, args.difficulty)
    users = [UserRecord(**u) for u in raw_users]
    gold = {g["user_id"]: g["labels"] for g in raw_gold}
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for config in teacher_configs(args.teachers):
            start = time.perf_counter()
            answers = label_users(users, taxonomy, [config], Path(tmp) / f"{config.name.replace('/', '_')}.sqlite")
            minutes = (time.perf_counter() - start) / 60  # includes loading the model
            first = answers[answers["sample"] == 0]
            results[config.name] = (evaluate(gold, first, taxonomy), len(users) / minutes)
            if first["label_probs"].notna().all():
                results[config.name + " +prior"] = (evaluate(gold, prior_corrected(first), taxonomy), None)
            print(f"{config.name}: {len(users) / minutes:.1f} users/minute (incl. model load)", flush=True)

    dims = taxonomy.dimension_names
    print(f"\n{args.users} users, seed {args.seed}, difficulty {args.difficulty}; F1 per dimension, then headline")
    header = f"{'teacher':28} " + " ".join(f"{d[:9]:>9}" for d in dims) + "  F1     macF1  cover  ECE    users/min"
    print(header)
    for name, (m, speed) in results.items():
        cells = " ".join(f"{m['dimensions'][d]['f1']:9.3f}" for d in dims)
        ece = "   -  " if m["ece"] is None else f"{m['ece']:.3f}"
        print(f"{name:28} {cells}  {m['headline_f1']:.3f}  {m['macro_f1']:.3f}  {m['coverage']:.3f}  {ece}  "
              + ("" if speed is None else f"{speed:.1f}"))


if __name__ == "__main__":
    main()
