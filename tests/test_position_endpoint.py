"""The venue's position list is the answer of its position-list endpoint, wherever it comes.

``CcxtClient`` checks the answer ccxt read a position list from (an HTML page, an empty body,
``data: null``, another endpoint's JSON must not read as "no position") and re-parses it entry
by entry when ccxt's parse fails. That answer is told by the request's endpoint
(``_position_answers.POSITION_ENDPOINTS``), not by its place among the call's requests: a
venue's class, a later ccxt version or a user's subclass may make another request after the
position list (a mark price, an account setting, a time sync). Here ``fetch_positions`` of the
real ccxt classes, against the fake venues (``venue_sim``), is followed by one more request:
a ticker (another endpoint of the venue), or an answer shaped as an empty position list served
on another path (which a rule taking any answer that reads as a position list would take).
"""

from __future__ import annotations

import asyncio
import copy
import logging
import re
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import pytest
from test_malformed_lists import (
    GARBAGE,
    ONE_BY_ONE,
    SIZE,
    VENUES,
    _eth_size,
    _garbage,
    tracking,
    with_async_client,
)
from venue_dialects import DIALECTS
from venue_sim import FakeVenue, Payload, Request, running

from position_manager_rs import PositionManager
from position_manager_rs import _position_answers as answers
from position_manager_rs.ccxt_client import CcxtClient

pytestmark = pytest.mark.timeout(60)

#: The path (after the host) of the answer served beside the venue's own routes.
ELSEWHERE = "/positions-elsewhere"


def _then(exchange: Any, follow: Callable[[], Any]) -> None:
    """``exchange.fetch_positions`` makes ``follow()``'s request(s) after its own, whether it
    answered or raised (a hook of a user's subclass)."""
    real = exchange.fetch_positions

    def fetch_positions(*args: Any, **kwargs: Any) -> Any:
        try:
            return real(*args, **kwargs)
        finally:
            follow()

    exchange.fetch_positions = fetch_positions


def _flat_list(venue: FakeVenue, name: str) -> Payload:
    """The venue's last answer to its position-list request, with its list emptied: an answer
    in the venue's own format that says "no position"."""
    for (path, kind), payload in venue.answers.items():
        if path == venue.dialect.positions_route and kind in ("", "clearinghouseState"):
            flat = copy.deepcopy(payload)
            if isinstance(flat, list):
                return []
            held, _ = answers.position_container(name, flat)
            assert held, flat
            held.clear()
            return flat
    raise AssertionError(f"no position-list answer seen on {name}: {sorted(venue.answers)}")


def _serve_elsewhere(venue: FakeVenue, payload: Payload) -> str:
    """``payload`` answers ``ELSEWHERE`` on the venue (with status 200, as it is); the URL."""
    handle = venue.handle

    def handled(request: Request) -> tuple[int, Payload]:
        if request.path == ELSEWHERE:
            with venue.ledger.lock:
                venue.requests.append(request)
            return 200, copy.deepcopy(payload)
        return handle(request)

    venue.handle = handled  # type: ignore[method-assign]
    return f"{venue.base_url}/elsewhere.example{ELSEWHERE}"


def _verify_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno >= logging.WARNING and "Unable to verify" in r.getMessage()
    ]


@pytest.mark.parametrize("name", VENUES)
def test_a_request_after_the_position_list_leaves_the_list_read(
    name: str, caplog: pytest.LogCaptureFixture
) -> None:
    """(a) A valid list followed by a ticker request reads, and the manager acts on it."""
    with tracking(name, 1, caplog) as book:
        client = book.manager.client
        assert isinstance(client, CcxtClient)
        exchange = client.exchange
        _then(exchange, lambda: exchange.fetch_ticker(book.btc))
        before = len(book.venue.requests)
        listed = client.get_open_positions()
        made = book.venue.requests[before:]
        assert any(book.venue.dialect.is_positions(r) for r in made), made
        assert not book.venue.dialect.is_positions(made[-1]), made[-1]  # a request after it
        assert sorted((p["symbol"], p["side"]) for p in listed) == sorted(
            [(book.btc, "long"), (book.eth, "long")]
        )
        caplog.clear()
        book.cycle()
        book.venue.ledger.remove(book.eth)  # closed by hand: the next lists show it
        book.cycle(2)
        assert book.eth not in book.manager.positions
        assert book.btc in book.manager.positions
        assert _verify_warnings(caplog) == []


