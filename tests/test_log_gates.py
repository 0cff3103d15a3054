"""Records no handler would emit are never built, and logging configured at any time applies.

The bot's set-up (spec §0.1): handlers at INFO on ``TradingBot``, its children at DEBUG with no
handlers of their own. A DEBUG record of ``TradingBot.Position`` passes the logger's level and
reaches no handler that takes it: the original built it (an f-string and a ``LogRecord``) and
dropped it. The manager reads the logger levels *and* the handler levels along the propagation
chain at every call, so such a record is never built; a handler added, or a level changed, later
takes effect at the next call.

These tests use their own logger names (``manager(logger_name=...)``) whose top logger does not
propagate, and take pytest's capture handlers off them (pytest adds them to non-propagating
loggers too), so only the handlers a test sets count. Records are counted where they are made
(the ``LogRecord`` factory), not timed.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
from helpers_clients import FakeExchange, make_manager, make_position

from position_manager_rs import PositionManager

MAIN, POS, ORD = "gated", "gated.Position", "gated.Order"
NAMES = (MAIN, POS, ORD)


class Collect(logging.Handler):
    def __init__(self, level: int) -> None:
        super().__init__(level)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


class Built:
    """Every LogRecord made for our loggers, as (logger name, level)."""

    def __init__(self) -> None:
        self.records: list[tuple[str, int]] = []

    def at(self, level: int) -> list[tuple[str, int]]:
        return [r for r in self.records if r[1] == level]

    def clear(self) -> None:
        self.records.clear()


@pytest.fixture
def built() -> Iterator[Built]:
    seen = Built()
    old_factory = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = old_factory(*args, **kwargs)
        if record.name in NAMES:
            seen.records.append((record.name, record.levelno))
        return record

    saved = [
        (lg, lg.level, lg.propagate, list(lg.handlers), list(lg.filters))
        for lg in map(logging.getLogger, NAMES)
    ]
    logging.setLogRecordFactory(factory)
    logging.getLogger(MAIN).propagate = False
    try:
        yield seen
    finally:
        logging.setLogRecordFactory(old_factory)
        for lg, level, propagate, handlers, filters in saved:
            lg.setLevel(level)
            lg.propagate = propagate
            lg.handlers[:] = handlers
            lg.filters[:] = filters


def no_handlers() -> None:
    for name in NAMES:
        logging.getLogger(name).handlers.clear()


def bot_logging(handler_level: int = logging.INFO) -> Collect:
    """The bot's set-up on our names: the top logger and its handler at INFO, children at DEBUG."""
    no_handlers()
    main = logging.getLogger(MAIN)
    main.setLevel(logging.INFO)
    handler = Collect(handler_level)
    main.addHandler(handler)
    logging.getLogger(POS).setLevel(logging.DEBUG)
    logging.getLogger(ORD).setLevel(logging.DEBUG)
    return handler


def manager() -> tuple[PositionManager, FakeExchange]:
    exchange = FakeExchange()
    pm = make_manager(exchange, logger_name=MAIN, position_logger_name=POS, order_logger_name=ORD)
    for symbol in ("A", "B"):
        exchange.open(symbol)
        pm.positions[symbol] = make_position(symbol)
    return pm, exchange


def cycle(pm: PositionManager) -> None:
    assert list(pm.update_positions()) == []


def test_records_no_handler_would_emit_are_never_built(built: Built) -> None:
    handler = bot_logging()
    pm, _ = manager()
    built.clear()
    cycle(pm)
    assert built.at(logging.DEBUG) == []
    assert (POS, logging.INFO) in built.records
    assert {r.levelno for r in handler.records} == {logging.INFO}
    assert "\n--- Position: A (LONG) ---" in [r.getMessage() for r in handler.records]


def test_a_handler_added_later_takes_effect_at_the_next_call(built: Built) -> None:
    bot_logging()
    pm, _ = manager()
    cycle(pm)
    detail = Collect(logging.DEBUG)
    logging.getLogger(POS).addHandler(detail)
    built.clear()
    cycle(pm)
    debug = [r.getMessage() for r in detail.records if r.levelno == logging.DEBUG]
    assert "  Entry Price: 100.00" in debug
    assert len(built.at(logging.DEBUG)) == len(debug) > 0  # built only because emitted
    logging.getLogger(POS).removeHandler(detail)
    built.clear()
    cycle(pm)
    assert built.at(logging.DEBUG) == []


def test_levels_changed_later_take_effect_at_the_next_call(built: Built) -> None:
    handler = bot_logging()
    pm, _ = manager()
    cycle(pm)
    handler.setLevel(logging.DEBUG)
    built.clear()
    cycle(pm)
    assert any(r.levelno == logging.DEBUG and r.name == POS for r in handler.records)
    logging.getLogger(POS).setLevel(logging.INFO)  # the logger's own level still counts
    built.clear()
    cycle(pm)
    assert built.at(logging.DEBUG) == [] and (POS, logging.INFO) in built.records
    logging.getLogger(MAIN).propagate = True  # now pytest's handlers on the root take records
    logging.getLogger(POS).setLevel(logging.DEBUG)
    built.clear()
    cycle(pm)
    assert (POS, logging.DEBUG) in built.records


def test_a_logger_filter_still_sees_every_enabled_record(built: Built) -> None:
    """A filter on the logger runs for every record the logger's level lets through (and may
    change it): those records are built, as the original built them."""
    bot_logging()
    seen: list[int] = []

    def count(record: logging.LogRecord) -> bool:
        seen.append(record.levelno)
        return True

    logging.getLogger(POS).addFilter(count)
    pm, _ = manager()
    cycle(pm)
    assert logging.DEBUG in seen and logging.INFO in seen


def test_without_handlers_only_what_the_last_resort_prints_is_built(built: Built) -> None:
    """No handler anywhere: Python prints WARNING and above through `logging.lastResort`; below
    that nothing is built. Without a last resort the manager builds what the levels allow."""
    no_handlers()
    for name in NAMES:
        logging.getLogger(name).setLevel(logging.DEBUG)
    pm, exchange = manager()
    exchange.on_get_ticker = lambda symbol: None  # every ticker fails: warnings
    built.clear()
    cycle(pm)
    assert built.at(logging.DEBUG) == [] and built.at(logging.INFO) == []
    assert (MAIN, logging.WARNING) in built.records
    old = logging.lastResort
    logging.lastResort = None
    try:
        built.clear()
        cycle(pm)
    finally:
        logging.lastResort = old
    assert built.at(logging.DEBUG)
