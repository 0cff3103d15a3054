"""Opening a PostgreSQL journal is bounded as a whole: a server (or anything listening on the
port) that accepts the connection and never answers the start-up held
``PositionManager(..., journal="postgresql://...")`` and ``Journal(...)`` for ever, Ctrl+C
included (the connect timeout bounded only the socket connection). Each case runs in a child
process with a hard timeout, so that a hang fails the test instead of holding it."""

from __future__ import annotations

import os
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
