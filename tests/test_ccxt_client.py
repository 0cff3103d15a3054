"""``CcxtClient`` with the real ``ccxt`` package over real HTTP, against a fake Binance USD-M venue.

Every test starts ``tests/fake_venue.py``'s venue on loopback and a ``ccxt.binanceusdm`` pointed at
it, so what the client returns is what ccxt really parses from Binance-shaped answers. ccxt is a
test dependency: without it this module fails (it does not skip).
"""

from __future__ import annotations

import logging
import subprocess
import sys
import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import ccxt  # type: ignore[import-untyped]
import pytest
from fake_venue import FakeBinanceUsdm, running_venue
from hypothesis import given
from hypothesis import strategies as st

from position_manager_rs import Position, PositionManager
from position_manager_rs.ccxt_client import CcxtClient, close_amount, is_definitive_rejection

pytestmark = pytest.mark.timeout(20)

BTC, ETH, SOL = "BTC/USDT:USDT", "ETH/USDT:USDT", "SOL/USDT:USDT"
POSITIONS = "/fapi/v3/positionRisk"
ORDER = "/fapi/v1/order"
LEVERAGE = "/fapi/v1/leverage"


@pytest.fixture
def venue_exchange() -> Iterator[tuple[FakeBinanceUsdm, Any]]:
    """A running fake venue and a real ``ccxt.binanceusdm`` talking to it."""
    with running_venue(timeout_ms=2000) as pair:
        yield pair


@pytest.fixture
def venue(venue_exchange: tuple[FakeBinanceUsdm, Any]) -> FakeBinanceUsdm:
    return venue_exchange[0]


@pytest.fixture
def sleeps() -> list[float]:
    """The pauses the client asked for (its injected ``sleep`` only records them)."""
    return []


@pytest.fixture
def client(venue_exchange: tuple[FakeBinanceUsdm, Any], sleeps: list[float]) -> CcxtClient:
    return CcxtClient(venue_exchange[1], sleep=sleeps.append)


def order_params(venue: FakeBinanceUsdm) -> list[dict[str, str]]:
    """Parameters of every order placed on the venue, in order."""
    return [r.params for r in venue.requests_to(ORDER, "POST")]


# --------------------------------------------------------------------------- reads


def test_open_positions_are_ccxt_unified_dicts_and_phantoms_are_dropped(
    venue: FakeBinanceUsdm, client: CcxtClient
) -> None:
    venue.open_position(BTC, "long", 0.01, 50000.0, leverage=10)
    venue.open_position(ETH, "short", 0.5, 3000.0)
    venue.add_phantom(SOL, 150.0)

    positions = client.get_open_positions()

    by_symbol = {p["symbol"]: p for p in positions}
    assert set(by_symbol) == {BTC, ETH}
    btc = by_symbol[BTC]
    assert btc["side"] == "long"
    assert btc["contracts"] == 0.01
    assert btc["contractSize"] == 1.0
    assert btc["entryPrice"] == 50000.0
    assert btc["markPrice"] == 50000.0
    assert btc["liquidationPrice"] == pytest.approx(50000.0 * (1 - 1 / 10 + 0.004))
    assert "leverage" in btc  # Binance's v3 position list carries no leverage: ccxt gives None
    assert btc["info"]["positionAmt"] == "0.010"
    assert by_symbol[ETH]["side"] == "short" and by_symbol[ETH]["contracts"] == 0.5
    # The phantom reached the client through ccxt (zero size, no side) and was filtered there.
    raw = {p["symbol"]: p for p in client.exchange.fetch_positions()}
    assert raw[SOL]["contracts"] == 0.0 and raw[SOL]["side"] is None


def test_no_open_position_is_an_empty_list(venue: FakeBinanceUsdm, client: CcxtClient) -> None:
    assert client.get_open_positions() == []
    assert venue.requests_to(POSITIONS)  # a real answer, not a swallowed error


