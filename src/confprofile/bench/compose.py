"""Turn a ProfileBench profile and its signals into a believable short-video account.

A *cue* is one piece of content drawn from the pool of a (dimension, label): a watched video, a search,
a purchase, a follow or a comment. Explicit cues are first-person statements placed in the bio or a
comment. Each dimension contributes cues according to its signal strength; misleading scenarios add
cues of a wrong label; generic trending distractors fill the rest. Prices, device and live-stream gifts
follow the spending tier when the consumption signal is present, and a random tier when it is not.
"""

from __future__ import annotations

import math
import random
import string

from confprofile.bench import vocab
from confprofile.baselines import flatten_text

REFERENCE_YEAR = 2025
SOURCE_WEIGHTS = {"videos": 4.0, "searches": 2.0, "comments": 2.0, "purchases": 1.5, "follows": 1.0}
DISTRACTOR_WEIGHTS = {"videos": 5.0, "comments": 2.0, "searches": 1.5, "follows": 1.0, "purchases": 1.0}
TIER_PRICE = {"low": 0.5, "medium": 1.0, "high": 2.4}
_SOURCE_OF = {"videos": "watched", "searches": "searches", "comments": "comments", "purchases": "purchases", "follows": "follows"}
_NUMBER_WORDS = {1: "one", 2: "two", 3: "three"}


def fill(template: str, ctx: dict[str, str]) -> str | None:
    """Fill {placeholders} from ctx; None when the template needs something this user lacks."""
    names = {name for _, name, _, _ in string.Formatter().parse(template) if name}
    if not names <= ctx.keys():
        return None
    return template.format(**{k: ctx[k] for k in names})


def context(rng: random.Random, profile, gendered: bool) -> dict[str, str]:
    """Placeholder values consistent with the profile; family words are neutral unless `gendered`."""
    labels, male = profile.labels, profile.labels["gender"] == "male"
    ctx = {
        "age": str(profile.age), "year": str(REFERENCE_YEAR - profile.age),
        "grad_year": str(REFERENCE_YEAR + max(0, 18 - profile.age)), "grade": str(min(12, max(7, profile.age - 5))),
        "year_grad": str(REFERENCE_YEAR - profile.age + 22), "study_year": str(rng.randint(1, 4)),
        "k": _NUMBER_WORDS[profile.kids], "n": str(rng.randint(2, 9)), "hobby": rng.choice(vocab.HOBBIES),
        "major": rng.choice(vocab.MAJORS), "school": rng.choice(vocab.SCHOOLS),
        "former_job": rng.choice(vocab.FORMER_JOBS), "pname": rng.choice(vocab.FIRST_NAMES),
    }
    stage = labels["life_stage"]
    if stage.startswith("parent"):
        ctx["parent"] = ("dad" if male else "mom") if gendered else "parent"
    if stage.startswith("parent") or stage == "married_no_children":
        ctx["spouse"] = ("wife" if male else "husband") if gendered else "partner"
        ctx["me_spouse"] = "husband" if male else "wife"
    if stage == "in_relationship":
        ctx["partner"] = ("girlfriend" if male else "boyfriend") if gendered else "partner"
        ctx["me_partner"] = "boyfriend" if male else "girlfriend"
    if labels["age_group"] == "55_plus" and stage == "parent_older_children":
        ctx["grand"] = ("grandpa" if male else "grandma") if gendered else "grandparent"
    return ctx


def _student_templates(profile) -> list[str]:
    if profile.labels["age_group"] == "under_18":
        return ["grade {grade} student", "{grade}th grader, send help", "high schooler 📚", "just a school kid with a phone"]
    return {
        "high_school_or_below": ["adult learner, back at school", "night classes after work"],
        "college": ["studying {major} at a vocational college", "{major} diploma student", "community college, {major}"],
        "bachelor": ["{major} major, year {study_year}", "uni student, {major}", "undergrad at {school}"],
        "postgraduate": ["{major} grad student", "PhD student in {major}", "master's student, {major}"],
    }[profile.labels["education"]]


