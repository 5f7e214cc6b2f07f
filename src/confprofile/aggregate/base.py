"""Encoding of the long answer table, and the estimator base class every aggregator shares.

The answer table (user x teacher x sample x dimension rows) is encoded to integer codes once:
users, teachers and, per dimension, labels. Each dimension then becomes a `DimAnswers` of flat
numpy arrays, so that voting and EM are bincounts and sparse products, never Python loops.

Label codes: 0..K-1 are the dimension's labels, `ABSTAIN` (-1) is `unknown`, `MISSING` (-2) is a
null/invalid/error answer. Abstentions and missing answers never vote; they are kept so that
calibration and summaries can see them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from confprofile.errors import InputError
from confprofile.registry import Registry
from confprofile.taxonomy import UNKNOWN, Taxonomy

ABSTAIN = -1
MISSING = -2
EPS = 1e-6  # floor on a vote's weight: a unanimous vote wins even at confidence 0
REQUIRED = ("user_id", "teacher", "dimension", "label", "confidence")


@dataclass
class DimAnswers:
    """One dimension's answers as aligned arrays (one entry per answer row)."""

    labels: list[str]  # canonical labels; code k -> labels[k]
    user: np.ndarray  # int32 index into Encoded.users
    teacher: np.ndarray  # int32 index into Encoded.teachers
    label: np.ndarray  # int16 code, ABSTAIN or MISSING
    conf: np.ndarray  # float64 in [0, 1]
    row: np.ndarray  # int64 row of the original table (rationales)
    probs: np.ndarray | None = None  # (n, K) label distribution; NaN rows where a teacher gave none

    @property
    def k(self) -> int:
        return len(self.labels)

    @property
    def voting(self) -> np.ndarray:
        return self.label >= 0

    def sample_weight(self, n_users: int, n_teachers: int) -> np.ndarray:
        """1 / (non-missing samples of this teacher on this user): a teacher's k samples share one vote."""
        pair = self.user.astype(np.int64) * n_teachers + self.teacher
        answered = self.label != MISSING
        if n_users * n_teachers <= 50_000_000:  # dense count table: one O(n) bincount
            counts = np.bincount(pair[answered], minlength=n_users * n_teachers)[pair]
        else:
            _, inverse, per_pair = np.unique(pair, return_inverse=True, return_counts=True)
            counts = np.bincount(inverse[answered], minlength=len(per_pair))[inverse]
        return np.where(answered, 1.0 / np.maximum(counts, 1), 0.0)


@dataclass
class Encoded:
    """The whole answer table, encoded once."""

    users: np.ndarray  # user ids (strings), sorted
    teachers: list[str]
    dims: dict[str, DimAnswers]
    rationale: np.ndarray | None = None  # original rationale column (object), indexed by DimAnswers.row
    present: dict[str, np.ndarray] = field(default_factory=dict)  # users with any row in a dimension

    @property
    def n_users(self) -> int:
        return len(self.users)

    def with_dims(self, dims: dict[str, DimAnswers]) -> "Encoded":
        return replace(self, dims=dims)


