"""Stage 2 for the encoder student: confidence-guided, group-relative policy gradient over an unlabeled pool.

The student's heads are a policy over labels. For every user of the pool (train users plus users no
teacher labelled) it draws G rollouts, each from a noisy view of the user (a share of the feature
values dropped) and a label sampled per dimension. The rollouts are voted into a quasi ground truth
(`rl.voting`, blended with the stage-1 pseudo-label where one exists), each rollout earns
`rl.rewards.dimension_score`, and GRPO's group-relative advantage (reward minus the group mean, over
the group's standard deviation), scaled by the vote's strength (confidence weighting) and by a
class-balance weight that holds the votes' label distribution in place (`balance_weights`), weights the log-probability of what it
said. A KL term (`beta`) holds the policy near its start. Difficulty filtering (`rl.filters`), the batch statistics and the collapse guard
(`rl.group`, `rl.guards`) are the same pure functions the LLM students' TRL path uses.

The policy starts from the student's heads fitted without its validation users (`validation_share`;
else a `calibration_share` drawn here), which stay out of the pool: after every epoch it is scored
on them by `validation_score` (the aggregator's estimate of its accuracy, no gold; a curve in the
summary, or the checkpoint choice with `select_checkpoint`), and the calibration is refitted on them.
With `align_label_shares`, every epoch starts, and the run ends, with each head's label biases
shifted so that its answers over the pool have the pseudo-labels' label shares (`student.label_shares`):
stage 2 decides which users get which label, the aggregator how many.
"""

from __future__ import annotations

import json
import math
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from confprofile.files import atomic_write_json
from confprofile.prompts import ParsedAnswer
from confprofile.rl.config import RLConfig
from confprofile.rl.filters import NO_SIGNAL, quantile_thresholds, select_users
from confprofile.rl.group import batch_stats
from confprofile.rl.guards import collapse_reason
from confprofile.rl.rewards import dimension_score
from confprofile.rl.voting import summarize_pseudo, vote_dimension
from confprofile.student.encoder import EncoderStudent, calibrate_against, predict_proba, to_torch
from confprofile.student.label_shares import answer_shares, pseudo_label_shares, share_distance, share_matching_offsets
from confprofile.student.targets import held_out_score, pseudo_posteriors


def label_drift(parsed: Sequence, target_share: dict[str, dict[str, float]]) -> float:
    """Mean over dimensions of the total-variation distance between the batch's labels and the SFT share.

    Label-free: a policy that drifts towards one label moves this distance long before it is stuck
    there (an absorbing state: unanimous groups have zero advantage, so nothing pulls it back).
    """
    distances = []
    for dim, share in target_share.items():
        labels = [rollout[dim].label for rollout in parsed]
        counts = Counter(labels)
        distances.append(share_distance([counts.get(label, 0) / len(labels) for label in share], list(share.values())))
    return float(np.mean(distances)) if distances else 0.0


def group_advantages(rewards: np.ndarray, min_spread: float = 1e-6) -> np.ndarray:
    """GRPO advantages of (groups, G) rewards: centred and scaled within each group; 0 for a flat group."""
    mean = rewards.mean(1, keepdims=True)
    std = rewards.std(1, keepdims=True)
    return np.where(std > min_spread, (rewards - mean) / np.maximum(std, min_spread), 0.0)


def score_groups(labels: list[str], greedy: np.ndarray, confidence: np.ndarray, sampled: np.ndarray, priors: Sequence, config: RLConfig):
    """Votes, rewards (groups, G), the groups' vote strengths and parsed rollouts of one dimension.

    Each rollout is one noisy view of the user: it votes for its most likely label (`greedy`) at its
    probability (`confidence`), and its action is the label `sampled` from the policy, which earns
    the reward. Voting on greedy answers keeps a flat policy's sampling noise out of the quasi ground
    truth. A group without a real quasi label earns 0 everywhere (no signal).
    """
    params = config.scoring().params
    rewards, strength = np.zeros(sampled.shape), np.zeros(sampled.shape[0])
    votes, parsed = [], []
    for b in range(sampled.shape[0]):
        answers = [ParsedAnswer(labels[j], float(p), "", "ok") for j, p in zip(greedy[b], confidence[b])]
        vote = vote_dimension(answers, priors[b], config.prior_weight)
        actions = [ParsedAnswer(labels[j], 0.0, "", "ok") for j in sampled[b]]
        if vote.is_label:
            rewards[b] = [dimension_score(a, vote, params) for a in actions]
            strength[b] = vote.strength
        votes.append(vote)
        parsed.append(actions)
    return votes, rewards, strength, parsed


