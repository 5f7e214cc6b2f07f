"""Difficulty filtering in RL: the same budget (passes over the users) with and without the filter.

Starts from a finished pipeline run (`make demo` / `confprofile quickstart --out DIR`): its SFT
student, its pseudo-labels (whose confidences drive the filter), its train users, and its held-out
test users with their gold (read by the evaluation only). GRPO then runs twice from the same student
with the same settings, once on every user and once skipping the users whose mean pseudo-label
confidence says too easy or hopeless (quantiles, as in configs/demo.yaml). Prints rollouts
generated, RL wall time and test F1 / ECE of the SFT student and of both RL students.

    python benchmarks/rl_filtering.py --run runs/quickstart
    python benchmarks/rl_filtering.py --run runs/quickstart --epochs 0.5 --skip-above 0.8 --skip-below 0.2
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", type=Path, default=Path("runs/quickstart"), help="a finished pipeline run directory")
    parser.add_argument("--work", type=Path, default=Path("/tmp/confprofile-rl-bench"))
    parser.add_argument("--epochs", type=float, default=1.0, help="RL budget: passes over the (kept) users")
    parser.add_argument("--num-generations", type=int, default=4)
    parser.add_argument("--users-per-step", type=int, default=4)
    parser.add_argument("--lr", type=float, default=5e-5)
    parser.add_argument("--skip-above", type=float, default=0.85, help="quantile of the users' mean pseudo-label confidence")
    parser.add_argument("--skip-below", type=float, default=0.15, help="quantile of the users' mean pseudo-label confidence")
    parser.add_argument("--max-user-tokens", type=int, default=192, help="the run's distill.max_user_tokens")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    import pandas as pd

    from confprofile.data import load_gold, load_users
    from confprofile.evaluate import evaluate
    from confprofile.predict import predict
    from confprofile.rl.command import train_rl
    from confprofile.rl.config import RLConfig
    from confprofile.taxonomy import Taxonomy

    run = args.run
    if not (run / "student" / "confprofile_student.json").exists():
        raise SystemExit(f"{run} has no finished SFT student: run `confprofile quickstart --out {run}` first")
    taxonomy = Taxonomy.builtin("profilebench")
    train, test = load_users(run / "train/users.jsonl"), load_users(run / "test/users.jsonl")
    gold = load_gold(run / "test/gold.jsonl", taxonomy)  # evaluation only
    pseudo = pd.read_parquet(run / "pseudo_labels.parquet")

    def score(model_dir: Path) -> dict:
        preds = predict(model_dir, test, taxonomy, batch_size=32, max_new_tokens=200, max_user_tokens=args.max_user_tokens,
                        progress=False)
        m = evaluate(gold, preds, taxonomy)
        return {"f1": m["headline_f1"], "macro_f1": m["macro_f1"], "ece": m["ece"], "coverage": m["coverage"]}

    results = {"sft": {**score(run / "student"), "rollouts": 0, "wall_s": 0.0}}
    for name, above, below in (("rl_unfiltered", None, None), ("rl_filtered", args.skip_above, args.skip_below)):
        out = args.work / name
        shutil.rmtree(out, ignore_errors=True)
        config = RLConfig(taxonomy="profilebench", max_user_tokens=args.max_user_tokens, num_generations=args.num_generations,
                          users_per_step=args.users_per_step, num_train_epochs=args.epochs, learning_rate=args.lr,
                          max_completion_length=200, skip_above=above, skip_below=below, threshold_mode="quantile",
                          seed=args.seed, save_steps=10_000, logging_steps=5)
        summary = train_rl(run / "student", train, out, config, pseudo=pseudo, resume=False, keep_checkpoints=False)
        results[name] = {**score(out), "rollouts": summary["rollouts_generated"], "wall_s": summary["wall_seconds"],
                         "steps": summary["steps"], "users": summary["selection"], "groups": summary["groups"]}

    print(f"\n{'stage':<14} {'rollouts':>9} {'wall s':>8} {'F1':>7} {'macroF1':>8} {'ECE':>7} {'cover':>6}")
    for name, r in results.items():
        print(f"{name:<14} {r['rollouts']:>9} {r['wall_s']:>8.1f} {r['f1']:>7.3f} {r['macro_f1']:>8.3f} "
              f"{(r['ece'] if r['ece'] is not None else float('nan')):>7.3f} {r['coverage']:>6.3f}")
    full, filt = results["rl_unfiltered"], results["rl_filtered"]
    print(f"\nfiltering: {1 - filt['rollouts'] / max(full['rollouts'], 1):.0%} fewer rollouts, "
          f"{1 - filt['wall_s'] / max(full['wall_s'], 1e-9):.0%} less RL wall time, F1 {filt['f1'] - full['f1']:+.3f}")
    print(json.dumps(results, indent=1, default=str))


if __name__ == "__main__":
    main()
