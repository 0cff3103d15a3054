"""``reopen_hold_seconds`` against the bot's own client, which answers ``[]`` for a failed read.

Four failed reads in a row — the cycle's list and its immediate re-read, then the two reads
``open_position`` makes before opening a symbol it remembers — look exactly like a position
closed on the venue. Without a hold the bot's next ``open_position`` puts a second position on
top of the live one (the venue then holds twice the size); with one it is refused, and the next
real list restores the position as it was. The same holds for a venue that answers ``[]``
itself (HTTP 200) through ``CcxtClient`` over its real ccxt class.
"""

from __future__ import annotations

import logging
from datetime import datetime

import pytest
from bot_sim import BotLikeClient
from venue_dialects import DIALECTS
from venue_sim import running

from position_manager_rs import ManualClock, PaperExchange, PositionManager
from position_manager_rs.ccxt_client import CcxtClient

SYMBOL = "BTC/USDT:USDT"


def venue(hold: float) -> tuple[PaperExchange, BotLikeClient, PositionManager]:
    paper = PaperExchange(seed=1, volatility=0.0)
    client = BotLikeClient(paper)
    pm = PositionManager(
        client, 0.02, clock=paper.clock, ticker_retry_delays=(), reopen_hold_seconds=hold
    )
    assert pm.open_position(SYMBOL, "BUY", 3, 10, 0.05) is True
    # A live position the lists have shown (a fill no list has shown yet is not untracked by
    # one list's absence: outcome_confirmations).
    assert list(pm.update_positions()) == []
    return paper, client, pm


def held_contracts(paper: PaperExchange) -> float:
    position = paper.position(SYMBOL)
    return 0.0 if position is None else float(position["contracts"])


def four_failed_reads_then_an_open(paper: PaperExchange, pm: PositionManager) -> bool:
    paper.fail_next("get_open_positions", times=4)
    assert list(pm.update_positions()) == []
    assert not pm.has_position(SYMBOL), "two failed reads in a row untrack it"
    return pm.open_position(SYMBOL, "BUY", 3, 10, 0.05)


def test_without_a_hold_the_open_goes_on_top_of_the_live_position() -> None:
    paper, client, pm = venue(0.0)
    assert four_failed_reads_then_an_open(paper, pm) is True
    assert held_contracts(paper) == 6.0, "the venue holds the symbol twice"
    assert client.calls["create_market_order"] == 2


def test_a_hold_refuses_the_open_and_the_next_real_list_restores_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    paper, client, pm = venue(300.0)
    position = pm.get_position(SYMBOL)
    with caplog.at_level(logging.ERROR, logger="TradingBot"):
        assert four_failed_reads_then_an_open(paper, pm) is False
    assert held_contracts(paper) == 3.0
    assert client.calls["create_market_order"] == 1
    assert client.failures["get_open_positions"] == 4
    messages = [r.getMessage() for r in caplog.records if r.name == "TradingBot"]
    assert (
        "Invalid position parameters: Position for BTC/USDT:USDT may still be open: a list "
        "showed it held and every list since showed no position at all, and the exchange still "
        "lists none; not opening it again for 300.0 more seconds (reopen_hold_seconds=300.0: an "
        "empty list cannot be told from a failed read)"
    ) in messages
    # The failures are over: the same object comes back, with its state.
    paper.advance()
    assert list(pm.update_positions()) == []
    assert pm.get_position(SYMBOL) is position
    assert [e["kind"] for e in pm.events if e["symbol"] == SYMBOL][-2:] == ["removed", "restored"]
    # Tracked again: a new open is refused as a duplicate, nothing sent.
    assert pm.open_position(SYMBOL, "BUY", 3, 10, 0.05) is False
    assert client.calls["create_market_order"] == 1


def test_a_real_close_can_be_reopened_when_the_hold_is_over() -> None:
    paper, client, pm = venue(300.0)
    assert paper.close_externally(SYMBOL)
    assert list(pm.update_positions()) == []
    assert not pm.has_position(SYMBOL)
    assert pm.open_position(SYMBOL, "BUY", 3, 10, 0.05) is False
    paper.advance(4)  # 240 s of paper time
    assert pm.open_position(SYMBOL, "BUY", 3, 10, 0.05) is False
    paper.advance()  # 300 s
    assert pm.open_position(SYMBOL, "BUY", 3, 10, 0.05) is True
    assert held_contracts(paper) == 3.0
    assert client.calls["create_market_order"] == 2


def test_a_list_showing_another_position_ends_the_hold() -> None:
    paper, client, pm = venue(300.0)
    assert paper.close_externally(SYMBOL)
    assert list(pm.update_positions()) == []
    # Another position, opened by hand, is listed: the client answers real lists again.
    paper.create_market_order("ETH/USDT:USDT", "sell", 2, 10)
    assert list(pm.update_positions()) == []
    assert pm.open_position(SYMBOL, "BUY", 3, 10, 0.05) is True
    assert client.calls["create_market_order"] == 2


# --------------------------------------------------------------------------- over a real venue