@pytest.mark.parametrize("status", [500, 502, 503, 504, 429])
def test_open_positions_raise_on_5xx_and_429_instead_of_answering_empty(
    venue: FakeBinanceUsdm, client: CcxtClient, status: int
) -> None:
    venue.open_position(BTC, "long", 0.01)
    client.get_open_positions()  # markets and brackets loaded: the next call is the list only
    venue.fail_next(POSITIONS, status=status)
    with pytest.raises(ccxt.NetworkError):
        client.get_open_positions()
    assert [p["symbol"] for p in client.get_open_positions()] == [BTC]


def test_open_positions_raise_on_a_binance_internal_error(
    venue: FakeBinanceUsdm, client: CcxtClient
) -> None:
    body = {"code": -1001, "msg": "Internal error; unable to process your request."}
    venue.fail_next(POSITIONS, status=500, body=body)
    with pytest.raises(ccxt.BaseError):
        client.get_open_positions()


def test_open_positions_read_a_size_that_is_not_a_number_as_presence_only() -> None:
    """One entry whose size is not a number is presence only (its symbol listed, its size and
    side usable by nothing): the other entries of the list are read as ever. (The whole list
    used to raise: every symbol went unreconciled for as long as one entry stayed garbled.)"""

    class Exchange:
        def fetch_positions(self) -> list[dict[str, Any]]:
            return [
                {"symbol": BTC, "side": "long", "contracts": 0.01},
                {"symbol": ETH, "side": "long", "contracts": "lots"},
            ]

    btc, eth = CcxtClient(Exchange()).get_open_positions()
    assert (btc["symbol"], btc["side"], btc["contracts"]) == (BTC, "long", 0.01)
    assert "unreadable" not in btc
    assert eth["symbol"] == ETH and eth["unreadable"] == "contracts is 'lots'"
    assert eth["side"] == "long" and eth["contracts"] == "unreadable (contracts is 'lots')"


def test_ticker(client: CcxtClient, venue: FakeBinanceUsdm) -> None:
    venue.set_price(BTC, 51234.5)
    ticker = client.get_ticker(BTC)
    assert ticker is not None
    assert ticker["symbol"] == BTC and ticker["last"] == 51234.5


def test_ticker_raises_on_failure(venue: FakeBinanceUsdm, client: CcxtClient) -> None:
    client.get_ticker(BTC)
    venue.fail_next("/fapi/v1/ticker/24hr", status=502)
    with pytest.raises(ccxt.NetworkError):
        client.get_ticker(BTC)


def test_ohlcv_rows(client: CcxtClient, venue: FakeBinanceUsdm) -> None:
    rows = client.get_ohlcv(BTC, timeframe="15m", limit=5)
    assert len(rows) == 5
    assert all(len(r) == 6 and all(isinstance(x, (int, float)) for x in r) for r in rows)
    times = [r[0] for r in rows]
    assert [b - a for a, b in zip(times, times[1:])] == [900_000] * 4
    assert rows[-1][4] == 50000.0
    klines = venue.requests_to("/fapi/v1/klines")[-1].params
    assert klines["interval"] == "15m" and klines["limit"] == "5"
    assert len(client.get_ohlcv(ETH)) == 100  # defaults: '1h', 100 candles


def test_market_limits_with_step(client: CcxtClient) -> None:
    assert client.get_market_limits(BTC) == {
        "amount": {"min": 0.001, "max": 1000.0, "step": 0.001},
        "cost": {"min": 100.0, "max": None},
    }
    sol = client.get_market_limits(SOL)
    assert sol is not None and sol["amount"]["step"] == 1.0
    assert client.get_market_limits("DOGE/USDT:USDT") is None


@pytest.mark.parametrize(
    ("mode_name", "precision", "step"),
    [("TICK_SIZE", 0.01, 0.01), ("DECIMAL_PLACES", 3, 0.001), ("SIGNIFICANT_DIGITS", 4, None)],
)
def test_market_limit_step_follows_the_precision_mode(
    mode_name: str, precision: float, step: float | None
) -> None:
    class Exchange:
        precisionMode = getattr(ccxt, mode_name)

        def load_markets(self) -> dict[str, Any]:
            limits = {"amount": {"min": 1, "max": 9}, "cost": {"min": 5, "max": None}}
            return {BTC: {"limits": limits, "precision": {"amount": precision}}}

    limits = CcxtClient(Exchange()).get_market_limits(BTC)
    assert limits is not None
    assert limits["amount"]["step"] == (pytest.approx(step) if step is not None else None)


