"""Ports of the manager tests of the bot's ``test_trade_simulation.py``: opening, closing and the
complete trade flow (the Position-only methods are in ``test_trade_simulation_position.py``).

The original's ``test_position_closing`` and ``test_complete_trade_flow`` fail against the
original itself: their ``Mock`` client leaves ``get_open_positions`` unconfigured, so the close's
safety check cannot see the position. Each is ported twice: once with the intent (the exchange
lists the position, the close returns a positive P/L) and once pinning the real behaviour (an
unusable position list closes nothing and keeps the position).
"""

from __future__ import annotations

from unittest.mock import Mock

import pytest

from position_manager_rs import PositionManager

BTC, ETH = "BTC/USDT:USDT", "ETH/USDT:USDT"


def _client(price: float, *, listed: list[str] | None = None) -> Mock:
    client = Mock()
    client.get_ticker.return_value = {"last": price}
    client.create_market_order.return_value = {"id": "12345", "status": "closed"}
    client.close_position.return_value = True
    if listed is not None:
        client.get_open_positions.return_value = [
            {"symbol": s, "side": "long", "contracts": 1.0} for s in listed
        ]
    return client


def test_position_opening() -> None:
    client = _client(100.0)
    manager = PositionManager(client)

    assert manager.open_position(BTC, "BUY", 1.0, 10, 0.05) is True
    long = manager.positions[BTC]
    assert long.side == "long"
    assert long.entry_price == 100.0  # the order reports no average: the ticker price
    assert long.take_profit is not None
    assert long.stop_loss < 100.0 < long.take_profit

    assert manager.open_position(ETH, "SELL", 1.0, 10, 0.05) is True
    short = manager.positions[ETH]
    assert short.side == "short"
    assert short.take_profit is not None
    assert short.take_profit < 100.0 < short.stop_loss

    # A second open of a tracked symbol is refused and sends nothing.
    assert manager.open_position(BTC, "BUY", 1.0, 10, 0.05) is False
    assert client.create_market_order.call_count == 2
    client.create_market_order.assert_any_call(BTC, "buy", 1.0, 10)
    client.create_market_order.assert_any_call(ETH, "sell", 1.0, 10)


def _open_long(manager: PositionManager) -> None:
    assert manager.open_position(BTC, "BUY", 1.0, 10, 0.05) is True


def test_position_closing() -> None:
    """Intent: the exchange lists the position, the price rose 10 %: a positive P/L."""
    client = _client(100.0, listed=[BTC])
    manager = PositionManager(client)
    _open_long(manager)
    client.get_ticker.return_value = {"last": 110.0}

    pnl = manager.close_position(BTC)

    assert pnl is not None and pnl > 0
    assert pnl == pytest.approx(1.0 - 0.0012 * 10)  # +10 % × 10x, fees 0.12 % × 10x
    assert BTC not in manager.positions
    client.close_position.assert_called_once_with(BTC)


def test_position_closing_with_unconfigured_position_list() -> None:
    """The original test's client: ``get_open_positions`` returns a ``Mock``. The close cannot
    verify the position, so nothing is sent and the position stays tracked."""
    client = _client(100.0)
    manager = PositionManager(client)
    _open_long(manager)
    client.get_ticker.return_value = {"last": 110.0}

    assert manager.close_position(BTC) is None
    assert BTC in manager.positions
    client.close_position.assert_not_called()


def test_complete_trade_flow() -> None:
    """Intent: open, trail, exit signal, close with a profit; then a short. The exchange lists
    the long the test opened, not the short it has yet to open: a long it listed untracked
    would be imported by the short's open (the list read after the first open's fill is the
    last list, G10) instead of sold into."""
    client = _client(100.0, listed=[BTC])
    manager = PositionManager(client)
    _open_long(manager)
    position = manager.positions[BTC]

    position.update_trailing_stop(105.0, trailing_percentage=0.02)
    assert position.highest_price == 105.0
    should_close, reason = position.should_close(110.0)
    assert should_close and "take_profit" in reason

    client.get_ticker.return_value = {"last": 110.0}
    pnl = manager.close_position(BTC, reason)
    assert pnl is not None and pnl > 0

    client.get_ticker.return_value = {"last": 100.0}
    assert manager.open_position(ETH, "SELL", 1.0, 10, 0.05) is True
    assert manager.positions[ETH].side == "short"
    assert [e["kind"] for e in manager.events] == ["opened", "closed", "opened"]


def test_complete_trade_flow_with_unconfigured_position_list() -> None:
    """The original test's client again: the close is refused, the long stays tracked, and the
    short still opens."""
    client = _client(100.0)
    manager = PositionManager(client)
    _open_long(manager)
    client.get_ticker.return_value = {"last": 110.0}
    assert manager.close_position(BTC, "take_profit") is None
    assert BTC in manager.positions
    client.get_ticker.return_value = {"last": 100.0}
    assert manager.open_position(ETH, "SELL", 1.0, 10, 0.05) is True
    assert sorted(manager.positions) == [BTC, ETH]
