"""Interruptions leave every manager call as they came (DESIGN rule 8).

``KeyboardInterrupt``, ``SystemExit`` and any other ``BaseException`` that is not an ``Exception``
— raised by a client call, a logging handler, an ``on_event`` callback or a user exit object —
propagate out of the manager call unchanged. The book stays consistent (nothing half-applied, no
reservation or order slot left behind: an order the interruption may have cut short is "outcome
unknown" and checked against the exchange first), and the next call works. A real SIGINT during a
long cycle (the ticker retry pauses) reaches the bot promptly.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from helpers_clients import FakeExchange, assert_ctrl_c_ends, make_manager, make_position
from reliability_helpers import book_problems
from test_exit_strategies import HOLD, Recorder

from position_manager_rs import PositionManager
from position_manager_rs.testing import frozen_clock

BTC, ETH = "BTC/USDT:USDT", "ETH/USDT:USDT"

pytestmark = pytest.mark.timeout(60)


class Halt(BaseException):
    """A user's own BaseException (not an Exception)."""


INTERRUPTS = [KeyboardInterrupt, SystemExit, Halt]


@pytest.fixture(autouse=True)
def _frozen() -> Iterator[None]:
    with frozen_clock(datetime(2026, 1, 1, 12, 0, 0)):
        yield


def tracked(exchange: FakeExchange, *symbols: str, **options: Any) -> PositionManager:
    pm = make_manager(exchange, **options)
    for s in symbols:
        exchange.open(s, contracts=1.0)
        pm.positions[s] = make_position(s, amount=1.0, entry_price=100.0, stop_loss=95.0)
    return pm


def raising(kind: type[BaseException], then: Any = None) -> Any:
    """A client method that raises ``kind`` once, then answers as ``then`` does."""
    state = {"raised": False}

    def method(*args: Any, **kwargs: Any) -> Any:
        if not state["raised"]:
            state["raised"] = True
            raise kind("stop")
        return then(*args, **kwargs) if then is not None else None

    return method


@pytest.mark.parametrize("kind", INTERRUPTS)
def test_an_interrupt_in_the_position_list_leaves_the_cycle(kind: type[BaseException]) -> None:
    exchange = FakeExchange()
    pm = tracked(exchange, BTC, ETH)
    before = dict(pm.positions.items())
    # After the interruption the exchange answers its real list (not through this hook again:
    # calling exchange.get_open_positions() here would re-enter the hook without end).
    exchange.on_get_open_positions = raising(
        kind, lambda: [dict(p) for p in exchange.positions.values()]
    )
    with pytest.raises(kind):
        list(pm.update_positions())
    assert dict(pm.positions.items()) == before and not book_problems(pm)
    n = len(exchange.calls_of("get_open_positions"))
    assert list(pm.update_positions()) == []  # the next call works
    assert len(exchange.calls_of("get_open_positions")) == n + 1  # one list, answered
    assert dict(pm.positions.items()) == before


@pytest.mark.parametrize("kind", INTERRUPTS)
def test_an_interrupt_in_a_ticker_ends_the_cycle_where_it_stands(
    kind: type[BaseException],
) -> None:
    exchange = FakeExchange()
    pm = tracked(exchange, BTC, ETH)
    calls: list[str] = []

    def ticker(symbol: str) -> Any:
        calls.append(symbol)
        if symbol == ETH and calls.count(ETH) == 1:
            raise kind("stop")
        return {"last": 100.0}

    exchange.on_get_ticker = ticker
    cycle = pm.update_positions()
    with pytest.raises(kind):
        list(cycle)
    assert calls == [BTC, ETH]  # BTC was examined, ETH's first ticker raised
    assert list(cycle) == []  # that cycle is over
    assert set(pm.positions) == {BTC, ETH} and not book_problems(pm)
    assert list(pm.update_positions()) == []
    assert calls[-2:] == [BTC, ETH]


