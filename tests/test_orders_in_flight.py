"""Orders in flight across a crash: a journaled bot is killed (SIGKILL) while an order it sent
waits for its answer; the venue took the order. The restarted bot's lists lag the fill. It must
not send the order again, and must track (or close) the position as that order left it.

The child is tests/order_crash_child.py; the venue is a JSON file (tests/file_venue.py) that
outlives it. On SQLite and on PostgreSQL (when a test server is given, as in test_journal.py).
"""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from file_venue import FileVenue, FileVenueClient
from journal_helpers import journal_url
from test_journal_crash import read_until, wait_for_sessions_to_end

from position_manager_rs import Journal, PositionManager

BTC = "BTC/USDT:USDT"
CHILD = Path(__file__).with_name("order_crash_child.py")
TIMEOUT = 60.0
# Lists may lag a fill by a minute on this venue: the outcome rules wait that long.
GRACE = 60.0

pytestmark = [
    pytest.mark.skipif(
        sys.platform == "win32" or not hasattr(signal, "SIGKILL"), reason="needs POSIX SIGKILL"
    ),
    pytest.mark.timeout(120),
]


@pytest.fixture(params=["sqlite", "postgres"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return journal_url(request.param, tmp_path, "orders")


class LaggingClient(FileVenueClient):
    """The restarted bot's client: while ``lagging``, its position lists show the venue as it
    was before the crash (``stale``); every order it sends is counted and done on the venue."""

    def __init__(self, venue: FileVenue, stale: list[dict[str, Any]], lagging: bool) -> None:
        super().__init__(venue)
        self.stale = stale
        self.lagging = lagging
        self.sent: list[str] = []

    def get_open_positions(self) -> list[dict[str, Any]]:
        if self.lagging:
            return [dict(p) for p in self.stale]
        return self.venue.positions()

    def _market(self, symbol: str, side: str, amount: float, leverage: float) -> Any:
        self.sent.append(f"{side} {symbol} {amount}")
        return super()._market(symbol, side, amount, leverage)

    def _close(self, symbol: str) -> bool:
        self.sent.append(f"close {symbol}")
        return super()._close(symbol)


def crash_mid_order(url: str, venue: Path, scenario: str, tmp_path: Path) -> None:
    """Runs the child until the venue took its order, then kills it."""
    with (tmp_path / "child.err").open("wb") as err:
        child = subprocess.Popen(
            [sys.executable, str(CHILD), url, "bot", str(venue), scenario],
            stdout=subprocess.PIPE,
            stderr=err,
            stdin=subprocess.DEVNULL,
        )
    try:
        assert child.stdout is not None
        buf = bytearray()
        read_until(child.stdout.fileno(), buf, lambda b: b"sent\n" in b, TIMEOUT)
        child.send_signal(signal.SIGKILL)
        child.wait(TIMEOUT)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(TIMEOUT)
    assert child.returncode == -signal.SIGKILL, (tmp_path / "child.err").read_text()
    assert b"returned" not in buf
    if url.startswith("postgres"):
        wait_for_sessions_to_end(url)


def restarted(client: LaggingClient, url: str) -> PositionManager:
    return PositionManager(client, journal=url, account="bot", outcome_grace_seconds=GRACE)


def test_an_open_killed_mid_order_is_not_sent_again_and_is_tracked_with_its_stop(
    url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    venue_file = tmp_path / "venue.json"
    venue = FileVenue(venue_file)
    crash_mid_order(url, venue_file, "open", tmp_path)
    [held] = venue.positions()
    assert (held["side"], held["contracts"], venue.orders) == ("long", 2.0, 1)
    [row] = Journal(url).orders_in_flight("bot")
    assert (row["symbol"], row["kind"], row["client_order_id"]) == (BTC, "open", None)
    assert row["intent"] == {
        "kind": "open",
        "side": "long",
        "amount": 2.0,
        "leverage": 5.0,
        "stop_loss_percentage": 0.1,
        "price": 100.0,
        "client_order_id": None,
    }

    client = LaggingClient(venue, stale=[], lagging=True)
    with caplog.at_level(logging.WARNING, logger="TradingBot"):
        pm = restarted(client, url)
    assert any(
        "Journal: the open order for BTC/USDT:USDT (long 2.0 contracts) sent at" in r.getMessage()
        and "no second order is sent for BTC/USDT:USDT until the exchange tells" in r.getMessage()
        for r in caplog.records
    ), [r.getMessage() for r in caplog.records]
    assert [(e["kind"], e["reason"]) for e in pm.events][-1] == ("outcome_unknown", "open")
    # The bot's start-up sync, its cycles and its next open of BTC, all behind a lagging list.
    assert pm.sync_existing_positions() == 0
    for _ in range(3):
        assert list(pm.update_positions()) == []
        assert pm.open_position(BTC, "BUY", 2, 5, 0.1) is False
    assert client.sent == [], "no second open"
    assert not pm.has_position(BTC)
    # The list catches up: the position the crashed open made, with that open's stop.
    client.lagging = False
    pm.sync_existing_positions()
    p = pm.positions[BTC]
    assert (p.side, p.amount, p.leverage, p.entry_price) == ("long", 2.0, 5, 100.0)
    assert p.stop_loss == pytest.approx(90.0) and p.take_profit == pytest.approx(130.0)
    assert ("opened", "open") in [(e["kind"], e["reason"]) for e in pm.events]
    assert client.sent == [] and venue.orders == 1
    assert Journal(url).orders_in_flight("bot") == [], "settled"
    del pm
    # Settled: a third start takes nothing back.
    with caplog.at_level(logging.WARNING, logger="TradingBot"):
        caplog.clear()
        third = restarted(LaggingClient(venue, stale=[], lagging=False), url)
    assert not [r for r in caplog.records if "no known outcome" in r.getMessage()]
    assert third.positions[BTC].stop_loss == pytest.approx(90.0)


def test_a_limit_open_killed_while_it_waits_is_cancelled_before_the_symbol_is_free(
    url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The bot's own client (no client order ids) opens with a limit order; the process dies
    while it waits for the fill, the order resting. The journal's row carries the exchange's
    id of the order (written as soon as the limit answer gave it), so the restarted bot cancels
    and reads the order before the lists' silence frees the symbol: its next open does not go
    out beside the resting order. (Before, the row had no id: the symbol was freed, the market
    open went out, and the resting order filled on top once the price reached it.)"""
    venue_file = tmp_path / "venue.json"
    venue = FileVenue(venue_file)
    crash_mid_order(url, venue_file, "limit", tmp_path)
    [resting] = venue.resting()
    assert venue.positions() == []
    [row] = Journal(url).orders_in_flight("bot")
    assert (row["symbol"], row["client_order_id"]) == (BTC, None)
    assert row["intent"]["resting_order_id"] == resting

    client = LaggingClient(venue, stale=[], lagging=False)
    with caplog.at_level(logging.WARNING, logger="TradingBot"):
        pm = PositionManager(client, journal=url, account="bot")
    assert any(
        f"Journal: the limit order {resting} opening {BTC} (long 2.0 contracts)" in r.getMessage()
        for r in caplog.records
    ), [r.getMessage() for r in caplog.records]
    assert pm.sync_existing_positions() == 0
    assert pm.open_position(BTC, "BUY", 2, 5, 0.1) is True
    assert venue.resting() == [], "cancelled before the market order"
    assert (venue.limit(resting) or {}).get("status") == "canceled"
    venue.cross(99.0)  # through the old limit price
    [held] = venue.positions()
    assert held["contracts"] == 2.0, "nothing filled on top"
    assert client.sent == ["buy BTC/USDT:USDT 2.0"]
    assert Journal(url).orders_in_flight("bot") == [], "settled"


def test_a_close_killed_mid_order_is_not_sent_again_and_ends_once(url: str, tmp_path: Path) -> None:
    venue_file = tmp_path / "venue.json"
    venue = FileVenue(venue_file)
    venue.fill(BTC, "buy", 2.0, 5.0)
    stale = venue.positions()
    crash_mid_order(url, venue_file, "close", tmp_path)
    assert venue.positions() == [] and venue.orders == 2
    [row] = Journal(url).orders_in_flight()
    assert (row["account"], row["kind"], row["intent"]["op"], row["intent"]["before"]) == (
        "bot",
        "close",
        "close",
        2.0,
    )

    client = LaggingClient(venue, stale=stale, lagging=True)
    pm = restarted(client, url)
    assert pm.has_position(BTC), "restored from the journal"
    assert [(e["kind"], e["reason"]) for e in pm.events][-1] == ("outcome_unknown", "close")
    # The list still shows it: the bot's close, its cycles and a sync send nothing.
    assert pm.close_position(BTC, "manual") is None
    assert list(pm.update_positions()) == []
    pm.sync_existing_positions()
    assert client.sent == [], "no second close"
    # The list catches up: the crashed close went through, and ends the position once.
    client.lagging = False
    list(pm.update_positions())
    assert not pm.has_position(BTC)
    assert ("closed", "manual") in [(e["kind"], e["reason"]) for e in pm.events]
    assert client.sent == [] and venue.orders == 2
    assert Journal(url).orders_in_flight() == []
    del pm
    closed = Journal(url).closed_positions("bot")
    assert [c["symbol"] for c in closed] == [BTC]
