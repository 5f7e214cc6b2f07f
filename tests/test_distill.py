"""Distillation and prediction: SFT records, weighted SFT on a tiny student, LoRA, resume, robust predict.

Every model here is a tiny Qwen3 (64 hidden, 1 layer) built from config on a 2-dimension taxonomy,
so each training run takes about a second.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest

from confprofile.data import UserRecord
from confprofile.distill import DistillConfig, build_sft_records, load_sft, train_student
from confprofile.errors import InputError
from confprofile.prompts import parse_answer
from confprofile.taxonomy import Dimension, Label, Taxonomy

TAXONOMY = Taxonomy(
    name="mini",
    dimensions=[
        Dimension(name="gender", labels=[Label(name="male"), Label(name="female")]),
        Dimension(name="pet", labels=[Label(name="cat"), Label(name="dog")]),
    ],
)
USERS = [
    UserRecord(user_id=f"u{i}", data={"bio": f"{'she/her' if i % 2 else 'he/him'}, loves my {'cat' if i % 3 else 'dog'}"})
    for i in range(8)
]


def _pseudo_labels(kept_pet: bool = True) -> pd.DataFrame:
    rows = []
    for i, user in enumerate(USERS):
        rows.append(dict(user_id=user.user_id, dimension="gender", label="female" if i % 2 else "male",
                         confidence=0.9, kept=True, rationale="pronouns in bio"))
        rows.append(dict(user_id=user.user_id, dimension="pet", label="cat" if i % 3 else "dog",
                         confidence=0.5, kept=kept_pet or i % 2 == 0, rationale="mentions a pet"))
    return pd.DataFrame(rows)


@pytest.fixture(scope="session")
def records():
    return build_sft_records(USERS, _pseudo_labels(), TAXONOMY, max_user_tokens=32)


@pytest.fixture(scope="session")
def tiny_base(tmp_path_factory, records):
    from confprofile.models import build_tiny_student

    texts = ["\n".join(m["content"] for m in r["messages"]) for r in records]
    return build_tiny_student(texts, tmp_path_factory.mktemp("tiny") / "base", hidden=64, layers=1, vocab_size=400)


def _config(base, **overrides) -> DistillConfig:
    settings = dict(student=str(base), epochs=1, lr=5e-3, batch_size=4, save_steps=1000, logging_steps=1, resume=True, lora_r=0)  # full fine-tune unless a test asks for LoRA
    return DistillConfig(**{**settings, **overrides})


def _state_dict(path):
    from safetensors.torch import load_file

    return load_file(str(path / "model.safetensors"))


class _Recorder:
    """TrainerCallback that records logged losses and the steps it saw."""

    def __new__(cls, stop_after_save_at: int | None = None):
        from transformers import TrainerCallback

        class Recorder(TrainerCallback):
            def __init__(self):
                self.losses, self.steps = [], []

            def on_log(self, args, state, control, logs=None, **kwargs):
                if logs and "loss" in logs:
                    self.losses.append(float(logs["loss"]))

            def on_step_end(self, args, state, control, **kwargs):
                self.steps.append(state.global_step)

            def on_save(self, args, state, control, **kwargs):
                if stop_after_save_at is not None and state.global_step == stop_after_save_at:
                    raise KeyboardInterrupt  # a kill right after a checkpoint landed

        return Recorder()


# ---- records ---------------------------------------------------------------------------------------


def test_records_hold_student_prompt_target_and_weight(records):
    assert len(records) == len(USERS)
    record = records[1]
    assert [m["role"] for m in record["messages"]] == ["system", "user", "assistant"]
    assert "she/her" in record["messages"][1]["content"]
    parsed = parse_answer(record["messages"][2]["content"], TAXONOMY)
    assert (parsed["gender"].label, parsed["gender"].confidence) == ("female", 0.9)
    assert parsed["pet"].label == "cat"
    assert record["messages"][2]["content"].startswith("Rationale: gender: pronouns in bio")
    assert record["weight"] == pytest.approx((0.9 + 0.5) / 2)  # mean_confidence over kept dimensions


def test_not_kept_dimensions_are_masked_or_dropped():
    masked = build_sft_records(USERS, _pseudo_labels(kept_pet=False), TAXONOMY, max_user_tokens=32)
    odd = next(r for r in masked if r["user_id"] == "u1")
    pet = parse_answer(odd["messages"][2]["content"], TAXONOMY)["pet"]
    assert (pet.label, pet.confidence) == ("unknown", 0.0)
    assert odd["weight"] == pytest.approx(0.9)  # only the kept dimension weighs
    dropped = build_sft_records(USERS, _pseudo_labels(kept_pet=False), TAXONOMY, not_kept="drop", max_user_tokens=32)
    assert sorted(r["user_id"] for r in dropped) == ["u0", "u2", "u4", "u6"]
    kept_all = build_sft_records(USERS, _pseudo_labels(kept_pet=False), TAXONOMY, not_kept="keep", max_user_tokens=32)
    assert parse_answer(kept_all[1]["messages"][2]["content"], TAXONOMY)["pet"].label == "cat"
    assert kept_all[1]["weight"] == pytest.approx(0.7)
    bare = build_sft_records(USERS, _pseudo_labels(), TAXONOMY, rationale=False, max_user_tokens=32)
    assert bare[0]["messages"][2]["content"].startswith("{")
    uniform = build_sft_records(USERS, _pseudo_labels(), TAXONOMY, weight_fn="min_confidence", max_user_tokens=32)
    assert {r["weight"] for r in uniform} == {0.5}


def test_load_sft_names_the_bad_line(tmp_path, records):
    path = tmp_path / "sft.jsonl"
    path.write_text(json.dumps(records[0]) + "\n" + json.dumps({**records[0], "weight": -1}) + "\n")
    with pytest.raises(InputError, match=r"sft.jsonl:2: field 'weight'"):
        load_sft(path)


# ---- training --------------------------------------------------------------------------------------


def test_tiny_student_loss_falls(tmp_path, tiny_base, records):
    recorder = _Recorder()
    train_student(records * 2, tmp_path / "student", _config(tiny_base, epochs=2, lr=1e-2), callbacks=[recorder])
    assert len(recorder.losses) == 8
    assert sum(recorder.losses[-2:]) / 2 < 0.8 * sum(recorder.losses[:2]) / 2
    note = json.loads((tmp_path / "student" / "confprofile_student.json").read_text())
    assert note["steps"] == 8 and not note["adapter"]
    again = _Recorder()  # a rerun on the same records and settings finds the finished student
    train_student(records * 2, tmp_path / "student", _config(tiny_base, epochs=2, lr=1e-2), callbacks=[again])
    assert again.steps == []


def test_weight_zero_example_leaves_parameters_unchanged(tmp_path, tiny_base, records):
    zero = [{**records[0], "weight": 0.0}]
    config = _config(tiny_base, batch_size=1, max_steps=1, normalize_weights=False, lr=1e-2, warmup=0.0)
    train_student(zero, tmp_path / "zero", config)
    train_student([{**records[0], "weight": 1.0}], tmp_path / "one", config)
    before, after_zero, after_one = _state_dict(tiny_base), _state_dict(tmp_path / "zero"), _state_dict(tmp_path / "one")
    assert all((before[k] == after_zero[k]).all() for k in before)
    assert any((before[k] != after_one[k]).any() for k in before)


def test_lora_adapter_save_and_reload_give_the_same_outputs(tmp_path, tiny_base, records):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from confprofile.models import load_student

    out = train_student(records, tmp_path / "lora", _config(tiny_base, lora_r=4, merge_lora=False, lr=5e-2, max_steps=3))
    assert (out / "adapter_config.json").exists() and not (out / "model.safetensors").exists()
    merged, tokenizer = load_student(out)  # reload path of `predict`: the adapter merged into its base
    unmerged = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_base), out).eval()
    base = AutoModelForCausalLM.from_pretrained(tiny_base).eval()
    ids = tokenizer("she/her, loves my cat", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        logits = merged(ids).logits, unmerged(ids).logits, base(ids).logits
    assert torch.allclose(logits[0], logits[1], atol=1e-5)
    assert not torch.allclose(logits[0], logits[2], atol=1e-4)  # the adapter learnt something


def test_resume_continues_from_the_saved_step(tmp_path, tiny_base, records):
    config = _config(tiny_base, save_steps=2, max_steps=4)
    straight = train_student(records * 2, tmp_path / "straight", config)

    killed = _Recorder(stop_after_save_at=2)
    with pytest.raises(KeyboardInterrupt):
        train_student(records * 2, tmp_path / "resumed", config, callbacks=[killed])
    assert (tmp_path / "resumed" / "checkpoints" / "checkpoint-2").exists()
    resumed = _Recorder()
    train_student(records * 2, tmp_path / "resumed", config, callbacks=[resumed])
    assert resumed.steps == [3, 4]
    a, b = _state_dict(straight), _state_dict(tmp_path / "resumed")
    assert all(torch_allclose(a[k], b[k]) for k in a)


def torch_allclose(x, y) -> bool:
    import torch

    return torch.allclose(x, y, atol=1e-6)


# ---- prediction ------------------------------------------------------------------------------------


def test_predict_survives_garbage_generations(monkeypatch):
    from confprofile import predict as predict_module

    good = '{"gender": {"label": "Female", "confidence": "80%"}, "pet": {"label": "cat", "confidence": 0.6}}'
    junk = ["", "{{{{", "null", "```json\n{\"gender\": 5}```", "\x00\ufffd<|im_end|>", good, "I think dog", "[1, 2"]
    monkeypatch.setattr(predict_module, "load_student", lambda model_dir: (None, None))
    monkeypatch.setattr(predict_module, "generate_texts", lambda model, tok, messages, **kw: junk[: len(messages)])
    frame = predict_module.predict("some/student", USERS, TAXONOMY)
    assert list(frame.columns) == ["user_id", "dimension", "label", "confidence", "rationale", "model"]
    assert len(frame) == 2 * len(USERS)
    by = frame.set_index(["user_id", "dimension"])
    assert (by.loc[("u5", "gender"), "label"], by.loc[("u5", "gender"), "confidence"]) == ("female", 0.8)
    assert by.loc[("u5", "pet"), "label"] == "cat"
    others = frame[frame.user_id != "u5"]
    assert set(others.label) == {"unknown"} and (others.confidence == 0).all()


def test_predict_with_an_untrained_student_end_to_end(tiny_base):
    from confprofile.predict import predict

    frame = predict(tiny_base, USERS, TAXONOMY, batch_size=3, max_new_tokens=6, progress=False)
    assert len(frame) == 2 * len(USERS) and frame.user_id.nunique() == len(USERS)
    assert set(frame.label) <= {"male", "female", "cat", "dog", "unknown"}
    sampled = predict(tiny_base, USERS[:2], TAXONOMY, samples=3, max_new_tokens=6, progress=False)
    assert len(sampled) == 4


def test_self_consistency_weighs_votes_by_confidence():
    from confprofile.predict import self_consistency
    from confprofile.prompts import ParsedAnswer

    votes = [ParsedAnswer("cat", 0.9, "purrs", "ok"), ParsedAnswer("dog", 0.4, "", "ok"),
             ParsedAnswer("dog", 0.3, "", "ok"), ParsedAnswer(None, 0.0, "", "invalid")]
    assert self_consistency(votes) == ("cat", pytest.approx(0.9 / 4), "purrs")
    assert self_consistency([ParsedAnswer("unknown", 0.5, "", "abstain")])[:2] == ("unknown", 0.0)
    assert self_consistency([]) == ("unknown", 0.0, "")
