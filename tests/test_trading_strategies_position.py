"""Port of the three Position tests of the bot's ``test_trading_strategies.py``
(unittest ``TestTradingStrategies``): ``test_take_profit_triggers_correctly``,
``test_stop_loss_triggers_correctly`` and ``test_intelligent_profit_taking``.

The file's other six tests exercise the bot's ``AdvancedExitStrategy`` class directly and are not
about the position manager's surface.
"""

from __future__ import annotations

import pytest


@pytest.fixture
def btc_long(make_position):
    """Long 0.01 BTC at 50000, 10x, SL 49000, TP 51000."""
    return make_position(
        symbol="BTC/USDT:USDT",
        entry_price=50000.0,
        amount=0.01,
        leverage=10,
        stop_loss=49000.0,
        take_profit=51000.0,
    )


def test_take_profit_triggers_correctly(btc_long):
    """At the TP (+2 % price = +20 % ROI at 10x) the exceptional-profit rule fires first."""
    should_close, reason = btc_long.should_close(51000.0)

    assert should_close
    assert reason == "take_profit_20pct_exceptional"


def test_stop_loss_triggers_correctly(btc_long):
    """At the stop (-2 % price = -20 % ROI at 10x) the -15 % ROI emergency stop fires first."""
    should_close, reason = btc_long.should_close(49000.0)

    assert should_close
    assert reason == "emergency_stop_excessive_loss"


def test_intelligent_profit_taking(btc_long):
    """TP moved far away (60000); at +10 % price (+100 % ROI) the 20 % rule takes the profit."""
    btc_long.take_profit = 60000.0

    should_close, reason = btc_long.should_close(55000.0)

    assert should_close
    assert "take_profit_20pct" in reason
