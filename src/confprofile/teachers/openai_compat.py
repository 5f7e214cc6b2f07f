"""`openai` teacher: any OpenAI-compatible chat endpoint (vLLM, SGLang, Ollama, llama.cpp, hosted APIs).

Requests run concurrently on one asyncio loop (a semaphore of `concurrency` workers, paced to
`rate_limit` requests/s). Transient failures (429, 408, 5xx, timeouts, connection errors, malformed
bodies) are retried with exponential backoff and jitter, honouring `Retry-After`; after
`max_retries` the request is reported as failed and the label stage retries it on the next run.

params (all optional):
  base_url        server root incl. /v1 (default http://127.0.0.1:8000/v1)
  api_key_env     name of the environment variable holding the API key (the key is never logged or cached)
  concurrency     requests in flight (16);  rate_limit  requests/s, 0 = unlimited (0)
  timeout         seconds per request (120); max_retries  retries per request (5)
  backoff_base    first backoff in s (0.5); backoff_max  cap of one wait in s (30)
  response_format "json_object" or "json_schema" where the server supports it (unset)
  logprobs        true: ask for token log-probs and derive label probabilities from them (false)
  top_logprobs    alternatives per token when logprobs is on (5)
  seed            base seed; request seed = seed + sample index (unset)
  extra_body      dict merged into the request body (e.g. chat_template_kwargs)
"""

from __future__ import annotations

import asyncio
import email.utils
import math
import os
import random
import re
import time
from typing import Any

from confprofile.errors import InputError
from confprofile.prompts import answer_schema
from confprofile.taxonomy import UNKNOWN, Taxonomy
from confprofile.teachers.base import TEACHERS, ReplyCallback, Teacher, TeacherReply, TeacherRequest

RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504, 520, 522, 524, 529}
# transport settings: they change how fast answers come, not what they are, so they stay out of the cache key
TRANSPORT_PARAMS = {"base_url", "api_key_env", "concurrency", "rate_limit", "timeout", "max_retries", "backoff_base", "backoff_max"}


class _Retryable(Exception):
    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


def retry_after_seconds(value: str | None) -> float | None:
    """Retry-After as seconds (a number or an HTTP date); None when absent or unreadable."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, email.utils.parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def backoff_delay(attempt: int, base: float, cap: float, retry_after: float | None, rng: random.Random) -> float:
    """Exponential backoff with equal jitter; a server's Retry-After wins when it asks for longer."""
    exp = min(cap, base * 2**attempt)
    delay = exp / 2 + rng.uniform(0, exp / 2)
    return min(cap, max(delay, retry_after or 0.0))


def label_probs_from_logprobs(tokens: list[dict], taxonomy: Taxonomy) -> tuple[dict[str, dict[str, float]], dict[str, float]]:
    """Per dimension: {label: prob} from token log-probs, and the chosen label's probability.

    The chosen label's probability is the product of its tokens' probabilities. Alternatives come from
    the top log-probs at the label's first token, credited to a label only when that token singles it
    out. The distribution can sum to less than 1 (mass on tokens that name no single label).
    """
    text, spans = "", []
    for tok in tokens:
        spans.append((len(text), len(text) + len(tok.get("token", ""))))
        text += tok.get("token", "")
    probs: dict[str, dict[str, float]] = {}
    chosen: dict[str, float] = {}
    for dim in taxonomy.dimensions:
        pattern = rf'"{re.escape(dim.name)}"\s*:\s*(?:\{{[^{{}}]*?"label"\s*:\s*)?"([^"]+)"'
        match = re.search(pattern, text)
        if not match or (label := dim.normalize(match.group(1))) is None:
            continue
        start, end = match.span(1)
        inside = [i for i, (a, b) in enumerate(spans) if a < end and b > start]
        if not inside:
            continue
        p = math.exp(sum(float(tokens[i].get("logprob", 0.0)) for i in inside))
        dist = {label: p}
        first = inside[0]
        prefix = text[spans[first][0] : start]
        names = [*dim.label_names, UNKNOWN]
        for alt in tokens[first].get("top_logprobs") or []:
            alt_text = alt.get("token", "")
            if alt_text == tokens[first].get("token") or not alt_text.startswith(prefix):
                continue
            rest = alt_text[len(prefix) :]
            complete = '"' in rest
            rest = rest.split('"')[0]
            matches = [n for n in names if rest and (n == rest if complete else n.startswith(rest))]
            if len(matches) == 1 and matches[0] != label:
                dist[matches[0]] = dist.get(matches[0], 0.0) + math.exp(float(alt.get("logprob", -math.inf)))
        probs[dim.name], chosen[dim.name] = dist, p
    return probs, chosen


