"""Malformed or surprising venue answers to orders, through ccxt 4.5.90's real classes.

Every case runs through both clients (the ``client`` fixture, ``tests/venue_clients.py``):
``CcxtClient`` on ccxt's synchronous class, and ``AsyncCcxtClient`` on ``ccxt.async_support``'s
class for the same venue with the manager driven by its ``a`` methods on a running event loop.
In CI the asyncio client meets a representative part of the malformed order and cancel
answers (``ASYNC_CI``: the answers its ``fetch`` reads otherwise, whole bodies, one of each
family of rewritten fields); ``PMRS_LONG=1`` runs every answer through both clients.

The fake venues (``venue_sim`` + ``venue_dialects``) execute an order on their ledger, then
answer it — or the look-ups that follow it — with bytes the venue should not have sent: an
HTML page or an empty body with status 200, a 524 gateway page or a page of no text type (the
two ccxt's asyncio class reads otherwise than its synchronous one: ``_PAGE_524``), ``null``,
``{}``, an answer without an order id, an id of the wrong type, a ``filled`` that is negative,
``"0"``, null, a word or larger than ordered, a status ccxt does not know; and look-ups
answering another order's data (another client order id, another symbol) or a 524 page. Each
case counts the venue's orders and compares what the manager tracks (and its events say) with
the venue's ledger: the manager must never send a second opening order while the first may
have filled, never leave a filled position untracked, and never book a fill that did not
happen.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pytest
from venue_clients import CLIENTS, Driver, connected
from venue_dialects import DIALECTS
from venue_sim import FakeVenue, Market, Order, Payload, Request

from position_manager_rs import ManualClock, PositionManager

pytestmark = pytest.mark.timeout(120)

VENUES = sorted(DIALECTS)
LOTS = 3
LONG = os.environ.get("PMRS_LONG") == "1"


@dataclass
class Bot:
    venue: FakeVenue
    manager: PositionManager
    drive: Driver
    clock: ManualClock
    btc: Market
    eth: Market

    @property
    def amount(self) -> float:
        return LOTS * self.btc.lot

    def open(self) -> bool:
        return bool(self.drive.open_position(self.btc.symbol, "BUY", self.amount, 5, 0.02))

    def cycles(self, n: int = 3) -> None:
        for _ in range(n):
            self.clock.advance(30)
            self.drive.update_positions()

    def orders(self) -> int:
        return len(self.venue.ledger.orders_sent())

    def held(self) -> float:
        return self.venue.ledger.size(self.btc.symbol, "long")

    def tracked(self) -> float | None:
        position = self.manager.positions.get(self.btc.symbol)
        return None if position is None else float(position.amount)

    def tracks_what_the_venue_holds(self, orders: int) -> None:
        """The manager tracks BTC at the venue's size, its events say so, no order was sent
        beyond ``orders``, and another open of BTC sends nothing."""
        held = self.held()
        assert self.orders() == orders, [vars(o) for o in self.venue.ledger.orders_sent()]
        assert self.tracked() == pytest.approx(held) if held else self.tracked() is None, (
            self.tracked(),
            held,
        )
        kinds = [(e["kind"], e["position"]["amount"]) for e in self.manager.events]
        if held:
            assert any(
                kind == "opened" and amount == pytest.approx(held) for kind, amount in kinds
            ), kinds
        assert not any(kind in ("removed", "closed") for kind, _ in kinds), kinds
        self.open()
        assert self.orders() == orders, "a second opening order went out"
        assert self.held() == pytest.approx(held)


@pytest.fixture(params=CLIENTS)
def client(request: pytest.FixtureRequest) -> str:
    """The client every case runs through: ``CcxtClient`` on ccxt's synchronous class, or
    ``AsyncCcxtClient`` on its asyncio class, the manager driven by its a-methods."""
    return str(request.param)


@contextmanager
def bot(name: str, client: str) -> Iterator[Bot]:
    with connected(DIALECTS[name](), client, sleep=lambda s: None) as on:
        venue = on.venue
        btc, eth = list(venue.ledger.markets.values())[:2]
        clock = ManualClock(datetime(2026, 12, 1))
        manager = PositionManager(on.client, ticker_retry_delays=(), clock=clock)
        yield Bot(venue, manager, on.drive(manager), clock, btc, eth)
        assert venue.unexpected == [], [(r.method, r.path) for r in venue.unexpected]


def _decoy(b: Bot, kind: str, client_id: str | None) -> Order:
    """Another order the venue answers a look-up with: cancelled, nothing filled."""
    market = b.eth if kind == "another symbol" else b.btc
    other_id = None if kind == "no client order id" else client_id
    if kind == "another client order id":
        other_id = "someone-else-1"
    return Order(
        "6999999",
        market.symbol,
        "buy",
        LOTS * market.lot,
        None,
        "market",
        False,
        "long",
        other_id,
        status="canceled",
    )


@contextmanager
def look_ups_answer(b: Bot, kind: str, status: int = 200) -> Iterator[None]:
    """The next order is executed; its answer is sent as usual (``status`` 200) or lost (a
    gateway timeout), and every order look-up after it answers another order (``_decoy``)
    until the block ends."""
    ledger = b.venue.ledger
    real = ledger.find

    def arm(payload: Payload) -> tuple[int, Payload]:
        decoy = _decoy(b, kind, ledger.orders_sent()[-1].client_id)
        ledger.find = lambda order_id=None, client_id=None: decoy  # type: ignore[method-assign]
        if status == 200:
            return status, payload
        return status, "<html><body>504 Gateway Time-out</body></html>"

    b.venue.rewrite_next("POST", b.venue.dialect.order_route, arm)
    try:
        yield
    finally:
        ledger.find = real  # type: ignore[method-assign]


@pytest.mark.parametrize("kind", ["another client order id", "another symbol"])
@pytest.mark.parametrize("name", VENUES)
def test_a_fill_fetch_answering_another_order_keeps_the_position(
    name: str, kind: str, client: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The market order filled and its answer said so little that the client fetched it by its
    id (seven of the ten venues); the fetch answered another order, cancelled with nothing
    filled. Merged into the order's answer, that read as "nothing opened": the position was
    left untracked and the bot's next open doubled it."""
    with bot(name, client) as b, caplog.at_level(logging.WARNING):
        with look_ups_answer(b, kind):
            opened = b.open()
        assert b.held() == pytest.approx(b.amount)
        assert opened, [r.getMessage() for r in caplog.records]
        b.cycles()
        b.tracks_what_the_venue_holds(orders=1)


