"""The interpreter's exit while a daemon thread is inside a manager call.

CPython (to 3.13) ends a thread that takes the interpreter back after finalization has begun with
``pthread_exit``; with this extension's frames on that thread's stack the process aborted (exit
status 134) — a bot's daemon monitor thread in ``update_positions()`` at Ctrl+C or at the end of
``main`` was enough. The package's ``atexit`` callback now waits for such calls to end (each at
its next client call, as an interruption ends it). Each case runs a child process
(``tests/exit_child.py``) and reads what it reports after the package's callback returned.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

CHILD = Path(__file__).with_name("exit_child.py")


def run_child(*args: str, timeout: float = 60) -> tuple[int, dict[str, str], str]:
    done = subprocess.run(
        [sys.executable, str(CHILD), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONFAULTHANDLER": "1"},
    )
    seen = dict(line.split("=", 1) for line in done.stdout.splitlines() if "=" in line)
    return done.returncode, seen, done.stderr


@pytest.mark.parametrize("workers", [1, 4])
@pytest.mark.parametrize("delay", ["0.05", "0.13", "0.3"])
def test_a_daemon_thread_cycling_when_the_interpreter_exits_does_not_abort_the_process(
    workers: int, delay: str
) -> None:
    # Cycles back to back, every client call sleeping: at exit the thread is inside a client call
    # or detached core work (and with workers, reads run on threads of the cycle's own).
    code, _, err = run_child("cycles", str(workers), delay)
    assert code == 0, f"exit status {code}: {err[-2000:]}"
    assert "Fatal Python error" not in err


def test_a_client_call_in_flight_at_exit_is_waited_for_and_the_cycle_ends_there() -> None:
    code, seen, err = run_child("in-flight", "1.5")
    assert code == 0, f"exit status {code}: {err[-2000:]}"
    # The read in flight answered; the cycle made no further call and its thread ended
    # (SystemExit ends a thread silently); both positions are still tracked.
    assert seen["ticker_calls"] == "1"
    assert seen["thread_alive"] == "False"
    assert seen["count"] == "2"
    assert 1.4 <= float(seen["waited"]) < 10
    assert "waiting for 1 manager call(s) on other threads to end" in err
    assert "Traceback" not in err


def test_a_close_in_flight_at_exit_is_booked_once() -> None:
    code, seen, err = run_child("close")
    assert code == 0, f"exit status {code}: {err[-2000:]}"
    assert seen["closes"] == "S0/USDT:USDT"  # sent once
    assert seen["count"] == "1"
    assert seen["tracked"] == "S1/USDT:USDT"
    assert seen["closed_events"] == "1"
    assert seen["answers"].startswith("[-0.01")  # the close's P/L reached the caller


def test_the_exiting_threads_own_later_callbacks_use_the_manager_as_usual(
    tmp_path: Path,
) -> None:
    # A bot's atexit callback registered before the import runs after the package's: its calls
    # on the exiting (main) thread are not refused.
    script = tmp_path / "bot.py"
    state = tmp_path / "state.json"
    script.write_text(
        "import atexit\n"
        "def save():\n"
        f"    pm.save_state({str(state)!r})\n"
        "    print('saved', pm.get_open_positions_count(), list(pm.update_positions()))\n"
        "atexit.register(save)\n"
        "from position_manager_rs import Position, PositionManager\n"
        "class C:\n"
        "    def get_open_positions(self):\n"
        "        return [{'symbol': 'BTC/USDT:USDT', 'side': 'long', 'contracts': 1.0,"
        " 'entryPrice': 100.0}]\n"
        "    def get_ticker(self, symbol):\n"
        "        return {'last': 100.0}\n"
        "pm = PositionManager(C(), 0.02)\n"
        "pm.positions['BTC/USDT:USDT'] = Position('BTC/USDT:USDT', 'long', 100.0, 1.0, 10,"
        " 50.0, 200.0)\n"
    )
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "saved 1 []"
    assert state.exists()


def test_ctrl_c_ends_the_wait_for_a_call_that_does_not_answer() -> None:
    # The daemon thread's client call sleeps 30 s: the exit waits (and says so) until Ctrl+C.
    child = subprocess.Popen(
        [sys.executable, str(CHILD), "in-flight", "30"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stderr is not None
        line = child.stderr.readline()  # the wait's warning, after a second
        assert "waiting for 1 manager call(s)" in line
        started = time.monotonic()
        child.send_signal(signal.SIGINT)
        _, err = child.communicate(timeout=20)
    finally:
        child.kill()
        child.wait()
    assert time.monotonic() - started < 10
    assert "KeyboardInterrupt" in err  # reported by atexit, not swallowed
    assert child.returncode == 0, err