# --------------------------------------------------------------------------- orders


def test_market_order_sets_leverage_and_reports_its_fill(
    venue: FakeBinanceUsdm, client: CcxtClient
) -> None:
    order = client.create_market_order(BTC, "buy", 0.02, 7)

    assert order is not None
    assert order["status"] == "closed"
    assert order["filled"] == 0.02 and order["average"] == 50000.0 and order["side"] == "buy"
    assert venue.position_size(BTC) == 0.02
    assert venue.requests_to(LEVERAGE)[-1].params["leverage"] == "7"
    assert venue.leverage["BTCUSDT"] == 7
    # The creation answer said NEW with nothing filled: the order was fetched once.
    assert len(venue.requests_to(ORDER, "GET")) == 1
    (sent,) = order_params(venue)
    assert (sent["type"], sent["side"], sent["quantity"]) == ("MARKET", "BUY", "0.02")
    assert "reduceOnly" not in sent


def test_market_order_answer_with_its_fill_is_not_fetched_again(
    venue: FakeBinanceUsdm, client: CcxtClient
) -> None:
    venue.report_fill_on_create = True
    order = client.create_market_order(ETH, "sell", 0.1)
    assert order is not None and order["filled"] == 0.1 and order["average"] == 3000.0
    assert venue.requests_to(ORDER, "GET") == []
    assert venue.position_size(ETH) == -0.1


def test_reduce_only_market_order_skips_leverage(
    venue: FakeBinanceUsdm, client: CcxtClient
) -> None:
    venue.open_position(BTC, "long", 0.03)
    order = client.create_market_order(BTC, "sell", 0.01, reduce_only=True, is_critical=True)
    assert order is not None and order["reduceOnly"] is True
    assert order_params(venue)[-1]["reduceOnly"] == "true"
    assert venue.requests_to(LEVERAGE) == []
    assert venue.position_size(BTC) == pytest.approx(0.02)


def test_a_leverage_failure_does_not_stop_the_order(
    venue: FakeBinanceUsdm, client: CcxtClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="TradingBot")
    venue.fail_next(LEVERAGE, status=400, body={"code": -4028, "msg": "Leverage 300 is not valid"})
    order = client.create_market_order(BTC, "buy", 0.01, 300)
    assert order is not None and order["filled"] == 0.01
    assert any("Could not set leverage 300x" in r.getMessage() for r in caplog.records)


MARGIN = {"code": -2019, "msg": "Margin is insufficient."}
PRECISION = {"code": -1111, "msg": "Precision is over the maximum defined for this asset."}


@pytest.mark.parametrize(
    ("amount", "kwargs", "body", "rejection"),
    [
        pytest.param(0.01, {"reduce_only": True}, None, "InvalidOrder", id="reduce-only-flat"),
        pytest.param(0.001, {}, None, "InvalidOrder", id="notional-below-minimum"),
        pytest.param(0.01, {}, MARGIN, "InsufficientFunds", id="insufficient-margin"),
        pytest.param(0.01, {}, PRECISION, "BadRequest", id="precision"),
    ],
)
def test_a_definitive_rejection_returns_none(
    venue: FakeBinanceUsdm,
    client: CcxtClient,
    caplog: pytest.LogCaptureFixture,
    amount: float,
    kwargs: dict[str, Any],
    body: dict[str, Any] | None,
    rejection: str,
) -> None:
    caplog.set_level(logging.ERROR, logger="TradingBot")
    if body is not None:
        venue.fail_next(ORDER, status=400, method="POST", body=body)

    assert client.create_market_order(BTC, "buy", amount, **kwargs) is None

    assert venue.position_size(BTC) == 0.0
    assert len(order_params(venue)) == 1  # the venue refused it
    (message,) = [r.getMessage() for r in caplog.records if "rejected" in r.getMessage()]
    assert rejection in message or rejection in _ccxt_ancestors(message)


