"""Orders whose outcome is unknown stay unknown: ``CcxtClient`` never turns one into a refusal,
and never lets ccxt send one twice.

Run with the real ccxt classes against the fake venues (``venue_sim``, ``venue_dialects``):

* a venue's own "outcome unknown" answer (OKX per-order ``sCode`` 51149 "Order timed out",
  KuCoin 408000 "Network timeout", Bybit 170146 "Order creation timeout" and 170035 "Submitted
  to the system for processing"), which ccxt maps to a rejection class or which fell under
  OKX's 51xxx refusals, raises, and the order's client id is looked up, not answered ``None``;
* ccxt's ``maxRetriesOnFailure`` option never re-sends an order or a cancel (one POST per
  intent on every venue), and still retries reads;
* a venue's refusal of a client order id it already holds (Bybit 110072, Bitget 40757, HTX
  1067, MEXC 603) raises ``DuplicateClientOrderId`` and is never noted as refused;
* a Hyperliquid market order not sent for want of a price is "never placed" at once.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import ccxt  # type: ignore[import-untyped]
import pytest
from venue_dialects import DIALECTS
from venue_sim import FakeVenue, Market, Request, now_ms, running

import position_manager_rs.ccxt_client as ccxt_client_module
from position_manager_rs import DuplicateClientOrderId, PositionManager
from position_manager_rs.ccxt_client import CcxtClient, is_duplicate_client_order_id

pytestmark = pytest.mark.timeout(60)

ROOT = Path(__file__).resolve().parent.parent

#: A venue's answer to an order it may have placed (the fake executes the order, then answers
#: this): (venue, body).
UNKNOWN_ANSWERS: dict[str, tuple[str, Any]] = {
    "okx-51149": (
        "okx",
        {
            "code": "1",
            "msg": "",
            "data": [
                {
                    "clOrdId": "",
                    "ordId": "",
                    "sCode": "51149",
                    "sMsg": "Order timed out. Please try again.",
                    "tag": "",
                }
            ],
            "inTime": "",
            "outTime": "",
        },
    ),
    "kucoinfutures-408000": (
        "kucoinfutures",
        {"code": "408000", "msg": "Network timeout, please try again later"},
    ),
    "bybit-170146": (
        "bybit",
        {"retCode": 170146, "retMsg": "Order creation timeout", "result": {}, "retExtInfo": {}},
    ),
    "bybit-170035": (
        "bybit",
        {
            "retCode": 170035,
            "retMsg": "Submitted to the system for processing!",
            "result": {},
            "retExtInfo": {},
        },
    ),
}


def market(venue: FakeVenue) -> Market:
    return next(iter(venue.ledger.markets.values()))


def order_posts(venue: FakeVenue) -> list[Request]:
    """The requests that placed an order (a look-up may use the same path: a GET)."""
    return [r for r in venue.requests if r.method == "POST" and venue.dialect.is_order(r)]


def _body(key: str) -> Any:
    body = UNKNOWN_ANSWERS[key][1]
    return {**body, "time": now_ms()} if "retCode" in body else body


# --------------------------------------------------------------------------- unknown outcomes


@pytest.mark.parametrize("key", sorted(UNKNOWN_ANSWERS))
def test_a_venue_answer_meaning_outcome_unknown_raises_and_is_looked_up(key: str) -> None:
    """The order was placed; the venue's answer says it cannot tell. Before the fix the client
    answered ``None`` and noted the id as refused, so its look-up answered ``None`` without a
    request and the manager sent the open again."""
    name = UNKNOWN_ANSWERS[key][0]
    with running(DIALECTS[name]()) as (venue, exchange):
        client = CcxtClient(exchange, sleep=lambda s: None)
        m = market(venue)
        venue.answer_next_order_with(_body(key))
        with pytest.raises(ccxt.BaseError):
            client.create_market_order(m.symbol, "buy", m.lot, 5, client_order_id="pmU1")
        assert venue.ledger.size(m.symbol, "long") == pytest.approx(m.lot)
        asked = len(venue.requests)
        found = client.get_order_by_client_id("pmU1", m.symbol)
        assert len(venue.requests) > asked, "looked up, not taken as refused"
        assert found is not None and found["status"] == "closed"
        assert found["clientOrderId"] == "pmU1"
        assert found["filled"] == pytest.approx(m.lot)


@pytest.mark.parametrize("key", ["okx-51149", "kucoinfutures-408000"])
def test_manager_opens_once_when_the_venue_answers_outcome_unknown(key: str) -> None:
    name = UNKNOWN_ANSWERS[key][0]
    with running(DIALECTS[name]()) as (venue, exchange):
        manager = PositionManager(
            CcxtClient(exchange, sleep=lambda s: None), ticker_retry_delays=()
        )
        m = market(venue)
        venue.answer_next_order_with(_body(key))
        assert manager.open_position(m.symbol, "BUY", m.lot, 5, 0.02)
        assert len(venue.ledger.orders_sent()) == 1
        assert venue.ledger.size(m.symbol, "long") == pytest.approx(m.lot)
        assert manager.positions[m.symbol].amount == pytest.approx(m.lot)


def test_a_venue_refusal_next_to_those_codes_is_still_a_rejection() -> None:
    """OKX's other per-order 51xxx codes stay definitive refusals (nothing placed: ``None``)."""
    body = {
        "code": "1",
        "msg": "",
        "data": [{"clOrdId": "", "ordId": "", "sCode": "51169", "sMsg": "no position"}],
    }
    with running(DIALECTS["okx"]()) as (venue, exchange):
        client = CcxtClient(exchange, sleep=lambda s: None)
        m = market(venue)
        venue.fail_next(venue.dialect.order_route, status=200, body=body)
        assert client.create_market_order(m.symbol, "buy", m.lot, 5, client_order_id="pmR") is None
        asked = len(venue.requests)
        assert client.get_order_by_client_id("pmR", m.symbol) is None
        assert len(venue.requests) == asked


