"""Encoding of the long answer table, and the estimator base class every aggregator shares.

The answer table (user x teacher x sample x dimension rows) is encoded to integer codes once:
users, teachers and, per dimension, labels. Each dimension then becomes a `DimAnswers` of flat
numpy arrays, so that voting and EM are compiled one-pass loops (kernels.py), numpy operations and
sparse products, never Python loops over answers.

Label codes: 0..K-1 are the dimension's labels, `ABSTAIN` (-1) is `unknown`, `MISSING` (-2) is a
null/invalid/error answer. Abstentions and missing answers never vote; they are kept so that
calibration and summaries can see them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from functools import cached_property

import numpy as np
import pandas as pd

from confprofile.aggregate import kernels
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
    teacher: np.ndarray  # int16 index into Encoded.teachers (int32 past 32767 teachers)
    label: np.ndarray  # int16 code, ABSTAIN or MISSING
    conf: np.ndarray  # float64 in [0, 1]
    row: np.ndarray  # row of the original table (rationales): int32, int64 past 2**31 rows
    sample_weight: np.ndarray | None  # see `weight`; None: one sample per teacher and user, so whole votes
    probs: np.ndarray | None = None  # (n, K) label distribution; NaN rows where a teacher gave none

    @property
    def k(self) -> int:
        return len(self.labels)

    @property
    def voting(self) -> np.ndarray:
        return self.label >= 0

    @property
    def whole_votes(self) -> bool:
        """Every answer with a label weighs 1, so vote sums may skip `weight`."""
        return self.sample_weight is None

    @cached_property
    def weight(self) -> np.ndarray:
        """1 / (this teacher's non-missing samples of this user), 0 for missing answers: k samples share one vote."""
        return (self.label != MISSING).astype(np.float64) if self.sample_weight is None else self.sample_weight

    def label_answers(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(user, teacher, label, conf, sample weight) of the answers the compiled kernels scan: all of them
        (the kernels skip answers without a label) unless some give a distribution, then the single-label
        ones. An empty sample weight means whole votes."""
        rows = slice(None) if self.probs is None else self.single
        sample_weight = np.empty(0) if self.whole_votes else self.weight[rows]
        return self.user[rows], self.teacher[rows], self.label[rows], self.conf[rows], sample_weight

    @cached_property
    def single(self) -> np.ndarray:
        """Voting answers given as one label (the others that vote give a distribution)."""
        return self.voting if self.probs is None else self.voting & ~np.isfinite(self.probs[:, 0])

    @cached_property
    def dist(self) -> np.ndarray:
        return self.voting & ~self.single

    @cached_property
    def cells(self) -> np.ndarray:
        """Flat (user, label) cell of each single-label answer: the index every vote bincounts over."""
        cells = self.user[self.single].astype(np.int64)
        cells *= self.k
        cells += self.label[self.single]
        return cells


@dataclass
class Encoded:
    """The whole answer table, encoded once."""

    users: np.ndarray  # user ids (strings), sorted
    teachers: list[str]
    dims: dict[str, DimAnswers]
    rationale: np.ndarray | None = None  # original rationale column (object), indexed by DimAnswers.row
    present: dict[str, np.ndarray] = field(default_factory=dict)  # users with any row in a dimension
    input_user_dtype: pd.CategoricalDtype | None = None  # the input's own, when its categories are `users`
    teacher_group: np.ndarray | None = None  # group index per teacher (correlated teachers share one); None: each alone
    teacher_model: list | None = None  # the answers' `model` per teacher (None where not given)

    def groups(self) -> np.ndarray:
        """Group index per teacher: `teacher_group`, or every teacher its own group."""
        return np.arange(len(self.teachers)) if self.teacher_group is None else self.teacher_group

    @cached_property
    def user_dtype(self) -> pd.CategoricalDtype:
        """Categorical dtype over `users` (reused from the input: hashing 1M user ids costs ~0.4 s)."""
        return self.input_user_dtype if self.input_user_dtype is not None else pd.CategoricalDtype(self.users)

    @property
    def n_users(self) -> int:
        return len(self.users)

    def with_dims(self, dims: dict[str, DimAnswers], **changes) -> "Encoded":
        return replace(self, dims=dims, **changes)


def _codes(column: pd.Series, sort: bool = True) -> tuple[np.ndarray, np.ndarray, pd.CategoricalDtype | None]:
    """(integer codes, -1 for null; the string values they index, sorted if `sort`; the column's own
    categorical dtype when its codes are kept as they are, so a 1M-user index need not be hashed again)."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        codes, categories = column.cat.codes.to_numpy(), column.cat.categories
        as_text = pd.api.types.is_string_dtype(categories)
        names = categories.to_numpy(dtype=object) if as_text else categories.to_numpy(dtype=object).astype(str).astype(object)
        if not sort or len(names) < 2 or bool((names[1:] > names[:-1]).all()):
            return codes, names, column.dtype if as_text else None
        order = np.argsort(names, kind="stable")
        remap = np.empty(len(names) + 1, dtype=_small_dtype(len(names)))
        remap[order] = np.arange(len(names))
        remap[-1] = -1  # code -1 (null) indexes the last slot
        return remap[codes], names[order], None
    codes, uniques = pd.factorize(column.astype(str).where(column.notna()) if column.dtype.kind in "iufb" else column, sort=sort)
    return codes, np.asarray(uniques, dtype=object), None


def _constant(column: pd.Series) -> bool:
    values = column.to_numpy()
    if values.dtype.kind in "iub":
        return len(values) == 0 or values.min() == values.max()
    return column.nunique(dropna=False) <= 1


def _small_dtype(n: int) -> type:
    return np.int16 if n < 2**15 else np.int32


def _small_int(codes: np.ndarray, n: int) -> np.ndarray:
    return codes.astype(_small_dtype(n), copy=False)


def sample_weights(user: np.ndarray, teacher: np.ndarray, label: np.ndarray, n_users: int, n_teachers: int) -> np.ndarray:
    """1 / (non-missing answers of this teacher on this user dimension), 0 for missing answers."""
    answered = label != MISSING
    pair = user.astype(np.int64) * n_teachers + teacher
    if n_users * n_teachers <= 50_000_000:  # dense count table: one O(n) bincount
        counts = np.bincount(pair[answered], minlength=n_users * n_teachers)[pair]
    else:
        _, inverse, per_pair = np.unique(pair, return_inverse=True, return_counts=True)
        counts = np.bincount(inverse[answered], minlength=len(per_pair))[inverse]
    return np.where(answered, 1.0 / np.maximum(counts, 1), 0.0)


def _parse_json(raw: pd.Series) -> np.ndarray:
    """Each `label_probs` cell as a dict (empty when absent or not a JSON object); one parse per row."""
    out = np.full(len(raw), None, dtype=object)
    out[:] = [{}] * len(raw)
    texts = raw.to_numpy(dtype=object)
    for i in np.flatnonzero(raw.notna().to_numpy()):
        try:
            value = json.loads(texts[i]) if isinstance(texts[i], str) else {}
        except ValueError:
            value = {}
        out[i] = value if isinstance(value, dict) else {}
    return out


def _prob_matrix(dists: np.ndarray, labels: list[str]) -> np.ndarray | None:
    """(n, K) normalised label distributions; NaN rows where a row gave none over these labels."""
    def number(v):
        return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else 0.0

    given = np.flatnonzero([bool(d) for d in dists])
    mat = np.zeros((len(dists), len(labels)))
    if len(given):
        mat[given] = [[number(dists[i].get(label)) for label in labels] for i in given]
    mat = np.where(np.isfinite(mat) & (mat > 0), mat, 0.0)
    total = mat.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(total > 0, mat / total, np.nan)
    return out if np.isfinite(out).any() else None


def encode(answers: pd.DataFrame, taxonomy: Taxonomy | None = None) -> Encoded:
    """Encode an answers table. With a taxonomy, its label order is used and other labels count as missing."""
    missing = [c for c in REQUIRED if c not in answers.columns]
    if missing:
        raise InputError(None, None, missing[0], f"answers table lacks column(s) {missing}")
    user_code, users, user_dtype = _codes(answers["user_id"])
    teacher_code, teachers, _ = _codes(answers["teacher"])
    dim_code, dim_values, _ = _codes(answers["dimension"], sort=False)  # rows are grouped by dimension below
    label_code, label_names, _ = _codes(answers["label"], sort=False)  # labels are looked up by name
    for column, code in (("user_id", user_code), ("teacher", teacher_code), ("dimension", dim_code)):
        if (code < 0).any():
            raise InputError(None, int(np.argmax(code < 0)) + 1, column, "must not be empty")
    user_code, teacher_code = user_code.astype(np.int32, copy=False), _small_int(teacher_code, len(teachers))
    one_sample = "sample" in answers.columns and _constant(answers["sample"])
    dim_names = sorted(dim_values)
    if taxonomy is not None:
        observed = set(dim_values)
        unknown_dims = sorted(observed - set(taxonomy.dimension_names))
        if unknown_dims:
            raise InputError(None, None, "dimension", f"dimension(s) {unknown_dims} are not in taxonomy {taxonomy.name!r}")
        dim_names = [d for d in taxonomy.dimension_names if d in observed]
    has_probs = "label_probs" in answers.columns and answers["label_probs"].notna().any()
    dists = _parse_json(answers["label_probs"]) if has_probs else None

    # Pass 1 counts each dimension's rows and the labels it names; pass 2 copies the rows grouped by
    # dimension, label codes already per dimension (a dimension's labels are known only after pass 1).
    starts, seen = kernels.count_by_dimension(dim_code, label_code, len(dim_values), len(label_names))
    code_of = {value: c for c, value in enumerate(dim_values)}
    lookup = np.full((len(dim_values), len(label_names) + 1), MISSING, dtype=np.int16)  # last column: null label (-1)
    labels_of = {}
    for name in dim_names:
        if taxonomy is not None:
            labels = taxonomy.dimension(name).label_names
        else:  # the labels this dimension's answers name (or offer in a distribution), `unknown` aside
            labels = set(label_names[seen[code_of[name], :-1]]) - {UNKNOWN}
            if has_probs:
                for dist in dists[dim_code == code_of[name]]:
                    labels.update(k for k in dist if isinstance(k, str) and k != UNKNOWN)
            labels = sorted(labels)
        index = {label: k for k, label in enumerate(labels)}
        lookup[code_of[name], :-1] = [ABSTAIN if text == UNKNOWN else index.get(text, MISSING) for text in label_names]
        labels_of[name] = labels
    n = len(answers)
    user, teacher = np.empty(n, dtype=user_code.dtype), np.empty(n, dtype=teacher_code.dtype)
    label, conf, row = np.empty(n, dtype=np.int16), np.empty(n), np.empty(n, dtype=np.int32 if n < 2**31 else np.int64)
    present = np.zeros((len(dim_values), len(users)), dtype=bool)
    kernels.group_by_dimension(dim_code, starts, lookup, user_code, teacher_code, label_code,
                               answers["confidence"].to_numpy(dtype=np.float64), user, teacher, label, conf, row, present, MISSING)

    dims = {}
    for name in dim_names:
        block = slice(starts[code_of[name]], starts[code_of[name] + 1])
        rows, labels = row[block], labels_of[name]
        dims[name] = DimAnswers(
            labels=labels, user=user[block], teacher=teacher[block], label=label[block], conf=conf[block], row=rows,
            # the table's key (user, teacher, sample, dimension) is unique, so with one sample no counting is needed
            sample_weight=None if one_sample else sample_weights(user[block], teacher[block], label[block], len(users), len(teachers)),
            probs=_prob_matrix(dists[rows], labels) if has_probs and labels else None,
        )
    rationale = answers["rationale"].to_numpy(dtype=object) if "rationale" in answers.columns else None
    models = None
    if "model" in answers.columns and answers["model"].notna().any():
        first = answers["model"].groupby(teacher_code, observed=True).first()
        models = [None if pd.isna(first.get(t)) else str(first.get(t)) for t in range(len(teachers))]
    return Encoded(users=users, teachers=list(teachers), dims=dims, rationale=rationale,
                   present={name: present[code_of[name]] for name in dim_names}, input_user_dtype=user_dtype,
                   teacher_model=models)


def as_encoded(answers: pd.DataFrame | Encoded, taxonomy: Taxonomy | None = None) -> Encoded:
    return answers if isinstance(answers, Encoded) else encode(answers, taxonomy)


def has_votes(posterior: np.ndarray) -> np.ndarray:
    """Rows of a posterior matrix that rest on at least one vote (the others are NaN)."""
    return ~np.isnan(posterior[:, 0]) if posterior.shape[1] else np.zeros(len(posterior), bool)


def voted(votes: np.ndarray) -> np.ndarray:
    """Users with at least one vote: every vote (any label, any weight) adds positive mass to its row."""
    return row_sum(votes) > 0


def row_max(m: np.ndarray) -> np.ndarray:
    """Row maxima, column by column: numpy's axis=1 reductions pay a set-up per row, which dominates at K = 2-11."""
    top = m[:, 0].copy()
    for j in range(1, m.shape[1]):
        np.maximum(top, m[:, j], out=top)
    return top


def row_sum(m: np.ndarray) -> np.ndarray:
    """Row sums as one matrix-vector product (same reason as `row_max`)."""
    return m @ np.ones(m.shape[1])


def decide(scores: np.ndarray) -> np.ndarray:
    """Row argmax with float noise rounded away (9 decimals), so row order never flips a tie: ties go to the
    first label. NaN never wins, so a user without votes (a NaN row) gets 0."""
    out = np.empty(len(scores), dtype=np.int64)
    kernels.rounded_argmax(scores, out)
    return out


class Aggregator:
    """crowd-kit-like estimator over the answer table.

    After `fit`: `posteriors_[dim]` is an (n_users, K) matrix (NaN rows for users without a vote),
    `decisions_[dim]` the label code per user (the posterior's argmax unless the method decides
    otherwise), `votes_[dim]` the raw vote mass per label, `priors_[dim]` the class prior the
    posterior assumes, `fallbacks_[dim]` why a method gave up its own fit for a simpler one.
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
        self.posteriors_, self.votes_, self.priors_, self.decisions_, self.fallbacks_ = {}, {}, {}, {}, {}
        for name, part in enc.dims.items():
            if part.k == 0:  # every answer abstained or was missing: nothing to vote on
                empty = np.zeros((enc.n_users, 0))
                self.posteriors_[name], self.votes_[name], self.priors_[name] = empty, empty, np.zeros(0)
                self.decisions_[name] = np.zeros(enc.n_users, dtype=np.int64)
                continue
            post, votes, prior = self._fit_dim(name, part, enc)
            post[~voted(votes)] = np.nan
            self.posteriors_[name], self.votes_[name], self.priors_[name] = post, votes, prior
            if name not in self.decisions_:
                self.decisions_[name] = decide(post)
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
        """user_id, dimension, label as categorical columns (no per-row string objects: cheap at 1M users),
        each built once from its codes (concatenating per-dimension categorical frames costs ~0.5 s at 1M)."""
        enc = self.encoded_
        if not self.posteriors_:
            return pd.DataFrame(columns=["user_id", "dimension", "label"])
        all_labels = sorted({label for part in enc.dims.values() for label in part.labels} | {UNKNOWN})
        users, dims, labels = [], [], []
        for d, (name, post) in enumerate(self.posteriors_.items()):
            rows = np.flatnonzero(enc.present[name])
            to_global = np.searchsorted(all_labels, enc.dims[name].labels + [UNKNOWN])
            code = np.where(has_votes(post)[rows], self.decisions_[name][rows], len(to_global) - 1)
            users.append(rows)
            dims.append(np.full(len(rows), d))
            labels.append(to_global[code])
        return pd.DataFrame({
            "user_id": pd.Categorical.from_codes(np.concatenate(users), dtype=enc.user_dtype),
            "dimension": pd.Categorical.from_codes(np.concatenate(dims), dtype=pd.CategoricalDtype(list(self.posteriors_))),
            "label": pd.Categorical.from_codes(np.concatenate(labels), dtype=pd.CategoricalDtype(all_labels)),
        })


AGGREGATORS: Registry[type[Aggregator]] = Registry("aggregator")
