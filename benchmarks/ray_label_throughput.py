"""Throughput of `label --engine ray` beside the single-process path, on one loopback OpenAI server.

The server answers every chat request after a fixed latency (default 100 ms), like a remote
endpoint whose latency, not the client, is the limit. Each path labels the same users from an
empty cache; the figures are requests per second over the whole call (Ray's includes its
actor start-up; cluster start-up is printed apart).

    python benchmarks/ray_label_throughput.py --users 400 --latency 0.1 --concurrency 8 --actors 2
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from fake_openai import FakeOpenAIServer  # noqa: E402  (the tests' loopback server)

from confprofile.data import UserRecord  # noqa: E402
from confprofile.taxonomy import Taxonomy  # noqa: E402
from confprofile.teachers.base import TeacherConfig  # noqa: E402


class TimedServer(FakeOpenAIServer):
    """Records when each request arrived, for the steady-state rate (start-up excluded)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.arrivals: list[float] = []

    def respond(self, body):
        self.arrivals.append(time.perf_counter())
        return super().respond(body)

    def steady_rate(self, since: int) -> float:
        """Requests per second between the first and the last arrival after request `since`."""
        window = self.arrivals[since:]
        return (len(window) - 1) / max(window[-1] - window[0], 1e-9)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=400)
    parser.add_argument("--latency", type=float, default=0.1, help="Server seconds per request.")
    parser.add_argument("--concurrency", type=int, default=8, help="Requests in flight per process (openai `concurrency`).")
    parser.add_argument("--actors", type=int, default=2, help="Ray actors.")
    parser.add_argument("--num-cpus", type=int, default=2, help="CPUs of the local Ray cluster.")
    args = parser.parse_args()

    import ray

    from confprofile.scale.ray_label import RayLabelConfig, label_users_ray
    from confprofile.label import label_users

    taxonomy = Taxonomy.builtin("profilebench")
    users = [UserRecord(user_id=f"u{i:05d}", data={"bio": f"user {i}", "searches": [f"q{i}", f"t{i % 7}"]}) for i in range(args.users)]
    rows = []
    with TimedServer(delay_s=args.latency) as server, tempfile.TemporaryDirectory() as tmp:
        params = {"base_url": server.url, "concurrency": args.concurrency, "max_retries": 2}
        teachers = [TeacherConfig(name="t", backend="openai", model="m", params=params)]

        start = time.perf_counter()
        label_users(users, taxonomy, teachers, Path(tmp) / "local.sqlite", show_progress=False)
        rows.append(("single process", 1, args.concurrency, server.total, time.perf_counter() - start, server.steady_rate(0)))

        start = time.perf_counter()
        ray.init(num_cpus=args.num_cpus, include_dashboard=False, log_to_driver=False)
        ray_start = time.perf_counter() - start
        for actors in sorted({1, args.actors}):
            before, start = server.total, time.perf_counter()
            config = RayLabelConfig(actors=actors, num_cpus=args.num_cpus / actors / 2, batch_size=4 * args.concurrency)
            label_users_ray(users, taxonomy, teachers, Path(tmp) / f"ray{actors}.sqlite", ray_config=config, show_progress=False)
            wall = time.perf_counter() - start
            rows.append((f"ray ({actors} worker{'s' * (actors > 1)})", actors, args.concurrency, server.total - before, wall, server.steady_rate(before)))
        ray.shutdown()

    ideal = args.concurrency / args.latency
    print(f"{args.users} users, 1 teacher, server latency {args.latency * 1000:.0f} ms; ray.init took {ray_start:.1f} s (not counted)")
    print(f"ideal rate = processes x in-flight / latency = {ideal:.0f} req/s per process; steady = first to last request at the server")
    print(f"{'engine':<18}{'processes':>10}{'in flight':>10}{'requests':>9}{'wall s':>8}{'req/s':>8}{'steady req/s':>14}{'of ideal':>10}")
    for name, procs, conc, n, wall, steady in rows:
        print(f"{name:<18}{procs:>10}{conc:>10}{n:>9}{wall:>8.1f}{n / wall:>8.1f}{steady:>14.1f}{steady / (ideal * procs):>10.0%}")


if __name__ == "__main__":
    main()
