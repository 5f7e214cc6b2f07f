"""The data stage: a users file (and, optionally, gold for some of them) -> the run's three user sets.

    train/users.jsonl      the users the teachers label (a seeded sample of at most `label.max_users`)
                           and the students learn from
    test/users.jsonl       held-out users (`data.holdout`; by default the users that have gold): labelled
                           by the teachers so that every stage is measured on them, never trained on
    unlabeled/users.jsonl  every other user, plus `data.unlabeled_users`: no teacher cost; the student's
                           vocabulary and stage 2's pool
    train/gold.jsonl, test/gold.jsonl   the gold of each set, read only by the flagged supervised
                           reference and by evaluate

Only `data.users` is required; every user of every set gets a profile (profiles.parquet).
"""

from __future__ import annotations

import random
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

from confprofile.data import iter_users, read_jsonl
from confprofile.errors import InputError
from confprofile.files import atomic_write_jsonl

SPLITS = ("train", "test", "unlabeled")


class GenerateConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    train_users: int = Field(300, ge=2, description="Synthetic training users (label-free).")
    test_users: int = Field(150, ge=2, description="Synthetic test users (evaluation only).")
    unlabeled_users: int = Field(0, ge=0, description="Synthetic users no teacher labels: stage 2's extra pool (free of teacher cost).")
    train_seed: int = 1
    test_seed: int = 2
    unlabeled_seed: int = 3
    difficulty: float = Field(0.5, ge=0.0, le=1.0)


class DataConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    users: str | None = Field(None, description="Every user to profile: JSONL, CSV or Parquet (no labels). The only required input.")
    gold: str | None = Field(None, description="gold.jsonl for any subset of the users: read by evaluate and the flagged supervised reference only.")
    holdout: float | str | None = Field(None, description="Users kept out of every training stage so that evaluation is fair: a fraction "
                                        "(drawn from the users with gold when there is gold) or a users file. Default: the users with gold.")
    unlabeled_users: str | None = Field(None, description="More users no teacher labels: the student's features and stage 2 learn from them.")
    generate: GenerateConfig | None = Field(None, description="Generate a synthetic ProfileBench split (with gold) instead of files.")
    train_users: str | None = Field(None, description="An explicit split instead of `users`: the users the teachers label.")
    test_users: str | None = Field(None, description="With `train_users`: the held-out users.")
    test_gold: str | None = Field(None, description="With `train_users`: gold of the test users (evaluate only).")
    train_gold: str | None = Field(None, description="With `train_users`: gold of the train users (supervised reference only).")

    @model_validator(mode="after")
    def _one_source(self) -> "DataConfig":
        explicit = [name for name in ("train_users", "test_users", "test_gold", "train_gold") if getattr(self, name)]
        if self.users and explicit:
            raise ValueError(f"data.users replaces {', '.join('data.' + n for n in explicit)}: put every user in data.users, "
                             "the gold in data.gold and the held-out users in data.holdout")
        if isinstance(self.holdout, float) and not 0.0 <= self.holdout < 1.0:
            raise ValueError("data.holdout must be a fraction in [0, 1) or a users file")
        return self


class LabelConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    max_users: int | float | None = Field(None, gt=0, description="How many users the teachers label (a count, or a fraction "
                                          "of the users outside the holdout); the rest are profiled by the student alone. None = all.")
    sample_seed: int = Field(0, description="Seed of the sample the teachers label.")


def assign_splits(user_ids: list[str], gold_ids: set[str], holdout: float | set[str] | None,
                  max_users: int | float | None, seed: int) -> dict[str, list[str]]:
    """{train, test, unlabeled: user ids}, each in file order: a pure, seeded function of its inputs."""
    rng = random.Random(seed)
    if holdout is None:
        held = set(gold_ids)
    elif isinstance(holdout, float):
        candidates = [u for u in user_ids if u in gold_ids] if gold_ids else list(user_ids)
        held = set(rng.sample(candidates, round(holdout * len(candidates))))
    else:
        held = set(holdout)
    rest = [u for u in user_ids if u not in held]
    cap = len(rest) if max_users is None else (round(max_users * len(rest)) if isinstance(max_users, float) else int(max_users))
    labelled = set(rng.sample(rest, min(cap, len(rest))))
    return {"train": [u for u in rest if u in labelled], "test": [u for u in user_ids if u in held],
            "unlabeled": [u for u in rest if u not in labelled]}


