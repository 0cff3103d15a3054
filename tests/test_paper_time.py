"""A manager's own clock (``ManualClock``, ``PositionManager(client, clock=...)``) and paper time:
a ``PaperExchange`` drives its clock, so positions the manager creates age in simulated time and
the time rules (profit velocity, take-profit age factors, the 24 h exit) behave in paper runs.
"""

from __future__ import annotations

import re
import threading
from datetime import datetime, timedelta
from typing import Any

import pytest

from position_manager_rs import ManualClock, PaperExchange, Position, PositionManager
from position_manager_rs._core import _clock_is_frozen
from position_manager_rs.paper import DEFAULT_START_TIME
from position_manager_rs.testing import freeze_clock, frozen_clock, unfreeze_clock

BTC = "BTC/USDT:USDT"
PAPER_START = datetime(2026, 1, 1)  # DEFAULT_START_TIME as a naive UTC datetime
# A client these tests never call.
NO_CLIENT: Any = object()


def make_paper_manager(**paper_options: Any) -> tuple[PaperExchange, PositionManager]:
    paper_options.setdefault("volatility", 0.0)
    paper = PaperExchange(seed=1, **paper_options)
    manager = PositionManager(paper, 0.02, ticker_retry_delays=(), clock=paper.clock)
    return paper, manager


# ----------------------------------------------------------------------------- ManualClock


def test_manual_clock_moves_only_when_told() -> None:
    clock = ManualClock(datetime(2030, 5, 6, 7, 8, 9))
    assert clock.now() == datetime(2030, 5, 6, 7, 8, 9)
    assert clock.now() == datetime(2030, 5, 6, 7, 8, 9)
    assert clock.advance(1.5) == datetime(2030, 5, 6, 7, 8, 10, 500000)
    assert clock.advance(minutes=1, hours=1) == datetime(2030, 5, 6, 8, 9, 10, 500000)
    assert clock.advance(delta=timedelta(days=-1)) == datetime(2030, 5, 5, 8, 9, 10, 500000)
    clock.set(datetime(2031, 1, 1))
    assert clock.now() == datetime(2031, 1, 1)
    assert repr(clock) == "ManualClock(2031-01-01 00:00:00.000000)"


def test_manual_clock_starts_at_the_process_clock() -> None:
    with frozen_clock(datetime(2027, 3, 4, 5, 6, 7)):
        assert ManualClock().now() == datetime(2027, 3, 4, 5, 6, 7)


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda c: c.advance("60"), TypeError, "seconds must be a number, got '60' (str)"),
        (lambda c: c.advance(float("nan")), ValueError, "seconds must be a finite number"),
        (lambda c: c.advance(hours=float("inf")), ValueError, "hours must be a finite number"),
        (lambda c: c.advance(delta=60), TypeError, "delta must be a datetime.timedelta"),
        (lambda c: c.advance(hours=1e9), ValueError, "leaves the datetime range"),
        (lambda c: c.set("2026-01-01"), TypeError, "at must be a naive datetime"),
        (lambda c: ManualClock(1.0), TypeError, "start must be a naive datetime"),  # type: ignore[arg-type]
    ],
)
def test_manual_clock_rejects_bad_arguments_and_stays_put(
    call: Any, error: type[Exception], message: str
) -> None:
    clock = ManualClock(PAPER_START)
    with pytest.raises(error, match=message.replace("(", r"\(").replace(")", r"\)")):
        call(clock)
    assert clock.now() == PAPER_START


def test_manual_clock_cannot_be_overridden_from_python() -> None:
    # Reads are atomic loads in Rust: no Python method is ever called to read the time.
    with pytest.raises(TypeError):
        type("MyClock", (ManualClock,), {})


def test_concurrent_advances_add_up() -> None:
    clock = ManualClock(PAPER_START)

    def work() -> None:
        for _ in range(1000):
            clock.advance(1)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert clock.now() == PAPER_START + timedelta(seconds=4000)


# ----------------------------------------------------------------------------- the option


def test_the_clock_option() -> None:
    clock = ManualClock(PAPER_START)
    manager = PositionManager(NO_CLIENT, clock=clock)
    assert manager.clock is clock
    assert PositionManager(NO_CLIENT).clock is None
    assert PositionManager(NO_CLIENT, clock=None).clock is None


@pytest.mark.parametrize("value", ["2026-01-01", datetime(2026, 1, 1), 0, frozen_clock])
def test_a_clock_that_is_no_manual_clock_is_a_type_error(value: Any) -> None:
    with pytest.raises(
        TypeError, match=r"^clock must be a position_manager_rs\.ManualClock or None, got "
    ) as e:
        PositionManager(NO_CLIENT, clock=value)
    assert repr(value) in str(e.value)