# --------------------------------------------------------------------------- ccxt's retries


@pytest.mark.parametrize("name", sorted(DIALECTS))
def test_ccxt_retries_never_send_an_order_twice(name: str) -> None:
    """``options['maxRetriesOnFailure']`` re-sends a request that failed with an
    ``OperationFailed``; an order whose answer was lost (504) went out again (Binance takes a
    filled order's client id again: two positions, one reported)."""
    with running(DIALECTS[name](), options={"maxRetriesOnFailure": 2}) as (venue, exchange):
        client = CcxtClient(exchange, sleep=lambda s: None)
        m = market(venue)
        venue.lose_next_order_answer()
        with pytest.raises(ccxt.RequestTimeout):
            client.create_market_order(m.symbol, "buy", m.lot, 5, client_order_id="pmX1")
        assert len(order_posts(venue)) == 1
        assert venue.ledger.size(m.symbol, "long") == pytest.approx(m.lot)
        leaked = [r.path for r in venue.requests if "maxRetriesOnFailure" in json.dumps(r.params)]
        assert leaked == [], "the option never reaches the venue"
        assert client.get_order_by_client_id("pmX1", m.symbol) is not None
        assert venue.unexpected == []


@pytest.mark.parametrize("name", sorted(DIALECTS))
def test_ccxt_retries_never_send_a_cancel_twice(name: str) -> None:
    with running(DIALECTS[name](), options={"maxRetriesOnFailure": 2}) as (venue, exchange):
        client = CcxtClient(exchange, sleep=lambda s: None)
        m = market(venue)
        order = client.create_limit_order(m.symbol, "buy", m.lot, m.price * 0.9, 5)
        assert order is not None
        sent: list[str] = []

        def timing_out(url: str, *args: Any, **kwargs: Any) -> Any:
            sent.append(url)
            raise ccxt.RequestTimeout(f"{name} timed out")

        exchange.fetch = timing_out
        assert client.cancel_order(order["id"], m.symbol) is False
        assert len(sent) == 1


def test_ccxt_retries_still_apply_to_reads() -> None:
    dialect = DIALECTS["binanceusdm"]()
    with running(dialect, options={"maxRetriesOnFailure": 1}) as (venue, exchange):
        client = CcxtClient(exchange, sleep=lambda s: None)
        m = market(venue)
        venue.ledger.open(m.symbol, "long", m.lot, m.price)
        client.get_open_positions()
        venue.fail_next(dialect.positions_route, status=503)
        assert [p["symbol"] for p in client.get_open_positions()] == [m.symbol]
        assert venue.faults[-1].remaining == 0


def test_manager_with_ccxt_retries_opens_once_after_a_lost_answer() -> None:
    dialect = DIALECTS["binanceusdm"]()
    with running(dialect, options={"maxRetriesOnFailure": 2}) as (venue, exchange):
        manager = PositionManager(
            CcxtClient(exchange, sleep=lambda s: None), ticker_retry_delays=()
        )
        m = market(venue)
        venue.lose_next_order_answer()
        assert manager.open_position(m.symbol, "BUY", 3 * m.lot, 5, 0.02)
        assert len(order_posts(venue)) == 1
        assert venue.ledger.size(m.symbol, "long") == pytest.approx(3 * m.lot)
        assert manager.positions[m.symbol].amount == pytest.approx(3 * m.lot)


