"""Speed and peak memory of stage 1b's aggregators against crowd-kit and a numpy bincount floor.

Data: simulated teachers (tests/teacher_simulator.py), --users users x 6 dimensions x 8 teachers
(one answer each, 48 answers a user), categorical columns as pyarrow dictionary columns load. Rows are
ordered user, teacher, dimension, as `confprofile label` writes answers.parquet (`--layout by-user`);
`--layout by-dimension` keeps each dimension in one block.
Rows:
- floor: numpy bincount of confidence per (user, label) + argmax, on per-dimension int arrays that
  are already encoded (no encoding, no posterior, no output frame): the least a weighted vote written
  in numpy does (ours runs compiled one-pass loops, aggregate/kernels.py, and also computes a posterior);
- ours: `WeightedVote` / `DawidSkene` `.fit_predict(answers_df)` end to end (encoding, EM, output
  DataFrame), and `.fit(encoded)` on the pre-encoded table;
- crowd-kit: `MajorityVote` / `DawidSkene(n_iter=10)` (ours runs at most 10 EM iterations too), per
  dimension on (task, worker, label) integer frames without abstentions (encoding is not timed for
  it). By default it runs on all users; with --crowdkit-users N below --users, ours is timed again on
  those first N users and the speed-ups are quoted there.

crowd-kit is NOT a confprofile dependency: `pip install crowd-kit` (1.4.2 pulls attrs, nltk,
defusedxml; no torch) into the venv before running this script.

Time: the best wall clock of --repeat calls (this machine's timings vary by +-20% from run to run);
each `.fit (pre-encoded)` call gets a freshly encoded table, so nothing cached by an earlier call is
reused. Peak memory: one more call under tracemalloc (numpy, pandas and scipy allocations are
traced; the compiled kernels write into numpy arrays), so timing runs are not slowed by tracing.

    python benchmarks/aggregate_speed.py [--users 1000000] [--crowdkit-users 1000000] [--repeat 3]
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


def measure(fn, repeat: int, setup=lambda: None):
    """(best seconds of `repeat` timed calls, peak MiB, result); `fn(setup())`, setup untimed and untraced."""
    seconds = np.inf
    for _ in range(repeat):
        arg = setup()
        gc.collect()
        start = time.perf_counter()
        result = fn(arg)
        seconds = min(seconds, time.perf_counter() - start)
        del result
    arg = setup()
    gc.collect()
    tracemalloc.start()
    result = fn(arg)
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


def by_user(answers: pd.DataFrame) -> pd.DataFrame:
    """Rows ordered user, teacher, dimension: the layout `confprofile label` writes."""
    order = np.lexsort([answers[c].cat.codes.to_numpy() for c in ("dimension", "teacher", "user_id")])
    return answers.iloc[order].reset_index(drop=True)


def first_users(answers: pd.DataFrame, truth: pd.DataFrame, n: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    ids = set(f"u{i:07d}" for i in range(n))
    sub = answers[answers["user_id"].isin(ids)].reset_index(drop=True)
    sub["user_id"] = sub["user_id"].cat.remove_unused_categories()
    return sub, truth[truth["user_id"].isin(ids)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--users", type=int, default=1_000_000)
    ap.add_argument("--crowdkit-users", type=int, default=1_000_000, help="crowd-kit runs on the first N users")
    ap.add_argument("--layout", choices=["by-user", "by-dimension"], default="by-user")
    ap.add_argument("--repeat", type=int, default=3, help="timed calls per row of ours (crowd-kit: one)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    t0 = time.perf_counter()
    answers, truth = simulate(args.users, DIMS, TEACHERS, seed=args.seed, categorical=True)
    if args.layout == "by-user":
        answers = by_user(answers)
    print(f"simulated {len(answers):,} answers ({args.users:,} users x {len(DIMS)} dims x {len(TEACHERS)} teachers, "
          f"layout {args.layout}) in {time.perf_counter() - t0:.1f}s; answers frame "
          f"{answers.memory_usage(deep=False).sum() / 2**20:.0f} MiB")
    rows = []

    def add(name, users, fn, acc=None, setup=lambda: None, repeat=args.repeat):
        seconds, peak, result = measure(fn, repeat, setup)
        rows.append({"method": name, "users": users, "seconds": seconds, "peak_MiB": peak,
                     "accuracy": acc(result) if acc else np.nan})
        print(f"  {name:<48} {seconds:8.2f}s {peak:9.0f} MiB", flush=True)

    def ours(table, table_truth, n, tag=""):
        enc = encode(table)
        parts = [(p.user[p.voting], p.label[p.voting], p.conf[p.voting], p.k, enc.n_users) for p in enc.dims.values()]
        add(f"floor: numpy bincount + argmax (pre-encoded){tag}", n, lambda _: floor_vote(parts))
        del enc, parts
        fresh = lambda: encode(table)  # noqa: E731 - nothing an earlier fit cached is reused
        add(f"ours: encode answers table{tag}", n, lambda _: encode(table))
        for label, cls in [("weighted", WeightedVote), ("dawid_skene", DawidSkene)]:
            add(f"ours: {label} .fit (pre-encoded){tag}", n, lambda enc, cls=cls: cls().fit(enc), setup=fresh)
            add(f"ours: {label} .fit_predict(df){tag}", n, lambda _, cls=cls: cls().fit_predict(table),
                lambda p: accuracy(p, table_truth))

    ours(answers, truth, args.users)
    try:
        from crowdkit.aggregation import DawidSkene as CkDawidSkene
        from crowdkit.aggregation import MajorityVote as CkMajorityVote
    except ImportError:
        print("crowd-kit not installed (pip install crowd-kit): skipping the comparison")
        CkMajorityVote = None
    n, tag = min(args.crowdkit_users, args.users), ""
    if CkMajorityVote is not None:
        if n < args.users:
            tag = " [subset]"
            answers, truth = first_users(answers, truth, n)
            print(f"subset for crowd-kit: {n:,} users, {len(answers):,} answers")
            ours(answers, truth, n, tag)
        ck_enc, frames = crowdkit_frames(answers)
        del answers
        add(f"crowd-kit MajorityVote{tag}", n, lambda _: crowdkit_run(CkMajorityVote, frames),
            lambda r: crowdkit_accuracy(r, ck_enc, truth), repeat=1)
        add(f"crowd-kit DawidSkene(n_iter=10){tag}", n, lambda _: crowdkit_run(CkDawidSkene, frames, n_iter=10),
            lambda r: crowdkit_accuracy(r, ck_enc, truth), repeat=1)

    table = pd.DataFrame(rows)
    by = table.set_index("method")["seconds"]
    floor = by["floor: numpy bincount + argmax (pre-encoded)"]
    print("\n" + table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print(f"\nweighted fit(pre-encoded) / floor: {by['ours: weighted .fit (pre-encoded)'] / floor:.1f}x; "
          f"weighted fit_predict(df) / floor: {by['ours: weighted .fit_predict(df)'] / floor:.1f}x")
    if CkMajorityVote is not None:
        for mine, theirs in [("weighted", "crowd-kit MajorityVote"), ("dawid_skene", "crowd-kit DawidSkene(n_iter=10)")]:
            ck = by[f"{theirs}{tag}"]
            print(f"{n:,} users, {mine} vs {theirs}: {ck / by[f'ours: {mine} .fit (pre-encoded){tag}']:.1f}x faster on "
                  f"pre-encoded integers (like for like: crowd-kit gets pre-encoded integer frames), "
                  f"{ck / by[f'ours: {mine} .fit_predict(df){tag}']:.1f}x from the answers frame")
        print(f"the numpy floor is {by[f'crowd-kit MajorityVote{tag}'] / by[f'floor: numpy bincount + argmax (pre-encoded){tag}']:.1f}x "
              "faster than crowd-kit MajorityVote")


if __name__ == "__main__":
    main()
