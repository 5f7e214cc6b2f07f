"""Every packaged teacher, with and without prototype refinement (and a self-trained head on the refined
prototypes), per dimension of each development set, beside the majority-class baseline (prints figures,
asserts nothing).

    python benchmarks/teacher_quality.py                        # synthetic x 3 seeds + blogs + pan19
    python benchmarks/teacher_quality.py --sets blogs --refine-iterations 10 --refine-anchor 0.9
    python benchmarks/teacher_quality.py --examples benchmarks/label_examples.yaml   # + label examples
    python benchmarks/teacher_quality.py --sets blogs pan19 --known-shares           # + the true label shares

Answers come from `devsets.panel_answers` (one reply cache per set under `--work`, shared with
aggregate_quality.py: reruns are cheap). Each teacher alone is scored against gold with
`confprofile.evaluate`: F1, class-macro F1 and ECE per dimension, raw and after the label-free
label-prior correction that aggregation applies (`+prior`). The majority class is picked on gold: a
reference no label-free method could know. With `--examples`, each embedding teacher also answers
with the set's taxonomy given those label examples (`<name>+examples`; sets the file does not name
are skipped for that row). With `--known-shares`, each teacher's distributions are also restated under
the true label shares (`label_prior` with `label_shares`: `+known shares`; counted on a real set's whole
gold file, `devsets.population_shares`): what a teacher told the population's shares answers. Last, each embedding teacher's class-macro F1 averaged over the dimensions of
the real sets, raw and fitted to the users (the measure of issue 19's refinement target).
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import pandas as pd
import yaml

import devsets
from confprofile.aggregate import teacher_predictions
from confprofile.aggregate.base import encode
from confprofile.aggregate.calibration import LabelPriorCorrection
from confprofile.evaluate import evaluate


def with_examples(taxonomy, examples: dict):
    """The taxonomy with `examples[dimension][label]` added to its labels."""
    raw = taxonomy.model_dump()
    for dim in raw["dimensions"]:
        for label in dim["labels"]:
            label["examples"] = list(examples.get(dim["name"], {}).get(label["name"], []))
    return type(taxonomy).model_validate(raw)


def example_answers(set_name: str, users, taxonomy, teachers, examples: dict, work: Path) -> pd.DataFrame:
    """Answers of each embedding teacher again, as `<name>+examples`, reading the taxonomy with examples."""
    renamed = [t.model_copy(update={"name": f"{t.name}+examples"}) for t in teachers if t.backend == "embedding"]
    return devsets.panel_answers(set_name, users, with_examples(taxonomy, examples), renamed, work)


def majority(gold: dict, dim: str) -> pd.DataFrame:
    labels = [g[dim] for g in gold.values() if dim in g]
    top = max(set(labels), key=labels.count)
    return pd.DataFrame({"user_id": list(gold), "dimension": dim, "label": top, "confidence": labels.count(top) / len(labels)})


def measure(answers: pd.DataFrame, gold: dict, taxonomy, shares: dict | None = None) -> dict[str, dict[str, dict]]:
    """{row name: {dimension: {f1, macro_f1, ece}}}; `shares`: true label shares for the `+known shares` rows."""
    rows = {}
    for dim in taxonomy.dimension_names:
        m = evaluate(gold, majority(gold, dim), taxonomy)["dimensions"][dim]
        rows.setdefault("majority class (gold)", {})[dim] = m
    variants = [(answers, (), ""), (answers, ("label_prior",), " +prior")]
    if shares:
        variants.append((LabelPriorCorrection(label_shares=shares).fit_transform(encode(answers, taxonomy)), (), " +known shares"))
    for table, calibrate, tag in variants:
        for teacher, frame in teacher_predictions(table, calibrate=calibrate, taxonomy=taxonomy).items():
            m = evaluate(gold, frame[frame["user_id"].astype(str).isin(gold)], taxonomy)
            rows[f"{teacher}{tag}"] = m["dimensions"]
    return rows


def report(title: str, results: list[dict], dims: list[str]) -> None:
    print(f"\n{title} ({len(results)} run{'s' if len(results) > 1 else ''}): F1 / class-macro F1 / ECE per dimension")
    print(f"{'teacher':40} " + " ".join(f"{d[:20]:>22}" for d in dims) + f" {'mean macro':>11}")
    for name in results[0]:
        cells, macros = [], []
        for d in dims:
            values = [r[name][d] for r in results]
            f1, macro = (statistics.mean(v[k] or 0.0 for v in values) for k in ("f1", "macro_f1"))
            eces = [v["ece"] for v in values if v["ece"] is not None]
            cells.append(f"{f1:.3f}/{macro:.3f}/" + (f"{statistics.mean(eces):.3f}" if eces else "  -  "))
            macros.append(macro)
        print(f"{name:40} " + " ".join(f"{c:>22}" for c in cells) + f" {statistics.mean(macros):11.3f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    devsets.add_set_arguments(ap)
    ap.add_argument("--refine-iterations", type=int, default=10)
    ap.add_argument("--refine-anchor", type=float, default=0.9)
    ap.add_argument("--examples", type=Path, help="YAML of label examples per set: {set: {dimension: {label: [examples]}}}")
    ap.add_argument("--known-shares", action="store_true", help="add each teacher under the true label shares (read from gold)")
    args = ap.parse_args()
    packaged = devsets.panel("packaged")
    embedding = [t for t in packaged if t.backend == "embedding"]
    fitted = [devsets.refined(embedding, args.refine_iterations, args.refine_anchor, head) for head in (False, True)]
    teachers = packaged + [t for variant in fitted for t in variant]
    examples = yaml.safe_load(args.examples.read_text(encoding="utf-8")) if args.examples else {}
    real_macros: dict[str, list[float]] = {}  # teacher -> its macro F1 on each dimension of the real sets
    for name in args.sets:
        runs = []
        for set_name, (users, gold, taxonomy) in devsets.loaded_sets(name, args):
            answers = devsets.panel_answers(set_name, users, taxonomy, teachers, args.work)
            if name in examples:
                answers = pd.concat([answers, example_answers(set_name, users, taxonomy, packaged, examples[name], args.work)])
            shares = devsets.population_shares(set_name, gold, taxonomy, args.datasets) if args.known_shares else None
            runs.append(measure(answers, gold, taxonomy, shares))
            dims = taxonomy.dimension_names
        if runs:
            report(name, runs, dims)
        if runs and not name.startswith("synthetic"):
            for teacher, row in runs[0].items():
                real_macros.setdefault(teacher, []).extend(row[d]["macro_f1"] or 0.0 for d in dims)
    if real_macros:
        print("\nEmbedding teachers, class-macro F1 averaged over the real sets' dimensions (fitted - raw):")
        for variants in zip(embedding, *fitted):  # a teacher, then its fitted versions
            raw = statistics.mean(real_macros[variants[0].name])
            for variant in (t.name for t in variants):
                mean = statistics.mean(real_macros[variant])
                print(f"  {variant:32} {mean:.3f} ({mean - raw:+.3f}, over {len(real_macros[variant])} dimensions)")


if __name__ == "__main__":
    main()
