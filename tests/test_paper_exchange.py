"""The paper exchange (position_manager_rs.paper): a deterministic simulated futures venue.

Covers determinism, the client return shapes, order handling (market, limit, post-only, partial
fills, cancel, reduce-only, netting, size rules), liquidation, the scripted and random venue
events, fault injection, and the paper exchange as the client of a real PositionManager.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Mapping
from typing import Any

import pytest

from position_manager_rs import Position, PositionManager
from position_manager_rs.paper import (
    CLIENT_METHODS,
    DEFAULT_START_TIME,
    DEFAULT_SYMBOLS,
    EXTERNAL_EVENT_KINDS,
    PaperExchange,
    PaperExchangeError,
)

BTC = "BTC/USDT:USDT"
ETH = "ETH/USDT:USDT"
XRP = "XRP/USDT:USDT"
SOL = "SOL/USDT:USDT"

POSITION_KEYS = {
    "symbol",
    "side",
    "contracts",
    "contractSize",
    "entryPrice",
    "leverage",
    "markPrice",
    "liquidationPrice",
    "unrealizedPnl",
    "notional",
    "timestamp",
    "info",
}
ORDER_KEYS = {
    "id",
    "symbol",
    "type",
    "side",
    "amount",
    "filled",
    "remaining",
    "average",
    "price",
    "cost",
    "status",
    "reduceOnly",
    "timestamp",
}
STATUS_KEYS = {
    "id",
    "status",
    "filled",
    "remaining",
    "amount",
    "price",
    "average",
    "cost",
    "timestamp",
}


# A hand-made fixture (the package's own are in position_manager_rs.pytest_plugin).
@pytest.fixture
def paper() -> PaperExchange:
    return PaperExchange(seed=1)


def test_paper_fixture_example(paper: PaperExchange) -> None:
    manager = PositionManager(paper, 0.02)
    paper.create_market_order("BTC/USDT:USDT", "buy", 10, 10)
    assert manager.sync_existing_positions() == 1

    paper.close_externally("BTC/USDT:USDT")  # closed by hand on the exchange
    list(manager.update_positions())

    assert "BTC/USDT:USDT" not in manager.positions
    assert manager.events[-1]["reason"] == "closed_externally"


def kinds(paper: PaperExchange) -> list[str]:
    return [e["kind"] for e in paper.history]


def manager_for(paper: PaperExchange, **options: Any) -> PositionManager:
    options.setdefault("ticker_retry_delays", (0.0, 0.0))
    return PositionManager(paper, 0.02, **options)


# ---------------------------------------------------------------------------- determinism
def _session(seed: int) -> tuple[Any, ...]:
    p = PaperExchange(seed=seed, partial_fill_fraction=0.5)
    orders = [p.create_market_order(BTC, "buy", 10, 10)]
    p.advance(30)
    price = p.price(ETH)
    orders.append(p.create_limit_order(ETH, "sell", 4, price * 1.002, 5))
    orders.append(p.create_market_order(XRP, "sell", 7, 3))
    prices = []
    for _ in range(90):
        p.step()
        prices.append(tuple(p.price(s) for s in p.symbols))
    return (
        prices,
        [p.get_ohlcv(s, limit=10) for s in p.symbols],
        orders,
        p.get_open_positions(),
        p.history,
        p.time,
    )


def test_same_seed_gives_same_prices_candles_orders_and_history() -> None:
    a, b = _session(5), _session(5)
    assert a == b
    assert a[0][-1] != a[0][0]  # the market moved


def test_different_seeds_give_different_prices() -> None:
    a, b = PaperExchange(seed=1), PaperExchange(seed=2)
    a.advance(10)
    b.advance(10)
    assert [a.price(s) for s in a.symbols] != [b.price(s) for s in b.symbols]
    assert a.get_ohlcv(BTC, limit=5)[:-1] != b.get_ohlcv(BTC, limit=5)[:-1]


def test_prices_do_not_depend_on_orders_or_event_draws() -> None:
    quiet = PaperExchange(seed=3)
    busy = PaperExchange(seed=3, slippage=0.001, event_rates={"exception": 0.5})
    busy.create_market_order(BTC, "buy", 5, 10)
    quiet.advance(20)
    busy.advance(20)
    assert [quiet.price(s) for s in quiet.symbols] == [busy.price(s) for s in busy.symbols]


def test_defaults_and_simulated_time(paper: PaperExchange) -> None:
    assert paper.symbols == DEFAULT_SYMBOLS
    assert paper.time == DEFAULT_START_TIME
    assert paper.datetime.isoformat() == "2026-01-01T00:00:00+00:00"
    assert paper.contract_size(BTC) == 0.001
    assert paper.contract_size(XRP) == 10.0
    assert paper.step() == []  # no events by default
    assert paper.time == DEFAULT_START_TIME + 60.0
    paper.advance(4)
    assert paper.time == DEFAULT_START_TIME + 300.0
    with pytest.raises(ValueError):
        paper.advance(-1)


def test_custom_symbols_prices_and_contract_sizes() -> None:
    p = PaperExchange(
        symbols=["FOO/USDT:USDT"], prices={"BAR/USDT:USDT": 2.5}, contract_size={"BAR/USDT:USDT": 5}
    )
    assert p.symbols == ("FOO/USDT:USDT", "BAR/USDT:USDT")
    assert p.price("FOO/USDT:USDT") == 100.0
    assert p.price("BAR/USDT:USDT") == 2.5
    assert p.contract_size("BAR/USDT:USDT") == 5.0
    assert PaperExchange(contract_size=2.0).contract_size(BTC) == 2.0


@pytest.mark.parametrize(
    "options",
    [
        {"tick_seconds": 0},
        {"volatility": -0.1},
        {"amount_step": 0},
        {"min_amount": 0},
        {"event_rates": {"meteor": 0.1}},
        {"event_rates": {"manual_close": 1.5}},
        {"partial_fill_fraction": 0.0},
        {"symbols": []},
        {"prices": {BTC: -1.0}},
    ],
)
def test_invalid_constructor_options_raise(options: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        PaperExchange(**options)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"volatility": 10.0}, "volatility must be in [0, 1), got 10.0"),
        ({"volatility": 1.0}, "volatility must be in [0, 1), got 1.0"),
        ({"volatility": 1e308}, "volatility must be in [0, 1), got 1e+308"),
        (
            {"volatility": 0.9, "tick_seconds": 0.001},
            "volatility must be lower for tick_seconds=0.001 and history_candles=200 (the "
            "simulated history's prices leave the range of a float), got 0.9",
        ),
    ],
)
def test_a_volatility_the_price_walk_cannot_take_is_refused_by_name(
    options: dict[str, Any], message: str
) -> None:
    # Before: a bare ZeroDivisionError (the history's walk underflowed to 0 and was divided by),
    # or an exchange whose candles were NaN.
    with pytest.raises(ValueError) as info:
        PaperExchange(**options)
    assert str(info.value) == message


# ---------------------------------------------------------------------------- market data
def test_ticker_shape(paper: PaperExchange) -> None:
    t = paper.get_ticker(BTC)
    assert t is not None
    assert set(t) == {"symbol", "last", "bid", "ask", "timestamp", "datetime"}
    assert t["symbol"] == BTC and t["last"] == 90000.0
    assert t["bid"] < t["last"] < t["ask"]
    assert t["timestamp"] == int(DEFAULT_START_TIME * 1000)
    assert t["datetime"] == "2026-01-01T00:00:00.000Z"
    assert paper.get_ticker("NOPE/USDT:USDT") is None


def test_candle_history_before_the_start(paper: PaperExchange) -> None:
    candles = paper.get_ohlcv(BTC)  # timeframe='1h', limit=100
    assert len(candles) == 100
    start_ms = int(DEFAULT_START_TIME * 1000)
    assert [c[0] for c in candles] == [start_ms - (99 - i) * 3_600_000 for i in range(100)]
    for _ts, o, h, low, c, v in candles:
        assert low <= min(o, c) <= max(o, c) <= h and v >= 0
    assert candles[-2][4] == 90000.0  # the last closed candle closes at the start price
    assert candles[-1][1:5] == [90000.0] * 4  # the forming candle
    assert len(paper.get_ohlcv(BTC, limit=1000)) == 201  # 200 closed + the forming one
    assert paper.get_ohlcv(BTC, limit=1) == [candles[-1]]
    assert paper.get_ohlcv(BTC, limit=0) == []
    assert paper.get_ohlcv("NOPE/USDT:USDT") == []
    assert len(PaperExchange(history_candles=60).get_ohlcv(ETH, "1h", 500)) == 61
    with pytest.raises(ValueError):
        paper.get_ohlcv(BTC, timeframe="5m")


def test_candles_are_built_from_ticks(paper: PaperExchange) -> None:
    start = paper.price(ETH)
    ticks = []
    for _ in range(61):  # 00:01 ... 01:01
        paper.step()
        ticks.append(paper.price(ETH))
    candles = paper.get_ohlcv(ETH, limit=3)
    hour0, hour1 = candles[-2], candles[-1]
    in_hour0 = [start, *ticks[:59]]  # the ticks at 00:00 .. 00:59
    assert hour0[0] == int(DEFAULT_START_TIME * 1000)
    assert hour0[1:5] == [start, max(in_hour0), min(in_hour0), ticks[58]]
    assert hour0[5] > 0
    assert hour1[0] == hour0[0] + 3_600_000
    assert hour1[1] == ticks[58]  # opens at the previous close
    assert hour1[4] == ticks[60]
    assert hour1[2] == max(ticks[58:]) and hour1[3] == min(ticks[58:])


def test_market_limits(paper: PaperExchange) -> None:
    assert paper.get_market_limits(BTC) == {
        "amount": {"min": 1.0, "max": 1_000_000.0, "step": 1.0},
        "cost": {"min": None, "max": None},
    }
    assert paper.get_market_limits("NOPE/USDT:USDT") is None


# ---------------------------------------------------------------------------- market orders
def test_market_order_and_position_shapes(paper: PaperExchange) -> None:
    order = paper.create_market_order(BTC, "buy", 10, 10)
    assert order is not None
    assert ORDER_KEYS <= set(order)
    assert order["type"] == "market" and order["status"] == "closed"
    assert order["side"] == "buy" and order["reduceOnly"] is False
    assert order["amount"] == order["filled"] == 10.0 and order["remaining"] == 0.0
    assert order["average"] == order["price"] == 90000.0
    assert order["cost"] == pytest.approx(10 * 0.001 * 90000.0)
    assert order["id"] == "paper-1"

    [pos] = paper.get_open_positions()
    assert POSITION_KEYS <= set(pos)
    assert pos["symbol"] == BTC and pos["side"] == "long"
    assert pos["contracts"] == 10.0 and pos["contractSize"] == 0.001
    assert pos["entryPrice"] == 90000.0
    assert isinstance(pos["leverage"], float) and pos["leverage"] == 10.0
    assert pos["info"]["realLeverage"] == 10.0
    assert pos["markPrice"] == 90000.0 and pos["unrealizedPnl"] == 0.0
    assert pos["notional"] == pytest.approx(900.0)
    assert pos["liquidationPrice"] == pytest.approx(90000.0 * (1 - 0.1 + 0.005))

    paper.set_price(BTC, 91000.0)
    [pos] = paper.get_open_positions()
    assert pos["unrealizedPnl"] == pytest.approx((91000.0 - 90000.0) * 10 * 0.001)
    assert pos["notional"] == pytest.approx(910.0)


def test_short_position_shape(paper: PaperExchange) -> None:
    assert paper.create_market_order(XRP, "sell", 50, 4) is not None
    pos = paper.position(XRP)
    assert pos is not None
    assert pos["side"] == "short" and pos["contracts"] == 50.0
    assert pos["info"]["currentQty"] == -50.0
    assert pos["liquidationPrice"] == pytest.approx(1.9 * (1 + 0.25 - 0.005))
    paper.set_price(XRP, 1.8)
    assert paper.position(XRP)["unrealizedPnl"] == pytest.approx(0.1 * 50 * 10)  # type: ignore[index]


def test_netting_adds_reduces_closes_and_flips() -> None:
    p = PaperExchange(volatility=0.0)
    p.create_market_order(ETH, "buy", 10, 10)
    p.set_price(ETH, 3100.0)
    p.create_market_order(ETH, "buy", 30, 5)  # same side adds: weighted average entry
    pos = p.position(ETH)
    assert pos is not None
    assert pos["contracts"] == 40.0
    assert pos["entryPrice"] == pytest.approx((10 * 3000.0 + 30 * 3100.0) / 40)
    assert pos["leverage"] == 5.0

    p.set_price(ETH, 3200.0)
    order = p.create_market_order(ETH, "sell", 15, 5)  # reduces
    assert order is not None
    avg = (10 * 3000.0 + 30 * 3100.0) / 40
    assert order["info"]["realizedPnl"] == pytest.approx((3200.0 - avg) * 15 * 0.01)
    assert p.position(ETH)["contracts"] == 25.0  # type: ignore[index]

    p.create_market_order(ETH, "sell", 30, 7)  # flips: closes 25, opens a 5-lot short
    pos = p.position(ETH)
    assert pos is not None
    assert (pos["side"], pos["contracts"], pos["entryPrice"], pos["leverage"]) == (
        "short",
        5.0,
        3200.0,
        7.0,
    )
    p.create_market_order(ETH, "buy", 5, 7)  # exactly closes
    assert p.position(ETH) is None and p.get_open_positions() == []
    assert p.realized_pnl == pytest.approx((3200.0 - avg) * 40 * 0.01)


def test_reduce_only_never_flips_and_needs_a_position_on_the_other_side(
    paper: PaperExchange,
) -> None:
    assert paper.create_market_order(BTC, "sell", 5, 10, reduce_only=True) is None  # no position
    paper.create_market_order(BTC, "buy", 5, 10)
    assert paper.create_market_order(BTC, "buy", 5, 10, reduce_only=True) is None  # same side
    order = paper.create_market_order(BTC, "sell", 2, 10, reduce_only=True, is_critical=True)
    assert order is not None and order["reduceOnly"] is True
    assert paper.position(BTC)["contracts"] == 3.0  # type: ignore[index]
    order = paper.create_market_order(BTC, "sell", 50, 10, reduce_only=True)
    assert order is not None
    assert order["filled"] == order["amount"] == 3.0  # capped at the position
    assert paper.position(BTC) is None  # closed, not flipped to a short
    rejected = [e for e in paper.history if e["kind"] == "order_rejected"]
    assert len(rejected) == 2
    assert all("reduce-only" in e["details"]["reason"] for e in rejected)


@pytest.mark.parametrize(
    ("symbol", "side", "amount", "leverage"),
    [
        ("NOPE/USDT:USDT", "buy", 1, 10),  # unknown symbol
        (BTC, "long", 1, 10),  # not a ccxt side
        (BTC, "buy", 0.5, 10),  # below min_amount
        (BTC, "buy", 1.5, 10),  # not a multiple of amount_step
        (BTC, "buy", 0, 10),
        (BTC, "buy", -3, 10),
        (BTC, "buy", "3", 10),
        (BTC, "buy", float("nan"), 10),
        (BTC, "buy", 2_000_000, 10),  # above max_amount
        (BTC, "buy", 1, 0),  # leverage out of range
        (BTC, "buy", 1, 200),
    ],
)
def test_invalid_orders_are_rejected(
    paper: PaperExchange, symbol: str, side: str, amount: Any, leverage: Any
) -> None:
    assert paper.create_market_order(symbol, side, amount, leverage) is None
    assert paper.create_limit_order(symbol, side, amount, 80000.0, leverage) is None
    assert paper.get_open_positions() == [] and paper.open_orders() == []
    assert kinds(paper) == ["order_rejected", "order_rejected"]


def test_amount_rules_follow_min_amount_and_step() -> None:
    p = PaperExchange(min_amount=0.01, amount_step=0.01)
    assert p.create_market_order(BTC, "buy", 0.05, 10) is not None
    assert p.create_market_order(BTC, "buy", 0.005, 10) is None
    assert p.create_market_order(BTC, "buy", 0.015, 10) is None
    assert p.create_market_order(BTC, "buy", 0.07, 10) is not None
    assert p.position(BTC)["contracts"] == pytest.approx(0.12)  # type: ignore[index]
    assert p.get_market_limits(BTC)["amount"] == {"min": 0.01, "max": 1e6, "step": 0.01}  # type: ignore[index]


def test_slippage_moves_fills_against_the_taker() -> None:
    p = PaperExchange(seed=4, slippage=0.01, volatility=0.0)
    buy = p.create_market_order(BTC, "buy", 1, 10)
    sell = p.create_market_order(ETH, "sell", 1, 10)
    assert buy is not None and sell is not None
    assert 90000.0 < buy["average"] <= 90000.0 * 1.01
    assert 3000.0 * 0.99 <= sell["average"] < 3000.0
    again = PaperExchange(seed=4, slippage=0.01, volatility=0.0)
    assert again.create_market_order(BTC, "buy", 1, 10)["average"] == buy["average"]  # type: ignore[index]


# ---------------------------------------------------------------------------- limit orders
def test_limit_order_rests_then_fills_when_the_price_crosses() -> None:
    p = PaperExchange(volatility=0.0)
    order = p.create_limit_order(BTC, "buy", 4, 89000.0, 10, post_only=True)
    assert order is not None
    assert ORDER_KEYS <= set(order)
    assert (order["type"], order["status"], order["filled"], order["remaining"]) == (
        "limit",
        "open",
        0.0,
        4.0,
    )
    assert order["price"] == 89000.0 and order["average"] is None
    status = p.wait_for_order_fill(order["id"], BTC, timeout=10, check_interval=2)
    assert status is not None and set(status) == STATUS_KEYS and status["status"] == "open"
    assert p.time == DEFAULT_START_TIME  # wait_ticks=0: time did not move
    assert [o["id"] for o in p.open_orders(BTC)] == [order["id"]]

    p.set_price(BTC, 89500.0)  # not crossed yet
    assert p.position(BTC) is None
    p.set_price(BTC, 88900.0)
    status = p.wait_for_order_fill(order["id"], BTC)
    assert status is not None
    assert (status["status"], status["filled"], status["remaining"], status["average"]) == (
        "closed",
        4.0,
        0.0,
        89000.0,  # a maker fill at the limit price
    )
    assert status["cost"] == pytest.approx(4 * 0.001 * 89000.0)
    pos = p.position(BTC)
    assert pos is not None and pos["entryPrice"] == 89000.0 and pos["contracts"] == 4.0
    assert p.open_orders() == []


def test_limit_sell_fills_during_step() -> None:
    p = PaperExchange(seed=11)
    price = p.price(ETH)
    order = p.create_limit_order(ETH, "sell", 3, price * 1.001, 10)
    assert order is not None and order["status"] == "open"
    for _ in range(500):
        p.step()
        if p.position(ETH):
            break
    pos = p.position(ETH)
    assert pos is not None, "the price never reached the limit in 500 ticks"
    assert pos["side"] == "short" and pos["entryPrice"] == order["price"]
    fill = [e for e in p.history if e["kind"] == "fill"][-1]
    assert fill["details"]["id"] == order["id"]


def test_post_only_that_would_cross_is_rejected_and_a_crossing_limit_fills_at_once() -> None:
    p = PaperExchange(volatility=0.0)
    assert p.create_limit_order(BTC, "buy", 1, 90500.0, 10, post_only=True) is None
    assert p.create_limit_order(BTC, "sell", 1, 89500.0, 10, post_only=True) is None
    assert "post-only" in p.history[-1]["details"]["reason"]
    order = p.create_limit_order(BTC, "buy", 2, 90500.0, 10)
    assert order is not None
    assert order["status"] == "closed" and order["filled"] == 2.0
    assert order["average"] == 90000.0  # taker fill at the better current price
    assert p.create_limit_order(BTC, "buy", 1, -5.0, 10) is None


def test_partial_fills() -> None:
    p = PaperExchange(volatility=0.0, partial_fill_fraction=0.3)
    order = p.create_limit_order(SOL, "buy", 10, 120.0, 5)
    assert order is not None
    p.set_price(SOL, 119.0)
    status = p.wait_for_order_fill(order["id"], SOL)
    assert status is not None
    assert (status["status"], status["filled"], status["remaining"]) == ("open", 3.0, 7.0)
    assert p.position(SOL)["contracts"] == 3.0  # type: ignore[index]
    filled = []
    for _ in range(3):
        p.step()
        filled.append(p.wait_for_order_fill(order["id"], SOL)["filled"])  # type: ignore[index]
    assert filled == [6.0, 9.0, 10.0]
    assert p.wait_for_order_fill(order["id"], SOL)["status"] == "closed"  # type: ignore[index]
    assert p.position(SOL)["contracts"] == 10.0  # type: ignore[index]


def test_cancel_order() -> None:
    p = PaperExchange(volatility=0.0, partial_fill_fraction=0.5)
    order = p.create_limit_order(BTC, "buy", 4, 89000.0, 10)
    assert order is not None
    assert p.cancel_order(order["id"], ETH) is False  # another symbol
    assert p.cancel_order(order["id"], BTC) is True
    assert p.cancel_order(order["id"], BTC) is False  # already cancelled
    assert p.wait_for_order_fill(order["id"], BTC)["status"] == "canceled"  # type: ignore[index]
    p.set_price(BTC, 88000.0)
    assert p.position(BTC) is None  # a cancelled order never fills
    assert p.cancel_order("paper-999", BTC) is False
    assert p.wait_for_order_fill("paper-999", BTC) is None
    assert p.wait_for_order_fill(order["id"], ETH) is None

    partly = p.create_limit_order(BTC, "buy", 4, 89000.0, 10)
    assert partly is not None and partly["status"] == "closed"  # crossed at once: 88000 < 89000
    assert p.cancel_order(partly["id"], BTC) is False  # filled orders cannot be cancelled
    resting = p.create_limit_order(BTC, "buy", 4, 87000.0, 10)
    assert resting is not None
    p.set_price(BTC, 86000.0)
    assert p.wait_for_order_fill(resting["id"], BTC)["filled"] == 2.0  # type: ignore[index]
    assert p.cancel_order(resting["id"], BTC) is True  # a partly filled order
    status = p.wait_for_order_fill(resting["id"], BTC)
    assert status is not None and (status["status"], status["filled"]) == ("canceled", 2.0)


def test_wait_ticks_lets_wait_for_order_fill_advance_time() -> None:
    p = PaperExchange(seed=2, wait_ticks=5)
    order = p.create_limit_order(BTC, "buy", 1, 50000.0, 10)  # far away: will not fill
    assert order is not None
    status = p.wait_for_order_fill(order["id"], BTC)
    assert status is not None and status["status"] == "open"
    assert p.time == DEFAULT_START_TIME + 5 * 60.0
    market = p.create_market_order(BTC, "buy", 1, 10)
    assert market is not None
    p.wait_for_order_fill(market["id"], BTC)
    assert p.time == DEFAULT_START_TIME + 5 * 60.0  # a filled order does not move time


def test_reduce_only_limit_is_cancelled_when_the_position_goes() -> None:
    p = PaperExchange(volatility=0.0)
    assert p.create_limit_order(BTC, "sell", 2, 95000.0, 10, reduce_only=True) is None
    p.create_market_order(BTC, "buy", 2, 10)
    order = p.create_limit_order(BTC, "sell", 5, 95000.0, 10, reduce_only=True)
    assert order is not None and order["status"] == "open"
    assert p.close_externally(BTC)
    assert p.wait_for_order_fill(order["id"], BTC)["status"] == "canceled"  # type: ignore[index]
    p.set_price(BTC, 96000.0)
    assert p.position(BTC) is None  # never opened a short


def test_reduce_only_limit_is_capped_at_the_position_when_it_fills() -> None:
    p = PaperExchange(volatility=0.0)
    p.create_market_order(BTC, "buy", 2, 10)
    order = p.create_limit_order(BTC, "sell", 5, 95000.0, 10, reduce_only=True)
    assert order is not None and order["status"] == "open"
    p.set_price(BTC, 96000.0)
    assert p.position(BTC) is None  # closed, never flipped to a short
    status = p.wait_for_order_fill(order["id"], BTC)
    assert status is not None  # capped at what it could reduce, as a crossing one is
    assert (status["status"], status["filled"], status["remaining"]) == ("closed", 2.0, 0.0)
    assert status["amount"] == 2.0
    assert p.events(["order_canceled"]) == []
    assert p.realized_pnl == pytest.approx(5000.0 * 2 * 0.001)

    p.create_market_order(BTC, "sell", 3, 10)  # a 3-lot short at 96000
    crossing = p.create_limit_order(BTC, "buy", 10, 97000.0, 10, reduce_only=True)
    assert crossing is not None
    assert (crossing["status"], crossing["filled"], crossing["amount"]) == ("closed", 3.0, 3.0)
    assert p.position(BTC) is None


# ---------------------------------------------------------------------------- close_position
def test_close_position(paper: PaperExchange) -> None:
    assert paper.close_position(BTC) is False  # nothing to close: no pretend success
    assert [e for e in paper.history if e["kind"] == "fill"] == []
    paper.create_market_order(BTC, "sell", 3, 10)
    paper.advance(3)
    assert paper.close_position(BTC) is True
    assert paper.position(BTC) is None
    fill = paper.history[-1]
    assert fill["kind"] == "fill"
    assert fill["details"]["reduceOnly"] is True and fill["details"]["side"] == "buy"
    assert fill["details"]["contracts"] == 3.0
    assert paper.close_position(BTC) is False
    assert paper.close_position("NOPE/USDT:USDT") is False


# ---------------------------------------------------------------------------- liquidation
@pytest.mark.parametrize(("side", "leverage"), [("buy", 10), ("sell", 4)])
def test_liquidation_when_the_price_crosses(side: str, leverage: int) -> None:
    p = PaperExchange(volatility=0.0)
    p.create_market_order(ETH, side, 20, leverage)
    pos = p.position(ETH)
    assert pos is not None
    liq = pos["liquidationPrice"]
    long = side == "buy"
    expected = 3000.0 * ((1 - 1 / leverage + 0.005) if long else (1 + 1 / leverage - 0.005))
    assert liq == pytest.approx(expected)
    near = liq * (1.001 if long else 0.999)
    assert p.set_price(ETH, near)[-1]["kind"] == "price_jump"
    assert p.position(ETH) is not None  # not crossed yet
    beyond = liq * (0.99 if long else 1.01)
    events = p.set_price(ETH, beyond)
    assert [e["kind"] for e in events] == ["price_jump", "liquidation"]
    details = events[-1]["details"]
    assert details["liquidationPrice"] == pytest.approx(liq)
    assert details["contracts"] == 20.0 and details["side"] == ("long" if long else "short")
    assert details["realizedPnl"] == pytest.approx((liq - 3000.0) * 20 * 0.01 * (1 if long else -1))
    assert p.position(ETH) is None and p.get_open_positions() == []


def test_liquidation_during_steps() -> None:
    p = PaperExchange(seed=9, volatility=0.01)
    p.create_market_order(BTC, "buy", 5, 125)
    p.create_market_order(ETH, "sell", 5, 125)
    liquidations = []
    for _ in range(50):
        liquidations += [e for e in p.step() if e["kind"] == "liquidation"]
        if len(liquidations) == 2:
            break
    assert liquidations, "no liquidation at 125x within 50 volatile ticks"
    for e in liquidations:
        d = e["details"]
        if d["side"] == "long":
            assert d["price"] <= d["liquidationPrice"]
        else:
            assert d["price"] >= d["liquidationPrice"]
        assert p.position(e["symbol"]) is None


# ---------------------------------------------------------------------------- scripted events
def test_close_externally(paper: PaperExchange) -> None:
    assert paper.close_externally(BTC) is False
    paper.create_market_order(BTC, "buy", 4, 10)
    paper.set_price(BTC, 90500.0)
    assert paper.close_externally(BTC) is True
    assert paper.position(BTC) is None
    event = paper.history[-1]
    assert event["kind"] == "manual_close" and event["symbol"] == BTC
    assert event["details"]["realizedPnl"] == pytest.approx(500.0 * 4 * 0.001)
    assert event["time"] == paper.time and set(event) >= {"time", "symbol", "kind", "details"}
    with pytest.raises(ValueError):
        paper.close_externally("NOPE/USDT:USDT")


def test_reduce_externally(paper: PaperExchange) -> None:
    assert paper.reduce_externally(XRP, 5) is False
    paper.create_market_order(XRP, "sell", 50, 10)
    assert paper.reduce_externally(XRP, 20) is True
    assert paper.position(XRP)["contracts"] == 30.0  # type: ignore[index]
    event = paper.history[-1]
    assert event["kind"] == "partial_reduction"
    assert (event["details"]["contracts"], event["details"]["remaining"]) == (20.0, 30.0)
    with pytest.raises(ValueError):
        paper.reduce_externally(XRP, 2.5)
    with pytest.raises(ValueError):
        paper.reduce_externally(XRP, 0)
    assert paper.reduce_externally(XRP, 100) is True  # capped: the rest goes
    assert paper.position(XRP) is None


def test_set_price_validation(paper: PaperExchange) -> None:
    with pytest.raises(ValueError):
        paper.set_price("NOPE/USDT:USDT", 1.0)
    with pytest.raises(ValueError):
        paper.set_price(BTC, 0.0)
    paper.set_price(BTC, 95000.0)
    assert paper.price(BTC) == 95000.0
    assert paper.get_ticker(BTC)["last"] == 95000.0  # type: ignore[index]
    assert paper.get_ohlcv(BTC, limit=1)[0][2] == 95000.0  # the forming candle's high
    assert paper.time == DEFAULT_START_TIME


def test_fail_next(paper: PaperExchange) -> None:
    paper.fail_next("get_open_positions", times=2)
    for _ in range(2):
        with pytest.raises(PaperExchangeError) as info:
            paper.get_open_positions()
        assert isinstance(info.value, ConnectionError)
    assert paper.get_open_positions() == []
    assert kinds(paper) == ["exception", "exception"]
    assert paper.history[0]["details"]["method"] == "get_open_positions"

    paper.fail_next("get_ticker", error=TimeoutError)
    with pytest.raises(TimeoutError):
        paper.get_ticker(BTC)
    boom = RuntimeError("boom")
    paper.fail_next("create_market_order", error=boom)
    with pytest.raises(RuntimeError) as caught:
        paper.create_market_order(BTC, "buy", 1, 10)
    assert caught.value is boom
    assert paper.position(BTC) is None  # the failed call did nothing
    assert paper.create_market_order(BTC, "buy", 1, 10) is not None

    for method in CLIENT_METHODS:
        paper.fail_next(method)
    with pytest.raises(PaperExchangeError):
        paper.close_position(BTC)
    assert paper.position(BTC) is not None  # the failed close did nothing
    with pytest.raises(ValueError):
        paper.fail_next("fetch_balance")


def test_calls_are_recorded(paper: PaperExchange) -> None:
    paper.get_ticker(BTC)
    paper.get_ohlcv(BTC, timeframe="1h", limit=5)
    paper.create_market_order(BTC, "buy", 1, 10, reduce_only=False, is_critical=True)
    paper.position(BTC)  # inspection helpers are not client calls
    assert [c[0] for c in paper.calls] == ["get_ticker", "get_ohlcv", "create_market_order"]
    assert paper.calls_of("get_ohlcv") == [((BTC,), {"timeframe": "1h", "limit": 5})]
    assert paper.calls_of("create_market_order") == [
        ((BTC, "buy", 1, 10), {"reduce_only": False, "is_critical": True})
    ]


def test_answer_empty_next(paper: PaperExchange) -> None:
    paper.create_market_order(BTC, "buy", 1, 10)
    paper.answer_empty_next(2)
    assert paper.get_open_positions() == []
    assert paper.get_open_positions() == []
    assert [p["symbol"] for p in paper.get_open_positions()] == [BTC]
    assert paper.position(BTC) is not None  # it never went away
    empties = paper.events(["transient_empty"])
    assert len(empties) == 2 and empties[0]["details"]["hidden"] == [BTC]
    paper.answer_empty_next()
    paper.fail_next("get_open_positions")
    with pytest.raises(PaperExchangeError):  # a failure comes first
        paper.get_open_positions()
    assert paper.get_open_positions() == []


# ---------------------------------------------------------------------------- random events
def test_random_manual_close_and_partial_reduction() -> None:
    p = PaperExchange(seed=5, event_rates={"partial_reduction": 1.0})
    p.create_market_order(BTC, "buy", 10, 10)
    events = p.step()
    assert [e["kind"] for e in events] == ["partial_reduction"]
    assert events[0]["details"]["random"] is True
    assert 1.0 <= events[0]["details"]["contracts"] <= 9.0
    assert p.position(BTC)["contracts"] == 10.0 - events[0]["details"]["contracts"]  # type: ignore[index]

    p = PaperExchange(seed=5, event_rates={"manual_close": 1.0})
    p.create_market_order(BTC, "buy", 10, 10)
    p.create_market_order(ETH, "sell", 10, 10)
    assert [e["kind"] for e in p.step()] == ["manual_close"]
    assert [e["kind"] for e in p.step()] == ["manual_close"]
    assert p.get_open_positions() == []
    assert p.step() == []  # nothing left to close


def test_random_transient_empty_and_exception() -> None:
    p = PaperExchange(seed=5, event_rates={"transient_empty": 1.0})
    p.create_market_order(BTC, "buy", 10, 10)
    p.step()
    assert p.get_open_positions() == []
    p = PaperExchange(seed=5, event_rates={"exception": 1.0})
    p.step()
    failing = 0
    for call in (
        p.get_open_positions,
        lambda: p.get_tickers([BTC]),
        lambda: p.get_ohlcv(BTC),
        lambda: p.close_position(BTC),
    ):
        try:
            call()
        except PaperExchangeError:
            failing += 1
    assert failing == 1
    assert kinds(p) == ["exception"]


def test_random_events_are_seeded() -> None:
    rates = {"manual_close": 0.05, "partial_reduction": 0.05, "transient_empty": 0.1}

    def run(seed: int) -> list[tuple[float, Any, str]]:
        p = PaperExchange(seed=seed, event_rates=rates)
        for s in p.symbols:
            p.create_market_order(s, "buy", 20, 5)
        p.advance(60)
        for _ in range(5):
            p.get_open_positions()
        return [(e["time"], e["symbol"], e["kind"]) for e in p.history if e["kind"] != "fill"]

    first = run(8)
    assert first == run(8)
    assert first != run(9)
    assert {k for _, _, k in first} <= EXTERNAL_EVENT_KINDS
    assert len(first) >= 3


def test_concurrent_clients_do_not_corrupt_state() -> None:
    p = PaperExchange(seed=1)
    errors: list[BaseException] = []

    def trader(symbol: str) -> None:
        try:
            for i in range(100):
                # 1x: the concurrent random walk can never liquidate these (a liquidation
                # would break the netting this test counts on).
                p.create_market_order(symbol, "buy" if i % 2 == 0 else "sell", 1, 1)
                p.get_open_positions()
                p.get_ticker(symbol)
        except BaseException as e:  # reported in the test thread
            errors.append(e)

    threads = [threading.Thread(target=trader, args=(s,), daemon=True) for s in p.symbols]
    threads.append(threading.Thread(target=lambda: p.advance(200), daemon=True))
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
        assert not t.is_alive(), "a thread did not finish within 20 s"
    assert errors == []
    assert p.get_open_positions() == []  # 100 alternating fills per symbol net to flat
    assert len([e for e in p.history if e["kind"] == "fill"]) == 400


# ------------------------------------------------------------------------ with a PositionManager
def _track(manager: PositionManager, paper: PaperExchange, symbol: str) -> Position:
    """Puts a Position for the venue's position of ``symbol`` into the manager's book."""
    venue = paper.position(symbol)
    assert venue is not None
    entry = venue["entryPrice"]
    long = venue["side"] == "long"
    position = Position(
        symbol,
        venue["side"],
        entry,
        venue["contracts"],
        int(venue["leverage"]),
        entry * (0.95 if long else 1.05),
        entry * (1.15 if long else 0.85),
    )
    manager.positions[symbol] = position
    return position


def test_manager_untracks_a_position_closed_on_the_venue(paper: PaperExchange) -> None:
    manager = manager_for(paper)
    paper.create_market_order(BTC, "buy", 10, 10)
    paper.create_market_order(ETH, "sell", 10, 10)
    _track(manager, paper, BTC)
    _track(manager, paper, ETH)
    assert list(manager.update_positions()) == []  # prices have not moved: nothing to do
    assert set(manager.positions) == {BTC, ETH}

    paper.close_externally(ETH)  # by hand on the exchange UI
    assert list(manager.update_positions()) == []
    assert list(manager.positions) == [BTC]
    removed = [e for e in manager.events if e["kind"] == "removed"]
    assert [(e["symbol"], e["reason"]) for e in removed] == [(ETH, "closed_externally")]


def test_manager_untracks_a_liquidated_position(paper: PaperExchange) -> None:
    manager = manager_for(paper)
    paper.create_market_order(XRP, "buy", 50, 20)
    _track(manager, paper, XRP)
    liq = paper.position(XRP)["liquidationPrice"]  # type: ignore[index]
    paper.set_price(XRP, liq * 0.99)
    assert paper.events(["liquidation"])
    list(manager.update_positions())
    assert XRP not in manager.positions


def test_manager_keeps_positions_over_a_transient_empty_answer(paper: PaperExchange) -> None:
    manager = manager_for(paper, missing_confirmations=2)
    paper.create_market_order(BTC, "buy", 10, 10)
    position = _track(manager, paper, BTC)
    paper.answer_empty_next(1)
    list(manager.update_positions())
    assert manager.positions[BTC] is position
    assert paper.events(["transient_empty"])
    list(manager.update_positions())
    assert manager.positions[BTC] is position
    assert not [e for e in manager.events if e["kind"] == "removed"]


def test_manager_keeps_positions_when_the_venue_raises(paper: PaperExchange) -> None:
    manager = manager_for(paper)
    paper.create_market_order(BTC, "buy", 10, 10)
    position = _track(manager, paper, BTC)
    paper.fail_next("get_open_positions")
    list(manager.update_positions())
    assert manager.positions[BTC] is position
    assert paper.events(["exception"])
    assert not [e for e in manager.events if e["kind"] == "removed"]


def test_manager_imports_and_closes_through_the_venue(paper: PaperExchange) -> None:
    manager = manager_for(paper)
    paper.create_market_order(BTC, "buy", 10, 10)
    paper.create_market_order(XRP, "sell", 30, 5)
    assert manager.sync_existing_positions() == 2
    assert manager.positions[BTC].side == "long" and manager.positions[BTC].amount == 10.0
    assert manager.positions[XRP].side == "short" and manager.positions[XRP].leverage == 5
    paper.set_price(BTC, 90900.0)
    pnl = manager.close_position(BTC, "manual")
    assert pnl is not None and math.isfinite(pnl)
    assert paper.position(BTC) is None and BTC not in manager.positions
    # PaperExchange declares client order ids and position legs: the close carries an id and
    # names the leg it closes, and the event names the id.
    [(args, kwargs)] = paper.calls_of("close_position")
    assert args == (BTC,) and sorted(kwargs) == ["client_order_id", "side"]
    assert kwargs["side"] == "long"
    closed = [e for e in manager.events if e["kind"] == "closed"]
    assert closed[-1]["order_id"] == kwargs["client_order_id"]


def test_manager_stop_loss_closes_on_the_venue(paper: PaperExchange) -> None:
    manager = manager_for(paper)
    paper.create_market_order(ETH, "buy", 10, 5)
    position = _track(manager, paper, ETH)
    paper.set_price(ETH, position.stop_loss * 0.995)  # below the stop, above liquidation
    assert not paper.events(["liquidation"])
    closed = list(manager.update_positions())
    assert [(symbol, pos is position) for symbol, _, pos in closed] == [(ETH, True)]
    assert closed[0][1] < 0
    assert paper.position(ETH) is None
    assert ETH not in manager.positions


# ---------------------------------------------------------------------------- audit fixes
def test_close_position_closes_a_position_of_any_size() -> None:
    # Above max_amount: built from several orders.
    p = PaperExchange(volatility=0.0, max_amount=10)
    p.create_market_order(BTC, "buy", 10, 10)
    p.create_market_order(BTC, "buy", 10, 10)
    assert p.close_position(BTC) is True
    assert p.position(BTC) is None
    assert p.history[-1]["kind"] == "fill" and p.history[-1]["details"]["contracts"] == 20.0
    # Below min_amount: the dust an auto-deleveraging left.
    p = PaperExchange(volatility=0.0, min_amount=5)
    p.create_market_order(BTC, "sell", 5, 10)
    p.reduce_externally(BTC, 3)
    assert p.close_position(BTC, client_order_id="close-dust") is True
    assert p.position(BTC) is None
    order = p.get_order_by_client_id("close-dust", BTC)
    assert order is not None
    assert (order["status"], order["amount"], order["filled"]) == ("closed", 2.0, 2.0)
    assert p.events(["order_rejected"]) == []
    # Ordinary orders still follow the size rules.
    p.create_market_order(BTC, "buy", 5, 10)
    p.reduce_externally(BTC, 3)
    assert p.create_market_order(BTC, "sell", 2, 10, reduce_only=True) is None
    assert "below the minimum" in p.history[-1]["details"]["reason"]


def test_the_manager_closes_a_dust_position() -> None:
    p = PaperExchange(volatility=0.0, min_amount=5)
    manager = PositionManager(p, 0.02, clock=p.clock, ticker_retry_delays=())
    assert manager.open_position(BTC, "BUY", 5, 10, 0.03)
    p.reduce_externally(BTC, 3)
    list(manager.update_positions())
    manager.close_position(BTC, "test")
    assert p.position(BTC) is None


def test_made_up_client_ids_never_take_an_id_in_use() -> None:
    p = PaperExchange(volatility=0.0)
    mine = p.create_market_order(BTC, "buy", 3, 10, client_order_id="auto-paper-2")
    other = p.create_market_order(ETH, "buy", 1, 10)  # order paper-2, no client id
    assert mine is not None and other is not None
    assert other["id"] == "paper-2" and other["clientOrderId"] != "auto-paper-2"
    assert p.get_order_by_client_id("auto-paper-2", BTC)["id"] == mine["id"]  # type: ignore[index]
    assert p.get_order_by_client_id(other["clientOrderId"], ETH)["id"] == "paper-2"  # type: ignore[index]
    # Deterministic: the same calls make up the same id.
    again = PaperExchange(volatility=0.0)
    again.create_market_order(BTC, "buy", 3, 10, client_order_id="auto-paper-2")
    assert again.create_market_order(ETH, "buy", 1, 10)["clientOrderId"] == other["clientOrderId"]  # type: ignore[index]
    # A made-up id that would collide a second time is skipped too.
    p.create_market_order(BTC, "buy", 1, 10, client_order_id="auto-paper-5")
    p.create_market_order(BTC, "buy", 1, 10, client_order_id="auto-paper-5.1")
    fifth = p.create_market_order(BTC, "buy", 1, 10)
    assert fifth is not None and fifth["id"] == "paper-5"
    assert fifth["clientOrderId"] not in ("auto-paper-5", "auto-paper-5.1")
    assert p.get_order_by_client_id(fifth["clientOrderId"], BTC)["id"] == "paper-5"  # type: ignore[index]
    assert p.get_order_by_client_id("auto-paper-5", BTC)["id"] == "paper-3"  # type: ignore[index]


def random_failure_targets(p: PaperExchange) -> dict[str, Any]:
    """A call of each method a random 'exception' event may arm, by name."""
    return {
        "get_open_positions": p.get_open_positions,
        "get_tickers": lambda: p.get_tickers([BTC]),
        "get_ohlcv": lambda: p.get_ohlcv(BTC),
        "close_position": lambda: p.close_position(BTC),
    }


def test_random_exceptions_hit_the_cycle_methods_and_do_not_pile_up() -> None:
    p = PaperExchange(seed=3, volatility=0.0, event_rates={"exception": 1.0})
    p.advance(40)  # 40 random failures drawn, nobody calls
    calls = random_failure_targets(p)
    raised = []
    for method, call in calls.items():
        for _ in range(3):
            try:
                call()
            except PaperExchangeError:
                raised.append(method)
    assert sorted(raised) == sorted(calls)  # one pending failure per method, no more
    for _ in range(3):
        assert p.get_ticker(BTC) is not None  # the per-symbol fallback is left alone


def test_the_manager_cycle_meets_random_price_failures() -> None:
    p = PaperExchange(seed=3, volatility=0.0, event_rates={"exception": 1.0})
    manager = PositionManager(p, 0.02, clock=p.clock, ticker_retry_delays=())
    assert manager.open_position(BTC, "BUY", 10, 10, 0.03)
    for _ in range(40):
        p.step()
        list(manager.update_positions())
    raised = {e["details"]["method"] for e in p.events(["exception"])}
    assert "get_tickers" in raised and "get_ticker" not in raised
    assert len(p.calls_of("get_ticker")) >= 1  # the cycle fell back to get_ticker
    for _ in range(30):
        assert p.get_ticker(BTC) is not None  # nothing piled up for the bot


def test_random_history_entries_say_random() -> None:
    p = PaperExchange(seed=1, volatility=0.0, event_rates={"transient_empty": 1.0})
    p.create_market_order(BTC, "buy", 5, 10)
    p.step()
    p.answer_empty_next()
    assert p.get_open_positions() == [] and p.get_open_positions() == []
    assert [e["details"].get("random") for e in p.events(["transient_empty"])] == [True, None]
    p = PaperExchange(seed=1, volatility=0.0, event_rates={"exception": 1.0})
    p.step()
    calls = random_failure_targets(p)
    failed = []
    for method, call in calls.items():
        try:
            call()
        except PaperExchangeError:
            failed.append(method)
    assert len(failed) == 1  # the random one
    p.fail_next(failed[0])  # a scripted one
    with pytest.raises(PaperExchangeError):
        calls[failed[0]]()
    assert [e["details"].get("random") for e in p.events(["exception"])] == [True, None]


@pytest.mark.parametrize(("maintenance_margin", "leverage"), [(0.01, 125), (0.01, 100), (0.1, 10)])
def test_leverage_is_capped_by_the_maintenance_margin(
    maintenance_margin: float, leverage: int
) -> None:
    p = PaperExchange(volatility=0.0, maintenance_margin=maintenance_margin)
    assert p.create_market_order(BTC, "buy", 10, leverage) is None
    assert p.create_limit_order(BTC, "sell", 10, 95000.0, leverage) is None
    reasons = [e["details"]["reason"] for e in p.events(["order_rejected"])]
    assert len(reasons) == 2
    for reason in reasons:
        assert f"leverage {float(leverage)}" in reason
        assert f"maintenance margin {maintenance_margin}" in reason
    assert p.positions() == [] and p.step() == []
    # Below the cap the liquidation price is on the losing side of the entry.
    below = round(1 / maintenance_margin) - 1
    assert p.create_market_order(BTC, "buy", 10, below) is not None
    assert p.position(BTC)["liquidationPrice"] < 90000.0  # type: ignore[index]
    assert p.step() == [] and p.position(BTC) is not None


@pytest.mark.parametrize(
    ("options", "error", "named"),
    [
        ({"contract_size": math.nan}, ValueError, "contract_size"),
        ({"contract_size": math.inf}, ValueError, "contract_size"),
        ({"contract_size": {BTC: math.nan}}, ValueError, "contract_size"),
        ({"contract_size": {BTC: "1"}}, TypeError, "contract_size"),
        ({"contract_size": "1"}, TypeError, "contract_size"),
        ({"contract_size": 0}, ValueError, "contract_size"),
        ({"min_amount": math.nan}, ValueError, "min_amount"),
        ({"amount_step": math.nan}, ValueError, "amount_step"),
        ({"max_amount": math.nan}, ValueError, "max_amount"),
        ({"max_amount": math.inf}, ValueError, "max_amount"),
        ({"min_amount": "1"}, TypeError, "min_amount"),
        ({"min_amount": 5, "max_amount": 2}, ValueError, "max_amount"),
        ({"tick_seconds": math.nan}, ValueError, "tick_seconds"),
        ({"tick_seconds": math.inf}, ValueError, "tick_seconds"),
        ({"tick_seconds": None}, TypeError, "tick_seconds"),
        ({"prices": {BTC: math.nan}}, ValueError, "prices"),
        ({"prices": {BTC: math.inf}}, ValueError, "prices"),
        ({"prices": {BTC: "90000"}}, TypeError, "prices"),
        ({"prices": [BTC]}, TypeError, "prices"),
        ({"start_time": math.nan}, ValueError, "start_time"),
        ({"start_time": "2026-01-01"}, TypeError, "start_time"),
        ({"volatility": "0.1"}, TypeError, "volatility"),
        ({"volatility": math.nan}, ValueError, "volatility"),
        ({"maintenance_margin": None}, TypeError, "maintenance_margin"),
        ({"slippage": "0"}, TypeError, "slippage"),
        ({"spread": math.nan}, ValueError, "spread"),
        ({"partial_fill_fraction": "1"}, TypeError, "partial_fill_fraction"),
        ({"event_rates": {"exception": "0.5"}}, TypeError, "event_rates"),
        ({"event_rates": {"exception": math.nan}}, ValueError, "event_rates"),
        ({"symbols": BTC}, TypeError, "symbols"),
        ({"symbols": [BTC, 3]}, TypeError, "symbols"),
        ({"wait_ticks": 2.7}, TypeError, "wait_ticks"),
        ({"history_candles": None}, TypeError, "history_candles"),
        ({"history_candles": 10.5}, TypeError, "history_candles"),
        ({"history_candles": True}, TypeError, "history_candles"),
    ],
)
def test_bad_constructor_options_name_the_option_and_the_value(
    options: dict[str, Any], error: type[Exception], named: str
) -> None:
    with pytest.raises(error) as info:
        PaperExchange(**options)
    message = str(info.value)
    assert named in message
    value = next(iter(options.values())) if len(options) == 1 else options[named]
    if isinstance(value, Mapping):
        value = next(iter(value.values()))
    elif isinstance(value, list):
        value = value[-1]  # the element that is no symbol
    assert repr(value) in message or str(value) in message


@pytest.mark.parametrize("n", [1.5, "2", None, True])
def test_advance_needs_an_int(n: Any) -> None:
    p = PaperExchange(seed=1)
    with pytest.raises(TypeError, match=r"\bn must be an int") as info:
        p.advance(n)
    assert repr(n) in str(info.value)
    assert p.time == DEFAULT_START_TIME


@pytest.mark.parametrize(
    "arm",
    [
        lambda p: p.fail_next("get_ticker", 1.5),
        lambda p: p.answer_empty_next("1"),
        lambda p: p.lag_positions_next(None),
        lambda p: p.lose_answer_next("close_position", 2.0),
    ],
)
def test_times_must_be_an_int(arm: Any) -> None:
    p = PaperExchange(seed=1)
    with pytest.raises(TypeError, match=r"\btimes must be an int"):
        arm(p)
    assert p.get_ticker(BTC) is not None and p.get_open_positions() == []


@pytest.mark.parametrize("error", ["exchange down", 42, int, object()])
def test_fail_next_checks_the_error_when_armed(error: Any) -> None:
    p = PaperExchange(seed=1)
    with pytest.raises(TypeError, match=r"\berror must be None, an exception") as info:
        p.fail_next("get_ticker", error=error)
    assert repr(error) in str(info.value)
    assert p.get_ticker(BTC) is not None  # nothing was armed


def test_set_price_refuses_a_price_that_rounds_to_zero() -> None:
    p = PaperExchange(seed=1, volatility=0.0)
    p.create_market_order(BTC, "buy", 10, 10)
    with pytest.raises(ValueError, match=r"price.*0\.01") as info:
        p.set_price(BTC, 0.01)  # BTC has one decimal
    assert "price" in str(info.value)
    assert p.price(BTC) == 90000.0 and p.events(["price_jump"]) == []
    assert p.set_price(BTC, 0.05)[0]["details"]["new"] == 0.1  # rounds up to one tick
    with pytest.raises(TypeError, match="symbol"):
        p.set_price(["x"], 1)  # type: ignore[arg-type]


def test_events_refuses_a_single_string() -> None:
    p = PaperExchange(seed=1, volatility=0.0)
    p.create_market_order(BTC, "buy", 1, 10)
    with pytest.raises(TypeError, match=r"kinds.*'fill'"):
        p.events("fill")
    assert len(p.events(["fill"])) == 1 and len(p.events(("fill",))) == 1


def test_a_resting_reduce_only_limit_larger_than_the_position_ends_closed() -> None:
    p = PaperExchange(seed=1, volatility=0.0)
    p.create_market_order(BTC, "buy", 5, 10)
    order = p.create_limit_order(
        BTC, "sell", 8, 95000.0, 10, reduce_only=True, client_order_id="tp"
    )
    assert order is not None and order["status"] == "open"
    added = p.set_price(BTC, 96000.0)
    assert [e["kind"] for e in added] == ["price_jump", "fill"]
    assert added[1]["details"]["contracts"] == 5.0
    status = p.get_order_by_client_id("tp", BTC)
    assert status is not None
    assert (status["status"], status["amount"], status["filled"], status["remaining"]) == (
        "closed",
        5.0,
        5.0,
        0.0,
    )
    assert p.position(BTC) is None


def test_a_resting_reduce_only_limit_in_parts_ends_closed() -> None:
    p = PaperExchange(seed=1, volatility=0.0, partial_fill_fraction=0.5)
    p.create_market_order(BTC, "buy", 5, 10)
    order = p.create_limit_order(BTC, "sell", 8, 95000.0, 10, reduce_only=True)
    assert order is not None
    p.set_price(BTC, 96000.0)  # fills 4 of 8, one contract left
    assert p.position(BTC)["contracts"] == 1.0  # type: ignore[index]
    assert p.wait_for_order_fill(order["id"], BTC)["status"] == "open"  # type: ignore[index]
    added = p.set_price(BTC, 96500.0)
    assert [e["kind"] for e in added] == ["price_jump", "fill"]
    status = p.wait_for_order_fill(order["id"], BTC)
    assert status is not None
    assert (status["status"], status["amount"], status["filled"]) == ("closed", 5.0, 5.0)
