"""Positions in a venue's second *position scope* are listed, kept and closed.

Six venues list positions one scope of markets at a time, and ccxt's ``fetch_positions()``
without arguments reads only the default one: Bybit (USDT-settled linear; USDC-settled and
inverse markets are other scopes), Bitget (USDT-FUTURES; USDC-FUTURES, COIN-FUTURES), Gate
(USDT-settled; BTC-settled), HTX (linear swaps; coin-margined swaps), BingX (USD-M; coin-M)
and Hyperliquid (the main dex; each HIP-3 dex). A position held in another scope was never
listed: the manager dropped it as closed outside and ``close_position`` found nothing to close.

Each test runs the real ccxt class of the venue against its fake (``venue_dialects.SCOPES``:
one market of the second scope next to the venue's default markets) and proves, per scope:

a. the fake models the venue's scoping: ccxt's default request does not list the second
   scope's position, the request with that scope's params does and lists nothing else, and
   a scope request without the parameter the venue needs is refused;
b. ``CcxtClient.get_open_positions()`` lists the position once the client has dealt with its
   symbol (a ticker read) or been told of it (``watch_symbols``); a fresh client told nothing
   lists the default scope only (expected: it cannot know of other scopes); the client's
   ``close_position(symbol)`` closes it, reading its symbol's scope and not the default list;
c. a ``PositionManager`` imports such a position opened by hand, and keeps a position it
   opened there through ten cycles (no removal event) and closes it with one order;
d. a restarted manager (a new client and manager on the same SQLite journal, told nothing)
   keeps the journaled position through sync and three cycles;
e. a failed request of the second scope makes the list raise (never a partial list), and a
   manager cycle on that failure keeps every position;
f. Bybit: a default scope of 250 positions comes in two pages (200 a page, ``nextPageCursor``)
   and the client lists all 250, where ccxt's one request sees 200;
g. an open there whose answer is lost is looked up by its client order id where the venue
   keeps that scope's orders: tracked once, never sent again;
h. the same through ``ccxt.async_support`` and ``AsyncCcxtClient``: a manager over a fresh
   client keeps an assigned position there through its a-methods' cycles.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import ccxt  # type: ignore[import-untyped]
import ccxt.async_support as ccxt_async  # type: ignore[import-untyped]
import pytest
from venue_dialects import DIALECTS, SCOPES, Scope, scoped
from venue_sim import FakeVenue, Ledger, Market

from position_manager_rs import Position, PositionManager
from position_manager_rs.aio import AsyncCcxtClient
from position_manager_rs.ccxt_client import CcxtClient

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(params=sorted(SCOPES))
def key(request: pytest.FixtureRequest) -> str:
    return str(request.param)


class World:
    """A started fake venue holding one market of ``scope`` next to the default ones; the
    ccxt exchanges made for it are closed at the end."""

    def __init__(self, venue: FakeVenue, scope: Scope) -> None:
        self.venue = venue
        self.scope = scope
        self.exchanges: list[Any] = []

    @property
    def market(self) -> Market:
        """The second scope's market."""
        return self.scope.market

    @property
    def default(self) -> Market:
        """The venue's first default market."""
        return next(iter(self.venue.ledger.markets.values()))

    def exchange(self) -> Any:
        made = self.venue.make_exchange()
        self.exchanges.append(made)
        return made

    def client(self) -> CcxtClient:
        """A new client on a new exchange object (nothing loaded, nothing told)."""
        return CcxtClient(self.exchange(), sleep=lambda s: None)

    def hold(self, market: Market, lots: int = 3, leg: str = "long") -> None:
        self.venue.ledger.open(market.symbol, leg, lots * market.lot, market.price)

    def requests(self, route: str) -> int:
        """How many requests so far met ``route`` (a fault route: ``Scope.route``)."""
        dialect = self.venue.dialect
        return sum(1 for r in list(self.venue.requests) if dialect.matches(route, r))


@contextlib.contextmanager
def world(key: str) -> Iterator[World]:
    dialect, markets, scope = scoped(key)
    with FakeVenue(dialect, Ledger(markets)) as venue:
        made = World(venue, scope)
        try:
            yield made
        finally:
            for exchange in made.exchanges:
                session = getattr(exchange, "session", None)
                if session is not None and hasattr(session, "close"):
                    session.close()
        assert venue.unexpected == [], [(r.method, r.path) for r in venue.unexpected]


