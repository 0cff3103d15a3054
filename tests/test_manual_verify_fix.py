"""Port of the bot's ``manual_verify_fix.py`` (a script with three scenarios, now tests).

The script shared one ``Mock()`` client and one ``PositionManager`` across its scenarios and only
printed ✅/❌; here each scenario is a test with assertions, and scenario 2 replays scenario 1 first
to reach the state the script was in.
"""

from __future__ import annotations

from unittest.mock import Mock

import pytest

from position_manager_rs import PositionManager

BTC, ETH = "BTC/USDT:USDT", "ETH/USDT:USDT"


@pytest.fixture
def manager(mock_client: Mock) -> PositionManager:
    return PositionManager(client=mock_client, trailing_stop_percentage=0.02)


def _close_already_closed_position(manager, mock_client, make_position):
    """Scenario 1's steps: BTC tracked locally, the exchange reports no positions, close it."""
    manager.positions[BTC] = make_position(symbol=BTC)
    mock_client.get_open_positions = Mock(return_value=[])
    return manager.close_position(BTC, "test_scenario")


def test_scenario_1_position_closed_externally(manager, mock_client, make_position):
    """Closing a position the exchange no longer has: returns None, untracks it, sends no order."""
    result = _close_already_closed_position(manager, mock_client, make_position)

    assert result is None
    assert BTC not in manager.positions
    assert not mock_client.close_position.called


def test_scenario_2_double_close(manager, mock_client, make_position):
    """Closing the same, already removed position again returns None."""
    _close_already_closed_position(manager, mock_client, make_position)

    result = manager.close_position(BTC, "test_scenario_2")

    assert result is None
    assert not mock_client.close_position.called


def test_scenario_3_normal_close(manager, mock_client, make_position):
    """ETH on the exchange, ticker 3100, exchange close succeeds: P/L returned, position removed."""
    manager.positions[ETH] = make_position(
        symbol=ETH, entry_price=3000.0, amount=0.1, leverage=5, stop_loss=2900.0, take_profit=3200.0
    )
    mock_client.get_open_positions = Mock(
        return_value=[{"symbol": ETH, "side": "long", "contracts": 0.1, "leverage": 5}]
    )
    mock_client.get_ticker = Mock(return_value={"last": 3100.0})
    mock_client.close_position = Mock(return_value=True)

    result = manager.close_position(ETH, "normal_close")

    assert result is not None
    # Leveraged ROI after the 0.12 % round-trip fee: (100/3000 - 0.0012) * 5.
    assert result == pytest.approx((100 / 3000 - 0.0012) * 5)
    assert ETH not in manager.positions
    assert mock_client.close_position.called
