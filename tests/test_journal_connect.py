"""Opening a PostgreSQL journal is bounded as a whole: a server (or anything listening on the
port) that accepts the connection and never answers the start-up held
``PositionManager(..., journal="postgresql://...")`` and ``Journal(...)`` for ever, Ctrl+C
included (the connect timeout bounded only the socket connection). Each case runs in a child
process with a hard timeout, so that a hang fails the test instead of holding it."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator

import pytest

# What the child does: open the journal, print how long it took and how it failed.
CHILD = """
import sys, time
from position_manager_rs import Journal, JournalError, PositionManager
kind, url = sys.argv[1], sys.argv[2]
started = time.monotonic()
try:
    if kind == "manager":
        PositionManager(object(), journal=url)
    else:
        Journal(url)
    print("connected")
except JournalError as e:
    print(f"{time.monotonic() - started:.2f}", type(e).__name__, e)
"""

# How much later than its bound a connect may return on a loaded two-core machine (and the
# child's interpreter start and import on top of that for the hard timeout).
SLACK = 10.0


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port on 127.0.0.1 that accepts every connection and never answers."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    held: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            held.append(connection)

    threading.Thread(target=accept, daemon=True).start()
    yield listener.getsockname()[1]
    listener.close()
    for connection in held:
        connection.close()


@pytest.mark.parametrize(
    ("kind", "options", "env", "bound"),
    [
        # libpq's shortest timeout is 2 s: connect_timeout=1 is 2 s.
        ("manager", "?connect_timeout=1", {}, 2),
        ("manager", "?connect_timeout=3&sslmode=disable", {}, 3),
        # TLS required, the timeout from the environment as libpq takes it.
        ("manager", "?sslmode=require", {"PGCONNECT_TIMEOUT": "2"}, 2),
        ("reader", "?connect_timeout=2", {}, 2),
        # No timeout anywhere: the default bound, never a wait for ever.
        ("manager", "", {}, 10),
    ],
)
def test_a_server_that_never_answers_the_start_up_is_given_up(
    silent_port: int, kind: str, options: str, env: dict[str, str], bound: int
) -> None:
    url = f"postgresql://bot:secret@127.0.0.1:{silent_port}/db{options}"
    child_env = {k: v for k, v in os.environ.items() if k != "PGCONNECT_TIMEOUT"}
    done = subprocess.run(
        [sys.executable, "-c", CHILD, kind, url],
        env={**child_env, **env},
        capture_output=True,
        text=True,
        timeout=bound + 2 * SLACK,
    )
    took, kind_of_error, message = done.stdout.strip().split(" ", 2)
    assert kind_of_error == "JournalError", (done.stdout, done.stderr)
    assert bound - 0.1 <= float(took) <= bound + SLACK, done.stdout
    assert "cannot connect to the journal" in message, message
    assert f"127.0.0.1:{silent_port} did not answer the start-up within {bound} s" in message
    assert "secret" not in message, message


@pytest.mark.parametrize(
    ("kind", "table", "what"),
    [
        # the manager's claim of its account waits for the accounts table
        ("manager", "pmrs_accounts", "claiming the account"),
        # a reader (and a manager) reads the schema's version first
        ("reader", "pmrs_migrations", "reading the journal's schema version"),
    ],
)
def test_a_journal_table_another_session_locked_is_given_up_naming_the_holder(
    kind: str, table: str, what: str
) -> None:
    """A transaction left open holding a lock on a journal table (a shell session, a
    backup's restore) held the manager's start-up, or a reader's open, for ever once
    connected (only the connection was bounded). Now the wait ends at ``lock_timeout`` (here
    the URL's own, 1 s; the journal's default is 10 s) with the holder named."""
    from journal_helpers import fresh_postgres, psql

    url = fresh_postgres("locked")
    made = subprocess.run(
        [sys.executable, "-c", CHILD, "manager", url],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert made.stdout.strip() == "connected", (made.stdout, made.stderr)
    holder = subprocess.Popen(
        [
            "psql",
            url,
            "-qX",
            "-c",
            f"BEGIN; LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(120);",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(200):
            held = psql(
                url,
                "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
                f"WHERE l.granted AND l.mode = 'AccessExclusiveLock' AND c.relname = '{table}'",
            )
            if held == "1":
                break
            threading.Event().wait(0.05)
        else:
            pytest.fail(f"the lock on {table} was never taken")
        done = subprocess.run(
            [sys.executable, "-c", CHILD, kind, url + "?options=-c%20lock_timeout%3D1s"],
            capture_output=True,
            text=True,
            timeout=1 + 2 * SLACK,
        )
    finally:
        holder.kill()
        holder.wait(timeout=30)
    took, kind_of_error, message = done.stdout.strip().split(" ", 2)
    assert kind_of_error == "JournalError", (done.stdout, done.stderr)
    assert 0.9 <= float(took) <= 1 + SLACK, done.stdout
    assert what in message, message
    assert "gave up after waiting 1s (the lock_timeout the connection's options set)" in message
    assert re.search(rf"pid \d+ \([^)]*\) holds AccessExclusiveLock on {table}", message), message