def _codes(column: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Integer codes and sorted unique values; categorical columns reuse their codes."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        cats = column.cat.categories
        order = np.argsort(cats.astype(str).to_numpy(), kind="stable")
        remap = np.empty(len(cats), dtype=np.int64)
        remap[order] = np.arange(len(cats))
        codes = column.cat.codes.to_numpy()
        return np.where(codes >= 0, remap[codes], -1), cats.astype(str).to_numpy()[order]
    codes, uniques = pd.factorize(column, sort=True)
    return codes, np.asarray(uniques, dtype=object).astype(str)


def _parse_probs(raw: pd.Series, labels: list[str]) -> np.ndarray | None:
    """(n, K) matrix from JSON `{label: prob}` strings; NaN rows where absent or unparseable."""
    if raw.isna().all():
        return None
    index = {name: k for k, name in enumerate(labels)}
    out = np.full((len(raw), len(labels)), np.nan)
    for i, text in enumerate(raw.to_numpy()):
        if not isinstance(text, str):
            continue
        try:
            dist = json.loads(text)
        except ValueError:
            continue
        if not isinstance(dist, dict):
            continue
        row = np.zeros(len(labels))
        for name, p in dist.items():
            if name in index and isinstance(p, int | float) and np.isfinite(p) and p > 0:
                row[index[name]] = p
        if row.sum() > 0:
            out[i] = row / row.sum()
    return out if np.isfinite(out).any() else None


def encode(answers: pd.DataFrame, taxonomy: Taxonomy | None = None) -> Encoded:
    """Encode an answers table. With a taxonomy, its label order is used and other labels count as missing."""
    missing = [c for c in REQUIRED if c not in answers.columns]
    if missing:
        raise InputError(None, None, missing[0], f"answers table lacks column(s) {missing}")
    for column in ("user_id", "teacher", "dimension"):
        if answers[column].isna().any():
            line = int(np.flatnonzero(answers[column].isna().to_numpy())[0]) + 1
            raise InputError(None, line, column, "must not be empty")
    user_code, users = _codes(answers["user_id"])
    teacher_code, teachers = _codes(answers["teacher"])
    dim_code, observed_dims = _codes(answers["dimension"])
    label_code, label_names = _codes(answers["label"])
    conf = np.clip(np.nan_to_num(answers["confidence"].to_numpy(dtype=np.float64)), 0.0, 1.0)
    dim_names = list(observed_dims)
    if taxonomy is not None:
        unknown_dims = sorted(set(dim_names) - set(taxonomy.dimension_names))
        if unknown_dims:
            raise InputError(None, None, "dimension", f"dimension(s) {unknown_dims} are not in taxonomy {taxonomy.name!r}")
        dim_names = [d for d in taxonomy.dimension_names if d in set(observed_dims)]
        dim_code = pd.Index(dim_names).get_indexer(pd.Index(observed_dims))[dim_code]

    order = np.argsort(dim_code, kind="stable")
    bounds = np.searchsorted(dim_code[order], np.arange(len(dim_names) + 1))
    has_probs = "label_probs" in answers.columns and answers["label_probs"].notna().any()
    dims, present = {}, {}
    for d, name in enumerate(dim_names):
        rows = order[bounds[d] : bounds[d + 1]]
        seen = np.unique(label_code[rows][label_code[rows] >= 0])
        observed = [label_names[c] for c in seen if label_names[c] != UNKNOWN]
        if taxonomy is not None:
            labels = taxonomy.dimension(name).label_names
        else:
            extra = set()
            if has_probs:  # labels offered only in distributions still belong to the label space
                for text in answers["label_probs"].to_numpy()[rows]:
                    if isinstance(text, str):
                        try:
                            extra.update(k for k in json.loads(text) if k != UNKNOWN)
                        except (ValueError, TypeError, AttributeError):
                            pass
            labels = sorted(set(observed) | extra)
        lookup = np.full(len(label_names) + 1, MISSING, dtype=np.int16)  # last slot: null label
        label_index = {name_: k for k, name_ in enumerate(labels)}
        for c, text in enumerate(label_names):
            lookup[c] = ABSTAIN if text == UNKNOWN else label_index.get(text, MISSING)
        codes = lookup[np.where(label_code[rows] >= 0, label_code[rows], len(label_names))]
        probs = _parse_probs(answers["label_probs"].iloc[rows], labels) if has_probs and labels else None
        dims[name] = DimAnswers(
            labels=labels,
            user=user_code[rows].astype(np.int32),
            teacher=teacher_code[rows].astype(np.int32),
            label=codes,
            conf=np.where(codes == MISSING, 0.0, conf[rows]),
            row=rows.astype(np.int64),
            probs=probs,
        )
        present[name] = np.bincount(dims[name].user, minlength=len(users)) > 0
    rationale = answers["rationale"].to_numpy(dtype=object) if "rationale" in answers.columns else None
    return Encoded(users=users, teachers=list(teachers), dims=dims, rationale=rationale, present=present)


def as_encoded(answers: pd.DataFrame | Encoded, taxonomy: Taxonomy | None = None) -> Encoded:
    return answers if isinstance(answers, Encoded) else encode(answers, taxonomy)


def has_votes(posterior: np.ndarray) -> np.ndarray:
    """Rows of a posterior matrix that rest on at least one vote (the others are NaN)."""
    return ~np.isnan(posterior[:, 0]) if posterior.shape[1] else np.zeros(len(posterior), bool)


def decide(posterior: np.ndarray) -> np.ndarray:
    """Argmax with float noise rounded away, so row order never flips a tie (ties go to the first label)."""
    if posterior.shape[1] == 0:
        return np.zeros(len(posterior), dtype=np.int64)
    return np.argmax(np.round(posterior, 9), axis=1)


class Aggregator:
    """crowd-kit-like estimator over the answer table.

    After `fit`: `posteriors_[dim]` is an (n_users, K) matrix (NaN rows for users without a vote),
    `decisions_[dim]` the label code per user (the posterior's argmax unless the method decides
    otherwise), `votes_[dim]` the raw vote mass per label, `priors_[dim]` the class prior the
    posterior assumes.
    """

    name = "base"

    def __init__(self, taxonomy: Taxonomy | None = None):
        self.taxonomy = taxonomy

    def _fit_dim(self, name: str, part: DimAnswers, enc: Encoded) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Return (posterior, votes, prior) for one dimension."""
        raise NotImplementedError

    def fit(self, answers: pd.DataFrame | Encoded) -> "Aggregator":
        enc = as_encoded(answers, self.taxonomy)
        self.encoded_ = enc
        self.posteriors_, self.votes_, self.priors_, self.decisions_ = {}, {}, {}, {}
        for name, part in enc.dims.items():
            if part.k == 0:  # every answer abstained or was missing: nothing to vote on
                empty = np.zeros((enc.n_users, 0))
                self.posteriors_[name], self.votes_[name], self.priors_[name] = empty, empty, np.zeros(0)
                self.decisions_[name] = np.zeros(enc.n_users, dtype=np.int64)
                continue
            post, votes, prior = self._fit_dim(name, part, enc)
            voted = np.bincount(part.user[part.voting], minlength=enc.n_users) > 0
            post[~voted] = np.nan
            self.posteriors_[name], self.votes_[name], self.priors_[name] = post, votes, prior
            self.decisions_.setdefault(name, decide(np.nan_to_num(post)))
        return self

    def fit_predict_proba(self, answers: pd.DataFrame | Encoded) -> dict[str, pd.DataFrame]:
        """Per dimension, a (user_id x label) posterior frame; users whose answers all abstain are NaN rows."""
        self.fit(answers)
        enc = self.encoded_
        return {
            name: pd.DataFrame(post[enc.present[name]], index=pd.Index(enc.users[enc.present[name]], name="user_id"),
                               columns=enc.dims[name].labels)
            for name, post in self.posteriors_.items()
        }

    def fit_predict(self, answers: pd.DataFrame | Encoded) -> pd.DataFrame:
        """user_id, dimension, label (`unknown` where no teacher gave a label)."""
        self.fit(answers)
        return self.predictions()

    def predictions(self) -> pd.DataFrame:
        enc, frames = self.encoded_, []
        for name, post in self.posteriors_.items():
            rows = np.flatnonzero(enc.present[name])
            labels = np.array(enc.dims[name].labels + [UNKNOWN], dtype=object)
            voted = has_votes(post[rows])
            code = np.where(voted, self.decisions_[name][rows], len(labels) - 1)
            frames.append(pd.DataFrame({"user_id": enc.users[rows], "dimension": name, "label": labels[code]}))
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["user_id", "dimension", "label"])


AGGREGATORS: Registry[type[Aggregator]] = Registry("aggregator")
