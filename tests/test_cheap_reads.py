"""Cheap reads: ``events_since(seq)`` reads only what is new; a full ``manager.events`` read lets
other threads run.

Speed is measured in ``benches/bench_reads.py`` (docs/benchmarks.md), never asserted here.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import Any

import pytest
from helpers_clients import FakeExchange, make_manager, make_position

from position_manager_rs import PositionManager

A = "A/USDT:USDT"


# -- events -------------------------------------------------------------------------------------


def _events_manager(n: int, **options: Any) -> PositionManager:
    pm = make_manager(FakeExchange(), **options)
    pm.positions[A] = make_position(A)
    for i in range(n - 1):  # one 'added' event, then targets_changed events
        assert pm.modify_position_targets(A, 90.0 + (i % 5), None)
    return pm


def test_events_since_reads_only_what_is_new() -> None:
    pm = _events_manager(5)
    everything = pm.events
    assert [e["seq"] for e in everything] == [1, 2, 3, 4, 5]
    assert pm.events_since(0) == everything
    assert pm.events_since(3) == everything[3:]
    assert pm.events_since(5) == [] and pm.events_since(10**6) == []
    pm.modify_position_targets(A, 80.0, None)
    new = pm.events_since(5)
    assert [(e["seq"], e["kind"]) for e in new] == [(6, "targets_changed")]
    assert new[0]["position"]["stop_loss"] == 80.0


def test_events_since_says_when_older_events_were_dropped() -> None:
    pm = _events_manager(12, event_history=5)
    assert [e["seq"] for e in pm.events_since(2)] == [8, 9, 10, 11, 12]  # 3..7 were dropped
    assert pm.events_since(9) == pm.events[-3:]
    assert _events_manager(3, event_history=0).events_since(0) == []


@pytest.mark.parametrize(
    ("seq", "error", "message"),
    [
        (-1, ValueError, "seq must be an int from 0 to 9223372036854775807, got -1"),
        (2**64, ValueError, "seq must be an int from 0 to"),
        ("x", TypeError, "seq must be an int, got 'x'"),
        (True, TypeError, "seq must be an int, not a bool, got True"),
        (1.5, TypeError, "seq must be an int, got 1.5"),
        (None, TypeError, "seq must be an int, got None"),
    ],
)
def test_events_since_names_a_bad_seq_and_its_value(
    seq: Any, error: type[Exception], message: str
) -> None:
    pm = _events_manager(2)
    with pytest.raises(error) as info:
        pm.events_since(seq)
    assert type(info.value) is error and message in str(info.value)


def test_a_full_events_read_lets_other_threads_run() -> None:
    """While a full read of 10 000 events converts them, another Python thread keeps running
    (the read lets go of the interpreter every few milliseconds). Counted, not timed: the other
    thread records when it ran, and it must have run in each quarter of the read (a read that
    kept the interpreter while converting lets it run only while the events are copied out,
    at the start)."""
    pm = _events_manager(10_000)
    ticks: list[float] = []
    stop = threading.Event()
    running = threading.Event()

    def ticker() -> None:
        while not stop.is_set():
            ticks.append(time.perf_counter())
            running.set()

    old = sys.getswitchinterval()
    sys.setswitchinterval(0.0005)
    thread = threading.Thread(target=ticker, daemon=True)
    thread.start()
    try:
        assert running.wait(10)
        start = time.perf_counter()
        events = pm.events
        end = time.perf_counter()
    finally:
        stop.set()
        thread.join(timeout=30)
        sys.setswitchinterval(old)
    assert not thread.is_alive()
    assert len(events) == 10_000 and events[-1]["seq"] == 10_000
    quarter = (end - start) / 4
    ran = [any(start + i * quarter < t < start + (i + 1) * quarter for t in ticks) for i in range(4)]
    assert ran == [True] * 4, f"the other thread ran in these quarters of the read only: {ran}"
