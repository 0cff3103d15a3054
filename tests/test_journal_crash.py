"""Crash safety and concurrency of the journal, proven with real processes.

- **SIGKILL**: a child (tests/journal_writer.py) restores its account and changes its book in a
  loop, printing the event numbers of every call that returned; it is killed with SIGKILL at a
  random moment, again and again (SQLite: 100 kills, PostgreSQL: 40; ``PMRS_LONG=1``: 1000 and
  300; ``PMRS_JOURNAL_KILLS=N`` sets both). After every kill the journal must open, hold every
  reported event exactly once, number the account's events 1, 2, 3, ... without a gap, hold the
  book the events replay to, pass SQLite's integrity check, and the next child must restore
  exactly that book. (PostgreSQL: the check waits until the killed child's server session has
  ended, since the server may still commit what the child sent as it died. The slow-commit
  variant makes every commit wait 20 ms, so kills land in that window often: without the wait
  its check fails within a few kills.)
- **Two processes on one SQLite file**, several on one PostgreSQL database: writers of
  different accounts at the same time, none losing, doubling or failing a write.

Run ``pytest -s tests/test_journal_crash.py`` to see the figures.
"""

from __future__ import annotations

import json
import os
import random
import select
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from journal_helpers import journal_url, psql

from position_manager_rs import Journal

LONG = os.environ.get("PMRS_LONG") == "1"
_KILLS = os.environ.get("PMRS_JOURNAL_KILLS")
KILLS = {
    "sqlite": int(_KILLS) if _KILLS else (1000 if LONG else 100),
    "postgres": int(_KILLS) if _KILLS else (300 if LONG else 40),
    "postgres-slow-commit": int(_KILLS) if _KILLS else (100 if LONG else 20),
}
# The slow-commit server: every commit waits this long (commit_delay, microseconds) before it
# is flushed, so a kill often lands while the child's last COMMIT is still on its way in.
SLOW_COMMIT_US = 20_000
SEED = int(os.environ.get("PMRS_CRASH_SEED", "20250101"))
FULL_CHECK_EVERY = 25  # kills between two checks that read the whole history
WRITER = Path(__file__).with_name("journal_writer.py")
STEP_TIMEOUT = 30.0
MAX_PAUSE = 0.08  # seconds between "ready" and the kill

pytestmark = pytest.mark.skipif(
    sys.platform == "win32" or not hasattr(signal, "SIGKILL"), reason="needs POSIX SIGKILL"
)


def read_until(fd: int, buf: bytearray, done: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not done(buf):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            pytest.fail(f"child output not complete within {timeout} s: {bytes(buf)[-500:]!r}")
        ready, _, _ = select.select([fd], [], [], remaining)
        if ready:
            chunk = os.read(fd, 65536)
            if not chunk:
                return
            buf += chunk


def start(url: str, account: str, seed: int, log: Path, count: int | None = None) -> Any:
    args = [sys.executable, str(WRITER), url, account, str(seed)]
    if count is not None:
        args.append(str(count))
    with log.open("wb") as err:
        return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL)


def replay(events: list[dict[str, Any]], book: set[str] | None = None) -> set[str]:
    """The book the events leave behind (after ``book``, if given)."""
    book = set() if book is None else set(book)
    for e in events:
        if e["kind"] in ("added", "loaded", "opened", "imported", "restored"):
            book.add(e["symbol"])
        elif e["kind"] in ("untracked", "closed", "removed"):
            book.discard(e["symbol"])
    return book


def wait_for_sessions_to_end(url: str) -> None:
    """Waits until no other session is connected to the PostgreSQL database ``url``.

    A client killed by SIGKILL leaves its server session behind for a moment: the server has
    not yet noticed the closed socket, or is still committing the COMMIT the client sent just
    before it died. Until that session ends, a transaction of the dead writer may still land
    after the check has read the journal (the check reads one snapshot, so it is consistent
    either way), and the next child would then restore a book the check never saw. This waits
    for the dead writer's last commit.
    """
    deadline = time.monotonic() + STEP_TIMEOUT
    others = (
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND pid <> pg_backend_pid()"
    )
    while psql(url, others) != "0":
        if time.monotonic() > deadline:
            pytest.fail(f"the killed writer's session did not end within {STEP_TIMEOUT} s")
        time.sleep(0.01)


