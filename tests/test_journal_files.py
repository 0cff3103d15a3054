"""The SQLite journal's files: a new journal (and its ``-wal`` and ``-shm``) is readable and
writable by its owner only, as a state file is (docs/persistence.md), also through a symlink; an
existing file keeps its mode; anything but a regular file is refused before SQLite opens it."""

from __future__ import annotations

import os
import stat
import subprocess
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


def test_a_journal_reached_through_a_symlink_is_created_owner_only(tmp_path: Path) -> None:
    """The journal kept on a data volume, reached through a link: SQLite created the link's
    target with the umask's mode (0644, and the -wal and -shm with it) — the owner-only creation
    did not follow the link and its error was dropped (found by an audit on 2026-12-07)."""
    data = tmp_path / "data"
    data.mkdir()
    (tmp_path / "j.db").symlink_to(data / "j.db")
    old = os.umask(0o022)
    try:
        pm = PositionManager(FakeExchange(), journal=str(tmp_path / "j.db"), account="bot")
    finally:
        os.umask(old)
    assert pm.journal_checkpoint() is True
    assert (tmp_path / "j.db").is_symlink()
    files = [data / "j.db", data / "j.db-wal", data / "j.db-shm"]
    assert {f.name: mode(f) for f in files} == {f.name: 0o600 for f in files}


FIFO_JOURNAL = """
import sys
from position_manager_rs import Journal, PositionManager
for make in (Journal, lambda path: PositionManager(object(), journal=path)):
    try:
        make(sys.argv[1])
        print("opened")
    except Exception as e:
        print(type(e).__name__, e)
"""


def test_a_fifo_is_refused_as_a_journal_without_waiting(tmp_path: Path) -> None:
    """``Journal(fifo)`` waited for a writer for ever, and Ctrl+C did not end it; the manager
    said "disk I/O error" (found by an audit on 2026-12-07). Both refuse it at once, naming it
    (run in a child: a hang fails the test at the timeout rather than holding it)."""
    fifo = tmp_path / "journal.db"
    os.mkfifo(fifo)
    link = tmp_path / "link.db"
    link.symlink_to(fifo)
    for path in (fifo, link):
        done = subprocess.run(
            [sys.executable, "-c", FIFO_JOURNAL, str(path)],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.splitlines() == [
            f"JournalError no journal at {path}: it is a FIFO, not a regular file",
            f"JournalError cannot open the journal {path}: it is a FIFO, not a regular file",
        ], done.stdout


@pytest.mark.parametrize("how", ["deleted", "replaced", "moved"])
def test_a_journal_file_taken_away_under_a_running_manager_fails_loudly(
    tmp_path: Path, how: str, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A journal file deleted, replaced or moved while the manager writes to it: the writes went
    on into the file no path names any more, ``journal_checkpoint()`` said True and a restart
    found nothing (found by an audit). Now every write fails, loudly: the journal reports itself
    failing, and an open is not sent without its order row; a relative path still names its
    file after a change of working directory."""
    import logging

    from position_manager_rs import Position

    monkeypatch.chdir(tmp_path)
    client = FakeExchange()
    pm = PositionManager(client, journal="journal.db", account="bot")
    pm.positions["BTC/USDT:USDT"] = Position("BTC/USDT:USDT", "long", 100, 1, 10, 95, 110)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert pm.journal_checkpoint() is True  # the relative path is the file it opened

    path = tmp_path / "journal.db"
    if how == "deleted":
        path.unlink()
    elif how == "replaced":
        path.unlink()
        path.write_bytes(b"")
    else:
        path.rename(tmp_path / "journal-old.db")
    with caplog.at_level(logging.WARNING, logger="TradingBot"):
        pm.positions["ETH/USDT:USDT"] = Position("ETH/USDT:USDT", "long", 10, 1, 10, 9, 11)
        assert pm.journal_checkpoint() is False
        assert not pm.open_position("SOL/USDT:USDT", "BUY", 1, 10, 0.05)
    status = pm.journal_status
    assert status is not None and status["failing"] is True
    failed = [e for e in pm.events if e["kind"] == "journal_failed"]
    phrase = "was replaced by another file" if how == "replaced" else "was deleted or moved away"
    assert len(failed) == 1 and f"the journal file {path} {phrase}" in failed[0]["reason"]
    assert not [c for c in client.calls if c[0] == "create_market_order"], "nothing sent"
    assert any("nothing was sent" in r.getMessage() for r in caplog.records)