@pytest.mark.parametrize("kind", INTERRUPTS)
def test_an_interrupted_close_is_checked_before_any_other_order(
    kind: type[BaseException],
) -> None:
    exchange = FakeExchange()
    pm = tracked(exchange, BTC)

    def close_then_raise(symbol: str) -> Any:
        exchange.positions.pop(symbol, None)  # the order went out...
        raise kind("stop")  # ...and the call was interrupted

    exchange.on_close_position = close_then_raise
    with pytest.raises(kind):
        pm.close_position(BTC)
    assert BTC in pm.positions  # outcome unknown: kept, nothing more sent blind
    exchange.on_close_position = None
    n = len(exchange.calls_of("close_position"))
    # The next close reads the list first: the position is gone, the close is resolved.
    assert pm.close_position(BTC) is None
    assert BTC not in pm.positions
    assert len(exchange.calls_of("close_position")) == n
    assert [e["kind"] for e in pm.events if e["symbol"] == BTC][-1] == "closed"


@pytest.mark.parametrize("kind", INTERRUPTS)
def test_an_interrupted_open_sends_no_second_order(kind: type[BaseException]) -> None:
    exchange = FakeExchange()
    pm = make_manager(exchange)

    def fill_then_raise(symbol: str, side: str, amount: float, leverage: Any, **kw: Any) -> Any:
        exchange.open(symbol, side="long", contracts=amount)
        raise kind("stop")

    exchange.on_create_market_order = fill_then_raise
    with pytest.raises(kind):
        pm.open_position(BTC, "BUY", 2.0, 10)
    assert BTC not in pm.positions
    exchange.on_create_market_order = None
    # The retry resolves the first order against the exchange: tracked, no second order.
    assert pm.open_position(BTC, "BUY", 2.0, 10) is True
    assert len(exchange.calls_of("create_market_order")) == 1
    assert pm.positions[BTC].amount == 2.0


@pytest.mark.parametrize("kind", INTERRUPTS)
def test_an_interrupt_in_sync_and_reconcile(kind: type[BaseException]) -> None:
    exchange = FakeExchange()
    exchange.open(BTC)
    pm = make_manager(exchange)
    exchange.on_get_ticker = raising(kind, lambda s: {"last": 100.0})
    with pytest.raises(kind):
        pm.sync_existing_positions()
    assert BTC not in pm.positions and not book_problems(pm)
    assert pm.sync_existing_positions() == 1
    exchange.on_get_open_positions = raising(kind)
    with pytest.raises(kind):
        pm.reconcile_positions()
    assert BTC in pm.positions


@pytest.mark.parametrize("kind", INTERRUPTS)
def test_an_interrupt_in_a_logging_handler_leaves_the_call(kind: type[BaseException]) -> None:
    exchange = FakeExchange()
    pm = tracked(exchange, BTC)

    class Raising(logging.Handler):
        fired = False

        def emit(self, record: logging.LogRecord) -> None:
            if not self.fired and "UPDATING" in record.getMessage():
                self.fired = True
                raise kind("stop")

    handler = Raising()
    logger = logging.getLogger("TradingBot.Position")
    logger.addHandler(handler)
    old = logger.level
    logger.setLevel(logging.INFO)
    try:
        with pytest.raises(kind):
            list(pm.update_positions())
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old)
    assert set(pm.positions) == {BTC} and not book_problems(pm)
    # Nothing is left pending: the next call is clean.
    assert list(pm.update_positions()) == []


CALLS_THAT_LOG = {
    "safe_update_position_targets": lambda pm, path: pm.safe_update_position_targets(
        BTC, new_stop_loss=96.0
    ),
    "safe_update_position_targets(missing)": lambda pm, path: pm.safe_update_position_targets(
        "X/USDT:USDT", new_stop_loss=96.0
    ),
    "save_state": lambda pm, path: pm.save_state(path),
    "load_state": lambda pm, path: PositionManager(FakeExchange()).load_state(path),
}


@pytest.mark.parametrize("kind", INTERRUPTS)
@pytest.mark.parametrize("call", list(CALLS_THAT_LOG))
def test_an_interrupt_in_a_logging_handler_leaves_that_very_call(
    call: str, kind: type[BaseException], tmp_path: Any
) -> None:
    # These calls ran the core without taking back an interruption a handler deferred: it came
    # out of a later, unrelated call, or was lost with the thread (found 2026-12-06).
    exchange = FakeExchange()
    pm = tracked(exchange, BTC)
    path = tmp_path / "state.json"
    pm.save_state(path)

    class Raising(logging.Handler):
        fired = False

        def emit(self, record: logging.LogRecord) -> None:
            if not self.fired:
                self.fired = True
                raise kind("stop")

    handler = Raising()
    logger = logging.getLogger("TradingBot")
    logger.addHandler(handler)
    old = logger.level
    logger.setLevel(logging.DEBUG)
    try:
        with pytest.raises(kind):
            CALLS_THAT_LOG[call](pm, path)
        assert handler.fired
        # Nothing is left pending: the next calls are clean.
        assert pm.get_open_positions_count() == 1
        assert list(pm.update_positions()) == []
        assert pm.reconcile_positions() == 0
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old)
    assert set(pm.positions) == {BTC} and not book_problems(pm)


