"""``CcxtClient`` and ``PositionManager`` on real ccxt exchange classes, venue by venue.

Each venue of ``venue_dialects.DIALECTS`` (KuCoin futures, Binance USD-M, Bybit, OKX, Bitget,
Gate, BingX, Hyperliquid, MEXC, HTX) runs its real ccxt class against a fake venue over loopback
HTTP that answers in the venue's documented REST format (``venue_sim``), in one-way and in hedge
mode (Hyperliquid: one-way only). What is checked: the position list as the client reports it
(``side`` and ``hedged`` on every entry, placeholders dropped, errors raised and never answered
``[]``), the leg each order names in hedge mode (a close takes exactly the tracked leg, the other
one stays), the requested leverage landing on the venue (cross accounts stay cross, isolated
round trips), fills and look-ups without warnings, client order ids in the venue's form and
found again (Gate: among its finished orders once it no longer finds them by the id), cancels,
refusals that are rejections and not unknown outcomes, markets listed after start, and a
``PositionManager`` driven through sync, cycles, a vanished position, an empty list, errors,
open/close round trips and an order whose answer was lost, in both modes, and a close behind a
position list that lags it (looked up by its client order id, not taken back). Every test of
the matrix runs on every venue (about 30 per venue, some 17 s for the module).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import ccxt  # type: ignore[import-untyped]
import pytest
from venue_dialects import DIALECTS, Bybit, Gate
from venue_sim import FakeVenue, Market, running

from position_manager_rs import PositionManager
from position_manager_rs.ccxt_client import FINISHED_ORDERS_PAGE, CcxtClient

pytestmark = pytest.mark.timeout(30)

VENUES = sorted(DIALECTS)


@pytest.fixture(params=VENUES)
def venue_name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _start(name: str, hedge: bool) -> Iterator[tuple[FakeVenue, CcxtClient]]:
    dialect = DIALECTS[name]()
    if hedge and not dialect.has_hedge_mode:
        pytest.skip(f"{name} has no hedge mode")
    # What the user sets (docs/ccxt-client.md): where a flat account cannot tell its mode,
    # a hedge-mode account is declared.
    mode = "hedge" if hedge and not dialect.mode_readable_when_flat else "auto"
    with running(dialect, hedge=hedge) as (venue, exchange):
        yield venue, CcxtClient(exchange, sleep=lambda s: None, position_mode=mode)
        assert venue.unexpected == [], [(r.method, r.path) for r in venue.unexpected]


@pytest.fixture
def one_way(venue_name: str) -> Iterator[tuple[FakeVenue, CcxtClient]]:
    yield from _start(venue_name, hedge=False)


@pytest.fixture
def hedge(venue_name: str) -> Iterator[tuple[FakeVenue, CcxtClient]]:
    yield from _start(venue_name, hedge=True)


def market(venue: FakeVenue) -> Market:
    return next(iter(venue.ledger.markets.values()))


def legs(client: CcxtClient) -> list[tuple[str, str, float, bool]]:
    return sorted(
        (p["symbol"], p["side"], p["contracts"], p["hedged"]) for p in client.get_open_positions()
    )


# --------------------------------------------------------------------------- reads


def test_one_way_entries_carry_side_and_hedged_false(
    one_way: tuple[FakeVenue, CcxtClient],
) -> None:
    venue, client = one_way
    m = market(venue)
    venue.ledger.open(m.symbol, "short", 3 * m.lot, m.price)
    assert legs(client) == [(m.symbol, "short", pytest.approx(3 * m.lot), False)]
    (entry,) = client.get_open_positions()
    assert entry["entryPrice"] == pytest.approx(m.price)


def test_hedge_entries_list_both_legs_with_hedged_true(
    hedge: tuple[FakeVenue, CcxtClient],
) -> None:
    venue, client = hedge
    m = market(venue)
    venue.ledger.open(m.symbol, "long", 5 * m.lot, m.price)
    venue.ledger.open(m.symbol, "short", 3 * m.lot, m.price)
    assert legs(client) == [
        (m.symbol, "long", pytest.approx(5 * m.lot), True),
        (m.symbol, "short", pytest.approx(3 * m.lot), True),
    ]


def test_a_hedge_account_with_one_leg_lists_no_placeholder(
    hedge: tuple[FakeVenue, CcxtClient],
) -> None:
    venue, client = hedge
    m = market(venue)
    venue.ledger.open(m.symbol, "long", 2 * m.lot, m.price)
    assert legs(client) == [(m.symbol, "long", pytest.approx(2 * m.lot), True)]


def test_no_position_is_an_empty_list(one_way: tuple[FakeVenue, CcxtClient]) -> None:
    venue, client = one_way
    assert client.get_open_positions() == []
    assert venue.requests_to(venue.dialect.positions_route)


@pytest.mark.parametrize("status", [429, 503])
def test_a_failed_position_read_raises_and_is_never_empty(
    one_way: tuple[FakeVenue, CcxtClient], status: int
) -> None:
    venue, client = one_way
    m = market(venue)
    venue.ledger.open(m.symbol, "long", m.lot, m.price)
    client.get_open_positions()
    venue.fail_next(venue.dialect.positions_route, status=status)
    with pytest.raises(ccxt.BaseError) as raised:
        client.get_open_positions()
    if status == 429:
        assert isinstance(raised.value, (ccxt.RateLimitExceeded, ccxt.DDoSProtection))
    assert [p["symbol"] for p in client.get_open_positions()] == [m.symbol]


def test_a_market_listed_after_start_is_kept_and_warned_once(
    one_way: tuple[FakeVenue, CcxtClient], caplog: pytest.LogCaptureFixture
) -> None:
    venue, client = one_way
    m = market(venue)
    client.get_open_positions()  # markets loaded
    venue.listed_late.add(m.symbol)
    venue.ledger.open(m.symbol, "long", 2 * m.lot, m.price)
    caplog.set_level(logging.WARNING, logger="TradingBot")
    first = client.get_open_positions()
    second = client.get_open_positions()
    assert len(first) == 1 and len(second) == 1
    assert first[0]["side"] == "long" and first[0]["contracts"]
    warned = [r for r in caplog.records if "a market ccxt does not know" in r.getMessage()]
    assert len(warned) == 1


# --------------------------------------------------------------------------- orders


def test_open_and_close_round_trip_one_way(one_way: tuple[FakeVenue, CcxtClient]) -> None:
    venue, client = one_way
    m = market(venue)
    order = client.create_market_order(m.symbol, "buy", 2 * m.lot, 7)
    assert order is not None and order["filled"] == pytest.approx(2 * m.lot)
    assert order["average"] == pytest.approx(m.price)
    assert venue.ledger.size(m.symbol, "long") == pytest.approx(2 * m.lot)
    assert client.close_position(m.symbol) is True
    assert venue.ledger.held() == []
    assert client.close_position(m.symbol) is False  # nothing left: nothing sent


def test_an_order_without_its_leg_is_refused_in_hedge_mode(
    hedge: tuple[FakeVenue, CcxtClient],
) -> None:
    """What the venue does with a close that names no leg (why the client names it)."""
    venue, client = hedge
    m = market(venue)
    venue.ledger.open(m.symbol, "long", 2 * m.lot, m.price)
    if venue.dialect.leg_from_sign:  # Gate: a reduce-only sell names the long leg by its sign
        client.exchange.create_order(m.symbol, "market", "sell", m.lot, None, {"reduceOnly": True})
        assert venue.ledger.size(m.symbol, "long") == pytest.approx(m.lot)
        return
    with pytest.raises(ccxt.BaseError):
        client.exchange.create_order(m.symbol, "market", "sell", m.lot, None, {"reduceOnly": True})
    assert venue.ledger.size(m.symbol, "long") == pytest.approx(2 * m.lot)


def test_closing_one_leg_leaves_the_other(hedge: tuple[FakeVenue, CcxtClient]) -> None:
    venue, client = hedge
    m = market(venue)
    venue.ledger.open(m.symbol, "long", 5 * m.lot, m.price)
    venue.ledger.open(m.symbol, "short", 3 * m.lot, m.price)
    assert client.close_position(m.symbol) is False  # two legs: name one
    assert client.close_position(m.symbol, side="long") is True
    assert venue.ledger.size(m.symbol, "long") == 0
    assert venue.ledger.size(m.symbol, "short") == pytest.approx(3 * m.lot)
    assert client.close_position(m.symbol, side="long") is False
    assert client.close_position(m.symbol, side="short") is True
    assert venue.ledger.held() == []


def test_a_reduce_names_its_leg_in_hedge_mode(hedge: tuple[FakeVenue, CcxtClient]) -> None:
    venue, client = hedge
    m = market(venue)
    venue.ledger.open(m.symbol, "long", 5 * m.lot, m.price)
    venue.ledger.open(m.symbol, "short", 3 * m.lot, m.price)
    client.get_open_positions()
    order = client.create_market_order(
        m.symbol, "buy", m.lot, 5, reduce_only=True, is_critical=True, position_side="short"
    )
    assert order is not None
    assert venue.ledger.size(m.symbol, "short") == pytest.approx(2 * m.lot)
    assert venue.ledger.size(m.symbol, "long") == pytest.approx(5 * m.lot)
    with pytest.raises(ValueError, match="reduces the short leg"):
        client.create_market_order(m.symbol, "buy", m.lot, reduce_only=True, position_side="long")


def test_opens_in_hedge_mode_add_to_the_leg_of_their_side(
    hedge: tuple[FakeVenue, CcxtClient],
) -> None:
    venue, client = hedge
    m = market(venue)
    assert client.create_market_order(m.symbol, "buy", 2 * m.lot, 5) is not None
    assert client.create_market_order(m.symbol, "sell", m.lot, 5) is not None
    assert venue.ledger.size(m.symbol, "long") == pytest.approx(2 * m.lot)
    assert venue.ledger.size(m.symbol, "short") == pytest.approx(m.lot)


def test_a_rejected_close_is_false_and_an_unknown_outcome_raises(
    one_way: tuple[FakeVenue, CcxtClient],
) -> None:
    venue, client = one_way
    m = market(venue)
    venue.ledger.open(m.symbol, "long", m.lot, m.price)
    client.get_open_positions()
    venue.fail_next(venue.dialect.order_route, status=502)
    with pytest.raises(ccxt.NetworkError):
        client.close_position(m.symbol)


def test_a_reduce_only_order_with_nothing_to_reduce_is_refused(
    one_way: tuple[FakeVenue, CcxtClient],
) -> None:
    """The venue's refusal maps to a definitive rejection (None), never an unknown outcome."""
    venue, client = one_way
    m = market(venue)
    assert client.create_market_order(m.symbol, "sell", m.lot, 5, reduce_only=True) is None
    assert venue.ledger.held() == []