def _ccxt_ancestors(message: str) -> str:
    """The ccxt class named in a rejection message, with its ancestors' names."""
    name = message.split(": ")[1]
    return " ".join(c.__name__ for c in getattr(ccxt, name).__mro__)


def test_ccxt_errors_are_classified_by_class() -> None:
    for cls in (ccxt.InvalidOrder, ccxt.OrderNotFound, ccxt.InsufficientFunds, ccxt.BadSymbol):
        assert is_definitive_rejection(cls("refused"))
    for cls in (ccxt.NetworkError, ccxt.RequestTimeout, ccxt.ExchangeError, ccxt.OperationFailed):
        assert not is_definitive_rejection(cls("unknown"))

    class InvalidOrder(Exception):  # same name, not ccxt's
        pass

    assert not is_definitive_rejection(InvalidOrder())


@pytest.mark.parametrize("status", [502, 503, 429])
def test_an_unknown_outcome_raises(venue: FakeBinanceUsdm, client: CcxtClient, status: int) -> None:
    client.get_market_limits(BTC)
    venue.fail_next(ORDER, status=status, method="POST")
    with pytest.raises(ccxt.NetworkError):
        client.create_market_order(BTC, "buy", 0.01)
    venue.fail_next(ORDER, status=status, method="POST")
    with pytest.raises(ccxt.NetworkError):
        client.create_limit_order(BTC, "buy", 0.01, 49000.0)


def test_a_timed_out_order_raises_and_may_still_have_been_placed(
    venue: FakeBinanceUsdm, venue_exchange: tuple[FakeBinanceUsdm, Any]
) -> None:
    exchange = venue_exchange[1]
    exchange.load_markets()
    exchange.timeout = 300  # ms
    client = CcxtClient(exchange)
    venue.delay_next(ORDER, 0.6)
    with pytest.raises(ccxt.RequestTimeout):
        client.create_market_order(BTC, "buy", 0.01)
    deadline = time.monotonic() + 5
    while venue.position_size(BTC) == 0.0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert venue.position_size(BTC) == 0.01  # hence "re-check, do not assume nothing happened"


def test_limit_order_post_only_rests_then_fills_while_waited_for(
    venue: FakeBinanceUsdm, client: CcxtClient, sleeps: list[float]
) -> None:
    order = client.create_limit_order(BTC, "buy", 0.01, 49900.0, 5, post_only=True)
    assert order is not None and order["status"] == "open" and order["price"] == 49900.0
    sent = order_params(venue)[-1]
    assert (sent["type"], sent["timeInForce"], sent["price"]) == ("LIMIT", "GTX", "49900")
    assert venue.leverage["BTCUSDT"] == 5

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        if len(sleeps) == 2:
            venue.set_price(BTC, 49850.0)  # the market trades through the bid

    client.sleep = sleep
    status = client.wait_for_order_fill(order["id"], BTC, timeout=10, check_interval=2)
    assert status is not None
    assert set(status) == {
        "id", "status", "filled", "remaining", "amount", "price", "average", "cost", "timestamp"
    }  # fmt: skip
    assert status["id"] == order["id"] and status["status"] == "closed"
    assert status["filled"] == 0.01 and status["remaining"] == 0.0 and status["average"] == 49900.0
    assert sleeps == [2, 2]
    assert venue.position_size(BTC) == 0.01


def test_post_only_that_would_take_is_rejected(venue: FakeBinanceUsdm, client: CcxtClient) -> None:
    assert client.create_limit_order(BTC, "buy", 0.01, 50100.0, post_only=True) is None
    order = client.create_limit_order(BTC, "buy", 0.01, 50100.0)  # not post-only: takes
    assert order is not None and order["status"] == "closed"


def test_reduce_only_limit_order(venue: FakeBinanceUsdm, client: CcxtClient) -> None:
    venue.open_position(ETH, "short", 1.0)
    order = client.create_limit_order(ETH, "buy", 1.0, 2990.0, reduce_only=True)
    assert order is not None and order["reduceOnly"] is True and order["status"] == "open"
    assert order_params(venue)[-1]["reduceOnly"] == "true"
    assert venue.requests_to(LEVERAGE) == []


