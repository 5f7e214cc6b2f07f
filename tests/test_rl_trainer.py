"""The GRPO adapter: whole-group voting across process slices, filtered users, weights that move."""

from __future__ import annotations

import json
import random
from types import SimpleNamespace

import pandas as pd
import pytest

from confprofile.data import UserRecord
from confprofile.prompts import build_messages, format_answer
from confprofile.rl.config import RLConfig
from confprofile.rl.group import GroupScoring, score_batch
from confprofile.taxonomy import Taxonomy

TAXONOMY = {"name": "mini", "dimensions": [
    {"name": "gender", "labels": [{"name": "male"}, {"name": "female"}]},
    {"name": "age", "labels": [{"name": "young"}, {"name": "old"}]},
]}


def answer(gender, age, conf=0.8):
    return format_answer({"gender": {"label": gender, "confidence": conf}, "age": {"label": age, "confidence": conf}})


@pytest.fixture
def one_thread():
    """Tiny models run far faster on one torch thread on a shared 2-core machine (no spin-waiting)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def mini_taxonomy(tmp_path_factory):
    path = tmp_path_factory.mktemp("tax") / "mini.yaml"
    tax = Taxonomy.model_validate(TAXONOMY)
    tax.to_yaml(path)
    return path, tax


@pytest.fixture(scope="session")
def users():
    rng = random.Random(0)
    words = ["football", "makeup", "school", "pension", "gaming", "garden", "office", "knitting"]
    return [UserRecord(user_id=f"u{i}", data={"bio": " ".join(rng.sample(words, 3))}) for i in range(12)]


@pytest.fixture(scope="session")
def tiny_student(tmp_path_factory, mini_taxonomy, users):
    """A tiny Qwen3 taught (a few plain torch steps) to answer in the JSON format with random labels,
    so that sampled rollouts parse but disagree: the groups carry learning signal."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from confprofile.render import render_user
    from confprofile.models import build_tiny_student

    _, tax = mini_taxonomy
    rng = random.Random(1)
    convs = []
    for u in users * 4:
        reply = answer(rng.choice(["male", "female"]), rng.choice(["young", "old"]), rng.choice([0.6, 0.9]))
        convs.append(build_messages(render_user(u, 64), tax, "student") + [{"role": "assistant", "content": reply}])
    out = tmp_path_factory.mktemp("student") / "tiny"
    texts = [m["content"] for c in convs for m in c]
    build_tiny_student(texts, out, hidden=64, layers=2, vocab_size=512, seed=0)
    tok = AutoTokenizer.from_pretrained(out)
    model = AutoModelForCausalLM.from_pretrained(out)
    encoded = [tok.apply_chat_template(c, tokenize=True, return_dict=False) for c in convs]
    encoded = [e["input_ids"] if isinstance(e, dict) else e for e in encoded]
    torch.manual_seed(0)
    opt = torch.optim.AdamW(model.parameters(), lr=5e-3)
    model.train()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    for step in range(100):
        batch = [encoded[(step * 8 + k) % len(encoded)] for k in range(8)]
        width = max(map(len, batch))
        ids = torch.tensor([b + [tok.pad_token_id] * (width - len(b)) for b in batch])
        labels = torch.tensor([b + [-100] * (width - len(b)) for b in batch])
        loss = model(input_ids=ids, attention_mask=(labels != -100).long(), labels=labels).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
    torch.set_num_threads(threads)
    model.save_pretrained(out)
    return out


# ---- group integrity across process slices ----------------------------------------------------

class FakeTwoProcessTrainer:
    """Stands in for a trainer on process `rank` of two: `_gather_objects` returns both processes' lists."""

    def __init__(self, rank, slices, taxonomy):
        from collections import Counter

        self.rank, self.slices = rank, slices
        self.model = SimpleNamespace(training=True)
        self.num_generations = 4
        self.taxonomy, self.scoring, self.priors = taxonomy, GroupScoring(), {}
        self.accelerator = SimpleNamespace(device="cpu", process_index=rank)
        self._metrics = {"train": __import__("collections").defaultdict(list)}
        self.rollouts_generated, self.group_counts = 0, Counter()
        self.calls = 0

    def _gather_objects(self, values):
        key = self.calls % 2  # completions first, then user ids
        self.calls += 1
        return [v for rank in (0, 1) for v in self.slices[rank][key]]


def test_group_vote_sees_the_whole_group_when_split_across_processes(mini_taxonomy):
    from confprofile.rl.trainer import GroupVoteGRPOTrainer

    import torch

    _, tax = mini_taxonomy
    # user a's 4 rollouts straddle the two processes; rank 0's half says male/young, the group says female/old
    texts = [answer("male", "young", 0.9), answer("male", "young", 0.8), answer("female", "old", 0.9), answer("female", "old", 0.9),
             answer("male", "old"), answer("male", "old"), answer("female", "old"), answer("male", "young")]
    ids = ["a"] * 4 + ["b"] * 4
    completions = [[{"role": "assistant", "content": t}] for t in texts]
    slices = {0: (texts[:2], ids[:2]), 1: (texts[2:], ids[2:])}
    whole = score_batch(texts, ids, 4, tax, GroupScoring())
    assert whole.votes[0]["gender"].label == "female" and whole.votes[0]["age"].label == "old"
    for rank, (lo, hi) in ((0, (0, 2)), (1, (2, 8))):
        fake = FakeTwoProcessTrainer(rank, slices, tax)
        inputs = [{"user_id": u} for u in ids[lo:hi]]
        rewards = GroupVoteGRPOTrainer._calculate_rewards(fake, inputs, [None] * (hi - lo), completions[lo:hi], None)
        # the gathered matrix TRL expects, identical on both ranks and equal to the whole-batch scores
        assert torch.allclose(rewards, torch.tensor(whole.rewards), equal_nan=True)
        assert fake.rollouts_generated == 8 and fake.group_counts["groups"] == 2
    # a vote on rank 0's local slice alone would pick another quasi label for user a
    half = score_batch(texts[:2], ids[:2], 2, tax, GroupScoring())
    assert (half.votes[0]["gender"].label, half.votes[0]["age"].label) == ("male", "young")