def balance_weights(vote_labels: Sequence[str | None], target_share: dict[str, float]) -> np.ndarray:
    """Per group: the target share of its quasi label over its share among this batch's votes.

    Self-training is rich-get-richer: a small lean towards one label wins it more votes, which push
    it further. Weighting each vote by target / current share keeps the votes' label distribution at
    the SFT student's over the pool, whatever the drift. Groups without a quasi label weigh 0.
    """
    named = [label for label in vote_labels if label]
    current = {label: count / len(named) for label, count in Counter(named).items()} if named else {}
    return np.array([target_share.get(label, 0.0) / current[label] if label else 0.0 for label in vote_labels])


@dataclass
class Pool:
    """The users stage 2 trains on, their features, and what stage 1 said about them."""

    ids: list[str]
    x: object  # scipy CSR features
    priors: dict  # user -> dimension -> prior distribution (pseudo-labelled users only)
    posterior: dict | None  # dimension -> PseudoPosterior, in `ids` order
    kept: np.ndarray  # rows that pass the difficulty filter
    calibration_rows: np.ndarray  # pseudo-labelled rows held out to refit the calibration
    selection: object  # filters.UserSelection


def build_pool(student: EncoderStudent, ids: list[str], x, sft_probs: dict, config: RLConfig, pseudo,
               rng: np.random.Generator) -> Pool:
    """Priors, the held-out calibration rows and the difficulty filter of the pool (features `x`, SFT probabilities)."""
    posterior = pseudo_posteriors(pseudo, ids, student.taxonomy) if pseudo is not None else None
    mean_conf, priors = summarize_pseudo(pseudo) if pseudo is not None else ({}, {})
    labelled = np.flatnonzero(np.any([p.has_row for p in posterior.values()], axis=0)) if posterior else np.array([], int)
    held_by_sft = set(student.validation_users_)
    if held_by_sft:  # the users stage 2's starting heads never fitted: a fair yardstick for every epoch
        calibration_rows = np.array([i for i in labelled if ids[i] in held_by_sft], dtype=int)
    else:
        calibration_rows = rng.choice(labelled, int(len(labelled) * config.calibration_share), replace=False)
    train_rows = np.setdiff1d(np.arange(len(ids)), calibration_rows)
    # users no teacher labelled are judged by the SFT student's own calibrated confidence
    own = np.mean([student.confidence(dim, p.max(1)) for dim, p in sft_probs.items()], axis=0)
    confidence = {ids[i]: mean_conf.get(ids[i], float(own[i])) for i in train_rows}
    skip_above, skip_below = config.skip_above, config.skip_below
    if config.threshold_mode == "quantile":
        skip_above, skip_below = quantile_thresholds(confidence, skip_above, skip_below)
    selection = select_users([ids[i] for i in train_rows], confidence, skip_above, skip_below)
    row_of = {user_id: i for i, user_id in enumerate(ids)}
    kept = np.array(sorted(row_of[u] for u in selection.kept), dtype=int)
    return Pool(ids, x, priors, posterior, kept, calibration_rows, selection)


def validation_score(heads, pool: Pool) -> float | None:
    """`held_out_score` of the policy on the pool's held-out pseudo-labelled users (None without them)."""
    rows = pool.calibration_rows
    if pool.posterior is None or not len(rows):
        return None
    return held_out_score(predict_proba(heads, pool.x[rows]), pool.posterior, rows)


