"""Atomic folders: a crash while writing a model leaves the old one (and its neighbours) as they were."""

from __future__ import annotations

import pytest

from confprofile.files import staged_dir


def test_staged_dir_replaces_whole_or_merges_and_a_crash_changes_nothing(tmp_path):
    target = tmp_path / "model"
    target.mkdir()
    (target / "weights.bin").write_text("old")
    (target / "checkpoints").mkdir()
    with pytest.raises(RuntimeError):
        with staged_dir(target) as staged:
            (staged / "weights.bin").write_text("half")
            raise RuntimeError("killed mid-save")
    assert (target / "weights.bin").read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["model"]
    with staged_dir(target, merge=True) as staged:
        (staged / "weights.bin").write_text("new")
    assert (target / "weights.bin").read_text() == "new" and (target / "checkpoints").is_dir()  # neighbours stay
    with staged_dir(target) as staged:
        (staged / "config.json").write_text("{}")
    assert sorted(p.name for p in target.iterdir()) == ["config.json"]  # replaced whole
