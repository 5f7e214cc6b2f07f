"""How well can the stage-2 student's confidence be calibrated without gold? (prints figures, asserts nothing)

    python benchmarks/student_quality.py --work /tmp/sq          # first: the run directories
    python benchmarks/student_confidence.py --work /tmp/sq

For every run directory of `student_quality.py` with a stage-2 student, the student's heads stay as
trained and only its confidence map is refitted: a Platt curve from its top probability to a target, on
the validation users stage 2 never trained on, as `rl.encoder_policy` does. Each label-free target is
one design for "how likely is the student's label right", read from the aggregator's posterior of
that label (`student.targets.pseudo_posteriors`) and the student's own distribution:

- posterior: the aggregator's posterior alone (every right move away from the pseudo-label counts as wrong);
- fused (shipped): `student.calibration.fused_posterior`, the two views as if independent;
- midpoint: the mean of the two, between their biases;
- one-coin level: the fused targets rescaled to the accuracy that the student's agreement with the
  pseudo-labels implies under a one-coin model (errors uniform over the other labels, independent);
- fused, per label: the fused targets, with one Platt curve per predicted label;
- fused, isotonic on train users: the fused targets of every pseudo-labelled train user (stage 2
  trained on them: more users, but seen), through an isotonic curve.

Two rows use gold and are ceilings, not designs: a Platt curve fitted to the validation users' gold
hits, and an isotonic curve fitted to every train user's gold hits. Printed: the pooled ECE of each on
the test users (`confprofile.evaluate.ece`, as in metrics.json), per run and averaged over the synthetic seeds.
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import numpy as np
import pandas as pd

from confprofile.data import load_users, read_jsonl
from confprofile.evaluate import ece
from confprofile.student import open_student
from confprofile.student.calibration import apply_platt, fit_platt, fused_posterior
from confprofile.student.targets import pseudo_posteriors

MIN_PER_LABEL = 10  # fewer validation users with a predicted label: that label keeps the dimension's curve


def at_choice(matrix: np.ndarray, chosen: np.ndarray) -> np.ndarray:
    return matrix[np.arange(len(chosen)), chosen]


def posterior_target(posterior: np.ndarray, probs: np.ndarray) -> np.ndarray:
    return at_choice(posterior, probs.argmax(1))


def fused_target(posterior: np.ndarray, probs: np.ndarray) -> np.ndarray:
    return at_choice(fused_posterior(posterior, probs), probs.argmax(1))


def one_coin_level(posterior: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """Fused targets rescaled to a_s from agree = a_s a + (1 - a_s)(1 - a) / (K - 1), a = the aggregator's mean confidence."""
    k = posterior.shape[1]
    accuracy, agree = posterior.max(1).mean(), (posterior.argmax(1) == probs.argmax(1)).mean()
    chance = (1 - accuracy) / max(k - 1, 1)
    level = float(np.clip((agree - chance) / max(accuracy - chance, 1e-3), 0.01, 0.99))
    fused = fused_target(posterior, probs)
    return np.clip(fused * level / max(fused.mean(), 1e-6), 0.0, 1.0)


TARGETS = {
    "posterior": posterior_target,
    "fused (shipped)": fused_target,
    "midpoint": lambda posterior, probs: 0.5 * (posterior_target(posterior, probs) + fused_target(posterior, probs)),
    "one-coin level": one_coin_level,
}


def platt_map(top: np.ndarray, target: np.ndarray, chosen: np.ndarray | None = None):
    """A function (top probabilities, chosen labels) -> confidence; with `chosen`, one curve per label seen often enough."""
    overall = fit_platt(top, target)
    curves = {} if chosen is None else {
        j: fit_platt(top[chosen == j], target[chosen == j]) for j in np.unique(chosen) if (chosen == j).sum() >= MIN_PER_LABEL}

    def apply(new_top, new_chosen):
        out = apply_platt(new_top, *overall)
        for j, curve in curves.items():
            out[new_chosen == j] = apply_platt(new_top[new_chosen == j], *curve)
        return out
    return apply


def isotonic_map(top: np.ndarray, target: np.ndarray):
    from sklearn.isotonic import IsotonicRegression

    model = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(top, target)
    return lambda new_top, _: model.predict(new_top)


