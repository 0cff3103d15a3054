"""Log records reach Python's ``logging`` on the original loggers with the original messages.

pytest's ``caplog`` is configured after the package was imported: the manager must pick up
logging configuration changes made at any time (levels switched between two calls apply).
"""

from __future__ import annotations

import ast
import logging
import re
from unittest.mock import Mock

import pytest
from helpers_clients import FakeExchange, make_manager, make_position

from position_manager_rs import PositionManager

MAIN, POS, ORD = "TradingBot", "TradingBot.Position", "TradingBot.Order"
CLEANUP = re.compile(r"^Cleaning up (\d+) positions that were closed externally: (.*)$")


def records(caplog: pytest.LogCaptureFixture, name: str, level: int | None = None) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == name and (level is None or r.levelno == level)
    ]


@pytest.fixture
def info_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO, logger=MAIN)
    caplog.set_level(logging.INFO, logger=POS)
    caplog.set_level(logging.INFO, logger=ORD)
    return caplog


def test_cleanup_messages(info_logs: pytest.LogCaptureFixture) -> None:
    exchange = FakeExchange()
    exchange.open("C/USDT:USDT")
    pm = make_manager(exchange)
    for s in ["A/USDT:USDT", "B/USDT:USDT", "C/USDT:USDT"]:
        pm.positions[s] = make_position(s)
    info_logs.clear()
    list(pm.update_positions())

    main = records(info_logs, MAIN, logging.INFO)
    cleanups = [m for m in main if CLEANUP.match(m)]
    assert len(cleanups) == 1, main
    match = CLEANUP.match(cleanups[0])
    assert match is not None
    assert match.group(1) == "2"
    assert ast.literal_eval(match.group(2)) == {"A/USDT:USDT", "B/USDT:USDT"}  # a set repr
    assert match.group(2).startswith("{'") and match.group(2).endswith("'}")

    pos = records(info_logs, POS, logging.INFO)
    for s in ["A/USDT:USDT", "B/USDT:USDT"]:
        assert f"Removing externally closed position from tracking: {s}" in pos
    assert "Removing externally closed position from tracking: C/USDT:USDT" not in pos
    # The per-position part of the cycle reports on the position logger.
    assert "\n--- Position: C/USDT:USDT (LONG) ---" in pos
    assert "  ✓ Position still open and healthy" in pos


def test_no_cleanup_message_when_nothing_is_removed(info_logs: pytest.LogCaptureFixture) -> None:
    exchange = FakeExchange()
    exchange.open("A")
    pm = make_manager(exchange)
    pm.positions["A"] = make_position("A")
    info_logs.clear()
    list(pm.update_positions())
    assert not [m for m in records(info_logs, MAIN) if CLEANUP.match(m)]
    assert not [m for m in records(info_logs, POS) if m.startswith("Removing externally")]


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (ConnectionError("exchange down (503)"), "exchange down (503)"),
        (None, "'NoneType' object is not iterable"),
        (Mock(), "'Mock' object is not iterable"),
    ],
    ids=["raises", "None", "Mock"],
)
def test_unable_to_verify_warning(
    info_logs: pytest.LogCaptureFixture, answer: object, message: str
) -> None:
    exchange = FakeExchange()
    exchange.open("A")

    def positions() -> object:
        if isinstance(answer, Exception):
            raise answer
        return answer

    exchange.on_get_open_positions = positions
    pm = make_manager(exchange)
    pm.positions["A"] = make_position("A")
    info_logs.clear()
    list(pm.update_positions())
    warnings = records(info_logs, MAIN, logging.WARNING)
    expected = f"Unable to verify positions on exchange during update: {message}"
    assert warnings.count(expected) == 1, warnings
    assert "A" in pm.positions


def test_level_changes_between_calls_take_effect(caplog: pytest.LogCaptureFixture) -> None:
    exchange = FakeExchange()
    exchange.open("A")
    pm = make_manager(exchange)
    pm.positions["A"] = make_position("A")
    debug_line = "  Entry Price: 100.00"

    caplog.set_level(logging.INFO, logger=MAIN)
    caplog.set_level(logging.INFO, logger=POS)
    list(pm.update_positions())
    assert records(caplog, POS, logging.INFO), "INFO records expected at INFO level"
    assert not records(caplog, POS, logging.DEBUG)

    caplog.clear()
    caplog.set_level(logging.DEBUG, logger=POS)
    list(pm.update_positions())
    assert debug_line in records(caplog, POS, logging.DEBUG)

    caplog.clear()
    caplog.set_level(logging.WARNING, logger=POS)
    caplog.set_level(logging.WARNING, logger=MAIN)
    list(pm.update_positions())
    assert not records(caplog, POS)
    assert not records(caplog, MAIN)

    caplog.clear()
    caplog.set_level(logging.DEBUG, logger=POS)
    list(pm.update_positions())
    assert debug_line in records(caplog, POS, logging.DEBUG)


