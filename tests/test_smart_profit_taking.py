"""Port of the bot's ``test_smart_profit_taking.py`` (5 assert-based tests, Position only).

``should_close`` takes profit at ROI thresholds (5/8/10/15/20 %) depending on how far the take
profit still is, and on retracements from the peak (``max_favorable_excursion``);
``update_take_profit`` extends the target only conservatively when already in profit or close to it.

``update_take_profit`` reads the clock (profit velocity, position age), so those tests run under
``frozen_clock``: the position is created, the clock moves 1 ms (the few microseconds that elapsed
in the original between construction and the update), then the TP is updated.
"""

from __future__ import annotations

from datetime import datetime

import pytest

from position_manager_rs import Position
from position_manager_rs.testing import frozen_clock

START = datetime(2025, 1, 1, 12, 0, 0)


@pytest.fixture
def clock():
    with frozen_clock(START) as frozen:
        yield frozen


def _long(symbol, entry, sl, tp, amount=1.0, leverage=10):
    return Position(
        symbol=symbol,
        side="long",
        entry_price=entry,
        amount=amount,
        leverage=leverage,
        stop_loss=sl,
        take_profit=tp,
    )


def _short(symbol, entry, sl, tp, amount=1.0, leverage=10):
    return Position(
        symbol=symbol,
        side="short",
        entry_price=entry,
        amount=amount,
        leverage=leverage,
        stop_loss=sl,
        take_profit=tp,
    )


def _tp_increase_after_update(clock, position, price, **market):
    old_tp = position.take_profit
    clock.advance(seconds=0.001)
    position.update_take_profit(current_price=price, **market)
    return (position.take_profit - old_tp) / old_tp


def test_roi_based_profit_taking():
    """5 % ROI with TP > 5 % away, 8 % with TP > 3 % away, 15 % (short) with TP > 2 % away, and
    20 % unconditionally (TP very close) each close with their own reason."""
    position = _long("BTC-USDT", 50000.0, 47500.0, 58000.0)
    assert position.get_leveraged_pnl(50250.0) == pytest.approx(0.05)
    assert position.should_close(50250.0) == (True, "take_profit_5pct")

    position2 = _long("ETH-USDT", 3000.0, 2850.0, 3300.0, amount=5.0)
    assert position2.get_leveraged_pnl(3024.0) == pytest.approx(0.08)
    assert position2.should_close(3024.0) == (True, "take_profit_8pct")

    position3 = _short("ADA-USDT", 0.50, 0.525, 0.46, amount=1000.0)
    assert position3.get_leveraged_pnl(0.4925) == pytest.approx(0.15)
    assert position3.should_close(0.4925) == (True, "take_profit_15pct_far_tp")

    position4 = _long("BNB-USDT", 400.0, 380.0, 401.0, amount=2.0)
    assert position4.get_leveraged_pnl(408.0) == pytest.approx(0.20)
    assert position4.should_close(408.0) == (True, "take_profit_20pct_exceptional")


def test_momentum_loss_detection():
    """Giving back ~30 % of a 15 % peak closes with ``take_profit_momentum_loss``; giving back 50 %
    of a 10 % peak (short) closes with ``take_profit_major_retracement``."""
    position = _long("BTC-USDT", 50000.0, 47500.0, 51000.0)  # TP close: distance rules stay quiet
    position.max_favorable_excursion = position.get_leveraged_pnl(50750.0)  # 15 % peak
    assert position.get_leveraged_pnl(50525.0) == pytest.approx(0.105)
    assert position.should_close(50525.0) == (True, "take_profit_momentum_loss")

    position2 = _short("ETH-USDT", 3000.0, 3150.0, 2850.0, amount=5.0)
    position2.max_favorable_excursion = position2.get_leveraged_pnl(2970.0)  # 10 % peak
    assert position2.get_leveraged_pnl(2985.0) == pytest.approx(0.05)
    assert position2.should_close(2985.0) == (True, "take_profit_major_retracement")


def test_conservative_tp_extensions(clock):
    """Strong market conditions extend TP by at most ~5 % at 15 % ROI, ~10 % at 10 % ROI and
    ~20 % at 5 % ROI."""
    position = _long("BTC-USDT", 50000.0, 47500.0, 52500.0)
    assert position.get_leveraged_pnl(50750.0) == pytest.approx(0.15)
    increase = _tp_increase_after_update(
        clock, position, 50750.0, momentum=0.05, trend_strength=0.8, volatility=0.06, rsi=60.0
    )
    assert increase <= 0.051

    position2 = _long("ETH-USDT", 3000.0, 2850.0, 3200.0, amount=5.0)
    assert position2.get_leveraged_pnl(3030.0) == pytest.approx(0.10)
    increase2 = _tp_increase_after_update(
        clock, position2, 3030.0, momentum=0.04, trend_strength=0.7, volatility=0.05, rsi=65.0
    )
    assert increase2 <= 0.101

    position3 = _long("SOL-USDT", 100.0, 95.0, 108.0, amount=10.0)
    assert position3.get_leveraged_pnl(100.5) == pytest.approx(0.05)
    increase3 = _tp_increase_after_update(
        clock, position3, 100.5, momentum=0.035, trend_strength=0.65, volatility=0.04, rsi=58.0
    )
    assert increase3 <= 0.201


def test_progress_based_restrictions(clock):
    """Near the initial target the extension is capped (≤ ~5 % at 95 % progress, ≤ ~8 % at 80 %),
    and at 72 % progress toward a close TP the TP does not move at all."""
    position = _long("BTC-USDT", 50000.0, 47500.0, 52500.0)
    increase = _tp_increase_after_update(
        clock, position, 52375.0, momentum=0.05, trend_strength=0.8, volatility=0.05, rsi=60.0
    )
    assert increase <= 0.051

    position2 = _long("ETH-USDT", 3000.0, 2850.0, 3300.0, amount=5.0)
    increase2 = _tp_increase_after_update(
        clock, position2, 3240.0, momentum=0.045, trend_strength=0.75, volatility=0.05, rsi=62.0
    )
    assert increase2 <= 0.081

    position3 = _long("SOL-USDT", 100.0, 95.0, 110.0, amount=10.0)
    old_tp3 = position3.take_profit
    clock.advance(seconds=0.001)
    position3.update_take_profit(
        current_price=107.2, momentum=0.04, trend_strength=0.7, volatility=0.04, rsi=65.0
    )
    assert position3.take_profit == old_tp3


def test_short_position_profit_taking():
    """A short at 10 % ROI with a far TP closes with ``take_profit_10pct``; a short that fell back
    from a 20 % peak to 6 % closes (a major retracement)."""
    position = _short("BTC-USDT", 50000.0, 52500.0, 44000.0)
    assert position.get_leveraged_pnl(49500.0) == pytest.approx(0.10)
    assert position.should_close(49500.0) == (True, "take_profit_10pct")

    position2 = _short("ETH-USDT", 3000.0, 3150.0, 2700.0, amount=5.0)
    position2.max_favorable_excursion = position2.get_leveraged_pnl(2940.0)  # 20 % peak
    should_close, reason = position2.should_close(2982.0)  # 6 % ROI, 70 % given back
    assert should_close
    assert reason == "take_profit_major_retracement"