def test_a_venue_that_needs_per_endpoint_options_keeps_the_users_other_options() -> None:
    """OKX: the param would reach the venue inside its list of orders; the retries are turned
    off in ccxt's options of its order paths, merged into what is there."""
    with running(DIALECTS["okx"]()) as (venue, exchange):
        exchange.options["trade/batch-orders"] = {"other": 1}
        client = CcxtClient(exchange, sleep=lambda s: None)
        m = market(venue)
        assert client.create_market_order(m.symbol, "buy", m.lot, 5) is not None
        assert exchange.options["trade/batch-orders"] == {"other": 1, "maxRetriesOnFailure": 0}


# --------------------------------------------------------------------------- duplicate ids


@pytest.mark.parametrize("name", ["bitget", "bybit", "htx", "mexc"])
def test_a_venues_duplicate_id_refusal_raises_and_the_order_is_found(name: str) -> None:
    """A restarted bot (a second client) sends an id the venue holds: the refusal raises
    ``DuplicateClientOrderId`` (Bybit 110072, HTX 1067, MEXC 603 answered ``None``, Bitget 40757
    raised a bare ``ExchangeError``), and the look-up asks the venue, which holds the order."""
    with running(DIALECTS[name]()) as (venue, exchange):
        m = market(venue)
        first = CcxtClient(exchange, sleep=lambda s: None)
        assert first.create_market_order(m.symbol, "buy", m.lot, 5, client_order_id="pmD1")
        second = CcxtClient(venue.make_exchange(), sleep=lambda s: None)
        with pytest.raises(DuplicateClientOrderId):
            second.create_market_order(m.symbol, "buy", m.lot, 5, client_order_id="pmD1")
        assert "pmD1" not in second._refused_ids
        asked = len(venue.requests)
        found = second.get_order_by_client_id("pmD1", m.symbol)
        assert len(venue.requests) > asked
        assert found is not None and found["status"] == "closed"
        assert venue.ledger.size(m.symbol, "long") == pytest.approx(m.lot)


def test_bybits_duplicate_message_is_recognised_without_the_venue() -> None:
    error = ccxt.InvalidOrder(
        'bybit {"retCode":110072,"retMsg":"OrderLinkedID is duplicate","result":{}}'
    )
    assert is_duplicate_client_order_id(error)
    # HTX's and MEXC's codes say it only on their venue.
    htx = ccxt.InvalidOrder('htx {"code":1067,"message":"The client_order_id field is invalid."}')
    assert is_duplicate_client_order_id(htx, "htx")
    assert not is_duplicate_client_order_id(htx)
    assert not is_duplicate_client_order_id(htx, "okx")


# --------------------------------------------------------------------------- Hyperliquid price


def test_hyperliquid_an_order_not_sent_for_want_of_a_price_is_never_placed_at_once() -> None:
    with running(DIALECTS["hyperliquid"]()) as (venue, exchange):
        m = market(venue)
        client = CcxtClient(exchange, sleep=lambda s: None)
        assert client.create_market_order(m.symbol, "buy", m.lot, 5, client_order_id="pmH0")
        posts = len(order_posts(venue))

        def no_ticker(*args: Any, **kwargs: Any) -> Any:
            raise ccxt.NetworkError("ticker read failed")

        exchange.fetch_ticker = no_ticker
        assert client.close_position(m.symbol, client_order_id="pmH1") is False
        assert len(order_posts(venue)) == posts
        del exchange.fetch_ticker
        asked = len(venue.requests)
        assert client.get_order_by_client_id("pmH1", m.symbol) is None
        assert len(venue.requests) == asked
        assert venue.ledger.size(m.symbol, "long") == pytest.approx(m.lot)


# --------------------------------------------------------------------------- what the docs say


def test_the_docs_bound_ccxts_timeout_per_request_and_its_retries_to_reads() -> None:
    text = " ".join((ROOT / "docs" / "ccxt-client.md").read_text(encoding="utf-8").split())
    assert "every call blocks the calling thread for at most that long" not in text
    assert "one HTTP request" in text
    assert "`maxRetriesOnFailure`" in text and "reads only" in text
    module = " ".join((ccxt_client_module.__doc__ or "").split())
    assert "use ccxt's options for those" not in module
    assert "reads only" in module


def test_an_unknown_outcome_is_logged_as_such_not_as_a_rejection(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The client logs an unknown outcome as such (ERROR, "outcome unknown")."""
    caplog.set_level(logging.ERROR, logger="TradingBot")
    key = "kucoinfutures-408000"
    with running(DIALECTS["kucoinfutures"]()) as (venue, exchange):
        client = CcxtClient(exchange, sleep=lambda s: None)
        m = market(venue)
        venue.answer_next_order_with(_body(key))
        with pytest.raises(ccxt.BadRequest):
            client.create_market_order(m.symbol, "buy", m.lot, 5, client_order_id="pmL1")
    assert any("outcome unknown" in r.getMessage() for r in caplog.records)
    assert not any("rejected" in r.getMessage() for r in caplog.records)
