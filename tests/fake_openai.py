"""A loopback OpenAI-compatible chat server for tests, with injectable faults.

Markers inside the user message pick a behaviour: RATE_LIMIT_ONCE (429 + Retry-After, then ok),
ERROR_ONCE (500, then ok), SLOW_ONCE (answers after `slow_s`, then fast), MALFORMED_ONCE (200 with a
broken body, then ok), ALWAYS_500 (until `heal()`), BAD_REQUEST (400). Every request is counted by
the hash of its messages, so tests can check what was sent how often.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ANSWER = {
    "gender": {"label": "female", "confidence": 0.8, "rationale": "mentions her husband"},
    "age_group": {"label": "25-34", "confidence": "high", "rationale": "early career"},
}


def messages_key(messages) -> str:
    return hashlib.sha256(json.dumps(messages, sort_keys=True).encode()).hexdigest()[:16]


def fake_logprobs(content: str, label: str, alternative: str) -> list[dict]:
    """Word-ish tokens with logprob -0.05; the first token of `label` gets `alternative` as a runner-up."""
    tokens, seen = [], False
    for piece in re.findall(r"[A-Za-z_0-9]+|\s+|.", content):
        entry = {"token": piece, "logprob": -0.05, "top_logprobs": [{"token": piece, "logprob": -0.05}]}
        if piece == label and not seen:
            seen = True
            entry["top_logprobs"].append({"token": alternative, "logprob": -3.0})
        tokens.append(entry)
    return tokens


class FakeOpenAIServer:
    def __init__(self, delay_s: float = 0.0, slow_s: float = 1.0, answer: dict | None = None):
        self.delay_s, self.slow_s, self.answer = delay_s, slow_s, answer or ANSWER
        self.counts: Counter[str] = Counter()
        self.bodies: list[dict] = []
        self.healed = False
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # keep test output quiet
                pass

            def _send(self, status: int, body: bytes, headers: dict | None = None):
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                status, payload, headers, wait = server.respond(body)
                if wait:
                    time.sleep(wait)
                try:
                    self._send(status, payload, headers)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler, bind_and_activate=False)
        self.httpd.daemon_threads = True
        self.httpd.request_queue_size = 256
        self.httpd.server_bind()
        self.httpd.server_activate()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def total(self) -> int:
        with self._lock:
            return sum(self.counts.values())

    def heal(self) -> None:
        self.healed = True

    def respond(self, body: dict):
        key = messages_key(body["messages"])
        user = body["messages"][-1]["content"]
        with self._lock:
            self.counts[key] += 1
            attempt = self.counts[key]
            self.bodies.append(body)
        first = attempt == 1
        if "BAD_REQUEST" in user:
            return 400, b'{"error": {"message": "bad request"}}', {}, 0
        if "ALWAYS_500" in user and not self.healed:
            return 500, b'{"error": {"message": "boom"}}', {}, 0
        if "RATE_LIMIT_ONCE" in user and first:
            return 429, b'{"error": {"message": "slow down"}}', {"Retry-After": "0.05"}, 0
        if "ERROR_ONCE" in user and first:
            return 503, b"upstream unavailable", {}, 0
        if "MALFORMED_ONCE" in user and first:
            return 200, b'{"choices": [{"message": ', {}, 0
        wait = self.slow_s if ("SLOW_ONCE" in user and first) else self.delay_s
        content = json.dumps(self.answer)
        choice = {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}
        if body.get("logprobs"):
            choice["logprobs"] = {"content": fake_logprobs(content, "female", "male")}
        reply = {"id": "x", "object": "chat.completion", "model": body.get("model"), "choices": [choice],
                 "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}}
        return 200, json.dumps(reply).encode(), {}, wait

    def __enter__(self) -> "FakeOpenAIServer":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
