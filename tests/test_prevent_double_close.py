"""Port of the bot's ``test_prevent_double_close.py`` (``TestPreventDoubleClose``, 5 tests).

``close_position`` first checks that the exchange still has the position; a position that is gone
is only untracked (no exchange order), and a position closed once cannot be closed twice.
"""

from __future__ import annotations

from unittest.mock import Mock

import pytest

from position_manager_rs import PositionManager

SYMBOL = "BTC/USDT:USDT"
ON_EXCHANGE = [{"symbol": SYMBOL, "side": "long", "contracts": 0.01, "leverage": 10}]


@pytest.fixture
def manager(mock_client: Mock) -> PositionManager:
    return PositionManager(client=mock_client, trailing_stop_percentage=0.02)


@pytest.fixture
def tracked(manager, make_position):
    """A long BTC position (entry 50000, 10x, SL 49000, TP 52000) in local tracking."""
    position = make_position(symbol=SYMBOL)
    manager.positions[SYMBOL] = position
    return position


def test_close_position_checks_exchange_first(manager, mock_client, tracked):
    """The exchange has no such position: None, untracked, ``client.close_position`` not called."""
    mock_client.get_open_positions = Mock(return_value=[])

    result = manager.close_position(SYMBOL, "test")

    assert result is None
    assert SYMBOL not in manager.positions
    mock_client.close_position.assert_not_called()


def test_close_position_proceeds_when_position_exists(manager, mock_client, tracked):
    """The exchange has it: a P/L is returned, it is untracked, the client closes it once with
    exactly one positional argument."""
    mock_client.get_open_positions = Mock(return_value=ON_EXCHANGE)
    mock_client.get_ticker = Mock(return_value={"last": 51000.0})
    mock_client.close_position = Mock(return_value=True)

    result = manager.close_position(SYMBOL, "test")

    assert result is not None
    assert SYMBOL not in manager.positions
    mock_client.close_position.assert_called_once_with(SYMBOL)


def test_update_positions_skips_closed_positions(manager, mock_client, tracked):
    """Exchange reports nothing, ticker below the stop: the cycle yields nothing (no close is made
    for a position that no longer exists)."""
    mock_client.get_open_positions = Mock(return_value=[])
    mock_client.get_ticker = Mock(return_value={"last": 48000.0})  # below the 49000 stop
    mock_client.get_ohlcv = Mock(return_value=[])

    closed_positions = list(manager.update_positions())

    assert len(closed_positions) == 0
    mock_client.close_position.assert_not_called()
    # The original's comment expected the position to stay tracked; in fact the cycle's cleanup
    # (spec §2.6 phase A) drops it, since the successful exchange list does not contain it.
    assert SYMBOL not in manager.positions


def test_close_position_not_in_tracking(manager, mock_client):
    """Closing an untracked symbol: None, and the client is not asked anything."""
    result = manager.close_position(SYMBOL, "test")

    assert result is None
    mock_client.get_open_positions.assert_not_called()
    mock_client.close_position.assert_not_called()


def test_multiple_close_attempts_prevented(manager, mock_client, tracked):
    """First close succeeds; the second returns None; the exchange close is sent only once."""
    mock_client.get_open_positions = Mock(return_value=ON_EXCHANGE)
    mock_client.get_ticker = Mock(return_value={"last": 51000.0})
    mock_client.close_position = Mock(return_value=True)

    result1 = manager.close_position(SYMBOL, "test")

    assert result1 is not None
    assert SYMBOL not in manager.positions

    mock_client.get_open_positions = Mock(return_value=[])
    result2 = manager.close_position(SYMBOL, "test")

    assert result2 is None
    assert mock_client.close_position.call_count == 1
