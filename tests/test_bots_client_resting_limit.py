"""A limit open on the bot's own client whose cancel did not go through (DESIGN rule 7).

The bot's client (tests/bot_sim.py's ``BotLikeClient`` over a ``PaperExchange``) takes no client
order ids and answers ``False`` for a cancel that failed. The original then gave up the open and
left its post-only order resting on the venue: the bot's next open of the symbol went out beside
it, and the resting order could fill onto that position later (an open on top, found for
``CcxtClient`` by tests/test_venue_crash_soak.py). Now the open keeps its symbol reserved, and
before the lists' silence frees it the order is cancelled and read by the venue's own id: what
it filled is tracked, and only an order that ended is let go.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from bot_sim import BotLikeClient, bots_manager
from journal_helpers import journal_url

from position_manager_rs import PaperExchange, PositionManager

SYM = "BTC/USDT:USDT"

pytestmark = pytest.mark.timeout(60)


def held(paper: PaperExchange) -> float:
    position = paper.position(SYM)
    return 0.0 if position is None else float(position["contracts"])


def cycle(paper: PaperExchange, pm: PositionManager) -> None:
    paper.advance()
    assert list(pm.update_positions()) == []


def a_limit_open_left_resting(
    failed_cancels: int = 1, **options: Any
) -> tuple[PaperExchange, BotLikeClient, PositionManager]:
    """The bot's limit open of 3 BTC: its order rests below the price and the cancel after the
    wait fails (and the next ``failed_cancels - 1`` too); ``options`` go to the manager."""
    paper = PaperExchange(seed=1, volatility=0.0)
    client = BotLikeClient(paper)
    pm = bots_manager(client, **options)
    paper.fail_next("cancel_order", times=failed_cancels)
    assert pm.open_position(SYM, "BUY", 3, 10, 0.05, True) is False
    [order] = paper.open_orders(SYM)
    assert (order["side"], order["amount"]) == ("buy", 3)
    assert client.failures["cancel_order"] == 1, "the client answered False"
    assert [e["kind"] for e in pm.events] == ["outcome_unknown"]
    return paper, client, pm


def test_the_resting_order_is_cancelled_before_the_bots_next_open_goes_out(
    caplog: pytest.LogCaptureFixture,
) -> None:
    paper, _, pm = a_limit_open_left_resting()
    # The bot's next open reads the list (twice: it shows nothing of what is tracked), which
    # is enough to stop waiting for the open: its order is cancelled first, then it goes out.
    assert pm.open_position(SYM, "BUY", 3, 10, 0.05) is True
    assert paper.open_orders(SYM) == [], "cancelled before the market order"
    assert "still rested on the exchange and no position is listed; cancelled it" in caplog.text
    paper.set_price(SYM, paper.price(SYM) * 0.99)  # through the old limit price
    assert held(paper) == 3, "nothing filled on top"
    cycle(paper, pm)
    assert pm.positions[SYM].amount == 3


def test_a_resting_order_that_cannot_be_cancelled_keeps_the_symbol_reserved() -> None:
    paper, client, pm = a_limit_open_left_resting(failed_cancels=3)
    assert pm.open_position(SYM, "BUY", 3, 10, 0.05) is False, "it may still fill"
    cycle(paper, pm)
    assert pm.open_position(SYM, "BUY", 3, 10, 0.05) is True, "cancelled at the third try"
    assert client.failures["cancel_order"] == 3
    paper.set_price(SYM, paper.price(SYM) * 0.99)
    assert held(paper) == 3, "nothing filled on top"


class PollingBotClient(BotLikeClient):
    """The bot's ``wait_for_order_fill`` as spec §4 describes it: it reads the order's status
    every ``check_interval`` seconds until the order is closed with nothing remaining, cancelled
    or expired, or ``timeout`` seconds have passed, then answers the last status. The seconds it
    would sleep are counted (``waits``, one entry per call) instead of slept."""

    def __init__(self, paper: PaperExchange) -> None:
        super().__init__(paper)
        self.waits: list[float] = []

    def wait_for_order_fill(
        self, order_id: str, symbol: str, timeout: int = 30, check_interval: int = 2
    ) -> dict[str, Any] | None:
        waited = 0.0
        while True:
            status = super().wait_for_order_fill(order_id, symbol, timeout, check_interval)
            done = status is not None and (
                status["status"] in ("canceled", "expired")
                or (status["status"] == "closed" and not status["remaining"])
            )
            if status is None or done or waited >= timeout:
                self.waits.append(waited)
                return status
            waited += check_interval


def test_a_check_while_the_cancel_keeps_failing_waits_a_second_not_the_fills_ten() -> None:
    """Each time the lists ask about the resting order, the manager cancels it and reads its
    status. While the cancel keeps failing the order stays open, and a read with the open's
    ``timeout=10`` held the update cycle (and every other position's exit checks) for 10 s each
    time; the check asks for ``timeout=1, check_interval=1``."""
    paper = PaperExchange(seed=1, volatility=0.0)
    client = PollingBotClient(paper)
    pm = bots_manager(client)
    paper.fail_next("cancel_order", times=4)
    assert pm.open_position(SYM, "BUY", 3, 10, 0.05, True) is False
    assert client.waits == [10], "the open's own wait is the original's"
    assert pm.open_position(SYM, "BUY", 3, 10, 0.05) is False, "it may still fill"
    cycle(paper, pm)
    cycle(paper, pm)
    assert client.failures["cancel_order"] == 4
    assert client.waits == [10, 1, 1, 1], "each check while the cancel fails: 1 s"
    assert len(paper.open_orders(SYM)) == 1, "the order still rests; the symbol stays reserved"
    assert pm.open_position(SYM, "BUY", 3, 10, 0.05) is True, "cancelled at the fifth try"
    assert client.waits[-1] == 0, "a cancelled order answers at once"
    paper.set_price(SYM, paper.price(SYM) * 0.99)
    assert held(paper) == 3, "nothing filled on top"


def test_a_resting_order_that_filled_meanwhile_is_tracked_not_opened_again() -> None:
    paper, client, pm = a_limit_open_left_resting()
    limit_price = paper.open_orders(SYM)[0]["price"]
    paper.lag_positions_next(4)  # the lists lag what follows:
    paper.set_price(SYM, limit_price * 0.999)  # the order fills
    assert paper.open_orders(SYM) == []
    # The bot's next open: its lists show nothing, the order's own status says it filled.
    assert pm.open_position(SYM, "BUY", 3, 10, 0.05) is True, "the position is open, tracked"
    assert client.calls["create_market_order"] == 0, "and no order went out for it"
    p = pm.positions[SYM]
    assert (p.side, p.amount, p.entry_price) == ("long", 3, limit_price)
    cycle(paper, pm)
    cycle(paper, pm)
    assert held(paper) == 3, "one open, not two"
    assert pm.positions[SYM].amount == 3
    assert [e["kind"] for e in pm.events] == ["outcome_unknown", "opened"]


@pytest.mark.parametrize("kept_in", ["sqlite", "postgres", "state_file", "state_file_to_journal"])
def test_a_restart_cancels_the_resting_order_before_the_symbol_is_free(
    kept_in: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The process stops while the order rests. The journal (or the state file the bot saved)
    kept the open with the exchange's id of its order, so the restarted manager cancels and
    reads it before the lists' silence frees the symbol: the bot's next open does not go out
    beside it. (Before, the journal kept the open without the id and a state file kept no
    open at all: the symbol was freed, the market open went out and the resting order then
    filled on top of it.)"""
    if kept_in == "state_file":
        paper, client, pm = a_limit_open_left_resting()
        path = tmp_path / "state.json"
        pm.save_state(path)
        with caplog.at_level(logging.WARNING, logger="TradingBot"):
            again = bots_manager(client)
            again.load_state(path)
        source, when = "load_state", "had no known outcome when the state was saved at"
    elif kept_in == "state_file_to_journal":
        # A bot moving from its state file to a journal: the load journals the order's row,
        # so a restart from the journal right after still knows the order by its id.
        paper, client, pm = a_limit_open_left_resting()
        path = tmp_path / "state.json"
        pm.save_state(path)
        journal = str(tmp_path / "journal.db")
        moved = bots_manager(client, journal=journal, account="bot")
        assert moved.load_state(path) == 0
        del moved
        with caplog.at_level(logging.WARNING, logger="TradingBot"):
            again = bots_manager(client, journal=journal, account="bot")
        source, when = "Journal", "sent at"
    else:
        journal = journal_url(kept_in, tmp_path, "resting")
        paper, client, pm = a_limit_open_left_resting(journal=journal, account="bot")
        del pm
        with caplog.at_level(logging.WARNING, logger="TradingBot"):
            again = bots_manager(client, journal=journal, account="bot")
        source, when = "Journal", "sent at"
    [order] = paper.open_orders(SYM)
    assert (
        f"{source}: the limit order {order['id']} opening {SYM} (long 3.0 contracts) {when}"
    ) in caplog.text
    assert "and may still rest on the exchange" in caplog.text
    assert again.sync_existing_positions() == 0
    assert again.open_position(SYM, "BUY", 3, 10, 0.05) is True
    assert paper.open_orders(SYM) == [], "cancelled before the market order"
    paper.set_price(SYM, order["price"] * 0.99)  # through the old limit price
    assert held(paper) == 3, "nothing filled on top"
    cycle(paper, again)
    assert again.positions[SYM].amount == 3
