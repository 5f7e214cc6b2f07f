"""Speed and peak memory of stage 1b's aggregators against crowd-kit and a numpy bincount floor.

Data: simulated teachers (tests/teacher_simulator.py), --users users x 6 dimensions x 8 teachers
(one answer each, 48 answers a user), categorical columns as pyarrow dictionary columns load.
Rows:
- floor: bincount of confidence per (user, label) + argmax, on per-dimension int arrays that are
  already encoded (no encoding, no output frame): the least work a weighted vote can do;
- ours: `WeightedVote` / `DawidSkene` `.fit_predict(answers_df)` end to end (encoding, EM, output
  DataFrame), and `.fit(encoded)` on the pre-encoded table;
- crowd-kit: `MajorityVote` / `DawidSkene(n_iter=10)` (ours runs at most 10 EM iterations too), per
  dimension on (task, worker, label) frames. crowd-kit is slow and memory hungry, so it runs on the
  first --crowdkit-users users; ours is timed on that subset as well, and speed-ups are quoted there.

crowd-kit is NOT a confprofile dependency: `pip install crowd-kit` (1.4.2 pulls attrs, nltk,
defusedxml; no torch) into the venv before running this script.

Time: wall clock of one call. Peak memory: a second call under tracemalloc (numpy, pandas and scipy
allocations are traced), so timing runs are not slowed by tracing.

    python benchmarks/aggregate_speed.py [--users 1000000] [--crowdkit-users 100000]
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from teacher_simulator import SimTeacher, simulate  # noqa: E402

from confprofile.aggregate import DawidSkene, WeightedVote, encode  # noqa: E402

DIMS = {"gender": 2, "age_group": 6, "occupation": 11, "education": 4, "life_stage": 5, "consumption_level": 3}
TEACHERS = [SimTeacher(f"t{i}", accuracy=a, overconfidence=o, bias=b, abstain=0.03, missing=0.02)
            for i, (a, o, b) in enumerate([(0.8, 2, 1), (0.75, 1, 0), (0.7, 2, 1), (0.65, 1.5, 0.5),
                                           (0.6, 3, 2), (0.55, 1, 0), (0.5, 2, 1), (0.45, 1, 0)])]


def measure(fn):
    """(seconds, peak MiB, result): one timed call, then one call under tracemalloc."""
    gc.collect()
    start = time.perf_counter()
    result = fn()
    seconds = time.perf_counter() - start
    del result
    gc.collect()
    tracemalloc.start()
    result = fn()
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return seconds, peak, result


def accuracy(pred: pd.DataFrame, truth: pd.DataFrame) -> float:
    merged = pred.merge(truth, on=["user_id", "dimension"], suffixes=("", "_true"))
    return float((merged["label"].astype(str) == merged["label_true"].astype(str)).mean())


def floor_vote(parts):
    return [np.argmax(np.bincount(u.astype(np.int64) * k + lab, weights=c, minlength=n * k).reshape(n, k), axis=1)
            for u, lab, c, k, n in parts]


def crowdkit_run(model_cls, frames, **options):
    return [model_cls(**options).fit_predict(frame) for frame in frames]


def crowdkit_frames(answers: pd.DataFrame):
    """Per dimension (task, worker, label) integer frames without abstentions / missing answers."""
    enc = encode(answers)
    frames = []
    for part in enc.dims.values():
        keep = part.label >= 0
        frames.append(pd.DataFrame({"task": part.user[keep], "worker": part.teacher[keep], "label": part.label[keep]}))
    return enc, frames


def crowdkit_accuracy(results, enc, truth):
    preds = []
    for (name, part), result in zip(enc.dims.items(), results):
        labels = np.array(part.labels, dtype=object)
        preds.append(pd.DataFrame({"user_id": enc.users[result.index.to_numpy()], "dimension": name,
                                   "label": labels[result.to_numpy().astype(int)]}))
    return accuracy(pd.concat(preds), truth)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--users", type=int, default=1_000_000)
    ap.add_argument("--crowdkit-users", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    t0 = time.perf_counter()
    answers, truth = simulate(args.users, DIMS, TEACHERS, seed=args.seed, categorical=True)
    print(f"simulated {len(answers):,} answers ({args.users:,} users x {len(DIMS)} dims x {len(TEACHERS)} teachers) "
          f"in {time.perf_counter() - t0:.1f}s; answers frame {answers.memory_usage(deep=False).sum() / 2**20:.0f} MiB")
    rows = []

    def add(name, users, fn, acc=None):
        seconds, peak, result = measure(fn)
        rows.append({"method": name, "users": users, "seconds": seconds, "peak_MiB": peak,
                     "accuracy": acc(result) if acc else np.nan})
        print(f"  {name:<45} {seconds:8.2f}s {peak:9.0f} MiB", flush=True)

    enc = encode(answers)
    parts = [(p.user[p.voting], p.label[p.voting], p.conf[p.voting], p.k, enc.n_users) for p in enc.dims.values()]
    add("floor: numpy bincount + argmax (pre-encoded)", args.users, lambda: floor_vote(parts))
    add("ours: encode answers table", args.users, lambda: encode(answers))
    add("ours: weighted .fit (pre-encoded)", args.users, lambda: WeightedVote().fit(enc))
    add("ours: weighted .fit_predict(df)", args.users, lambda: WeightedVote().fit_predict(answers), lambda p: accuracy(p, truth))
    add("ours: dawid_skene .fit (pre-encoded)", args.users, lambda: DawidSkene().fit(enc))
    add("ours: dawid_skene .fit_predict(df)", args.users, lambda: DawidSkene().fit_predict(answers), lambda p: accuracy(p, truth))
    del enc, parts

    try:
        from crowdkit.aggregation import DawidSkene as CkDawidSkene
        from crowdkit.aggregation import MajorityVote as CkMajorityVote
    except ImportError:
        print("crowd-kit not installed (pip install crowd-kit): skipping the comparison")
        CkMajorityVote = None
    if CkMajorityVote is not None:
        n = min(args.crowdkit_users, args.users)
        sub_users = set(f"u{i:07d}" for i in range(n))
        sub = answers[answers["user_id"].isin(sub_users)].reset_index(drop=True)
        sub_truth = truth[truth["user_id"].isin(sub_users)]
        sub["user_id"] = sub["user_id"].cat.remove_unused_categories()
        sub_enc, frames = crowdkit_frames(sub)
        print(f"subset for crowd-kit: {n:,} users, {len(sub):,} answers")
        sub_parts = [(p.user[p.voting], p.label[p.voting], p.conf[p.voting], p.k, sub_enc.n_users) for p in sub_enc.dims.values()]
        add("floor: numpy bincount + argmax (pre-encoded) [subset]", n, lambda: floor_vote(sub_parts))
        add("ours: weighted .fit (pre-encoded) [subset]", n, lambda: WeightedVote().fit(sub_enc))
        add("ours: weighted .fit_predict(df) [subset]", n, lambda: WeightedVote().fit_predict(sub), lambda p: accuracy(p, sub_truth))
        add("ours: dawid_skene .fit (pre-encoded) [subset]", n, lambda: DawidSkene().fit(sub_enc))
        add("ours: dawid_skene .fit_predict(df) [subset]", n, lambda: DawidSkene().fit_predict(sub), lambda p: accuracy(p, sub_truth))
        add("crowd-kit MajorityVote [subset]", n, lambda: crowdkit_run(CkMajorityVote, frames),
            lambda r: crowdkit_accuracy(r, sub_enc, sub_truth))
        add("crowd-kit DawidSkene(n_iter=10) [subset]", n, lambda: crowdkit_run(CkDawidSkene, frames, n_iter=10),
            lambda r: crowdkit_accuracy(r, sub_enc, sub_truth))

    table = pd.DataFrame(rows)
    by = table.set_index("method")["seconds"]
    print("\n" + table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print(f"\nweighted fit_predict(df) / floor: {by['ours: weighted .fit_predict(df)'] / by['floor: numpy bincount + argmax (pre-encoded)']:.1f}x; "
          f"weighted fit(pre-encoded) / floor: {by['ours: weighted .fit (pre-encoded)'] / by['floor: numpy bincount + argmax (pre-encoded)']:.1f}x")
    if CkMajorityVote is not None:
        for ours, theirs in [("weighted", "crowd-kit MajorityVote"), ("dawid_skene", "crowd-kit DawidSkene(n_iter=10)")]:
            ck = by[f"{theirs} [subset]"]
            print(f"on the {n:,}-user subset, {ours} vs {theirs}: {ck / by[f'ours: {ours} .fit_predict(df) [subset]']:.1f}x faster "
                  f"from the answers frame, {ck / by[f'ours: {ours} .fit (pre-encoded) [subset]']:.1f}x on pre-encoded integers "
                  f"(crowd-kit also gets pre-encoded integer frames)")
        floor = by["floor: numpy bincount + argmax (pre-encoded) [subset]"]
        print(f"the floor itself is {by['crowd-kit MajorityVote [subset]'] / floor:.1f}x faster than crowd-kit MajorityVote: "
              "the most any vote that bincounts every answer can gain over crowd-kit here")
        print(f"crowd-kit was timed on {n:,} users only, not on all {args.users:,}")

if __name__ == "__main__":
    main()
