"""Prices and candles through the real ccxt classes never fire a close on a price that is not one.

A cycle reads a price for every tracked position (``CcxtClient.get_tickers``, then
``get_ticker`` for the symbols the batch did not price) and candles for the adaptive stop
(``get_ohlcv``). Each venue of ``venue_dialects.DIALECTS`` runs its real ccxt 4.5.90 class
against the fake venue (``venue_sim``) whose ticker and candle answers are rewritten: a ticker
answered for another market, contexts that do not line up with their markets, unsorted,
duplicated or foreign candles. A long BTC position (its stop 2 % below its entry) and an ETH one
are tracked; a price read from another market (ETH's 3,000 for BTC's 50,000) would close BTC at
its stop. The positions must stay (the same objects, no event, no order), with a warning naming
what was wrong; the cycle goes on with the prices that are right.

Every venue case runs through both clients (the ``client`` fixture, ``tests/venue_clients.py``):
``CcxtClient`` on ccxt's synchronous class, and ``AsyncCcxtClient`` on ``ccxt.async_support``'s
class for the same venue with the manager driven by its ``a`` methods on a running event loop
(all of them in CI: a few seconds more on one worker).

A ticker, the batched tickers and the candles are also answered with pages (``PAGES``: a 524
gateway page, a body of no text type, an HTML page with status 200; the two first are what
ccxt's asyncio class reads otherwise than its synchronous one, ``test_order_payloads._PAGE_524``):
no price and no candles come from them. Every venue, page and read through both clients runs
in CI (about 5 s on one worker; the position list so answered:
``test_malformed_lists.py::test_a_page_answering_the_position_list_is_a_failed_read``).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable

import pytest
from test_order_payloads import _PAGE_524
from venue_clients import CLIENTS, Driver, connected
from venue_dialects import DIALECTS
from venue_sim import FakeVenue, Market, Payload, Request, running

from position_manager_rs import PositionManager

pytestmark = pytest.mark.timeout(90)

VENUES = sorted(DIALECTS)
#: Venues whose ccxt class reads one market's ticker with a request of its own (Hyperliquid's
#: ``fetch_ticker`` is its ``fetch_tickers``).
SINGLE = [name for name in VENUES if name != "hyperliquid"]


def _is_ticker(request: Request) -> bool:
    return any(mark in request.path for mark in ("ticker", "merged", "contracts/active"))


def _is_candles(request: Request) -> bool:
    return any(mark in request.path for mark in ("kline", "candle")) or (
        request.params.get("type") == "candleSnapshot"
    )


def _names(request: Request, market_id: str) -> bool:
    """Whether ``request`` asks about the one market ``market_id`` (a parameter naming it)."""
    return any(value == market_id for value in request.params.values())


Handle = Callable[[Request], "tuple[int, Payload]"]


@contextmanager
def _answering(
    venue: FakeVenue, answer: Callable[[Request, Handle], tuple[int, Payload]]
) -> Iterator[None]:
    """Inside this block the venue answers every request with ``answer(request, handle)``,
    where ``handle`` is its own way of answering (which the rewrite may ask first)."""
    handle = venue.handle
    venue.handle = lambda request: answer(request, handle)  # type: ignore[method-assign]
    try:
        yield
    finally:
        del venue.handle


def _renamed(payload: Payload, old: str, new: str) -> Payload:
    """``payload`` with every text ``old`` in it replaced by ``new``."""
    return json.loads(json.dumps(payload).replace(old, new))


def _without(payload: Payload, market_id: str) -> Payload:
    """``payload`` without the entries of its lists that name ``market_id``."""
    if isinstance(payload, list):
        return [
            _without(one, market_id)
            for one in payload
            if not (isinstance(one, dict) and market_id in one.values())
        ]
    if isinstance(payload, dict):
        return {key: _without(value, market_id) for key, value in payload.items()}
    return payload


@dataclass
class Book:
    venue: FakeVenue
    manager: PositionManager
    drive: Driver
    caplog: pytest.LogCaptureFixture
    btc: Market
    eth: Market

    def id_of(self, market: Market) -> str:
        return self.venue.dialect.market_id_of(market)  # type: ignore[attr-defined]

    def cycle(self, n: int = 1) -> None:
        for _ in range(n):
            assert self.drive.update_positions() == []

    def warnings(self) -> list[str]:
        return [r.getMessage() for r in self.caplog.records if r.levelno >= logging.WARNING]

    def keeps_both_through(self, said: str, cycles: int = 2, case: str = "") -> None:
        """Both tracked positions stay through ``cycles`` cycles (the same objects, no event,
        no order sent), with a warning containing ``said``."""
        held = {m.symbol: self.manager.positions[m.symbol] for m in (self.btc, self.eth)}
        seq = self.manager.events[-1]["seq"] if self.manager.events else 0
        orders = len(self.venue.ledger.orders_sent())
        self.caplog.clear()
        self.cycle(cycles)
        changes = [
            (e["kind"], e["symbol"], e.get("reason")) for e in self.manager.events_since(seq)
        ]
        assert changes == [], f"{case}: {changes}"
        for symbol, position in held.items():
            assert self.manager.positions.get(symbol) is position, f"{case}: {symbol} {changes}"
        assert len(self.venue.ledger.orders_sent()) == orders, f"{case}: an order was sent"
        assert any(said in w for w in self.warnings()), f"{case}: {said!r} {self.warnings()}"


@pytest.fixture(params=CLIENTS)
def client(request: pytest.FixtureRequest) -> str:
    """The client every case runs through: ``CcxtClient`` on ccxt's synchronous class, or
    ``AsyncCcxtClient`` on its asyncio class, the manager driven by its a-methods."""
    return str(request.param)


@contextmanager
def tracking(name: str, mcc: int, caplog: pytest.LogCaptureFixture, client: str) -> Iterator[Book]:
    """A venue holding BTC (opened by the manager, its stop 2 % below) and ETH (found by a
    sync), both long and tracked, after one good cycle."""
    caplog.set_level(logging.WARNING)
    with connected(DIALECTS[name](), client, sleep=lambda s: None) as on:
        venue = on.venue
        btc, eth = list(venue.ledger.markets.values())[:2]
        venue.ledger.open(eth.symbol, "long", 4 * eth.lot, eth.price)
        manager = PositionManager(on.client, ticker_retry_delays=(), max_concurrent_calls=mcc)
        drive = on.drive(manager)
        assert drive.open_position(btc.symbol, "BUY", 3 * btc.lot, 5, 0.02)
        drive.sync_existing_positions()
        book = Book(venue, manager, drive, caplog, btc, eth)
        book.cycle()
        assert sorted(manager.positions) == sorted([btc.symbol, eth.symbol])
        yield book
        assert venue.unexpected == [], [(r.method, r.path) for r in venue.unexpected]


# ---------------------------------------------------------------------------- tickers


@pytest.mark.parametrize("mcc", [1, 4])
@pytest.mark.parametrize("name", SINGLE)
def test_a_ticker_answered_for_another_market_is_no_price(
    name: str, mcc: int, client: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The batched answer lacks BTC (the manager asks ``get_ticker``), and the venue answers
    BTC's ticker request with ETH's ticker: ccxt takes the first ticker of the answer and
    parses it as ETH's (or, for a market id it does not know, as the market asked about; HTX's
    ticker names no market at all). ``get_ticker`` answered it, the manager read ETH's 3,000
    as BTC's price and closed BTC at its stop (every venue)."""
    with tracking(name, mcc, caplog, client) as book:
        btc_id, eth_id = book.id_of(book.btc), book.id_of(book.eth)
        # the id of a market the venue lists and ccxt has not loaded
        new_id = book.venue.dialect.late_id(book.eth.base)  # type: ignore[attr-defined]
        answer_as = {"another listed market": eth_id, "a market ccxt does not know": new_id}
        for case, other in answer_as.items():

            def answer(request: Request, handle: Handle, other: str = other) -> tuple[int, Payload]:
                if not _is_ticker(request):
                    return handle(request)
                if not _names(request, btc_id):  # the batch: BTC left out
                    status, payload = handle(request)
                    return status, _without(payload, btc_id) if status == 200 else payload
                # BTC's own ticker request: the venue answers as if asked about ETH
                request.params = {
                    k: eth_id if v == btc_id else v for k, v in request.params.items()
                }
                status, payload = handle(request)
                return status, _renamed(payload, eth_id, other)

            with _answering(book.venue, answer):
                book.keeps_both_through(
                    f"All ticker retries failed for {book.btc.symbol}",
                    case=f"{name} {client} {case}",
                )
            assert any("another market" in w for w in book.warnings()), (case, book.warnings())
        book.cycle()  # right answers again
        assert sorted(book.manager.positions) == sorted([book.btc.symbol, book.eth.symbol])


