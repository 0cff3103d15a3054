"""Port of the bot's ``manual_verify_cleanup.py`` (a script with three scenarios, now tests).

The script printed ✅/❌ and always exited 0; here every check is an assertion. Each scenario
builds its own ``Mock()`` client and ``PositionManager(client, 0.02)`` and runs one update cycle by
exhausting the ``update_positions()`` generator with a plain ``for`` loop, as the script did.

Scenarios 2 and 3 fail against the original implementation itself: their ticker (51000 against an
entry of 50000 at 10x) is a +20 % ROI, so ``take_profit_20pct_exceptional`` closes the positions
that survive the cleanup in the same cycle. Each is ported twice: with the ticker at the entry
price, so only the cleanup acts (the script's intent), and with the original data, pinning what
really happens.
"""

from __future__ import annotations

from unittest.mock import Mock

import pytest

from position_manager_rs import PositionManager

BTC, ETH, SOL = "BTC/USDT:USDT", "ETH/USDT:USDT", "SOL/USDT:USDT"
FLAT_PRICE = 50000.0  # the entry price: no exit rule can fire
ORIGINAL_PRICE = 51000.0  # +20 % ROI at 10x


def _exchange_entry(symbol: str) -> dict[str, object]:
    return {"symbol": symbol, "side": "long", "contracts": 0.01, "leverage": 10}


def _exhaust(iterable) -> list:
    """Consumes the update cycle as the script did (a ``for`` loop); returns what it yielded."""
    yielded = []
    for item in iterable:
        yielded.append(item)
    return yielded


@pytest.fixture
def manager(mock_client: Mock) -> PositionManager:
    return PositionManager(client=mock_client, trailing_stop_percentage=0.02)


@pytest.fixture
def track(manager, make_position):
    def _track(*symbols: str) -> None:
        for symbol in symbols:
            manager.positions[symbol] = make_position(symbol=symbol)

    return _track


def test_scenario_1_position_closed_externally(manager, mock_client, track):
    """One tracked position, the exchange reports none: it is removed from tracking."""
    track(BTC)
    assert len(manager.positions) == 1

    mock_client.get_open_positions = Mock(return_value=[])

    _exhaust(manager.update_positions())

    assert len(manager.positions) == 0


def test_scenario_2_some_positions_closed_externally(manager, mock_client, track):
    """Three tracked, only BTC on the exchange: only BTC remains.

    Changed from the script: ticker at the entry price (50000) instead of 51000, so only the
    cleanup acts; the original data is pinned in the next test.
    """
    track(BTC, ETH, SOL)

    mock_client.get_open_positions = Mock(return_value=[_exchange_entry(BTC)])
    mock_client.get_ticker = Mock(return_value={"last": FLAT_PRICE})
    mock_client.get_ohlcv = Mock(return_value=[])

    yielded = _exhaust(manager.update_positions())

    assert yielded == []
    assert len(manager.positions) == 1
    assert BTC in manager.positions
    assert list(manager.positions.keys()) == [BTC]


def test_scenario_2_original_data_closes_btc_at_20pct_roi(manager, mock_client, track):
    """The script's data (ticker 51000): ETH and SOL are cleaned up and BTC is closed in the same
    cycle with ``take_profit_20pct_exceptional`` — so "only BTC remains" cannot hold."""
    track(BTC, ETH, SOL)

    mock_client.get_open_positions = Mock(return_value=[_exchange_entry(BTC)])
    mock_client.get_ticker = Mock(return_value={"last": ORIGINAL_PRICE})
    mock_client.get_ohlcv = Mock(return_value=[])

    yielded = _exhaust(manager.update_positions())

    assert [symbol for symbol, _, _ in yielded] == [BTC]
    assert len(manager.positions) == 0
    mock_client.close_position.assert_called_once_with(BTC)
    closes = [e for e in manager.events if e["kind"] == "closed"]
    assert [(e["symbol"], e["reason"]) for e in closes] == [(BTC, "take_profit_20pct_exceptional")]


def test_scenario_3_all_positions_exist(manager, mock_client, track):
    """Two tracked, both on the exchange: both remain.

    Changed from the script: ticker at the entry price (50000) instead of 51000, so no exit rule
    closes them; the original data is pinned in the next test.
    """
    track(BTC, ETH)

    mock_client.get_open_positions = Mock(return_value=[_exchange_entry(BTC), _exchange_entry(ETH)])
    mock_client.get_ticker = Mock(return_value={"last": FLAT_PRICE})
    mock_client.get_ohlcv = Mock(return_value=[])

    yielded = _exhaust(manager.update_positions())

    assert yielded == []
    assert len(manager.positions) == 2
    mock_client.close_position.assert_not_called()


def test_scenario_3_original_data_closes_both_at_20pct_roi(manager, mock_client, track):
    """The script's data (ticker 51000): nothing is cleaned up, but both positions close with
    ``take_profit_20pct_exceptional`` in the same cycle — so "both remain" cannot hold."""
    track(BTC, ETH)

    mock_client.get_open_positions = Mock(return_value=[_exchange_entry(BTC), _exchange_entry(ETH)])
    mock_client.get_ticker = Mock(return_value={"last": ORIGINAL_PRICE})
    mock_client.get_ohlcv = Mock(return_value=[])

    yielded = _exhaust(manager.update_positions())

    assert sorted(symbol for symbol, _, _ in yielded) == [BTC, ETH]
    assert len(manager.positions) == 0
    assert not [e for e in manager.events if e["kind"] == "removed"]
    reasons = {e["symbol"]: e["reason"] for e in manager.events if e["kind"] == "closed"}
    assert reasons == {
        BTC: "take_profit_20pct_exceptional",
        ETH: "take_profit_20pct_exceptional",
    }
