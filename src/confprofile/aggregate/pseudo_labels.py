"""Stage 1b entry points: answers table -> pseudo-labels, and each teacher alone.

Label-free: nothing here reads gold. A labelled dev set enters only when a caller passes one to the
`confidence` calibrator, and then every pseudo-label records `used_labels=True`.
"""

from __future__ import annotations

import json
from dataclasses import replace
import numpy as np
import pandas as pd

from confprofile.aggregate.base import AGGREGATORS, MISSING, Encoded, decide, encode, has_votes
from confprofile.aggregate.calibration import CALIBRATORS
from confprofile.aggregate.dawid_skene import DawidSkene  # noqa: F401  (registers dawid_skene)
from confprofile.aggregate.reliability import GroupConfidence, TeacherGroups  # noqa: F401  (registers both)
from confprofile.aggregate.voting import vote_matrix
from confprofile.errors import InputError
from confprofile.taxonomy import UNKNOWN, Taxonomy

DEFAULT_CALIBRATION = ("label_prior", "confidence", "class_balance", "group_confidence")
COLUMNS = ["user_id", "dimension", "label", "confidence", "votes", "kept", "rationale", "method", "used_labels"]


def _votes_json(labels: list[str], votes: np.ndarray) -> np.ndarray:
    """One JSON object {label: weight} per row, labels with zero weight left out (built column-wise)."""
    out = np.full(len(votes), "", dtype=object)
    text = np.round(votes, 4).astype(str).astype(object)
    for j, label in enumerate(labels):
        has = votes[:, j] > 0
        sep = np.where(out[has] == "", "", ", ").astype(object)
        out[has] = out[has] + sep + f"{json.dumps(label)}: " + text[has, j]
    return "{" + out + "}"


def _rationales(enc: Encoded, part, code: np.ndarray, users: np.ndarray, limit: int, chars: int) -> np.ndarray:
    """Rationales of the answers that agree with each user's label, most confident first, joined and truncated."""
    out = np.full(len(users), "", dtype=object)
    if enc.rationale is None or limit <= 0:
        return out
    winner = np.full(enc.n_users, -9)
    winner[users] = code
    agree = part.voting & (part.label == winner[part.user])
    text = pd.Series(enc.rationale[part.row[agree]], dtype=object)
    frame = pd.DataFrame({"user": part.user[agree], "conf": part.conf[agree], "text": text.fillna("").astype(str).str.strip()})
    frame = frame[frame["text"] != ""].sort_values(["user", "conf", "text"], ascending=[True, False, True], kind="stable")
    frame = frame.drop_duplicates(["user", "text"])
    rank = frame.groupby("user", sort=False).cumcount().to_numpy()
    pos = np.searchsorted(users, frame["user"].to_numpy())
    texts = frame["text"].to_numpy(dtype=object)
    for r in range(limit):  # the r-th best rationale of every user at once
        m = rank == r
        out[pos[m]] = out[pos[m]] + ("" if r == 0 else " | ") + texts[m]
    return pd.Series(out, dtype=object).str.slice(0, chars).to_numpy(dtype=object)


