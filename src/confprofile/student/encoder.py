"""`encoder` student, the CPU default: frozen sentence-encoder + lexical features, one softmax head per dimension.

A student beats its teachers' labels when it starts from a pretrained representation and sees more
users than the teachers labelled. Here the representation is the packaged all-MiniLM-L6-v2 (frozen)
plus TF-IDF n-grams of the run's own users; the head is a linear softmax per dimension, fitted with
L-BFGS (torch) on soft targets (the aggregator's posterior) weighted by the pseudo-label confidence
and, optionally, class-balanced. Its stated confidence is calibrated without gold on out-of-fold
users, against the aggregator's posterior fused with the student's own (`student.calibration`). A second
fit of the heads leaves a share of the pseudo-labelled users out (`validation_share`): stage 2
(`rl.encoder_policy`), which treats the head as a policy over labels, starts from it, and its
confidences are recalibrated on those users.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from confprofile.files import atomic_path, atomic_write_json
from confprofile.render import render_user
from confprofile.settings import from_section
from confprofile.student.base import STUDENT_FILE, STUDENTS, Student, prediction_frame
from confprofile.student.calibration import apply_platt, fit_platt, fused_posterior
from confprofile.student.features import EmbeddingCache, FeatureConfig, Featurizer
from confprofile.student.targets import held_out_score, pseudo_posteriors
from confprofile.taxonomy import Taxonomy


HOLDOUT_HEADS = "heads_without_validation.pt"  # stage 2's start: the heads fitted without the validation users


@dataclass
class EncoderStudentConfig:
    features: FeatureConfig = field(default_factory=lambda: FeatureConfig(encoder=""), metadata={"help": "Encoder and lexical features (see FeatureConfig); default: TF-IDF n-grams only."})
    feature_candidates: list[FeatureConfig] = field(default_factory=list, metadata={"help": "Other feature settings to try: each is fitted, and the one that scores best on the validation users (held_out_score, no gold) is kept as `features`. Biased towards the teachers' own representation: a MiniLM block agrees with MiniLM teachers' errors (docs/students.md)."})
    l2: float = field(default=3e-4, metadata={"help": "L2 penalty on the head's weights (per example, as in scikit-learn's 1/(C n))."})
    max_iter: int = field(default=100, metadata={"help": "L-BFGS iterations of a head fit."})
    fit_targets: str = field(default="posterior", metadata={"help": "What each head fits: 'posterior' (the aggregator's posterior: the pseudo-label at its confidence, the rest by the other labels' votes) or 'label' (the pseudo-label alone); both weighted by the confidence. The posterior's mode is not always the pseudo-label (docs/students.md)."})
    class_balance: bool = field(default=True, metadata={"help": "Weight each label by the inverse of its pseudo-label mass, so minority labels are not drowned."})
    calibration_folds: int = field(default=4, metadata={"help": "Folds of out-of-fold predictions that fit the label-free confidence calibration (< 2: none)."})
    validation_share: float = field(default=0.2, metadata={"help": "Share of the pseudo-labelled users that stage 2's starting heads never fit: the label-free validation set on which stage 2 refits the calibration and scores its epochs (0: none)."})
    seed: int = field(default=0, metadata={"help": "Seed of the calibration folds and the validation users."})

    def __post_init__(self) -> None:
        if self.fit_targets not in {"posterior", "label"}:
            raise ValueError(f"fit_targets must be 'posterior' or 'label', got {self.fit_targets!r}")

    @classmethod
    def from_dict(cls, values: dict, section: str = "distill") -> "EncoderStudentConfig":
        """From a config section (the pipeline's `distill` without its `student` key)."""
        return from_section(cls, values, section, {"features": FeatureConfig, "feature_candidates": FeatureConfig})


def to_torch(matrix: sp.csr_matrix):
    import torch

    coo = matrix.tocoo()
    indices = torch.from_numpy(np.vstack([coo.row, coo.col]).astype(np.int64))
    return torch.sparse_coo_tensor(indices, torch.from_numpy(coo.data.astype(np.float32)), coo.shape, check_invariants=False).coalesce()


class LinearHeads:
    """One linear softmax per dimension over a shared feature matrix (torch parameters)."""

    def __init__(self, n_features: int, sizes: dict[str, int]):
        import torch

        self.sizes = dict(sizes)
        total = sum(sizes.values())
        self.weight = torch.zeros(n_features, total, requires_grad=True)
        self.bias = torch.zeros(total, requires_grad=True)

    def parameters(self):
        return [self.weight, self.bias]

    def log_probs(self, x) -> dict:
        """{dimension: (n, K) log-probabilities} for a torch sparse (or dense) feature matrix."""
        import torch

        logits = torch.sparse.mm(x, self.weight) + self.bias if x.is_sparse else x @ self.weight + self.bias
        return {dim: torch.log_softmax(logits[:, self.columns(dim)], dim=1) for dim in self.sizes}

    def columns(self, dim: str) -> slice:
        """Where one dimension's labels sit among the shared weight and bias columns."""
        names = list(self.sizes)
        start = sum(self.sizes[name] for name in names[:names.index(dim)])
        return slice(start, start + self.sizes[dim])

    def shift(self, dim: str, offsets: np.ndarray) -> None:
        """Add `offsets` to one dimension's label biases (a prior shift of its softmax)."""
        import torch

        with torch.no_grad():
            self.bias[self.columns(dim)] += torch.as_tensor(offsets, dtype=self.bias.dtype)

    def state(self) -> dict:
        return {"weight": self.weight.detach().clone(), "bias": self.bias.detach().clone(), "sizes": self.sizes}

    @classmethod
    def from_state(cls, state: dict) -> "LinearHeads":
        import torch

        heads = cls(state["weight"].shape[0], state["sizes"])
        with torch.no_grad():
            heads.weight.copy_(state["weight"])
            heads.bias.copy_(state["bias"])
        return heads


def class_weights(dist: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Inverse pseudo-label mass per label, mean 1 over the labels that have any mass."""
    mass = (dist * weight[:, None]).sum(0)
    out = np.where(mass > 0, mass.sum() / np.maximum(mass, 1e-12) / max((mass > 0).sum(), 1), 0.0)
    return out


def fit_heads(heads: LinearHeads, x, targets: dict[str, tuple[np.ndarray, np.ndarray]], *, l2: float, max_iter: int,
              class_balance: bool) -> LinearHeads:
    """Weighted soft cross-entropy per dimension + L2, minimised by torch's L-BFGS (full batch)."""
    import torch

    terms = []
    for dim, (dist, weight) in targets.items():
        if weight.sum() <= 0:
            continue
        scaled = dist * (class_weights(dist, weight) if class_balance else 1.0)
        terms.append((dim, torch.from_numpy((scaled * weight[:, None]).astype(np.float32)), float(weight.sum())))
    if not terms:
        return heads
    optimiser = torch.optim.LBFGS(heads.parameters(), max_iter=max_iter, line_search_fn="strong_wolfe", history_size=20)

    def closure():
        optimiser.zero_grad()
        log_probs = heads.log_probs(x)
        loss = sum(-(target * log_probs[dim]).sum() / total for dim, target, total in terms) + l2 * (heads.weight ** 2).sum()
        loss.backward()
        return loss

    optimiser.step(closure)
    return heads


@STUDENTS.register("encoder")
class EncoderStudent(Student):
    """Pretrained-encoder student: `fit` on pseudo-labels, `predict_proba`, `predict`, `save`, `load`."""

    family = "encoder"

    def __init__(self, taxonomy: Taxonomy, config: EncoderStudentConfig | None = None, cache_path: str | Path | None = None):
        self.taxonomy = taxonomy
        self.config = config or EncoderStudentConfig()
        self.cache = EmbeddingCache(cache_path) if cache_path else None  # None: nothing kept between calls
        self.featurizer = Featurizer(self.config.features, taxonomy)

    # ---- features
    def texts(self, users: Sequence) -> tuple[list[str], list[str]]:
        """(what the encoder reads, what the lexical features read) per user."""
        features = self.config.features
        lexical = [render_user(u, features.lexical_tokens, fields=self.taxonomy.fields) for u in users]
        encoded = [render_user(u, features.encoder_tokens, fields=self.taxonomy.fields) for u in users] if self.featurizer.uses_encoder else []
        return encoded, lexical

    def features(self, users: Sequence, progress=None) -> sp.csr_matrix:
        encoded, lexical = self.texts(users)
        embeddings = self.featurizer.embed(encoded, self.cache, progress) if encoded else None
        return self.featurizer.transform(lexical, embeddings)

    def fit_features(self, users: Sequence, progress=None) -> "EncoderStudent":
        """Learn the lexical vocabulary and embedding scale on users' text alone (no labels)."""
        encoded, lexical = self.texts(users)
        embeddings = self.featurizer.embed(encoded, self.cache, progress) if encoded else None
        self.featurizer.fit(lexical, embeddings)
        return self

    # ---- training
    def fit(self, users: Sequence, targets: pd.DataFrame, work_dir=None, vocabulary_users: Sequence | None = None) -> "EncoderStudent":
        """Fit features (on `vocabulary_users`, default `users`), the heads, then the calibration; with
        `feature_candidates`, each feature setting in turn, keeping the best on the validation users."""
        ids = [str(u.user_id) for u in users]
        posterior = pseudo_posteriors(targets, ids, self.taxonomy)
        validation = self.validation_rows(posterior)
        self.validation_users_ = [ids[i] for i in validation]
        fit_rows = np.setdiff1d(np.arange(len(ids)), validation)
        candidates = [self.config.features, *self.config.feature_candidates]
        fitted = []  # (score, features, featurizer, x, heads)
        for features in candidates:
            if len(candidates) > 1 or not self.fitted_features:
                self.config, self.featurizer = replace(self.config, features=features), Featurizer(features, self.taxonomy)
                self.fit_features(vocabulary_users or users)
            x = self.features(users)
            heads = self.fit_on(x, posterior, fit_rows)
            score = held_out_score(predict_proba(heads, x[validation]), posterior, validation) if len(validation) else None
            fitted.append((score, features, self.featurizer, x, heads))
        self.feature_scores_ = [score for score, *_ in fitted]
        best = max(range(len(fitted)), key=lambda i: (fitted[i][0] or 0.0, -i))  # ties: the first
        _, features, self.featurizer, x, self.holdout_heads_ = fitted[best]
        self.config = replace(self.config, features=features)
        # the student itself learns from every pseudo-labelled user; the heads fitted without the
        # validation users are kept as stage 2's start, so that they remain a fair yardstick there
        self.heads_ = self.fit_on(x, posterior) if len(validation) else self.holdout_heads_
        self.calibration_ = self.fit_calibration(x, posterior)
        return self

    @property
    def fitted_features(self) -> bool:
        return hasattr(self.featurizer, "vectorizer_") or hasattr(self.featurizer, "embedding_mean_")

    def validation_rows(self, posterior: dict) -> np.ndarray:
        """A seeded share of the pseudo-labelled rows, kept out of the heads stage 2 starts from."""
        labelled = np.flatnonzero(np.any([p.has_row for p in posterior.values()], axis=0))
        size = int(len(labelled) * self.config.validation_share)
        return np.sort(np.random.default_rng(self.config.seed + 1).choice(labelled, size, replace=False))

    def fit_on(self, x: sp.csr_matrix, posterior: dict, rows: np.ndarray | None = None) -> LinearHeads:
        rows = np.arange(x.shape[0]) if rows is None else rows
        sizes = {d.name: len(d.label_names) for d in self.taxonomy.dimensions}
        targets = {dim: ((p.one_hot() if self.config.fit_targets == "label" else p.posterior)[rows], p.weight[rows])
                   for dim, p in posterior.items()}
        return fit_heads(LinearHeads(x.shape[1], sizes), to_torch(x[rows]), targets, l2=self.config.l2,
                         max_iter=self.config.max_iter, class_balance=self.config.class_balance)

    def fit_calibration(self, x: sp.csr_matrix, posterior: dict) -> dict[str, list[float]]:
        """Platt maps fitted on out-of-fold predictions (see `student.calibration`)."""
        folds = self.config.calibration_folds
        labelled = np.flatnonzero(np.any([p.has_row for p in posterior.values()], axis=0))
        if folds < 2 or len(labelled) < 2 * folds:
            return {dim: [1.0, 0.0] for dim in posterior}
        fold_of = np.random.default_rng(self.config.seed).permutation(len(labelled)) % folds
        probs = {dim: np.zeros((x.shape[0], len(p.labels))) for dim, p in posterior.items()}
        for k in range(folds):
            heads = self.fit_on(x, posterior, labelled[fold_of != k])
            held = labelled[fold_of == k]
            for dim, values in predict_proba(heads, x[held]).items():
                probs[dim][held] = values
        return {dim: list(calibrate_against(probs[dim][labelled], p.posterior[labelled], p.has_row[labelled]))
                for dim, p in posterior.items()}

    # ---- prediction
    def predict_proba(self, users: Sequence, progress=None) -> dict[str, np.ndarray]:
        return predict_proba(self.heads_, self.features(users, progress))

    def confidence(self, dim: str, max_probability: np.ndarray) -> np.ndarray:
        slope, intercept = self.calibration_.get(dim, (1.0, 0.0))
        return apply_platt(max_probability, slope, intercept)

    def predict(self, users: Sequence, model_name: str = "encoder", progress=None) -> pd.DataFrame:
        probs = self.predict_proba(users, progress)
        labels, confidence = {}, {}
        for dim in self.taxonomy.dimensions:
            p = probs[dim.name]
            labels[dim.name] = np.asarray(dim.label_names, dtype=object)[p.argmax(1)] if len(p) else np.array([], dtype=object)
            confidence[dim.name] = self.confidence(dim.name, p.max(1)) if len(p) else np.array([])
        return prediction_frame([str(u.user_id) for u in users], self.taxonomy, labels, confidence, model_name)

    # ---- persistence
    def save(self, directory: str | Path) -> Path:
        import joblib
        import torch

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        for name, heads in (("heads.pt", self.heads_), (HOLDOUT_HEADS, self.holdout_heads_)):
            with atomic_path(directory / name) as tmp:
                torch.save(heads.state(), tmp)
        with atomic_path(directory / "featurizer.joblib") as tmp:
            joblib.dump({k: v for k, v in vars(self.featurizer).items() if k.endswith("_")}, tmp)
        atomic_write_json(directory / STUDENT_FILE, {
            "family": self.family, "config": asdict(self.config), "calibration": self.calibration_,
            "validation_users": self.validation_users_, "feature_scores": self.feature_scores_,
            "taxonomy": json.loads(self.taxonomy.model_dump_json()),
        })
        return directory

    @classmethod
    def load(cls, directory: str | Path, cache_path: str | Path | None = None, **_) -> "EncoderStudent":
        import joblib
        import torch

        directory = Path(directory)
        note = json.loads((directory / STUDENT_FILE).read_text())
        student = cls(Taxonomy.model_validate(note["taxonomy"]), EncoderStudentConfig.from_dict(note["config"]), cache_path)
        vars(student.featurizer).update(joblib.load(directory / "featurizer.joblib"))
        student.heads_ = LinearHeads.from_state(torch.load(directory / "heads.pt"))
        holdout = directory / HOLDOUT_HEADS
        student.holdout_heads_ = LinearHeads.from_state(torch.load(holdout)) if holdout.exists() else student.heads_
        student.calibration_ = {dim: list(v) for dim, v in note["calibration"].items()}
        student.validation_users_ = note.get("validation_users", [])
        student.feature_scores_ = note.get("feature_scores", [])
        return student


def predict_proba(heads: LinearHeads, x: sp.csr_matrix) -> dict[str, np.ndarray]:
    import torch

    with torch.no_grad():
        return {dim: lp.exp().numpy().astype(float) for dim, lp in heads.log_probs(to_torch(x)).items()}


def calibrate_against(probs: np.ndarray, posterior: np.ndarray, has_row: np.ndarray) -> tuple[float, float]:
    """Platt map from the student's top probability (on users it did not fit) to the fused posterior
    (`fused_posterior`) of the student's label."""
    if not has_row.any():
        return 1.0, 0.0
    probs, posterior = probs[has_row], posterior[has_row]
    chosen = probs.argmax(1)
    return fit_platt(probs.max(1), fused_posterior(posterior, probs)[np.arange(len(chosen)), chosen])
