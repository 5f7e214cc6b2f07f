"""Quality of stage 1b against gold: best single teacher, majority, weighted, Dawid-Skene, each with and
without calibration. F1 (headline), class-macro F1, coverage, ECE from `confprofile.evaluate`.

Gold is read HERE, by this evaluation script only; the aggregation never sees it.

    python benchmarks/aggregate_quality.py --answers run/answers.parquet --gold run/gold.jsonl --taxonomy run/taxonomy.yaml
    python benchmarks/aggregate_quality.py            # simulated teachers (tests/teacher_simulator.py)

Every pseudo-label is scored (not only kept ones); `kept` is the share a 0.5 threshold keeps.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from confprofile.aggregate import aggregate, teacher_predictions
from confprofile.aggregate.stage import DEFAULT_CALIBRATION
from confprofile.evaluate import evaluate
from confprofile.taxonomy import Dimension, Label, Taxonomy

ANSWER_CALIBRATION = ("label_prior", "confidence")  # what a single teacher can use


def simulated(n_users: int, seed: int):
    """(answers, gold dict, taxonomy) from simulated teachers shaped like the CPU stack's."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from teacher_simulator import SimTeacher, simulate

    dims = {"gender": 2, "age_group": 6, "occupation": 11, "education": 4, "life_stage": 5, "consumption_level": 3}
    priors = {d: np.linspace(3, 1, k) for d, k in dims.items()}  # majority classes 3x as common as the rarest
    teachers = [
        SimTeacher("llm_large", 0.75, overconfidence=2.0, bias=1.0, abstain=0.05, missing=0.02),
        SimTeacher("llm_small", 0.6, overconfidence=2.5, bias=1.5, samples=3, abstain=0.1, missing=0.05),
        SimTeacher("embedding", 0.6, overconfidence=1.0, bias=0.0),
        SimTeacher("smollm2_scoring", scores=1.2, label_bias=1.5),  # weak, label-prior biased, label_probs
    ]
    answers, truth = simulate(n_users, dims, teachers, priors=priors, seed=seed)
    gold: dict[str, dict[str, str]] = {}
    for user, dim, label in truth[["user_id", "dimension", "label"]].itertuples(index=False):
        gold.setdefault(user, {})[dim] = label
    taxonomy = Taxonomy(name="simulated", dimensions=[
        Dimension(name=d, labels=[Label(name=f"{d}_{j}") for j in range(k)]) for d, k in dims.items()])
    return answers, gold, taxonomy


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--answers", type=Path, help="answers.parquet (omit to simulate)")
    ap.add_argument("--gold", type=Path, help="gold.jsonl (evaluation only)")
    ap.add_argument("--taxonomy", default="profilebench", help="taxonomy YAML or built-in name")
    ap.add_argument("--users", type=int, default=3000, help="simulated users")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    if args.answers:
        from confprofile.aggregate.cli import read_answers
        from confprofile.data import load_gold  # evaluation script: the one place gold is read

        taxonomy = Taxonomy.load(args.taxonomy)
        answers, gold = read_answers(args.answers), load_gold(args.gold, taxonomy)
        source = f"{args.answers} vs {args.gold}"
    else:
        answers, gold, taxonomy = simulated(args.users, args.seed)
        source = f"simulated: {args.users} users, 4 teachers, seed {args.seed}"

    rows = []

    def score(name, predictions, seconds=np.nan, kept=np.nan):
        # aggregation is fitted on every answer (label-free); scoring covers the users that have gold
        m = evaluate(gold, predictions[predictions["user_id"].astype(str).isin(gold)], taxonomy)
        rows.append({"stage": name, "f1": m["headline_f1"], "macro_f1": m["macro_f1"], "coverage": m["coverage"],
                     "ece": m["ece"], "kept": kept, "seconds": seconds})

    for calibrate, tag in [((), ""), (ANSWER_CALIBRATION, " + calibration")]:
        singles = teacher_predictions(answers, calibrate=calibrate, taxonomy=taxonomy)
        f1 = {t: evaluate(gold, p[p["user_id"].astype(str).isin(gold)], taxonomy)["headline_f1"] or 0.0 for t, p in singles.items()}
        best = max(f1, key=f1.get)
        score(f"best single teacher ({best}){tag}", singles[best])
    for method in ("majority", "weighted", "dawid_skene"):
        for calibrate, tag in [((), ""), (DEFAULT_CALIBRATION, " + calibration")]:
            start = time.perf_counter()
            out = aggregate(answers, method=method, calibrate=calibrate, taxonomy=taxonomy)
            score(f"{method}{tag}", out, time.perf_counter() - start, out["kept"].mean())

    print(f"aggregate quality ({source}); calibration = {' + '.join(DEFAULT_CALIBRATION)} "
          f"(single teachers: {' + '.join(ANSWER_CALIBRATION)})")
    print(pd.DataFrame(rows).to_string(index=False, float_format=lambda v: f"{v:.3f}"))


if __name__ == "__main__":
    main()