def held(entries: list[dict[str, Any]]) -> list[str]:
    """The symbols of the entries that hold contracts (Gate also lists flat records)."""
    return sorted(str(e["symbol"]) for e in entries if e.get("contracts"))


def removals(manager: PositionManager, symbol: str) -> list[Any]:
    return [e for e in manager.events if e["symbol"] == symbol and e["kind"] == "removed"]


def cycles(manager: PositionManager, n: int) -> None:
    for _ in range(n):
        list(manager.update_positions())


# --------------------------------------------------------------------------- a. the fakes


def test_a_the_venue_lists_each_scope_only_when_asked_for_it(key: str) -> None:
    with world(key) as w:
        w.hold(w.market, 3)
        w.hold(w.default, 2, "short")
        exchange = w.exchange()
        assert held(exchange.fetch_positions()) == [w.default.symbol]
        scoped_entries = exchange.fetch_positions(None, dict(w.scope.params))
        assert held(scoped_entries) == [w.market.symbol]
        (entry,) = [e for e in scoped_entries if e.get("contracts")]
        assert entry["side"] == "long"
        assert float(entry["contracts"]) == pytest.approx(3 * w.market.lot)
        assert w.requests(w.scope.route) == 1 and w.requests(w.scope.default_route) == 1


def test_a_ccxt_opens_and_closes_a_position_there(key: str) -> None:
    """A market order opens it and a reduce-only one closes it (HTX's coin-margined orders
    need ccxt's ``offset`` param, which its linear ones do not)."""
    with world(key) as w:
        m = w.market
        exchange = w.exchange()
        exchange.load_markets()
        price = m.price if w.scope.venue == "hyperliquid" else None  # it bounds the slippage
        opening: dict[str, Any] = {"offset": "open"} if w.scope.venue == "htx" else {}
        closing: dict[str, Any] = {"offset": "close"} if w.scope.venue == "htx" else {}
        exchange.create_order(m.symbol, "market", "buy", 3 * m.lot, price, opening)
        assert w.venue.ledger.size(m.symbol, "long") == pytest.approx(3 * m.lot)
        exchange.create_order(
            m.symbol, "market", "sell", 3 * m.lot, price, {**closing, "reduceOnly": True}
        )
        assert w.venue.ledger.held() == []
        (close,) = [o for o in w.venue.ledger.orders_sent() if o.reduce_only]
        assert (close.symbol, close.status) == (m.symbol, "closed")


@pytest.mark.parametrize(
    ("key", "params"),
    [
        # Bybit: a linear list needs settleCoin (or a symbol); ccxt always sends one, so ask raw.
        ("bybit-usdc", None),
        # Bitget: COIN-FUTURES needs the coin as marginCoin; ccxt alone sends USDT.
        ("bitget-coin", {"productType": "COIN-FUTURES"}),
    ],
)
def test_a_a_scope_request_without_its_parameter_is_refused(
    key: str, params: dict[str, Any] | None
) -> None:
    with world(key) as w:
        w.hold(w.market, 1)
        exchange = w.exchange()
        exchange.load_markets()
        with pytest.raises(ccxt.BaseError):
            if params is None:
                exchange.privateGetV5PositionList({"category": "linear"})
            else:
                exchange.fetch_positions(None, params)


# --------------------------------------------------------------------------- b. the client


def test_b_a_client_told_nothing_lists_the_default_scope_only(key: str) -> None:
    """Expected, not a defect: a client that has dealt with no symbol of the second scope
    cannot know it exists and reads the default list alone (the manager tells its client the
    symbols it tracks: ``watch_symbols``)."""
    with world(key) as w:
        w.hold(w.market)
        w.hold(w.default)
        assert held(w.client().get_open_positions()) == [w.default.symbol]
        assert w.requests(w.scope.route) == 0


def test_b_a_client_that_dealt_with_the_symbol_lists_its_scope(key: str) -> None:
    with world(key) as w:
        w.hold(w.market)
        w.hold(w.default)
        client = w.client()
        assert client.get_ticker(w.market.symbol) is not None
        listed = client.get_open_positions()
        assert held(listed) == sorted([w.default.symbol, w.market.symbol])
        assert [e["side"] for e in listed if e["symbol"] == w.market.symbol] == ["long"]


def test_b_a_client_told_of_the_symbol_lists_its_scope(key: str) -> None:
    with world(key) as w:
        w.hold(w.market)
        w.hold(w.default)
        client = w.client()
        client.watch_symbols([w.market.symbol])
        assert held(client.get_open_positions()) == sorted([w.default.symbol, w.market.symbol])