@pytest.mark.parametrize("name", VENUES)
def test_a_position_answer_that_is_no_list_before_an_empty_list_elsewhere_keeps_every_position(
    name: str, caplog: pytest.LogCaptureFixture
) -> None:
    """(b) The position request answered garbage (ccxt: no position), then another request
    answered an empty list in the venue's own format: the garbage is what is checked, and the
    tracked positions stay. Taking the last answer, or any answer that reads as a list, would
    read "no position" and remove both."""
    with tracking(name, 1, caplog) as book:
        client = book.manager.client
        assert isinstance(client, CcxtClient)
        exchange = client.exchange
        url = _serve_elsewhere(book.venue, _flat_list(book.venue, name))
        _then(exchange, lambda: exchange.fetch(url, "GET", {}, None))
        book.venue.answers.clear()
        listed = client.get_open_positions()  # a valid list, then the empty one elsewhere
        assert book.venue.requests[-1].path == ELSEWHERE
        assert sorted(p["symbol"] for p in listed) == sorted([book.btc, book.eth])
        book.cycle()  # (the tickers' answer, as the venue gives it, for "another endpoint")
        for kind in GARBAGE:
            book.keeps_both_through(
                _garbage(book.venue, name, kind),
                "Unable to verify positions",
                case=f"{name} {kind}",
            )


@pytest.mark.parametrize("name", ONE_BY_ONE)
def test_an_entry_ccxt_cannot_parse_is_read_from_the_position_answer(
    name: str, caplog: pytest.LogCaptureFixture
) -> None:
    """(c) ccxt fails on ETH's size (``'abc'``), and a ticker request follows: the list is
    read entry by entry from the position answer (BTC read, ETH presence only)."""
    with tracking(name, 1, caplog) as book:
        client = book.manager.client
        assert isinstance(client, CcxtClient)
        exchange = client.exchange
        _then(exchange, lambda: exchange.fetch_ticker(book.btc))
        book.venue.rewrite_positions_next(_eth_size(name, "abc"), n=1000)
        before = len(book.venue.requests)
        listed = client.get_open_positions()
        book.venue.calm()
        assert not book.venue.dialect.is_positions(book.venue.requests[-1])
        assert any(book.venue.dialect.is_positions(r) for r in book.venue.requests[before:])
        (eth,) = [p for p in listed if p["symbol"] == book.eth]
        assert f"'{SIZE[name]}' is 'abc'" in eth["unreadable"], eth
        assert [p["side"] for p in listed if p["symbol"] == book.btc] == ["long"]


