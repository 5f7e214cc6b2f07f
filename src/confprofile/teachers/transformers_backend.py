"""`transformers` teacher: a local Hugging Face causal LM, in one of two modes.

- `mode: generate` writes the JSON answer from the prompt's chat messages: length-sorted batches,
  left padding, sampling seeded per (user, sample) so samples differ but a rerun repeats them.
- `mode: score` is for small models that cannot write JSON reliably (see docs/cpu.md): the model
  reads the prompt once and, for every dimension, we measure the log-probability of each label as
  the start of its JSON answer (`{"gender": {"label": "male"`), up to the token that tells it apart
  from the other labels (the rest would be forced by constrained decoding). A softmax over a
  dimension's labels gives `label_probs`; the label is the argmax, its probability the confidence.

How score mode stays cheap: everything before the user data (system prompt, user-turn preamble) is
identical for all users, so its KV cache is computed once and shared by every batch. After each
user's data comes a token tree, one branch per (dimension, label), packed into the same forward
pass with a custom attention mask (each branch sees the prefix, the data and its own tokens only),
and logits are computed only where a label token is predicted.

Scoring is deterministic, so samples k > 1 in score mode are drawn, not recomputed: sample 0 is the
argmax; sample s >= 1 draws its label from softmax(log p / temperature), seeded per (user, sample).
`label_probs` is always the untempered distribution.

params (all optional): see `TransformersParams`.
"""

from __future__ import annotations

import hashlib
import math
import random
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from confprofile.prompts import escape_user_text, format_answer
from confprofile.taxonomy import Taxonomy
from confprofile.teachers.base import TEACHERS, ReplyCallback, Teacher, TeacherConfig, TeacherReply, TeacherRequest


class TransformersParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    mode: Literal["generate", "score"] = Field("generate", description="Write JSON (generate) or score the labels (score).")
    batch_size: int = Field(8, ge=1, description="Users per forward pass / generate call.")
    top_p: float = Field(1.0, gt=0.0, le=1.0, description="Nucleus sampling (generate mode).")
    seed: int = Field(0, description="Base seed; each (user, sample) gets its own seed derived from it.")
    threads: int | None = Field(None, ge=1, description="torch CPU threads (default: torch's choice).")
    dtype: str = Field("auto", description="float32, bfloat16, ... (auto: fp32 on CPU, bf16 on GPU).")
    device: str | None = Field(None, description="cpu, cuda, cuda:1 (default: cuda when available).")
    answer_lead: str = Field('{"{dimension}": {"label": "', description="Score mode: text the answer starts with before a label.")
    label_suffix: str = Field('"', description="Score mode: text closing a label, so a label that prefixes another is not favoured.")
    length_norm: bool = Field(False, description="Score mode: mean instead of summed token log-prob per label.")


def derived_seed(*parts: object) -> int:
    """A stable 63-bit seed from any values (Python's hash() is salted per process)."""
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def pick_label(probs: dict[str, float], sample: int, temperature: float, seed: int) -> str:
    """Sample 0 (or temperature 0): the most probable label. Later samples: a seeded tempered draw."""
    labels = list(probs)
    best = max(labels, key=probs.__getitem__)
    if sample == 0 or temperature <= 0:
        return best
    top = math.log(max(probs[best], 1e-12))  # relative to the best label: no underflow at low temperature
    weights = [math.exp((math.log(max(probs[label], 1e-12)) - top) / temperature) for label in labels]
    return random.Random(seed).choices(labels, weights=weights, k=1)[0]


def distribution_reply(
    label_probs: dict[str, dict[str, float]], notes: dict[str, str], sample: int, temperature: float, seed: int
) -> TeacherReply:
    """A reply for non-generative teachers: answer text in the schema plus the label distributions."""
    profile = {}
    for dim, probs in label_probs.items():
        label = pick_label(probs, sample, temperature, derived_seed(seed, dim))
        profile[dim] = {"label": label, "confidence": round(probs[label], 4), "rationale": notes[dim]}
    return TeacherReply(text=format_answer(profile), label_probs=label_probs)