def check(
    url: str, account: str, reported: set[int], before: tuple[int, set[str]] | None = None
) -> tuple[int, set[str]]:
    """The journal opens and is consistent; returns its last event number and its book.

    With ``before`` (the last event number and book of an earlier check) only the events
    written since are read and replayed on that book — the events are append-only, so this
    checks what a full read would, in time linear in the run (a full check after every kill
    would read the whole history again each time). The test still makes a full check every
    ``FULL_CHECK_EVERY`` kills and after the last one.
    """
    with Journal(url) as journal, journal.snapshot():
        (row,) = [a for a in journal.accounts() if a["account"] == account]
        first = 1 if before is None else before[0] + 1
        last = row["last_seq"]
        new = last - first + 1
        assert new >= 0, f"the account's last event number went back: {last} < {first - 1}"
        events: list[dict[str, Any]] = []
        if before is None:
            events = list(journal.events(account=account))
        elif new:
            events = list(journal.events(account=account, limit=new))
        seqs = [e["seq"] for e in events]
        assert seqs == list(range(first, last + 1)), "a gap or a duplicate"
        missing = {s for s in reported if not 1 <= s <= last}
        assert not missing, f"events of calls that returned are missing: {sorted(missing)}"
        assert not [e for e in events if e["kind"] == "journal_failed"]
        book = {p["symbol"] for p in journal.open_positions(account)}
        expected = replay(events, None if before is None else before[1])
        assert book == expected, "the book rows do not match the events"
    if not url.startswith("postgresql://"):
        with sqlite3.connect(url) as db:
            assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    return last, book


@pytest.mark.parametrize("kind", ["sqlite", "postgres", "postgres-slow-commit"])
@pytest.mark.timeout(3600 if LONG else 150)
def test_sigkill_while_journaling_loses_only_unreturned_calls(
    kind: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = journal_url(kind.split("-")[0], tmp_path, "crash")
    if kind == "postgres-slow-commit":
        database = url.rsplit("/", 1)[1]
        psql(url, f"ALTER DATABASE {database} SET commit_delay = {SLOW_COMMIT_US}")
        psql(url, f"ALTER DATABASE {database} SET commit_siblings = 0")
    rng = random.Random(SEED)
    reported: set[int] = set()
    expected_book: set[str] = set()
    stats = {"calls": 0, "unreported": 0, "max_seq": 0}
    began = time.monotonic()
    for kill in range(KILLS[kind]):
        child = start(url, "crash", rng.randrange(1 << 30), tmp_path / "err.txt")
        try:
            assert child.stdout is not None
            fd = child.stdout.fileno()
            out = bytearray()
            read_until(fd, out, lambda b: b"\n" in b, STEP_TIMEOUT)
            first, _, rest = bytes(out).partition(b"\n")
            assert first.startswith(b"ready "), (first, (tmp_path / "err.txt").read_text())
            restored = set(json.loads(first[6:]))
            assert restored == expected_book, f"kill {kill}: the restored book differs"
            time.sleep(rng.uniform(0.0, MAX_PAUSE))
            child.send_signal(signal.SIGKILL)
            tail = bytearray(rest)
            read_until(fd, tail, lambda b: False, STEP_TIMEOUT)
            child.wait(timeout=STEP_TIMEOUT)
        finally:
            if child.poll() is None:
                child.kill()
                child.wait(timeout=STEP_TIMEOUT)
            if child.stdout is not None:
                child.stdout.close()
        assert child.returncode == -signal.SIGKILL, (tmp_path / "err.txt").read_text()
        lines = bytes(tail).decode().splitlines()
        complete = lines if bytes(tail).endswith(b"\n") else lines[:-1]
        for line in complete:
            reported.update(int(s) for s in line.split())
        stats["calls"] += len(complete)
        if kind.startswith("postgres"):
            wait_for_sessions_to_end(url)
        full = kill % FULL_CHECK_EVERY == 0 or kill == KILLS[kind] - 1
        last, expected_book = check(
            url, "crash", reported, None if full else (stats["max_seq"], expected_book)
        )
        stats["unreported"] = last - len(reported)
        stats["max_seq"] = last
    elapsed = time.monotonic() - began
    with capsys.disabled():
        print(
            f"\njournal crash test ({kind}): {KILLS[kind]} kills, {stats['calls']} calls "
            f"reported, {stats['max_seq']} events journaled (contiguous, each reported one "
            f"present; {stats['unreported']} written but not yet reported: restores and calls "
            f"cut short), {elapsed:.1f} s"
        )


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
@pytest.mark.timeout(180)
def test_processes_sharing_one_journal_lose_double_and_fail_no_write(
    kind: str, tmp_path: Path
) -> None:
    url = journal_url(kind, tmp_path, "shared")
    count = 150
    children = [
        start(url, f"proc-{i}", i, tmp_path / f"err{i}.txt", count)
        for i in range(3 if kind == "postgres" else 2)
    ]
    outputs = []
    for i, child in enumerate(children):
        out, _ = child.communicate(timeout=150)
        assert child.returncode == 0, (tmp_path / f"err{i}.txt").read_text()
        assert out.endswith(b"done\n")
        outputs.append(out)
    for i, out in enumerate(outputs):
        reported = {int(s) for line in out.decode().splitlines()[1:-1] for s in line.split()}
        assert len(reported) == count  # one event per call
        check(url, f"proc-{i}", reported)
