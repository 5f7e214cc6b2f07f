"""Shared by the quality benchmarks: a development set's users, gold and taxonomy, and the answers of a
teacher panel on them, cached so that reruns cost nothing.

Sets: `synthetic-<seed>` (ProfileBench, generated) and the real development sets read from
`../shared/datasets/<name>` (users.jsonl, gold.jsonl, taxonomy.yaml); the project ships none of that
data. A real set is sampled by a seeded shuffle to `n_users`.

Gold is read here for evaluation only: the answers and everything fitted on them never see it.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pandas as pd

from confprofile.bench.profilebench import generate
from confprofile.data import UserRecord, load_gold, load_users
from confprofile.pipeline import PipelineConfig, demo_config_path
from confprofile.label import label_users
from confprofile.taxonomy import Taxonomy
from confprofile.teachers.base import TeacherConfig

DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"
# SmolLM2-135M in score mode, as configs/demo_llm.yaml runs it: the packaged LLM teacher
SMOLLM2 = {"name": "smollm2", "backend": "smollm2", "model": "smollm2", "prompt_variant": "student",
           "temperature": 0.0, "max_user_tokens": 128}


PANELS = ("demo", "packaged", "refined", "self-trained")


def panel(name: str, refine_iterations: int = 10, refine_anchor: float = 0.9) -> list[TeacherConfig]:
    """`demo`: the demo's packaged teachers; `packaged`: those and SmolLM2 (every packaged teacher);
    `refined`: `packaged` with each embedding teacher's prototypes fitted to the users (`<name>+refine`);
    `self-trained`: the same with a self-trained head on top (`<name>+refine+head`)."""
    teachers = list(PipelineConfig.from_yaml(demo_config_path()).teachers)
    if name == "demo":
        return teachers
    packaged = teachers + [TeacherConfig(**SMOLLM2)]
    if name == "packaged":
        return packaged
    fitted = refined(packaged, refine_iterations, refine_anchor, head=name == "self-trained")
    return [t for t in packaged if t.backend != "embedding"] + fitted


def fitted_params(iterations: int = 10, anchor: float = 0.9, head: bool = False) -> dict:
    """The embedding teacher's params that fit it to the users: refined prototypes, and with `head` a self-trained head."""
    return {"refine_iterations": iterations, "refine_anchor": anchor, **({"refine_head": True} if head else {})}


def refined(teachers: list[TeacherConfig], iterations: int, anchor: float, head: bool = False) -> list[TeacherConfig]:
    """Each embedding teacher again, with its prototypes fitted to the users (`<name>+refine`), and with
    `head` a self-trained head on top (`<name>+refine+head`)."""
    suffix = "+refine+head" if head else "+refine"
    return [t.model_copy(update={"name": f"{t.name}{suffix}", "params": {**t.params, **fitted_params(iterations, anchor, head)}})
            for t in teachers if t.backend == "embedding"]


def load_set(name: str, n_users: int, datasets: Path = DATASETS, split_seed: int = 0):
    """(users, {user_id: {dimension: label}}, taxonomy), or None when a real set is missing."""
    if name.startswith("synthetic"):
        seed = int(name.partition("-")[2] or 0)
        raw_users, raw_gold = generate(n_users, 100 + seed, 0.5)
        return [UserRecord(**u) for u in raw_users], {g["user_id"]: g["labels"] for g in raw_gold}, Taxonomy.load("profilebench")
    source = Path(datasets) / name
    if not (source / "users.jsonl").exists():
        print(f"{name}: {source} not found, skipped")
        return None
    taxonomy = Taxonomy.load(source / "taxonomy.yaml")
    users = load_users(source / "users.jsonl")
    random.Random(split_seed).shuffle(users)
    users = users[:n_users]
    wanted = {u.user_id for u in users}
    gold = {u: labels for u, labels in load_gold(source / "gold.jsonl", taxonomy).items() if u in wanted}
    return users, gold, taxonomy


def population_shares(set_name: str, gold: dict, taxonomy: Taxonomy, datasets: Path) -> dict[str, dict[str, float]]:
    """{dimension: {label: share}} over a population: a real set's whole gold file (not only the sampled
    users: a census), else `gold` itself (a synthetic set's generated users)."""
    source = Path(datasets) / set_name / "gold.jsonl"
    population = load_gold(source, taxonomy) if source.exists() else gold
    shares = {}
    for dim in taxonomy.dimension_names:
        labels = [g[dim] for g in population.values() if dim in g]
        shares[dim] = {label: labels.count(label) / len(labels) for label in taxonomy.dimension(dim).label_names}
    return shares


def panel_answers(set_name: str, users, taxonomy: Taxonomy, teachers: list[TeacherConfig], work: Path) -> pd.DataFrame:
    """Answers of `teachers` on `users`, through one reply cache per set (`work/<set>/cache.sqlite`):
    a rerun, or a second benchmark on the same set, reads the cache instead of the teachers."""
    folder = Path(work) / set_name
    folder.mkdir(parents=True, exist_ok=True)
    answers = label_users(users, taxonomy, teachers, folder / "cache.sqlite")
    (folder / "users.txt").write_text(json.dumps(sorted(u.user_id for u in users)))
    return answers


def add_set_arguments(parser, sets_help: str = "synthetic, blogs, pan19") -> None:
    """The options every quality benchmark over these sets takes."""
    parser.add_argument("--sets", nargs="+", default=["synthetic", "blogs", "pan19"], help=sets_help)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2], help="synthetic seeds")
    parser.add_argument("--users", type=int, default=1000, help="users sampled from a real set")
    parser.add_argument("--synthetic-users", type=int, default=600)
    parser.add_argument("--work", type=Path, default=Path("/tmp/confprofile-answers"), help="reply caches (resumable)")
    parser.add_argument("--datasets", type=Path, default=DATASETS)


def loaded_sets(name: str, args):
    """(set name, (users, gold, taxonomy)) of each run of set `name`: one per synthetic seed, one for a
    real set; a missing real set yields nothing."""
    synthetic = name == "synthetic"
    for set_name in [f"synthetic-{s}" for s in args.seeds] if synthetic else [name]:
        loaded = load_set(set_name, args.synthetic_users if synthetic else args.users, args.datasets)
        if loaded is not None:
            yield set_name, loaded