# ---- score mode: the token tree after each user's data ---------------------------------------


def unique_prefix(ids: list[int], others: list[list[int]]) -> list[int]:
    """The shortest prefix of `ids` that no other label starts with (all of `ids` if none is)."""
    for n in range(1, len(ids) + 1):
        if not any(other[:n] == ids[:n] for other in others):
            return ids[:n]
    return ids


@dataclass
class ScoreTree:
    """Tokens appended after a user's data: a shared `tail`, a `lead` per dimension, then a token
    trie of the dimension's labels.

    A label is scored up to the token that sets it apart from the dimension's other labels (the
    rest is forced, as in constrained decoding); labels sharing first tokens share trie nodes, and a
    label's last token is only predicted, never fed. `parent[j]` is the token before j (-1: the last
    data token); `positions` are offsets from the first tail token; `targets` lists (source index,
    token id, pair index): the logits at `source` predict `token` of label `pairs[pair]`.
    """

    tokens: list[int]
    parent: list[int]
    positions: list[int]
    pairs: list[tuple[str, str]]
    label_tokens: list[list[int]]
    targets: list[tuple[int, int, int]]

    @classmethod
    def build(cls, tail: list[int], leads: dict[str, list[int]], labels: dict[str, dict[str, list[int]]]) -> "ScoreTree":
        if not tail:
            raise ValueError("the score tree needs at least one tail token to predict the first label token from")
        tree = cls([], [], [], [], [], [])

        def add(token: int, parent: int, position: int) -> int:
            tree.tokens.append(token)
            tree.parent.append(parent)
            tree.positions.append(position)
            return len(tree.tokens) - 1

        tail_end = -1
        for offset, token in enumerate(tail):
            tail_end = add(token, tail_end, offset)
        for dim, lead in leads.items():
            lead_end, lead_pos = tail_end, len(tail)
            for token in lead:
                lead_end, lead_pos = add(token, lead_end, lead_pos), lead_pos + 1
            nodes: dict[tuple[int, ...], int] = {}
            for label, ids in labels[dim].items():
                cut = unique_prefix(ids, [other for name, other in labels[dim].items() if name != label])
                pair = len(tree.pairs)
                tree.pairs.append((dim, label))
                tree.label_tokens.append(cut)
                source = lead_end
                for k, token in enumerate(cut):
                    tree.targets.append((source, token, pair))
                    if k + 1 < len(cut):  # context for the next token: feed it (shared with siblings)
                        key = tuple(cut[: k + 1])
                        if key not in nodes:
                            nodes[key] = add(token, source, lead_pos + k)
                        source = nodes[key]
        return tree

    def visibility(self):
        """(C, C) bool: token i may attend to token j (j is i or one of its ancestors)."""
        import torch

        size = len(self.tokens)
        visible = torch.zeros(size, size, dtype=torch.bool)
        for i, parent in enumerate(self.parent):
            if parent >= 0:
                visible[i] = visible[parent]
            visible[i, i] = True
        return visible


def tree_inputs(users: list[list[int]], tree: ScoreTree, prefix_len: int, pad_id: int):
    """input_ids, position_ids and the (B, 1, Q, prefix + Q) bool mask for a batch of users.

    Row i is [pads][user i's data][tree]: data is left-padded so the tree sits in the same columns
    for every row. Pads see only the shared prefix (a row that sees nothing would give NaNs).
    """
    import torch

    batch, longest, size = len(users), max(map(len, users)), len(tree.tokens)
    q_len = longest + size
    ids = torch.full((batch, q_len), pad_id, dtype=torch.long)
    positions = torch.full((batch, q_len), prefix_len, dtype=torch.long)
    mask = torch.zeros(batch, 1, q_len, prefix_len + q_len, dtype=torch.bool)
    mask[..., :prefix_len] = True
    causal = torch.tril(torch.ones(longest, longest, dtype=torch.bool))
    tree_visible, tree_pos = tree.visibility(), torch.tensor(tree.positions)
    for i, user in enumerate(users):
        start = longest - len(user)
        ids[i, start:longest] = torch.tensor(user, dtype=torch.long)
        ids[i, longest:] = torch.tensor(tree.tokens, dtype=torch.long)
        positions[i, start:longest] = prefix_len + torch.arange(len(user))
        positions[i, longest:] = prefix_len + len(user) + tree_pos
        data_cols = slice(prefix_len + start, prefix_len + longest)
        mask[i, 0, start:longest, data_cols] = causal[start:, start:]
        mask[i, 0, longest:, data_cols] = True
        mask[i, 0, longest:, prefix_len + longest:] = tree_visible
    return ids, positions, mask