def test_wait_for_order_fill_gives_the_last_status_at_the_timeout(
    venue: FakeBinanceUsdm, client: CcxtClient, sleeps: list[float]
) -> None:
    order = client.create_limit_order(BTC, "sell", 0.01, 50500.0)
    assert order is not None
    status = client.wait_for_order_fill(order["id"], BTC, timeout=5, check_interval=2)
    assert status is not None and status["status"] == "open" and status["filled"] == 0.0
    assert sleeps == [2, 2, 1]
    assert len(venue.requests_to(ORDER, "GET")) == 4


def test_wait_for_order_fill_is_none_when_every_fetch_fails(
    venue: FakeBinanceUsdm, client: CcxtClient, sleeps: list[float]
) -> None:
    order = client.create_limit_order(BTC, "sell", 0.01, 50500.0)
    assert order is not None
    venue.fail_next(ORDER, n=10, status=503, method="GET")
    assert client.wait_for_order_fill(order["id"], BTC, timeout=4, check_interval=2) is None
    assert sleeps == [2, 2]
    assert client.wait_for_order_fill("123", BTC, timeout=0) is None  # unknown order


def test_wait_for_order_fill_keeps_a_status_seen_before_failures(
    venue: FakeBinanceUsdm, client: CcxtClient, sleeps: list[float]
) -> None:
    order = client.create_limit_order(BTC, "sell", 0.01, 50500.0)
    assert order is not None

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        venue.fail_next(ORDER, n=10, status=503, method="GET")

    client.sleep = sleep
    status = client.wait_for_order_fill(order["id"], BTC, timeout=4, check_interval=2)
    assert status is not None and status["status"] == "open"


def test_cancel_order(venue: FakeBinanceUsdm, client: CcxtClient) -> None:
    order = client.create_limit_order(BTC, "buy", 0.01, 49000.0)
    assert order is not None
    assert client.cancel_order(order["id"], BTC) is True
    assert venue.orders[int(order["id"])]["status"] == "CANCELED"
    status = client.wait_for_order_fill(order["id"], BTC)
    assert status is not None and status["status"] == "canceled"
    assert client.cancel_order(order["id"], BTC) is False  # already gone
    assert client.cancel_order("42", BTC) is False


def test_close_position_closes_with_a_reduce_only_order(
    venue: FakeBinanceUsdm, client: CcxtClient
) -> None:
    venue.open_position(BTC, "long", 0.01, 49000.0)
    venue.open_position(ETH, "short", 0.25, 3100.0)

    assert client.close_position(BTC) is True
    assert client.close_position(ETH) is True

    assert venue.position_size(BTC) == 0.0 and venue.position_size(ETH) == 0.0
    sent = [(p["symbol"], p["side"], p["quantity"], p["reduceOnly"]) for p in order_params(venue)]
    assert sent == [("BTCUSDT", "SELL", "0.01", "true"), ("ETHUSDT", "BUY", "0.25", "true")]
    assert client.get_open_positions() == []


def test_close_position_without_a_position_is_false_and_sends_nothing(
    venue: FakeBinanceUsdm, client: CcxtClient
) -> None:
    venue.add_phantom(BTC, 50000.0)
    assert client.close_position(BTC) is False
    assert order_params(venue) == []


def test_close_position_raises_when_positions_cannot_be_read(
    venue: FakeBinanceUsdm, client: CcxtClient
) -> None:
    venue.open_position(BTC, "long", 0.01)
    client.get_open_positions()
    venue.fail_next(POSITIONS, status=503)
    with pytest.raises(ccxt.NetworkError):
        client.close_position(BTC)
    assert order_params(venue) == []
    assert venue.position_size(BTC) == 0.01


def test_close_position_is_false_when_the_close_is_rejected(
    venue: FakeBinanceUsdm, client: CcxtClient
) -> None:
    venue.open_position(BTC, "long", 0.01)
    refused = {"code": -2022, "msg": "ReduceOnly Order is rejected."}
    venue.fail_next(ORDER, status=400, method="POST", body=refused)
    assert client.close_position(BTC) is False
    assert venue.position_size(BTC) == 0.01