def explicit_phrase(rng: random.Random, dim: str, label: str, profile, ctx: dict[str, str]) -> str | None:
    """A first-person statement of the label, consistent with the rest of the profile."""
    student = profile.labels["occupation"] == "student" or profile.labels["age_group"] == "under_18"
    if (dim == "occupation" and label == "student") or (dim == "education" and student):
        templates = _student_templates(profile)
    else:
        templates = vocab.POOLS[dim][label]["explicit"]
    options = [text for text in (fill(t, ctx) for t in templates) if text]
    return rng.choice(options) if options else None


def _price(rng: random.Random, base: float, tier: str) -> float:
    return round(base * TIER_PRICE[tier] * math.exp(rng.gauss(0, 0.25)), 2)


class _Account:
    """Collects content per source, skipping missing sources and repeated snippets."""

    def __init__(self, rng: random.Random, missing: list[str], spend_tier):
        self.rng, self.missing, self.spend_tier = rng, set(missing), spend_tier
        self.items: dict[str, list] = {"watched": [], "comments": [], "searches": [], "purchases": [], "follows": []}
        self.bio: list[str] = []
        self.used: set[str] = set()

    def available(self, kind: str) -> bool:
        return _SOURCE_OF[kind] not in self.missing

    def add(self, kind: str, text: str, signal: bool, tier: str | None = None) -> None:
        rng = self.rng
        if kind == "videos":
            words = [w.strip(",.!?:()").lower() for w in text.split()]
            topic_tags = [w for w in words if len(w) > 3 and w.isalpha() and w not in vocab.TAG_STOPWORDS]
            tags = rng.sample(topic_tags, min(2, len(topic_tags)))
            tags += [t for t in rng.sample(vocab.GENERIC_TAGS, rng.randint(1, 2)) if t not in tags]
            title = fill(rng.choice(vocab.TITLE_TEMPLATES), {"t": text, "n": str(rng.randint(2, 30))})
            seconds = rng.randint(25, 240) if signal else rng.randint(3, 90)
            self.items["watched"].append({"title": title, "tags": ["#" + t for t in tags], "watch_seconds": seconds})
        elif kind == "purchases":
            item, base = text.rsplit("@", 1)
            self.items["purchases"].append({"item": item, "price": _price(rng, float(base), tier or self.spend_tier())})
        else:
            self.items[_SOURCE_OF[kind]].append(text)

    def add_cues(self, pool: dict[str, list[str]], n: int, ctx: dict[str, str], tier: str | None = None,
                 kinds: tuple[str, ...] = tuple(SOURCE_WEIGHTS)) -> None:
        """Add up to n distinct cues from a label's pool, spread over the sources it has."""
        kinds = [k for k in kinds if pool.get(k) and self.available(k)]
        for _ in range(n):
            if not kinds:
                return
            kind = self.rng.choices(kinds, weights=[SOURCE_WEIGHTS[k] for k in kinds], k=1)[0]
            fresh = [t for t in pool[kind] if t not in self.used]
            if not fresh:
                continue
            template = self.rng.choice(fresh)
            self.used.add(template)
            text = fill(template, ctx)
            if text is not None:
                self.add(kind, text, signal=True, tier=tier)


