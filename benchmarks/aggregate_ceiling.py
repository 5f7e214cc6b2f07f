"""How far a decision rule over the aggregate's posteriors could go: a ceiling chosen with gold, not a method
(prints figures, asserts nothing).

    python benchmarks/aggregate_ceiling.py --sets pan19 blogs

Per dimension, labels are argmax(log posterior + b) for per-label biases b (a grid for up to 3 labels,
seeded random draws beyond): the family every prior shift and class-balance rule of the aggregate lies in.
For each trade-off weight lambda, every dimension takes the b that maximises its accuracy + lambda x its
class-macro F1 on GOLD; the set's point is the mean over dimensions. F1 here is accuracy over the scored
users (every user with a vote is answered). The rows say whether some b puts the headline F1 at or above
the majority vote's and the class-macro F1 at or above the best teacher's (issue 18's bars), and, at the
point nearest both, the label shares the labels follow beside gold's and beside the prior the default
estimates from the answers (the posterior's mean).
"""

from __future__ import annotations

import argparse
import itertools

import numpy as np
from sklearn.metrics import f1_score

import devsets
from aggregate_quality import measure
from confprofile.aggregate import AGGREGATORS
from confprofile.aggregate.base import encode, has_votes
from confprofile.aggregate.calibration import ConfidenceCalibration, LabelPriorCorrection
from confprofile.aggregate.pseudo_labels import DEFAULT_CALIBRATION
from confprofile.aggregate.reliability import GroupConfidence

LAMBDAS = np.linspace(0, 5, 101)


def posteriors(answers, taxonomy) -> tuple[dict[str, dict], np.ndarray]:
    """({name: {dimension: (users, K) posterior}}, user ids of the rows): the default's vote over calibrated
    answers, and group_confidence's."""
    enc = encode(answers, taxonomy)
    calibrated = ConfidenceCalibration().fit_transform(LabelPriorCorrection().fit_transform(enc))
    return {"weighted (the default's labels)": AGGREGATORS.get("weighted")(taxonomy).fit(calibrated).posteriors_,
            "group_confidence": GroupConfidence().fit(enc).posteriors_}, enc.users


def candidate_biases(k: int, rng) -> np.ndarray:
    if k <= 3:
        grid = np.linspace(-3, 3, 61)
        return np.array([(0.0, *rest) for rest in itertools.product(grid, repeat=k - 1)])
    return np.concatenate([np.zeros((1, k)), rng.normal(0, 1.5, (4000, k))])


def dimension_points(post: np.ndarray, truth: np.ndarray, rng) -> list[tuple]:
    """(accuracy, macro F1, predicted shares) of every candidate bias on one dimension's scored users."""
    k = post.shape[1]
    log_post = np.log(np.maximum(post, 1e-12))
    points = []
    for b in candidate_biases(k, rng):
        label = (log_post + b).argmax(axis=1)
        points.append(((label == truth).mean(), f1_score(truth, label, average="macro", labels=range(k), zero_division=0),
                       np.bincount(label, minlength=k) / len(label)))
    return points


def ceiling(post_by_dim: dict, users, gold: dict, taxonomy, f1_bar: float, macro_bar: float, rng) -> None:
    per_dim, shares = {}, {}
    for dim in taxonomy.dimension_names:
        labels = taxonomy.dimension(dim).label_names
        truth = np.array([labels.index(gold[u][dim]) if gold.get(u, {}).get(dim) in labels else -1 for u in users])
        post = post_by_dim[dim]
        scored = (truth >= 0) & has_votes(post)
        per_dim[dim] = dimension_points(post[scored], truth[scored], rng)
        shares[dim] = (np.bincount(truth[scored], minlength=len(labels)) / scored.sum(), post[scored].mean(axis=0))
    curve = []
    for lam in LAMBDAS:
        picks = {dim: max(points, key=lambda p: p[0] + lam * p[1]) for dim, points in per_dim.items()}
        curve.append((np.mean([p[0] for p in picks.values()]), np.mean([p[1] for p in picks.values()]), picks))
    over_f1 = [c[1] for c in curve if c[0] >= f1_bar]
    over_macro = [c[0] for c in curve if c[1] >= macro_bar]
    print(f"    largest macro F1 with F1 >= {f1_bar:.3f}: {max(over_f1) if over_f1 else float('nan'):.3f}; "
          f"largest F1 with macro >= {macro_bar:.3f}: {max(over_macro) if over_macro else float('nan'):.3f}; "
          f"largest F1 {max(c[0] for c in curve):.3f}")
    f1, macro, picks = max(curve, key=lambda c: min(c[0] - f1_bar, c[1] - macro_bar))
    verdict = "both bars met" if f1 >= f1_bar and macro >= macro_bar else "no point meets both bars"
    print(f"    nearest both bars: F1 {f1:.3f}, macro {macro:.3f} ({verdict})")
    for dim, pick in picks.items():
        truth_shares, estimated = shares[dim]
        print(f"      {dim:16} labels' shares {np.round(pick[2], 2)}  gold {np.round(truth_shares, 2)}  posterior mean {np.round(estimated, 2)}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    devsets.add_set_arguments(ap)
    args = ap.parse_args()
    teachers = devsets.panel("packaged")
    rng = np.random.default_rng(0)
    for name in args.sets:
        for set_name, (users, gold, taxonomy) in devsets.loaded_sets(name, args):
            answers = devsets.panel_answers(set_name, users, taxonomy, teachers, args.work)
            rows, _ = measure(answers, gold, taxonomy, list(DEFAULT_CALIBRATION))
            f1_bar, macro_bar = rows["majority"]["f1"], rows["best single teacher"]["macro_f1"]
            print(f"\n{set_name}: majority vote F1 {f1_bar:.3f}, best teacher macro F1 {macro_bar:.3f}, "
                  f"default {rows['weighted + calibration']['f1']:.3f} / {rows['weighted + calibration']['macro_f1']:.3f}")
            by_name, ids = posteriors(answers, taxonomy)
            for label, post_by_dim in by_name.items():
                print(f"  posterior of {label}:")
                ceiling(post_by_dim, ids, gold, taxonomy, f1_bar, macro_bar, rng)


if __name__ == "__main__":
    main()