def run_aggregation(
    answers: pd.DataFrame | Encoded,
    *,
    method: str = "weighted",
    calibrate: list[str] | tuple[str, ...] = DEFAULT_CALIBRATION,
    keep_threshold: float | dict[str, float] = 0.0,
    taxonomy: Taxonomy | None = None,
    method_options: dict | None = None,
    calibrator_options: dict[str, dict] | None = None,
    max_rationales: int = 3,
    rationale_chars: int = 600,
    label_shares: dict[str, dict[str, float]] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(pseudo_labels, per-dimension summary: label counts before/after balancing, mean confidence,
    kept share, teacher agreement with the pseudo-label) from a long answers table.

    method: an `AGGREGATORS` name (majority, weighted, dawid_skene); calibrate: `CALIBRATORS` names
    (default: label_prior, confidence, class_balance, group_confidence; [] for none); keep_threshold: minimum
    confidence for `kept`, one float or {dimension: float} (default 0, keep all: the confidences estimate
    P(correct), so one cut would keep most binary rows and few 11-label ones); taxonomy: fixes label order, other labels
    count as missing; method_options / calibrator_options: keyword arguments for the aggregator /
    each calibrator (e.g. {"confidence": {"dev_labels": df}}); label_shares: {dimension: {label: share}}
    known from outside the answers (`known_shares.load_label_shares`), the prior of `class_balance` and
    `group_confidence` instead of the one estimated from the answers (needs `class_balance`).
    """
    options = {name: dict(o) for name, o in (calibrator_options or {}).items()}
    if label_shares:
        if "class_balance" not in calibrate:
            raise InputError(None, None, "label_shares", "known label shares need the class_balance calibration step")
        options.setdefault("class_balance", {})["targets"] = label_shares
        if "group_confidence" in calibrate:
            options.setdefault("group_confidence", {})["label_shares"] = label_shares
    calibrators = {name: CALIBRATORS.get(name)(**options.get(name, {})) for name in calibrate}
    enc = encode(answers, taxonomy) if isinstance(answers, pd.DataFrame) else answers
    confidence_step = next((step for step in calibrators.values() if step.stage == "confidence"), None)
    if confidence_step is not None:  # fitted on the answers as given, before the other steps change them
        confidence_step.fit(enc)
    for step in calibrators.values():  # answer steps in the configured order, before the aggregator
        if step.stage == "answers":
            enc = step.fit_transform(enc)
    model = AGGREGATORS.get(method)(taxonomy, **(method_options or {})).fit(enc)
    used_labels = any(c.used_labels for c in calibrators.values())
    tag = "+".join([method, *calibrators])
    balance = next((step for step in calibrators.values() if step.stage == "posterior"), None)
    frames, summary = [], []
    for name, part in enc.dims.items():
        users = np.flatnonzero(enc.present[name])
        post = model.posteriors_[name][users]
        voted = has_votes(post)
        before = model.decisions_[name][users]
        code, conf = before.copy(), np.zeros(len(users))
        if balance is not None and voted.any():
            code[voted], conf[voted] = balance.fit_transform(name, part.labels, post[voted], model.priors_[name])
        else:
            conf[voted] = post[voted][np.arange(voted.sum()), code[voted]]
        code[~voted] = -1
        if confidence_step is not None:
            code, conf = confidence_step.confidence(name, users, code)
            voted = code >= 0
        labels = np.array(part.labels + [UNKNOWN], dtype=object)
        threshold = keep_threshold.get(name, 0.0) if isinstance(keep_threshold, dict) else keep_threshold
        kept = voted & (conf >= threshold)
        frames.append(pd.DataFrame({
            "user_id": enc.users[users], "dimension": name, "label": labels[code], "confidence": conf,
            "votes": _votes_json(part.labels, model.votes_[name][users]), "kept": kept,
            "rationale": _rationales(enc, part, code, users, max_rationales, rationale_chars),
            "method": tag, "used_labels": used_labels,
        }))
        winner = np.full(enc.n_users, -9)
        winner[users] = code
        agreement = (part.label[part.voting] == winner[part.user[part.voting]]).mean() if part.voting.any() else np.nan
        summary.append({
            "dimension": name,
            "before": dict(pd.Series(labels[np.where(voted, before, -1)]).value_counts()),
            "after": dict(pd.Series(labels[code]).value_counts()),
            "mean_confidence": float(conf[voted].mean()) if voted.any() else 0.0,
            "kept": float(kept.mean()) if len(kept) else 0.0,
            "teacher_agreement": float(agreement),
            "answered": float((part.label != MISSING).mean()) if len(part.label) else 0.0,
            "fallback": model.fallbacks_.get(name),
            "prior_source": None if balance is None else ("known" if name in (label_shares or {}) else "estimated"),
            **(reliability_summary(confidence_step, name) if confidence_step is not None else {}),
        })
    out = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=COLUMNS)
    return out[COLUMNS], pd.DataFrame(summary)


def reliability_summary(step, name: str) -> dict:
    """What the confidence step learnt of the teachers on one dimension, for aggregate_summary.json."""
    return {"teacher_skills": step.teacher_skills_.get(name, []), "teacher_groups": step.groups_,
            "independent_skill": step.independent_skill_.get(name, 0.0), "knows_nothing": bool(step.knows_nothing_.get(name))}


def aggregate(answers: pd.DataFrame | Encoded, **options) -> pd.DataFrame:
    """Pseudo-labels (pseudo_labels.parquet columns) from a long answers table: `run_aggregation`
    without its summary; `options` are its keyword arguments."""
    return run_aggregation(answers, **options)[0]


def teacher_predictions(answers: pd.DataFrame | Encoded, calibrate: tuple[str, ...] = (), taxonomy: Taxonomy | None = None) -> dict[str, pd.DataFrame]:
    """Each teacher alone (predictions.parquet columns): its samples' majority label, ties to summed confidence;
    confidence = its mean confidence in that label over its labelled samples (0 for disagreeing ones)."""
    enc = encode(answers, taxonomy) if isinstance(answers, pd.DataFrame) else answers
    for name in calibrate:
        enc = CALIBRATORS.get(name)().fit_transform(enc)
    out = {}
    for t, teacher in enumerate(enc.teachers):
        frames = []
        for name, part in enc.dims.items():
            mine = part.teacher == t
            users = np.flatnonzero(np.bincount(part.user[mine], minlength=enc.n_users) > 0)
            if not len(users):
                continue
            label = np.where(mine, part.label, -1)
            ones = np.ones(len(label))
            count = vote_matrix(part.user, label, ones, enc.n_users, part.k)[users]
            mass = vote_matrix(part.user, label, part.conf, enc.n_users, part.k)[users]
            answered = count.sum(axis=1)
            code = decide(count * (answered.max() + 1) + mass) if part.k else np.zeros(len(users), dtype=np.int64)
            conf = mass[np.arange(len(users)), code] / np.maximum(answered, 1) if part.k else np.zeros(len(users))
            code, conf = np.where(answered > 0, code, -1), np.where(answered > 0, conf, 0.0)
            part_t = replace(part, label=label)
            frames.append(pd.DataFrame({
                "user_id": enc.users[users], "dimension": name,
                "label": np.array(part.labels + [UNKNOWN], dtype=object)[code], "confidence": conf,
                "rationale": _rationales(enc, part_t, code, users, 1, 600), "model": teacher,
            }))
        if frames:
            out[teacher] = pd.concat(frames, ignore_index=True)
    return out