@pytest.mark.parametrize("name", VENUES)
def test_an_endpoint_the_table_does_not_know_reads_the_last_answer_as_before(
    name: str, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A ccxt release that moved the venue's position-list endpoint (Binance's ``fapi/v2`` to
    ``v3`` was one) made no request this client knows: every list read raised, and every
    close with it (a close reads the list first), until the table knew the new endpoint. The
    call's last answer is checked instead, as before the table, with one warning: lists
    still read, a position closed by hand is still removed, a close still goes out, and an
    answer that is no position list still keeps every position."""
    monkeypatch.setitem(answers._PATTERNS, name, (("GET", re.compile(r"/nowhere$")),))
    with tracking(name, 1, caplog) as book:
        client = book.manager.client
        assert isinstance(client, CcxtClient)
        said = f"went to one of {name}'s known position-list endpoints"
        told = [m for m in book.warnings() if said in m]
        assert len(told) == 1 and "checking its last answer" in told[0], book.warnings()
        for kind in GARBAGE:
            book.keeps_both_through(
                _garbage(book.venue, name, kind),
                "Unable to verify positions",
                case=f"{name} {kind}",
            )
        book.venue.ledger.remove(book.eth)  # closed by hand
        book.cycle(2)
        assert book.eth not in book.manager.positions
        assert book.manager.close_position(book.btc, "manual") is not None
        assert book.venue.ledger.size(book.btc, "long") == 0
        assert book.manager.positions == {}
        assert [m for m in book.warnings() if said in m] == []  # once per client


@pytest.mark.parametrize("name", VENUES)
def test_a_failed_position_request_a_hook_caught_is_no_list(
    name: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A subclass's ``fetch_positions`` that catches the failure of the venue's position
    request and answers from another endpoint (here an empty list in the venue's format): a
    request that raised was not recorded, so the call looked like one whose endpoint this
    client does not know, and the other answer was checked in its place and read as "no
    position" (found by a review on 2026-12-07). The failed request is recorded now, and such
    a call raises: the manager keeps every position."""
    with tracking(name, 1, caplog) as book:
        client = book.manager.client
        assert isinstance(client, CcxtClient)
        exchange = client.exchange
        url = _serve_elsewhere(book.venue, _flat_list(book.venue, name))
        real = exchange.fetch_positions

        def forgiving(*args: Any, **kwargs: Any) -> Any:
            try:
                return real(*args, **kwargs)
            except Exception:
                exchange.fetch(url, "GET", {}, None)
                return []

        exchange.fetch_positions = forgiving
        book.venue.rewrite_positions_next(lambda payload: (503, {"error": "busy"}), n=1000)
        with pytest.raises(ValueError, match="position-list endpoint failed"):
            client.get_open_positions()
        book.venue.calm()
        book.keeps_both_through(
            lambda payload: (503, {"error": "busy"}), "Unable to verify positions", 2
        )


@pytest.mark.parametrize("name", ["bybit", "hyperliquid", "gate"])
def test_two_position_requests_in_one_call_raise(name: str) -> None:
    """One ``fetch_positions`` call that asked the position list twice (a subclass merging
    two reads; ccxt's own ``paginate`` option): which answer ccxt's entries came from cannot
    be told, so the read raises, naming both requests."""
    with running(DIALECTS[name]()) as (venue, exchange):
        btc = next(iter(venue.ledger.markets.values()))
        venue.ledger.open(btc.symbol, "long", 3 * btc.lot, btc.price)
        client = CcxtClient(exchange, sleep=lambda s: None)
        real = exchange.fetch_positions

        def twice(*args: Any, **kwargs: Any) -> Any:
            real(*args, **kwargs)
            return real(*args, **kwargs)

        exchange.fetch_positions = twice
        with pytest.raises(ValueError, match="2 of the requests") as raised:
            client.get_open_positions()
        route = venue.dialect.positions_route
        assert str(raised.value).count(route) == 2, raised.value
        assert venue.unexpected == []


