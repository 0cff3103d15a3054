"""Port of the bot's ``test_stop_loss_execution.py`` (``test_stop_loss_logic``, Position only).

A long at 1.00, 5x, SL 0.98 (2 %), TP 1.06 is checked with ``should_close`` at six prices in a row
(on the same object, as the original): it stays open above the stop and closes at and below it.

The original fails against the original implementation itself: its first price, 1.05, is a +25 %
ROI at 5x, where ``take_profit_20pct_exceptional`` closes the position, while the test expected
"above entry, should stay open". The intent is ported with 1.005 (+2.5 % ROI, below every profit
rule) in that slot; a second test pins what happens at 1.05.
"""

from __future__ import annotations

import pytest

from position_manager_rs import Position


@pytest.fixture
def position():
    return Position(
        symbol="TEST/USDT:USDT",
        side="long",
        entry_price=1.00,
        amount=100.0,
        leverage=5,
        stop_loss=0.98,
        take_profit=1.06,
    )


def test_stop_loss_logic(position):
    """Open above the stop, closed at/below it (first price changed from 1.05 to 1.005)."""
    cases = [
        (1.005, False),  # above entry, below every profit-taking threshold: stays open
        (1.00, False),  # at entry
        (0.99, False),  # 1 % below entry, above the stop
        (0.98, True),  # at the stop
        (0.97, True),  # below the stop
        (0.95, True),  # well below the stop
    ]
    results = [(price, position.should_close(price)[0]) for price, _ in cases]
    assert results == cases


def test_stop_loss_logic_closing_reasons(position):
    """The reasons behind the closes above: the plain stop at the stop price, then the ROI
    emergency stops (-15 % and -25 % ROI at 5x) take precedence further down."""
    assert position.should_close(0.98) == (True, "stop_loss")
    assert position.should_close(0.97) == (True, "emergency_stop_excessive_loss")
    assert position.should_close(0.95) == (True, "emergency_stop_severe_loss")


def test_stop_loss_logic_original_first_price_takes_profit(position):
    """The original first price, 1.05 (+25 % ROI at 5x), closes with
    ``take_profit_20pct_exceptional`` — the original expected it to stay open."""
    assert position.get_leveraged_pnl(1.05) == pytest.approx(0.25)
    assert position.should_close(1.05) == (True, "take_profit_20pct_exceptional")
    # The remaining five prices behave as in the original table even after that peak.
    results = [position.should_close(price)[0] for price in (1.00, 0.99, 0.98, 0.97, 0.95)]
    assert results == [False, False, True, True, True]