@pytest.mark.parametrize("mode", ["one_way", "hedge"])
def test_opens_at_the_requested_leverage(
    venue_name: str, mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="TradingBot")
    for venue, client in _start(venue_name, hedge=mode == "hedge"):
        m = market(venue)
        assert client.create_market_order(m.symbol, "buy", 2 * m.lot, 7) is not None
        assert venue.ledger.lev(m.symbol, "long") == 7.0
        assert client.create_market_order(m.symbol, "buy", m.lot, 7) is not None  # unchanged
        (entry,) = client.get_open_positions()
        if venue.dialect.reports_leverage:
            assert entry["leverage"] == pytest.approx(7.0)
        assert client.create_market_order(m.symbol, "sell", m.lot, 4, position_side="short") or (
            mode == "one_way"  # one-way: a sell opens the short leg only in hedge mode
        )
        if mode == "hedge":
            assert venue.ledger.lev(m.symbol, "short") == 4.0
            assert venue.ledger.size(m.symbol, "long") == pytest.approx(3 * m.lot)
    assert [r.getMessage() for r in caplog.records] == []


def test_a_cross_account_stays_cross(
    one_way: tuple[FakeVenue, CcxtClient], caplog: pytest.LogCaptureFixture
) -> None:
    """Setting the leverage never switches a cross position to isolated (Gate would)."""
    venue, client = one_way
    m = market(venue)
    caplog.set_level(logging.WARNING, logger="TradingBot")
    assert client.create_market_order(m.symbol, "buy", 2 * m.lot, 7) is not None
    assert venue.ledger.cross is True
    assert venue.ledger.lev(m.symbol, "long") == 7.0
    assert [r.getMessage() for r in caplog.records] == []