_BITGET_COIN = {"uta": False, "productType": "COIN-FUTURES", "marginCoin": "BTC"}
#: (ccxt id, fetch_positions params, exchange options, the path ccxt 4.5.90 asks the position
#: list on; ``None``: no request of that call is a position-list request).
CCXT_REQUESTS: list[tuple[str, dict[str, Any], dict[str, Any], str | None]] = [
    ("binanceusdm", {}, {}, "/fapi/v3/positionRisk"),
    ("binanceusdm", {"useV2": True}, {}, "/fapi/v2/positionRisk"),
    ("binanceusdm", {"portfolioMargin": True}, {}, "/papi/v1/um/positionRisk"),
    ("binanceusdm", {}, {"fetchPositions": "account"}, "/fapi/v3/account"),
    ("binanceusdm", {"method": "account", "useV2": True}, {}, "/fapi/v2/account"),
    ("binanceusdm", {"method": "account", "portfolioMargin": True}, {}, "/papi/v2/um/account"),
    ("binancecoinm", {}, {}, "/dapi/v1/positionRisk"),
    ("binancecoinm", {"portfolioMargin": True}, {}, "/papi/v1/cm/positionRisk"),
    ("binancecoinm", {"method": "account"}, {}, "/dapi/v1/account"),
    ("binancecoinm", {"method": "account", "portfolioMargin": True}, {}, "/papi/v1/cm/account"),
    ("binance", {}, {}, "/fapi/v3/positionRisk"),
    ("binance", {"method": "option"}, {}, None),  # entries without positionAmt
    ("bybit", {}, {}, "/v5/position/list"),
    ("bybit", {"subType": "inverse"}, {}, "/v5/position/list"),
    ("bybit", {"settleCoin": "USDC"}, {}, "/v5/position/list"),
    ("okx", {}, {}, "/api/v5/account/positions"),
    ("okx", {}, {"fetchPositions": {"method": "privateGetAccountPositionsHistory"}}, None),
    ("bitget", {}, {}, "/api/v3/position/current-position"),  # settings answered: unified
    ("bitget", {"uta": False}, {}, "/api/v2/mix/position/all-position"),
    ("bitget", _BITGET_COIN, {}, "/api/v2/mix/position/all-position"),
    ("bitget", {"uta": False, "useHistoryEndpoint": True}, {}, None),  # closed positions
    ("gate", {}, {}, "/api/v4/futures/usdt/positions"),
    ("gate", {"settle": "btc"}, {}, "/api/v4/futures/btc/positions"),
    ("gate", {"type": "future", "settle": "usdt"}, {}, "/api/v4/delivery/usdt/positions"),
    ("gate", {"type": "option"}, {}, "/api/v4/options/positions"),
    ("kucoinfutures", {}, {}, "/api/v1/positions"),
    ("kucoinfutures", {}, {"uta": True}, "/api/ua/v1/unified/position/open-list"),
    ("kucoin", {}, {"uta": False}, "/api/v1/positions"),
    ("mexc", {}, {}, "/api/v1/private/position/open_positions"),
    ("htx", {}, {}, "/v5/trade/position/opens"),
    ("htx", {"subType": "inverse", "type": "swap"}, {}, "/swap-api/v1/swap_position_info"),
    ("htx", {"subType": "inverse", "type": "future"}, {}, "/api/v1/contract_position_info"),
    ("bingx", {}, {}, "/openApi/swap/v2/user/positions"),
    ("bingx", {"subType": "inverse"}, {}, "/openApi/cswap/v1/user/positions"),
    ("bingx", {"standard": True}, {}, "/openApi/contract/v1/allPosition"),
    ("hyperliquid", {}, {}, "/info"),
    ("hyperliquid", {"dex": "xyz"}, {}, "/info"),
]


def test_every_venue_whose_lists_are_checked_has_its_position_endpoints() -> None:
    """Every venue of ``RAW_SIZE_FIELDS`` has its endpoints, and every one ccxt 4.5.90 has a
    class of is read below (``gateio`` and ``huobi``, older ids, share their twins')."""
    import ccxt  # type: ignore[import-untyped]

    assert set(answers.POSITION_ENDPOINTS) == set(answers.RAW_SIZE_FIELDS)
    assert answers.POSITION_ENDPOINTS["gateio"] == answers.POSITION_ENDPOINTS["gate"]
    assert answers.POSITION_ENDPOINTS["huobi"] == answers.POSITION_ENDPOINTS["htx"]
    classes = {name for name in answers.RAW_SIZE_FIELDS if hasattr(ccxt, name)}
    assert classes == set(answers.RAW_SIZE_FIELDS) - {"gateio", "huobi"}
    assert {case[0] for case in CCXT_REQUESTS} == classes


