"""Orders whose outcome is unknown, that the position lists keep showing nothing of, are looked
up by their client order id before the lists' silence is believed (DESIGN rule 7).

Through ``CcxtClient`` and Binance's real ccxt class over the venue simulator
(tests/venue_sim.py), with a journal: the bot is stopped (Ctrl+C) while its order is out and
started again over the journal; the restarted bot's position lists lag by longer than its
``outcome_grace_seconds``. Without the lookups each case below sent an order twice, or left one
resting: found by tests/test_venue_crash_soak.py.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from venue_dialects import DIALECTS
from venue_sim import FakeVenue, Ledger, Order

from position_manager_rs import ManualClock, PositionManager
from position_manager_rs.ccxt_client import CcxtClient

BTC = "BTC/USDT:USDT"
GRACE = 60.0
#: Position reads that lag: more than the outcome rules wait.
LONG_LAG = 20

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def venue() -> Iterator[FakeVenue]:
    dialect = DIALECTS["binanceusdm"]()
    with FakeVenue(dialect, Ledger(dialect.markets)) as venue:
        yield venue


class Bot:
    """The bot's process: a new client and manager over the journal each time it starts."""

    def __init__(self, venue: FakeVenue, tmp_path: Path) -> None:
        self.venue = venue
        self.journal = str(tmp_path / "journal.db")
        self.clock = ManualClock(datetime(2026, 12, 1))
        self.pm = self.start()

    def start(self) -> PositionManager:
        client = CcxtClient(self.venue.make_exchange(), sleep=lambda s: None)
        pm = PositionManager(
            client,
            clock=self.clock,
            ticker_retry_delays=(),
            outcome_grace_seconds=GRACE,
            journal=self.journal,
            account="bot",
        )
        pm.sync_existing_positions()
        return pm

    def restart(self) -> PositionManager:
        del self.pm
        self.pm = self.start()
        return self.pm

    def cycles(self, n: int) -> None:
        for _ in range(n):
            self.clock.advance(60)
            list(self.pm.update_positions())


def resting_orders(venue: FakeVenue) -> list[Order]:
    return [o for o in venue.ledger.orders_sent() if o.status == "open"]


def interrupt_after(client: Any, name: str) -> None:
    """The client's ``name`` does its work, then Ctrl+C arrives before its answer."""
    real = getattr(client, name)

    def interrupted(*args: Any, **kwargs: Any) -> Any:
        real(*args, **kwargs)
        raise KeyboardInterrupt

    setattr(client, name, interrupted)


def stopped_in_a_limit_open(bot: Bot) -> Order:
    """The bot's limit open of BTC: the order rests below the price, and the bot is stopped
    while it waits for the fill."""
    interrupt_after(bot.pm.client, "create_limit_order")
    with pytest.raises(KeyboardInterrupt):
        bot.pm.open_position(BTC, "BUY", 0.002, 5, 0.03, use_limit=True)
    [order] = resting_orders(bot.venue)
    assert (order.kind, order.side, order.amount) == ("limit", "buy", 0.002)
    return order


def test_a_limit_open_left_resting_is_cancelled_before_the_restarted_bot_opens_again(
    venue: FakeVenue, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    bot = Bot(venue, tmp_path)
    order = stopped_in_a_limit_open(bot)
    with caplog.at_level(logging.WARNING, logger="TradingBot"):
        pm = bot.restart()
        assert pm.open_position(BTC, "BUY", 0.002, 5, 0.03) is False, "its key is reserved"
        bot.cycles(3)
    assert order.status == "canceled", "cancelled before the key is free"
    assert any(
        f"Open order {order.client_id} for {BTC} still rests on the exchange" in r.getMessage()
        and "cancelled it" in r.getMessage()
        for r in caplog.records
    ), [r.getMessage() for r in caplog.records]
    # Free again: the bot's next open goes out, and nothing else can fill beside it.
    assert pm.open_position(BTC, "BUY", 0.002, 5, 0.03) is True
    assert resting_orders(venue) == []
    assert venue.ledger.size(BTC, "long") == pytest.approx(0.002)


def test_a_limit_open_that_filled_while_the_bot_was_down_is_tracked_though_the_lists_lag(
    venue: FakeVenue, tmp_path: Path
) -> None:
    bot = Bot(venue, tmp_path)
    order = stopped_in_a_limit_open(bot)
    # The lists show BTC flat for three more reads: the restart's sync, two cycles.
    venue.lag_positions_next(3, venue.legs_now())
    assert order.price is not None
    with venue.ledger.lock:
        venue.ledger._fill(order, order.price)  # the price came down to it meanwhile
    pm = bot.restart()
    bot.cycles(1)  # the outcome rules' grace is over: the lists' silence would release it
    assert pm.has_position(BTC), "tracked from the order, before any list shows it"
    p = pm.positions[BTC]
    assert (p.side, p.amount, p.entry_price) == ("long", 0.002, order.price)
    [opened] = [e for e in pm.events if e["kind"] == "opened"]
    assert opened["position"]["stop_loss"] == pytest.approx(order.price * 0.97), "the open's stop"
    assert p.stop_loss >= opened["position"]["stop_loss"], "trailed since"
    assert pm.open_position(BTC, "BUY", 0.002, 5, 0.03) is False
    bot.cycles(3)  # the lists catch up
    assert pm.has_position(BTC)
    assert venue.ledger.size(BTC, "long") == pytest.approx(0.002), "no second open"
    assert [o.kind for o in venue.ledger.orders_sent()] == ["limit"]


def order_requests(venue: FakeVenue) -> int:
    """Orders the client sent to the venue, taken or refused (not its order lookups)."""
    return sum(1 for r in venue.requests if r.method == "POST" and venue.dialect.is_order(r))


def test_a_close_that_went_through_while_the_bot_was_stopped_is_not_sent_again(
    venue: FakeVenue, tmp_path: Path
) -> None:
    bot = Bot(venue, tmp_path)
    assert bot.pm.open_position(BTC, "BUY", 0.002, 5, 0.03) is True
    venue.lag_positions_next(LONG_LAG)  # the lists keep showing BTC held
    interrupt_after(bot.pm.client, "close_position")
    with pytest.raises(KeyboardInterrupt):
        bot.pm.close_position(BTC, "manual")
    assert venue.ledger.size(BTC, "long") == 0.0, "the close went through"
    sent = order_requests(venue)
    pm = bot.restart()
    # Past the outcome rules' grace (the restart's sync, then a cycle a minute later): the
    # lists' silence would take the close as not executed; the lookup says it filled. The
    # position stays held through the next round of the rules (after it, a list still showing
    # it would be believed: the position changed again after the fill).
    bot.cycles(2)
    assert pm.close_position(BTC, "manual") is None, "held: nothing sent"
    assert order_requests(venue) == sent, "no second close"
    # The lists catch up: the position ends once, with the close's reason.
    venue.calm()
    bot.cycles(2)
    assert not pm.has_position(BTC)
    assert [e["reason"] for e in pm.events if e["kind"] == "closed"] == ["manual"]
    assert order_requests(venue) == sent
