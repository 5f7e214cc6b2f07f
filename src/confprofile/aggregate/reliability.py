"""Label-free teacher reliability: who agrees with whom, which teachers are one voice, how often each is right.

Every estimate here comes from the answers alone:
- `label_matrix`: each teacher's label per user (its samples' vote), the table agreement is counted on.
- `agreement`: observed agreement of each pair of teachers beside the agreement their label shares would
  give by chance; chance-corrected agreement (Cohen's kappa) is the evidence that a pair knows something.
- `TeacherGroups` (an answers step): teachers declared to be views of one model, and teachers that give
  the same label on nearly every user, form one group. A group votes as one teacher (each member's answers
  weigh 1/size) and no member witnesses for another (leave-one-group-out calibration). Two copies of one
  weak teacher then no longer outvote a strong one.
- `teacher_skills`: each teacher's estimated accuracy, the posterior mass the aggregate puts on its
  labels; and `knows_nothing`: no two independent groups agree beyond chance, so no label is evidence.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from confprofile.aggregate.base import Encoded, decide, has_votes
from confprofile.aggregate.calibration import CALIBRATORS, ConfidenceCalibration, LabelPriorCorrection, prior_shift, share_vector
from confprofile.aggregate.voting import WeightedVote, vote_matrix

SAMPLE_USERS = 30_000  # agreement is counted on the first this many users: a kappa from them is exact to ~.01


def label_matrix(part, n_users: int, n_teachers: int, first: int | None = None) -> np.ndarray:
    """(users, n_teachers) label code of each teacher's vote over its samples of the user; -1 without one.
    `first`: the first users only (user ids are sorted, so a cheap, deterministic sample of a large table)."""
    scanned, row = part.voting, part.user
    if first is not None and first < n_users:
        scanned, n_users = scanned & (part.user < first), first
    out = np.full((n_users, n_teachers), -1, dtype=np.int64)
    if part.whole_votes:  # one sample per teacher and user: its label is its vote
        out[row[scanned], part.teacher[scanned]] = part.label[scanned]
        return out
    for t in range(n_teachers):
        mine = scanned & (part.teacher == t)
        if not mine.any():
            continue
        votes = vote_matrix(row[mine], part.label[mine], part.weight[mine], n_users, part.k)
        answered = votes.sum(axis=1) > 0
        out[answered, t] = decide(votes[answered])
    return out


def agreement(labels: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(observed agreement, chance agreement from each teacher's label shares, users both answered), each
    (T, T) with a NaN diagonal, over the users both teachers of a pair labelled: every pair's joint label
    counts from one bincount."""
    t = labels.shape[1]
    first, second = np.triu_indices(t, 1)
    a, b = labels[:, first], labels[:, second]  # (users, pairs)
    both_answered = (a >= 0) & (b >= 0)
    cell = np.arange(len(first)) * k * k + a * k + b
    joint = np.bincount(cell[both_answered], minlength=len(first) * k * k).reshape(len(first), k, k)
    count = joint.sum(axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        agree = np.trace(joint, axis1=1, axis2=2) / count
        by_chance = np.einsum("pa,pa->p", joint.sum(axis=2), joint.sum(axis=1)) / count.astype(float) ** 2
    observed, chance, both = np.full((t, t), np.nan), np.full((t, t), np.nan), np.zeros((t, t), dtype=np.int64)
    for matrix, values in ((observed, agree), (chance, by_chance), (both, count)):
        matrix[first, second] = matrix[second, first] = values
    return observed, chance, both


def kappa(observed: np.ndarray, chance: np.ndarray) -> np.ndarray:
    """Cohen's kappa: agreement beyond chance, 0 for teachers that share nothing but their label shares."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(chance < 1, (observed - chance) / (1 - chance), 0.0)


@CALIBRATORS.register("teacher_groups")
class TeacherGroups:
    """Answers step: teachers that are one voice form a group that votes once.

    `groups`: lists of teacher names known to be one voice; `same_model`: teachers whose answers name
    the same `model` (two poolings of one encoder) are grouped too. Their agreement says nothing about
    their accuracy, and no test on 2-3 teachers can tell it apart from skill (measured: the two MiniLM
    views agree beyond chance by .30-.46 on real users), so the panel says so. `max_agreement`: two
    teachers that give the same label on at
    least this share of the users they both label (over `min_users` or more) are near-copies and are
    grouped too, whatever their accuracy: merging two copies of a good teacher loses nothing.
    After `fit_transform`: `groups_` (lists of teacher names, grouped ones only) and `agreement_`
    ({dimension: observed agreement matrix}).
    """

    stage = "answers"
    used_labels = False

    def __init__(self, groups: list[list[str]] | None = None, same_model: bool = True, max_agreement: float = 0.97,
                 min_users: int = 20):
        self.groups, self.same_model = groups or [], same_model
        self.max_agreement, self.min_users = max_agreement, min_users

    def fit_transform(self, enc: Encoded) -> Encoded:
        n_teachers = len(enc.teachers)
        linked = np.eye(n_teachers, dtype=bool)  # teacher x teacher: one voice; the groups are its connected components
        index = {name: i for i, name in enumerate(enc.teachers)}
        by_model: dict[str, list[str]] = {}
        for teacher, model in zip(enc.teachers, enc.teacher_model or []):
            if model is not None and self.same_model:
                by_model.setdefault(model, []).append(teacher)
        for group in [*self.groups, *by_model.values()]:
            members = [index[name] for name in group if name in index]
            linked[np.ix_(members, members)] = True
        self.agreement_ = {}
        for name, part in enc.dims.items():
            observed, _, both = agreement(label_matrix(part, enc.n_users, n_teachers, SAMPLE_USERS), part.k)
            self.agreement_[name] = observed
            linked |= (observed >= self.max_agreement) & (both >= self.min_users)
        group = connected_components(sp.csr_matrix(linked), directed=False)[1]
        size = np.bincount(group)
        self.groups_ = [[enc.teachers[i] for i in np.flatnonzero(group == g)] for g in range(len(size)) if size[g] > 1]
        share = 1.0 / size[group]  # each member's share of its group's one vote
        dims = {}
        for name, part in enc.dims.items():
            weight = part.weight * share[part.teacher]
            dims[name] = part if (size == 1).all() else replace(part, sample_weight=weight)
        return enc.with_dims(dims, teacher_group=group)


def teacher_skills(labels: np.ndarray, teachers: list[str], posterior: np.ndarray, kappas: np.ndarray) -> list[dict]:
    """Per teacher: its estimated accuracy (mean posterior probability of the labels it gave, over the
    users with a posterior), how many users it labelled, and its `independent_kappas` entry (None
    without a teacher of another group); `labels` from `label_matrix`."""
    voted = ~np.isnan(posterior[:, 0]) if posterior.shape[1] else np.zeros(len(posterior), bool)
    out = []
    for t, teacher in enumerate(teachers):
        rows = np.flatnonzero((labels[:, t] >= 0) & voted)
        if len(rows):
            out.append({"teacher": teacher, "accuracy": float(posterior[rows, labels[rows, t]].mean()), "users": int(len(rows)),
                        "independent_kappa": float(kappas[t]) if np.isfinite(kappas[t]) else None})
    return out


def independent_kappas(labels: np.ndarray, k: int, group: np.ndarray) -> np.ndarray:
    """Per teacher, its largest chance-corrected agreement (kappa) with a teacher of another group, NaN
    without one: near 0, nothing independent confirms its labels beyond its label shares."""
    observed, chance, both = agreement(labels, k)
    independent = (group[:, None] != group[None, :]) & (both > 0)
    pairwise = np.where(independent, kappa(observed, chance), -np.inf)
    best = pairwise.max(axis=1, initial=-np.inf)
    return np.where(np.isfinite(best), best, np.nan)


def independent_skill(labels: np.ndarray, k: int, group: np.ndarray) -> float:
    """The largest chance-corrected agreement between two teachers of different groups (0 with one group),
    over the users of `labels` (a `label_matrix`; its first `SAMPLE_USERS` rows are plenty): where even
    that is near 0, no teacher's labels carry evidence that another independent one confirms."""
    return largest_kappa(independent_kappas(labels, k, group))


def largest_kappa(kappas: np.ndarray) -> float:
    """The largest of `independent_kappas`, 0 when there is none or none is positive."""
    return float(max(kappas[np.isfinite(kappas)].max(initial=0.0), 0.0))


@CALIBRATORS.register("group_confidence")
class GroupConfidence:
    """Confidence step: a pseudo-label's confidence is its probability under a model that hears each group
    of teachers once and calibrates each teacher against the other groups only.

    The vote that picks labels may count correlated teachers twice (on the packaged panel that picks
    better labels: the two MiniLM views outvote SmolLM2 where they agree); its naive-Bayes posterior then
    counts their shared errors as independent evidence (measured: confidence .76 for labels right 43% of
    the time). This step leaves the labels alone and re-estimates their confidence from the answers:
    label-prior correction, `TeacherGroups` (one vote per group), leave-one-group-out calibration
    (`ConfidenceCalibration`), then the log-odds vote's posterior at the chosen label.
    `min_skill`: where no two teachers of different groups agree beyond chance by this much (kappa),
    the dimension is flagged `knows_nothing`: no teacher's labels are confirmed by an independent one.
    `when_blind`: "flag" keeps the calibrated confidences (calibration against a blind peer already
    pulls them towards chance), "prior" sets them to the chosen label's share among the pseudo-labels
    (the accuracy of a guess), "abstain" answers `unknown`. "prior" under-states a good teacher whose
    peers are blind (synthetic seed 0, SmolLM2 blind: ECE .135 against .078 for "flag"), hence "flag".
    `label_shares`: {dimension: {label: share}} known from outside the answers (`known_shares`): that
    dimension's posterior is shifted from its mean over the users to them, so confidences are stated
    under the known prior, as the labels `class_balance` picks with the same shares are.
    After `fit`: `groups_`, `posteriors_`, `knows_nothing_` and `independent_skill_` per dimension, and
    `teacher_skills_` ({dimension: [{teacher, accuracy, users, independent_kappa}]}).
    """

    stage = "confidence"
    used_labels = False

    def __init__(self, groups: list[list[str]] | None = None, same_model: bool = True, max_agreement: float = 0.97,
                 method: str = "isotonic", min_skill: float = 0.05, when_blind: str = "flag",
                 label_shares: dict[str, dict[str, float]] | None = None):
        if when_blind not in ("flag", "prior", "abstain"):
            raise ValueError(f"when_blind must be 'flag', 'prior' or 'abstain', not {when_blind!r}")
        self.grouping = TeacherGroups(groups, same_model=same_model, max_agreement=max_agreement)
        self.method, self.min_skill, self.when_blind = method, min_skill, when_blind
        self.label_shares = label_shares or {}

    def fit(self, enc: Encoded) -> "GroupConfidence":
        grouped = self.grouping.fit_transform(LabelPriorCorrection().fit_transform(enc))
        grouped = ConfidenceCalibration(self.method).fit_transform(grouped)
        self.groups_ = self.grouping.groups_
        self.posteriors_ = WeightedVote(weights="log_odds").fit(grouped).posteriors_
        for name, shares in self.label_shares.items():
            post = self.posteriors_.get(name, np.zeros((0, 0)))
            voted = has_votes(post)
            if voted.any():
                target = share_vector(shares, grouped.dims[name].labels)
                post[voted] = prior_shift(post[voted], target, post[voted].mean(axis=0))
        self.teacher_skills_, self.independent_skill_, self.knows_nothing_ = {}, {}, {}
        for name, part in grouped.dims.items():
            labels = label_matrix(part, grouped.n_users, len(grouped.teachers))  # once per dimension, for both
            kappas = independent_kappas(labels[:SAMPLE_USERS], part.k, grouped.groups())
            self.teacher_skills_[name] = teacher_skills(labels, grouped.teachers, self.posteriors_[name], kappas)
            self.independent_skill_[name] = largest_kappa(kappas)
            self.knows_nothing_[name] = self.independent_skill_[name] < self.min_skill
        return self

    def confidence(self, name: str, users: np.ndarray, code: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(label codes, confidences) for `users` (rows of the encoded table) labelled `code` (-1: none)."""
        post = self.posteriors_[name]
        labelled = code >= 0
        conf = np.zeros(len(code))
        conf[labelled] = np.nan_to_num(post[users[labelled], code[labelled]])
        if self.knows_nothing_.get(name) and self.when_blind != "flag":
            share = np.bincount(code[labelled], minlength=post.shape[1]) / max(labelled.sum(), 1)
            conf[labelled] = share[code[labelled]]
            if self.when_blind == "abstain":
                code = np.where(labelled, -1, code)
        return code, conf
