"""Where a service that runs as another user keeps its files: decided once, the same on every later run."""

from __future__ import annotations

from pathlib import Path

import pytest

from tapewatch.infra import common


@pytest.fixture
def fallback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "fallback"
    monkeypatch.setattr(common, "FALLBACK_ROOT", root)
    monkeypatch.setattr(common, "is_root", lambda: True)
    return root


def test_a_private_var_dir_falls_back_and_the_choice_sticks(tmp_path: Path, fallback: Path) -> None:
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    var_dir = private / "var"
    home = common.service_home(var_dir, "elasticsearch", "svc")
    assert home.parent.parent == fallback
    home.mkdir(parents=True)
    # the var dir becomes reachable later (or the answer would differ for another reason): the home stays
    private.chmod(0o755)
    assert common.service_home(var_dir, "elasticsearch", "svc") == home


def test_a_reachable_var_dir_is_used_and_kept(tmp_path: Path, fallback: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    var_dir = tmp_path / "var"
    monkeypatch.setattr(common, "traversable_by", lambda user, path: True)
    home = common.service_home(var_dir, "postgres", "svc")
    assert home == var_dir / "postgres"
    home.mkdir()
    monkeypatch.setattr(common, "traversable_by", lambda user, path: False)
    assert common.service_home(var_dir, "postgres", "svc") == home


def test_traversal_is_read_from_permission_bits(tmp_path: Path, fallback: Path) -> None:
    inner = tmp_path / "a" / "b"
    inner.mkdir(parents=True)
    for p in (tmp_path, tmp_path / "a", inner):
        p.chmod(0o755)
    assert common.traversable_by("svc", inner) is (all(p.stat().st_mode & 0o001 for p in inner.parents))
    (tmp_path / "a").chmod(0o750)
    assert not common.traversable_by("svc", inner)