def test_group_term_refuses_per_process_calls():
    from confprofile.rl.trainer import GroupTerm

    with pytest.raises(RuntimeError, match="whole groups"):
        GroupTerm("agreement")(prompts=[], completions=[])


# ---- the trainer on a tiny model ----------------------------------------------------------------

def test_trainer_runs_skips_filtered_users_and_changes_weights(tmp_path, one_thread, tiny_student, mini_taxonomy, users, monkeypatch):
    import torch
    from safetensors.torch import load_file

    import confprofile.rl.trainer as trainer_module
    from confprofile.rl.command import train_rl

    tax_path, _ = mini_taxonomy
    seen: list[str] = []
    real_score = trainer_module.score_batch

    def spy(texts, user_ids, *args, **kwargs):
        seen.extend(user_ids)
        return real_score(texts, user_ids, *args, **kwargs)

    monkeypatch.setattr(trainer_module, "score_batch", spy)
    easy, hopeless = {"u0", "u1"}, {"u2"}
    pseudo = pd.DataFrame([
        {"user_id": u.user_id, "dimension": d, "label": "male" if d == "gender" else "old",
         "confidence": 0.99 if u.user_id in easy else 0.1 if u.user_id in hopeless else 0.6}
        for u in users for d in ("gender", "age")
    ])
    config = RLConfig(taxonomy=str(tax_path), num_generations=4, users_per_step=2, max_steps=3, learning_rate=5e-3,
                      max_completion_length=48, max_user_tokens=64, save_steps=2, skip_above=0.9, skip_below=0.3,
                      prior_weight=0.3)
    out = tmp_path / "rl"
    summary = train_rl(tiny_student, users, out, config, pseudo=pseudo)

    assert summary["selection"] == {"kept": 9, "too_easy": 2, "hopeless": 1, "no_prior": 0}
    assert seen and not (set(seen) & (easy | hopeless))  # filtered users are never generated for
    assert summary["rollouts_generated"] == len(seen) == 3 * 2 * 4
    assert summary["groups"]["groups"] == 6 and summary["groups"].get("kept", 0) > 0
    before, after = load_file(tiny_student / "model.safetensors"), load_file(out / "model.safetensors")
    assert any(not torch.equal(before[k], after[k]) for k in before)
    rows = [json.loads(line) for line in (out / "rl_log.jsonl").read_text().splitlines()]
    curve = [r for r in rows if "rl/agreement" in r]
    assert len(curve) == 3 and all(0 <= r["rl/agreement"] <= 1 and r["uses_gold_dev"] is False for r in curve)
    assert {"reward", "rl/entropy", "rl/majority_ratio", "completions/mean_length"} <= set(curve[0])
    assert (out / "checkpoints" / "checkpoint-2").is_dir() and (out / "tokenizer.json").exists()
    assert json.loads((out / "rl_summary.json").read_text())["steps"] == 3


def test_resume_continues_from_the_last_checkpoint(tmp_path, one_thread, tiny_student, mini_taxonomy, users):
    from confprofile.rl.command import train_rl

    tax_path, _ = mini_taxonomy
    options = dict(taxonomy=str(tax_path), num_generations=2, users_per_step=2, learning_rate=5e-3,
                   max_completion_length=40, max_user_tokens=64, save_steps=1)
    out = tmp_path / "rl"
    first = train_rl(tiny_student, users, out, RLConfig(max_steps=1, **options))
    assert first["steps"] == 1 and (out / "checkpoints" / "checkpoint-1").is_dir()
    second = train_rl(tiny_student, users, out, RLConfig(max_steps=2, **options), resume=True)
    assert second["steps"] == 2
    assert second["rollouts_generated"] == 2 * 2 * 2  # the first run's rollouts are carried over, not repeated
    rows = [json.loads(line) for line in (out / "rl_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if "rl/agreement" in r] == [1, 2]  # one log, appended across the resume


def test_rl_cli_rejects_bad_input(tmp_path, tiny_student):
    from typer.testing import CliRunner

    from confprofile.cli import app

    users = tmp_path / "users.jsonl"
    users.write_text('{"user_id": "a", "data": {"bio": "hi"}}\n')
    bad = tmp_path / "pseudo.parquet"
    pd.DataFrame({"user_id": ["a"], "label": ["male"]}).to_parquet(bad)
    runner = CliRunner()
    result = runner.invoke(app, ["rl", "--model", str(tiny_student), "--users", str(users), "--out", str(tmp_path / "o"), "--pseudo", str(bad)])
    assert isinstance(result.exception, __import__("confprofile.errors").errors.InputError)
    assert "missing column" in str(result.exception)
    result = runner.invoke(app, ["rl", "--model", str(tiny_student), "--users", str(users), "--out", str(tmp_path / "o"), "--dev-users", str(users)])
    assert "give both or neither" in str(result.exception)