@pytest.mark.parametrize(("name", "params", "options", "path"), CCXT_REQUESTS)
def test_the_request_ccxt_asks_the_position_list_with_is_known(
    name: str, params: dict[str, Any], options: dict[str, Any], path: str | None
) -> None:
    """ccxt's own ``fetch_positions`` (no HTTP: ``fetch`` answers ``{}``, Binance's leverage
    brackets ``[]``): of the requests it
    makes, exactly the one to ``path`` is a position-list request (none when ``path`` is
    ``None``); the requests before it (leverage brackets, account mode or settings) are not."""
    import ccxt

    exchange = getattr(ccxt, name)(
        {
            "apiKey": "key",
            "secret": "c2VjcmV0",
            "password": "pass",
            "uid": "1",
            "walletAddress": "0x" + "1" * 40,
            "privateKey": "0x" + "2" * 64,
            "options": options,
        }
    )
    exchange.set_markets([])
    made: list[tuple[str, str, Any]] = []

    def fetch(url: str, method: str = "GET", headers: Any = None, body: Any = None) -> Any:
        made.append((method, url, body))
        return [] if "leverageBracket" in url else {}  # Binance's brackets: a list

    exchange.fetch = fetch
    try:
        exchange.fetch_positions(None, dict(params))
    except Exception:
        pass  # ccxt's parse of the answer {}: the requests were made
    assert made, "no request made"
    heard = [answers.Heard(method, url, body, {}) for method, url, body in made]
    found = [h for h in heard if answers.position_request(name, h)]
    if path is None:
        assert found == [], [answers.shown_request(h) for h in heard]
        return
    assert [urlsplit(h.url).path for h in found] == [path], [
        answers.shown_request(h) for h in heard
    ]
    if name == "hyperliquid":
        # the same URL answers every query: another type is not the position list
        other = found[0]._replace(body='{"type": "metaAndAssetCtxs"}')
        assert not answers.position_request(name, other)


@pytest.mark.parametrize("name", ["binanceusdm", "hyperliquid"])
def test_an_asyncio_client_takes_the_position_answer_wherever_it_comes(name: str) -> None:
    """``AsyncCcxtClient``: the requests are recorded in the task ccxt's coroutine runs in;
    a ticker request after the list leaves it read, and garbage before a list elsewhere
    still fails the read."""

    async def body(venue: FakeVenue, exchange: Any, client: Any, btc: Any, eth: Any) -> None:
        url = _serve_elsewhere(venue, _flat_list(venue, name))
        real = exchange.fetch_positions
        then: list[Callable[[], Any]] = []

        async def fetch_positions(*args: Any, **kwargs: Any) -> Any:
            try:
                return await real(*args, **kwargs)
            finally:
                await then[0]()

        exchange.fetch_positions = fetch_positions
        then.append(lambda: exchange.fetch_ticker(btc.symbol))
        listed = await asyncio.to_thread(client.get_open_positions)
        assert not venue.dialect.is_positions(venue.requests[-1])
        assert sorted(p["symbol"] for p in listed) == [btc.symbol, eth.symbol]
        then[0] = lambda: exchange.fetch(url, "GET", {}, None)
        for kind in ("html", "data null"):
            venue.rewrite_positions_next(_garbage(venue, name, kind))
            with pytest.raises(ValueError, match="not a position list"):
                await asyncio.to_thread(client.get_open_positions)
            assert venue.requests[-1].path == ELSEWHERE

    with_async_client(name, body)


def _within(seconds: float, call: Callable[[], Any]) -> Any:
    """``call()``'s answer, failing the test when it has not returned within ``seconds`` (its
    thread, a daemon, is left behind)."""
    done: list[Any] = []
    failed: list[BaseException] = []

    def run() -> None:
        try:
            done.append(call())
        except BaseException as e:  # handed to the test's thread
            failed.append(e)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"still running after {seconds} s"
    if failed:
        raise failed[0]
    return done[0]