def policy_step(student: EncoderStudent, pool: Pool, rows: np.ndarray, config: RLConfig, target_share: dict,
                reference: dict | None, rng: np.random.Generator):
    """One update over the groups of `rows`: (loss, votes per user, parsed rollouts, groups without signal)."""
    import torch

    heads, G = student.heads_, config.num_generations
    log_probs = heads.log_probs(to_torch(noisy_views(pool.x[rows], G, config.input_dropout, rng)))
    loss, no_signal = torch.zeros(()), 0
    votes_by_user, parsed = [{} for _ in rows], [{} for _ in range(len(rows) * G)]
    for dim, lp in log_probs.items():
        lp = torch.log_softmax(lp / config.temperature, dim=1)
        probs = lp.exp().detach()
        sampled = torch.multinomial(probs, 1).squeeze(1)
        chosen = lp.gather(1, sampled[:, None]).squeeze(1)
        top, greedy = probs.max(1)
        shape = (len(rows), G)
        votes, rewards, strength, answers = score_groups(
            student.taxonomy.dimension(dim).label_names, greedy.numpy().reshape(shape), top.numpy().reshape(shape),
            sampled.numpy().reshape(shape), [pool.priors.get(pool.ids[i], {}).get(dim) for i in rows], config)
        # GRPO's normalisation cancels any per-group scale of the reward, so the confidence weight
        # (vote strength) and the class balance scale the advantage instead
        advantages = group_advantages(rewards) * strength[:, None]
        if config.class_balance:
            advantages *= balance_weights([v.label for v in votes], target_share[dim])[:, None]
        no_signal += int((np.abs(advantages).sum(1) == 0).sum())
        loss = loss - (torch.from_numpy(advantages.reshape(-1)).float() * chosen).mean()
        if reference is not None:  # KL(SFT || policy) on the clean view
            clean = heads.log_probs(to_torch(pool.x[rows]))[dim]
            ref = reference[dim][torch.from_numpy(rows)]
            loss = loss + config.beta * (ref * (ref.clamp_min(1e-9).log() - clean)).sum(1).mean()
        for b, vote in enumerate(votes):
            votes_by_user[b][dim] = vote
            for g in range(G):
                parsed[b * G + g][dim] = answers[b][g]
    return loss, votes_by_user, parsed, no_signal