def test_the_signature_and_help_name_every_option() -> None:
    import inspect

    names = list(inspect.signature(PositionManager).parameters)
    assert names[-5:] == ["clock", "position_mode", "journal", "account", "journal_sync"]
    doc = PositionManager.__doc__ or ""
    for name in names:
        assert f"{name}=" in doc or name == "client", f"help(PositionManager) omits {name}"


# ----------------------------------------------------------------------------- paper time


def test_paper_exchange_drives_its_clock() -> None:
    paper = PaperExchange(seed=1, tick_seconds=90)
    assert paper.clock.now() == PAPER_START == paper.datetime.replace(tzinfo=None)
    paper.advance(2)
    assert paper.clock.now() == PAPER_START + timedelta(seconds=180)
    assert paper.clock.now() == paper.datetime.replace(tzinfo=None)


def test_paper_exchange_takes_a_clock_and_sets_it_to_its_start() -> None:
    clock = ManualClock(datetime(2020, 1, 1))
    paper = PaperExchange(seed=1, clock=clock, start_time=DEFAULT_START_TIME + 3600)
    assert paper.clock is clock
    assert clock.now() == PAPER_START + timedelta(hours=1)
    with pytest.raises(TypeError, match=r"clock must be a position_manager_rs\.ManualClock"):
        PaperExchange(clock=datetime(2026, 1, 1))  # type: ignore[arg-type]


def test_positions_the_manager_creates_live_in_paper_time() -> None:
    paper, manager = make_paper_manager()
    paper.advance(5)
    assert manager.open_position(BTC, "BUY", 10, 5, 0.03)
    position = manager.positions[BTC]
    assert position.entry_time == PAPER_START + timedelta(minutes=5)
    paper.advance(90)
    list(manager.update_positions())
    assert manager.to_records()[0]["age"] == timedelta(minutes=90)
    assert position.history[-1][0] == PAPER_START + timedelta(minutes=95)
    assert manager.events[-1]["time"] == PAPER_START + timedelta(minutes=5)
    paper.create_market_order("ETH/USDT:USDT", "sell", 10, 10)
    assert manager.sync_existing_positions() == 1
    assert manager.positions["ETH/USDT:USDT"].entry_time == PAPER_START + timedelta(minutes=95)


def test_profit_velocity_is_per_paper_hour() -> None:
    paper, manager = make_paper_manager()
    assert manager.open_position(BTC, "BUY", 10, 5, 0.03)
    position = manager.positions[BTC]
    paper.advance(60)  # one paper hour, flat
    list(manager.update_positions())
    start_pnl = position.last_pnl
    paper.set_price(BTC, paper.price(BTC) * 1.002)  # +1 % at 5x
    paper.advance(60)
    list(manager.update_positions())
    assert position.last_pnl_time == PAPER_START + timedelta(hours=2)
    # One hour between the two updates: the velocity is the P/L change itself (per hour).
    assert position.profit_velocity == pytest.approx(position.last_pnl - start_pnl, rel=1e-9)
    assert 0.009 < position.profit_velocity < 0.011


def test_the_24_hour_rule_fires_in_paper_time() -> None:
    paper, manager = make_paper_manager(tick_seconds=3600)
    assert manager.open_position(BTC, "BUY", 10, 5, 0.03)
    paper.advance(24)
    assert list(manager.update_positions()) == []  # exactly 24 h: not more than 1440 minutes
    paper.advance(1)
    closed = list(manager.update_positions())
    assert [symbol for symbol, _, _ in closed] == [BTC]
    assert manager.events[-1]["reason"] == "Max hold time reached (1500 minutes)"


def test_without_the_clock_paper_time_does_not_reach_the_manager() -> None:
    # The contrast: a manager on the process clock sees no time pass while paper time flies.
    with frozen_clock(datetime(2030, 1, 1)):
        paper = PaperExchange(seed=1, volatility=0.0, tick_seconds=3600)
        manager = PositionManager(paper, 0.02, ticker_retry_delays=())
        assert manager.open_position(BTC, "BUY", 10, 5, 0.03)
        paper.advance(25)
        assert list(manager.update_positions()) == []
        assert manager.to_records()[0]["age"] == timedelta(0)


