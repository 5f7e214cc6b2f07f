"""Malformed inputs through the real CLI: exit code 2, exactly one stderr line naming the file, line and
field, no traceback (unless --debug), and no output file left behind.

Each case builds broken files in tmp_path and runs a cheap verb (`label`, `evaluate`, `generate`,
`aggregate`, `run`) in-process through `confprofile.cli.main`; one case runs as a real subprocess to
prove the process exit code.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from confprofile.cli import main

GOOD_USERS = "".join(json.dumps({"user_id": f"u{i}", "data": {"bio": f"bio {i}"}}) + "\n" for i in range(3))
GOOD_GOLD = json.dumps({"user_id": "u0", "labels": {"gender": "female"}}) + "\n"
GOOD_PRED = json.dumps({"user_id": "u0", "dimension": "gender", "label": "female", "confidence": 0.9}) + "\n"
OPENAI = {"name": "remote", "backend": "openai", "model": "m", "params": {"base_url": "http://127.0.0.1:9/v1"}}


def run_cli(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    """`confprofile ARGS` in this process: (exit code, stdout, stderr)."""
    monkeypatch.setattr(sys, "argv", ["confprofile", *args])
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        main()
    out, err = capsys.readouterr()
    code = exit_info.value.code
    return (0 if code is None else code), out, err


@dataclass
class Case:
    name: str
    files: dict[str, str | bytes]  # file name -> content, written under tmp_path
    argv: Callable[[Path], list[str]]  # tmp_path -> arguments
    expect: tuple[str, ...]  # substrings of the one error line (file name, line, field, reason)
    no_output: str | None = None  # a path (under tmp_path) that must not exist afterwards
    may_create: tuple[str, ...] = ()  # files allowed to appear (an empty, valid reply cache)


def label(users="users.jsonl", teachers="teachers.yaml", taxonomy="profilebench", out="answers.parquet"):
    return lambda d: ["label", "--users", str(d / users), "--teachers", str(d / teachers), "--taxonomy", str(d / taxonomy)
                      if taxonomy.endswith(".yaml") else taxonomy, "--out", str(d / out)]


def evaluate(gold="gold.jsonl", pred="pred.jsonl", out="metrics.json"):
    return lambda d: ["evaluate", "--gold", str(d / gold), "--pred", str(d / pred), "--out", str(d / out)]


TEACHERS = {"teachers.yaml": yaml.safe_dump({"teachers": [OPENAI]})}
USERS_T = lambda content: {"users.jsonl": content, **TEACHERS}  # noqa: E731
TWO_MB_BIO = "x" * 2_000_000
ONE_LABEL_TAX = yaml.safe_dump({"dimensions": [{"name": "gender", "labels": [{"name": "female"}]}]})
TWICE_LABEL_TAX = yaml.safe_dump({"dimensions": [{"name": "g", "labels": [{"name": "a"}, {"name": "a"}]}]})
TWICE_DIMENSION_TAX = yaml.safe_dump({"dimensions": [{"name": "g", "labels": [{"name": "a"}, {"name": "b"}]}] * 2})
PIPELINE = lambda **over: yaml.safe_dump({"run_dir": "RUN", **over})  # noqa: E731

CASES = [
    # ---- users
    Case("users: bad JSON", USERS_T(GOOD_USERS + '{"user_id": "u9", "data": {\n'), label(), ("users.jsonl:4", "invalid JSON"), "answers.parquet"),
    Case("users: user_id wrong type", USERS_T('{"user_id": ["a"], "data": {}}\n'), label(), ("users.jsonl:1", "field 'user_id'"), "answers.parquet"),
    Case("users: data wrong type", USERS_T('{"user_id": "a", "data": "bio"}\n'), label(), ("users.jsonl:1", "field 'data'")),
    Case("users: duplicate ids", USERS_T(GOOD_USERS + '{"user_id": "u1", "data": {}}\n'), label(), ("users.jsonl:4", "field 'user_id'", "duplicate")),
    Case("users: bad encoding", USERS_T(GOOD_USERS.encode() + '{"user_id": "é"}\n'.encode("latin-1")), label(), ("users.jsonl:4", "UTF-8")),
    Case("users: empty file", USERS_T(""), label(), ("users.jsonl", "empty")),
    Case("users: missing file", TEACHERS, label(), ("users.jsonl", "file not found"), "answers.parquet"),
    Case("users: a JSON array", USERS_T('[{"user_id": "a", "data": {}}]\n'), label(), ("users.jsonl:1", "expected a JSON object")),
    Case("users: a directory", {"users.jsonl/x": "", **TEACHERS}, label(), ("users.jsonl", "directory")),
    Case("users: truncated 2 MB line", USERS_T(GOOD_USERS + json.dumps({"user_id": "big", "data": {"bio": TWO_MB_BIO}})[:-2] + "\n"),
         label(), ("users.jsonl:4", "invalid JSON")),
    Case("users: CSV without user_id", {"users.csv": "id,bio\n1,hi\n", **TEACHERS}, label("users.csv"), ("users.csv:1", "field 'user_id'")),
    Case("users: CSV ragged row", {"users.csv": "user_id,bio\n1,hi\n2,a,b\n", **TEACHERS}, label("users.csv"), ("users.csv:3", "more cells")),
    Case("users: corrupt Parquet", {"users.parquet": b"PAR1 not really", **TEACHERS}, label("users.parquet"), ("users.parquet", "Parquet")),
    Case("users: unknown file type", {"users.txt": "hello", **TEACHERS}, label("users.txt"), ("users.txt", "unknown file type")),
    # ---- taxonomy
    Case("taxonomy: invalid YAML", {"tax.yaml": "dimensions: [\n  - {name: a\n", **USERS_T(GOOD_USERS)}, label(taxonomy="tax.yaml"), ("tax.yaml", "invalid YAML")),
    Case("taxonomy: one label", {"tax.yaml": ONE_LABEL_TAX, **USERS_T(GOOD_USERS)}, label(taxonomy="tax.yaml"), ("tax.yaml", "field 'dimensions.0'", "two labels")),
    Case("taxonomy: unknown built-in", USERS_T(GOOD_USERS), label(taxonomy="no_such_taxonomy"), ("no_such_taxonomy", "field 'taxonomy'")),
    Case("taxonomy: a label listed twice", {"tax.yaml": TWICE_LABEL_TAX, **USERS_T(GOOD_USERS)}, label(taxonomy="tax.yaml"),
         ("tax.yaml", "field 'dimensions.0'", "more than once")),
    Case("taxonomy: a dimension listed twice", {"tax.yaml": TWICE_DIMENSION_TAX, **USERS_T(GOOD_USERS)}, label(taxonomy="tax.yaml"),
         ("tax.yaml", "duplicate dimension")),
    Case("taxonomy: not a mapping", {"tax.yaml": "- a\n- b\n", **USERS_T(GOOD_USERS)}, label(taxonomy="tax.yaml"), ("tax.yaml", "dimensions")),
    # ---- teachers
    Case("teachers: unknown backend", {"users.jsonl": GOOD_USERS, "teachers.yaml": yaml.safe_dump({"teachers": [{**OPENAI, "backend": "gpt"}]})},
         label(), ("teachers.yaml", "field 'teachers.0.backend'", "unknown backend")),
    Case("teachers: missing name", {"users.jsonl": GOOD_USERS, "teachers.yaml": yaml.safe_dump({"teachers": [{"backend": "openai"}]})},
         label(), ("teachers.yaml", "field 'teachers.0.name'")),
    Case("teachers: wrong type", {"users.jsonl": GOOD_USERS, "teachers.yaml": yaml.safe_dump({"teachers": [{**OPENAI, "samples": "many"}]})},
         label(), ("teachers.yaml", "field 'teachers.0.samples'")),
    Case("teachers: duplicate names", {"users.jsonl": GOOD_USERS, "teachers.yaml": yaml.safe_dump({"teachers": [OPENAI, OPENAI]})},
         label(), ("teachers.yaml", "duplicate teacher names")),
    Case("teachers: empty file", {"users.jsonl": GOOD_USERS, "teachers.yaml": ""}, label(), ("teachers.yaml", "field 'teachers'")),
    Case("teachers: API key variable unset", {"users.jsonl": GOOD_USERS, "teachers.yaml": yaml.safe_dump(
        {"teachers": [{**OPENAI, "params": {"api_key_env": "CONFPROFILE_UNSET_KEY_VAR"}}]})}, label(),
         ("field 'remote.params.api_key_env'", "CONFPROFILE_UNSET_KEY_VAR"), "answers.parquet", ("answers.cache.sqlite",)),
    # ---- gold and predictions (evaluate)
    Case("gold: unknown label", {"gold.jsonl": GOOD_GOLD + json.dumps({"user_id": "u1", "labels": {"gender": "robot"}}) + "\n", "pred.jsonl": GOOD_PRED},
         evaluate(), ("gold.jsonl:2", "field 'labels.gender'", "robot"), "metrics.json"),
    Case("gold: unknown dimension", {"gold.jsonl": json.dumps({"user_id": "u1", "labels": {"shoe_size": "44"}}) + "\n", "pred.jsonl": GOOD_PRED},
         evaluate(), ("gold.jsonl:1", "field 'labels.shoe_size'")),
    Case("gold: labels wrong type", {"gold.jsonl": json.dumps({"user_id": "u1", "labels": ["female"]}) + "\n", "pred.jsonl": GOOD_PRED},
         evaluate(), ("gold.jsonl:1", "field 'labels'")),
    Case("gold: duplicate ids", {"gold.jsonl": GOOD_GOLD * 2, "pred.jsonl": GOOD_PRED}, evaluate(), ("gold.jsonl:2", "field 'user_id'")),
    Case("predictions: confidence out of range", {"gold.jsonl": GOOD_GOLD, "pred.jsonl": GOOD_PRED.replace("0.9", "1.5")},
         evaluate(), ("pred.jsonl:1", "field 'confidence'"), "metrics.json"),
    Case("predictions: duplicate rows", {"gold.jsonl": GOOD_GOLD, "pred.jsonl": GOOD_PRED * 2}, evaluate(), ("pred.jsonl:2", "field 'user_id'")),
    Case("predictions: missing Parquet", {"gold.jsonl": GOOD_GOLD}, evaluate(pred="pred.parquet"), ("pred.parquet", "file not found")),
    # ---- pipeline config (run)
    Case("pipeline: unknown key", {"p.yaml": PIPELINE(epochs=3)}, lambda d: ["run", str(d / "p.yaml")], ("p.yaml", "field 'epochs'"), "RUN"),
    Case("pipeline: wrong type", {"p.yaml": PIPELINE(seed="abc")}, lambda d: ["run", str(d / "p.yaml")], ("p.yaml", "field 'seed'"), "RUN"),
    Case("pipeline: invalid YAML", {"p.yaml": "run_dir: [x\n"}, lambda d: ["run", str(d / "p.yaml")], ("p.yaml", "invalid YAML"), "RUN"),
    Case("pipeline: unknown teacher backend", {"p.yaml": PIPELINE(teachers=[{**OPENAI, "backend": "gpt"}])},
         lambda d: ["run", str(d / "p.yaml")], ("p.yaml", "field 'teachers.0.backend'"), "RUN"),
    Case("pipeline: missing config", {}, lambda d: ["run", str(d / "p.yaml")], ("p.yaml", "file not found")),
    # ---- aggregate
    Case("answers: not Parquet", {"answers.parquet": "user_id,label\n"}, lambda d: ["aggregate", "--answers", str(d / "answers.parquet"),
         "--out", str(d / "pseudo.parquet")], ("answers.parquet", "Parquet"), "pseudo.parquet"),
    Case("answers: unknown method", {}, lambda d: ["aggregate", "--answers", str(d / "a.parquet"), "--method", "vibes"], ("field '--method'", "vibes")),
    # ---- unwritable outputs (a path under a regular file: fails even for root)
    Case("generate: unwritable --out", {"file": "x"}, lambda d: ["generate", "--users", "3", "--out", str(d / "file" / "split")], ("file",)),
    Case("evaluate: unwritable --out", {"gold.jsonl": GOOD_GOLD, "pred.jsonl": GOOD_PRED, "file": "x"}, evaluate(out="file/metrics.json"), ("file",)),
    Case("label: unwritable --out", {"file": "x", **USERS_T(GOOD_USERS)}, label(out="file/answers.parquet"), ("file",)),
]


def _write(root: Path, files: dict[str, str | bytes]) -> None:
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_malformed_input_is_one_line_exit_2(case, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # relative run_dir "RUN" lands here
    _write(tmp_path, case.files)
    before = {p for p in tmp_path.rglob("*")}
    code, out, err = run_cli(monkeypatch, capsys, *case.argv(tmp_path))
    lines = err.strip().splitlines()
    assert code == 2, (code, out, err)
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err + out
    for part in case.expect:
        assert part in lines[0], (part, lines[0])
    created = {p.name for p in tmp_path.rglob("*")} - {p.name for p in before}
    assert created <= set(case.may_create), f"an output was (half-)written: {created}"
    if case.no_output:
        assert not (tmp_path / case.no_output).exists()


def test_enough_cases():
    assert len(CASES) >= 20


def test_a_valid_2_mb_line_loads(tmp_path):
    from confprofile.data import load_users
    from confprofile.render import render_user

    path = tmp_path / "users.jsonl"
    path.write_text(GOOD_USERS + json.dumps({"user_id": "big", "data": {"bio": TWO_MB_BIO, "comments": ["hi"] * 1000}}) + "\n")
    users = load_users(path)
    assert len(users) == 4 and len(users[-1].data["bio"]) == 2_000_000
    assert len(render_user(users[-1], 512)) < 4_000  # rendered within the token budget, not the whole 2 MB


def test_debug_shows_the_traceback(tmp_path, monkeypatch, capsys):
    from confprofile.errors import InputError

    _write(tmp_path, USERS_T('{"user_id": "a", "data": "bio"}\n'))
    monkeypatch.setattr(sys, "argv", ["confprofile", "--debug", *label()(tmp_path)])
    with pytest.raises(InputError, match="field 'data'"):
        main()


def test_real_process_exit_code_and_no_traceback(tmp_path):
    _write(tmp_path, USERS_T(GOOD_USERS + "{oops\n"))
    done = subprocess.run([sys.executable, "-m", "confprofile", *label()(tmp_path)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [f"error: {tmp_path / 'users.jsonl'}:4: invalid JSON: Expecting property name "
                                                "enclosed in double quotes at column 2"]
    assert "Traceback" not in done.stderr and not (tmp_path / "answers.parquet").exists()
