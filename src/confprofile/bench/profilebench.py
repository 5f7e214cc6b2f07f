"""Synthetic ProfileBench: short-video platform users with known demographic truth.

Each user gets a profile drawn from a joint distribution (students are young, retirees old, education
follows occupation, spending follows occupation, education and age), then per dimension a *signal
strength*: `explicit` (the user says it), `implicit` (their viewing, searches and purchases suggest it)
or `none` (nothing direct). Some users also carry a misleading signal: a child using a parent's phone,
a family sharing one account, or a decoy interest. `compose.py` turns all this into account content mixed
with generic trending distractors. Gold labels are always the truth; the signals only control what the
data reveals. `difficulty` (0..1) moves the mix towards `none`, misleading signals and distractors.

Users are generated one by one from `Random(f"profilebench:{seed}:{i}")`: deterministic, and the first n
users of a larger run are the same users. The profile is drawn before anything that depends on
`difficulty`, so one seed gives the same people (and gold) at every difficulty; only what their accounts
reveal changes. Ids carry the seed, so different seeds give disjoint splits.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path


from confprofile.bench.compose import compose_user, word_count
from confprofile.files import atomic_write_jsonl, atomic_write_text
from confprofile.taxonomy import Taxonomy

DIMENSIONS = ("gender", "age_group", "occupation", "education", "life_stage", "consumption_level")
STRENGTHS = ("explicit", "implicit", "none")

AGE_GROUPS = {"under_18": 0.10, "18_24": 0.20, "25_34": 0.25, "35_44": 0.20, "45_54": 0.13, "55_plus": 0.12}
AGE_YEARS = {"under_18": (13, 17), "18_24": (18, 24), "25_34": (25, 34), "35_44": (35, 44), "45_54": (45, 54), "55_plus": (55, 78)}
_OCCS = ("student", "it_internet", "finance", "education", "healthcare", "manufacturing_labor",
         "service_retail", "government", "self_employed", "homemaker", "retired")
# P(occupation | age group), columns in _OCCS order.
OCCUPATION_BY_AGE = {
    "under_18": (93, 0, 0, 0, 0, 3, 4, 0, 0, 0, 0),
    "18_24": (50, 8, 3, 2, 3, 10, 14, 2, 5, 3, 0),
    "25_34": (5, 16, 8, 7, 7, 15, 15, 7, 10, 10, 0),
    "35_44": (0, 12, 8, 8, 7, 18, 14, 9, 12, 12, 0),
    "45_54": (0, 5, 7, 8, 7, 20, 13, 10, 13, 12, 5),
    "55_plus": (0, 1, 2, 3, 3, 6, 5, 3, 7, 8, 62),
}
# Multipliers on P(occupation | age) by gender: skewed, never exclusive.
OCCUPATION_GENDER_SKEW = {
    "homemaker": {"female": 1.8, "male": 0.25}, "it_internet": {"male": 1.4, "female": 0.6},
    "manufacturing_labor": {"male": 1.5, "female": 0.55}, "healthcare": {"female": 1.4, "male": 0.7},
    "education": {"female": 1.3, "male": 0.75},
}
_EDUS = ("high_school_or_below", "college", "bachelor", "postgraduate")
# P(education | occupation) for adults, columns in _EDUS order.
EDUCATION_BY_OCCUPATION = {
    "student": (0, 30, 60, 10), "it_internet": (3, 15, 57, 25), "finance": (2, 10, 58, 30),
    "education": (0, 15, 55, 30), "healthcare": (3, 35, 42, 20), "manufacturing_labor": (70, 25, 5, 0),
    "service_retail": (55, 33, 11, 1), "government": (8, 17, 55, 20), "self_employed": (40, 30, 25, 5),
    "homemaker": (45, 30, 22, 3), "retired": (58, 20, 18, 4),
}
_LIFE = ("single", "in_relationship", "married_no_children", "parent_young_children", "parent_older_children")
LIFE_STAGE_BY_AGE = {
    "under_18": (80, 20, 0, 0, 0), "18_24": (55, 35, 5, 5, 0), "25_34": (25, 20, 15, 38, 2),
    "35_44": (8, 4, 10, 50, 28), "45_54": (6, 3, 8, 8, 75), "55_plus": (6, 2, 10, 0, 82),
}
# Spending: a latent score from occupation, education and age plus noise, cut into low/medium/high.
SPEND_OCCUPATION = {"student": -0.6, "it_internet": 0.6, "finance": 0.7, "education": 0.1, "healthcare": 0.3,
                    "manufacturing_labor": -0.4, "service_retail": -0.5, "government": 0.2, "self_employed": 0.3,
                    "homemaker": -0.2, "retired": -0.3}
SPEND_EDUCATION = {"high_school_or_below": -0.2, "college": 0.0, "bachelor": 0.2, "postgraduate": 0.3}
SPEND_AGE = {"under_18": -0.4, "18_24": -0.2, "25_34": 0.1, "35_44": 0.2, "45_54": 0.2, "55_plus": -0.1}


@dataclass
class Profile:
    """The truth about one user: labels plus the numbers that make their content consistent."""

    labels: dict[str, str]
    age: int
    kids: int


@dataclass
class Signals:
    """What the data reveals: strength per dimension, misleading labels, scenario, missing sources."""

    strength: dict[str, str]
    misleading: dict[str, str] = field(default_factory=dict)
    scenario: str | None = None
    missing: list[str] = field(default_factory=list)
    other: Profile | None = None  # the other household member on a shared account


def _pick(rng: random.Random, names, weights) -> str:
    return rng.choices(list(names), weights=list(weights), k=1)[0]


def sample_profile(rng: random.Random) -> Profile:
    """Draw labels from the joint distribution: age -> gender -> occupation -> education -> life stage -> spending."""
    age_group = _pick(rng, AGE_GROUPS, AGE_GROUPS.values())
    gender = rng.choice(("male", "female"))
    return _profile_given(rng, age_group, gender)


def _profile_given(rng: random.Random, age_group: str, gender: str) -> Profile:
    weights = [w * OCCUPATION_GENDER_SKEW.get(occ, {}).get(gender, 1.0)
               for occ, w in zip(_OCCS, OCCUPATION_BY_AGE[age_group])]
    occupation = _pick(rng, _OCCS, weights)
    if age_group == "under_18":
        education = "high_school_or_below"
    else:
        edu_weights = list(EDUCATION_BY_OCCUPATION[occupation])
        if age_group == "18_24":  # few finish a postgraduate degree by 24
            edu_weights[3] *= 0.3
        if occupation == "student" and age_group not in ("18_24", "25_34"):
            edu_weights = [0, 10, 30, 60]  # mature students: mostly postgraduate
        education = _pick(rng, _EDUS, edu_weights)
    life_weights = list(LIFE_STAGE_BY_AGE[age_group])
    if occupation == "homemaker":
        life_weights[3] *= 3.0
        life_weights[4] *= 1.5
    if occupation == "student":
        life_weights[3] *= 0.1
        life_weights[4] *= 0.1
    life_stage = _pick(rng, _LIFE, life_weights)
    score = SPEND_OCCUPATION[occupation] + SPEND_EDUCATION[education] + SPEND_AGE[age_group] + rng.gauss(0, 0.55)
    consumption = "low" if score < -0.45 else "high" if score > 0.6 else "medium"
    lo, hi = AGE_YEARS[age_group]
    labels = {"gender": gender, "age_group": age_group, "occupation": occupation, "education": education,
              "life_stage": life_stage, "consumption_level": consumption}
    return Profile(labels=labels, age=rng.randint(lo, hi), kids=rng.choice((1, 2, 2, 3)))


def sample_signals(rng: random.Random, profile: Profile, difficulty: float) -> Signals:
    """Signal strength per dimension, then maybe one misleading scenario and some missing sources."""
    p_explicit = 0.35 - 0.25 * difficulty
    p_none = 0.08 + 0.32 * difficulty
    strength = {dim: _pick(rng, STRENGTHS, (p_explicit, 1 - p_explicit - p_none, p_none)) for dim in DIMENSIONS}
    signals = Signals(strength=strength)
    if rng.random() < 0.06 + 0.24 * difficulty:
        _add_misleading(rng, profile, signals)
    optional = ["bio", "location", "device", "follows", "likes", "comments", "searches", "purchases", "gifts"]
    signals.missing = [src for src in optional if rng.random() < 0.05 + 0.15 * difficulty]
    return signals


def _add_misleading(rng: random.Random, profile: Profile, signals: Signals) -> None:
    labels = profile.labels
    if labels["life_stage"] == "parent_young_children" and rng.random() < 0.5:
        signals.scenario = "kid_on_parent_phone"
        signals.misleading = {"age_group": "under_18", "occupation": "student"}
    elif labels["life_stage"] in ("married_no_children", "parent_young_children", "parent_older_children") and rng.random() < 0.6:
        signals.scenario = "shared_family_account"
        if labels["life_stage"] == "parent_older_children" and rng.random() < 0.5:
            other = _profile_given(rng, rng.choice(("under_18", "18_24")), rng.choice(("male", "female")))
        else:
            spouse_gender = "female" if labels["gender"] == "male" else "male"
            other = _profile_given(rng, labels["age_group"], spouse_gender)
        signals.other = other
        signals.misleading = {dim: other.labels[dim] for dim in ("gender", "age_group", "occupation", "education")
                              if other.labels[dim] != labels[dim]}
    else:
        signals.scenario = "decoy_interest"
        dim = rng.choice(DIMENSIONS)
        true = labels[dim]
        pools = {"gender": ("male", "female"), "age_group": tuple(AGE_GROUPS), "occupation": _OCCS,
                 "education": _EDUS, "life_stage": _LIFE, "consumption_level": ("low", "medium", "high")}
        signals.misleading = {dim: rng.choice([lab for lab in pools[dim] if lab != true])}


def generate(n_users: int, seed: int, difficulty: float = 0.5) -> tuple[list[dict], list[dict]]:
    """`n_users` users and their gold labels; see `generate_with_signals` for the signal records too."""
    users, gold, _ = generate_with_signals(n_users, seed, difficulty)
    return users, gold


def generate_with_signals(n_users: int, seed: int, difficulty: float = 0.5) -> tuple[list[dict], list[dict], list[dict]]:
    """Users, gold and per-user signal records (gold-side data: for analysis and evaluation only)."""
    if not 0.0 <= difficulty <= 1.0:
        raise ValueError(f"difficulty must be in [0, 1], got {difficulty}")
    users, gold, signal_rows = [], [], []
    for i in range(n_users):
        rng = random.Random(f"profilebench:{seed}:{i}")
        user_id = f"u{seed}_{i:06d}"
        profile = sample_profile(rng)
        signals = sample_signals(rng, profile, difficulty)
        users.append({"user_id": user_id, "data": compose_user(rng, profile, signals, difficulty)})
        gold.append({"user_id": user_id, "labels": dict(profile.labels)})
        signal_rows.append({"user_id": user_id, "strength": signals.strength, "misleading": signals.misleading,
                            "scenario": signals.scenario, "missing_sources": signals.missing})
    return users, gold, signal_rows


def dataset_card(users: list[dict], gold: list[dict], signals: list[dict], seed: int, difficulty: float) -> str:
    """Markdown summary: label distributions, signal mix, scenarios, text length."""
    n = len(gold)
    lines = [f"# ProfileBench synthetic split (seed {seed}, difficulty {difficulty:g})", "",
             f"- users: {n}", f"- user ids: `u{seed}_000000` .. `u{seed}_{max(n - 1, 0):06d}`",
             "- generator: `confprofile generate` (confprofile.bench.profilebench)",
             "- files: users.jsonl (label-free input), gold.jsonl and signals.jsonl (evaluation only), taxonomy.yaml", ""]
    words = sorted(word_count(u["data"]) for u in users) or [0]
    lines += [f"Words per user: median {words[len(words) // 2]}, p10 {words[len(words) // 10]}, "
              f"p90 {words[(len(words) * 9) // 10]}, max {words[-1]}.", ""]
    lines += ["## Label distributions", ""]
    for dim in DIMENSIONS:
        counts = Counter(g["labels"][dim] for g in gold)
        lines.append(f"**{dim}**: " + ", ".join(f"{lab} {c} ({c / max(n, 1):.1%})" for lab, c in counts.most_common()))
        lines.append("")
    lines += ["## Signal strength per dimension", "", "| dimension | explicit | implicit | none | misleading |",
              "|---|---|---|---|---|"]
    for dim in DIMENSIONS:
        counts = Counter(s["strength"][dim] for s in signals)
        mis = sum(dim in s["misleading"] for s in signals)
        cells = [f"{counts[k] / max(n, 1):.1%}" for k in STRENGTHS]
        lines.append(f"| {dim} | " + " | ".join(cells) + f" | {mis / max(n, 1):.1%} |")
    scenarios = Counter(s["scenario"] or "none" for s in signals)
    lines += ["", "## Misleading scenarios", "", ", ".join(f"{k}: {v}" for k, v in scenarios.most_common()), ""]
    missing = Counter(src for s in signals for src in s["missing_sources"])
    lines += ["## Missing sources (users without the source)", "",
              ", ".join(f"{k}: {v}" for k, v in sorted(missing.items())) or "none", ""]
    return "\n".join(lines)


def write_split(out: str | Path, n_users: int, seed: int, difficulty: float) -> Path:
    """Generate a split and write users.jsonl, gold.jsonl, signals.jsonl, taxonomy.yaml, dataset_card.md."""
    out = Path(out)
    users, gold, signals = generate_with_signals(n_users, seed, difficulty)
    atomic_write_jsonl(out / "users.jsonl", users)
    atomic_write_jsonl(out / "gold.jsonl", gold)
    atomic_write_jsonl(out / "signals.jsonl", signals)
    Taxonomy.builtin("profilebench").to_yaml(out / "taxonomy.yaml")
    atomic_write_text(out / "dataset_card.md", dataset_card(users, gold, signals, seed, difficulty))
    return out


