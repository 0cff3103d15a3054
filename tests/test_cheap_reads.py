"""Cheap reads: ``manager.positions`` and the small accessors answer from a dict copy of the book
that is rebuilt only after the book changed, and always agree with the book; ``events_since(seq)``
reads only what is new; a full ``manager.events`` read lets other threads run.

Speed is measured in ``benches/bench_reads.py`` (docs/benchmarks.md), never asserted here.
"""

from __future__ import annotations

import gc
import sys
import threading
import time
from typing import Any, Callable

import pytest
from helpers_clients import FakeExchange, make_manager, make_position

from position_manager_rs import PositionManager

A, B, C = "A/USDT:USDT", "B/USDT:USDT", "C/USDT:USDT"


def assert_reads_agree(pm: PositionManager, expected: dict[str, Any]) -> None:
    """Every read of the book gives `expected` (symbol -> the very Position object)."""
    view = pm.positions
    assert pm.get_all_positions() == expected
    assert list(view) == list(expected) == list(view.keys()) == list(pm.get_all_positions())
    assert view.keys() == expected.keys() and view.items() == expected.items()
    assert list(view.values()) == list(expected.values())
    assert list(view.items()) == list(expected.items())
    # dict views, as the original's positions.keys()/values()/items()
    assert type(view.keys()) is type({}.keys())
    assert type(view.values()) is type({}.values())
    assert type(view.items()) is type({}.items())
    assert dict(view) == expected and view.copy() == expected and view == expected
    assert len(view) == len(expected) == pm.get_open_positions_count()
    assert bool(view) == bool(expected)
    for symbol, position in expected.items():
        assert symbol in view and pm.has_position(symbol)
        assert view[symbol] is position and view.get(symbol) is position
        assert pm.get_position(symbol) is position
    for missing in ("NOT/USDT:USDT", ""):
        assert missing not in view and not pm.has_position(missing)
        assert view.get(missing) is None and pm.get_position(missing) is None
        with pytest.raises(KeyError):
            view[missing]


def test_every_read_follows_every_change_of_the_book() -> None:
    exchange = FakeExchange()
    pm = make_manager(exchange)
    assert_reads_agree(pm, {})
    a, b, c = make_position(A), make_position(B), make_position(C)
    pm.positions[A] = a
    assert_reads_agree(pm, {A: a})
    pm.positions.update({B: b, C: c})
    assert_reads_agree(pm, {A: a, B: b, C: c})
    a2 = make_position(A)
    pm.positions[A] = a2  # a replacement keeps its place
    assert_reads_agree(pm, {A: a2, B: b, C: c})
    del pm.positions[B]
    assert_reads_agree(pm, {A: a2, C: c})
    assert pm.positions.pop(C) is c
    assert_reads_agree(pm, {A: a2})
    # Changes the core makes on its own: an update cycle removes what the exchange no longer
    # lists, a close removes, an open and a sync add.
    exchange.open(B)
    pm.positions[B] = b
    list(pm.update_positions())  # A is not listed: removed
    assert_reads_agree(pm, {B: b})
    assert pm.close_position(B) is not None
    assert_reads_agree(pm, {})
    assert pm.open_position(A, "BUY", 1.0, 10)
    opened = pm.positions[A]
    assert_reads_agree(pm, {A: opened})
    exchange.open(C)
    assert pm.sync_existing_positions() == 1
    assert_reads_agree(pm, {A: opened, C: pm.positions[C]})
    pm.positions.clear()
    assert_reads_agree(pm, {})
    pm.positions = {B: b}
    assert_reads_agree(pm, {B: b})


def test_the_positions_attribute_is_one_object_and_copies_are_new_dicts() -> None:
    pm = make_manager(FakeExchange())
    a = make_position(A)
    pm.positions[A] = a
    assert pm.positions is pm.positions
    first = pm.get_all_positions()
    first[B] = make_position(B)  # the caller's own dict
    del first[A]
    assert pm.get_all_positions() == {A: a}
    assert pm.get_all_positions() is not pm.get_all_positions()
    copied = pm.positions.copy()
    copied.clear()
    assert pm.positions.copy() == {A: a}
    keys = pm.positions.keys()
    pm.positions[C] = make_position(C)  # a view taken before a change keeps its snapshot
    assert list(keys) == [A]
    assert list(pm.positions.keys()) == [A, C]


def test_iteration_goes_on_over_the_book_it_started_with() -> None:
    pm = make_manager(FakeExchange())
    positions = {s: make_position(s) for s in (A, B, C)}
    pm.positions.update(positions)
    seen = []
    for symbol in pm.positions:
        seen.append(symbol)
        del pm.positions[symbol]  # changing the book meanwhile never raises
        pm.positions["X" + symbol] = make_position("X" + symbol)
    assert seen == [A, B, C]
    assert list(pm.positions) == ["X" + s for s in (A, B, C)]
    items = iter(pm.positions.items())
    pm.positions.clear()
    assert [s for s, _ in items] == ["X" + s for s in (A, B, C)]


