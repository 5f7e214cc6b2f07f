"""Profiles at platform scale: users/s and peak memory of `confprofile predict` as the user count grows.

    make demo                                                   # a trained encoder student in runs/quickstart
    python benchmarks/profile_scale.py --model runs/quickstart/student_rl --users 10000 100000 1000000

For each size it generates a ProfileBench users file once (kept in --work; 1M users are ~2 GB of
JSONL), then runs `confprofile predict` in a fresh process and reads that process's peak RSS from
the kernel (wait4 of that child). Memory stays flat when the prediction streams: the chunk, not
the file, is what is held. Prints one row per size: users, seconds, users/s, peak RSS.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path


def users_file(work: Path, n_users: int) -> Path:
    path = work / f"users-{n_users}" / "users.jsonl"
    if not path.exists():
        subprocess.run([sys.executable, "-m", "confprofile", "generate", "--users", str(n_users), "--seed", "7",
                        "--out", str(path.parent)], check=True, stdout=subprocess.DEVNULL)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, required=True, help="A trained student directory (e.g. runs/quickstart/student_rl).")
    parser.add_argument("--users", type=int, nargs="+", default=[10000, 100000, 1000000])
    parser.add_argument("--chunk-users", type=int, default=10000)
    parser.add_argument("--work", type=Path, default=Path("/tmp/confprofile-profile-scale"))
    args = parser.parse_args()

    print(f"{'users':>9} {'seconds':>8} {'users/s':>8} {'peak RSS':>9}")
    for n_users in args.users:
        source = users_file(args.work, n_users)
        out = args.work / f"profiles-{n_users}" / "profiles.parquet"
        for stale in (out, out.with_suffix(".jsonl")):
            stale.unlink(missing_ok=True)
        subprocess.run(["rm", "-rf", str(out) + ".parts"], check=True)
        started = time.perf_counter()
        child = subprocess.Popen([sys.executable, "-m", "confprofile", "predict", "--model", str(args.model), "--users", str(source),
                                  "--out", str(out), "--chunk-users", str(args.chunk_users)], stdout=subprocess.DEVNULL)
        _, status, usage = os.wait4(child.pid, 0)  # this child's own peak RSS (KiB), not the generator's
        seconds = time.perf_counter() - started
        if status != 0:
            sys.exit(f"predict failed on {n_users} users (status {status})")
        print(f"{n_users:>9} {seconds:>8.1f} {n_users / seconds:>8.0f} {usage.ru_maxrss / 1024:>6.0f} MB", flush=True)


if __name__ == "__main__":
    main()
