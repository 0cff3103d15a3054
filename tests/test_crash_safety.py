"""Crash safety of ``save_state``: a process killed (SIGKILL) at a random moment while it saves.

A child process (tests/crash_saver.py) saves two known books (50 and 51 positions) in turn, each
save numbered by a generation it prints once the save has returned. It is killed at random
moments, again and again. After each kill the state file left behind must load, must equal one
of the two books exactly (every field and attribute), and must be either the last save the child
reported (the "old" state) or the one it was in the middle of (the "new" state, renamed into place
before the child could report it) — never a partial file. At most one temporary file (of a
writer killed mid-save) may exist at any time; the next save removes it.

100 kills by default (about 25 s); ``PMRS_LONG=1`` runs 1000, ``PMRS_CRASH_KILLS=N`` any number.
Run ``pytest -s tests/test_crash_safety.py`` to see the figures (they are also printed with
``-q``).
"""

from __future__ import annotations

import os
import random
import select
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import crash_saver
import pytest

from position_manager_rs import PositionManager

# A client these tests never call: the manager only keeps its book here.
NO_CLIENT: Any = object()

LONG = os.environ.get("PMRS_LONG") == "1"
KILLS = int(os.environ.get("PMRS_CRASH_KILLS", "1000" if LONG else "100"))
SEED = int(os.environ.get("PMRS_CRASH_SEED", "20250101"))
SAVER = Path(__file__).with_name("crash_saver.py")
STEP_TIMEOUT = 20.0  # seconds for one child to start, or to die and close its output
MAX_PAUSE = 0.04  # seconds between "ready" and the kill (a save takes a few milliseconds)

pytestmark = pytest.mark.skipif(
    sys.platform == "win32" or not hasattr(signal, "SIGKILL"), reason="needs POSIX SIGKILL"
)

Records = list[tuple[str, dict[str, Any], dict[str, Any]]]


def read_until(fd: int, buf: bytearray, done: Any, timeout: float) -> None:
    """Reads ``fd`` into ``buf`` until ``done(buf)`` or end of file; fails after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not done(buf):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            pytest.fail(f"child output not complete within {timeout} s: {bytes(buf)!r}")
        ready, _, _ = select.select([fd], [], [], remaining)
        if ready:
            chunk = os.read(fd, 65536)
            if not chunk:
                return
            buf += chunk


def loaded(path: Path) -> tuple[int, Records]:
    """The generation and the records of the state file (loaded into a fresh manager)."""
    pm = PositionManager(NO_CLIENT)
    pm.load_state(path)
    records = crash_saver.records(pm)
    generation = records[0][2].pop("generation")
    assert isinstance(generation, int)
    return generation, records


def temp_files(directory: Path) -> list[Path]:
    return [f for f in directory.iterdir() if f.name.startswith(".state.json.tmp-")]


def kill_one(path: Path, start: int, pause: float, log: Path) -> tuple[list[int], int]:
    """Starts a saver at generation ``start``, kills it ``pause`` s after it is ready; returns
    the generations it reported as saved, and its pid."""
    with log.open("wb") as err:
        child = subprocess.Popen(
            [sys.executable, str(SAVER), str(path), str(start)],
            stdout=subprocess.PIPE,
            stderr=err,
            stdin=subprocess.DEVNULL,
        )
    try:
        assert child.stdout is not None
        fd = child.stdout.fileno()
        out = bytearray()
        read_until(fd, out, lambda b: b"ready\n" in b, STEP_TIMEOUT)
        assert out.startswith(b"ready\n"), (bytes(out), log.read_text())
        time.sleep(pause)
        child.send_signal(signal.SIGKILL)
        read_until(fd, out, lambda b: False, STEP_TIMEOUT)  # the rest, up to end of file
        child.wait(timeout=STEP_TIMEOUT)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(timeout=STEP_TIMEOUT)
        if child.stdout is not None:
            child.stdout.close()
    assert child.returncode == -signal.SIGKILL, (child.returncode, log.read_text())
    reported = [int(line) for line in out.decode().split()[1:]]
    return reported, child.pid


@pytest.mark.timeout(3600 if LONG else 120)
def test_sigkill_while_saving_leaves_the_old_or_the_new_state(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "state.json"
    expected = {n: crash_saver.records(crash_saver.book(n)) for n in (50, 51)}
    assert expected[50] != expected[51][:50]
    # The file exists before the first child: generation 0, the 50-position book.
    first = crash_saver.book(50)
    next(iter(first.positions.values())).generation = 0
    first.save_state(path)
    generation = 0

    rng = random.Random(SEED)
    stats = {"old": 0, "new": 0, 50: 0, 51: 0, "mid_write": 0, "max_temp_files": 0, "saves": 0}
    started = time.monotonic()
    for kill in range(KILLS):
        start = generation + 1
        reported, pid = kill_one(path, start, rng.uniform(0.0, MAX_PAUSE), tmp_path / "err.txt")
        assert reported == list(range(start, start + len(reported))), reported
        stats["saves"] += len(reported)
        last_done = reported[-1] if reported else generation
        in_flight = last_done + 1 if reported else start

        generation, records = loaded(path)  # raises if the file is partial or invalid
        assert generation in (last_done, in_flight), (kill, generation, last_done, in_flight)
        n = crash_saver.book_size(generation)
        assert records == expected[n], f"kill {kill}: the file is not the {n}-position book"
        stats["old" if generation == last_done else "new"] += 1
        stats[n] += 1

        temps = temp_files(tmp_path)
        assert len(temps) <= 1, [t.name for t in temps]
        stats["max_temp_files"] = max(stats["max_temp_files"], len(temps))
        stats["mid_write"] += sum(t.name.split("-")[1] == str(pid) for t in temps)
    elapsed = time.monotonic() - started

    # A clean save removes the last leftover.
    final = PositionManager(NO_CLIENT)
    final.load_state(path)
    final.save_state(path)
    assert temp_files(tmp_path) == []
    assert stats["old"] + stats["new"] == KILLS

    with capsys.disabled():
        print(
            f"\ncrash safety: {KILLS} SIGKILLs in {elapsed:.1f} s, {stats['saves']} saves "
            f"reported; {KILLS}/{KILLS} files loaded and equal to a known book "
            f"(old state {stats['old']}, new state {stats['new']}; 50-position book "
            f"{stats[50]}, 51-position book {stats[51]}); kills mid-write (temp file left) "
            f"{stats['mid_write']}; at most {stats['max_temp_files']} temp file at a time"
        )