def test_keys_that_are_not_plain_str_are_answered_as_before() -> None:
    pm = make_manager(FakeExchange())
    a = make_position(A)
    pm.positions[A] = a

    class Text(str):
        pass

    others: list[Any] = [1, None, 2.5, b"A/USDT:USDT", (A,)]
    for other in others:
        assert other not in pm.positions
        assert pm.positions.get(other) is None
        with pytest.raises(KeyError):
            pm.positions[other]
    assert Text(A) in pm.positions and pm.positions[Text(A)] is a
    assert pm.has_position(Text(A)) and pm.get_position(Text(A)) is a
    # A key with a lone surrogate is stored with U+FFFD in place of its bytes, and found by
    # either spelling.
    odd = make_position("D")
    pm.positions["D\udc80"] = odd
    assert list(pm.positions) == [A, "D\ufffd\ufffd\ufffd"]
    for spelling in ("D\udc80", "D\ufffd\ufffd\ufffd"):
        assert spelling in pm.positions and pm.positions[spelling] is odd
        assert pm.has_position(spelling) and pm.get_position(spelling) is odd
    for missing in ("D", "D\ufffd", "E\udc80"):
        assert missing not in pm.positions and pm.get_position(missing) is None
    with pytest.raises(TypeError):
        pm.get_position(1)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        pm.has_position(None)  # type: ignore[arg-type]


def test_hedge_mode_reads_resolve_a_plain_symbol_to_its_leg() -> None:
    pm = make_manager(FakeExchange(), position_mode="hedge")
    long_leg = make_position(A)
    pm.positions[A + "@long"] = long_leg
    assert pm.get_position(A) is long_leg and pm.has_position(A)
    assert A not in pm.positions  # the view is keyed by leg
    short_leg = make_position(A, side="short")
    pm.positions[A + "@short"] = short_leg
    assert pm.get_position(A) is None and pm.has_position(A)  # two legs: name one
    assert pm.get_position(A + "@short") is short_leg
    assert pm.get_open_positions_count() == 2
    # A leg key names itself; a plain symbol with no leg tracked names nothing.
    del pm.positions[A + "@long"]
    assert pm.get_position(A) is short_leg and pm.has_position(A)
    assert pm.get_position(A + "@long") is None and not pm.has_position(A + "@long")
    assert pm.get_position(B) is None and not pm.has_position(B)
    assert not pm.has_position(B + "@short")
    # Keys that are not plain str, or not valid UTF-8, are asked of the core: same answers.

    class Text(str):
        pass

    assert pm.get_position(Text(A)) is short_leg and pm.has_position(Text(A + "@short"))
    assert pm.get_position("\udc80") is None and not pm.has_position("\udc80")


def turns_of_another_thread_during(reads: Callable[[], None], repeat: int = 200) -> int:
    """How many times a spinning thread ran while ``reads`` was called ``repeat`` times. With a
    1 s switch interval it can only run if a read released the interpreter."""
    turns = 0
    stop = threading.Event()

    def spinner() -> None:
        nonlocal turns
        while not stop.is_set():
            turns += 1

    thread = threading.Thread(target=spinner, daemon=True)
    old = sys.getswitchinterval()
    # No garbage collection meanwhile: a collection runs the finalizers of whatever earlier
    # tests left behind (a manager whose journal closes, a socket), which may let go of the
    # interpreter whatever the reads do; what is tested here is the reads' own letting go.
    collecting = gc.isenabled()
    gc.collect()
    gc.disable()
    # Set before the spinner first waits for the interpreter: a waiting thread forces a switch
    # after the interval it read when it began to wait.
    sys.setswitchinterval(1.0)
    try:
        thread.start()
        time.sleep(0.02)  # the spinner runs; this thread takes the interpreter back (<= 1 s)
        before = turns
        for _ in range(repeat):
            reads()
            if turns != before:
                break
        during = turns - before
    finally:
        sys.setswitchinterval(old)
        stop.set()
        thread.join(timeout=5)
        if collecting:
            gc.enable()
    return during


def test_hedge_mode_reads_do_not_release_the_interpreter() -> None:
    """has_position/get_position in hedge mode answer from the view's dict, holding the
    interpreter: a thread waiting for it gets no turn while they run."""
    pm = make_manager(FakeExchange(), position_mode="hedge")
    pm.positions[A + "@long"] = make_position(A)
    pm.get_position(A)  # the dict is built once here

    def reads() -> None:
        assert pm.has_position(A) and pm.get_position(A) is not None
        assert not pm.has_position(B) and pm.get_position(B) is None

    during = turns_of_another_thread_during(reads)
    assert during == 0, f"the spinner ran {during} times while the reads held the interpreter"


