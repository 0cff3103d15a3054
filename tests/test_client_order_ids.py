"""Client order ids: the optional client contract, in ``PaperExchange`` and ``CcxtClient``.

The contract (``protocols.TradingClient``): a client class with ``client_order_ids = True`` takes
``client_order_id=ID`` on ``create_market_order``, ``create_limit_order`` and
``close_position``; every order answer carries ``clientOrderId``; a second order with a used id
raises and places nothing; ``get_order_by_client_id(ID, symbol)`` answers the order, ``None``
when the venue never had it, and raises when it cannot tell. ``CcxtClient`` is tested with the
real ccxt against ``fake_venue.FakeBinanceUsdm`` over loopback HTTP.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any
from unittest.mock import Mock

import ccxt  # type: ignore[import-untyped]
import pytest
from fake_venue import FakeBinanceUsdm, running_venue

from position_manager_rs import DuplicateClientOrderId, PaperExchange
from position_manager_rs.ccxt_client import CcxtClient, is_duplicate_client_order_id

pytestmark = pytest.mark.timeout(30)

BTC, ETH, SOL = "BTC/USDT:USDT", "ETH/USDT:USDT", "SOL/USDT:USDT"
ORDER = "/fapi/v1/order"


# --------------------------------------------------------------------------- the flag


def test_the_capability_flag_is_a_class_attribute_set_to_true() -> None:
    assert PaperExchange.client_order_ids is True
    assert CcxtClient.client_order_ids is True
    # What the manager checks: a Mock's auto-attribute is not True, so it never gets the keyword.
    assert getattr(Mock(), "client_order_ids", False) is not True


# --------------------------------------------------------------------------- PaperExchange


@pytest.fixture
def paper() -> PaperExchange:
    return PaperExchange(seed=3, volatility=0.0)


def test_paper_market_order_carries_and_finds_its_client_order_id(paper: PaperExchange) -> None:
    order = paper.create_market_order(BTC, "buy", 5, 10, client_order_id="pm1open")
    assert order is not None and order["clientOrderId"] == "pm1open"
    assert paper.calls_of("create_market_order") == [
        (
            (BTC, "buy", 5, 10),
            {"reduce_only": False, "is_critical": False, "client_order_id": "pm1open"},
        )
    ]
    found = paper.get_order_by_client_id("pm1open", BTC)
    assert found is not None
    assert found["id"] == order["id"] and found["clientOrderId"] == "pm1open"
    assert found["symbol"] == BTC and found["side"] == "buy"
    assert (found["amount"], found["filled"], found["status"]) == (5.0, 5.0, "closed")
    assert found["average"] == paper.price(BTC) and found["reduceOnly"] is False
    fill = paper.events(["fill"])[-1]
    assert fill["details"]["clientOrderId"] == "pm1open"


def test_paper_orders_without_an_id_get_one_made_up(paper: PaperExchange) -> None:
    a = paper.create_market_order(BTC, "buy", 1, 10)
    b = paper.create_market_order(BTC, "buy", 1, 10)
    assert a is not None and b is not None
    assert isinstance(a["clientOrderId"], str) and a["clientOrderId"]
    assert a["clientOrderId"] != b["clientOrderId"]
    assert paper.get_order_by_client_id(a["clientOrderId"], BTC)["id"] == a["id"]  # type: ignore[index]
    # No keyword was invented for a call made without one.
    assert paper.calls_of("create_market_order")[0][1] == {
        "reduce_only": False,
        "is_critical": False,
    }


def test_paper_unknown_id_is_none_and_other_symbol_is_none(paper: PaperExchange) -> None:
    assert paper.get_order_by_client_id("never", BTC) is None
    paper.create_market_order(BTC, "buy", 1, 10, client_order_id="x1")
    assert paper.get_order_by_client_id("x1", ETH) is None
    assert paper.get_order_by_client_id("x1", BTC) is not None


def test_paper_a_used_id_raises_and_places_nothing(paper: PaperExchange) -> None:
    paper.create_market_order(BTC, "buy", 2, 10, client_order_id="dup1")
    before = paper.position(BTC)
    with pytest.raises(DuplicateClientOrderId) as caught:
        paper.create_market_order(BTC, "buy", 2, 10, client_order_id="dup1")
    assert caught.value.client_order_id == "dup1"
    assert paper.position(BTC) == before
    with pytest.raises(DuplicateClientOrderId):
        paper.create_limit_order(BTC, "buy", 1, 1.0, 10, post_only=True, client_order_id="dup1")
    with pytest.raises(DuplicateClientOrderId):
        paper.close_position(BTC, client_order_id="dup1")
    assert paper.position(BTC) == before
    assert not paper.open_orders()
    rejected = paper.events(["order_rejected"])
    assert len(rejected) == 3 and all("duplicate" in e["details"]["reason"] for e in rejected)


def test_paper_a_used_id_is_refused_even_when_the_order_would_be_invalid_now(
    paper: PaperExchange,
) -> None:
    """A retried close whose first attempt executed: the position is gone, yet the answer is
    "duplicate" (raises), never "rejected, not placed" (None)."""
    paper.create_market_order(BTC, "buy", 2, 10)
    assert paper.close_position(BTC, client_order_id="close1") is True
    assert paper.position(BTC) is None
    with pytest.raises(DuplicateClientOrderId):
        paper.close_position(BTC, client_order_id="close1")
    with pytest.raises(DuplicateClientOrderId):
        paper.create_market_order(BTC, "sell", 2, 10, reduce_only=True, client_order_id="close1")


def test_paper_a_rejected_order_consumes_no_id(paper: PaperExchange) -> None:
    assert paper.create_market_order(BTC, "buy", 0.5, 10, client_order_id="r1") is None
    assert paper.get_order_by_client_id("r1", BTC) is None  # never placed
    assert paper.create_market_order(BTC, "buy", 1, 10, client_order_id="r1") is not None


@pytest.mark.parametrize("bad", ["", "x" * 37, "has space", "ümlaut", 5, b"bytes"])
def test_paper_an_invalid_id_is_rejected(paper: PaperExchange, bad: Any) -> None:
    assert paper.create_market_order(BTC, "buy", 1, 10, client_order_id=bad) is None
    assert paper.position(BTC) is None
    assert "client order id" in paper.events(["order_rejected"])[-1]["details"]["reason"]


def test_paper_the_managers_id_format_is_accepted(paper: PaperExchange) -> None:
    ident = "A" * 16 + "z9" * 8  # 32 ASCII letters and digits
    assert paper.create_market_order(BTC, "buy", 1, 10, client_order_id=ident) is not None


def test_paper_limit_order_id_through_resting_and_filling(paper: PaperExchange) -> None:
    order = paper.create_limit_order(
        BTC, "buy", 3, 89000.0, 10, post_only=True, client_order_id="lim1"
    )
    assert order is not None and order["clientOrderId"] == "lim1" and order["status"] == "open"
    assert paper.calls_of("create_limit_order")[0][1]["client_order_id"] == "lim1"
    assert paper.get_order_by_client_id("lim1", BTC)["status"] == "open"  # type: ignore[index]
    paper.set_price(BTC, 88990.0)
    found = paper.get_order_by_client_id("lim1", BTC)
    assert found is not None and found["status"] == "closed" and found["filled"] == 3.0
    assert paper.cancel_order(order["id"], BTC) is False
    other = paper.create_limit_order(BTC, "buy", 1, 80000.0, 10, client_order_id="lim2")
    assert other is not None and paper.cancel_order(other["id"], BTC)
    assert paper.get_order_by_client_id("lim2", BTC)["status"] == "canceled"  # type: ignore[index]


def test_paper_close_position_sends_its_reduce_only_order_with_the_id(
    paper: PaperExchange,
) -> None:
    paper.create_market_order(ETH, "sell", 4, 5)
    assert paper.close_position(ETH, client_order_id="cl1") is True
    assert paper.calls_of("close_position") == [((ETH,), {"client_order_id": "cl1"})]
    found = paper.get_order_by_client_id("cl1", ETH)
    assert found is not None
    assert (found["side"], found["amount"], found["reduceOnly"]) == ("buy", 4.0, True)
    # Without a position nothing is sent and the id stays free.
    assert paper.close_position(ETH, client_order_id="cl2") is False
    assert paper.get_order_by_client_id("cl2", ETH) is None


def test_paper_lookup_failure_raises(paper: PaperExchange) -> None:
    paper.create_market_order(BTC, "buy", 1, 10, client_order_id="f1")
    paper.fail_next("get_order_by_client_id", error=TimeoutError)
    with pytest.raises(TimeoutError):
        paper.get_order_by_client_id("f1", BTC)
    assert paper.get_order_by_client_id("f1", BTC) is not None


def test_paper_a_lost_answer_is_found_by_its_id(paper: PaperExchange) -> None:
    """The point of the ids: an order whose answer was lost is looked up, not sent again."""
    paper.lose_answer_next("create_market_order")
    with pytest.raises(TimeoutError):
        paper.create_market_order(SOL, "buy", 7, 5, client_order_id="lost1")
    found = paper.get_order_by_client_id("lost1", SOL)
    assert found is not None and found["status"] == "closed" and found["filled"] == 7.0
    assert paper.position(SOL)["contracts"] == 7.0  # type: ignore[index]
    with pytest.raises(DuplicateClientOrderId):
        paper.create_market_order(SOL, "buy", 7, 5, client_order_id="lost1")
    assert paper.position(SOL)["contracts"] == 7.0  # type: ignore[index]


# --------------------------------------------------------------------------- CcxtClient


@pytest.fixture
def venue_exchange() -> Iterator[tuple[FakeBinanceUsdm, Any]]:
    with running_venue(timeout_ms=2000) as pair:
        yield pair


@pytest.fixture
def venue(venue_exchange: tuple[FakeBinanceUsdm, Any]) -> FakeBinanceUsdm:
    return venue_exchange[0]


@pytest.fixture
def client(venue_exchange: tuple[FakeBinanceUsdm, Any]) -> CcxtClient:
    return CcxtClient(venue_exchange[1], sleep=lambda s: None)


def new_orders(venue: FakeBinanceUsdm) -> list[dict[str, str]]:
    return [r.params for r in venue.requests_to(ORDER, "POST")]


def test_ccxt_market_order_sends_new_client_order_id_and_echoes_it(
    venue: FakeBinanceUsdm, client: CcxtClient
) -> None:
    order = client.create_market_order(BTC, "buy", 0.01, 10, client_order_id="pm7open")
    assert order is not None and order["clientOrderId"] == "pm7open"
    assert new_orders(venue)[-1]["newClientOrderId"] == "pm7open"
    assert venue.orders_with_client_id("pm7open")[0]["status"] == "FILLED"


def test_ccxt_lookup_by_client_order_id(venue: FakeBinanceUsdm, client: CcxtClient) -> None:
    order = client.create_market_order(BTC, "buy", 0.01, 10, client_order_id="look1")
    assert order is not None
    found = client.get_order_by_client_id("look1", BTC)
    assert found is not None
    assert found["id"] == order["id"] and found["clientOrderId"] == "look1"
    assert found["status"] == "closed" and found["filled"] == 0.01
    assert found["average"] == 50000.0 and found["side"] == "buy" and found["symbol"] == BTC
    query = venue.requests_to(ORDER, "GET")[-1].params
    assert query["origClientOrderId"] == "look1" and "orderId" not in query


def test_ccxt_unknown_id_is_none_once_the_grace_is_over(
    venue_exchange: tuple[FakeBinanceUsdm, Any],
) -> None:
    now = [100.0]
    client = CcxtClient(venue_exchange[1], clock=lambda: now[0], not_found_grace=10.0)
    assert client.get_order_by_client_id("never1", BTC) is None  # not sent by this client
    # An id this client sent a moment ago that the venue does not know: cannot tell yet.
    venue_exchange[0].fail_next(ORDER, method="POST", status=503)
    with pytest.raises(ccxt.ExchangeNotAvailable):
        client.create_market_order(BTC, "buy", 0.01, 10, client_order_id="young1")
    with pytest.raises(LookupError):
        client.get_order_by_client_id("young1", BTC)
    now[0] += 10.0
    assert client.get_order_by_client_id("young1", BTC) is None


def test_ccxt_a_refused_orders_id_is_none_at_once(
    venue: FakeBinanceUsdm, client: CcxtClient
) -> None:
    # The venue refused the order (nothing placed): its lookup says so at once, without a
    # request, where the venue's "not found" would only count after the grace.
    refused = {"code": -2022, "msg": "ReduceOnly Order is rejected."}
    venue.open_position(BTC, "long", 0.01)
    venue.fail_next(ORDER, status=400, method="POST", body=refused)
    assert client.close_position(BTC, client_order_id="refused2") is False
    lookups = len(venue.requests_to(ORDER, "GET"))
    assert client.get_order_by_client_id("refused2", BTC) is None
    assert len(venue.requests_to(ORDER, "GET")) == lookups, "no request"
    with pytest.raises(DuplicateClientOrderId):
        client.create_market_order(BTC, "sell", 0.01, 10, True, client_order_id="refused2")


def test_ccxt_lookup_raises_when_it_cannot_tell(venue: FakeBinanceUsdm, client: CcxtClient) -> None:
    client.create_market_order(BTC, "buy", 0.01, 10, client_order_id="net1")
    venue.fail_next(ORDER, method="GET", status=503)
    with pytest.raises(ccxt.ExchangeNotAvailable):
        client.get_order_by_client_id("net1", BTC)
    assert client.get_order_by_client_id("net1", BTC) is not None


def test_ccxt_a_timed_out_order_is_found_by_its_id(
    venue: FakeBinanceUsdm, client: CcxtClient
) -> None:
    """The venue places the order, the client gives up waiting: the lookup finds it."""
    venue.delay_next(ORDER, 2.5)
    with pytest.raises(ccxt.RequestTimeout):
        client.create_market_order(BTC, "buy", 0.01, 10, client_order_id="slow1")
    deadline = 50
    while not venue.orders_with_client_id("slow1") and deadline:
        time.sleep(0.1)
        deadline -= 1
    found = client.get_order_by_client_id("slow1", BTC)
    assert found is not None and found["status"] == "closed"
    assert venue.position_size(BTC) == 0.01
    with pytest.raises(DuplicateClientOrderId):
        client.create_market_order(BTC, "buy", 0.01, 10, client_order_id="slow1")
    assert venue.position_size(BTC) == 0.01


def test_ccxt_the_same_instance_never_sends_an_id_twice(
    venue: FakeBinanceUsdm, client: CcxtClient
) -> None:
    """Binance refuses only an id that is still open: a filled order's id would be accepted
    again, so the adapter refuses the reuse itself."""
    client.create_market_order(BTC, "buy", 0.01, 10, client_order_id="once1")
    sent = len(new_orders(venue))
    with pytest.raises(DuplicateClientOrderId):
        client.create_market_order(BTC, "buy", 0.01, 10, client_order_id="once1")
    with pytest.raises(DuplicateClientOrderId):
        client.close_position(BTC, client_order_id="once1")
    assert len(new_orders(venue)) == sent
    assert venue.position_size(BTC) == 0.01


def test_ccxt_the_venues_duplicate_refusal_raises_instead_of_answering_none(
    venue_exchange: tuple[FakeBinanceUsdm, Any],
) -> None:
    venue, exchange = venue_exchange
    first = CcxtClient(exchange)
    second = CcxtClient(exchange)  # another process: its own memory of sent ids
    resting = first.create_limit_order(
        BTC, "buy", 0.01, 40000.0, 10, post_only=True, client_order_id="rest1"
    )
    assert resting is not None and resting["clientOrderId"] == "rest1"
    with pytest.raises(DuplicateClientOrderId) as caught:
        second.create_limit_order(
            BTC, "buy", 0.01, 40000.0, 10, post_only=True, client_order_id="rest1"
        )
    assert is_duplicate_client_order_id(caught.value.__cause__)  # type: ignore[arg-type]
    assert len(venue.orders_with_client_id("rest1")) == 1


def test_venue_accepts_a_finished_orders_id_again_as_binance_does(
    venue: FakeBinanceUsdm, venue_exchange: tuple[FakeBinanceUsdm, Any]
) -> None:
    """Documents the venue rule the adapter's own guard exists for."""
    exchange = venue_exchange[1]
    exchange.create_order(BTC, "market", "buy", 0.01, None, {"clientOrderId": "again1"})
    exchange.create_order(BTC, "market", "buy", 0.01, None, {"clientOrderId": "again1"})
    assert len(venue.orders_with_client_id("again1")) == 2
    assert venue.position_size(BTC) == pytest.approx(0.02)