@TEACHERS.register("transformers")
class TransformersTeacher(Teacher):
    default_mode = "generate"

    def __init__(self, config: TeacherConfig, taxonomy: Taxonomy):
        super().__init__(config, taxonomy)
        self.params = TransformersParams.model_validate({"mode": self.default_mode, **config.params})
        import torch

        from confprofile.models import load_causal_lm

        if self.params.threads:
            torch.set_num_threads(self.params.threads)
        self.model, self.tokenizer = load_causal_lm(self.model_spec(), dtype=self.params.dtype, device=self.params.device)
        self._prefix_cache: dict[str, tuple[int, list]] = {}  # prefix text -> (length, per-layer (keys, values))
        self._trees: dict[str, ScoreTree] = {}

    def model_spec(self) -> str:
        return self.config.model

    def identity(self) -> dict[str, Any]:
        return {**super().identity(), "resolved": self.params.model_dump(exclude={"threads", "device", "batch_size"}),
                "max_user_tokens": self.config.max_user_tokens}

    def answer(self, requests: list[TeacherRequest], on_reply: ReplyCallback) -> None:
        import torch

        with torch.inference_mode():
            if self.params.mode == "score":
                self._answer_score(requests, on_reply)
            else:
                self._answer_generate(requests, on_reply)

    def _encode(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def count_tokens(self, text: str) -> int:
        """Exact token counts, so `render_user` fills `max_user_tokens` with this model's tokens."""
        return len(self._encode(text))

    # ---- generate mode -----------------------------------------------------------------------

    def _answer_generate(self, requests: list[TeacherRequest], on_reply: ReplyCallback) -> None:
        prompts = [
            self.tokenizer.apply_chat_template(list(r.messages), add_generation_prompt=True, tokenize=False) for r in requests
        ]
        encoded = [self._encode(p) for p in prompts]
        order = sorted(range(len(requests)), key=lambda i: len(encoded[i]))
        for start in range(0, len(order), self.params.batch_size):
            batch = order[start : start + self.params.batch_size]
            try:
                texts = self._generate([encoded[i] for i in batch], [requests[i] for i in batch])
                replies = [TeacherReply(text=t) for t in texts]
            except Exception as exc:  # one bad batch (OOM, odd tokens) is recorded and retried next run
                replies = [TeacherReply(text=None, error=f"{type(exc).__name__}: {exc}")] * len(batch)
            for i, reply in zip(batch, replies):
                on_reply(requests[i], reply)

    def _generate(self, prompts: list[list[int]], requests: list[TeacherRequest]) -> list[str]:
        from transformers import GenerationConfig, LogitsProcessorList

        device = self.model.device
        batch = self.tokenizer.pad({"input_ids": prompts}, padding=True, return_tensors="pt")  # left padding
        eos = self.model.generation_config.eos_token_id or self.tokenizer.eos_token_id
        generation = GenerationConfig(
            max_new_tokens=self.config.max_new_tokens, do_sample=False, pad_token_id=self.tokenizer.pad_token_id, eos_token_id=eos
        )
        processors = LogitsProcessorList()
        if self.config.temperature > 0:
            seeds = [derived_seed(self.params.seed, r.user_id, r.sample) for r in requests]
            processors.append(SeededSampler(seeds, self.config.temperature, self.params.top_p))
        out = self.model.generate(
            input_ids=batch["input_ids"].to(device), attention_mask=batch["attention_mask"].to(device),
            generation_config=generation, logits_processor=processors,
        )
        new_tokens = out[:, batch["input_ids"].shape[1] :]
        return self.tokenizer.batch_decode(new_tokens, skip_special_tokens=True)

    # ---- score mode --------------------------------------------------------------------------

    def _split_prompt(self, request: TeacherRequest) -> tuple[str, str, str]:
        """(shared prefix text, this user's data text, text between the data and the answer)."""
        messages = [dict(m) for m in request.messages]
        sentinel = "\x00DATA\x00"
        data = escape_user_text(request.user_text)
        user = messages[-1]
        if data and data in user["content"]:
            user["content"] = user["content"].replace(data, sentinel, 1)
        else:  # a prompt without the rendered data inside: score against the whole user turn
            data, user["content"] = user["content"], sentinel
        text = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        prefix, _, tail = text.partition(sentinel)
        return prefix, data, tail or "\n"

    def _prefix(self, text: str):
        """KV cache of the shared prefix, computed once per prompt variant."""
        if text not in self._prefix_cache:
            import torch
            from transformers import DynamicCache

            ids = torch.tensor([self._encode(text) or [self.tokenizer.pad_token_id]], device=self.model.device)
            cache = DynamicCache(config=self.model.config)
            self.model(input_ids=ids, use_cache=True, logits_to_keep=1, **{self._cache_kwarg: cache})
            layers = [(layer.keys, layer.values) for layer in cache.layers]
            self._prefix_cache[text] = (ids.shape[1], layers)
        return self._prefix_cache[text]

    def _tree(self, tail: str) -> ScoreTree:
        if tail not in self._trees:
            leads = {d.name: self._encode(self.params.answer_lead.replace("{dimension}", d.name)) for d in self.taxonomy.dimensions}
            labels = {
                d.name: {name: self._encode(name + self.params.label_suffix) for name in d.label_names}
                for d in self.taxonomy.dimensions
            }
            self._trees[tail] = ScoreTree.build(self._encode(tail), leads, labels)
        return self._trees[tail]

    def _answer_score(self, requests: list[TeacherRequest], on_reply: ReplyCallback) -> None:
        # one scoring per distinct (prompt prefix, data, tail); each sample of it gets a reply
        groups: dict[tuple[str, str, str], list[TeacherRequest]] = {}
        for request in requests:
            groups.setdefault(self._split_prompt(request), []).append(request)
        by_prefix: dict[tuple[str, str], list[tuple[str, list[int]]]] = {}
        for prefix, data, tail in groups:
            ids = self._encode(data)[: self.config.max_user_tokens]
            by_prefix.setdefault((prefix, tail), []).append((data, ids))
        for (prefix, tail), users in by_prefix.items():
            users.sort(key=lambda u: len(u[1]))
            for start in range(0, len(users), self.params.batch_size):
                batch = users[start : start + self.params.batch_size]
                try:
                    scored = self.score_users(prefix, tail, [ids for _, ids in batch])
                    error = None
                except Exception as exc:  # recorded per request; the label stage retries on the next run
                    scored, error = [None] * len(batch), f"{type(exc).__name__}: {exc}"
                for (data, _), probs in zip(batch, scored):
                    for request in groups[(prefix, data, tail)]:
                        on_reply(request, self._score_reply(request, probs, error))

    def _score_reply(self, request: TeacherRequest, probs: dict | None, error: str | None) -> TeacherReply:
        if probs is None:
            return TeacherReply(text=None, error=error)
        notes = {dim: f"scored {len(p)} labels; top p={max(p.values()):.2f}" for dim, p in probs.items()}
        seed = derived_seed(self.params.seed, request.user_id, request.sample)
        return distribution_reply(probs, notes, request.sample, self.config.temperature, seed)

    @property
    def _cache_kwarg(self) -> str:
        """transformers renamed `past_key_values` to `cache`; use whichever this version takes."""
        import inspect

        return "cache" if "cache" in inspect.signature(self.model.forward).parameters else "past_key_values"

    def label_logprobs(self, prefix: str, tail: str, users: list[list[int]]):
        """(B, pairs) summed log-prob of each (dimension, label) branch, and the tree."""
        import torch

        with torch.inference_mode():
            return self._label_logprobs(prefix, tail, users)

    def _label_logprobs(self, prefix: str, tail: str, users: list[list[int]]):
        import torch
        from transformers import DynamicCache

        tree = self._tree(tail)
        prefix_len, layers = self._prefix(prefix)
        batch = len(users)
        ids, positions, mask = tree_inputs(users, tree, prefix_len, self.tokenizer.pad_token_id)
        device = self.model.device
        if self.model.config._attn_implementation != "sdpa":  # eager and others take an additive float mask
            mask = torch.zeros(mask.shape, dtype=self.model.dtype).masked_fill(~mask, torch.finfo(self.model.dtype).min)
        cache = DynamicCache(
            ddp_cache_data=[(k.expand(batch, -1, -1, -1), v.expand(batch, -1, -1, -1)) for k, v in layers],
            config=self.model.config,
        )
        longest = ids.shape[1] - len(tree.tokens)
        sources = sorted({src for src, _, _ in tree.targets})
        column = {src: i for i, src in enumerate(sources)}
        keep = torch.tensor([longest + s for s in sources], device=device)
        logits = self.model(
            input_ids=ids.to(device), position_ids=positions.to(device), attention_mask=mask.to(device),
            use_cache=True, logits_to_keep=keep, **{self._cache_kwarg: cache},
        ).logits.float()
        src_cols = torch.tensor([column[s] for s, _, _ in tree.targets], device=device)
        tokens = torch.tensor([t for _, t, _ in tree.targets], device=device)
        picked = logits[:, src_cols, :]  # (B, T, V)
        token_logp = picked.gather(-1, tokens.view(1, -1, 1).expand(batch, -1, 1)).squeeze(-1) - picked.logsumexp(-1)
        pair_index = torch.tensor([p for _, _, p in tree.targets], device=device)
        scores = torch.zeros(batch, len(tree.pairs), device=device).index_add_(1, pair_index, token_logp)
        return scores.cpu(), tree

    def score_users(self, prefix: str, tail: str, users: list[list[int]]) -> list[dict[str, dict[str, float]]]:
        """Per user: {dimension: {label: prob}} from one packed forward pass."""
        import torch

        scores, tree = self.label_logprobs(prefix, tail, users)
        if self.params.length_norm:
            scores = scores / torch.tensor([len(t) for t in tree.label_tokens], dtype=scores.dtype)
        results: list[dict[str, dict[str, float]]] = [{} for _ in users]
        for dim in self.taxonomy.dimension_names:
            cols = [i for i, (d, _) in enumerate(tree.pairs) if d == dim]
            probs = torch.softmax(scores[:, cols], dim=-1)
            for row, result in enumerate(results):
                result[dim] = {tree.pairs[c][1]: float(p) for c, p in zip(cols, probs[row])}
        return results


class SeededSampler:
    """A logits processor that samples each row with its own generator and forces that token.

    `generate` then runs greedily over the forced choice, so a row's sample depends only on its
    (user, sample) seed, not on which other requests share its batch.
    """

    def __init__(self, seeds: list[int], temperature: float, top_p: float):
        import torch

        self.generators = [torch.Generator().manual_seed(seed) for seed in seeds]
        self.temperature, self.top_p = temperature, top_p

    def __call__(self, input_ids, scores):
        import torch

        probs = torch.softmax(scores.float().cpu() / self.temperature, dim=-1)
        if self.top_p < 1.0:
            sorted_probs, order = probs.sort(dim=-1, descending=True)
            outside = sorted_probs.cumsum(-1) - sorted_probs > self.top_p  # keep the smallest set reaching top_p
            probs = probs.scatter(-1, order, sorted_probs.masked_fill(outside, 0.0))
        chosen = torch.stack([torch.multinomial(p, 1, generator=g) for p, g in zip(probs, self.generators)]).to(scores.device)
        forced = torch.full_like(scores, float("-inf"))
        return forced.scatter(-1, chosen, 0.0)