def test_a_position_made_by_hand_can_join_paper_time() -> None:
    # Position(...) reads the process clock (the original constructor has no clock argument);
    # a bot that builds positions itself sets their times from the manager's clock.
    paper, manager = make_paper_manager(tick_seconds=3600)
    position = Position(BTC, "long", paper.price(BTC), 10, 5, paper.price(BTC) * 0.97)
    position.entry_time = position.last_pnl_time = paper.clock.now()
    manager.positions[BTC] = position
    paper.create_market_order(BTC, "buy", 10, 5)
    paper.advance(25)
    assert [s for s, _, _ in manager.update_positions()] == [BTC]


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"start_time": float("nan")}, ValueError),
        ({"start_time": float("inf")}, ValueError),
        ({"start_time": 1e20}, ValueError),
        ({"start_time": "1767225600"}, TypeError),
        ({"tick_seconds": float("inf")}, ValueError),
        ({"tick_seconds": float("nan")}, ValueError),
    ],
)
def test_paper_time_options_are_checked(options: dict[str, Any], error: type[Exception]) -> None:
    ((name, value),) = options.items()
    with pytest.raises(error, match=name) as info:
        PaperExchange(**options)
    assert repr(value) in str(info.value)


def test_advance_takes_an_int_and_leaves_the_clock_otherwise() -> None:
    paper = PaperExchange(seed=1, tick_seconds=60)
    with pytest.raises(TypeError, match=r"n must be an int, got 1\.5"):
        paper.advance(1.5)  # type: ignore[arg-type]
    assert paper.clock.now() == PAPER_START
    paper.advance(2)
    assert paper.clock.now() == PAPER_START + timedelta(minutes=2)


# ------------------------------------------- the process-wide clock (position_manager_rs.testing)


def test_leaving_a_nested_frozen_clock_puts_the_outer_freeze_back() -> None:
    # Leaving the inner block used to unfreeze the clock, under the outer block's feet (found
    # by an audit): the outer handle then raised "the clock is not frozen".
    with frozen_clock(datetime(2025, 1, 1)) as outer:
        outer.advance(minutes=5)
        with frozen_clock(datetime(2030, 6, 6)) as inner:
            assert inner.now() == datetime(2030, 6, 6)
        assert _clock_is_frozen()
        assert outer.now() == datetime(2025, 1, 1, 0, 5)
        with pytest.raises(KeyError), frozen_clock(datetime(2031, 1, 1)):
            raise KeyError("an error leaving the inner block")
        assert outer.advance(60) == datetime(2025, 1, 1, 0, 6)
    assert not _clock_is_frozen()
    # a freeze by freeze_clock() is put back too
    clock = freeze_clock(datetime(2026, 2, 2))
    try:
        with frozen_clock(datetime(2040, 1, 1)):
            pass
        assert _clock_is_frozen() and clock.now() == datetime(2026, 2, 2)
    finally:
        unfreeze_clock()


def test_the_frozen_clock_refuses_to_leave_the_datetime_range_and_stays_put() -> None:
    # advance() past the year 9999 raised but moved the clock all the same, after which
    # now(), new positions and manager.events raised (found by an audit).
    start = datetime(9999, 12, 30)
    with frozen_clock(start) as clock:
        with pytest.raises(ValueError, match="leaves the datetime range"):
            clock.advance(hours=72)
        assert clock.now() == start
        manager = PositionManager(NO_CLIENT)
        manager.positions[BTC] = Position(BTC, "long", 100.0, 1.0, 10, 95.0, 115.0)
        assert manager.positions[BTC].entry_time == start
        assert manager.events[-1]["time"] == start
        clock.set(datetime(1, 1, 1))
        with pytest.raises(ValueError, match="leaves the datetime range"):
            clock.advance(delta=timedelta(microseconds=-1))
        assert clock.now() == datetime(1, 1, 1)


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda c: c.advance("60"), TypeError, "seconds must be a number, got '60' (str)"),
        (lambda c: c.advance(True), TypeError, "seconds must be a number, not a bool"),
        (lambda c: c.advance(minutes=float("nan")), ValueError, "minutes must be a finite number"),
        (lambda c: c.advance(hours=float("inf")), ValueError, "hours must be a finite number"),
        (
            lambda c: c.advance(delta=5),
            TypeError,
            "delta must be a datetime.timedelta, got 5 (int)",
        ),
    ],
)
def test_the_frozen_clock_names_a_bad_argument_and_stays_put(
    call: Any, error: type[Exception], message: str
) -> None:
    # As ManualClock.advance: advance("5") used to fail on a str concatenation, delta=5 with
    # an AttributeError, minutes=nan named "seconds", advance(True) moved the clock a second.
    with frozen_clock(PAPER_START) as clock:
        with pytest.raises(error, match=re.escape(message)):
            call(clock)
        assert clock.now() == PAPER_START
        assert clock.advance(1.5, minutes=1, hours=1, delta=timedelta(days=-1)) == datetime(
            2025, 12, 31, 1, 1, 1, 500000
        )
