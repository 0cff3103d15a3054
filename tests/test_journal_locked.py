"""A journal another process holds locked (an SQLite write lock held by someone else: a backup
tool, a long transaction in a shell, another program).

- An order that adds exposure (an open, a scale-in) is not sent when its order row cannot be
  written: a process killed after sending it would leave the restart nothing to stop a second
  order (DESIGN rule 7). An order that only reduces (a close) goes out anyway, logged as not
  journaled: a stop never waits for a database.
- An outage costs one bounded wait (5 s), not one per write: once a write failed, the later
  writes of the outage (the cycle's other events, the ``journal_failed`` event's own write, an
  open's order row) barely wait; ``journal_status`` never waits behind a write.

The lock is held by another process (``LOCKER``: Python's own sqlite3, ``BEGIN IMMEDIATE``)
until the test tells it to let go, or for at most ``HOLD`` seconds.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from file_venue import FileVenue
from test_journal_crash import read_until
from test_orders_in_flight import LaggingClient

from position_manager_rs import Journal, PositionManager

BTC = "BTC/USDT:USDT"
CHILD = Path(__file__).with_name("journal_locked_child.py")
TIMEOUT = 200.0
HOLD = 200.0
LOCKER = """
import sqlite3, sys, select
db = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=60)
db.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
select.select([sys.stdin], [], [], float(sys.argv[2]))
db.execute("ROLLBACK")
"""

pytestmark = [
    pytest.mark.skipif(
        sys.platform == "win32" or not hasattr(signal, "SIGKILL"), reason="needs POSIX SIGKILL"
    ),
    pytest.mark.timeout(400),
]


@contextmanager
def locked(path: Path) -> Iterator[None]:
    """Another process holds the SQLite write lock of ``path`` while the block runs."""
    locker = subprocess.Popen(
        [sys.executable, "-c", LOCKER, str(path), str(HOLD)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    try:
        assert locker.stdout is not None
        buf = bytearray()
        read_until(locker.stdout.fileno(), buf, lambda b: b"locked\n" in b, TIMEOUT)
        assert b"locked\n" in buf
        yield
    finally:
        assert locker.stdin is not None
        locker.stdin.close()
        try:
            locker.wait(TIMEOUT)
        finally:
            if locker.poll() is None:
                locker.kill()
                locker.wait(TIMEOUT)


def messages(caplog: pytest.LogCaptureFixture, level: int) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == level]


def test_an_open_whose_row_cannot_be_written_is_not_sent_and_a_restart_sends_it_once(
    tmp_path: Path,
) -> None:
    """The auditor's t04: the bot opens while the journal is locked and is killed; restarted,
    with a list that lags any fill, it opens again. The venue must end with one order."""
    journal = tmp_path / "journal.db"
    venue_file = tmp_path / "venue.json"
    venue = FileVenue(venue_file)
    with (tmp_path / "child.err").open("wb") as err:
        child = subprocess.Popen(
            [sys.executable, str(CHILD), str(journal), "bot", str(venue_file)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=err,
        )
    buf = bytearray()
    try:
        assert child.stdout is not None and child.stdin is not None
        read_until(child.stdout.fileno(), buf, lambda b: b"ready\n" in b, TIMEOUT)
        with locked(journal):
            child.stdin.write(b"go\n")
            child.stdin.flush()
            read_until(
                child.stdout.fileno(),
                buf,
                lambda b: b"sent\n" in b or b"returned" in b,
                TIMEOUT,
            )
            # Killed at once, its order out or not, as a bot stopped mid-call.
            child.send_signal(signal.SIGKILL)
            child.wait(TIMEOUT)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(TIMEOUT)
    assert b"returned False" in buf, (buf, (tmp_path / "child.err").read_text())
    assert venue.orders == 0, "nothing was sent without its row"
    assert Journal(str(journal)).orders_in_flight("bot") == [], "no row of an unsent order"

    client = LaggingClient(venue, [], lagging=True)
    pm = PositionManager(client, journal=str(journal), account="bot")
    pm.sync_existing_positions()
    assert pm.open_position(BTC, "BUY", 2, 5, 0.1) is True
    assert pm.open_position(BTC, "BUY", 2, 5, 0.1) is False, "the second open is refused"
    assert client.sent == [f"buy {BTC} 2.0"]
    assert venue.orders == 1
    [held] = venue.positions()
    assert held["contracts"] == 2.0


def test_an_open_refused_for_its_row_logs_why_and_a_close_still_goes_out(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    journal = tmp_path / "journal.db"
    venue = FileVenue(tmp_path / "venue.json")
    client = LaggingClient(venue, [], lagging=False)
    pm = PositionManager(client, journal=str(journal), account="bot")
    assert pm.open_position("ETH/USDT:USDT", "BUY", 1, 5, 0.1) is True
    events_before = len(pm.events)
    with caplog.at_level(logging.INFO, logger="TradingBot"), locked(journal):
        assert pm.open_position(BTC, "BUY", 1, 5, 0.1) is False
        assert client.sent == ["buy ETH/USDT:USDT 1.0"], "no open order"
        assert not pm.has_position(BTC)
        assert [e["kind"] for e in pm.events[events_before:]] in ([], ["journal_failed"])
        errors = messages(caplog, logging.ERROR)
        assert any(
            "the open order for BTC/USDT:USDT could not be written" in m and "nothing was sent" in m
            for m in errors
        ), errors
        caplog.clear()
        # A close only reduces: it goes out although its row cannot be written.
        assert pm.close_position("ETH/USDT:USDT", "manual") is not None
        assert client.sent[-1] == "close ETH/USDT:USDT"
        assert not pm.has_position("ETH/USDT:USDT")
        errors = messages(caplog, logging.ERROR)
        assert any(
            "the close order for ETH/USDT:USDT is sent anyway but is not journaled" in m
            for m in errors
        ), errors
    # The lock is gone: the open goes out, once; the journal catches up.
    assert pm.open_position(BTC, "BUY", 1, 5, 0.1) is True
    assert client.sent.count(f"buy {BTC} 1.0") == 1
    assert pm.journal_checkpoint() is True
    assert Journal(str(journal)).orders_in_flight("bot") == []


def test_an_outage_costs_one_bounded_wait_and_the_status_never_waits(tmp_path: Path) -> None:
    """The auditor's t02/t05: a cycle removing three positions while another process holds the
    journal locked took 120 s (30 s per write), an open 100 s, and ``journal_status`` read by
    another thread meanwhile waited behind the writer."""
    journal = tmp_path / "journal.db"
    venue = FileVenue(tmp_path / "venue.json")
    client = LaggingClient(venue, [], lagging=False)
    pm = PositionManager(client, journal=str(journal), account="bot")
    symbols = ["BTC/USDT:USDT", "ETH/USDT:USDT", "SOL/USDT:USDT"]
    for symbol in [*symbols, "ADA/USDT:USDT"]:
        assert pm.open_position(symbol, "BUY", 1, 5, 0.1) is True
    for symbol in symbols:
        venue.close(symbol)  # closed outside the manager: the next cycle removes them
    took: dict[str, float] = {}

    def cycle() -> None:
        start = time.monotonic()
        # Two cycles: a position missing from one list is kept until the next confirms it.
        for _ in range(2):
            assert list(pm.update_positions()) == []
        took["cycle"] = time.monotonic() - start

    with locked(journal):
        worker = threading.Thread(target=cycle, daemon=True)
        worker.start()
        time.sleep(1.0)  # the cycle's first write waits for the lock meanwhile
        start = time.monotonic()
        status = pm.journal_status
        took["status"] = time.monotonic() - start
        worker.join(TIMEOUT)
        assert not worker.is_alive()
        assert took["status"] < 2.5, took  # an atomic read; the writer waits 5 s meanwhile
        assert status is not None and status["fenced"] is False
        # One bounded wait (5 s) for the whole outage, not 5 s per write.
        assert took["cycle"] < 20.0, took
        assert not any(pm.has_position(s) for s in symbols)
        kinds = [e["kind"] for e in pm.events]
        assert kinds.count("removed") == 3 and kinds.count("journal_failed") == 1, kinds
        status = pm.journal_status
        assert status is not None
        assert status["failing"] is True and status["queued_events"] >= 4, status
        # An open during an outage already known is refused promptly.
        start = time.monotonic()
        assert pm.open_position("XRP/USDT:USDT", "BUY", 1, 5, 0.1) is False
        assert time.monotonic() - start < 3.0
        assert pm.journal_checkpoint() is False
    # The lock is gone: everything queued is written, nothing was lost.
    assert pm.journal_checkpoint() is True
    status = pm.journal_status
    assert status is not None
    assert (status["failing"], status["queued_events"]) == (False, 0)
    with Journal(str(journal)) as reader:
        written = [e["kind"] for e in reader.events(account="bot")]
    assert written.count("removed") == 3 and written.count("journal_failed") == 1, written
    assert reader_positions(journal) == ["ADA/USDT:USDT"]


def reader_positions(journal: Path) -> list[str]:
    with Journal(str(journal)) as reader:
        return [r["symbol"] for r in reader.open_positions(account="bot")]
