"""The SQLite journal's files: a new journal (and its ``-wal`` and ``-shm``) is readable and
writable by its owner only, as a state file is (docs/persistence.md); an existing file keeps its
mode."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import pytest
from helpers_clients import FakeExchange

from position_manager_rs import PositionManager

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX permission bits")


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_journal_and_its_wal_and_shm_are_owner_only_an_existing_one_keeps_its_mode(
    tmp_path: Path,
) -> None:
    path = tmp_path / "journal.db"
    old = os.umask(0o022)
    try:
        pm = PositionManager(FakeExchange(), journal=str(path), account="bot")
    finally:
        os.umask(old)
    assert pm.journal_checkpoint() is True
    files = [path, Path(f"{path}-wal"), Path(f"{path}-shm")]
    assert {f.name: mode(f) for f in files} == {f.name: 0o600 for f in files}

    del pm
    # An existing file keeps its mode (the owner's choice).
    path.chmod(0o640)  # the last connection's close removed -wal and -shm
    again = PositionManager(FakeExchange(), journal=str(path), account="bot")
    assert again.journal_checkpoint() is True
    assert mode(path) == 0o640