@pytest.mark.parametrize("mode", ["oneway", "hedge"])
def test_reads_by_str_subclasses_and_surrogates_do_not_release_the_interpreter(mode: str) -> None:
    """A ``str`` subclass is read by its text and a key with a lone surrogate by the text the
    book keeps for it, from the view's dict: same answers, and no other thread gets a turn."""

    class Text(str):
        pass

    pm = make_manager(FakeExchange(), position_mode=mode)
    leg = "@long" if mode == "hedge" else ""
    a, odd = make_position(A), make_position("D")
    pm.positions[A + leg] = a
    pm.positions["D\udc80" + leg] = odd
    pm.get_position(A)  # the dict is built once here

    def reads() -> None:
        assert pm.get_position(Text(A)) is a and pm.has_position(Text(A))
        assert pm.get_position("D\udc80") is odd and pm.has_position("D\udc80")
        assert pm.get_position(Text("D\udc80")) is odd
        assert pm.get_position("E\udc80") is None and not pm.has_position(Text("E\udc80"))
        assert (Text(A + leg) in pm.positions) and pm.positions[Text(A + leg)] is a
        assert ("D\udc80" + leg) in pm.positions and pm.positions.get("D\udc80" + leg) is odd
        assert "E\udc80" not in pm.positions and Text(B) not in pm.positions

    # Many rounds: a read that detached for a moment lost the interpreter to the spinner within
    # a few thousand (measured: 200 were not always enough).
    during = turns_of_another_thread_during(reads, repeat=5_000)
    assert during == 0, f"the spinner ran {during} times while the reads held the interpreter"


@pytest.mark.parametrize("mode", ["oneway", "hedge"])
def test_repr_and_validation_do_not_release_the_interpreter(mode: str) -> None:
    """repr(manager) reads the view's dict; validate_position_parameters takes the book's lock
    attached when it is free: neither lets another thread run."""
    pm = make_manager(FakeExchange(), position_mode=mode)
    key = A + "@long" if mode == "hedge" else A
    pm.positions[key] = make_position(A)
    pm.positions[C] = make_position(C)
    # In hedge mode a plain symbol is stored under the leg of the position's side.
    c_key = C + "@long" if mode == "hedge" else C
    assert repr(pm) == f"PositionManager(2 position(s): {key}, {c_key})"

    def reads() -> None:
        assert repr(pm).startswith("PositionManager(2 position(s)")
        assert pm.validate_position_parameters(B, 1.0, 10, 0.05) == (True, "Valid parameters")
        assert pm.validate_position_parameters(c_key, 1.0, 10, 0.05) == (
            False,
            f"Position for {c_key} already exists",
        )
        assert pm.validate_position_parameters(B, 0, 10, 0.05)[0] is False

    during = turns_of_another_thread_during(reads)
    assert during == 0, f"the spinner ran {during} times while the reads held the interpreter"


def test_reads_from_many_threads_while_the_book_changes() -> None:
    pm = make_manager(FakeExchange())
    errors: list[BaseException] = []
    stop = threading.Event()

    def reader() -> None:
        try:
            while not stop.is_set():
                snapshot = pm.get_all_positions()
                for symbol in pm.positions:
                    pm.positions.get(symbol)
                assert all(isinstance(s, str) for s in snapshot)
                assert pm.get_open_positions_count() >= 0
        except BaseException as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=reader, daemon=True) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        for i in range(300):
            symbol = f"S{i % 17}"
            pm.positions[symbol] = make_position(symbol)
            if i % 3 == 0:
                pm.positions.pop(f"S{(i * 7) % 17}", None)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)
    assert not any(t.is_alive() for t in threads), "a reader hung"
    assert errors == []
    assert_reads_agree(pm, {s: pm.positions[s] for s in pm.positions.keys()})


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
    # No garbage collection during the read: the read's allocations can trigger a full
    # collection, which stops every thread for as long as the heap takes to scan (15 ms seen
    # with the whole test file's objects alive) whatever the read does; what is tested here
    # is the read's own letting go.
    collecting = gc.isenabled()
    gc.collect()
    gc.disable()
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
        if collecting:
            gc.enable()
    assert not thread.is_alive()
    assert len(events) == 10_000 and events[-1]["seq"] == 10_000
    quarter = (end - start) / 4
    ran = [
        any(start + i * quarter < t < start + (i + 1) * quarter for t in ticks) for i in range(4)
    ]
    assert ran == [True] * 4, f"the other thread ran in these quarters of the read only: {ran}"