def venue_empty_answers_then_an_open(name: str, hedge: bool, hold: float) -> tuple[bool, float]:
    """A real ccxt class over a fake venue in ``name``'s dialect that answers four position
    lists with ``[]`` (HTTP 200) while it holds a position the manager tracks — a venue's own
    glitch, which ``CcxtClient`` cannot tell from an empty account — then the bot's open of the
    same position: whether it was sent, and what the venue holds then."""
    dialect = DIALECTS[name]()
    mode = "hedge" if hedge and not dialect.mode_readable_when_flat else "auto"
    with running(dialect, hedge=hedge) as (venue, exchange):
        clock = ManualClock(datetime(2026, 12, 1))
        client = CcxtClient(
            exchange,
            sleep=lambda s: None,
            position_mode=mode,
            clock=lambda: clock.now().timestamp(),
        )
        pm = PositionManager(
            client,
            0.02,
            clock=clock,
            ticker_retry_delays=(),
            position_mode="hedge" if hedge else "oneway",
            reopen_hold_seconds=hold,
        )
        market = next(iter(venue.ledger.markets.values()))
        amount = 3 * market.lot
        key = f"{market.symbol}@short" if hedge else market.symbol
        assert pm.open_position(market.symbol, "SELL", amount, 5, 0.05) is True
        clock.advance(60)
        assert list(pm.update_positions()) == []  # listed: a live position the lists showed
        venue.answer_empty_positions(4)
        clock.advance(60)
        assert list(pm.update_positions()) == []
        assert not pm.has_position(key), "two empty answers in a row untrack it"
        opened = pm.open_position(market.symbol, "SELL", amount, 5, 0.05)
        held = venue.ledger.size(market.symbol, "short")
        assert venue.empty_positions == 0, "the open read the last two empty answers"
        if not opened:
            # The venue answers for real again: the next cycle restores the position.
            clock.advance(60)
            assert list(pm.update_positions()) == []
            assert pm.has_position(key)
            assert [e["kind"] for e in pm.events if e["symbol"] == key][-2:] == [
                "removed",
                "restored",
            ]
        return opened, held / amount


#: BingX in hedge mode (the long venue run's seed 52 met this there), Binance USD-M one-way.
VENUE_CASES = [("bingx", True), ("binanceusdm", False)]


@pytest.mark.timeout(60)
@pytest.mark.parametrize(("name", "hedge"), VENUE_CASES)
def test_without_a_hold_a_venues_empty_answers_put_an_open_on_top(name: str, hedge: bool) -> None:
    assert venue_empty_answers_then_an_open(name, hedge, 0.0) == (True, 2.0)


@pytest.mark.timeout(60)
@pytest.mark.parametrize(("name", "hedge"), VENUE_CASES)
def test_a_hold_refuses_the_open_over_a_venues_empty_answers(name: str, hedge: bool) -> None:
    assert venue_empty_answers_then_an_open(name, hedge, 300.0) == (False, 1.0)


def listed_by_hand(hold: float) -> tuple[PaperExchange, BotLikeClient, PositionManager]:
    """A manager with ``reopen_hold_seconds=hold`` whose cycle listed a position a person
    opened by hand (3 long) and imported nothing."""
    paper = PaperExchange(seed=1, volatility=0.0)
    client = BotLikeClient(paper)
    pm = PositionManager(
        client, 0.02, clock=paper.clock, ticker_retry_delays=(), reopen_hold_seconds=hold
    )
    paper.create_market_order(SYMBOL, "buy", 3)  # by hand
    assert list(pm.update_positions()) == []
    assert not pm.has_position(SYMBOL), "a cycle imports nothing"
    return paper, client, pm


def refused_over_two_failed_reads(
    paper: PaperExchange, pm: PositionManager, caplog: pytest.LogCaptureFixture, hold: float
) -> bool:
    """The bot opens the symbol of :func:`listed_by_hand` while two reads fail (``[]``):
    whether it was refused (with a hold). Without a hold it goes on top of the person's
    position, as before (checked here)."""
    paper.fail_next("get_open_positions", times=2)
    with caplog.at_level(logging.INFO, logger="TradingBot"):
        opened = pm.open_position(SYMBOL, "BUY", 3, 10, 0.05)
    if not hold:
        assert opened is True
        assert held_contracts(paper) == 6.0, "on top of the person's position"
        return False
    assert opened is False
    return True