@pytest.mark.parametrize("mode", ["one_way", "hedge"])
def test_isolated_margin_round_trip(
    venue_name: str, mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    """margin_mode='isolated' on an isolated account: the leverage lands on the leg, every
    order carries the margin mode the venue needs, the close takes exactly the leg."""
    dialect = DIALECTS[venue_name]()
    hedge = mode == "hedge"
    if hedge and not dialect.has_hedge_mode:
        pytest.skip(f"{venue_name} has no hedge mode")
    caplog.set_level(logging.WARNING, logger="TradingBot")
    with running(dialect, hedge=hedge) as (venue, exchange):
        venue.ledger.cross = False
        client = CcxtClient(
            exchange, margin_mode="isolated", position_mode="hedge" if hedge else "auto"
        )
        m = market(venue)
        order = client.create_market_order(m.symbol, "buy", 2 * m.lot, 7, client_order_id="pmi1")
        assert order is not None
        assert venue.ledger.lev(m.symbol, "long") == 7.0
        # Its look-ups find it (HTX: under the margin mode it was placed with).
        found = client.get_order_by_client_id("pmi1", m.symbol)
        assert found is not None and found["id"] == order["id"]
        status = client.wait_for_order_fill(order["id"], m.symbol, timeout=0)
        assert status is not None and status["status"] == "closed"
        assert client.close_position(m.symbol, side="long") is True
        assert venue.ledger.held() == []
        assert venue.unexpected == []
    assert [r.getMessage() for r in caplog.records] == []


def test_fills_are_reported_and_looked_up_without_warnings(
    one_way: tuple[FakeVenue, CcxtClient], caplog: pytest.LogCaptureFixture
) -> None:
    venue, client = one_way
    m = market(venue)
    caplog.set_level(logging.WARNING, logger="TradingBot")
    order = client.create_market_order(m.symbol, "buy", 2 * m.lot, 5)
    assert order is not None
    assert order["filled"] == pytest.approx(2 * m.lot)
    assert order["average"] == pytest.approx(m.price)
    status = client.wait_for_order_fill(order["id"], m.symbol, timeout=0)
    assert status is not None
    assert (status["status"], status["filled"]) == ("closed", pytest.approx(2 * m.lot))
    assert [r.getMessage() for r in caplog.records] == []


def test_orders_are_found_by_their_client_order_id(
    one_way: tuple[FakeVenue, CcxtClient],
) -> None:
    venue, client = one_way
    m = market(venue)
    order = client.create_market_order(m.symbol, "buy", 3 * m.lot, 5, client_order_id="pmq7a1")
    assert order is not None and order["clientOrderId"] == "pmq7a1"
    found = client.get_order_by_client_id("pmq7a1", m.symbol)
    assert found is not None
    assert (found["id"], found["clientOrderId"], found["status"]) == (
        order["id"],
        "pmq7a1",
        "closed",
    )
    assert found["filled"] == pytest.approx(3 * m.lot)
    assert client.close_position(m.symbol, client_order_id="pmq7a2") is True
    closing = client.get_order_by_client_id("pmq7a2", m.symbol)
    assert closing is not None and closing["status"] == "closed" and closing["side"] == "sell"
    # An id this instance never sent: "not found" is None (on Gate, which forgets custom ids a
    # minute after an order ends, once its list of finished orders, a page that is not full and
    # so holds them all, does not have it either).
    other = CcxtClient(client.exchange)
    assert other.get_order_by_client_id("pmnever9", m.symbol) is None


#: Venues that answer a look-up by an unknown client order id with a success holding no order
#: (as the fake venues model them): there, and only there, that answer is "no such order".
EMPTY_MEANS_NOT_FOUND = ("kucoinfutures", "mexc")


def test_a_lookup_answered_without_an_order_is_not_found_only_where_the_venue_says_so(
    one_way: tuple[FakeVenue, CcxtClient],
) -> None:
    # A success that holds no order is KuCoin's (and, as far as known, MEXC's) "not found";
    # elsewhere the venue says "not found" with an error, and an empty success is something
    # else (HTX answers error codes ccxt does not map so): it cannot tell, never `None`, which
    # the manager takes for "never placed" and may send again.
    venue, client = one_way
    client, now = own_clock(client)
    m = market(venue)
    assert client.create_market_order(m.symbol, "buy", 2 * m.lot, 5, client_order_id="pme1")
    now[0] += client.not_found_grace + 1
    before = len(venue.requests)
    assert client.get_order_by_client_id("pme1", m.symbol) is not None
    [lookup] = venue.requests[before:]
    path = lookup.path
    if not venue.dialect.matches(path, lookup):
        pytest.skip("no fault can be armed on the look-up alone (Hyperliquid's /info)")
    empty = venue.dialect.ok(None)
    venue.fail_next(path, status=200, body="null" if empty is None else empty)
    if venue.dialect.ccxt_name in EMPTY_MEANS_NOT_FOUND:
        assert client.get_order_by_client_id("pme1", m.symbol) is None
    else:
        with pytest.raises(Exception) as raised:
            client.get_order_by_client_id("pme1", m.symbol)
        assert isinstance(raised.value, (LookupError, TypeError, ccxt.BaseError)), raised.value
    assert client.get_order_by_client_id("pme1", m.symbol) is not None, "the next one tells"


def htx_unmapped_error() -> dict[str, Any]:
    """An HTX error in its v5 envelope whose code ccxt does not map (its ``handle_errors``
    raises only for the codes it knows): a success without an order once ccxt has parsed it."""
    return {"code": 1004, "message": "System error, please try again later.", "data": None}


@pytest.fixture
def htx() -> Iterator[tuple[FakeVenue, CcxtClient, list[float]]]:
    """A one-way HTX account and a client on a clock of its own (``now[0]``)."""
    for venue, client in _start("htx", hedge=False):
        timed, now = own_clock(client)
        yield venue, timed, now


def test_htx_an_error_ccxt_does_not_know_is_not_no_such_order(
    htx: tuple[FakeVenue, CcxtClient, list[float]],
) -> None:
    venue, client, now = htx
    m = market(venue)
    assert client.create_market_order(m.symbol, "buy", 2 * m.lot, 5, client_order_id="pmh1")
    now[0] += client.not_found_grace + 1
    venue.fail_next("/v5/trade/order", status=200, body=htx_unmapped_error())
    with pytest.raises(LookupError, match="cannot tell"):
        client.get_order_by_client_id("pmh1", m.symbol)
    found = client.get_order_by_client_id("pmh1", m.symbol)
    assert found is not None and found["status"] == "closed"
    # HTX's own "no such order" (code 1017, ccxt's OrderNotFound) is still None.
    assert CcxtClient(client.exchange).get_order_by_client_id("pmnever1", m.symbol) is None


def close_looked_up_late(
    venue: FakeVenue, client: CcxtClient, now: list[float], lookups: dict[str, Any] | None
) -> tuple[float | None, PositionManager]:
    """A manager on ``client`` opens 3 lots; its close is executed and the answer lost, and the
    close's look-up comes more than ``not_found_grace`` after the send (a slow venue), answered
    ``lookups`` when given (on HTX's order route, which the POSTs share). The bot then tries
    the close again, as it does when told a close failed: what the first close returned, and
    the manager."""
    m = market(venue)
    manager = PositionManager(client, ticker_retry_delays=())
    manager.open_position(m.symbol, "BUY", 3 * m.lot, 5, 0.02)
    venue.lose_next_order_answer()
    if lookups is not None:
        venue.fail_next("/v5/trade/order", n=1_000, status=200, body=lookups)
    ticking = client.clock

    def slow() -> float:  # every read of the clock is a slow request later
        now[0] += client.not_found_grace + 1
        return ticking()

    client.clock = slow
    closed = manager.close_position(m.symbol, "manual")
    client.clock = ticking
    assert venue.ledger.size(m.symbol, "long") == 0
    manager.close_position(m.symbol, "manual")
    assert len(venue.requests_to("/v5/trade/order", "POST")) == 2, "no second close"
    return closed, manager


def closed_once(closed: float | None, manager: PositionManager) -> None:
    """The close of :func:`close_looked_up_late` went through and is its position's one end."""
    assert closed is not None, "the close went through (its P/L)"
    assert manager.positions == {}
    ends = [e["kind"] for e in manager.events if e["kind"] in ("closed", "removed")]
    assert ends == ["closed"]


def test_manager_htx_a_lost_close_whose_lookup_meets_an_unmapped_error_is_settled_by_the_list(
    htx: tuple[FakeVenue, CcxtClient, list[float]],
) -> None:
    """The close's look-up meets an HTX error ccxt does not map. The manager settles the close
    by the position list, which shows it gone. (Earlier builds took that answer for "no such
    order": the close was reported failed at once, without a look at the list, and the
    position's end recorded as a removal outside the manager by the second close's list.)"""
    closed_once(*close_looked_up_late(*htx, htx_unmapped_error()))


def test_manager_htx_isolated_a_lost_close_is_looked_up_under_its_margin_mode() -> None:
    """On an isolated HTX account the close's look-up names the margin mode the order was
    placed with, and finds it filled. (Earlier builds looked it up under ccxt's default,
    cross: "no such order", the close reported failed without a look at the list.)"""
    for venue, _ in _start("htx", hedge=False):
        venue.ledger.cross = False
        client, now = own_clock(CcxtClient(venue.make_exchange(), margin_mode="isolated"))
        closed_once(*close_looked_up_late(venue, client, now, None))


def finished_lists(venue: FakeVenue) -> list[dict[str, Any]]:
    """The parameters of every read of the venue's list of finished orders (Gate)."""
    return [
        r.params
        for r in venue.requests_to(venue.dialect.order_route, "GET")
        if r.params.get("status") == "finished"
    ]


def forgetful(venue: FakeVenue, client: CcxtClient) -> tuple[CcxtClient, list[float], float, Gate]:
    """A client on a clock of its own (``now[0]``), the venue's window and its dialect, for a
    venue that finds an order by its client order id only for a while after it ends (Gate;
    else the test is skipped)."""
    window = venue.dialect.client_id_window
    if window is None:
        pytest.skip("the venue finds orders by client order id at any time")
    assert isinstance(venue.dialect, Gate)
    timed, now = own_clock(client)
    return timed, now, window, venue.dialect


def own_clock(client: CcxtClient) -> tuple[CcxtClient, list[float]]:
    """A client of ``client``'s exchange whose clock reads ``now[0]`` (the list returned)."""
    now = [1000.0]
    timed = CcxtClient(client.exchange, clock=lambda: now[0], margin_mode=client.margin_mode)
    return timed, now


def never_placed(venue: FakeVenue, client: CcxtClient, m: Market, client_order_id: str) -> None:
    """``client`` sends a market order under ``client_order_id`` whose request fails before the
    venue takes it (a 503 from its gateway): sent, never placed."""
    venue.fail_next(venue.dialect.order_route, status=503)
    with pytest.raises(ccxt.ExchangeNotAvailable):
        client.create_market_order(m.symbol, "buy", m.lot, 5, client_order_id=client_order_id)


def test_an_order_the_venue_no_longer_finds_by_its_id_is_found_among_its_finished_orders(
    one_way: tuple[FakeVenue, CcxtClient],
) -> None:
    venue, client = one_way
    timed, now, window, gate = forgetful(venue, client)
    m = market(venue)
    order = timed.create_market_order(m.symbol, "buy", 2 * m.lot, 5, client_order_id="pmw1")
    assert order is not None
    found = timed.get_order_by_client_id("pmw1", m.symbol)
    assert found is not None and found["clientOrderId"] == "pmw1"
    assert finished_lists(venue) == []  # found by its id: no list read
    venue.dialect.client_id_window = 0.0  # the venue has forgotten the id
    now[0] += window + 1
    found = timed.get_order_by_client_id("pmw1", m.symbol)
    assert found is not None
    assert (found["id"], found["clientOrderId"], found["status"], found["side"]) == (
        order["id"],
        "pmw1",
        "closed",
        "buy",
    )
    assert found["filled"] == pytest.approx(2 * m.lot)
    (read,) = finished_lists(venue)
    assert (read["contract"], int(read["limit"])) == (
        gate.market_id(m.base),
        FINISHED_ORDERS_PAGE,
    )
    # Sent, but its request failed before the venue took it: not among the finished orders,
    # and the page holds every finished order (it is not full): never placed.
    never_placed(venue, timed, m, "pmw2")
    now[0] += window + 1
    assert timed.get_order_by_client_id("pmw2", m.symbol) is None
    # A resting order cancelled without fills leaves the list a while later: still None, and
    # it changed no position.
    resting = timed.create_limit_order(
        m.symbol, "buy", m.lot, m.price * 0.5, 5, client_order_id="pmw3"
    )
    assert resting is not None and timed.cancel_order(resting["id"], m.symbol) is True
    now[0] += window + 1
    cancelled = timed.get_order_by_client_id("pmw3", m.symbol)  # listed for a while
    assert cancelled is not None
    assert (cancelled["status"], cancelled["filled"]) == ("canceled", 0)
    gate.finished[resting["id"]] -= gate.zero_fill_window + 1
    assert timed.get_order_by_client_id("pmw3", m.symbol) is None


def test_a_full_page_of_finished_orders_proves_an_order_absent_only_if_it_reaches_back(
    one_way: tuple[FakeVenue, CcxtClient],
) -> None:
    venue, client = one_way
    timed, now, window, _gate = forgetful(venue, client)
    m = market(venue)
    never_placed(venue, timed, m, "pmgone1")
    for _ in range(FINISHED_ORDERS_PAGE):  # then a page's worth of other orders
        venue.ledger.place(m.symbol, "buy", m.lot, reduce_only=False, leg=None)
    now[0] += window + 1
    # The page is full and all of it came after the send: an older order might be on the next.
    with pytest.raises(LookupError, match="cannot tell"):
        timed.get_order_by_client_id("pmgone1", m.symbol)
    with pytest.raises(LookupError, match="cannot tell"):  # nor for an id sent elsewhere
        CcxtClient(client.exchange).get_order_by_client_id("pmgone1", m.symbol)
    # The same page made an hour before the send: it holds every finished order since.
    for o in venue.ledger.orders_sent():
        o.created -= 3_600_000
    assert timed.get_order_by_client_id("pmgone1", m.symbol) is None
    # ... and only a minute before: the venue's clock may be behind ours, so it proves nothing.
    for o in venue.ledger.orders_sent():
        o.created += 3_600_000 - 30_000
    with pytest.raises(LookupError, match="cannot tell"):
        timed.get_order_by_client_id("pmgone1", m.symbol)


def test_two_finished_orders_with_one_client_order_id_cannot_tell(
    one_way: tuple[FakeVenue, CcxtClient],
) -> None:
    venue, client = one_way
    timed, _now, _window, gate = forgetful(venue, client)
    m = market(venue)
    wire = timed.venue_client_order_id("pmdup1")
    for _ in range(2):  # placed by another program with the same custom id
        o = venue.ledger.place(m.symbol, "buy", m.lot, reduce_only=False, leg=None, client_id=wire)
        gate.finished[o.id] = 0.0  # long finished: the venue no longer finds it by id
    with pytest.raises(ValueError, match="cannot tell which"):
        timed.get_order_by_client_id("pmdup1", m.symbol)


def open_behind_a_lost_answer(venue: FakeVenue, manager: PositionManager, m: Market) -> None:
    """``manager`` opens 3 lots long; the venue fills them and loses the answer, and its
    position lists do not show the fill until told otherwise."""
    venue.lose_next_order_answer()
    venue.lag_positions_next(1_000, {})
    manager.open_position(m.symbol, "BUY", 3 * m.lot, 5, 0.02)
    assert venue.ledger.size(m.symbol, "long") == pytest.approx(3 * m.lot)


def the_bot_holds_its_lost_open(venue: FakeVenue, manager: PositionManager, m: Market) -> None:
    """Three cycles of a bot that opens the symbol whenever the manager holds none of it: the
    open of :func:`open_behind_a_lost_answer` stays tracked at its 3 lots, none on top."""
    tracked = []
    for _ in range(3):
        assert list(manager.update_positions()) == []
        tracked.append(manager.get_position(m.symbol) is not None)
        if not manager.has_position(m.symbol):  # the bot's guard before it opens the symbol
            manager.open_position(m.symbol, "BUY", 3 * m.lot, 5, 0.02)
    assert len(venue.ledger.orders_sent()) == 1, "nothing opened on top"
    assert venue.ledger.size(m.symbol, "long") == pytest.approx(3 * m.lot)
    assert tracked == [True, True, True]
    assert manager.positions[m.symbol].amount == pytest.approx(3 * m.lot)


@pytest.fixture
def bybit() -> Iterator[tuple[FakeVenue, CcxtClient, Bybit, list[float]]]:
    """A one-way Bybit account and a client on a clock of its own (``now[0]``)."""
    for venue, client in _start("bybit", hedge=False):
        assert isinstance(venue.dialect, Bybit)
        timed, now = own_clock(client)
        yield venue, timed, venue.dialect, now


def test_bybit_finds_a_closed_order_its_realtime_list_forgot_in_order_history(
    bybit: tuple[FakeVenue, CcxtClient, Bybit, list[float]],
) -> None:
    # Bybit's /v5/order/realtime finds only the 500 most recent closed orders, and none after
    # a restart of its service; /v5/order/history keeps them.
    venue, client, dialect, now = bybit
    m = market(venue)
    order = client.create_market_order(m.symbol, "buy", 2 * m.lot, 5, client_order_id="pmb1")
    assert order is not None
    dialect.restart_service(venue)
    now[0] += client.not_found_grace + 1
    found = client.get_order_by_client_id("pmb1", m.symbol)
    assert found is not None
    assert (found["id"], found["clientOrderId"], found["status"]) == (order["id"], "pmb1", "closed")
    assert found["filled"] == pytest.approx(2 * m.lot)
    assert venue.requests_to("/v5/order/history", "GET"), "found in the order history"
    never_placed(venue, client, m, "pmb2")  # in neither list: never placed
    now[0] += client.not_found_grace + 1
    assert client.get_order_by_client_id("pmb2", m.symbol) is None
    dialect.realtime_closed = 0  # more than 500 closed orders since: the same
    assert client.get_order_by_client_id("pmb1", m.symbol) is not None


def test_manager_bybit_finds_a_lost_open_its_realtime_list_forgot(
    bybit: tuple[FakeVenue, CcxtClient, Bybit, list[float]],
) -> None:
    """The open is executed, its answer lost, and Bybit's service restarts before the look-up
    that settles it, while the position list lags the fill. The order is found in the order
    history and tracked; nothing is sent twice. (Earlier builds took the realtime list's "not
    found" for "never placed": the key was freed and the bot's next open went out on top.)"""
    venue, client, dialect, now = bybit
    m = market(venue)
    manager = PositionManager(client, ticker_retry_delays=())
    # The service restarts as the order fills: the realtime list keeps no closed order. The
    # open's own look-up, at once, takes its "not found" for a venue that may not know the
    # order yet (``not_found_grace``); the next one comes later.
    dialect.realtime_closed = 0
    open_behind_a_lost_answer(venue, manager, m)
    now[0] += client.not_found_grace + 1
    venue.lag_positions_next(2, {})  # nor do the next two (a read and its re-read)
    the_bot_holds_its_lost_open(venue, manager, m)


def test_a_resting_order_is_cancelled_once(one_way: tuple[FakeVenue, CcxtClient]) -> None:
    venue, client = one_way
    m = market(venue)
    order = client.create_limit_order(m.symbol, "buy", m.lot, m.price * 0.9, 5)
    assert order is not None and order["status"] in (None, "open")  # some answers carry ids only
    resting = client.wait_for_order_fill(order["id"], m.symbol, timeout=0)
    assert resting is not None and (resting["status"], resting["filled"]) == ("open", 0)
    assert client.cancel_order(order["id"], m.symbol) is True
    assert client.cancel_order(order["id"], m.symbol) is False
    status = client.wait_for_order_fill(order["id"], m.symbol, timeout=0)
    assert status is not None and status["status"] == "canceled"
    assert venue.ledger.held() == []


def test_a_flat_hedge_account_in_auto_mode(venue_name: str) -> None:
    """Where the venue tells a flat account's mode the first order names its leg; elsewhere
    it is refused by the venue (nothing placed) until the user sets position_mode='hedge'."""
    dialect = DIALECTS[venue_name]()
    if not dialect.has_hedge_mode:
        pytest.skip(f"{venue_name} has no hedge mode")
    with running(dialect, hedge=True) as (venue, exchange):
        client = CcxtClient(exchange)
        m = market(venue)
        order = client.create_market_order(m.symbol, "buy", 2 * m.lot, 5)
        if dialect.mode_readable_when_flat:
            assert order is not None
            assert venue.ledger.size(m.symbol, "long") == pytest.approx(2 * m.lot)
        else:
            assert order is None
            assert venue.ledger.held() == []


# --------------------------------------------------------------------------- with the manager


# --------------------------------------------------------------------------- batched prices


def test_every_price_comes_in_one_request(one_way: tuple[FakeVenue, CcxtClient]) -> None:
    venue, client = one_way
    symbols = [m.symbol for m in venue.ledger.markets.values()]
    venue.ledger.prices[symbols[0]] *= 1.01  # not a price the markets were loaded with
    client.get_open_positions()  # markets loaded: what follows is the tickers request alone
    before = len(venue.requests)
    tickers = client.get_tickers([*symbols, "NOPE/USDT:USDT"])
    assert len(venue.requests) - before == 1
    assert {s: t["last"] for s, t in tickers.items()} == {
        s: pytest.approx(venue.ledger.prices[s]) for s in symbols
    }
    assert all(t["symbol"] == s for s, t in tickers.items())


class _CountingClient(CcxtClient):
    """A ``CcxtClient`` that counts its per-symbol ticker calls."""

    ticker_calls = 0

    def get_ticker(self, symbol: str) -> dict[str, Any] | None:
        self.ticker_calls += 1
        return super().get_ticker(symbol)


def test_a_concurrent_batched_cycle_is_the_sequential_one(
    one_way: tuple[FakeVenue, CcxtClient], caplog: pytest.LogCaptureFixture
) -> None:
    venue, client = one_way
    for m in venue.ledger.markets.values():
        venue.ledger.open(m.symbol, "long", 4 * m.lot, m.price)
    fast_client = _CountingClient(client.exchange, sleep=lambda s: None)
    managers = [PositionManager(client), PositionManager(fast_client, max_concurrent_calls=4)]
    for manager in managers:
        assert manager.sync_existing_positions() == len(venue.ledger.markets)
    first = next(iter(venue.ledger.markets.values()))
    stop_before = managers[1].positions[first.symbol].stop_loss
    venue.ledger.prices[first.symbol] *= 1.001  # the stop trails up (no profit target yet)
    caplog.clear()
    fast_client.ticker_calls = 0  # (the syncs asked for the current prices)
    with caplog.at_level(logging.WARNING):
        for manager in managers:
            assert list(manager.update_positions()) == []
    assert fast_client.ticker_calls == 0  # every price came from the batch
    assert not [r for r in caplog.records if "price" in r.getMessage()]
    plain, fast = ({s: p.to_dict() for s, p in m.positions.items()} for m in managers)
    for state in (*plain.values(), *fast.values()):
        for timed in ("entry_time", "last_pnl_time", "profit_velocity", "profit_acceleration"):
            del state[timed]  # each manager's own import and update times
    assert fast == plain
    assert managers[1].positions[first.symbol].stop_loss > stop_before


def test_manager_finds_an_open_whose_answer_was_lost(
    one_way: tuple[FakeVenue, CcxtClient],
) -> None:
    """The order is executed, its answer lost: found by its client order id, never sent twice."""
    venue, client = one_way
    m = market(venue)
    manager = PositionManager(client)
    venue.lose_next_order_answer()
    manager.open_position(m.symbol, "BUY", 3 * m.lot, 5, 0.02)
    assert venue.ledger.size(m.symbol, "long") == pytest.approx(3 * m.lot)
    assert len(venue.ledger.orders_sent()) == 1
    assert manager.positions[m.symbol].amount == pytest.approx(3 * m.lot)


def test_manager_finds_a_lost_open_the_venue_no_longer_finds_by_its_id(
    one_way: tuple[FakeVenue, CcxtClient], caplog: pytest.LogCaptureFixture
) -> None:
    """Gate: the open is executed and its answer lost, and the look-up that settles it comes
    more than a minute after the order ended, when the venue no longer finds it by its client
    order id, while the position list lags the fill by two reads (``outcome_confirmations``).
    The order is found among the finished orders and the position tracked; nothing is sent
    twice. (Earlier builds could not tell, took the two lists for "not executed", and the bot's
    next open went out on top.)"""
    venue, client = one_way
    timed, now, window, _gate = forgetful(venue, client)
    m = market(venue)
    manager = PositionManager(timed, ticker_retry_delays=())
    # The venue forgets the id as soon as the order ends: the open's own look-up, at once,
    # takes that "not found" for a venue that may not know the order yet (``not_found_grace``)
    # and the outcome stays unknown; the next look-up comes a minute later.
    venue.dialect.client_id_window = 0.0
    with caplog.at_level(logging.INFO, logger="TradingBot"):
        open_behind_a_lost_answer(venue, manager, m)
    assert m.symbol not in manager.positions
    assert any("may not know it yet" in r for r in caplog.messages)
    assert any("whose answer was lost (1/2)" in r for r in caplog.messages)  # one list of two
    now[0] += window + 1
    venue.lag_positions_next(2, {})  # nor do the next two
    the_bot_holds_its_lost_open(venue, manager, m)
    assert finished_lists(venue), "looked up among the finished orders"


def test_manager_one_way_sync_cycles_vanish_and_errors(
    one_way: tuple[FakeVenue, CcxtClient],
) -> None:
    venue, client = one_way
    m = market(venue)
    venue.ledger.open(m.symbol, "long", 4 * m.lot, m.price)
    manager = PositionManager(client, missing_confirmations=2)
    assert manager.sync_existing_positions() == 1
    position = manager.positions[m.symbol]
    assert (position.side, position.amount) == ("long", pytest.approx(4 * m.lot))
    assert list(manager.update_positions()) == []

    venue.fail_next(venue.dialect.positions_route, status=429)  # an error removes nothing
    assert list(manager.update_positions()) == []
    assert manager.positions[m.symbol] is position

    venue.answer_empty_positions(1)  # one empty list is not enough (missing_confirmations=2)
    assert list(manager.update_positions()) == []
    assert manager.positions[m.symbol] is position

    venue.ledger.remove(m.symbol)  # closed on the venue
    list(manager.update_positions())
    list(manager.update_positions())
    assert m.symbol not in manager.positions
    assert manager.events[-1]["reason"] == "closed_externally"


def test_manager_one_way_open_and_close_round_trip(
    one_way: tuple[FakeVenue, CcxtClient],
) -> None:
    venue, client = one_way
    m = market(venue)
    manager = PositionManager(client)
    assert manager.open_position(m.symbol, "SELL", 3 * m.lot, 5, 0.02)
    assert venue.ledger.size(m.symbol, "short") == pytest.approx(3 * m.lot)
    assert manager.positions[m.symbol].side == "short"
    pnl = manager.close_position(m.symbol)
    assert isinstance(pnl, float)
    assert venue.ledger.held() == [] and m.symbol not in manager.positions


def test_manager_a_close_behind_a_lagging_list_is_looked_up_not_taken_back(
    one_way: tuple[FakeVenue, CcxtClient], caplog: pytest.LogCaptureFixture
) -> None:
    # The first list after the close still shows the position (the venue's list lags the
    # fill): the manager looks the close order up by its client id through the venue's order
    # endpoint, finds it filled in full — the list shows the very position it closed, as it was
    # before the fill, which no count of lists takes back — and waits; the next list confirms
    # the close. Nothing is sent again and the close stands as the position's one end.
    venue, client = one_way
    m = market(venue)
    manager = PositionManager(client)
    assert manager.open_position(m.symbol, "BUY", 3 * m.lot, 5, 0.02)
    assert list(manager.update_positions()) == []  # listed
    shown = venue.legs_now()
    assert isinstance(manager.close_position(m.symbol), float)
    assert venue.ledger.held() == []
    orders = len(venue.requests_to(venue.dialect.order_route, "POST"))
    venue.lag_positions_next(1, shown)
    with caplog.at_level(logging.WARNING, logger="TradingBot"):
        assert list(manager.update_positions()) == []
    assert m.symbol not in manager.positions, "the filled close is not taken back"
    assert (
        f"The exchange still lists {m.symbol} exactly as it was before its close order, which "
        "the exchange reports filled in full; its list lags the fill, so the position stays closed"
    ) in caplog.messages
    assert list(manager.update_positions()) == []  # the list shows it gone
    assert [e["kind"] for e in manager.events] == ["opened", "closed"]
    assert len(venue.requests_to(venue.dialect.order_route, "POST")) == orders, "nothing sent again"


def _scaled_out_by_one_lot(
    venue: FakeVenue, client: CcxtClient
) -> tuple[Market, PositionManager, Any]:
    """A manager that opened 4 lots long, saw them listed and scaled out one lot; the venue's
    legs as the list showed them before the scale-out (for ``lag_positions_next``)."""
    m = market(venue)
    manager = PositionManager(client, ticker_retry_delays=())
    assert manager.open_position(m.symbol, "BUY", 4 * m.lot, 5, 0.02)
    assert list(manager.update_positions()) == []
    shown = venue.legs_now()
    assert manager.scale_out_position(m.symbol, m.lot, "partial") is not None
    return m, manager, shown


def test_manager_a_partial_exit_behind_a_lagging_list_keeps_its_size(
    one_way: tuple[FakeVenue, CcxtClient], caplog: pytest.LogCaptureFixture
) -> None:
    # The manager's own scale-out fills (4 -> 3 lots); the next list still shows 4 (the
    # venue's list lags the fill). The book keeps 3 and its entry (counted, with a warning) and
    # the next list, which shows 3, ends the wait: no resize back and forth, no event for it.
    venue, client = one_way
    m, manager, shown = _scaled_out_by_one_lot(venue, client)
    entry = manager.positions[m.symbol].entry_price
    assert venue.ledger.size(m.symbol, "long") == pytest.approx(3 * m.lot)
    venue.lag_positions_next(1, shown)
    with caplog.at_level(logging.WARNING, logger="TradingBot"):
        assert list(manager.update_positions()) == []
    position = manager.positions[m.symbol]
    assert (position.amount, position.entry_price) == (pytest.approx(3 * m.lot), entry)
    assert any("its size before the manager's own order (1/2)" in r for r in caplog.messages)
    assert list(manager.update_positions()) == []
    assert manager.positions[m.symbol].amount == pytest.approx(3 * m.lot)
    assert [e["kind"] for e in manager.events] == ["opened", "partial_close"]


def test_manager_a_close_behind_a_list_lagging_its_partial_exit_closes_what_is_left(
    one_way: tuple[FakeVenue, CcxtClient],
) -> None:
    # The manager's scale-out fills (4 -> 3 lots); the lists its stop-loss close reads still
    # show 4. The close names the manager's size (sized_closes), so the venue takes it: one
    # order, the venue flat. Sized from the lagging list it asked for 4 lots of a 3-lot
    # position, the venue refused it and the position stayed open until a later close.
    venue, client = one_way
    m, manager, shown = _scaled_out_by_one_lot(venue, client)
    venue.lag_positions_next(2, shown)  # the manager's read and the client's
    closes_in_one_order(venue, manager, m.symbol)
    assert [e["kind"] for e in manager.events] == ["opened", "partial_close", "closed"]


def closes_in_one_order(venue: FakeVenue, manager: PositionManager, symbol: str) -> None:
    """``manager``'s stop-loss close of ``symbol`` goes out as one order and leaves the venue
    flat and the book without it."""
    orders = len(venue.requests_to(venue.dialect.order_route, "POST"))
    assert isinstance(manager.close_position(symbol, "stop_loss"), float)
    assert venue.ledger.held() == []
    assert len(venue.requests_to(venue.dialect.order_route, "POST")) == orders + 1
    assert symbol not in manager.positions


def test_manager_a_close_behind_a_list_lagging_its_scale_in_closes_all_of_it(
    one_way: tuple[FakeVenue, CcxtClient],
) -> None:
    # The manager's scale-in fills (3 -> 5 lots); the lists its close reads still show 3. The
    # close names the manager's size and the client sends it: one order, the venue flat. Sized
    # from the lagging list it closed 3 lots, the manager took the position for closed (its P/L
    # returned to the bot) and the 2 scaled-in lots stayed open, unmanaged, until later lists
    # brought them back as a position closed unconfirmed.
    venue, client = one_way
    m = market(venue)
    manager = PositionManager(client, ticker_retry_delays=())
    assert manager.open_position(m.symbol, "BUY", 3 * m.lot, 5, 0.02)
    assert list(manager.update_positions()) == []
    venue.lag_positions_next(3)  # the scale-in's own check, the manager's read and the client's
    assert manager.scale_in_position(m.symbol, 2 * m.lot, m.price) is True
    assert venue.ledger.size(m.symbol, "long") == pytest.approx(5 * m.lot)
    closes_in_one_order(venue, manager, m.symbol)
    assert list(manager.update_positions()) == []
    assert m.symbol not in manager.positions
    assert [e["kind"] for e in manager.events] == ["opened", "scaled_in", "closed"]


def test_manager_hedge_a_legs_close_behind_a_list_lagging_its_scale_in_closes_all_of_it(
    hedge: tuple[FakeVenue, CcxtClient],
) -> None:
    venue, client = hedge
    m, manager = _hedge_book(venue, client)
    long_leg = f"{m.symbol}@long"
    venue.lag_positions_next(3)
    assert manager.scale_in_position(long_leg, 2 * m.lot, m.price) is True
    assert venue.ledger.size(m.symbol, "long") == pytest.approx(7 * m.lot)
    assert isinstance(manager.close_position(long_leg, "stop_loss"), float)
    assert venue.ledger.size(m.symbol, "long") == 0
    assert venue.ledger.size(m.symbol, "short") == pytest.approx(3 * m.lot)
    assert list(manager.update_positions()) == []
    assert list(manager.positions) == [f"{m.symbol}@short"]


def test_manager_hedge_a_legs_close_behind_a_list_lagging_its_partial_exit_closes_what_is_left(
    hedge: tuple[FakeVenue, CcxtClient],
) -> None:
    venue, client = hedge
    m, manager = _hedge_book(venue, client)
    long_leg = f"{m.symbol}@long"
    shown = venue.legs_now()
    assert manager.scale_out_position(long_leg, 2 * m.lot, "partial") is not None
    venue.lag_positions_next(2, shown)
    assert isinstance(manager.close_position(long_leg, "stop_loss"), float)
    assert venue.ledger.size(m.symbol, "long") == 0
    assert venue.ledger.size(m.symbol, "short") == pytest.approx(3 * m.lot)
    assert list(manager.positions) == [f"{m.symbol}@short"]


def _hedge_book(venue: FakeVenue, client: CcxtClient) -> tuple[Market, Any]:
    m = market(venue)
    venue.ledger.open(m.symbol, "long", 5 * m.lot, m.price)
    venue.ledger.open(m.symbol, "short", 3 * m.lot, m.price)
    manager = PositionManager(client, position_mode="hedge")
    assert manager.sync_existing_positions() == 2
    return m, manager


def test_manager_hedge_tracks_both_legs_and_closes_one(
    hedge: tuple[FakeVenue, CcxtClient],
) -> None:
    venue, client = hedge
    m, manager = _hedge_book(venue, client)
    assert sorted(manager.positions) == [f"{m.symbol}@long", f"{m.symbol}@short"]
    assert isinstance(manager.close_position(f"{m.symbol}@long"), float)
    assert venue.ledger.size(m.symbol, "long") == 0
    assert venue.ledger.size(m.symbol, "short") == pytest.approx(3 * m.lot)
    assert list(manager.positions) == [f"{m.symbol}@short"]


def test_manager_hedge_a_legs_close_behind_a_lagging_list_is_not_taken_back(
    hedge: tuple[FakeVenue, CcxtClient],
) -> None:
    # Hedge mode: the long leg's close, then a list that still shows both legs. The close order
    # is looked up (filled): the long leg stays closed, the short leg stays tracked.
    venue, client = hedge
    m, manager = _hedge_book(venue, client)
    long_leg, short_leg = f"{m.symbol}@long", f"{m.symbol}@short"
    shown = venue.legs_now()
    assert isinstance(manager.close_position(long_leg), float)
    venue.lag_positions_next(1, shown)
    assert list(manager.update_positions()) == []
    assert list(manager.positions) == [short_leg]
    assert list(manager.update_positions()) == []
    assert list(manager.positions) == [short_leg]
    assert [(e["symbol"], e["kind"]) for e in manager.events][-1] == (long_leg, "closed")
    assert "close_unconfirmed" not in [e["kind"] for e in manager.events]
    assert venue.ledger.size(m.symbol, "short") == pytest.approx(3 * m.lot)


def test_manager_hedge_one_leg_vanishing_removes_only_that_leg(
    hedge: tuple[FakeVenue, CcxtClient],
) -> None:
    venue, client = hedge
    m, manager = _hedge_book(venue, client)
    venue.ledger.remove(m.symbol, "short")
    list(manager.update_positions())
    assert list(manager.positions) == [f"{m.symbol}@long"]
    assert manager.events[-1]["reason"] == "closed_externally"
    venue.fail_next(venue.dialect.positions_route, status=429)
    list(manager.update_positions())
    assert list(manager.positions) == [f"{m.symbol}@long"]


def test_manager_one_way_reports_two_legs_of_one_symbol(
    hedge: tuple[FakeVenue, CcxtClient], caplog: pytest.LogCaptureFixture
) -> None:
    """A one-way manager on a hedge account: the second leg is reported, never ignored."""
    venue, client = hedge
    m = market(venue)
    venue.ledger.open(m.symbol, "long", 5 * m.lot, m.price)
    venue.ledger.open(m.symbol, "short", 3 * m.lot, m.price)
    caplog.set_level(logging.WARNING, logger="TradingBot")
    manager = PositionManager(client)
    manager.sync_existing_positions()
    list(manager.update_positions())
    assert any(m.symbol in r.getMessage() and "leg" in r.getMessage() for r in caplog.records)
    assert any(
        e["symbol"] == m.symbol and "leg" in f"{e['kind']} {e.get('reason')}"
        for e in manager.events
    )


# --------------------------------------------------------------------------- venue specifics


def test_kucoin_opens_at_the_requested_leverage_on_an_isolated_position() -> None:
    with running(DIALECTS["kucoinfutures"]()) as (venue, exchange):
        venue.ledger.cross = False
        client = CcxtClient(exchange)
        m = market(venue)
        assert client.create_market_order(m.symbol, "buy", 2, 7) is not None
        (sent,) = venue.requests_to("/api/v1/orders", "POST")
        assert sent.params["leverage"] == 7  # ccxt alone sends 1
        assert sent.params["marginMode"] == "ISOLATED"  # the symbol's, read from the venue
        assert venue.ledger.lev(m.symbol, "long") == 7.0
        # An isolated position takes the order's leverage: no cross leverage is set.
        assert venue.requests_to("/api/v2/changeCrossUserLeverage", "POST") == []


KUCOIN_MARGIN_ROUTE = "/api/v2/position/getMarginMode"


@pytest.mark.parametrize("cross", [True, False], ids=["cross", "isolated"])
def test_kucoin_every_order_names_the_symbols_margin_mode(cross: bool) -> None:
    """KuCoin takes an order that names no margin mode as ISOLATED and refuses it on a cross
    symbol (330005): every order names the symbol's mode, read from the venue once per symbol,
    or from its position entry. (Earlier builds named none: on a cross account every order,
    opens and closes, was refused.)"""
    with running(DIALECTS["kucoinfutures"]()) as (venue, exchange):
        venue.ledger.cross = cross
        client = CcxtClient(exchange)
        m = market(venue)
        wire = "CROSS" if cross else "ISOLATED"
        assert client.create_market_order(m.symbol, "buy", 2 * m.lot, 5) is not None
        assert client.create_market_order(m.symbol, "buy", m.lot, 5) is not None  # scale-in
        assert client.close_position(m.symbol) is True
        sent = venue.requests_to(venue.dialect.order_route, "POST")
        assert [o.params.get("marginMode") for o in sent] == [wire] * 3
        assert len(venue.requests_to(KUCOIN_MARGIN_ROUTE)) == 1  # asked once
        assert venue.ledger.size(m.symbol, "long") == 0
        # A fresh client (a restart) closing a position it has not placed: the mode comes from
        # the position's entry, without asking.
        venue.ledger.open(m.symbol, "short", 3 * m.lot, m.price)
        assert CcxtClient(exchange).close_position(m.symbol) is True
        assert venue.requests_to(venue.dialect.order_route, "POST")[-1].params["marginMode"] == wire
        assert len(venue.requests_to(KUCOIN_MARGIN_ROUTE)) == 1
        assert venue.ledger.size(m.symbol, "short") == 0


def test_kucoin_a_margin_mode_switched_on_the_venue_is_learnt_from_its_refusal(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The symbol's mode is switched by hand while flat: the next order, in the mode the
    client knew, is refused (330005, a rejection: nothing placed), and the one after names
    the other mode, the symbol's, without asking again."""
    with running(DIALECTS["kucoinfutures"]()) as (venue, exchange):
        client = CcxtClient(exchange)
        m = market(venue)
        assert client.create_market_order(m.symbol, "buy", m.lot, 5) is not None
        assert client.close_position(m.symbol) is True
        venue.ledger.cross = False  # switched to isolated by hand while flat
        with caplog.at_level(logging.WARNING, logger="TradingBot"):
            assert client.create_market_order(m.symbol, "buy", m.lot, 5) is None  # refused
        assert any("330005" in r for r in caplog.messages)
        assert any(
            f"{m.symbol} is in isolated margin on the exchange" in r for r in caplog.messages
        )
        assert client.create_market_order(m.symbol, "buy", m.lot, 5) is not None
        assert venue.requests_to(venue.dialect.order_route, "POST")[-1].params["marginMode"] == (
            "ISOLATED"
        )
        assert len(venue.requests_to(KUCOIN_MARGIN_ROUTE)) == 1
        assert venue.ledger.size(m.symbol, "long") == pytest.approx(m.lot)


def test_kucoin_a_position_is_closed_in_its_own_mode_whatever_margin_mode_says() -> None:
    """``margin_mode='cross'`` on a symbol that KuCoin holds in isolated margin: the close of
    its position names the position's mode and goes through at once; an open that names the
    configured mode is refused once, and the next names the symbol's."""
    with running(DIALECTS["kucoinfutures"]()) as (venue, exchange):
        venue.ledger.cross = False
        m = market(venue)
        venue.ledger.open(m.symbol, "long", 3 * m.lot, m.price)
        assert CcxtClient(exchange, margin_mode="cross").close_position(m.symbol) is True
        assert venue.ledger.size(m.symbol, "long") == 0
        client = CcxtClient(exchange, margin_mode="cross")
        assert client.create_market_order(m.symbol, "sell", m.lot, 5) is None
        assert client.create_market_order(m.symbol, "sell", m.lot, 5) is not None
        modes = [o.params["marginMode"] for o in venue.requests_to(venue.dialect.order_route)]
        assert modes == ["ISOLATED", "CROSS", "ISOLATED"]
        assert venue.ledger.size(m.symbol, "short") == pytest.approx(m.lot)
        assert venue.requests_to(KUCOIN_MARGIN_ROUTE) == []


@pytest.mark.parametrize("cross", [True, False], ids=["cross", "isolated"])
def test_kucoin_an_unreadable_margin_mode_names_none(
    cross: bool, caplog: pytest.LogCaptureFixture
) -> None:
    """The venue's default then decides: an isolated symbol takes the order (and the next
    order asks again), a cross one refuses it (a rejection, nothing held), which tells the
    symbol's mode: the next order names CROSS without asking."""
    with running(DIALECTS["kucoinfutures"]()) as (venue, exchange):
        venue.ledger.cross = cross
        client = CcxtClient(exchange)
        m = market(venue)
        venue.fail_next(KUCOIN_MARGIN_ROUTE, status=503)
        with caplog.at_level(logging.WARNING, logger="TradingBot"):
            order = client.create_market_order(m.symbol, "buy", m.lot, 5)
        assert any(f"Could not read the margin mode of {m.symbol}" in r for r in caplog.messages)
        (sent,) = venue.requests_to(venue.dialect.order_route, "POST")
        assert "marginMode" not in sent.params
        assert (order is None) is cross
        assert venue.ledger.size(m.symbol, "long") == (0 if cross else pytest.approx(m.lot))
        assert client.create_market_order(m.symbol, "buy", m.lot, 5) is not None
        wire = "CROSS" if cross else "ISOLATED"
        assert venue.requests_to(venue.dialect.order_route, "POST")[-1].params["marginMode"] == wire
        assert len(venue.requests_to(KUCOIN_MARGIN_ROUTE)) == (1 if cross else 2)


def test_kucoin_a_configured_margin_mode_is_named_without_asking() -> None:
    with running(DIALECTS["kucoinfutures"]()) as (venue, exchange):
        client = CcxtClient(exchange, margin_mode="cross")
        m = market(venue)
        assert client.create_market_order(m.symbol, "sell", m.lot, 5) is not None
        (sent,) = venue.requests_to(venue.dialect.order_route, "POST")
        assert sent.params["marginMode"] == "CROSS"
        assert venue.requests_to(KUCOIN_MARGIN_ROUTE) == []


def test_manager_kucoin_isolated_account_round_trip_without_a_configured_mode() -> None:
    """The manager over an isolated KuCoin account, ``margin_mode`` not set: it opens at the
    requested leverage, syncs and closes."""
    with running(DIALECTS["kucoinfutures"]()) as (venue, exchange):
        venue.ledger.cross = False
        m = market(venue)
        manager = PositionManager(CcxtClient(exchange), ticker_retry_delays=())
        assert manager.open_position(m.symbol, "SELL", 3 * m.lot, 4, 0.02)
        assert venue.ledger.size(m.symbol, "short") == pytest.approx(3 * m.lot)
        assert venue.ledger.lev(m.symbol, "short") == 4.0
        restarted = PositionManager(CcxtClient(exchange), ticker_retry_delays=())
        assert restarted.sync_existing_positions() == 1
        assert restarted.close_position(m.symbol, "manual") is not None
        assert venue.ledger.size(m.symbol, "short") == 0
        assert restarted.positions == {}


def test_htx_an_error_answer_ccxt_passes_through_is_an_unknown_outcome() -> None:
    """HTX v5 errors whose code ccxt does not map come back as an order without an id."""
    with running(DIALECTS["htx"]()) as (venue, exchange):
        client = CcxtClient(exchange)
        m = market(venue)
        body = {"code": 1999, "message": "system busy", "data": None, "ts": 1}
        venue.fail_next(venue.dialect.order_route, status=200, body=body)
        with pytest.raises(LookupError, match="no order id"):
            client.create_market_order(m.symbol, "buy", m.lot, 5)


def test_htx_client_order_ids_are_integers_exact_through_ccxt() -> None:
    with running(DIALECTS["htx"]()) as (venue, exchange):
        client = CcxtClient(exchange)
        m = market(venue)
        wire = client.venue_client_order_id("pmz9z9z9z9z9z9z9z9z9z9")
        assert wire.isdigit() and 0 < int(wire) <= 2**52
        assert client.create_market_order(m.symbol, "buy", m.lot, 5, client_order_id="pmz9")
        (sent,) = venue.requests_to(venue.dialect.order_route, "POST")
        assert str(sent.params["client_order_id"]) == client.venue_client_order_id("pmz9")


def test_an_asyncio_exchange_is_refused_with_a_clear_type_error() -> None:
    import ccxt.async_support as ccxt_async  # type: ignore[import-untyped]

    exchange = ccxt_async.binanceusdm()
    with pytest.raises(TypeError, match="AsyncCcxtClient"):
        CcxtClient(exchange)


# --------------------------------------------------------------------------- older ccxt releases


def test_okx_hedge_mode_is_read_where_ccxt_does_not_declare_it() -> None:
    """ccxt 4.5.64's OKX class has ``fetch_position_mode`` but leaves ``fetchPositionMode`` out
    of ``has``: the client assumed one-way and every hedge order was refused ("Parameter posSide
    error"). The mode is asked whenever the method exists (found 2026-12-07, ccxt 4.5.64)."""
    dialect = DIALECTS["okx"]()
    with running(dialect, hedge=True) as (venue, exchange):
        exchange.has = {**exchange.has, "fetchPositionMode": False}
        client = CcxtClient(exchange, sleep=lambda s: None)
        m = market(venue)
        assert client.create_market_order(m.symbol, "buy", 2 * m.lot, 5) is not None
        assert client.create_market_order(m.symbol, "sell", m.lot, 5) is not None
        assert venue.ledger.size(m.symbol, "long") == pytest.approx(2 * m.lot)
        assert venue.ledger.size(m.symbol, "short") == pytest.approx(m.lot)
        assert venue.unexpected == []


def test_htx_a_one_way_entry_whose_side_ccxt_left_as_both_reads_its_leg_from_direction() -> None:
    """ccxt 4.5.64's HTX class passes a one-way position's ``position_side`` ("both") through
    as its side, so the client dropped every one-way position as sideless: the manager saw an
    empty list. The leg is then read from HTX's ``direction`` (found 2026-12-07)."""
    dialect = DIALECTS["htx"]()
    with running(dialect, hedge=False) as (venue, exchange):
        parse_position = exchange.parse_position

        def as_4_5_64(position: Any, market: Any = None) -> Any:
            parsed = parse_position(position, market)
            parsed["side"] = position.get("position_side", parsed["side"])
            return parsed

        exchange.parse_position = as_4_5_64
        client = CcxtClient(exchange, sleep=lambda s: None)
        m = market(venue)
        venue.ledger.open(m.symbol, "short", 3 * m.lot, m.price)
        assert legs(client) == [(m.symbol, "short", pytest.approx(3 * m.lot), False)]
        assert venue.unexpected == []
