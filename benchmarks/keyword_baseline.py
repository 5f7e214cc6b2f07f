"""Reference baselines on synthetic ProfileBench test users.

    python benchmarks/keyword_baseline.py [--users 500] [--seed 2] [--train-seed 1] [--difficulty 0.3 0.7]

Rows: the keyword baseline (label-free, taxonomy aliases only); the majority class of a training split
(uses gold); TF-IDF + logistic regression trained on that split's gold (uses gold: shows the accounts
carry learnable signal, a rough ceiling for a text model of this size). Prints per-dimension F1,
headline F1 (mean over dimensions), class-macro F1 and coverage per difficulty.
"""

from __future__ import annotations

import argparse

import pandas as pd

from confprofile.baselines import COLUMNS, flatten_text, keyword_predictions, majority_class_predictions
from confprofile.bench.profilebench import generate
from confprofile.evaluate import evaluate
from confprofile.taxonomy import Taxonomy


def supervised_predictions(train_users, train_gold, test_users, taxonomy) -> pd.DataFrame:
    """TF-IDF (words) + logistic regression per dimension, trained on gold."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    vectorizer = TfidfVectorizer(min_df=2, sublinear_tf=True)
    x_train = vectorizer.fit_transform([flatten_text(u["data"]) for u in train_users])
    x_test = vectorizer.transform([flatten_text(u["data"]) for u in test_users])
    rows = []
    for dim in taxonomy.dimension_names:
        model = LogisticRegression(max_iter=2000, C=5.0).fit(x_train, [g["labels"][dim] for g in train_gold])
        proba = model.predict_proba(x_test)
        for user, p in zip(test_users, proba):
            best = p.argmax()
            rows.append((user["user_id"], dim, model.classes_[best], float(p[best]), "", "tfidf_logreg (uses gold)"))
    return pd.DataFrame(rows, columns=COLUMNS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=500, help="test users")
    parser.add_argument("--seed", type=int, default=2, help="seed of the test split")
    parser.add_argument("--train-seed", type=int, default=1, help="seed of the training split (majority class only)")
    parser.add_argument("--train-users", type=int, default=2000)
    parser.add_argument("--difficulty", type=float, nargs="+", default=[0.3, 0.7])
    args = parser.parse_args()

    taxonomy = Taxonomy.builtin("profilebench")
    dims = taxonomy.dimension_names
    header = f"{'difficulty':>10} {'baseline':<28}" + "".join(f"{d[:12]:>13}" for d in dims) + f"{'headline':>10}{'macroF1':>9}{'coverage':>9}"
    print(f"ProfileBench synthetic, {args.users} test users (seed {args.seed}); per-dimension F1")
    print(header)
    for difficulty in args.difficulty:
        users, gold_rows = generate(args.users, seed=args.seed, difficulty=difficulty)
        train_users, train_gold = generate(args.train_users, seed=args.train_seed, difficulty=difficulty)
        gold = {row["user_id"]: row["labels"] for row in gold_rows}
        baselines = {
            "keyword (label-free)": keyword_predictions(users, taxonomy),
            "majority class (uses gold)": majority_class_predictions(train_gold, list(gold), taxonomy),
            "tfidf+logreg (uses gold)": supervised_predictions(train_users, train_gold, users, taxonomy),
        }
        for name, predictions in baselines.items():
            m = evaluate(gold, predictions, taxonomy)
            cells = "".join(f"{m['dimensions'][d]['f1']:>13.3f}" for d in dims)
            print(f"{difficulty:>10.1f} {name:<28}{cells}{m['headline_f1']:>10.3f}{m['macro_f1']:>9.3f}{m['coverage']:>9.3f}")


if __name__ == "__main__":
    main()