@TEACHERS.register("openai")
class OpenAITeacher(Teacher):
    """Chat completions over HTTP (httpx, async)."""

    def __init__(self, config, taxonomy):
        super().__init__(config, taxonomy)
        p = config.params
        self.base_url = str(p.get("base_url", "http://127.0.0.1:8000/v1")).rstrip("/")
        self.concurrency = max(1, int(p.get("concurrency", 16)))
        self.rate_limit = float(p.get("rate_limit", 0) or 0)
        self.timeout = float(p.get("timeout", 120))
        self.max_retries = max(0, int(p.get("max_retries", 5)))
        self.backoff_base = float(p.get("backoff_base", 0.5))
        self.backoff_max = float(p.get("backoff_max", 30))
        self._rng = random.Random(p.get("seed", 0))
        self._api_key = None
        if p.get("api_key_env"):
            self._api_key = os.environ.get(str(p["api_key_env"]))
            if not self._api_key:
                raise InputError(None, None, f"{config.name}.params.api_key_env", f"environment variable {p['api_key_env']} is not set")

    def identity(self) -> dict[str, Any]:
        ident = super().identity()
        ident["params"] = {k: v for k, v in ident["params"].items() if k not in TRANSPORT_PARAMS}
        return ident

    def _body(self, request: TeacherRequest) -> dict[str, Any]:
        p = self.config.params
        body: dict[str, Any] = {
            "model": self.config.model,
            "messages": list(request.messages),
            "temperature": self.config.temperature,
            "max_tokens": self.config.max_new_tokens,
        }
        if p.get("response_format") == "json_object":
            body["response_format"] = {"type": "json_object"}
        elif p.get("response_format") == "json_schema":
            schema = {"name": "profile", "schema": answer_schema(self.taxonomy), "strict": True}
            body["response_format"] = {"type": "json_schema", "json_schema": schema}
        if p.get("logprobs"):
            body["logprobs"] = True
            body["top_logprobs"] = int(p.get("top_logprobs", 5))
        if p.get("seed") is not None:
            body["seed"] = int(p["seed"]) + request.sample
        body.update(p.get("extra_body") or {})
        return body

    def answer(self, requests: list[TeacherRequest], on_reply: ReplyCallback) -> None:
        if requests:
            asyncio.run(self._answer_all(requests, on_reply))

    async def _answer_all(self, requests: list[TeacherRequest], on_reply: ReplyCallback) -> None:
        import httpx

        headers = {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}
        timeout = httpx.Timeout(self.timeout, connect=min(self.timeout, 10.0))
        ssl_context = httpx.create_ssl_context()  # loading CA certificates costs ~0.1 s: once, not per client
        queue = iter(requests)
        pace = {"next": 0.0, "lock": asyncio.Lock()}

        async def worker() -> None:
            # one single-connection client per worker: httpx's shared pool scans every connection
            # per request, which costs more CPU than the request itself at 64+ connections
            limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
            async with httpx.AsyncClient(
                base_url=self.base_url, headers=headers, limits=limits, timeout=timeout, verify=ssl_context
            ) as client:
                for request in queue:  # workers share one iterator: each request is taken once
                    on_reply(request, self._scrub(await self._one(client, request, pace)))

        await asyncio.gather(*(worker() for _ in range(min(self.concurrency, len(requests)))))

    def _scrub(self, reply: TeacherReply) -> TeacherReply:
        """Mask the API key wherever a server echoed it (error bodies, content), so it never reaches the cache."""
        if self._api_key:
            reply.text = reply.text.replace(self._api_key, "***") if reply.text else reply.text
            reply.error = reply.error.replace(self._api_key, "***") if reply.error else reply.error
        return reply

    async def _pace(self, pace: dict) -> None:
        if self.rate_limit <= 0:
            return
        loop = asyncio.get_running_loop()
        async with pace["lock"]:
            now = loop.time()
            slot = max(now, pace["next"])
            pace["next"] = slot + 1.0 / self.rate_limit
        if slot > now:
            await asyncio.sleep(slot - now)

    async def _one(self, client, request: TeacherRequest, pace: dict) -> TeacherReply:
        import httpx

        body, started, error = self._body(request), time.monotonic(), "no attempt"
        for attempt in range(self.max_retries + 1):
            await self._pace(pace)
            try:
                response = await client.post("/chat/completions", json=body)
                if response.status_code in RETRY_STATUS:
                    raise _Retryable(f"HTTP {response.status_code}: {response.text[:200]}", retry_after_seconds(response.headers.get("retry-after")))
                if response.status_code >= 400:  # 400/401/404...: retrying will not help
                    return TeacherReply(None, error=f"HTTP {response.status_code}: {response.text[:300]}", meta={"attempts": attempt + 1})
                return self._reply(response, attempt, started)
            except _Retryable as exc:
                error, retry_after = str(exc), exc.retry_after
            except (httpx.TimeoutException, httpx.TransportError) as exc:
                error, retry_after = f"{type(exc).__name__}: {exc}"[:300], None
            if attempt < self.max_retries:
                await asyncio.sleep(backoff_delay(attempt, self.backoff_base, self.backoff_max, retry_after, self._rng))
        return TeacherReply(None, error=f"gave up after {self.max_retries + 1} attempts: {error}", meta={"attempts": self.max_retries + 1})

    def _reply(self, response, attempt: int, started: float) -> TeacherReply:
        try:
            data = response.json()
            choice = data["choices"][0]
            text = choice["message"]["content"]
            if not isinstance(text, str):
                raise TypeError("message.content is not a string")
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise _Retryable(f"malformed response ({type(exc).__name__}): {response.text[:200]}") from None
        meta = {"attempts": attempt + 1, "latency_s": round(time.monotonic() - started, 3), "finish_reason": choice.get("finish_reason")}
        if isinstance(data.get("usage"), dict):
            meta["usage"] = {k: v for k, v in data["usage"].items() if isinstance(v, int)}
        label_probs = None
        tokens = (choice.get("logprobs") or {}).get("content") if isinstance(choice.get("logprobs"), dict) else None
        if self.config.params.get("logprobs") and isinstance(tokens, list) and tokens:
            label_probs, meta["label_prob"] = label_probs_from_logprobs(tokens, self.taxonomy)
        return TeacherReply(text, label_probs=label_probs or None, meta=meta)