def test_close_position_sends_the_managers_size(
    venue: FakeBinanceUsdm, client: CcxtClient, caplog: pytest.LogCaptureFixture
) -> None:
    # contracts= is the manager's size (sized_closes): the list may lag a reduction that filled,
    # or an increase (the manager's scale-in).
    assert CcxtClient.sized_closes is True
    venue.open_position(BTC, "long", 0.03, 49000.0)
    with caplog.at_level(logging.INFO, logger="TradingBot"):
        # 0.03 - 0.01 in floating point: rounded to the 0.001 step, never truncated to 0.019.
        assert client.close_position(BTC, contracts=0.03 - 0.01) is True
    assert venue.position_size(BTC) == pytest.approx(0.01)
    assert f"Closing {BTC}: 0.02 contracts, the manager's size; the exchange lists 0.03" in (
        caplog.text
    )
    venue.open_position(SOL, "short", 7, 150.0)
    assert client.close_position(SOL, contracts=7.4) is True  # within half a lot: the list's
    venue.open_position(ETH, "short", 0.25, 3100.0)
    with caplog.at_level(logging.INFO, logger="TradingBot"):
        # More than listed: the manager's size. Had the list been right (a reduction by hand
        # between the manager's read and this one), the venue refuses a reduce-only order
        # larger than the position: nothing is placed, the manager keeps the position and its
        # next read shows the smaller size.
        assert client.close_position(ETH, contracts=0.5) is False
    assert (
        f"Closing {ETH}: 0.5 contracts, the manager's size; the exchange lists 0.25 (its list "
        "may lag an increase that filled)"
    ) in caplog.text
    assert venue.position_size(ETH) == -0.25
    assert client.close_position(ETH, contracts=0.25) is True
    sent = [(p["symbol"], p["quantity"]) for p in order_params(venue)]
    assert sent == [
        ("BTCUSDT", "0.02"),
        ("SOLUSDT", "7"),
        ("ETHUSDT", "0.5"),
        ("ETHUSDT", "0.25"),
    ]
    assert venue.position_size(SOL) == 0.0 and venue.position_size(ETH) == 0.0


STEPS = [1.0, 0.1, 0.01, 0.001, 0.0001, 1e-8, 0.5, 5.0, 0.25, 100.0]


@given(
    listed_lots=st.integers(1, 10**6),
    step=st.sampled_from(STEPS),
    manager_lots=st.integers(1, 10**6),
    noise=st.floats(-0.6, 0.6),
)
def test_close_amount_is_the_list_or_the_managers_size_in_whole_steps(
    listed_lots: int, step: float, manager_lots: int, noise: float
) -> None:
    # The list's size is whole steps (as a venue shows it); the manager's may carry float noise
    # from its own arithmetic (0.03 - 0.01) or be off the step by a fraction.
    listed = float(Decimal(listed_lots) * Decimal(repr(step)))
    contracts = abs(manager_lots + noise) * step or step
    amount = close_amount(listed, contracts, step)
    assert amount > 0
    if abs(contracts - listed) < step / 2:
        assert amount == listed
    else:
        assert abs(amount - contracts) <= step / 2 * (1 + 1e-9)
        # Written exactly as whole steps: ccxt's truncation to the precision keeps all of it.
        assert Decimal(repr(amount)) % Decimal(repr(step)) == 0, (amount, step)


def test_close_amount_without_a_step_is_the_managers_size_or_the_lists() -> None:
    assert close_amount(3.0, 2.0, None) == 2.0
    assert close_amount(3.0, 3.0 - 1e-12, None) == 3.0  # float noise: the list's
    assert close_amount(3.0, 3.0 + 1e-12, None) == 3.0
    assert close_amount(3.0, 2.0, float("nan")) == 2.0
    assert close_amount(3.0, 2.9, 0.25) == 3.0  # within half a step
    assert close_amount(0.03, 0.03 - 0.01, 0.001) == 0.02
    # A list lagging the manager's own scale-in shows less: the manager's size goes out.
    assert close_amount(0.005, 0.005 + 0.005, 0.001) == 0.01
    assert close_amount(3.0, 4.0, None) == 4.0