@pytest.mark.parametrize("kind", INTERRUPTS)
def test_an_interrupt_in_an_event_callback_leaves_the_call(kind: type[BaseException]) -> None:
    exchange = FakeExchange()
    pm = tracked(exchange, BTC)
    seen: list[str] = []

    @pm.on_event
    def callback(event: Any) -> None:
        seen.append(event["kind"])
        if event["kind"] == "closed":
            raise kind("stop")

    with pytest.raises(kind):
        pm.close_position(BTC)
    # The close is complete (the interruption came after it): recorded, untracked.
    assert seen[-1] == "closed" and BTC not in pm.positions
    assert not book_problems(pm)
    pm.positions[ETH] = make_position(ETH)
    assert seen[-1] == "added"


@pytest.mark.parametrize("kind", INTERRUPTS)
def test_an_interrupt_in_a_user_exit_object_leaves_the_cycle(kind: type[BaseException]) -> None:
    exchange = FakeExchange()

    class Strategy:
        def get_comprehensive_exit_signal(self, position: Any, market: Any) -> Any:
            raise kind("stop")

    pm = tracked(exchange, BTC)
    pm.advanced_exit_strategy = Strategy()
    with pytest.raises(kind):
        list(pm.update_positions())
    assert set(pm.positions) == {BTC} and not book_problems(pm)


class _Interrupting:
    """A value of an exit object's answer whose ``where`` (``__bool__``, ``__str__``,
    ``__float__``, ``__repr__``, ``__iter__`` or ``get``) is interrupted; the others answer.
    Its number is NaN: as an action it is unusable, so that its ``repr`` is read."""

    def __init__(self, kind: type[BaseException], where: str) -> None:
        self.kind = kind
        self.where = where

    def _reached(self, name: str) -> None:
        if name == self.where:
            raise self.kind(f"interrupted in {name}")

    def __bool__(self) -> bool:
        self._reached("__bool__")
        return False

    def __str__(self) -> str:
        self._reached("__str__")
        return "text"

    def __float__(self) -> float:
        self._reached("__float__")
        return float("nan")

    def __repr__(self) -> str:
        self._reached("__repr__")
        return "_Interrupting()"

    def __iter__(self) -> Iterator[Any]:
        self._reached("__iter__")
        return iter((False, "hold", None))

    def get(self, key: str, default: Any = None) -> Any:
        self._reached("get")
        return HOLD.get(key, default)


class _Lookup:
    """An object whose attribute lookup (its own ``__getattr__``) is interrupted."""

    def __init__(self, kind: type[BaseException]) -> None:
        self.kind = kind

    def __getattr__(self, name: str) -> Any:
        raise self.kind(f"interrupted looking up {name}")


class _UnprintableError(Exception):
    """An error whose ``str()`` is interrupted."""

    def __init__(self, kind: type[BaseException]) -> None:
        super().__init__()
        self.kind = kind

    def __str__(self) -> str:
        raise self.kind("interrupted printing the error")


def _items_then(kind: type[BaseException]) -> Iterator[Any]:
    yield False
    raise kind("interrupted while the items are read")


def _interrupting(kind: type[BaseException], where: str) -> Any:
    return _Interrupting(kind, where)


# What each exit object answers, by where the interruption comes while the answer is read.
_ANSWERS: dict[str, Any] = {
    "advanced: its items": _items_then,
    "advanced: its __iter__": lambda kind: _interrupting(kind, "__iter__"),
    "advanced: should_exit's __bool__": lambda kind: (_interrupting(kind, "__bool__"), "r", None),
    "advanced: reason's __str__": lambda kind: (False, _interrupting(kind, "__str__"), None),
    "advanced: action's __float__": lambda kind: (False, "r", _interrupting(kind, "__float__")),
    "advanced: an unusable action's __repr__": lambda kind: (
        False,
        "r",
        _interrupting(kind, "__repr__"),
    ),
    "advanced: str() of its error": _UnprintableError,
    "smart: its get": lambda kind: _interrupting(kind, "get"),
    "smart: looking up its get": _Lookup,
    "smart: should_exit's __bool__": lambda kind: {
        **HOLD,
        "should_exit": _interrupting(kind, "__bool__"),
    },
    "smart: confidence's __float__": lambda kind: {
        **HOLD,
        "confidence": _interrupting(kind, "__float__"),
    },
    "smart: reason_text's __str__": lambda kind: {
        **HOLD,
        "reason_text": _interrupting(kind, "__str__"),
    },
    "smart: a key's __repr__ (a key is missing)": lambda kind: {
        _interrupting(kind, "__repr__"): 1,
        "should_exit": False,
    },
    "smart: str() of its error": _UnprintableError,
}