@pytest.mark.parametrize("kind", ["another symbol", "no client order id"])
@pytest.mark.parametrize("name", VENUES)
def test_a_lookup_answering_another_order_keeps_the_position(
    name: str, kind: str, client: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The market order filled, its answer was lost (504), and the look-up by its client order
    id answered another order, cancelled with nothing filled: one of another symbol carrying
    the id, or one naming no client order id. Taken as the order, it read as "nothing opened":
    the position was left untracked and the bot's next open doubled it."""
    with bot(name, client) as b, caplog.at_level(logging.WARNING):
        with look_ups_answer(b, kind, status=504):
            b.open()
        assert b.held() == pytest.approx(b.amount)
        b.cycles()
        b.tracks_what_the_venue_holds(orders=1)


@pytest.mark.parametrize("lost", [False, True], ids=["answered", "lost"])
@pytest.mark.parametrize("name", VENUES)
def test_look_ups_answered_with_a_gateway_page_keep_the_position(
    name: str, lost: bool, client: str
) -> None:
    """The market order filled; its answer came (or was lost: a 504), and every request after
    it but the position list was answered with a 524 page until the open returned: the fetch
    of its fill, the look-up by its client order id, whatever else the open read. ccxt's
    asyncio class returns such a page as the answer, its synchronous class raises (``_PAGE_524``);
    neither is "nothing filled" or "no such order": the position is tracked, no second order."""
    with bot(name, client) as b:
        venue = b.venue
        handle = venue.handle
        paged: list[str] = []  # the order, then the requests answered with the page

        def answer(request: Request) -> tuple[int, Payload]:
            status, payload = handle(request)
            if paged and not venue.dialect.is_positions(request):
                paged.append(request.path)
                return 524, _PAGE_524
            if request.method == "POST" and venue.dialect.matches(
                venue.dialect.order_route, request
            ):
                paged.append(request.path)
                if lost:
                    return 504, "<html><body>504 Gateway Time-out</body></html>"
            return status, payload

        venue.handle = answer  # type: ignore[method-assign]
        try:
            b.open()
        finally:
            del venue.handle
        assert b.held() == pytest.approx(b.amount)
        if lost:  # its client order id was looked up
            assert len(paged) > 1, paged
        b.cycles()
        b.tracks_what_the_venue_holds(orders=1)


# ----------------------------------------------------------------- malformed order answers

#: Keys of the venues' order answers holding the order's id, its filled amount, its status.
_ID_KEYS = frozenset({"orderId", "ordId", "order_id", "id", "oid"})
_FILL_KEYS = frozenset(
    {"executedQty", "cumQty", "totalSz", "dealVol", "accFillSz", "trade_volume", "filledQty",
     "left", "size"}
)  # fmt: skip
_STATUS_KEYS = frozenset({"status", "orderStatus", "state", "order_status"})
_GONE = object()


def _walk(payload: Any, keys: frozenset[str], value: Callable[[Any], Any]) -> None:
    if isinstance(payload, dict):
        for key in list(payload):
            if key in keys and not isinstance(payload[key], (dict, list)):
                new = value(payload[key])
                if new is _GONE:
                    del payload[key]
                else:
                    payload[key] = new
            else:
                _walk(payload[key], keys, value)
    elif isinstance(payload, list):
        for item in payload:
            _walk(item, keys, value)


#: A gateway's page with a status ccxt maps to no error (Cloudflare's 524, "a timeout
#: occurred"). ccxt's synchronous ``fetch`` raises ``ExchangeError`` for it (requests'
#: ``raise_for_status``: ccxt/base/exchange.py:634 and 648-653); its asyncio ``fetch`` returns the
#: page as the answer (ccxt/async_support/base/exchange.py:290-295: ``handle_http_status_code``
#: raises only for the statuses in ``httpExceptions``, 524 is not one).
_PAGE_524 = "<html><body><h1>524</h1>A timeout occurred</body></html>"


def _malformed(kind: str) -> Callable[[Payload], tuple[int, Payload]]:
    def rewrite(payload: Payload) -> tuple[int, Payload]:
        fixed = {"html": "<html><body>OK</body></html>", "empty body": "", "null": None}
        if kind in fixed:
            body = fixed[kind]
            return 200, "null" if body is None else body
        if kind == "a 524 page":
            return 524, _PAGE_524
        if kind == "a page of no text type":
            # application/octet-stream: ccxt's synchronous class returns the text, its asyncio
            # class aiohttp's StreamReader (ccxt/async_support/base/exchange.py:298).
            return 200, b"<html><body>OK</body></html>"
        if kind == "{}":
            return 200, {}
        if kind == "no order id":
            _walk(payload, _ID_KEYS, lambda v: _GONE)
        elif kind == "order id a dict":
            _walk(payload, _ID_KEYS, lambda v: {"id": v})
        elif kind.startswith("filled "):
            raw = json.loads(kind.removeprefix("filled "))
            _walk(payload, _FILL_KEYS, lambda v: raw)
        elif kind.startswith("status "):
            _walk(payload, _STATUS_KEYS, lambda v: kind.removeprefix("status "))
        return 200, payload

    return rewrite


MALFORMED = (
    "html",
    "empty body",
    "null",
    "a 524 page",
    "a page of no text type",
    "{}",
    "no order id",
    "order id a dict",
    'filled "-1"',
    'filled "0"',
    "filled null",
    'filled "abc"',
    'filled "99999"',
    "status PARTIALLY_FILLED_X",
    "status new",
    "status Cancelled",
)


#: The malformed answers the asyncio client meets in CI (``PMRS_LONG=1``: every one): those its
#: ``fetch`` reads otherwise than the synchronous class's (``_PAGE_524``), whole bodies, and one
#: of each family of rewritten fields. The fields of the rest are parsed by the same code in both
#: classes: ccxt 4.5.90's asyncio ``BaseExchange`` subclasses the synchronous one (``safe_order``,
#: ``ccxt/base/exchange.py:4424``), and every ``parse_*`` method of the ten venues' asyncio
#: classes (and of their parents ``binance`` and ``kucoin``) has the synchronous one's body.
ASYNC_CI = frozenset(
    {"html", "{}", "a 524 page", "a page of no text type", "no order id", 'filled "0"',
     "status new"}
)  # fmt: skip


def _kinds(client: str, kinds: Sequence[str]) -> list[str]:
    """``kinds``, or for the asyncio client in CI those in ``ASYNC_CI``."""
    return list(kinds) if client == "sync" or LONG else [k for k in kinds if k in ASYNC_CI]


@pytest.mark.parametrize("name", VENUES)
def test_a_malformed_answer_to_an_order_that_filled_keeps_one_position(
    name: str, client: str
) -> None:
    """The venue executed the order, then answered it malformed: the manager tracks the one
    position at the venue's size and never sends a second order."""
    for kind in _kinds(client, MALFORMED):
        with bot(name, client) as b:
            b.venue.rewrite_next("POST", b.venue.dialect.order_route, _malformed(kind))
            b.open()
            b.cycles()
            try:
                b.tracks_what_the_venue_holds(orders=1)
            except AssertionError as e:
                raise AssertionError(f"{name} {client} {kind}: {e}") from None


@pytest.mark.parametrize("name", VENUES)
def test_a_malformed_answer_to_an_order_that_did_not_go_through_books_nothing(
    name: str, client: str
) -> None:
    """The venue did not execute the order and answered malformed (status 200, or a 524 page):
    the manager books no position and sends nothing more while the outcome is unknown; once
    the venue says the order does not exist, the next open goes out as the one order."""
    for kind in ("html", "empty body", "null", "{}", "a 524 page", "a page of no text type"):
        with bot(name, client) as b:
            status, body = _malformed(kind)({})
            b.venue.fail_next(b.venue.dialect.order_route, 1, status, body)
            b.open()
            assert b.orders() == 0 and b.tracked() is None, kind
            kinds = [e["kind"] for e in b.manager.events]
            assert "opened" not in kinds, (kind, kinds)


# ----------------------------------------------------------------- cancels of limit orders


def _cancel_answers(b: Bot, kind: str, *, cancels: bool) -> None:
    """The venue's next cancel is answered ``_malformed(kind)``; it cancels the order when
    ``cancels``, else leaves it resting (the venue did not take the cancel)."""
    venue = b.venue
    real = venue.ledger.cancel

    def cancel(order_id: str) -> Order:
        venue.ledger.cancel = real  # type: ignore[method-assign]
        order = real(order_id) if cancels else venue.ledger.orders[str(order_id)]
        request = venue.requests[-1]  # the cancel being served
        venue.rewrite_next(request.method, request.path, _malformed(kind))
        return order

    venue.ledger.cancel = cancel  # type: ignore[method-assign]


CANCEL_ANSWERS = (
    "html",
    "empty body",
    "null",
    "{}",
    "status new",
    "a 524 page",
    "a page of no text type",
)


@pytest.mark.parametrize("cancels", [False, True], ids=["resting", "cancelled"])
@pytest.mark.parametrize("name", VENUES)
def test_a_malformed_cancel_answer_never_leaves_a_limit_resting_beside_a_market_order(
    name: str, cancels: bool, client: str
) -> None:
    """A limit open rests unfilled; its cancel is answered with a page (200, 524, or of no text
    type), an empty body, ``null``, ``{}`` or the order still ``new``, whether or not the venue
    cancelled it.
    ccxt reads most of those as a cancelled order (HTX makes one from the request alone), and
    the client said "cancelled": the manager sent its market order while the limit order still
    rested, and when the price came down to it the position was larger than asked for."""
    for kind in _kinds(client, CANCEL_ANSWERS):
        with bot(name, client) as b:
            _cancel_answers(b, kind, cancels=cancels)
            b.drive.open_position(
                b.btc.symbol, "BUY", b.amount, 5, 0.02, use_limit=True, limit_offset=0.01
            )
            for order in b.venue.ledger.orders_sent():
                if order.status == "open":  # the price comes down to it
                    b.venue.ledger._fill(order, order.price or b.btc.price)
            b.cycles(4)
            case = f"{name} {client} {kind} ({'cancelled' if cancels else 'resting'})"
            # One order's worth at most (a cancel that failed may leave nothing opened), and
            # what the venue holds is tracked.
            assert b.held() <= b.amount + 1e-12, (case, b.held())
            held = b.held()
            assert b.tracked() == (pytest.approx(held) if held else None), (case, b.tracked(), held)


# ------------------------------------------------------------------ closes that did nothing


@pytest.mark.parametrize("name", VENUES)
def test_a_close_the_venue_ended_with_nothing_filled_keeps_the_position(
    name: str, client: str
) -> None:
    """The venue took the close and ended it with nothing filled (a market order cancelled
    or expired unfilled: no liquidity, a price band): a final answer that nothing was closed.
    The position stays tracked, with no close booked (before: booked closed, then restored
    when the lists showed it), and the next close goes out and closes it."""
    with bot(name, client) as b:
        assert b.open()
        b.cycles(1)
        ledger = b.venue.ledger
        real = ledger._fill

        def ends_unfilled(order: Order, price: float) -> None:
            ledger._fill = real  # type: ignore[method-assign]
            order.status = "canceled"
            order.filled = 0.0

        ledger._fill = ends_unfilled  # type: ignore[method-assign]
        b.drive.close_position(b.btc.symbol)
        assert b.held() == pytest.approx(b.amount)
        assert b.tracked() == pytest.approx(b.amount)
        kinds = [e["kind"] for e in b.manager.events]
        assert kinds == ["opened"], kinds
        assert b.orders() == 2
        b.cycles(2)
        assert b.tracked() == pytest.approx(b.amount)
        b.drive.close_position(b.btc.symbol)
        assert b.held() == 0 and b.tracked() is None
        assert b.orders() == 3
        assert [e["kind"] for e in b.manager.events] == ["opened", "closed"]
