"""Positions in another margin mode than the client's, on the venues whose every order names one.

OKX (``tdMode``), Bitget (``marginMode``), MEXC (``openType``) and HTX (``margin_mode``) take the
margin mode in each order, and an order in another mode than the position it acts on does not
touch that position (OKX and HTX keep a cross and an isolated position apart, so such an order
reduces nothing or opens a second position; Bitget and MEXC refuse it; the fakes refuse it).
``CcxtClient``'s ``margin_mode`` (default: ccxt's, cross) is the account's mode for new
positions; a position opened by hand in the other mode, or left by an earlier run with another
setting, is closed, reduced and added to in its own mode, as its position entry says. (Earlier
builds sent every order in the client's mode: such a position could be neither closed nor
reduced, so its stop loss never took effect.) The fake venues (``venue_sim``,
``Ledger.open(..., cross=...)``) give such a position its own mode and refuse an order in another
one, as the venues do; see docs/ccxt-client.md, "Margin mode". Hyperliquid names the mode in its
leverage change only, which cannot switch an open position's.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
from venue_dialects import DIALECTS
from venue_sim import FakeVenue, Market, running

from position_manager_rs import PositionManager
from position_manager_rs.ccxt_client import CcxtClient

pytestmark = pytest.mark.timeout(60)

#: The venues whose orders each name a margin mode, and the order parameter that names it.
NAMED = {"okx": "tdMode", "bitget": "marginMode", "mexc": "openType", "htx": "margin_mode"}
#: How each venue spells the two modes in that parameter.
WIRE: dict[str, dict[bool, Any]] = {
    "okx": {True: "cross", False: "isolated"},
    "bitget": {True: "crossed", False: "isolated"},
    "mexc": {True: 2, False: 1},
    "htx": {True: "cross", False: "isolated"},
}


@pytest.fixture(params=sorted(NAMED))
def name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(params=[False, True], ids=["oneway", "hedge"])
def hedged(request: pytest.FixtureRequest) -> bool:
    return bool(request.param)


@pytest.fixture(params=[True, False], ids=["cross-account", "isolated-account"])
def account_cross(request: pytest.FixtureRequest) -> bool:
    return bool(request.param)


@pytest.fixture
def world(
    name: str, hedged: bool, account_cross: bool
) -> Iterator[tuple[FakeVenue, CcxtClient, Market]]:
    """A venue whose account is in ``account_cross`` mode, a client set for that mode (the
    cross one left at ccxt's default), and a position opened by hand in the other mode."""
    dialect = DIALECTS[name]()
    with running(dialect, hedge=hedged) as (venue, exchange):
        venue.ledger.cross = account_cross
        mode = "hedge" if hedged else "oneway"
        client = CcxtClient(
            exchange,
            sleep=lambda s: None,
            position_mode=mode,
            margin_mode=None if account_cross else "isolated",
        )
        m = next(iter(venue.ledger.markets.values()))
        venue.ledger.open(m.symbol, "long", 6 * m.lot, m.price, cross=not account_cross)
        yield venue, client, m
        assert venue.unexpected == [], [(r.method, r.path) for r in venue.unexpected]


def orders(venue: FakeVenue) -> list[dict[str, Any]]:
    return [r.params for r in venue.requests_to(venue.dialect.order_route, "POST")]


def named_mode(venue: FakeVenue, name: str, params: dict[str, Any]) -> Any:
    """The margin mode an order request named (OKX: the one order of its batch body)."""
    if name == "okx":
        (body,) = params["_body"]
        return body[NAMED[name]]
    value = params[NAMED[name]]
    return int(value) if name == "mexc" else value


def test_the_client_closes_a_position_in_the_other_mode(
    world: tuple[FakeVenue, CcxtClient, Market], name: str, account_cross: bool
) -> None:
    venue, client, m = world
    (entry,) = client.get_open_positions()
    assert entry["marginMode"] == ("isolated" if account_cross else "cross")
    assert client.close_position(m.symbol, side="long") is True
    assert venue.ledger.size(m.symbol, "long") == 0
    (sent,) = orders(venue)
    assert named_mode(venue, name, sent) == WIRE[name][not account_cross]
    # Closed: the next open, with no list read between, is a new position in the account's mode.
    assert client.create_market_order(m.symbol, "buy", m.lot, 5) is not None
    assert named_mode(venue, name, orders(venue)[-1]) == WIRE[name][account_cross]
    assert venue.ledger.size(m.symbol, "long") == pytest.approx(m.lot)
    assert venue.ledger.cross_of(m.symbol, "long") is account_cross


def test_the_manager_reduces_adds_to_and_closes_a_position_in_the_other_mode(
    world: tuple[FakeVenue, CcxtClient, Market],
    name: str,
    account_cross: bool,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Synced, then a partial exit, a scale-in and the close: every order acts on the position
    in its own mode, and the position is never doubled by one in the account's mode; each
    order's fill is read back without a warning (HTX: under the mode it was sent in)."""
    venue, client, m = world
    caplog.set_level(logging.WARNING)
    manager = PositionManager(client, ticker_retry_delays=())
    assert manager.sync_existing_positions() == 1
    (k,) = manager.positions  # hedge mode too: one leg open, tracked under its symbol
    assert manager.scale_out_position(k, 2 * m.lot) is not None
    assert venue.ledger.size(m.symbol, "long") == pytest.approx(4 * m.lot)
    assert manager.scale_in_position(k, m.lot, m.price) is True
    assert venue.ledger.size(m.symbol, "long") == pytest.approx(5 * m.lot)
    assert venue.ledger.cross_of(m.symbol, "long") is (not account_cross)  # the same position
    assert isinstance(manager.close_position(k, "manual"), float)
    assert venue.ledger.size(m.symbol, "long") == 0
    assert manager.positions == {}
    sent = orders(venue)
    assert len(sent) == 3
    assert {repr(named_mode(venue, name, o)) for o in sent} == {repr(WIRE[name][not account_cross])}
    # A new position afterwards is opened in the account's mode again.
    assert manager.open_position(m.symbol, "BUY", 2 * m.lot, 5, 0.02)
    assert named_mode(venue, name, orders(venue)[-1]) == WIRE[name][account_cross]
    assert venue.ledger.cross_of(m.symbol, "long") is account_cross
    assert venue.ledger.size(m.symbol, "long") == pytest.approx(2 * m.lot)
    client_warnings = [r.getMessage() for r in caplog.records if r.name == "TradingBot"]
    assert [w for w in client_warnings if w.startswith("Could not")] == []


def test_a_lost_close_of_a_position_in_the_other_mode_is_looked_up_in_its_mode(
    world: tuple[FakeVenue, CcxtClient, Market], name: str, account_cross: bool
) -> None:
    """The close is executed and its answer lost; the list lags it. The look-up by its client
    order id finds it (HTX's look-up names the margin mode the order was placed in), so the
    close is settled once and nothing is sent twice."""
    venue, client, m = world
    manager = PositionManager(client, ticker_retry_delays=())
    assert manager.sync_existing_positions() == 1
    (k,) = manager.positions  # hedge mode too: one leg open, tracked under its symbol
    shown = venue.legs_now()
    venue.lose_next_order_answer()
    venue.lag_positions_next(2, shown)
    manager.close_position(k, "manual")
    for _ in range(3):
        assert list(manager.update_positions()) == []
    assert venue.ledger.size(m.symbol, "long") == 0
    assert manager.positions == {}
    assert len(orders(venue)) == 1, "the close went out once"
    ends = [e["kind"] for e in manager.events if e["kind"] in ("closed", "removed")]
    assert ends == ["closed"]


@pytest.mark.parametrize("account_cross", [True, False], ids=["cross-account", "isolated-account"])
def test_htx_a_restarted_client_finds_an_order_in_the_other_mode_by_its_client_id(
    account_cross: bool,
) -> None:
    """HTX's look-up names a margin mode and finds an order only under its own. A client that
    did not send the order (the bot restarted) asks under its ``margin_mode`` and then under
    the other one: the close of a position in the other mode is found, not taken for an order
    never placed (which would let it go out again); an id never sent is "not found" under both."""
    with running(DIALECTS["htx"]()) as (venue, exchange):
        venue.ledger.cross = account_cross
        mode = None if account_cross else "isolated"
        m = next(iter(venue.ledger.markets.values()))
        venue.ledger.open(m.symbol, "long", 4 * m.lot, m.price, cross=not account_cross)
        sender = CcxtClient(exchange, margin_mode=mode)
        assert sender.close_position(m.symbol, client_order_id="pmclose1") is True
        restarted = CcxtClient(exchange, margin_mode=mode)
        found = restarted.get_order_by_client_id("pmclose1", m.symbol)
        assert found is not None
        assert (found["clientOrderId"], found["status"], found["side"]) == (
            "pmclose1",
            "closed",
            "sell",
        )
        assert restarted.get_order_by_client_id("pmnever1", m.symbol) is None
        asked = [
            r.params.get("margin_mode")
            for r in venue.requests
            if r.path.endswith("/v5/trade/order") and r.method == "GET"
        ]
        own, other = ("cross", "isolated") if account_cross else ("isolated", "cross")
        # pmclose1: the sender's fill read (its own mode), the restarted client's two asks;
        # pmnever1: both modes.
        assert asked == [other, own, other, own, other]


@pytest.mark.parametrize("account_cross", [True, False], ids=["cross-account", "isolated-account"])
def test_hyperliquid_adds_to_a_position_in_the_other_mode_at_its_own_mode(
    account_cross: bool, caplog: pytest.LogCaptureFixture
) -> None:
    """Hyperliquid's leverage change before an order names cross or isolated and cannot switch
    the mode of an open position: before a scale-in on a position in the other mode than the
    client's it names the position's mode, so the leverage is set and no warning logged.
    (Earlier builds named the client's: "Cannot switch leverage type with open position.")"""
    with running(DIALECTS["hyperliquid"]()) as (venue, exchange):
        venue.ledger.cross = account_cross
        m = next(iter(venue.ledger.markets.values()))
        venue.ledger.open(m.symbol, "long", 4 * m.lot, m.price, cross=not account_cross)
        client = CcxtClient(exchange, margin_mode=None if account_cross else "isolated")
        manager = PositionManager(client, ticker_retry_delays=())
        assert manager.sync_existing_positions() == 1
        caplog.set_level(logging.WARNING, logger="TradingBot")
        assert manager.scale_in_position(m.symbol, 2 * m.lot, m.price) is True
        assert [r.getMessage() for r in caplog.records if "leverage" in r.getMessage()] == []
        assert venue.ledger.size(m.symbol, "long") == pytest.approx(6 * m.lot)
        assert venue.ledger.cross_of(m.symbol, "long") is (not account_cross)
        actions = [
            r.params["action"]
            for r in venue.requests_to("/exchange", "POST")
            if r.params.get("action", {}).get("type") == "updateLeverage"
        ]
        assert [a["isCross"] for a in actions] == [not account_cross]


@pytest.mark.parametrize("hedged", [False], ids=["oneway"])
def test_a_one_way_order_on_the_other_side_names_the_held_positions_mode(
    world: tuple[FakeVenue, CcxtClient, Market], name: str, account_cross: bool
) -> None:
    """One-way mode: the list shows a long in the other mode than the account's (a reversal by
    hand, as the venue crash run's MEXC seed 36 met it), and an order for the short side goes
    out before the manager has taken the flip in (the bot's scale-in of the short its book
    still holds). In one-way mode that order acts on the long, so it must name the long's mode:
    named in the account's, the venue refused it (MEXC, Bitget) or opened a second position
    beside the long (OKX, HTX)."""
    venue, client, m = world
    (entry,) = client.get_open_positions()
    assert entry["side"] == "long"
    assert client.create_market_order(m.symbol, "sell", 2 * m.lot, 5) is not None
    (sent,) = orders(venue)
    assert named_mode(venue, name, sent) == WIRE[name][not account_cross]
    assert venue.ledger.size(m.symbol, "long") == pytest.approx(4 * m.lot)
    assert venue.ledger.cross_of(m.symbol, "long") is (not account_cross)
    assert [r for r in venue.refusals if r[2] in ("margin", "td_mode")] == []


@pytest.mark.parametrize("hedged", [True], ids=["hedge"])
def test_a_hedge_leg_opened_beside_one_in_the_other_mode_names_the_symbols_mode_on_bitget(
    world: tuple[FakeVenue, CcxtClient, Market], name: str, account_cross: bool
) -> None:
    """Hedge mode, a long opened by hand in the other mode than the account's, then the bot
    opens the short. Bitget keeps one margin mode per symbol (its ``set-margin-mode`` names a
    symbol and no side), so the short is in the long's mode and its order must name that
    mode, else Bitget refuses it; OKX, MEXC and HTX keep a mode per position, and a new leg
    takes the account's."""
    venue, client, m = world
    (entry,) = client.get_open_positions()
    assert entry["side"] == "long"
    long_leverage = venue.ledger.lev(m.symbol, "long")
    assert client.create_market_order(m.symbol, "sell", 2 * m.lot, 7) is not None
    shared = name == "bitget"
    (sent,) = orders(venue)
    assert named_mode(venue, name, sent) == WIRE[name][account_cross != shared]
    assert venue.ledger.size(m.symbol, "short") == pytest.approx(2 * m.lot)
    assert venue.ledger.cross_of(m.symbol, "short") is (account_cross != shared)
    assert venue.ledger.size(m.symbol, "long") == pytest.approx(6 * m.lot)
    # Nothing is refused: neither the order nor a leverage change before it (HTX keeps a
    # leverage per contract and margin mode: the short's, in the account's mode, leaves the
    # long's as it was).
    assert [r for r in venue.refusals if r[2] in ("margin", "td_mode")] == []
    if name == "htx":
        assert (venue.ledger.lev(m.symbol, "short"), long_leverage) == (7, 5)
        assert venue.ledger.lev(m.symbol, "long") == 5, "the long's mode's, as it was"


@pytest.mark.parametrize("reduce", [False, True], ids=["open", "reduce"])
def test_a_client_that_read_no_list_reads_the_held_modes_before_its_first_order(
    world: tuple[FakeVenue, CcxtClient, Market],
    name: str,
    hedged: bool,
    account_cross: bool,
    reduce: bool,
) -> None:
    """A process just started (the venue crash run's Bitget hedge seed 44: the bot's first
    request after the restart was the open of a short beside a long opened by hand in the other
    mode): no list this client read has shown the long. An order that acts on it (a reduction;
    in one-way mode any order on the symbol) or, on Bitget in hedge mode, opens a leg beside it
    reads the symbol's positions first and names the long's mode; before, it named the
    account's, and the venue refused it (Bitget, MEXC) or opened a second position (OKX, HTX).
    A new hedge leg elsewhere takes the account's mode without a read."""
    venue, client, m = world
    leg = "long" if hedged else None
    assert (
        client.create_market_order(
            m.symbol,
            "sell",
            2 * m.lot,
            5,
            reduce_only=reduce,
            position_side=leg if reduce else None,
        )
        is not None
    )
    (sent,) = orders(venue)
    acts_on_long = reduce or not hedged
    beside = hedged and not reduce and name == "bitget"
    own = acts_on_long or beside
    assert named_mode(venue, name, sent) == WIRE[name][account_cross != own]
    reads = venue.requests_to(venue.dialect.positions_route, "GET")
    assert len(reads) == (1 if own else 0)
    assert [r for r in venue.refusals if r[2] in ("margin", "td_mode")] == []
    if acts_on_long:
        assert venue.ledger.size(m.symbol, "long") == pytest.approx(4 * m.lot)
    else:
        assert venue.ledger.size(m.symbol, "short") == pytest.approx(2 * m.lot)
