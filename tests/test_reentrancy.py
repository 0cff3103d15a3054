"""Re-entrancy (DESIGN.md safety rules 1, 2 and 6): client methods and logging handlers may call
back into the manager. Nothing may deadlock (every call runs in a thread with a deadline) and
the nested calls must see a consistent book and do their work.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from typing import Any, Callable

import pytest
from helpers_clients import FakeExchange, make_manager, make_position, run_with_timeout

from position_manager_rs import Position, PositionManager

TIMEOUT = 15.0


class Once:
    """Runs a callback the first time it is triggered on a thread (guards against recursion)."""

    def __init__(self, callback: Callable[[], Any]) -> None:
        self.callback = callback
        self.results: list[Any] = []
        self.fired = threading.Event()
        self._local = threading.local()

    def __call__(self) -> None:
        if self.fired.is_set() or getattr(self._local, "busy", False):
            return
        self._local.busy = True
        try:
            self.fired.set()
            self.results.append(self.callback())
        finally:
            self._local.busy = False


def two_position_setup() -> tuple[FakeExchange, PositionManager, Position, Position]:
    exchange = FakeExchange()
    exchange.open("A")
    exchange.open("B")
    pm = make_manager(exchange)
    a, b = make_position("A"), make_position("B")
    pm.positions["A"] = a
    pm.positions["B"] = b
    return exchange, pm, a, b


# --------------------------------------------------------------------------- client callbacks


def test_get_ticker_calls_back_into_the_manager() -> None:
    exchange, pm, _a, b = two_position_setup()

    def callback() -> dict[str, Any]:
        return {
            "count": pm.get_open_positions_count(),
            "b_view": pm.positions["B"],
            "has_b": pm.has_position("B"),
            "len": len(pm.positions),
            "keys": list(pm.positions),
            "close_b": pm.close_position("B"),
            "has_b_after": pm.has_position("B"),
        }

    once = Once(callback)

    def ticker(symbol: str) -> Any:
        if symbol == "A":
            once()
        return {"symbol": symbol, "last": 100.0}

    exchange.on_get_ticker = ticker
    closed = run_with_timeout(lambda: list(pm.update_positions()), TIMEOUT, "update cycle")
    assert once.fired.is_set()
    (seen,) = once.results
    assert seen["count"] == 2
    assert seen["b_view"] is b
    assert seen["has_b"] is True
    assert seen["len"] == 2
    assert seen["keys"] == ["A", "B"]
    assert seen["close_b"] == pytest.approx((0.0 - 0.0012) * 10)  # closed at entry, after fees
    assert seen["has_b_after"] is False
    assert closed == []  # A is healthy; B was closed by the callback, not by the cycle
    assert list(pm.positions) == ["A"]
    assert exchange.calls_of("close_position") == [(("B",), {})]
    assert [(e["kind"], e["symbol"], e["reason"]) for e in pm.events if e["kind"] == "closed"] == [
        ("closed", "B", "manual")
    ]


def test_update_cycle_started_from_a_client_callback() -> None:
    exchange, pm, _a, _b = two_position_setup()
    once = Once(lambda: list(pm.update_positions()))

    def ohlcv(symbol: str, timeframe: str = "1h", limit: int = 100) -> Any:
        once()
        return []

    exchange.on_get_ohlcv = ohlcv
    run_with_timeout(lambda: list(pm.update_positions()), TIMEOUT, "nested update cycle")
    assert once.results == [[]]
    assert list(pm.positions) == ["A", "B"]


def test_position_inserted_during_get_open_positions_survives_that_snapshot() -> None:
    # Rule 4: a position added after the exchange snapshot was requested is never removed by it.
    exchange, pm, _a, _b = two_position_setup()
    new = make_position("NEW")

    def callback() -> int:
        pm.positions["NEW"] = new
        return len(pm.positions)

    once = Once(callback)

    def positions() -> Any:
        answer = [dict(p) for p in exchange.positions.values()]  # taken before the insert
        once()
        return answer

    exchange.on_get_open_positions = positions
    run_with_timeout(lambda: list(pm.update_positions()), TIMEOUT, "update cycle")
    assert once.results == [3]
    assert pm.positions.get("NEW") is new
    # The next snapshot, requested after the insert, does remove it: the exchange never had it.
    exchange.on_get_open_positions = None
    run_with_timeout(lambda: list(pm.update_positions()), TIMEOUT, "update cycle")
    assert "NEW" not in pm.positions


def test_get_ohlcv_writes_through_the_view() -> None:
    exchange, pm, a, _b = two_position_setup()

    def ohlcv(symbol: str, timeframe: str = "1h", limit: int = 100) -> Any:
        if symbol == "A":
            pm.positions["A"].stop_loss = 150.0  # above the price: the long must stop out
            pm.positions["A"].strategy = "set-from-client"
        return []

    exchange.on_get_ohlcv = ohlcv
    closed = run_with_timeout(lambda: list(pm.update_positions()), TIMEOUT, "update cycle")
    assert [(s, p) for s, _, p in closed] == [("A", a)]
    assert closed[0][2].strategy == "set-from-client"
    assert list(pm.positions) == ["B"]


def test_sync_from_inside_a_client_callback() -> None:
    exchange, pm, _a, _b = two_position_setup()
    exchange.open("C")
    once = Once(pm.sync_existing_positions)

    def ohlcv(symbol: str, timeframe: str = "1h", limit: int = 100) -> Any:
        once()
        return []

    exchange.on_get_ohlcv = ohlcv
    run_with_timeout(lambda: list(pm.update_positions()), TIMEOUT, "update cycle")
    assert once.results == [1]
    assert set(pm.positions) == {"A", "B", "C"}


def test_client_close_untracks_meanwhile_and_pnl_is_still_returned() -> None:
    # The client's close_position calls back and deletes the entry (another actor untracking it
    # meanwhile). The exchange close succeeded, so the P/L is returned (spec §6.4 fixed).
    exchange, pm, a, _b = two_position_setup()
    seen: dict[str, Any] = {}
    plain_close = exchange.close_position

    def close(symbol: str) -> bool:
        exchange.on_close_position = None
        seen["tracked_during_close"] = pm.has_position(symbol)
        seen["same_object"] = pm.get_position(symbol) is a
        del pm.positions[symbol]
        return bool(plain_close(symbol))

    exchange.on_close_position = close
    pnl = run_with_timeout(lambda: pm.close_position("A", "manual"), TIMEOUT, "close")
    assert seen == {"tracked_during_close": True, "same_object": True}
    assert pnl == pytest.approx(-0.012)
    assert "A" not in pm.positions
    assert "A" not in exchange.symbols()


def test_update_positions_yields_a_close_whose_entry_was_removed_meanwhile() -> None:
    exchange, pm, a, _b = two_position_setup()
    exchange.set_price("A", 50.0)  # emergency stop for the 10x long
    plain_close = exchange.close_position

    def close(symbol: str) -> bool:
        exchange.on_close_position = None
        pm.positions.pop(symbol, None)
        return bool(plain_close(symbol))

    exchange.on_close_position = close
    closed = run_with_timeout(lambda: list(pm.update_positions()), TIMEOUT, "update cycle")
    assert [(s, p) for s, _, p in closed] == [("A", a)]
    assert closed[0][1] == pytest.approx((-0.5 - 0.0012) * 10)


# --------------------------------------------------------------------------- logging handlers


class CallbackHandler(logging.Handler):
    def __init__(self, callback: Callable[[logging.LogRecord], None]) -> None:
        super().__init__(logging.DEBUG)
        self.callback = callback
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1
        self.callback(record)


@pytest.fixture
def attach() -> Iterator[Callable[[str, logging.Handler], None]]:
    """Attaches handlers to loggers at DEBUG, restoring the loggers afterwards."""
    restore: list[tuple[logging.Logger, logging.Handler, int]] = []

    def add(name: str, handler: logging.Handler) -> None:
        logger = logging.getLogger(name)
        restore.append((logger, handler, logger.level))
        logger.setLevel(logging.DEBUG)
        logger.addHandler(handler)

    yield add
    for logger, handler, level in reversed(restore):
        logger.removeHandler(handler)
        logger.setLevel(level)


def test_position_log_handler_reads_the_manager(
    attach: Callable[[str, logging.Handler], None],
) -> None:
    exchange, pm, _a, _b = two_position_setup()
    exchange.set_price("A", 94.0)
    pm.positions["A"].leverage = 1
    exchange.open("C")
    observed: list[tuple[int, int, bool]] = []
    problems: list[str] = []

    def read(record: logging.LogRecord) -> None:
        n = len(pm.positions)
        everything = pm.get_all_positions()
        stops = [p.stop_loss for p in pm.positions.values()]
        _ = pm.events, list(pm.positions.items()), pm.positions.get("B")
        if len(stops) > 5 or any(not isinstance(s, float) for s in stops):
            problems.append(f"odd stops {stops}")
        observed.append((n, len(everything), pm.has_position("A")))

    handler = CallbackHandler(read)
    attach("TradingBot.Position", handler)
    closed = run_with_timeout(lambda: list(pm.update_positions()), TIMEOUT, "update cycle")
    assert [s for s, _, _ in closed] == ["A"]
    synced = run_with_timeout(pm.sync_existing_positions, TIMEOUT, "sync")
    assert synced == 1
    pnl = run_with_timeout(lambda: pm.close_position("B"), TIMEOUT, "close")
    assert pnl is not None
    assert handler.count > 10
    assert not problems
    assert observed[0] == (2, 2, True)
    assert all(n in (1, 2, 3) for n, _, _ in observed)
    assert set(pm.positions) == {"C"}


def test_main_log_handler_mutates_the_book(
    attach: Callable[[str, logging.Handler], None],
) -> None:
    _exchange, pm, _a, _b = two_position_setup()
    pm.positions["GONE"] = make_position("GONE")
    added = make_position("FROM-HANDLER")
    state = {"done": False}

    def mutate(record: logging.LogRecord) -> None:
        if record.getMessage().startswith("Cleaning up") and not state["done"]:
            state["done"] = True
            pm.positions["FROM-HANDLER"] = added
            pm.close_position("GONE")  # already removed: a no-op returning None

    handler = CallbackHandler(mutate)
    attach("TradingBot", handler)
    run_with_timeout(lambda: list(pm.update_positions()), TIMEOUT, "update cycle")
    assert state["done"]
    assert pm.positions.get("FROM-HANDLER") is added
    assert "GONE" not in pm.positions
    assert {"A", "B"} <= set(pm.positions)


def test_handler_on_another_thread_reading_while_cycle_runs(
    attach: Callable[[str, logging.Handler], None],
) -> None:
    # A handler that hands records to a thread which reads the manager and waits for it:
    # deadlocks if any lock is held while logging.
    _exchange, pm, _a, _b = two_position_setup()

    def hand_off(record: logging.LogRecord) -> None:
        out: list[int] = []
        t = threading.Thread(target=lambda: out.append(len(pm.get_all_positions())))
        t.start()
        t.join(5.0)
        if t.is_alive() or not out:
            raise AssertionError("reader thread blocked while a record was being handled")

    handler = CallbackHandler(hand_off)
    errors: list[BaseException] = []
    original_emit = handler.emit

    def guarded(record: logging.LogRecord) -> None:
        try:
            original_emit(record)
        except BaseException as e:
            errors.append(e)

    handler.emit = guarded  # type: ignore[method-assign]
    attach("TradingBot.Position", handler)
    run_with_timeout(lambda: list(pm.update_positions()), 60.0, "update cycle")
    run_with_timeout(lambda: pm.close_position("A"), 60.0, "close")
    assert handler.count > 5
    assert not errors, errors[:3]


# --------------------------------------------------------------------------- raising handlers


class RaisingHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1
        raise RuntimeError("handler failure")


def raising_setup(
    attach: Callable[[str, logging.Handler], None],
) -> tuple[FakeExchange, PositionManager, RaisingHandler]:
    exchange = FakeExchange()
    exchange.open("A", leverage=1)
    exchange.set_price("A", 94.0)  # below the stop: closes with 'stop_loss'
    exchange.open("B")
    pm = make_manager(exchange)
    pm.positions["A"] = make_position("A", leverage=1)
    pm.positions["GONE"] = make_position("GONE")
    handler = RaisingHandler()
    attach("TradingBot", handler)
    attach("TradingBot.Position", handler)
    return exchange, pm, handler


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_raising_handler_manager_calls_return_normally(
    attach: Callable[[str, logging.Handler], None],
) -> None:
    _exchange, pm, handler = raising_setup(attach)
    closed = run_with_timeout(lambda: list(pm.update_positions()), TIMEOUT, "update cycle")
    assert isinstance(closed, list)
    synced = run_with_timeout(pm.sync_existing_positions, TIMEOUT, "sync")
    assert isinstance(synced, int)
    result = run_with_timeout(lambda: pm.close_position("nothing"), TIMEOUT, "close")
    assert result is None
    assert handler.count > 0
    assert pm.get_open_positions_count() >= 0  # the manager is still usable


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_raising_handler_does_not_stop_the_work(
    attach: Callable[[str, logging.Handler], None],
) -> None:
    exchange, pm, _handler = raising_setup(attach)
    closed = run_with_timeout(lambda: list(pm.update_positions()), TIMEOUT, "update cycle")
    assert [s for s, _, _ in closed] == ["A"], "stop-loss close must still happen"
    assert "GONE" not in pm.positions
    assert run_with_timeout(pm.sync_existing_positions, TIMEOUT, "sync") == 1
    assert "B" in pm.positions
    assert run_with_timeout(lambda: pm.close_position("B"), TIMEOUT, "close") is not None
    assert "B" not in exchange.symbols()
    # A client call made while a handler's exception was still pending used to "succeed" in
    # taking the client's own lock and then fail ("__enter__ returned a result with an exception
    # set"), leaking the lock: every later call from another thread then hung.
    assert exchange._lock.acquire(timeout=5.0), "the client's lock was leaked"
    exchange._lock.release()