@pytest.mark.parametrize("hold", [0.0, 300.0])
def test_a_position_a_list_showed_held_by_hand_is_held_over_empty_answers(
    hold: float, caplog: pytest.LogCaptureFixture
) -> None:
    """A person opens the symbol by hand; the bot's cycle list shows it (a cycle does not
    import), then the two reads ``open_position`` makes before opening a symbol the last list
    showed held both fail (``[]``). With a hold the open is refused and held (the venue run's
    BingX hedge seed 20: two empty answers, and the bot's open went on top of the person's
    position); the next real list imports the person's position. Without one the open goes on
    top, as before (``reopen_hold_seconds`` is opt-in)."""
    paper, client, pm = listed_by_hand(hold)
    if not refused_over_two_failed_reads(paper, pm, caplog, hold):
        return
    assert held_contracts(paper) == 3.0
    assert client.calls["create_market_order"] == 0
    assert (
        f"Invalid position parameters: Position for {SYMBOL} was listed held by a position the "
        "manager does not track, and the exchange now lists no position at all; not opening it "
        "for 300.0 seconds (reopen_hold_seconds=300.0: an empty list cannot be told from a "
        "failed read)"
    ) in caplog.messages
    # Still held while the answers stay empty, in words that fit a position the manager never
    # tracked; the next real list imports the person's position.
    paper.fail_next("get_open_positions", times=2)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="TradingBot"):
        assert pm.open_position(SYMBOL, "BUY", 3, 10, 0.05) is False
    [refusal] = [m for m in caplog.messages if m.startswith("Invalid position parameters")]
    assert f"Position for {SYMBOL} may still be open: a list showed it held" in refusal
    assert "untracked" not in refusal
    assert client.calls["create_market_order"] == 0
    assert pm.open_position(SYMBOL, "BUY", 3, 10, 0.05) is False
    assert pm.has_position(SYMBOL) and pm.positions[SYMBOL].amount == 3.0
    assert held_contracts(paper) == 3.0 and client.calls["create_market_order"] == 0


@pytest.mark.parametrize("hold", [0.0, 300.0])
def test_a_position_by_hand_a_cycle_listed_is_held_over_a_cycles_empty_answer(
    hold: float, caplog: pytest.LogCaptureFixture
) -> None:
    """A person opens the symbol by hand; a cycle's list shows it (a cycle does not import),
    then the next cycle's read fails (``[]``): that empty list became the last one, so the
    bot's open checked nothing and went on top of the person's position (the crash run's
    KuCoin one-way seed 48). With a hold, a list that shows no position at all holds the keys
    the list before it showed held by positions the manager does not track, as it holds those
    it untracks: the open reads first and is refused, and a real list ends the hold (the
    position is imported). Without one the open goes on top, as before (opt-in)."""
    paper, client, pm = listed_by_hand(hold)
    paper.fail_next("get_open_positions", times=1)
    assert list(pm.update_positions()) == []
    reads = client.calls["get_open_positions"]
    if not refused_over_two_failed_reads(paper, pm, caplog, hold):
        return
    assert client.calls["get_open_positions"] > reads, "the open read the exchange first"
    assert held_contracts(paper) == 3.0 and client.calls["create_market_order"] == 0
    [refusal] = [m for m in caplog.messages if m.startswith("Invalid position parameters")]
    assert f"Position for {SYMBOL} may still be open: a list showed it held" in refusal
    # The failures are over: the next open's read imports the person's position.
    assert pm.open_position(SYMBOL, "BUY", 3, 10, 0.05) is False
    assert pm.has_position(SYMBOL) and pm.positions[SYMBOL].amount == 3.0
    assert held_contracts(paper) == 3.0 and client.calls["create_market_order"] == 0


OTHER = "ETH/USDT:USDT"


@pytest.mark.parametrize("hold", [0.0, 300.0])
def test_an_empty_read_after_another_symbols_fill_does_not_hide_a_position_by_hand(
    hold: float, caplog: pytest.LogCaptureFixture
) -> None:
    """A person opens the symbol by hand and a cycle's list shows it; the bot then opens
    another symbol, and the list it reads right after that fill (for the contract size) fails
    (``[]``). That empty read became the last list, so the next open of the person's symbol
    checked nothing and went on top of it (the crash run's KuCoin one-way seed 52, where the
    next cycle's empty answer then held nothing). A list that shows no position at all right
    after a fill of ours lags it or failed: it tells nothing, and the last list stays the one
    that showed the person's position. The open reads first: the person's position is
    imported and the open refused; with a hold, over a cycle's empty answer and two failed
    reads as well."""
    paper, client, pm = listed_by_hand(hold)
    paper.fail_next("get_open_positions", times=1)
    assert pm.open_position(OTHER, "BUY", 1, 10, 0.05) is True
    assert client.calls["create_market_order"] == 1
    if hold:
        paper.fail_next("get_open_positions", times=1)
        assert list(pm.update_positions()) == []
        assert pm.has_position(OTHER), "a fill no list has shown is kept over one empty answer"
        reads = client.calls["get_open_positions"]
        assert refused_over_two_failed_reads(paper, pm, caplog, hold)
        assert client.calls["get_open_positions"] > reads, "the open read the exchange first"
        [refusal] = [m for m in caplog.messages if m.startswith("Invalid position parameters")]
        assert f"Position for {SYMBOL} may still be open: a list showed it held" in refusal
    reads = client.calls["get_open_positions"]
    assert pm.open_position(SYMBOL, "BUY", 3, 10, 0.05) is False
    assert client.calls["get_open_positions"] > reads, "the open read the exchange first"
    assert pm.has_position(SYMBOL) and pm.positions[SYMBOL].amount == 3.0
    assert held_contracts(paper) == 3.0
    assert client.calls["create_market_order"] == 1, "no order for the person's symbol"