@pytest.mark.parametrize("bad", [0, -1.0, float("nan"), float("inf"), True, "0.01"])
def test_close_position_refuses_a_bad_size(
    venue: FakeBinanceUsdm, client: CcxtClient, bad: Any
) -> None:
    venue.open_position(BTC, "long", 0.01)
    with pytest.raises(ValueError, match=r"contracts must be None or a number > 0, got"):
        client.close_position(BTC, contracts=bad)
    assert order_params(venue) == [] and venue.position_size(BTC) == 0.01


# --------------------------------------------------------------------------- with the manager


def tracked(symbol: str = BTC) -> Position:
    """The book's entry for the venue position opened by ``manager_on_venue``."""
    return Position(symbol, "long", 50000.0, 0.01, 10, 49000.0, 52000.0)


@pytest.fixture
def on_venue(venue: FakeBinanceUsdm) -> FakeBinanceUsdm:
    venue.open_position(BTC, "long", 0.01, 50000.0, leverage=10)
    return venue


def test_manager_keeps_a_position_through_a_transient_empty_list(
    on_venue: FakeBinanceUsdm, client: CcxtClient
) -> None:
    manager = PositionManager(client, missing_confirmations=2)
    position = tracked()
    manager.positions[BTC] = position
    on_venue.answer_empty_positions(1)

    assert list(manager.update_positions()) == []
    assert manager.positions[BTC] is position
    assert len(on_venue.requests_to(POSITIONS)) == 1  # the cycle really got the empty list
    assert list(manager.update_positions()) == []
    assert manager.positions[BTC] is position


def test_default_manager_reads_again_before_acting_on_an_empty_list(
    on_venue: FakeBinanceUsdm, client: CcxtClient
) -> None:
    manager = PositionManager(client)
    position = tracked()
    manager.positions[BTC] = position
    on_venue.answer_empty_positions(1)
    list(manager.update_positions())
    # A list that would remove every tracked position is read again first: the second read
    # shows it, so nothing is removed.
    assert manager.positions[BTC] is position
    assert len(on_venue.requests_to(POSITIONS)) == 2
    assert not [e for e in manager.events if e["kind"] == "removed"]


def test_default_manager_restores_a_position_after_two_empty_lists(
    on_venue: FakeBinanceUsdm, client: CcxtClient
) -> None:
    manager = PositionManager(client)
    position = tracked()
    manager.positions[BTC] = position
    on_venue.answer_empty_positions(2)
    list(manager.update_positions())
    assert BTC not in manager.positions  # two empty answers in a row remove it...
    list(manager.update_positions())
    assert manager.positions[BTC] is position  # ...and the same position comes back
    assert [e["kind"] for e in manager.events][-2:] == ["removed", "restored"]


@pytest.mark.parametrize("status", [503, 429])
def test_manager_keeps_positions_when_the_venue_fails(
    on_venue: FakeBinanceUsdm,
    client: CcxtClient,
    caplog: pytest.LogCaptureFixture,
    status: int,
) -> None:
    caplog.set_level(logging.DEBUG, logger="TradingBot")
    manager = PositionManager(client)
    position = tracked()
    manager.positions[BTC] = position
    client.get_open_positions()
    on_venue.fail_next(POSITIONS, status=status)

    assert list(manager.update_positions()) == []

    assert manager.positions[BTC] is position
    assert any(
        r.name == "TradingBot"
        and r.levelno == logging.WARNING
        and "Unable to verify positions on exchange during update" in r.getMessage()
        for r in caplog.records
    )


def test_manager_drops_a_position_closed_on_the_venue(
    on_venue: FakeBinanceUsdm, client: CcxtClient
) -> None:
    manager = PositionManager(client)
    manager.positions[BTC] = tracked()
    assert list(manager.update_positions()) == []
    assert BTC in manager.positions

    on_venue.remove_position(BTC)  # closed by hand on the exchange
    assert list(manager.update_positions()) == []

    assert BTC not in manager.positions
    last = manager.events[-1]
    assert (last["kind"], last["symbol"], last["reason"]) == ("removed", BTC, "closed_externally")
    assert order_params(on_venue) == []


