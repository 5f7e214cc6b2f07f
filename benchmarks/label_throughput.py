"""Throughput of `confprofile label` through the `openai` backend against a fixed-latency loopback server.

A server that answers every chat request after exactly LATENCY seconds caps throughput at
concurrency / LATENCY requests/s. The table shows how close the backend alone gets (teacher.answer),
then the whole labelling path (render, prompt, HTTP, cache commit per reply, parsing, answers table),
then reruns over the full cache (must send 0 requests).
Optionally (--smollm2 N) measures users/minute of the packaged `smollm2` teacher on this CPU.

    python benchmarks/label_throughput.py [--latency 0.2] [--concurrency 1 16 64] [--seconds 3] [--smollm2 20]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import re
import tempfile
import time
from pathlib import Path

ANSWER = json.dumps({"gender": {"label": "female", "confidence": 0.8, "rationale": "r"}, "age_group": {"label": "25_34", "confidence": 0.7, "rationale": "r"}})
BODY = json.dumps({"id": "x", "object": "chat.completion", "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": ANSWER}}]}).encode()


def _serve(latency: float, port_queue, counter) -> None:
    """A minimal keep-alive HTTP/1.1 server on asyncio: every request is answered after `latency` s."""

    async def handle(reader, writer):
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = re.search(rb"content-length:\s*(\d+)", head, re.IGNORECASE)
                await reader.readexactly(int(length.group(1)) if length else 0)
                with counter.get_lock():
                    counter.value += 1
                await asyncio.sleep(latency)
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(BODY), BODY))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def main():
        server = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=1024)
        port_queue.put(server.sockets[0].getsockname()[1])
        async with server:
            await server.serve_forever()

    asyncio.run(main())


def _users(n: int, offset: int):
    from confprofile.data import UserRecord

    return [UserRecord(user_id=f"u{offset + i}", data={"bio": f"user {offset + i} likes hiking", "searches": ["flights", "laptops"]}) for i in range(n)]


def run_http(latency: float, concurrencies: list[int], seconds: float) -> None:
    from confprofile.prompts import build_messages
    from confprofile.label import label_users
    from confprofile.taxonomy import Taxonomy
    from confprofile.teachers.base import TeacherConfig, TeacherRequest, build_teacher

    taxonomy = Taxonomy.builtin("profilebench")
    port_queue, counter = mp.Queue(), mp.Value("i", 0)
    server = mp.Process(target=_serve, args=(latency, port_queue, counter), daemon=True)
    server.start()
    url = f"http://127.0.0.1:{port_queue.get(timeout=30)}/v1"
    print(f"loopback server, fixed latency {latency * 1000:.0f} ms; bound = concurrency / latency; "
          f"load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs\n")
    print(f"{'':>20} {'backend only':>16} | {'label_users end to end':>35} | {'rerun (full cache)':>18}")
    print(f"{'concurrency':>11} {'bound':>8} {'req/s':>7} {'% bound':>8} | {'requests':>8} {'req/s':>7} {'% bound':>8} {'CPU ms/req':>10} | {'sent':>5} {'wall s':>7}")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            warm = TeacherConfig(name="warm", backend="openai", model="m", params={"base_url": url})
            label_users(_users(2, -2), taxonomy, [warm], Path(tmp) / "warm.sqlite", show_progress=False)  # imports, first connection
            offset = 0
            for c in concurrencies:
                n = max(c, int(seconds * c / latency))
                users, cache = _users(n, offset), Path(tmp) / f"cache-{c}.sqlite"
                offset += n
                config = TeacherConfig(name="bench", backend="openai", model="m", params={"base_url": url, "concurrency": c, "timeout": 30})
                teacher, replies = build_teacher(config, taxonomy), []
                requests = [TeacherRequest(f"b{i}", 0, "x", tuple(build_messages(f"user {i}", taxonomy))) for i in range(n)]
                t0 = time.perf_counter()
                teacher.answer(requests, lambda req, rep: replies.append(rep.error))
                backend_rps = n / (time.perf_counter() - t0)
                assert replies.count(None) == n
                start_count, t0, cpu0 = counter.value, time.perf_counter(), time.process_time()
                answers = label_users(users, taxonomy, [config], cache, show_progress=False)
                wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
                sent = counter.value - start_count
                assert sent == n and (answers.parse_status != "error").all()
                t1 = time.perf_counter()
                label_users(users, taxonomy, [config], cache, show_progress=False)
                rerun_wall, rerun_sent = time.perf_counter() - t1, counter.value - start_count - sent
                bound = c / latency
                print(f"{c:>11} {bound:>8.0f} {backend_rps:>7.1f} {100 * backend_rps / bound:>7.1f}% | {n:>8} {n / wall:>7.1f} "
                      f"{100 * n / wall / bound:>7.1f}% {1000 * cpu / n:>10.2f} | {rerun_sent:>5} {rerun_wall:>7.2f}")
    finally:
        server.terminate()


def run_smollm2(n_users: int) -> None:
    from confprofile.bench.profilebench import generate
    from confprofile.label import label_users
    from confprofile.taxonomy import Taxonomy
    from confprofile.teachers.base import TeacherConfig

    from confprofile.data import UserRecord

    users = [UserRecord(**u) for u in generate(n_users, seed=0)[0]]  # gold is not used: this measures speed only
    config = TeacherConfig(name="smollm2", backend="smollm2", model="smollm2", temperature=0.0)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        label_users(users, Taxonomy.builtin("profilebench"), [config], Path(tmp) / "c.sqlite", show_progress=False)
        wall = time.perf_counter() - t0
    print(f"\nsmollm2 teacher: {n_users} users in {wall:.1f} s = {60 * n_users / wall:.1f} users/minute (incl. model load)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 16, 64])
    parser.add_argument("--seconds", type=float, default=3.0, help="ideal run length per concurrency level")
    parser.add_argument("--smollm2", type=int, default=0, metavar="N", help="also time the smollm2 teacher on N users")
    args = parser.parse_args()
    run_http(args.latency, args.concurrency, args.seconds)
    if args.smollm2:
        run_smollm2(args.smollm2)