def test_b_a_client_reading_every_list_lists_it_unasked(key: str) -> None:
    """``every_position_list=True``: a fresh client, told nothing, reads every kind of market
    the venue's loaded markets hold, so a sync imports a position opened there by hand."""
    with world(key) as w:
        w.hold(w.market)
        w.hold(w.default)
        client = CcxtClient(w.exchange(), sleep=lambda s: None, every_position_list=True)
        assert held(client.get_open_positions()) == sorted([w.default.symbol, w.market.symbol])
        manager = PositionManager(
            CcxtClient(w.exchange(), sleep=lambda s: None, every_position_list=True),
            ticker_retry_delays=(),
        )
        assert manager.sync_existing_positions() == 2


def test_b_close_position_closes_it_from_its_own_scope(key: str) -> None:
    with world(key) as w:
        w.hold(w.market)
        w.hold(w.default)
        client = w.client()
        before = w.requests(w.scope.default_route)
        assert client.close_position(w.market.symbol) is True
        assert w.venue.ledger.size(w.market.symbol, "long") == 0
        assert w.venue.ledger.size(w.default.symbol, "long") == pytest.approx(3 * w.default.lot)
        assert w.requests(w.scope.route) >= 1
        assert w.requests(w.scope.default_route) == before, "the default list was read"


# --------------------------------------------------------------------------- c. the manager


def test_c_the_manager_imports_a_position_opened_by_hand(key: str) -> None:
    with world(key) as w:
        w.hold(w.market, 4)
        client = w.client()
        client.watch_symbols([w.market.symbol])
        manager = PositionManager(client, ticker_retry_delays=())
        assert manager.sync_existing_positions() == 1
        position = manager.positions[w.market.symbol]
        assert (position.side, position.amount) == ("long", pytest.approx(4 * w.market.lot))
        cycles(manager, 3)
        assert w.market.symbol in manager.positions and removals(manager, w.market.symbol) == []


def test_c_the_manager_opens_keeps_and_closes_a_position_there(key: str) -> None:
    with world(key) as w:
        m = w.market
        manager = PositionManager(w.client(), ticker_retry_delays=())
        assert manager.open_position(m.symbol, "BUY", 3 * m.lot, 5, 0.02), "not opened"
        assert w.venue.ledger.size(m.symbol, "long") == pytest.approx(3 * m.lot)
        for n in range(10):
            list(manager.update_positions())
            assert m.symbol in manager.positions, f"dropped at cycle {n + 1}: {manager.events}"
        assert removals(manager, m.symbol) == []
        assert isinstance(manager.close_position(m.symbol), float)
        assert w.venue.ledger.held() == []
        closes = [o for o in w.venue.ledger.orders_sent() if o.symbol == m.symbol and o.reduce_only]
        assert len(closes) == 1
        assert m.symbol not in manager.positions
        assert [e["kind"] for e in manager.events if e["symbol"] == m.symbol] == [
            "opened",
            "closed",
        ]


# --------------------------------------------------------------------------- d. a restart


def test_d_a_restarted_manager_keeps_the_journaled_position(key: str, tmp_path: Path) -> None:
    """The new client is told nothing: the manager tells it the symbols it restored (this
    needs the core to call ``watch_symbols`` before it reads a list)."""
    url = str(tmp_path / "scopes.db")
    with world(key) as w:
        m = w.market
        w.hold(w.market, 5)  # the position, held in the second scope
        client = w.client()
        client.get_ticker(m.symbol)
        first = PositionManager(client, ticker_retry_delays=(), journal=url)
        assert first.sync_existing_positions() == 1, "not imported before the restart"
        cycles(first, 1)
        assert m.symbol in first.positions
        del first

        again = PositionManager(w.client(), ticker_retry_delays=(), journal=url)
        assert m.symbol in again.positions, "not restored from the journal"
        again.sync_existing_positions()
        cycles(again, 3)
        assert m.symbol in again.positions, again.events
        assert removals(again, m.symbol) == []
        assert again.positions[m.symbol].amount == pytest.approx(5 * m.lot)


# --------------------------------------------------------------------------- e. failures


