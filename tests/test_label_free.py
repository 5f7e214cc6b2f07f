"""The label-free boundary as an import rule over every label-free module (not a text search of a few files).

Label-free modules may not import a gold loader or the evaluation module, nor name `load_gold`. The
only modules allowed to read gold are evaluation-side and flagged: evaluate.py, report.py, the
gold dev-slice monitor dev_monitor.py, and the data loader that defines `load_gold`.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).parents[1] / "src" / "confprofile"
LABEL_FREE = ["label.py", "answers.py", "render.py", "settings.py", "distill.py", "predict.py", "prompts.py", "cache.py",
              "privacy.py", "profiles.py", "checks.py",
              "aggregate", "teachers", "student", "rl", "scale"]
FORBIDDEN_MODULES = {"confprofile.evaluate", "confprofile.report", "confprofile.dev_monitor"}


def modules() -> list[Path]:
    out = []
    for entry in LABEL_FREE:
        path = ROOT / entry
        out += [path] if path.is_file() else sorted(path.rglob("*.py"))
    return out


def test_every_label_free_module_is_covered():
    covered = {p.relative_to(ROOT).parts[0] for p in modules()}
    assert {"student", "rl", "aggregate", "teachers"} <= covered
    assert ROOT / "student" / "encoder.py" in modules() and ROOT / "rl" / "encoder_policy.py" in modules()
    assert ROOT / "profiles.py" in modules() and ROOT / "scale" / "ray_profiles.py" in modules()


def test_no_label_free_module_imports_gold_or_evaluation():
    for path in modules():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                assert node.module not in FORBIDDEN_MODULES, (path, node.module)
                assert all("gold" not in alias.name for alias in node.names), (path, node.lineno)
            elif isinstance(node, ast.Import):
                assert all(alias.name not in FORBIDDEN_MODULES for alias in node.names), (path, node.lineno)
            elif isinstance(node, ast.Name | ast.Attribute):
                assert "load_gold" not in ast.unparse(node), (path, node.lineno)


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module} | {
        alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}


def test_stage_2_stands_below_prediction_and_evaluation():
    """rl/ trains; predicting and scoring are stages after it, so it imports neither."""
    for path in sorted((ROOT / "rl").rglob("*.py")):
        assert not imported_modules(path) & {"confprofile.predict", "confprofile.evaluate"}, path


def test_no_stage_module_imports_the_command_line():
    """Only cli/ knows typer: the library and `confprofile run` work without the command line."""
    for path in sorted(ROOT.rglob("*.py")):
        if "cli" in path.relative_to(ROOT).parts or path.name == "__main__.py":  # `python -m confprofile`
            continue
        assert not {m for m in imported_modules(path) if m == "typer" or m.startswith("confprofile.cli")}, path