def test_level_set_directly_on_the_logger_takes_effect(caplog: pytest.LogCaptureFixture) -> None:
    # Not through caplog.set_level: a plain Logger.setLevel between two manager calls.
    caplog.set_level(logging.DEBUG)  # the capture handler lets everything through
    exchange = FakeExchange()
    pm = make_manager(exchange)
    pm.positions["A"] = make_position("A")
    logger = logging.getLogger(MAIN)
    old = logger.level
    try:
        logger.setLevel(logging.ERROR)
        caplog.clear()
        pm.close_position("A")  # not on the exchange: INFO "not found ... removing"
        assert not records(caplog, MAIN, logging.INFO)
        pm.positions["A"] = make_position("A")
        logger.setLevel(logging.INFO)
        caplog.clear()
        pm.close_position("A")
        assert (
            "Position A not found on exchange (already closed externally), removing from tracking"
            in records(caplog, MAIN, logging.INFO)
        )
    finally:
        logger.setLevel(old)


def test_stop_loss_close_logs_on_all_three_loggers(info_logs: pytest.LogCaptureFixture) -> None:
    exchange = FakeExchange()
    exchange.open("A", leverage=1)
    exchange.set_price("A", 94.0)
    pm = make_manager(exchange)
    pm.positions["A"] = make_position("A", leverage=1)
    info_logs.clear()
    closed = list(pm.update_positions())
    assert [c[0] for c in closed] == ["A"]
    assert "STOP LOSS TRIGGERED: A" in records(info_logs, ORD, logging.INFO)
    assert "  ✓ Closing position: stop_loss" in records(info_logs, POS, logging.INFO)
    main = records(info_logs, MAIN, logging.INFO)
    assert any(
        m.startswith("Closed long position: A @ 94.00, Entry: 100.00, P/L: -6.12% (after fees)")
        and m.endswith("Reason: stop_loss")
        for m in main
    ), main


def test_custom_logger_names(caplog: pytest.LogCaptureFixture) -> None:
    names = {
        "logger_name": "MyBot",
        "position_logger_name": "MyBot.Pos",
        "order_logger_name": "MyOrders",
    }
    for name in names.values():
        caplog.set_level(logging.DEBUG, logger=name)
    caplog.set_level(logging.DEBUG, logger=MAIN)
    exchange = FakeExchange()
    exchange.open("A", leverage=1)
    exchange.set_price("A", 94.0)
    pm = PositionManager(
        exchange,
        0.02,
        ticker_retry_delays=(0.0, 0.0),
        logger_name=names["logger_name"],
        position_logger_name=names["position_logger_name"],
        order_logger_name=names["order_logger_name"],
    )
    assert pm.logger.name == "MyBot"
    assert pm.position_logger.name == "MyBot.Pos"
    pm.positions["A"] = make_position("A", leverage=1)
    pm.positions["GONE"] = make_position("GONE")
    caplog.clear()
    list(pm.update_positions())

    assert [m for m in records(caplog, "MyBot") if CLEANUP.match(m)] == [
        "Cleaning up 1 positions that were closed externally: {'GONE'}"
    ]
    assert "Removing externally closed position from tracking: GONE" in records(caplog, "MyBot.Pos")
    assert "STOP LOSS TRIGGERED: A" in records(caplog, "MyOrders")
    leaked = sorted({r.name for r in caplog.records if r.name.startswith("TradingBot")})
    assert not leaked, f"records went to the default loggers: {leaked}"


def test_default_logger_attributes() -> None:
    pm = make_manager(FakeExchange())
    assert isinstance(pm.logger, logging.Logger)
    assert pm.logger.name == MAIN
    assert isinstance(pm.position_logger, logging.Logger)
    assert pm.position_logger.name == POS


def test_ticker_failure_warnings(info_logs: pytest.LogCaptureFixture) -> None:
    exchange = FakeExchange()
    exchange.open("A")
    exchange.on_get_ticker = lambda symbol: None
    pm = make_manager(exchange)
    pm.positions["A"] = make_position("A")
    info_logs.clear()
    list(pm.update_positions())
    assert "All ticker retries failed for A, skipping position update this cycle" in records(
        info_logs, MAIN, logging.WARNING
    )
    pos_warnings = records(info_logs, POS, logging.WARNING)
    assert (
        "  ⚠ API failed to fetch price - SKIPPING update to avoid using stale data" in pos_warnings
    )
    assert "  ⚠ Stop loss protection: Will retry on next cycle" in pos_warnings


def test_sync_messages(info_logs: pytest.LogCaptureFixture) -> None:
    exchange = FakeExchange()
    exchange.open("A", entry_price=100.0, leverage=10, contracts=2.0)
    pm = make_manager(exchange)
    info_logs.clear()
    assert pm.sync_existing_positions() == 1
    main = records(info_logs, MAIN, logging.INFO)
    assert main[0] == "Syncing existing positions from exchange..."
    assert (
        "Synced position: A long @ 100.00, Contracts: 2.0000, Leverage: 10x, SL: 95.00, TP: 115.00"
        in main
    )
    assert main[-1] == "Successfully synced 1 existing position(s)"
    info_logs.clear()
    empty = make_manager(FakeExchange())
    assert empty.sync_existing_positions() == 0
    assert "No existing positions found on exchange" in records(info_logs, MAIN, logging.INFO)
