"""The optional gold dev monitor of RL: EVALUATION ONLY, flagged `uses_gold_dev` in every log row.

Gold never reaches a reward: it only measures, on a small held-out dev slice, (a) the F1 of the
policy's greedy answers and (b) how often the group vote (the quasi ground truth RL trains towards)
matches gold. The monitor stops training when dev F1 keeps falling (`guards.dev_stop_reason`).
It lives outside `rl/` (which never reads gold) and is loaded only when the user passes `--dev-gold`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from confprofile.rl.config import RLConfig
from confprofile.rl.voting import vote_group
from confprofile.taxonomy import Taxonomy


def quasi_gold_agreement(votes: Sequence[dict], user_ids: Sequence[str], gold: dict[str, dict[str, str]]) -> float | None:
    """Share of (user, dimension) pairs with a real quasi label and a gold label where the two match."""
    hits = total = 0
    for user_id, user_votes in zip(user_ids, votes):
        for dim, vote in user_votes.items():
            if vote.is_label and dim in gold.get(user_id, {}):
                total += 1
                hits += vote.label == gold[user_id][dim]
    return hits / total if total else None


def make_dev_eval(dev_users: Sequence, gold: dict[str, dict[str, str]], taxonomy: Taxonomy, config: RLConfig):
    """A `(model, tokenizer) -> {"dev_f1", "dev_quasi_gold_agreement"}` callable for `RLMonitor`."""

    def dev_eval(model, tokenizer) -> dict[str, float]:
        import pandas as pd

        from confprofile.evaluate import evaluate
        from confprofile.predict import generate_texts
        from confprofile.student.base import PREDICTION_COLUMNS
        from confprofile.prompts import parse_answer, student_messages

        messages = [student_messages(u, taxonomy, config.max_user_tokens) for u in dev_users]
        ids = [str(u.user_id) for u in dev_users]
        was_training = model.training
        model.eval()
        try:
            greedy = generate_texts(model, tokenizer, messages, max_new_tokens=config.max_completion_length, progress=False)
            sampled = generate_texts(model, tokenizer, messages, samples=config.num_generations, temperature=config.temperature,
                                     max_new_tokens=config.max_completion_length, progress=False, seed=config.seed)
        finally:
            model.train(was_training)
        rows = []
        for user_id, text in zip(ids, greedy):
            for dim, answer in parse_answer(text, taxonomy).items():
                rows.append({"user_id": user_id, "dimension": dim, "label": answer.label or "unknown",
                             "confidence": answer.confidence, "rationale": answer.rationale, "model": "rl-dev"})
        metrics = evaluate(gold, pd.DataFrame(rows, columns=PREDICTION_COLUMNS), taxonomy)
        g = config.num_generations
        votes = [vote_group([parse_answer(t, taxonomy) for t in sampled[i * g:(i + 1) * g]], taxonomy.dimension_names)
                 for i in range(len(ids))]
        agreement = quasi_gold_agreement(votes, ids, gold)
        out = {"dev_f1": float(metrics["headline_f1"] or 0.0)}
        if agreement is not None:
            out["dev_quasi_gold_agreement"] = agreement
        return out

    return dev_eval


def load_dev(users_path: str | Path, gold_path: str | Path, taxonomy: Taxonomy, config: RLConfig):
    """Dev users + gold from files -> the monitor's callable (the CLI's `--dev-users/--dev-gold`)."""
    from confprofile.data import load_gold, load_users

    gold = load_gold(gold_path, taxonomy)
    users = [u for u in load_users(users_path) if str(u.user_id) in gold]
    return make_dev_eval(users, gold, taxonomy, config)