def train_encoder_stage2(student: EncoderStudent, users: Sequence, out: str | Path, config: RLConfig, pseudo=None) -> dict:
    """Update `student` in place over `users`, save it to `out` (with rl_log.jsonl, rl_summary.json); return the summary."""
    import torch

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    rng = np.random.default_rng(config.seed)
    torch.manual_seed(config.seed)
    ids, x = [str(u.user_id) for u in users], student.features(users)
    sft = student.heads_.state()  # with select_checkpoint: kept when no epoch beats the start on the validation users
    student.heads_ = type(student.heads_).from_state(student.holdout_heads_.state())  # the start that never saw them
    sft_probs = predict_proba(student.heads_, x)
    pool = build_pool(student, ids, x, sft_probs, config, pseudo, rng)
    target_share = {dim: dict(zip(student.taxonomy.dimension(dim).label_names, p.mean(0))) for dim, p in sft_probs.items()}
    reference = {dim: torch.from_numpy(p).float() for dim, p in sft_probs.items()} if config.beta > 0 else None
    answer_target = {} if not config.align_label_shares else (
        pseudo_label_shares(pseudo, student.taxonomy) if pseudo is not None else {dim: answer_shares(p) for dim, p in sft_probs.items()})
    optimiser = torch.optim.SGD(student.heads_.parameters(), lr=config.learning_rate, momentum=0.9)

    batch = max(1, config.users_per_step)
    per_epoch = max(1, math.ceil(len(pool.kept) / batch))
    total_steps = 0 if not len(pool.kept) else config.max_steps if config.max_steps > 0 else math.ceil(config.num_train_epochs * per_epoch)
    log_path = out / "rl_log.jsonl"
    log_path.write_text("", encoding="utf-8")
    agreements, entropies, stop_reason, no_signal, step, rollouts = [], [], None, 0, 0, 0
    healthy = student.heads_.state()  # restored when a guard stops the run
    # (score, epoch, weights); epoch 0 is the SFT student, scored by its heads fitted without the validation users
    checkpoints = [(validation_score(student.heads_, pool), 0, sft)]
    while step < total_steps and not stop_reason:
        if step % per_epoch == 0:
            if step and answer_target:  # each epoch starts from the aggregator's label distribution
                align_label_shares(student.heads_, pool.x, answer_target)
            order = rng.permutation(pool.kept)
            healthy = student.heads_.state()
            if step:
                checkpoints.append((validation_score(student.heads_, pool), step // per_epoch, healthy))
        rows = order[(step % per_epoch) * batch:][:batch]
        loss, votes, parsed, dropped = policy_step(student, pool, rows, config, target_share, reference, rng)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        step, no_signal, rollouts = step + 1, no_signal + dropped, rollouts + len(rows) * config.num_generations
        stats = batch_stats(parsed, votes, student.taxonomy)
        agreements.append(stats["agreement"])
        entropies.append(stats["entropy"])
        drift = label_drift(parsed, target_share)
        stop_reason = collapse_reason(agreements, entropies, config.collapse_agreement, config.collapse_entropy_drop)
        if stop_reason is None and drift > config.max_label_drift:
            stop_reason = f"label drift {drift:.3f} > {config.max_label_drift} from the SFT student's label distribution"
        if stop_reason:  # back to the weights at the start of this epoch
            student.heads_ = type(student.heads_).from_state(healthy)
        if step % max(1, config.logging_steps) == 0 or stop_reason or step == total_steps:
            row = {"step": step, "epoch": round(step / per_epoch, 3), "loss": float(loss.detach()),
                   **{f"rl/{k}": v for k, v in stats.items()}, "rl/label_drift": drift, "rollouts_generated": rollouts,
                   f"groups/{NO_SIGNAL}": no_signal, **({"stop_reason": stop_reason} if stop_reason else {})}
            with open(log_path, "a", encoding="utf-8") as handle:
                handle.write(json.dumps(row) + "\n")

    if not stop_reason and step:
        checkpoints.append((validation_score(student.heads_, pool), math.ceil(step / per_epoch), student.heads_.state()))
    if config.select_checkpoint and checkpoints[0][0] is not None:  # the best on the held-out pseudo-labels (ties: the earliest)
        _, chosen_epoch, chosen = max(checkpoints, key=lambda c: (c[0], -c[1]))
        student.heads_ = type(student.heads_).from_state(chosen)
    else:  # the trained policy stands; the scores stay in the summary as a label-free curve
        chosen_epoch = checkpoints[-1][1]
    label_shares = align_label_shares(student.heads_, pool.x, answer_target) if chosen_epoch > 0 else {}
    if pool.posterior is not None and len(pool.calibration_rows) and chosen_epoch > 0:  # else SFT's calibration stays
        rows = pool.calibration_rows
        probs = predict_proba(student.heads_, pool.x[rows])
        student.calibration_ = {dim: list(calibrate_against(probs[dim], p.posterior[rows], p.has_row[rows]))
                                for dim, p in pool.posterior.items()}
    student.save(out)
    summary = {"model": "encoder", "users": len(pool.ids), "selection": pool.selection.counts(),
               "calibration_users": int(len(pool.calibration_rows)), "groups": {NO_SIGNAL: no_signal},
               "rollouts_generated": rollouts,
               "steps": step, "wall_seconds": round(time.perf_counter() - started, 2), "stop_reason": stop_reason,
               "validation_scores": [round(c[0], 4) if c[0] is not None else None for c in checkpoints],
               "chosen_epoch": chosen_epoch, "label_shares": label_shares,
               "uses_gold_dev": False, "config": config.to_dict()}
    atomic_write_json(out / "rl_summary.json", summary)
    return summary


def align_label_shares(heads, x, target: dict[str, np.ndarray]) -> dict[str, dict[str, float]]:
    """Shift each head's label biases so that its answers over `x` have the `target` shares; per
    dimension, the total-variation distance to the target before and after."""
    probs = predict_proba(heads, x)
    report = {}
    for dim, share in target.items():
        offsets = share_matching_offsets(probs[dim], share)
        heads.shift(dim, offsets)
        report[dim] = {"before": round(share_distance(answer_shares(probs[dim]), share), 4),
                       "after": round(share_distance(answer_shares(probs[dim], offsets), share), 4)}
    return report


def noisy_views(x, copies: int, dropout: float, rng: np.random.Generator):
    """`copies` rows per user (back to back), each with a share `dropout` of its feature values zeroed and the rest rescaled."""
    import scipy.sparse as sp

    repeated = sp.csr_matrix(x[np.repeat(np.arange(x.shape[0]), copies)])
    if dropout > 0:
        keep = rng.random(repeated.nnz) >= dropout
        repeated.data = np.where(keep, repeated.data / (1 - dropout), 0.0).astype(np.float32)
    return repeated