@pytest.mark.parametrize("kind", INTERRUPTS)
@pytest.mark.parametrize("where", list(_ANSWERS))
def test_an_interrupt_while_an_exit_objects_answer_is_read_leaves_the_cycle(
    where: str, kind: type[BaseException]
) -> None:
    # Reading the answer took it for an unusable one: one warning, the position held and the
    # interruption was lost (found by an audit; the client answers' readers already passed it).
    exchange = FakeExchange()
    pm = tracked(exchange, BTC)
    answer = _ANSWERS[where](kind)
    if where.startswith("advanced"):
        pm.advanced_exit_strategy = Recorder(advanced=answer)
    else:
        pm.smart_exit_optimizer = Recorder(smart=answer)
    with pytest.raises(kind):
        list(pm.update_positions())
    assert set(pm.positions) == {BTC} and not book_problems(pm)
    assert not exchange.calls_of("close_position") and not exchange.calls_of("create_order")


@pytest.mark.skipif(os.name != "posix", reason="POSIX signals")
def test_a_real_sigint_while_an_exit_objects_answer_is_read_reaches_the_bot() -> None:
    class SlowTruth:
        """A lazily computed should_exit whose truth value takes a while: Ctrl+C lands in it."""

        def __bool__(self) -> bool:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(5.0)
            return False

    exchange = FakeExchange()
    pm = tracked(exchange, BTC)
    pm.advanced_exit_strategy = Recorder(advanced=(SlowTruth(), "model says hold", None))
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        list(pm.update_positions())
    assert time.monotonic() - started < 5.0
    assert set(pm.positions) == {BTC} and not book_problems(pm)


@pytest.mark.parametrize("kind", INTERRUPTS)
@pytest.mark.parametrize("option", ["advanced_exit_strategy", "smart_exit_optimizer"])
def test_an_interrupt_while_an_exit_objects_method_is_looked_up_leaves(
    option: str, kind: type[BaseException]
) -> None:
    # It became the TypeError of an object without the method (found by an audit).
    options: dict[str, Any] = {option: _Lookup(kind)}
    with pytest.raises(kind):
        PositionManager(FakeExchange(), **options)
    pm = make_manager(FakeExchange())
    builtin = type(getattr(pm, option))
    with pytest.raises(kind):
        setattr(pm, option, _Lookup(kind))
    assert type(getattr(pm, option)) is builtin


def test_exceptions_are_still_handled_as_before() -> None:
    """Only interruptions pass through: an ordinary exception is the client's failure."""
    exchange = FakeExchange()
    pm = tracked(exchange, BTC)
    exchange.on_get_open_positions = raising(RuntimeError)
    assert list(pm.update_positions()) == []
    assert BTC in pm.positions


@pytest.mark.skipif(os.name != "posix", reason="POSIX signals")
def test_a_real_sigint_during_a_long_cycle_reaches_the_bot_promptly() -> None:
    """The ticker retry pauses (60 s here) wake up for signals: Ctrl+C ends the cycle at once."""
    exchange = FakeExchange()
    pm = tracked(exchange, BTC, ticker_retry_delays=(60.0, 60.0))
    exchange.on_get_ticker = lambda symbol: None  # every attempt fails: the cycle pauses
    assert_ctrl_c_ends(lambda: list(pm.update_positions()), after=0.3, within=5.0)
    assert BTC in pm.positions and not book_problems(pm)


class _InterruptedNumber:
    """A number type whose ``__float__`` is interrupted (Ctrl+C or sys.exit while it runs)."""

    def __init__(self, kind: type[BaseException]) -> None:
        self.kind = kind
        self.reads = 0

    def __float__(self) -> float:
        self.reads += 1
        raise self.kind("interrupted inside __float__")