#: Ways a user turns ccxt's own paging on: exchange-wide, or for one method.
PAGING_ON: dict[str, Callable[[Any, str], None]] = {
    "exchange-wide": lambda exchange, method: exchange.options.__setitem__("paginate", True),
    "per method": lambda exchange, method: exchange.options.setdefault(method, {}).__setitem__(
        "paginate", True
    ),
}


@pytest.mark.parametrize("how", sorted(PAGING_ON))
@pytest.mark.parametrize("name", ["bitget", "bybit"])
def test_ccxts_paging_turned_on_neither_holds_nor_breaks_the_list_read(
    name: str, how: str, caplog: pytest.LogCaptureFixture
) -> None:
    """With ccxt's ``paginate`` option on, ccxt 4.5.90's ``fetch_positions`` of Bybit and
    Bitget calls itself again and again (each level retrying) and never returns: every cycle
    would hang. The client reads one page per call and asks ccxt not to page
    (``paginate: False``); the list reads, and a position closed by hand is removed."""
    with tracking(name, 1, caplog) as book:
        client = book.manager.client
        assert isinstance(client, CcxtClient)
        PAGING_ON[how](client.exchange, "fetchPositions")
        listed = _within(30, client.get_open_positions)
        assert sorted((p["symbol"], p["side"]) for p in listed) == sorted(
            [(book.btc, "long"), (book.eth, "long")]
        )
        _within(30, book.cycle)
        book.venue.ledger.remove(book.eth)
        _within(30, lambda: book.cycle(2))
        assert sorted(book.manager.positions) == [book.btc]
        assert _verify_warnings(caplog) == []


@pytest.mark.parametrize("how", sorted(PAGING_ON))
@pytest.mark.parametrize("name", VENUES)
def test_ccxts_paging_turned_on_leaves_the_candles_one_request(name: str, how: str) -> None:
    """ccxt 4.5.90's ``fetch_ohlcv`` reads the ``paginate`` option on nine of the ten venues;
    on Bybit it then calls itself without end. The client's candles stay one request of
    ``limit`` candles on every venue."""
    with running(DIALECTS[name]()) as (venue, exchange):
        btc = next(iter(venue.ledger.markets.values()))
        client = CcxtClient(exchange, sleep=lambda s: None)
        client.get_ohlcv(btc.symbol, "1h", 50)  # markets loaded, any first-call requests made
        PAGING_ON[how](exchange, "fetchOHLCV")
        before = len(venue.requests)
        candles = _within(30, lambda: client.get_ohlcv(btc.symbol, "1h", 50))
        assert len(candles) == 50
        assert len(venue.requests) - before == 1, [
            (r.method, r.path) for r in venue.requests[before:]
        ]
        assert venue.unexpected == []


@pytest.mark.parametrize("name", VENUES)
def test_a_manager_on_an_exchange_paging_everything_opens_cycles_and_closes(name: str) -> None:
    """``exchange.options['paginate'] = True`` set before the manager starts (a bot that wants
    ccxt to page its own history reads): opening, the list reads, a cycle and a close all
    return, and the close empties the venue."""
    with running(DIALECTS[name]()) as (venue, exchange):
        exchange.options["paginate"] = True
        btc = next(iter(venue.ledger.markets.values()))
        client = CcxtClient(exchange, sleep=lambda s: None)
        manager = PositionManager(client, ticker_retry_delays=())
        assert _within(30, lambda: manager.open_position(btc.symbol, "BUY", 3 * btc.lot, 5, 0.02))
        _within(30, lambda: list(manager.update_positions()))
        assert list(manager.positions) == [btc.symbol]
        assert _within(30, lambda: manager.close_position(btc.symbol)) is not None
        assert venue.ledger.size(btc.symbol, "long") == 0
        assert venue.unexpected == []
