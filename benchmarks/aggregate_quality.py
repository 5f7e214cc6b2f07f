"""Quality of stage 1b against gold, per development set: every single teacher, every aggregator with and
without calibration, and each teacher's label-free estimated accuracy beside its measured one.
F1 (headline), class-macro F1 and ECE from `confprofile.evaluate` (prints figures, asserts nothing).

    python benchmarks/aggregate_quality.py                     # synthetic x 3 seeds + blogs + pan19, packaged panel
    python benchmarks/aggregate_quality.py --sets blogs --panel demo
    python benchmarks/aggregate_quality.py --sets simulated    # simulated teachers (tests/teacher_simulator.py)
    python benchmarks/aggregate_quality.py --known-shares      # + rows given the true label shares

Answers come from `devsets.panel_answers` (one reply cache per set under `--work`: reruns are cheap).
Gold is read by this evaluation script only; the aggregation never sees it. The best single teacher is
picked by test F1, as the targets in issue 18 define it (an optimistic baseline). `--known-shares` adds
the default and Dawid-Skene given each dimension's true label shares (`label_shares`), counted on the whole
gold file of a real set (a census of the population, not of the evaluated users) and on the generated users
of a synthetic one: what a user who knows their population's label shares would get.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import numpy as np
import pandas as pd

import devsets
from confprofile.aggregate import run_aggregation, teacher_predictions
from confprofile.aggregate.pseudo_labels import DEFAULT_CALIBRATION
from confprofile.evaluate import evaluate
from confprofile.taxonomy import Dimension, Label, Taxonomy

ANSWER_CALIBRATION = ("label_prior", "confidence")  # what a single teacher can use
METHODS = ("majority", "weighted", "dawid_skene")


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


def measured_accuracy(answers: pd.DataFrame, gold: dict, taxonomy: Taxonomy) -> dict[tuple[str, str], float]:
    """(teacher, dimension) -> share of its labels that match gold, for the labels the aggregator reads
    (each teacher's vote over its samples, after the label-prior correction)."""
    out = {}
    for teacher, frame in teacher_predictions(answers, calibrate=("label_prior",), taxonomy=taxonomy).items():
        for dim, part in frame[frame["label"] != "unknown"].groupby("dimension"):
            truth = part["user_id"].map(lambda u: gold.get(u, {}).get(dim))
            scored = truth.notna()
            out[teacher, dim] = float((part["label"][scored] == truth[scored]).mean()) if scored.any() else float("nan")
    return out


def measure(answers: pd.DataFrame, gold: dict, taxonomy: Taxonomy, calibration: list[str],
            shares: dict | None = None) -> tuple[dict, list[dict]]:
    """({stage: metrics}, [{teacher, dimension, estimated, measured}]) of one answer table; `calibration`:
    the steps of the '+ calibration' rows; `shares`: true label shares for the '+ known shares' rows."""
    rows = {}

    def score(predictions):
        m = evaluate(gold, predictions[predictions["user_id"].astype(str).isin(gold)], taxonomy)
        return {"f1": m["headline_f1"], "macro_f1": m["macro_f1"], "ece": m["ece"]}

    for teacher, frame in teacher_predictions(answers, calibrate=ANSWER_CALIBRATION, taxonomy=taxonomy).items():
        rows[f"teacher {teacher}"] = score(frame)
    best = max((k for k in rows if k.startswith("teacher ")), key=lambda k: rows[k]["f1"])
    rows["best single teacher"] = dict(rows[best], name=best)
    skills = []
    for method in METHODS:
        for calibrate, tag in [((), ""), (calibration, " + calibration")]:
            pseudo, summary = run_aggregation(answers, method=method, calibrate=calibrate, taxonomy=taxonomy)
            rows[f"{method}{tag}"] = score(pseudo)
            if method == "weighted" and calibrate:  # the default: its label-free teacher accuracy estimates
                skills = [dict(s, dimension=row["dimension"]) for row in summary.to_dict("records")
                          for s in row.get("teacher_skills", [])]
    if shares and "class_balance" in calibration:
        for method in ("weighted", "dawid_skene"):
            pseudo, _ = run_aggregation(answers, method=method, calibrate=calibration, taxonomy=taxonomy, label_shares=shares)
            rows[f"{method} + calibration + known shares"] = score(pseudo)
    measured = measured_accuracy(answers, gold, taxonomy)
    for s in skills:
        s["measured"] = measured.get((s["teacher"], s["dimension"]), float("nan"))
        labels = [g[s["dimension"]] for g in gold.values() if s["dimension"] in g]
        s["majority"] = max(labels.count(label) for label in set(labels)) / len(labels)
    return rows, skills


def mean_se(values: list[float]) -> str:
    values = [v for v in values if v is not None and np.isfinite(v)]
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{statistics.mean(values):.3f}±{statistics.stdev(values) / len(values) ** 0.5:.3f}"


def report(title: str, results: list[tuple[dict, list[dict]]]) -> None:
    print(f"\n{title} ({len(results)} run{'s' if len(results) > 1 else ''})")
    stages = [k for k in results[0][0] if all(k in r for r, _ in results)]
    print(f"{'stage':42} {'F1':>12} {'macro F1':>12} {'ECE':>12}")
    for stage in stages:
        cells = [mean_se([r[stage][m] for r, _ in results]) for m in ("f1", "macro_f1", "ece")]
        print(f"{stage:42} {cells[0]:>12} {cells[1]:>12} {cells[2]:>12}")
    default, best, vote = ("weighted + calibration", "best single teacher", "majority")
    known = f"{default} + known shares"
    mean = {s: {m: statistics.mean(r[s][m] for r, _ in results) for m in ("f1", "macro_f1", "ece")}
            for s in (default, best, vote, "dawid_skene + calibration", known) if s in stages}
    for row in (default, known) if known in mean else (default,):
        print(f"{row} - best teacher: F1 {mean[row]['f1'] - mean[best]['f1']:+.3f}, macro {mean[row]['macro_f1'] - mean[best]['macro_f1']:+.3f}; "
              f"- majority: F1 {mean[row]['f1'] - mean[vote]['f1']:+.3f}, macro {mean[row]['macro_f1'] - mean[vote]['macro_f1']:+.3f}; "
              f"ECE {mean[row]['ece']:.3f}")
    print(f"DS + calibration - majority F1 {mean['dawid_skene + calibration']['f1'] - mean[vote]['f1']:+.3f}")
    skills = [s for _, sk in results for s in sk if np.isfinite(s["measured"])]
    if skills:
        print(f"{'teacher':16} {'dimension':22} {'estimated':>10} {'measured':>10} {'kappa*':>7} {'majority':>9}")
        for s in skills if len(results) == 1 else []:
            kappa = f"{s['independent_kappa']:+.3f}" if s.get("independent_kappa") is not None else "-"
            print(f"{s['teacher']:16} {s['dimension']:22} {s['accuracy']:10.3f} {s['measured']:10.3f} {kappa:>7} {s['majority']:9.3f}")
        print("kappa*: largest agreement beyond chance with a teacher of another group (label-free); "
              "majority: the commonest gold label's share (gold)")
        gaps = [abs(s["accuracy"] - s["measured"]) for s in skills]
        print(f"estimated vs measured teacher accuracy: mean |gap| {statistics.mean(gaps):.3f}, max {max(gaps):.3f} over {len(gaps)} (teacher, dimension)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    devsets.add_set_arguments(ap, "synthetic, blogs, pan19, simulated (--seeds serve both generated kinds)")
    ap.add_argument("--panel", choices=devsets.PANELS, default="packaged",
                    help="packaged: the demo's panel + SmolLM2; refined: packaged with prototype refinement; "
                         "self-trained: refined with a self-trained head")
    ap.add_argument("--calibrate", nargs="+", default=list(DEFAULT_CALIBRATION),
                    help="the steps of the '+ calibration' rows (default: the aggregate's default)")
    ap.add_argument("--known-shares", action="store_true", help="add rows given the true label shares (read from gold)")
    args = ap.parse_args()
    teachers = devsets.panel(args.panel)
    print(f"panel {args.panel}: {', '.join(t.name for t in teachers)}; calibration = {' + '.join(args.calibrate)} "
          f"(single teachers: {' + '.join(ANSWER_CALIBRATION)})")
    for name in args.sets:
        if name == "simulated":
            report("simulated teachers", [measure(*simulated(3000, seed), args.calibrate) for seed in args.seeds])
            continue
        results = []
        for set_name, (users, gold, taxonomy) in devsets.loaded_sets(name, args):
            answers = devsets.panel_answers(set_name, users, taxonomy, teachers, args.work)
            shares = devsets.population_shares(set_name, gold, taxonomy, args.datasets) if args.known_shares else None
            results.append(measure(answers, gold, taxonomy, args.calibrate, shares))
        if results:
            report(name, results)


if __name__ == "__main__":
    main()