@pytest.mark.parametrize("kind", INTERRUPTS)
@pytest.mark.parametrize("where", ["ticker last", "candle close", "listed entry price"])
def test_an_interrupt_while_an_answer_is_read_leaves_the_call(
    where: str, kind: type[BaseException]
) -> None:
    # The answers' conversions took it for an unreadable value: the cycle went on and the
    # interruption was lost (found 2026-12-06; the arguments' conversion already passed it on).
    exchange = FakeExchange()
    pm = tracked(exchange, BTC)
    number = _InterruptedNumber(kind)
    if where == "ticker last":
        exchange.on_get_ticker = lambda symbol: {"symbol": symbol, "last": number}
    elif where == "candle close":
        hour = 3_600_000
        exchange.on_get_ohlcv = lambda *a, **k: [
            [1_700_000_000_000 + i * hour, 100.0, 101.0, 99.0, number if i == 5 else 100.0, 1.0]
            for i in range(100)
        ]
    else:
        exchange.positions[BTC]["entryPrice"] = number
        pm.positions.clear()
    with pytest.raises(kind):
        if where == "listed entry price":
            pm.sync_existing_positions()
        else:
            list(pm.update_positions())
    assert number.reads == 1 and not book_problems(pm)


# --------------------------------------------------------------------------- reads made ahead


def _read_ahead_raises(kind: type[BaseException]) -> tuple[FakeExchange, PositionManager]:
    """Three positions, three workers: A closes (its price below the stop, its reads the
    slowest), and C's candles, read ahead while A is examined, raise ``kind``."""
    exchange = FakeExchange()
    pm = tracked(exchange, BTC, ETH, "SOL/USDT:USDT", max_concurrent_calls=3)

    def ticker(symbol: str) -> dict[str, Any]:
        if symbol == BTC:
            time.sleep(0.2)  # C's reads are over before A is examined
            return {"symbol": symbol, "last": 90.0}
        return {"symbol": symbol, "last": 100.0}

    def candles(symbol: str, *args: Any, **kwargs: Any) -> list[Any]:
        if symbol == "SOL/USDT:USDT":
            raise kind("raised in a read made ahead")
        return []

    exchange.on_get_ticker = ticker
    exchange.on_get_ohlcv = candles
    return exchange, pm


@pytest.mark.parametrize("kind", INTERRUPTS)
def test_closing_a_cycle_raises_what_a_read_made_ahead_met(kind: type[BaseException]) -> None:
    # The sequential cycle would not have read C yet; the concurrent one did, and the client
    # raised in that call. Closing the cycle after A's close dropped it (found 2026-12-06).
    _, pm = _read_ahead_raises(kind)
    cycle = pm.update_positions()
    assert next(cycle)[0] == BTC
    with pytest.raises(kind, match="read made ahead"):
        cycle.close()
    cycle.close()  # once
    assert set(pm.positions) == {ETH, "SOL/USDT:USDT"} and not book_problems(pm)


@pytest.mark.parametrize("kind", INTERRUPTS)
def test_a_cycle_left_by_break_hands_what_a_read_ahead_met_to_the_next_call(
    kind: type[BaseException],
) -> None:
    exchange, pm = _read_ahead_raises(kind)
    for symbol, _, _ in pm.update_positions():
        assert symbol == BTC
        break
    with pytest.raises(kind, match="read made ahead"):
        pm.reconcile_positions()
    exchange.on_get_ohlcv = None
    assert pm.reconcile_positions() == 0  # once


def test_closing_a_cycle_while_its_step_runs_is_refused_as_for_a_generator() -> None:
    # close() gave up silently: the cycle went on and sent more closes (found 2026-12-06).
    exchange = FakeExchange()
    pm = tracked(exchange, BTC)
    cycle = pm.update_positions()
    seen: list[BaseException] = []

    def ticker(symbol: str) -> dict[str, Any]:
        try:
            cycle.close()
        except ValueError as e:
            seen.append(e)
        return {"symbol": symbol, "last": 100.0}

    exchange.on_get_ticker = ticker
    assert list(cycle) == []
    assert [str(e) for e in seen] == ["generator already executing"]


