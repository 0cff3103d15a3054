"""Ports of the position-manager tests of the bot's ``test_enhanced_trading_methods.py``:
scaling in, scaling out and target modification.

The original ran them against its ``KuCoinClient`` over a patched ccxt exchange (orders fill,
ticker 51000 or 52000, market minimum 1 contract). Here the client is ``FakeExchange``, a plain
client with the same answers: its market orders fill in full at the ticker price and it reports
a minimum amount of 1.
"""

from __future__ import annotations

from helpers_clients import FakeExchange, make_manager

from position_manager_rs import Position

SYMBOL = "BTC-USDT"


def _exchange(price: float, contracts: float) -> FakeExchange:
    exchange = FakeExchange()
    exchange.open(SYMBOL, contracts=contracts, entry_price=50000.0)
    exchange.set_price(SYMBOL, price)
    exchange.min_amount = 1
    return exchange


def _long(amount: float) -> Position:
    return Position(
        symbol=SYMBOL,
        side="long",
        entry_price=50000,
        amount=amount,
        leverage=10,
        stop_loss=49000,
        take_profit=55000,
    )


def test_position_scaling_in() -> None:
    exchange = _exchange(51000.0, 1.0)
    manager = make_manager(exchange)
    position = _long(1.0)
    manager.positions[SYMBOL] = position

    assert manager.scale_in_position(SYMBOL, 1.0, 51000) is True

    assert position.amount == 2.0
    assert position.entry_price == 50500  # exact: (1 * 50000 + 1 * 51000) / 2
    # The original call shape: four positional arguments, the position's leverage as an int.
    assert exchange.calls_of("create_market_order") == [((SYMBOL, "buy", 1.0, 10), {})]
    assert exchange.positions[SYMBOL]["contracts"] == 2.0


def test_position_scaling_out() -> None:
    exchange = _exchange(52000.0, 2.0)
    manager = make_manager(exchange)
    position = _long(2.0)
    manager.positions[SYMBOL] = position

    pnl = manager.scale_out_position(SYMBOL, 1.0, "partial_take_profit")

    assert pnl is not None and pnl > 0
    assert pnl == position.get_leveraged_pnl(52000, include_fees=True)
    assert position.amount == 1.0
    assert exchange.calls_of("create_market_order") == [
        ((SYMBOL, "sell", 1.0, 10), {"reduce_only": True, "is_critical": True})
    ]
    assert exchange.calls_of("get_market_limits") == [((SYMBOL,), {})]


def test_position_target_modification() -> None:
    manager = make_manager(_exchange(50000.0, 1.0))
    position = _long(1.0)
    manager.positions[SYMBOL] = position

    assert manager.modify_position_targets(SYMBOL, 48000, 56000) is True

    assert position.stop_loss == 48000
    assert position.take_profit == 56000