def test_e_a_failed_scope_request_fails_the_whole_list(key: str) -> None:
    with world(key) as w:
        m, d = w.market, w.default
        w.hold(m)
        w.hold(d)
        client = w.client()
        client.get_ticker(m.symbol)
        manager = PositionManager(client, ticker_retry_delays=())
        assert manager.sync_existing_positions() == 2
        assert w.requests(w.scope.route) >= 1, "the scope's list is not read"

        w.venue.fail_next(w.scope.route, 1, 503)
        with pytest.raises(Exception):  # noqa: B017 - whatever it raises, never a partial list
            client.get_open_positions()
        assert held(client.get_open_positions()) == sorted([d.symbol, m.symbol])

        w.venue.fail_next(w.scope.route, 1, 503)
        cycles(manager, 1)
        assert sorted(manager.positions) == sorted([d.symbol, m.symbol])
        assert [e for e in manager.events if e["kind"] == "removed"] == []
        cycles(manager, 1)
        assert sorted(manager.positions) == sorted([d.symbol, m.symbol])


# --------------------------------------------------------------------------- f. Bybit pages


def test_f_bybit_lists_a_default_scope_of_250_positions_over_two_pages() -> None:
    markets = tuple(Market(f"C{i:03d}", 10.0, lot=1.0) for i in range(250))
    with FakeVenue(DIALECTS["bybit"](), Ledger(markets)) as venue:
        for m in markets:
            venue.ledger.open(m.symbol, "long", 2.0)
        exchange = venue.make_exchange()
        plain = exchange.fetch_positions()  # ccxt alone: one request, the first page
        assert len(plain) == 200
        assert plain[0]["info"].get("nextPageCursor"), "the first page says more follow"
        client = CcxtClient(venue.make_exchange(), sleep=lambda s: None)
        listed = client.get_open_positions()
        assert sorted(p["symbol"] for p in listed) == sorted(m.symbol for m in markets)
        assert {p["contracts"] for p in listed} == {2.0}
        assert venue.unexpected == []
        for made in (exchange, client.exchange):
            made.session.close()


# --------------------------------------------------------------------------- g. lost answers


def test_g_an_open_whose_answer_was_lost_is_found_by_its_client_order_id(key: str) -> None:
    """The lists lag the fill and the client trusts a "not found" at once
    (``not_found_grace=0``): only the look-up can tell that the order went through, and one
    asked where the venue does not keep that scope's orders would send it again."""
    with world(key) as w:
        m = w.market
        client = CcxtClient(w.exchange(), sleep=lambda s: None, not_found_grace=0.0)
        manager = PositionManager(client, ticker_retry_delays=())
        w.venue.lose_next_order_answer(1, route=w.scope.order_route or None)
        w.venue.lag_positions_next(6)
        manager.open_position(m.symbol, "BUY", 3 * m.lot, 5, 0.02)
        assert [f.remaining for f in w.venue.faults] == [0], "no answer was lost"
        cycles(manager, 3)
        opens = [o for o in w.venue.ledger.orders_sent() if o.symbol == m.symbol]
        assert len(opens) == 1, opens
        assert w.venue.ledger.size(m.symbol, "long") == pytest.approx(3 * m.lot)
        assert m.symbol in manager.positions, manager.events
        assert manager.positions[m.symbol].amount == pytest.approx(3 * m.lot)
        assert removals(manager, m.symbol) == []
        assert manager.open_position(m.symbol, "BUY", 3 * m.lot, 5, 0.02) is False
        assert len([o for o in w.venue.ledger.orders_sent() if o.symbol == m.symbol]) == 1


# --------------------------------------------------------------------------- h. asyncio


def test_h_an_asyncio_manager_keeps_an_assigned_position_there(key: str) -> None:
    """No call of the client names the symbol before the first list: the manager's telling
    reaches ``AsyncCcxtClient`` (a ``CcxtClient`` whose exchange calls run on the loop)."""
    with world(key) as w:
        m = w.market
        w.hold(m, 4, "short")

        async def main() -> None:
            exchange = w.venue.make_exchange(module=ccxt_async)
            try:
                manager = PositionManager(AsyncCcxtClient(exchange), ticker_retry_delays=())
                manager.positions[m.symbol] = Position(
                    m.symbol, "short", m.price, 4 * m.lot, 5, m.price * 1.05, m.price * 0.85
                )
                for _ in range(3):
                    async for _closed in manager.aupdate_positions():
                        pass
                assert m.symbol in manager.positions, manager.events
                assert removals(manager, m.symbol) == []
            finally:
                await exchange.close()

        asyncio.run(asyncio.wait_for(main(), timeout=30))