@pytest.mark.parametrize("mcc", [1, 4])
@pytest.mark.parametrize("how", ["a context missing", "a context too many"])
def test_hyperliquid_contexts_out_of_line_with_their_markets_are_no_prices(
    how: str, mcc: int, client: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Hyperliquid's ``metaAndAssetCtxs`` answers the markets (``universe``) and their prices
    (contexts) as two lists matched by place; ccxt pairs them by index. With the first context
    missing BTC got ETH's context (its 3,000) and ETH none, in the batch and in ``get_ticker``
    (Hyperliquid's ``fetch_ticker`` is its ``fetch_tickers``): the manager closed BTC at its
    stop; with one too many at the front, ETH got BTC's (50,000) and was closed at its take
    profit."""
    with tracking("hyperliquid", mcc, caplog, client) as book:

        def answer(request: Request, handle: Handle) -> tuple[int, Payload]:
            status, payload = handle(request)
            if status == 200 and request.params.get("type") == "metaAndAssetCtxs":
                contexts = payload[1]
                payload[1] = contexts[1:] if how == "a context missing" else [{}, *contexts]
            return status, payload

        with _answering(book.venue, answer):
            book.keeps_both_through(f"All ticker retries failed for {book.btc.symbol}", case=how)
        said = "metaAndAssetCtxs answer lists 2 markets and"
        assert any(said in w for w in book.warnings()), book.warnings()
        book.cycle()
        assert sorted(book.manager.positions) == sorted([book.btc.symbol, book.eth.symbol])


def test_concurrent_ticker_reads_check_their_own_answers(client: str) -> None:
    """The check of a ticker's answer reads the answers of the calling thread's own requests
    (HTX's channel): 8 threads reading BTC's and ETH's tickers at once on one client get each
    its own price, and no read is taken for another market's. (The asyncio client: 8 threads
    off the loop, each call's requests run in a task of its own on the loop.)"""
    with connected(DIALECTS["htx"](), client, sleep=lambda s: None) as on:
        venue, reader = on.venue, on.client
        btc, eth = list(venue.ledger.markets.values())[:2]
        reader.get_ticker(btc.symbol)
        errors: list[BaseException] = []
        wrong: list[tuple[str, Any]] = []

        def read(market: Market) -> None:
            try:
                for _ in range(15):
                    ticker = reader.get_ticker(market.symbol)
                    if ticker is None or ticker.get("last") != market.price:
                        wrong.append((market.symbol, ticker and ticker.get("last")))
            except BaseException as e:
                errors.append(e)

        threads = [threading.Thread(target=read, args=([btc, eth][i % 2],)) for i in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert not any(t.is_alive() for t in threads)
        assert errors == [] and wrong == [], (errors, wrong)


# ---------------------------------------------------------------------------- candles

#: The venues' codes of the 1 h timeframe ccxt sends, and of 1 min.
_HOUR_TO_MINUTE = {"1h": "1m", "1H": "1m", "60": "1", "Min60": "Min1", "60min": "1min"}


def _each_twice(payload: Payload) -> Payload:
    """A candle answer with every candle in it twice: its lists of more than five rows (the
    candles), or MEXC's columns (each value twice)."""
    if isinstance(payload, list) and len(payload) > 5:
        return [row for row in payload for _ in (0, 1)]
    if not isinstance(payload, dict):
        return payload
    data = payload.get("data")
    if isinstance(data, dict) and isinstance(data.get("time"), list):  # MEXC's columns
        payload["data"] = {
            key: [v for v in value for _ in (0, 1)] if isinstance(value, list) else value
            for key, value in data.items()
        }
        return payload
    return {key: _each_twice(value) for key, value in payload.items()}


def _minutes(payload: Payload) -> Payload:
    """Binance's candles (``[time, ...]`` rows; its fake answers hours whatever the interval)
    one minute apart, ending where they ended."""
    last = payload[-1][0]
    return [[last - (len(payload) - 1 - i) * 60_000, *row[1:]] for i, row in enumerate(payload)]


@pytest.mark.parametrize("how", ["each candle twice", "candles of 1 min"])
@pytest.mark.parametrize("name", VENUES)
def test_candles_that_are_not_the_hours_asked_for_are_not_used(
    name: str, how: str, client: str, caplog: pytest.LogCaptureFixture
) -> None:
    """ccxt sorts a venue's candles and keeps the newest ``limit`` of them (checked on the
    ten venues: reversed, shuffled and longer answers give the right 100), but keeps
    duplicated timestamps and never looks at the step between candles: an answer with every
    candle twice gave the adaptive stop 50 hours counted as 100, and candles of 1 minute
    (the venue answering another timeframe) gave it 100 minutes for 100 hours, both without
    a word. They are now no candles: a warning, and the simple trailing stop this cycle."""
    with tracking(name, 1, caplog, client) as book:

        def answer(request: Request, handle: Handle) -> tuple[int, Payload]:
            if not _is_candles(request):
                return handle(request)
            if how == "candles of 1 min":
                request.params = {k: _HOUR_TO_MINUTE.get(v, v) if isinstance(v, str) else v
                                  for k, v in request.params.items()}  # fmt: skip
                req = request.params.get("req")
                if isinstance(req, dict):  # Hyperliquid
                    request.params["req"] = {**req, "interval": "1m"}
                status, payload = handle(request)
                if status == 200 and name == "binanceusdm":
                    payload = _minutes(payload)
                return status, payload
            status, payload = handle(request)
            return status, _each_twice(payload) if status == 200 else payload

        with _answering(book.venue, answer):
            book.keeps_both_through(f"API error getting OHLCV for {book.btc.symbol}", case=how)
        said = "not one per 1h" if how == "candles of 1 min" else "twice"
        assert any(said in w for w in book.warnings()), book.warnings()
        book.caplog.clear()
        book.cycle()
        assert not any("OHLCV" in w for w in book.warnings()), book.warnings()


@pytest.mark.parametrize("name", ["htx", "hyperliquid", "okx"])
def test_an_asyncio_client_refuses_another_markets_price_as_the_synchronous_one(
    name: str,
) -> None:
    """``AsyncCcxtClient``: ccxt's asyncio ``fetch`` runs on the loop, in a task submitted from
    the calling thread; the answers its checks read there (HTX's channel, Hyperliquid's
    contexts) are that call's, as in the synchronous client."""
    import asyncio

    import ccxt.async_support as ccxt_async  # type: ignore[import-untyped]

    from position_manager_rs.aio import AsyncCcxtClient

    async def main(venue: FakeVenue) -> None:
        exchange = venue.make_exchange(module=ccxt_async)
        try:
            client = AsyncCcxtClient(exchange)
            btc, eth = list(venue.ledger.markets.values())[:2]
            first = await asyncio.to_thread(client.get_ticker, btc.symbol)
            assert first is not None and first["last"] == btc.price
            dialect: Any = venue.dialect
            btc_id, eth_id = dialect.market_id_of(btc), dialect.market_id_of(eth)

            def answer(request: Request, handle: Handle) -> tuple[int, Payload]:
                if request.params.get("type") == "metaAndAssetCtxs":
                    status, payload = handle(request)
                    payload[1] = payload[1][1:]
                    return status, payload
                if _is_ticker(request) and _names(request, btc_id):
                    request.params = {
                        k: eth_id if v == btc_id else v for k, v in request.params.items()
                    }
                return handle(request)

            with _answering(venue, answer):
                with pytest.raises(ValueError, match="no price for"):
                    await asyncio.to_thread(client.get_ticker, btc.symbol)
            again = await asyncio.to_thread(client.get_ticker, btc.symbol)
            assert again is not None and again["last"] == btc.price
        finally:
            await exchange.close()

    with running(DIALECTS[name]()) as (venue, _):
        asyncio.run(asyncio.wait_for(main(venue), timeout=30))
        assert venue.unexpected == []


# ---------------------------------------------------------------------------- pages

#: Answers that are no venue JSON, each ``(status, body)``: a gateway's page with a status ccxt
#: maps to no error (its asyncio class returns the page as the answer, its synchronous class
#: raises ``ExchangeError``), a body of no text type (``bytes``: ``application/octet-stream``;
#: the asyncio class returns aiohttp's ``StreamReader``, the synchronous class the text), an
#: HTML page with status 200 (both classes return the text).
PAGES: dict[str, tuple[int, Payload]] = {
    "a 524 page": (524, _PAGE_524),
    "a body of no text type": (200, b"<html><body>OK</body></html>"),
    "an HTML page": (200, "<html><body>OK</body></html>"),
}
_DOWN = (503, "<html><body>503 Service Unavailable</body></html>")
#: The reads answered with a page: the batched tickers (each market's own ticker request
#: answered 503 meanwhile, so a price could come from the page only), each market's own ticker
#: (the batch answered 503), the candles. Hyperliquid reads both tickers with one request.
READS = ("tickers", "ticker", "candles")


def _paged(
    book: Book, read: str, page: tuple[int, Payload]
) -> Callable[[Request, Handle], tuple[int, Payload]]:
    """The venue's answers while ``read`` is answered with ``page``."""
    ids = (book.id_of(book.btc), book.id_of(book.eth))
    hyperliquid = book.venue.dialect.ccxt_name == "hyperliquid"

    def answer(request: Request, handle: Handle) -> tuple[int, Payload]:
        if read == "candles":
            return page if _is_candles(request) else handle(request)
        if not (_is_ticker(request) or request.params.get("type") == "metaAndAssetCtxs"):
            return handle(request)
        single = any(_names(request, one) for one in ids)
        return page if hyperliquid or single == (read == "ticker") else _DOWN

    return answer


@pytest.mark.parametrize("name", VENUES)
def test_a_page_answering_a_price_read_is_no_price(
    name: str, client: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The batched tickers, each market's own ticker, or the candles answered with a page
    (``PAGES``): no price and no candles come from it. Both positions stay, skipped this
    cycle (no close at a made-up price, no order, nothing raised to the bot) or trailed
    without candles, and a warning names the page (ccxt's synchronous class raises its own
    error for the 524 page first). Before, ccxt's parsers read such a page as candles of
    ``None`` or as no candles at all, and ``get_ohlcv`` answered them: no warning on eight
    venues (Binance and Gate: "candle #0 is not ... numbers"), where a read that failed says
    so; a batched read answered with a page said nothing or ``AttributeError: 'StreamReader'
    object has no attribute 'keys'``."""
    with tracking(name, 1, caplog, client) as book:
        for read in READS if name != "hyperliquid" else ("tickers", "candles"):
            for kind, page in PAGES.items():
                case = f"{name} {client} {read} {kind}"
                said = (
                    f"API error getting OHLCV for {book.btc.symbol}"
                    if read == "candles"
                    else f"All ticker retries failed for {book.btc.symbol}"
                )
                with _answering(book.venue, _paged(book, read, page)):
                    book.keeps_both_through(said, case=case)
                warnings = book.warnings()
                if not (client == "sync" and kind == "a 524 page"):
                    assert any("not the venue's JSON" in w for w in warnings), (case, warnings)
                assert not any("<StreamReader" in w for w in warnings), (case, warnings)
        book.caplog.clear()
        book.cycle()  # right answers again
        assert not any("OHLCV" in w or "ticker" in w for w in book.warnings()), book.warnings()