def test_venue_refuses_an_invalid_client_order_id(
    venue: FakeBinanceUsdm, client: CcxtClient
) -> None:
    assert client.create_market_order(BTC, "buy", 0.01, 10, client_order_id="no spaces") is None
    assert venue.position_size(BTC) == 0.0


def test_ccxt_limit_order_and_close_carry_the_id(
    venue: FakeBinanceUsdm, client: CcxtClient
) -> None:
    order = client.create_limit_order(
        ETH, "sell", 0.5, 3100.0, 10, post_only=True, client_order_id="lim9"
    )
    assert order is not None and order["clientOrderId"] == "lim9"
    assert new_orders(venue)[-1]["newClientOrderId"] == "lim9"
    venue.set_price(ETH, 3100.0)
    assert client.get_order_by_client_id("lim9", ETH)["status"] == "closed"  # type: ignore[index]
    assert client.close_position(ETH, client_order_id="close9") is True
    close = new_orders(venue)[-1]
    assert close["newClientOrderId"] == "close9" and close["reduceOnly"] == "true"
    found = client.get_order_by_client_id("close9", ETH)
    assert found is not None and found["reduceOnly"] is True and found["side"] == "buy"
    assert venue.position_size(ETH) == 0.0


def test_ccxt_without_an_id_no_client_order_id_param_is_added(
    venue: FakeBinanceUsdm, client: CcxtClient
) -> None:
    calls: list[dict[str, Any]] = []
    real = client.exchange.create_order

    def spy(*args: Any) -> Any:
        calls.append(dict(args[5]))
        return real(*args)

    client.exchange.create_order = spy
    client.create_market_order(BTC, "buy", 0.01, 10)
    # Nothing but ccxt's retries turned off (an order is never re-sent by ccxt).
    assert calls == [{"maxRetriesOnFailure": 0}]
    client.create_market_order(BTC, "buy", 0.01, 10, client_order_id="p1")
    assert calls[-1] == {"clientOrderId": "p1", "maxRetriesOnFailure": 0}
