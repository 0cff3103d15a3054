"""Port of ``test_position_update_with_advanced_exits`` from the bot's
``test_advanced_strategy_integration.py``.

The file's other six tests are about the bot's ``AdvancedExitStrategy`` class itself (or, for
``test_position_manager_has_advanced_exit_strategy``, need that class as an attribute of the
manager) and are not ported here.

The client is a ``Mock()`` whose ``get_open_positions`` is deliberately NOT configured, so it
returns a non-iterable ``Mock``: the manager can verify nothing against the exchange. The ticker is
51000 (+20 % ROI at 10x, enough for the exit rules to want a close) and there is no OHLCV data.
"""

from __future__ import annotations

from unittest.mock import Mock

from position_manager_rs import Position, PositionManager


def test_position_update_with_advanced_exits():
    """A full update cycle raises nothing, and the position is kept: an unusable exchange answer
    is never evidence that the position is gone, and a close that cannot be verified is not sent."""
    mock_client = Mock()
    mock_client.get_ticker.return_value = {"last": 51000}
    mock_client.get_ohlcv.return_value = None

    manager = PositionManager(mock_client)
    position = Position(
        symbol="BTC-USDT",
        side="long",
        entry_price=50000,
        amount=1.0,
        leverage=10,
        stop_loss=49000,
        take_profit=55000,
    )
    position.max_favorable_excursion = 0.02
    manager.positions["BTC-USDT"] = position

    closed_positions = list(manager.update_positions())

    assert closed_positions == []
    assert "BTC-USDT" in manager.positions
    assert manager.positions["BTC-USDT"] is position
    mock_client.close_position.assert_not_called()
