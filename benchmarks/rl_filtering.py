"""Difficulty filtering in RL: the same budget (epochs over the users) with and without the filter.

Chain, all on CPU and label-free up to the evaluation: synthetic ProfileBench users -> keyword
teacher pseudo-labels (the label-free baseline in bench/keyword.py; fast, so the benchmark measures
RL, not labelling) -> tiny SFT student -> GRPO twice, with and without difficulty filtering.
Prints rollouts generated, wall time and test F1/ECE (gold used by evaluation only).

    python benchmarks/rl_filtering.py                    # defaults: 240 train, 120 test users
    python benchmarks/rl_filtering.py --train 120 --epochs 1 --sft-epochs 3   # quicker

The SFT student is cached in --work (delete it to rebuild).
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=Path("/tmp/confprofile-rl-bench"))
    parser.add_argument("--train", type=int, default=240, help="training users")
    parser.add_argument("--test", type=int, default=120, help="held-out test users")
    parser.add_argument("--sft-epochs", type=float, default=6.0)
    parser.add_argument("--epochs", type=float, default=1.0, help="RL budget: passes over the kept users")
    parser.add_argument("--num-generations", type=int, default=4)
    parser.add_argument("--users-per-step", type=int, default=4)
    parser.add_argument("--lr", type=float, default=2e-4)
    parser.add_argument("--skip-above", type=float, default=0.6, help="keyword-teacher scale: its mean confidences span 0..0.86")
    parser.add_argument("--skip-below", type=float, default=0.3)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest on a busy 2-core box)")
    args = parser.parse_args()

    import pandas as pd
    import torch

    from confprofile.bench.keyword import keyword_predictions
    from confprofile.bench.profilebench import generate
    from confprofile.data import UserRecord
    from confprofile.distill import DistillConfig, build_sft_records, train_student
    from confprofile.evaluate import evaluate
    from confprofile.predict import predict
    from confprofile.rl.command import summarize_pseudo, train_rl
    from confprofile.rl.config import RLConfig
    from confprofile.taxonomy import Taxonomy

    torch.set_num_threads(args.threads)
    taxonomy = Taxonomy.builtin("profilebench")
    train_raw, _ = generate(args.train, seed=1)
    test_raw, test_gold_rows = generate(args.test, seed=2)
    train = [UserRecord(**u) for u in train_raw]
    test = [UserRecord(**u) for u in test_raw]
    gold = {g["user_id"]: {d: l for d, l in g["labels"].items() if l and l != "unknown"} for g in test_gold_rows}

    pseudo = keyword_predictions(train, taxonomy)
    pseudo["kept"] = pseudo["label"] != "unknown"
    pseudo["votes"] = "{}"
    mean_conf, _ = summarize_pseudo(pseudo)
    easy = sum(c > args.skip_above for c in mean_conf.values())
    hopeless = sum(c < args.skip_below for c in mean_conf.values())
    print(f"pseudo-labels (keyword teacher): {len(train)} users, mean confidence {pd.Series(mean_conf).mean():.3f}, "
          f"> {args.skip_above}: {easy}, < {args.skip_below}: {hopeless}")

    student = args.work / "student"
    if not (student / "confprofile_student.json").exists():
        t = time.perf_counter()
        records = build_sft_records(train, pseudo, taxonomy)
        train_student(records, student, DistillConfig(epochs=args.sft_epochs, lr=1e-3, batch_size=8, logging_steps=50))
        print(f"SFT student: {len(records)} records, {time.perf_counter() - t:.0f} s")

    def score(model_dir: Path) -> dict:
        preds = predict(model_dir, test, taxonomy, batch_size=32, max_new_tokens=160, progress=False)
        m = evaluate(gold, preds, taxonomy)
        return {"f1": m["headline_f1"], "macro_f1": m["macro_f1"], "ece": m["ece"], "coverage": m["coverage"]}

    results = {"sft": {**score(student), "rollouts": 0, "wall_s": 0.0}}
    for name, above, below in (("rl_unfiltered", None, None), ("rl_filtered", args.skip_above, args.skip_below)):
        out = args.work / name
        shutil.rmtree(out, ignore_errors=True)
        config = RLConfig(num_generations=args.num_generations, users_per_step=args.users_per_step, num_train_epochs=args.epochs,
                          learning_rate=args.lr, max_completion_length=160, skip_above=above, skip_below=below,
                          save_steps=10_000, logging_steps=5)
        summary = train_rl(student, train, out, config, pseudo=pseudo, resume=False, keep_checkpoints=False)
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