def _holdout_ids(holdout: float | str | None) -> float | set[str] | None:
    if holdout is None or isinstance(holdout, float):
        return holdout
    return {user.user_id for user in iter_users(holdout)}


def _gold_rows(path: str | Path | None) -> dict[str, dict]:
    return {str(row.get("user_id")): row for _, row in read_jsonl(path)} if path is not None else {}


def _from_users_file(data: DataConfig, label: LabelConfig) -> dict[str, list[dict]]:
    users = [u.model_dump() for u in iter_users(data.users)]
    gold = _gold_rows(data.gold)
    ids = [u["user_id"] for u in users]
    splits = assign_splits(ids, set(gold) & set(ids), _holdout_ids(data.holdout), label.max_users, label.sample_seed)
    if not splits["train"]:
        raise InputError(data.users, None, "data.holdout", "holds out every user, so no teacher labels anyone; "
                         "set data.holdout to a fraction (e.g. 0.3) or give gold for a subset only")
    by_id = {u["user_id"]: u for u in users}
    return {split: [by_id[u] for u in splits[split]] for split in SPLITS} | {"gold": list(gold.values())}


def _from_split(data: DataConfig, label: LabelConfig) -> dict[str, list[dict]]:
    """A generated split, or the explicit `train_users` / `test_users` files; `label.max_users` moves the
    train users beyond the cap to the unlabeled set."""
    if data.generate is not None:
        from confprofile.bench.profilebench import generate

        g = data.generate
        train, train_gold = generate(g.train_users, g.train_seed, g.difficulty)
        test, test_gold = generate(g.test_users, g.test_seed, g.difficulty)
        unlabeled = generate(g.unlabeled_users, g.unlabeled_seed, g.difficulty)[0] if g.unlabeled_users else []  # gold never written
        gold = train_gold + test_gold
    else:
        train = [u.model_dump() for u in iter_users(data.train_users)]
        test = [u.model_dump() for u in iter_users(data.test_users)] if data.test_users else []
        gold = list(_gold_rows(data.train_gold).values()) + list(_gold_rows(data.test_gold).values())
        unlabeled = []
    ids = [u["user_id"] for u in train]
    kept = set(assign_splits(ids, set(), set(), label.max_users, label.sample_seed)["train"])
    return {"train": [u for u in train if u["user_id"] in kept], "test": test,
            "unlabeled": [u for u in train if u["user_id"] not in kept] + unlabeled, "gold": gold}


def write_data(run_dir: Path, data: DataConfig, label: LabelConfig) -> list[str]:
    """Write the run's train / test / unlabeled users and their gold; returns the files written."""
    if data.users is not None:
        sets = _from_users_file(data, label)
    elif data.generate is not None or data.train_users is not None:
        sets = _from_split(data, label)
    else:
        raise InputError(None, None, "data.users", "is required: a users file (JSONL, CSV or Parquet), "
                         "or data.generate for a synthetic set")
    if data.unlabeled_users is not None:
        sets["unlabeled"] += [u.model_dump() for u in iter_users(data.unlabeled_users)]
    gold = {str(row["user_id"]): row for row in sets["gold"]}
    outputs = []
    for split in SPLITS:
        if not sets[split]:
            continue
        atomic_write_jsonl(run_dir / f"{split}/users.jsonl", sets[split])
        outputs.append(f"{split}/users.jsonl")
        split_gold = [gold[u["user_id"]] for u in sets[split] if u["user_id"] in gold]
        if split_gold and split != "unlabeled":  # an unlabeled user's gold is never written
            atomic_write_jsonl(run_dir / f"{split}/gold.jsonl", split_gold)
            outputs.append(f"{split}/gold.jsonl")
    return outputs


def split_sizes(run_dir: Path) -> dict[str, int]:
    """Users per set of a run directory (0 for a set it does not have)."""
    def count(path: Path) -> int:
        with open(path, encoding="utf-8") as handle:
            return sum(1 for line in handle if line.strip())

    return {split: count(run_dir / f"{split}/users.jsonl") if (run_dir / f"{split}/users.jsonl").exists() else 0
            for split in SPLITS}