def test_manager_close_position_closes_on_the_venue(
    on_venue: FakeBinanceUsdm, client: CcxtClient
) -> None:
    manager = PositionManager(client)
    manager.positions[BTC] = tracked()
    on_venue.set_price(BTC, 50500.0)

    pnl = manager.close_position(BTC)

    assert isinstance(pnl, float)
    assert pnl == pytest.approx((0.01 - 0.0012) * 10)  # +1 % at 10x, after fees
    assert BTC not in manager.positions
    assert on_venue.position_size(BTC) == 0.0
    (sent,) = order_params(on_venue)
    assert (sent["side"], sent["type"], sent["quantity"], sent["reduceOnly"]) == (
        "SELL",
        "MARKET",
        "0.01",
        "true",
    )


def test_manager_a_close_the_venue_refused_may_be_sent_again_at_once(
    on_venue: FakeBinanceUsdm, client: CcxtClient, caplog: pytest.LogCaptureFixture
) -> None:
    # The venue refuses the stop-loss close (nothing placed). The manager asks for the order
    # before it sends anything more: the client knows it refused, so the answer is "no such
    # order" at once and the next close goes out, instead of waiting for lists to tell.
    manager = PositionManager(client)
    manager.positions[BTC] = tracked()
    refused = {"code": -4164, "msg": "Order's notional must be no smaller than 5.0"}
    on_venue.fail_next(ORDER, status=400, method="POST", body=refused)
    assert manager.close_position(BTC, "stop_loss") is None
    assert BTC in manager.positions and on_venue.position_size(BTC) == 0.01
    with caplog.at_level(logging.WARNING, logger="TradingBot"):
        assert isinstance(manager.close_position(BTC, "stop_loss"), float)
    assert on_venue.position_size(BTC) == 0.0 and BTC not in manager.positions
    assert len(order_params(on_venue)) == 2
    assert "outcome_unknown" not in [e["kind"] for e in manager.events]


def test_manager_close_position_of_a_position_gone_from_the_venue_sends_nothing(
    on_venue: FakeBinanceUsdm, client: CcxtClient
) -> None:
    manager = PositionManager(client)
    manager.positions[BTC] = tracked()
    on_venue.remove_position(BTC)
    assert manager.close_position(BTC) is None
    assert BTC not in manager.positions
    assert order_params(on_venue) == []


def test_manager_sync_imports_the_venue_positions(
    on_venue: FakeBinanceUsdm, client: CcxtClient
) -> None:
    on_venue.add_phantom(ETH, 3000.0)
    manager = PositionManager(client)
    assert manager.sync_existing_positions() == 1
    position = manager.positions[BTC]
    assert (position.side, position.amount, position.entry_price) == ("long", 0.01, 50000.0)
    assert list(manager.positions) == [BTC]
    assert position.leverage == 10  # v3 position lists carry no leverage: the manager's default


def test_manager_sync_gets_the_leverage_from_the_v2_position_list(
    on_venue: FakeBinanceUsdm, client: CcxtClient
) -> None:
    on_venue.leverage["BTCUSDT"] = 5
    client.exchange.options["fetchPositionsRisk"] = {"useV2": True}
    manager = PositionManager(client)
    assert manager.sync_existing_positions() == 1
    assert manager.positions[BTC].leverage == 5
    assert on_venue.requests_to("/fapi/v2/positionRisk")


def test_the_adapter_imports_without_ccxt() -> None:
    code = (
        "import sys; sys.modules['ccxt'] = None\n"  # makes any `import ccxt` fail
        "from position_manager_rs.ccxt_client import CcxtClient\n"
        "assert CcxtClient(object()).get_market_limits.__doc__\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=15)


def test_an_order_call_answering_nothing_is_an_unknown_outcome() -> None:
    class Exchange:
        def create_order(self, *args: Any) -> None:
            return None

    with pytest.raises(TypeError, match="not an order"):
        CcxtClient(Exchange()).create_market_order(BTC, "buy", 0.01)