def compose_user(rng: random.Random, profile, signals, difficulty: float) -> dict:
    """The account data for one user: nickname, bio, location, device, follows, watched, likes, ..."""
    labels, strength = profile.labels, signals.strength
    spend_known = strength["consumption_level"] != "none"
    true_tier = labels["consumption_level"]

    def spend_tier() -> str:
        return true_tier if spend_known else rng.choice(("low", "medium", "high"))

    account = _Account(rng, signals.missing, spend_tier)
    gendered_ctx = context(rng, profile, gendered=True)
    ctx = gendered_ctx if strength["gender"] != "none" else context(rng, profile, gendered=False)
    for dim in rng.sample(list(strength), len(strength)):
        label, level = labels[dim], strength[dim]
        if level == "none":
            continue
        pool = vocab.POOLS[dim][label]
        if dim == "education" and labels["age_group"] == "under_18":
            pool = vocab.POOLS["age_group"]["under_18"]  # a pupil's schooling shows as school life
        n_implicit = max(1, rng.randint(2, 4) - (rng.random() < difficulty))
        if level == "explicit":
            phrase = explicit_phrase(rng, dim, label, profile, gendered_ctx if dim == "gender" else ctx)
            if phrase and phrase not in account.used:
                account.used.add(phrase)
                if "bio" not in account.missing and (len(account.bio) < 2 or "comments" in account.missing):
                    account.bio.append(phrase)
                elif "comments" not in account.missing:
                    account.items["comments"].append(phrase)
            n_implicit = rng.randint(0, 2)
        account.add_cues(pool, n_implicit, ctx, tier=true_tier if dim == "consumption_level" else None)

    other_ctx = context(rng, signals.other, gendered=True) if signals.other else None
    for dim, wrong in signals.misleading.items():
        n = rng.randint(3, 5) if signals.scenario == "kid_on_parent_phone" else rng.randint(2, 3)
        kinds = ("videos", "searches") if signals.scenario == "kid_on_parent_phone" else tuple(SOURCE_WEIGHTS)
        neutral = {**ctx, "parent": "parent", "spouse": "partner", "partner": "partner"}
        account.add_cues(vocab.POOLS[dim][wrong], n, other_ctx or neutral, tier=wrong if dim == "consumption_level" else None,
                         kinds=kinds)

    n_distractors = rng.randint(7, 11) + round(9 * difficulty)
    for _ in range(n_distractors):
        _add_distractor(rng, account)
    for text in rng.sample(vocab.DISTRACTORS["videos"], 8):
        if len(account.items["watched"]) >= 4:
            break
        if text not in account.used:
            account.used.add(text)
            account.add("videos", text, signal=False)
    return _assemble(rng, profile, signals, account, spend_tier)


def _add_distractor(rng: random.Random, account: _Account) -> None:
    kinds = [k for k in DISTRACTOR_WEIGHTS if account.available(k)]
    kind = rng.choices(kinds, weights=[DISTRACTOR_WEIGHTS[k] for k in kinds], k=1)[0]
    fresh = [t for t in vocab.DISTRACTORS[kind] if t not in account.used]
    if fresh:
        text = rng.choice(fresh)
        account.used.add(text)
        account.add(kind, text, signal=False)


def _assemble(rng: random.Random, profile, signals, account: _Account, spend_tier) -> dict:
    missing = set(signals.missing)
    items = account.items
    for values in items.values():
        rng.shuffle(values)
    year_hint = signals.strength["age_group"] == "implicit" and rng.random() < 0.4
    digits = str(REFERENCE_YEAR - profile.age) if year_hint else str(rng.randint(1, 99))
    first, second = rng.sample(vocab.NICK_WORDS, 2)
    nickname = rng.choice([f"{first}{second}{digits}", f"{first}_{second}", f"{first}.{digits}", f"{first.title()}{second.title()}"])
    bio = list(account.bio)
    if not bio or rng.random() < 0.3:
        bio.append(rng.choice(vocab.DISTRACTORS["bios"]))
    if signals.scenario == "shared_family_account" and rng.random() < 0.4:
        bio.append("family account 👨‍👩‍👧")
    rng.shuffle(bio)
    data: dict = {"nickname": nickname}
    if "bio" not in missing:
        data["bio"] = " · ".join(bio)
    if "location" not in missing:
        data["location"] = rng.choice(vocab.LOCATIONS)
    if "device" not in missing:
        tier = signals.misleading.get("consumption_level") if rng.random() < 0.5 else None
        data["device"] = rng.choice(vocab.DEVICES[tier or spend_tier()])
    for source in ("follows", "watched"):
        if items[source]:
            data[source] = items[source]
    if "likes" not in missing:
        titles = [v["title"] for v in items["watched"]]
        data["likes"] = rng.sample(titles, min(len(titles), rng.randint(1, 4)))
    for source in ("comments", "searches", "purchases"):
        if items[source]:
            data[source] = items[source]
    if "gifts" not in missing:
        gifts = _gifts(rng, spend_tier())
        if gifts:
            data["gifts"] = gifts
    return data


def _gifts(rng: random.Random, tier: str) -> list[dict]:
    count = {"low": rng.randint(0, 1), "medium": rng.randint(0, 2), "high": rng.randint(1, 3)}[tier]
    gifts = []
    for _ in range(count):
        name, coins = rng.choice(vocab.GIFTS[tier])
        gifts.append({"streamer": rng.choice(vocab.STREAMERS), "gift": name, "coins": coins * rng.randint(1, 5)})
    return gifts


def word_count(data: dict) -> int:
    return len(flatten_text(data).split())
