"""Port of the bot's ``test_position_cleanup.py`` (unittest ``TestPositionCleanup``, 4 tests).

``update_positions()`` starts each cycle by dropping tracked positions that a successful exchange
position list no longer reports, and must survive a failing ``get_open_positions()``.

Two originals fail against the original implementation itself: their ticker (51000 against an
entry of 50000 at 10x) is a +20 % ROI, so ``take_profit_20pct_exceptional`` closes the surviving
position(s) inside the same cycle and "only BTC remains" / "both remain" cannot hold. Each is ported
twice: once with the ticker at the entry price, where no exit rule can act and the test isolates the
cleanup (the original intent), and once with the original data, pinning what really happens.
"""

from __future__ import annotations

from unittest.mock import Mock

import pytest

from position_manager_rs import PositionManager
from position_manager_rs.events import Event

BTC, ETH, SOL = "BTC/USDT:USDT", "ETH/USDT:USDT", "SOL/USDT:USDT"
FLAT_PRICE = 50000.0  # the entry price: zero P/L, below every exit threshold
ORIGINAL_PRICE = 51000.0  # +2 % price move = +20 % ROI at 10x
ROI_AFTER_FEES_AT_51000 = (0.02 - 0.0012) * 10


def _exchange_entry(symbol: str) -> dict[str, object]:
    return {"symbol": symbol, "side": "long", "contracts": 0.01, "leverage": 10}


@pytest.fixture
def manager(mock_client: Mock) -> PositionManager:
    return PositionManager(client=mock_client, trailing_stop_percentage=0.02)


@pytest.fixture
def track(manager, make_position):
    """Puts long positions (entry 50000, 10x, SL 49000, TP 52000) into ``manager.positions``."""

    def _track(*symbols: str) -> dict[str, object]:
        tracked = {}
        for symbol in symbols:
            position = make_position(symbol=symbol)
            manager.positions[symbol] = position
            tracked[symbol] = position
        return tracked

    return _track


def _events(manager: PositionManager, kind: str) -> dict[str, Event]:
    return {e["symbol"]: e for e in manager.events if e["kind"] == kind}


def test_update_positions_removes_closed_positions(manager, mock_client, track):
    """3 tracked, only BTC on the exchange: ETH and SOL are dropped, BTC stays.

    Changed from the original: ticker at the entry price (50000) instead of 51000, so no exit rule
    fires and only the cleanup acts (the original data is pinned in the next test).
    """
    track(BTC, ETH, SOL)
    assert len(manager.positions) == 3

    mock_client.get_open_positions = Mock(return_value=[_exchange_entry(BTC)])
    mock_client.get_ticker = Mock(return_value={"last": FLAT_PRICE})
    mock_client.get_ohlcv = Mock(return_value=[])

    closed = list(manager.update_positions())

    assert closed == []
    assert len(manager.positions) == 1
    assert BTC in manager.positions
    assert ETH not in manager.positions
    assert SOL not in manager.positions
    mock_client.close_position.assert_not_called()
    removed = _events(manager, "removed")
    assert set(removed) == {ETH, SOL}


def test_update_positions_removes_closed_positions_original_data(manager, mock_client, track):
    """Original data (ticker 51000 = +20 % ROI): the orphans go AND BTC closes in the same cycle.

    The original test expected BTC to remain and failed against the original itself; what really
    happens is a full close with ``take_profit_20pct_exceptional``, yielded by the cycle.
    """
    tracked = track(BTC, ETH, SOL)

    mock_client.get_open_positions = Mock(return_value=[_exchange_entry(BTC)])
    mock_client.get_ticker = Mock(return_value={"last": ORIGINAL_PRICE})
    mock_client.get_ohlcv = Mock(return_value=[])
    mock_client.close_position = Mock(return_value=True)

    closed = list(manager.update_positions())

    assert len(closed) == 1
    symbol, pnl, position = closed[0]
    assert symbol == BTC
    assert pnl == pytest.approx(ROI_AFTER_FEES_AT_51000)
    assert position is tracked[BTC]
    assert len(manager.positions) == 0
    mock_client.close_position.assert_called_once_with(BTC)
    assert set(_events(manager, "removed")) == {ETH, SOL}
    assert _events(manager, "closed")[BTC]["reason"] == "take_profit_20pct_exceptional"


def test_update_positions_keeps_all_when_all_exist(manager, mock_client, track):
    """2 tracked, both on the exchange: both remain.

    Changed from the original: ticker at the entry price (50000) instead of 51000, so no exit rule
    closes them (the original data is pinned in the next test).
    """
    track(BTC, ETH)

    mock_client.get_open_positions = Mock(return_value=[_exchange_entry(BTC), _exchange_entry(ETH)])
    mock_client.get_ticker = Mock(return_value={"last": FLAT_PRICE})
    mock_client.get_ohlcv = Mock(return_value=[])

    closed = list(manager.update_positions())

    assert closed == []
    assert len(manager.positions) == 2
    assert BTC in manager.positions
    assert ETH in manager.positions
    mock_client.close_position.assert_not_called()
    assert _events(manager, "removed") == {}


def test_update_positions_keeps_all_when_all_exist_original_data(manager, mock_client, track):
    """Original data (ticker 51000 = +20 % ROI): nothing is cleaned up, but both positions close.

    The original expected both to remain and failed against the original itself: each is closed
    with ``take_profit_20pct_exceptional`` inside the cycle and yielded.
    """
    tracked = track(BTC, ETH)

    mock_client.get_open_positions = Mock(return_value=[_exchange_entry(BTC), _exchange_entry(ETH)])
    mock_client.get_ticker = Mock(return_value={"last": ORIGINAL_PRICE})
    mock_client.get_ohlcv = Mock(return_value=[])
    mock_client.close_position = Mock(return_value=True)

    closed = list(manager.update_positions())

    assert sorted(symbol for symbol, _, _ in closed) == [BTC, ETH]
    for symbol, pnl, position in closed:
        assert pnl == pytest.approx(ROI_AFTER_FEES_AT_51000)
        assert position is tracked[symbol]
    assert len(manager.positions) == 0
    assert mock_client.close_position.call_count == 2
    assert _events(manager, "removed") == {}
    closes = _events(manager, "closed")
    assert {s: e["reason"] for s, e in closes.items()} == {
        BTC: "take_profit_20pct_exceptional",
        ETH: "take_profit_20pct_exceptional",
    }


def test_update_positions_handles_api_error_gracefully(manager, mock_client, track):
    """``get_open_positions`` raises: the cycle does not raise and the position is kept."""
    track(BTC)

    mock_client.get_open_positions = Mock(side_effect=Exception("API error"))
    mock_client.get_ticker = Mock(return_value={"last": ORIGINAL_PRICE})
    mock_client.get_ohlcv = Mock(return_value=[])

    list(manager.update_positions())  # must not raise

    assert len(manager.positions) == 1
    assert BTC in manager.positions
    # Without a position list the close cannot be verified, so nothing is sent (as the original).
    mock_client.close_position.assert_not_called()


def test_update_positions_removes_all_when_none_exist(manager, mock_client, track):
    """A successful empty position list: every tracked position is dropped."""
    track(BTC, ETH)

    mock_client.get_open_positions = Mock(return_value=[])

    closed = list(manager.update_positions())

    assert closed == []
    assert len(manager.positions) == 0
    assert set(_events(manager, "removed")) == {BTC, ETH}
