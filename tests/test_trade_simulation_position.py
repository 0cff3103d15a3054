"""Port of the Position-only methods of the bot's ``test_trade_simulation.py``
(class ``TradeSimulationTester``): ``test_position_pnl_calculation``, ``test_stop_loss_trigger``,
``test_take_profit_trigger`` and ``test_trailing_stop``.

The original class was never collected by pytest (its name does not start with ``Test`` and it has
an ``__init__``) and each method caught its own exceptions; here they are plain tests. The file's
other methods need ``open_position`` (``test_position_opening``, ``test_position_closing``,
``test_complete_trade_flow``) or the bot's ``RiskManager`` and are ported elsewhere.

All positions: entry 100, 1 contract, 10x; long SL 95 / TP 110, short SL 105 / TP 90.
"""

from __future__ import annotations

import pytest


@pytest.fixture
def long_position(make_position):
    return make_position(
        symbol="BTC/USDT:USDT",
        side="long",
        entry_price=100.0,
        amount=1.0,
        leverage=10,
        stop_loss=95.0,
        take_profit=110.0,
    )


@pytest.fixture
def short_position(make_position):
    return make_position(
        symbol="ETH/USDT:USDT",
        side="short",
        entry_price=100.0,
        amount=1.0,
        leverage=10,
        stop_loss=105.0,
        take_profit=90.0,
    )


def test_position_pnl_calculation(long_position, short_position):
    """``get_pnl`` is the unleveraged price move, signed in the position's favour."""
    assert long_position.get_pnl(105.0) == pytest.approx(0.05)
    assert long_position.get_pnl(97.0) == pytest.approx(-0.03)
    assert short_position.get_pnl(95.0) == pytest.approx(0.05)
    assert short_position.get_pnl(103.0) == pytest.approx(-0.03)


def test_stop_loss_trigger(long_position, short_position):
    """Inside the stop nothing fires; at the stop (-50 % ROI at 10x) the position closes, by the
    plain stop or by the liquidation-risk emergency stop that is checked first."""
    accepted = {"stop_loss", "emergency_stop_liquidation_risk"}

    should_close, _ = long_position.should_close(99.0)
    assert not should_close
    should_close, reason = long_position.should_close(95.0)
    assert should_close
    assert reason in accepted

    should_close, _ = short_position.should_close(101.0)
    assert not should_close
    should_close, reason = short_position.should_close(105.0)
    assert should_close
    assert reason in accepted


def test_take_profit_trigger(long_position, short_position, make_position):
    """At the TP the position closes with a take-profit reason; long before it, the ROI rules
    already take the profit (the original only printed those cases; they are asserted here)."""
    # Early profit taking well below the TP (+90 % and +20 % ROI).
    assert long_position.should_close(109.0) == (True, "take_profit_20pct_exceptional")
    assert long_position.should_close(102.0) == (True, "take_profit_20pct_exceptional")

    should_close, reason = long_position.should_close(110.0)
    assert should_close
    assert "take_profit" in reason

    assert short_position.should_close(91.0) == (True, "take_profit_20pct_exceptional")
    should_close, reason = short_position.should_close(90.0)
    assert should_close
    assert "take_profit" in reason

    # +8 % price (+80 % ROI) with a far TP closes immediately.
    far_tp = make_position(
        symbol="BTC/USDT:USDT",
        entry_price=100.0,
        amount=1.0,
        leverage=10,
        stop_loss=95.0,
        take_profit=120.0,
    )
    assert far_tp.get_pnl(108.0) >= 0.08
    should_close, reason = far_tp.should_close(108.0)
    assert should_close
    assert "take_profit" in reason


def test_trailing_stop(long_position, short_position):
    """The trailing stop follows a new extreme with the adaptive distance (here 2 % × 0.8 low
    momentum × 0.85 moderate profit = 1.36 %) and never moves back."""
    long_position.update_trailing_stop(105.0, trailing_percentage=0.02)
    assert long_position.highest_price == 105.0
    assert long_position.stop_loss > 95.0
    new_sl = long_position.stop_loss
    assert 103.0 <= new_sl <= 104.0
    assert new_sl == pytest.approx(105.0 * (1 - 0.0136))

    long_position.update_trailing_stop(103.0, trailing_percentage=0.02)
    assert long_position.stop_loss == new_sl

    short_position.update_trailing_stop(95.0, trailing_percentage=0.02)
    assert short_position.lowest_price == 95.0
    assert short_position.stop_loss < 105.0
    new_sl = short_position.stop_loss
    assert abs(new_sl - (95.0 + 95.0 * 0.0136)) <= 1.0
    assert new_sl == pytest.approx(95.0 * (1 + 0.0136))

    short_position.update_trailing_stop(97.0, trailing_percentage=0.02)
    assert short_position.stop_loss == new_sl