def gold_hits(probs: np.ndarray, labels: list[str], gold: list[str | None]) -> tuple[np.ndarray, np.ndarray]:
    """(hit per user, has gold in this dimension's labels)."""
    truth = np.array(gold, dtype=object)
    known = np.array([g in labels for g in gold], dtype=bool)
    return (np.array(labels, dtype=object)[probs.argmax(1)] == truth).astype(float), known


def measure(run_dir: Path) -> dict[str, float]:
    student = open_student(run_dir / "student_rl")
    gold = {str(row["user_id"]): row.get("labels", row) for part in ("train", "test")
            for _, row in read_jsonl(run_dir / part / "gold.jsonl")}
    train, test = load_users(run_dir / "train/users.jsonl"), load_users(run_dir / "test/users.jsonl")
    validation = set(student.validation_users_)
    held = [u for u in train if str(u.user_id) in validation]
    ids = {"held": [str(u.user_id) for u in held], "train": [str(u.user_id) for u in train], "test": [str(u.user_id) for u in test]}
    probs = {"held": student.predict_proba(held), "train": student.predict_proba(train), "test": student.predict_proba(test)}
    pseudo = pd.read_parquet(run_dir / "pseudo_labels.parquet")
    posterior = pseudo_posteriors(pseudo, ids["held"], student.taxonomy)
    train_posterior = pseudo_posteriors(pseudo, ids["train"], student.taxonomy)
    designs = {name: {} for name in [*TARGETS, "fused, per label", "fused, isotonic on train users",
                                     "gold: Platt on validation users", "gold: isotonic on train users"]}
    for dim in student.taxonomy.dimensions:
        labels, post = dim.label_names, posterior[dim.name]
        p, rows = probs["held"][dim.name], post.has_row
        top, chosen = p[rows].max(1), p[rows].argmax(1)
        for name, target in TARGETS.items():
            designs[name][dim.name] = platt_map(top, target(post.posterior[rows], p[rows]))
        designs["fused, per label"][dim.name] = platt_map(top, fused_target(post.posterior[rows], p[rows]), chosen)
        every, seen = probs["train"][dim.name], train_posterior[dim.name].has_row
        designs["fused, isotonic on train users"][dim.name] = isotonic_map(
            every[seen].max(1), fused_target(train_posterior[dim.name].posterior[seen], every[seen]))
        hit, known = gold_hits(p, labels, [gold.get(u, {}).get(dim.name) for u in ids["held"]])
        designs["gold: Platt on validation users"][dim.name] = platt_map(p[known].max(1), hit[known])
        hit, known = gold_hits(probs["train"][dim.name], labels, [gold.get(u, {}).get(dim.name) for u in ids["train"]])
        designs["gold: isotonic on train users"][dim.name] = isotonic_map(probs["train"][dim.name][known].max(1), hit[known])
    out = {}
    for name, maps in designs.items():
        confidence, hits = [], []
        for dim in student.taxonomy.dimensions:
            p = probs["test"][dim.name]
            hit, known = gold_hits(p, dim.label_names, [gold.get(u, {}).get(dim.name) for u in ids["test"]])
            confidence.append(maps[dim.name](p.max(1), p.argmax(1))[known])
            hits.append(hit[known])
        out[name] = ece(np.concatenate(confidence), np.concatenate(hits))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=Path("/tmp/confprofile-student-quality"),
                        help="student_quality.py's run directories")
    args = parser.parse_args()
    runs = sorted(d for d in args.work.iterdir() if (d / "student_rl" / "student.json").exists()) if args.work.exists() else []
    if not runs:
        print(f"no stage-2 students under {args.work}: run benchmarks/student_quality.py --work {args.work} first")
        return
    results = {run.name: measure(run) for run in runs}
    synthetic = [name for name in results if name.startswith("synthetic-")]
    columns = ([f"synthetic ({len(synthetic)})"] if synthetic else []) + [name for name in results if name not in synthetic]
    print("stage-2 student's test ECE with each confidence map (the heads unchanged)")
    print(f"{'design':34}" + "".join(f"{c:>17}" for c in columns))
    for design in next(iter(results.values())):
        cells = [statistics.mean(results[s][design] for s in synthetic)] if synthetic else []
        cells += [results[name][design] for name in results if name not in synthetic]
        print(f"{design:34}" + "".join(f"{c:17.3f}" for c in cells))


if __name__ == "__main__":
    main()