@pytest.mark.parametrize("kind", INTERRUPTS)
def test_an_interrupt_a_cancelled_async_step_met_is_raised_by_the_next_cycle(
    kind: type[BaseException],
) -> None:
    # The step runs on in its thread after its task was cancelled; the interruption it met
    # went into an executor future nobody read (found 2026-12-06).
    import asyncio

    import position_manager_rs.aio  # noqa: F401  (adds aupdate_positions)

    exchange = FakeExchange()
    pm = tracked(exchange, BTC)
    raised = threading.Event()

    def candles(*args: Any, **kwargs: Any) -> list[Any]:
        time.sleep(0.3)
        raised.set()
        raise kind("after the cancel")

    exchange.on_get_ohlcv = candles

    async def cycle() -> list[str]:
        return [symbol async for symbol, _, _ in pm.aupdate_positions()]

    async def main() -> None:
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(cycle(), timeout=0.05)
        assert await asyncio.to_thread(raised.wait, 10)
        await asyncio.sleep(0.1)  # the step has returned
        exchange.on_get_ohlcv = None
        with pytest.raises(kind, match="after the cancel"):
            await cycle()
        assert await cycle() == []  # once

    asyncio.run(main())
    assert set(pm.positions) == {BTC} and not book_problems(pm)


@pytest.mark.parametrize("kind", INTERRUPTS)
def test_closing_an_async_cycle_raises_what_a_read_made_ahead_met(
    kind: type[BaseException],
) -> None:
    # aclose() closed nothing: the iterator was dropped later on some other thread, whose
    # next manager call raised it instead (found 2026-12-06).
    import asyncio

    import position_manager_rs.aio  # noqa: F401  (adds aupdate_positions)

    exchange, pm = _read_ahead_raises(kind)

    async def main() -> None:
        cycle = pm.aupdate_positions()
        assert (await cycle.__anext__())[0] == BTC
        exchange.on_get_ohlcv = None
        with pytest.raises(kind, match="read made ahead"):
            await cycle.aclose()
        await cycle.aclose()  # once
        assert await pm.areconcile_positions() == 0

    asyncio.run(asyncio.wait_for(main(), timeout=20))
    assert set(pm.positions) == {ETH, "SOL/USDT:USDT"} and not book_problems(pm)
    pm.reconcile_positions()  # nothing left on this thread either


@pytest.mark.parametrize("kind", INTERRUPTS)
def test_an_async_cycle_left_by_break_hands_what_a_read_ahead_met_to_the_next_a_method(
    kind: type[BaseException],
) -> None:
    # The loop's finalizer dropped the iterator on its own thread: no a-method raised it, a
    # later sync call on the loop's thread did (found 2026-12-06).
    import asyncio

    import position_manager_rs.aio  # noqa: F401  (adds aupdate_positions)

    exchange, pm = _read_ahead_raises(kind)

    async def main() -> None:
        async for symbol, _, _ in pm.aupdate_positions():
            assert symbol == BTC
            break
        exchange.on_get_ohlcv = None
        with pytest.raises(kind, match="read made ahead"):
            await pm.areconcile_positions()
        assert await pm.areconcile_positions() == 0  # once

    asyncio.run(asyncio.wait_for(main(), timeout=20))
    pm.reconcile_positions()  # nothing left on this thread either


@pytest.mark.parametrize("kind", INTERRUPTS)
def test_a_cancelled_async_step_hands_what_a_read_ahead_met_to_the_next_a_method(
    kind: type[BaseException],
) -> None:
    # The step yielding A's close is abandoned; its iterator, left open, was dropped on an
    # executor thread, which kept the interruption for whatever ran there next (found
    # 2026-12-06).
    import asyncio

    import position_manager_rs.aio as aio

    exchange, pm = _read_ahead_raises(kind)

    async def main() -> None:
        with pytest.raises(asyncio.TimeoutError):  # the step yields A's close after 0.2 s
            await asyncio.wait_for(pm.aupdate_positions().__anext__(), timeout=0.05)
        while not any(isinstance(k, aio._Raised) for k in aio._UNDELIVERED.get(pm, [])):
            await asyncio.sleep(0.01)
        exchange.on_get_ohlcv = None
        with pytest.raises(kind, match="read made ahead"):
            await pm.areconcile_positions()
        assert [s async for s, _, _ in pm.aupdate_positions()] == [BTC]  # A's close, kept
        assert await pm.areconcile_positions() == 0

    asyncio.run(asyncio.wait_for(main(), timeout=20))
    pm.reconcile_positions()
