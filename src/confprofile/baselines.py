"""Reference baselines: a label-free keyword matcher and the (gold-using) majority class.

The keyword baseline knows only the taxonomy: for each dimension it counts whole-word matches of every
label's name and aliases in all text of a user, and answers the most matched label (`unknown` when
nothing matches), with the winner's share of the matches as confidence. It is the floor any model
must beat; a benchmark on which it scores near perfect tests string lookup, not inference.
"""

from __future__ import annotations

import re
from collections import Counter
from functools import lru_cache

import pandas as pd

from confprofile.taxonomy import UNKNOWN, Dimension, Taxonomy

COLUMNS = ["user_id", "dimension", "label", "confidence", "rationale", "model"]


def flatten_text(value) -> str:
    """All strings and numbers in a user's data, depth first, joined by newlines (keys are left out)."""
    if isinstance(value, dict):
        return "\n".join(flatten_text(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return "\n".join(flatten_text(v) for v in value)
    return "" if value is None else str(value)


def _term_pattern(term: str) -> str:
    words = [re.escape(w) for w in re.split(r"[\s_\-]+", term.strip()) if w]
    return r"(?<!\w)" + r"[\s_\-]+".join(words) + r"(?!\w)"


@lru_cache(maxsize=64)
def _matcher(dimension_json: str) -> tuple[list[str], list[tuple[int, str, bool, re.Pattern]]]:
    """Label names and, per term, (label index, a literal the text must contain, case-sensitive?, regex).

    Terms of one or two characters (`m`, `f`, `it`) would match pronouns and initials everywhere,
    so they count only written in capitals (`IT`, `M`, `F`); longer terms match in any case. The
    literal is a cheap substring pre-check, so the regex runs only where it can match.
    """
    dim = Dimension.model_validate_json(dimension_json)
    terms = []
    for i, label in enumerate(dim.labels):
        for term in sorted({label.name.replace("_", " "), *label.aliases}):
            term = term.strip()
            short = len(term) <= 2
            term = term.upper() if short else term.lower()
            literal = re.split(r"[\s_\-]+", term)[0]
            terms.append((i, literal, short, re.compile(_term_pattern(term), 0 if short else re.IGNORECASE)))
    return dim.label_names, terms


def _user_parts(user) -> tuple[str, object]:
    if isinstance(user, dict):
        return str(user["user_id"]), user.get("data", {})
    return str(user.user_id), user.data


def keyword_predictions(users: list, taxonomy: Taxonomy) -> pd.DataFrame:
    """One row per user x dimension in the predictions.parquet layout, model="keyword"."""
    rows = []
    dims = [(dim.name, *_matcher(dim.model_dump_json())) for dim in taxonomy.dimensions]
    for user in users:
        user_id, data = _user_parts(user)
        text = flatten_text(data)
        lowered = text.lower()
        for dim_name, names, patterns in dims:
            hits = [(index, m.group(0).lower()) for index, literal, short, pattern in patterns
                    if literal in (text if short else lowered) for m in pattern.finditer(text)]
            if not hits:
                rows.append((user_id, dim_name, UNKNOWN, 0.0, "no taxonomy keyword found", "keyword"))
                continue
            counts = Counter(index for index, _ in hits)
            best = max(counts.values())
            index = min(i for i, c in counts.items() if c == best)  # ties go to the label listed first
            words = Counter(word for i, word in hits if i == index).most_common(3)
            rationale = "matched " + ", ".join(f"'{w}' x{c}" for w, c in words)
            rows.append((user_id, dim_name, names[index], best / len(hits), rationale, "keyword"))
    return pd.DataFrame(rows, columns=COLUMNS)


def majority_class_predictions(train_gold_rows: list[dict], test_user_ids: list[str], taxonomy: Taxonomy) -> pd.DataFrame:
    """Every test user gets the most frequent training label per dimension. Uses gold: a reference only."""
    rows = []
    for dim in taxonomy.dimension_names:
        counts = Counter(row["labels"][dim] for row in train_gold_rows if row["labels"].get(dim) not in (None, UNKNOWN))
        if counts:
            label, count = counts.most_common(1)[0]
            confidence, rationale = count / sum(counts.values()), f"most frequent training label ({count}/{sum(counts.values())})"
        else:
            label, confidence, rationale = UNKNOWN, 0.0, "no training labels"
        rows += [(uid, dim, label, confidence, rationale, "majority_class (uses gold)") for uid in test_user_ids]
    return pd.DataFrame(rows, columns=COLUMNS)
